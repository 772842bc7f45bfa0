#!/usr/bin/env bash
# Regenerate the whole real-traffic corpus in captures/ on loopback (run as root: the capture tools
# need it). Each part installs what it needs (apt: tcpdump, tshark; npm ci; pip venvs).
#   captures/make/make_corpus.sh            # everything
#   captures/make/make_corpus.sh ws|sio     # one part
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
parts=("${@:-ws sio tls}")
for part in ${parts[*]}; do
    echo "== captures/make/$part/run.sh"
    bash "$here/$part/run.sh"
done
echo "corpus written to $(cd "$here/.." && pwd)"
