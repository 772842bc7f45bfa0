#!/usr/bin/env bash
# Capture the TLS (https/wss) corpus: captures/tls*.pcap[ng] + .truth.json (+ .keys).
#
#   captures/make/tls/run.sh                 every scenario
#   captures/make/tls/run.sh NAME...         some of them (python3 tls.py list shows the names)
#   SKIP_INSTALL=1 captures/make/tls/run.sh  skip apt / npm ci / pip
#
# Needs root (tcpdump/dumpcap on lo), node + npm, python3 with venv. Installs what is missing:
# tcpdump, tshark, editcap/capinfos (wireshark-common), curl, openssl (apt), node_modules (npm ci from
# package-lock.json), chromium (apt; tls13_chromium_sio4 runs it headless) and a virtualenv .venv with
# websockets (requirements.txt). All traffic stays on 127.0.0.1 / ::1, TCP ports 9401-9409 and 9450-9451.
# Scenarios (python3 tls.py list): tls13_sio4_polling_upgrade tls12_websockets_chacha tls12_ws_aesgcm
# tls12_cbc tls_curl_https tls_resumption tls13_dsb tls_nokeys tls_h2 tls13_chromium_sio4.
# Each scenario's truth must check out (the peers agree, the capture holds every connection) and so
# must check.py (tshark decrypts what the truth says).
set -euo pipefail
cd "$(dirname "$0")"

if [ "${SKIP_INSTALL:-}" != 1 ]; then
  need_apt=()
  for tool in tcpdump dumpcap tshark capinfos editcap curl openssl; do
    command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
  done
  if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (for tls13_chromium_sio4)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing tcpdump tshark wireshark-common curl openssl (missing: ${need_apt[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpdump tshark wireshark-common curl openssl >/dev/null
  fi
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  if [ ! -x .venv/bin/python ] || [ requirements.txt -nt .venv/.installed ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
    touch .venv/.installed
  fi
fi
export TLS_PYTHON="$PWD/.venv/bin/python"

if [ $# -eq 0 ]; then
  mapfile -t scenarios < <(python3 tls.py list)
else
  scenarios=("$@")
fi

failed=()
for name in "${scenarios[@]}"; do
  # one retry: now and then a loopback capture misses a packet (the truth check then fails)
  if python3 tls.py run "$name" || { echo "retrying $name once" >&2; python3 tls.py run "$name"; }; then
    truth=../../"$name".truth.json
    python3 check.py "$truth" || failed+=("$name(check)")
  else
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
