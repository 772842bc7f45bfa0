#!/usr/bin/env bash
# Capture the Socket.IO / Engine.IO corpus: captures/sio*.pcap[ng] + captures/sio*.truth.json.
#
#   captures/make/sio/run.sh                 every scenario
#   captures/make/sio/run.sh NAME...         some of them (python3 sio.py list shows the names)
#   captures/make/sio/run.sh scenario NAME   the same, as written in the truth files' "generator"
#
# Needs root (tcpdump/dumpcap on lo and any), node + npm, python3 with venv. Installs what is missing:
# tcpdump/tshark (apt), node_modules (npm ci from package-lock.json) and two Python virtualenvs
# (.venv: python-socketio 5, .venv-eio3: python-socketio 4 / python-engineio 3), pinned in
# requirements-*.txt. All traffic stays on 127.0.0.1, TCP ports 9301-9399.
set -euo pipefail
cd "$(dirname "$0")"

if [ "${1:-}" = "scenario" ]; then shift; fi

need_apt=()
for tool in tcpdump dumpcap tshark capinfos; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing tcpdump tshark (missing: ${need_apt[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpdump tshark >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

make_venv() {  # make_venv DIR REQUIREMENTS
  if [ ! -x "$1/bin/python" ] || [ "$2" -nt "$1/.installed" ]; then
    python3 -m venv "$1"
    "$1/bin/pip" install -q --disable-pip-version-check -r "$2"
    touch "$1/.installed"
  fi
}
make_venv .venv requirements-py5.txt
make_venv .venv-eio3 requirements-eio3.txt
export SIO_PYTHON="$PWD/.venv/bin/python" SIO_PYTHON_EIO3="$PWD/.venv-eio3/bin/python"

if [ $# -eq 0 ]; then
  mapfile -t scenarios < <(python3 sio.py list)
else
  scenarios=("$@")
fi

failed=()
for name in "${scenarios[@]}"; do
  python3 sio.py run "$name" || failed+=("$name")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
