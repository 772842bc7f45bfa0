#!/usr/bin/env python3
"""Cross-check a TLS truth file with what tshark (Wireshark) sees and decrypts.

    python3 check.py captures/tls_x.truth.json [...]

Per capture: the ClientHellos (client port, random, SNI) and ServerHellos (cipher suite, version) equal
the truth's TLS connections; the ALPN the server chose (ServerHello, or EncryptedExtensions once
decrypted); and, decrypted with the shipped key log (.keys file, or the pcapng's Decryption Secrets
Block), the application traffic: WebSocket frames, HTTP/1.x requests and responses, HTTP/2 HEADERS
frames, counted against the truth. For a capture without keys, nothing must decrypt.
Prints one line per capture; exits 1 on any difference. tshark is an oracle here, not the source of
the truth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tls import SUITE_CODES  # noqa: E402


def tshark(cap: str, keys: str | None, filt: str, fields: list[str], two_pass: bool = False) -> list[list[str]]:
    cmd = ["tshark", "-r", cap, "-Y", filt, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    if two_pass:
        cmd.append("-2")
    if keys:
        cmd += ["-o", f"tls.keylog_file:{keys}"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def check(path: str) -> tuple[str, list[str]]:
    with open(path) as f:
        t = json.load(f)
    caps = os.path.dirname(os.path.abspath(path))
    cap = os.path.join(caps, t["capture"])
    port = t["server_port"]
    keys_info = t["tls"]["keys"]
    keys = os.path.join(caps, keys_info["file"]) if keys_info["where"] == "file" else None
    decryptable = keys_info["shipped"]
    conns = t["tls"]["connections"]
    problems, facts = [], []

    def compare(what, got, want):
        facts.append(f"{what} {got if isinstance(got, int) else len(got)}/{want if isinstance(want, int) else len(want)}")
        if got != want:
            problems.append(f"{what}: tshark {got} != truth {want}")

    # --- handshakes (readable without keys, except TLS 1.3's EncryptedExtensions)
    ch = tshark(cap, keys, "tls.handshake.type == 1", ["tcp.srcport", "tls.handshake.random",
                                                       "tls.handshake.extensions_server_name"])
    compare("ClientHellos", sorted((int(p), r.replace(":", ""), s) for p, r, s in ch),
            sorted((c["client_port"], c["client_random"], c["sni"]) for c in conns))
    sh = tshark(cap, keys, "tls.handshake.type == 2", ["tcp.dstport", "tls.handshake.ciphersuite",
                                                       "tls.handshake.extensions.supported_version"])
    compare("ServerHellos", sorted((int(p), int(cs, 16), "TLSv1.3" if "0x0304" in v else "TLSv1.2") for p, cs, v in sh),
            sorted((c["client_port"], SUITE_CODES[c["cipher"]], c["version"]) for c in conns))
    alpn = tshark(cap, keys, "tls.handshake.type == 2 or tls.handshake.type == 8",
                  ["tcp.dstport", "tls.handshake.extensions_alpn_str"])
    got_alpn = {int(p): a for p, a in alpn if a}
    want_alpn = {c["client_port"]: c["alpn"] for c in conns
                 if c["alpn"] and (decryptable or c["version"] != "TLSv1.3")}
    compare("ALPN", got_alpn, want_alpn)

    # --- decrypted application data
    ws = tshark(cap, keys, "websocket", ["websocket.opcode"], two_pass=True)
    opcodes = [int(o) for row in ws for o in row[0].split(",") if o]
    http1 = tshark(cap, keys, "http.request or http.response", ["http.request.method", "http.response.code"],
                   two_pass=True)
    requests = sum(len([m for m in row[0].split(",") if m]) for row in http1)
    responses = sum(len([c for c in row[1].split(",") if c]) for row in http1)
    h2 = tshark(cap, keys, "http2.type == 1", ["tcp.dstport", "http2.type"], two_pass=True)
    h2_headers = {"c2s": 0, "s2c": 0}
    for p, types in h2:
        h2_headers["c2s" if int(p) == port else "s2c"] += types.split(",").count("1")

    if not decryptable:
        compare("decrypted WebSocket frames (no keys)", len(opcodes), 0)
        compare("decrypted HTTP requests (no keys)", requests, 0)
    elif "engineio_packets_by_transport" in t:  # Socket.IO
        want = sum(t["engineio_packets_by_transport"][d].get("websocket", {}).get(k, 0)
                   for d in ("c2s", "s2c") for k in t["engineio_packets_by_transport"][d].get("websocket", {}))
        compare("WebSocket data frames", len([o for o in opcodes if o in (1, 2)]), want)
        compare("HTTP requests", requests, len(t["http"]))
    elif "connections" in t:  # WebSocket
        compare("WebSocket frames", len(opcodes), sum(len(c["frames"]) for c in t["connections"]))
        compare("HTTP requests", requests, len(t["http"]))
    elif any(r.get("http_version") == "2" for r in t["http"]):
        compare("HTTP/2 request HEADERS", h2_headers["c2s"], len(t["http"]))
        compare("HTTP/1 requests", requests, 0)
    else:
        compare("HTTP requests", requests, len(t["http"]))
        compare("HTTP responses", responses, len(t["http"]) + sum(len(r.get("interim_statuses") or [])
                                                                for r in t["http"]))
    return f"{t['capture']}: " + ", ".join(facts), problems


def main(argv: list[str]) -> int:
    bad = 0
    for path in argv:
        line, problems = check(path)
        print(line + ("" if not problems else "  MISMATCH: " + "; ".join(problems)))
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
