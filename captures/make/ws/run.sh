#!/usr/bin/env bash
# Build the WebSocket / HTTP / UDP part of the capture corpus: every scenario runs real peers on
# 127.0.0.1 under ../capture.py and writes captures/<name>.pcap|.pcapng plus
# captures/<name>.truth.json (merged from the peers' own logs by merge.py; see README.md).
#
#   captures/make/ws/run.sh              # all scenarios
#   captures/make/ws/run.sh ws_basic ... # some of them
#   SKIP_INSTALL=1 captures/make/ws/run.sh ...   # do not run apt-get / npm ci / pip
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CAPS="$(cd "$HERE/../.." && pwd)"          # captures/
CAPTURE_PY="$HERE/../capture.py"

install() {
  local missing=()
  for t in tcpdump dumpcap tshark curl node npm; do command -v "$t" >/dev/null || missing+=("$t"); done
  if ((${#missing[@]})); then
    echo "run.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpdump tshark curl nodejs npm >/dev/null
  fi
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
  python3 -m pip install -q -r "$HERE/requirements.txt" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages -r "$HERE/requirements.txt"
}

RAW="$(mktemp -d)"
trap 'rm -rf "$RAW"' EXIT

# scenario NAME TOOL IFACE ASK LINK TS FORMAT PROTO PORT -- CMD...
#   TOOL tcpdump|dumpcap, IFACE lo|any, ASK a link type to request (-y) or "-" for the tool's
#   default, LINK the link type the file must end up with (EN10MB|LINUX_SLL|LINUX_SLL2; check.py
#   verifies it), TS us|ns, FORMAT pcap|pcapng.
#   Defaults on Debian 12: tcpdump 4.99 -i any writes LINUX_SLL2, dumpcap -i any writes LINUX_SLL.
scenario() {
  local name=$1 tool=$2 iface=$3 ask=$4 link=$5 ts=$6 format=$7 proto=$8 port=$9
  shift 10
  local ext=$format out opts=()
  out="$CAPS/$name.$ext"
  local desc="$tool -i $iface"
  if [[ $ask != - ]]; then opts+=(--linktype "$ask"); desc+=" -y $ask"; fi
  if [[ $tool == tcpdump && $ts == ns ]]; then opts+=(--nano); desc+=" --time-stamp-precision nano"; fi
  if [[ $tool == dumpcap && $format == pcap ]]; then opts+=(--pcap); desc+=" -P"; fi
  echo "== $name ($desc: $link $format $ts)" >&2
  rm -f "$CAPS/$name.pcap" "$CAPS/$name.pcapng" "$CAPS/$name.truth.json"
  (cd "$HERE" && python3 "$CAPTURE_PY" --out "$out" --tool "$tool" --iface "$iface" "${opts[@]}" \
      --filter "$proto port $port" -- "$@")
  chmod 644 "$out"
  python3 "$HERE/merge.py" "$name" "$RAW" --capture "$(basename "$out")" --format "$format" \
      --link "$link" --ts "$ts" --server-port "$port" --tool "$desc" --out "$CAPS"
  python3 "$HERE/check.py" --quiet "$CAPS/$name.truth.json"
}

run_one() {
  case $1 in
    ws_basic)             scenario ws_basic tcpdump lo - EN10MB us pcap tcp 9350 -- node ws_basic.js "$RAW" ;;
    ws_close_4001)        scenario ws_close_4001 tcpdump lo - EN10MB ns pcap tcp 9351 -- node ws_close_4001.js "$RAW" ;;
    ws_deflate_ctx)       scenario ws_deflate_ctx tcpdump lo - EN10MB us pcap tcp 9352 -- node ws_deflate.js ctx "$RAW" ;;
    ws_deflate_noctx)     scenario ws_deflate_noctx dumpcap lo - EN10MB us pcap tcp 9353 -- node ws_deflate.js noctx "$RAW" ;;
    ws_deflate_asym)      scenario ws_deflate_asym dumpcap lo - EN10MB ns pcapng tcp 9354 -- node ws_deflate.js asym "$RAW" ;;
    websockets_py)        scenario websockets_py dumpcap lo - EN10MB ns pcapng tcp 9355 -- python3 websockets_py.py "$RAW" ;;
    ws_multi)             scenario ws_multi dumpcap any LINUX_SLL2 LINUX_SLL2 ns pcapng tcp 9356 -- node ws_multi.js "$RAW" ;;
    http_keepalive)       scenario http_keepalive tcpdump any LINUX_SLL LINUX_SLL us pcap tcp 9360 -- python3 http_keepalive.py "$RAW" ;;
    http_ws_upgrade_400)  scenario http_ws_upgrade_400 tcpdump any - LINUX_SLL2 ns pcap tcp 9361 -- node http_ws_upgrade_400.js "$RAW" ;;
    udp_exchange)         scenario udp_exchange dumpcap any - LINUX_SLL ns pcapng udp 9390 -- python3 udp_exchange.py "$RAW" ;;
    *) echo "run.sh: unknown scenario $1" >&2; return 2 ;;
  esac
}

ALL=(ws_basic ws_close_4001 ws_deflate_ctx ws_deflate_noctx ws_deflate_asym websockets_py ws_multi
     http_keepalive http_ws_upgrade_400 udp_exchange)

[[ ${SKIP_INSTALL:-} == 1 ]] || install
if (($#)); then LIST=("$@"); else LIST=("${ALL[@]}"); fi
for s in "${LIST[@]}"; do run_one "$s"; done
