#!/usr/bin/env python3
"""Cross-check truth files against their captures with tshark (run by run.sh after each scenario).

    python3 check.py [--quiet] captures/NAME.truth.json...

For every truth file: the capture's format, link type and timestamp resolution (read from the file
headers); per TCP connection the WebSocket frames per direction (opcode, FIN, RSV1, mask, payload
length on the wire), the HTTP requests and responses, and the TCP payload bytes per direction
(without tshark-flagged retransmissions); for UDP the datagrams and bytes per direction.
Exits 1 on any mismatch. Also prints, for information, how many compressed frames Wireshark failed
to inflate per direction (Wireshark 4.0 swaps server_*/client_* deflate parameters, so asymmetric
negotiations fail there; the truth files, not Wireshark, are right about those).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections import defaultdict

LINKS = {1: "EN10MB", 113: "LINUX_SLL", 276: "LINUX_SLL2"}


def file_info(path: str) -> tuple[str, set[str], set[str]]:
    """(format, link types, timestamp resolutions) from the capture's own headers."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic[0] in (0xD4, 0x4D) else ">"
        ns = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        link = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
        return "pcap", {LINKS.get(link, str(link))}, {"ns" if ns else "us"}
    assert magic == b"\x0a\x0d\x0d\x0a", "not pcap or pcapng"
    links, res = set(), set()
    off, e = 0, "<"
    while off + 12 <= len(data):
        btype = struct.unpack(e + "I", data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        blen = struct.unpack(e + "I", data[off + 4:off + 8])[0]
        if btype == 1:  # Interface Description Block
            link = struct.unpack(e + "H", data[off + 8:off + 10])[0]
            links.add(LINKS.get(link, str(link)))
            tsres, p = 6, off + 16
            while p + 4 <= off + blen - 4:
                code, olen = struct.unpack(e + "HH", data[p:p + 4])
                if code == 0:
                    break
                if code == 9:
                    tsres = data[p + 4]
                p += 4 + (olen + 3) // 4 * 4
            res.add({6: "us", 9: "ns"}.get(tsres, f"10^-{tsres}"))
        off += blen
    return "pcapng", links, res


def tshark_packets(path: str, ports: list[int]) -> list[dict]:
    cmd = ["tshark", "-r", path, "-T", "json", "--no-duplicate-keys", "-j", "tcp udp websocket"]
    for p in ports:
        cmd += ["-d", f"tcp.port=={p},http"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [p["_source"]["layers"] for p in json.loads(out)]


def tshark_http(path: str, port: int) -> list[tuple]:
    cmd = ["tshark", "-r", path, "-d", f"tcp.port=={port},http", "-Y", "http", "-T", "fields",
           "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "http.request.method", "-e", "http.request.uri",
           "-e", "http.response.code", "-E", "occurrence=a", "-E", "aggregator=|"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        src, dst, m, u, c = (line.split("\t") + [""] * 5)[:5]
        rows.append((int(src), int(dst), m, u, c))
    return rows


def tshark_inflate_failures(path: str, port: int) -> list[tuple]:
    cmd = ["tshark", "-r", path, "-d", f"tcp.port=={port},http", "-Y", "websocket", "-T", "fields",
           "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "_ws.expert.message", "-E", "occurrence=a"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        src, dst, msg = (line.split("\t") + [""] * 3)[:3]
        if "Decompression failed" in msg:
            rows.append((int(src), int(dst), msg.count("Decompression failed")))
    return rows


def as_list(x) -> list:
    return x if isinstance(x, list) else [] if x is None else [x]


def first(d: dict, key: str):
    v = d.get(key)
    return v[0] if isinstance(v, list) else v


def ws_frames(layer: dict) -> dict:
    n = int(layer["websocket.payload_length"])
    if n == 126:
        n = int(layer["websocket.payload_length_ext_16"])
    elif n == 127:
        n = int(layer["websocket.payload_length_ext_64"])
    return {"opcode": int(layer["websocket.opcode"]), "fin": layer["websocket.fin"] == "1",
            "rsv1": bool(int(layer["websocket.rsv"], 16) & 4), "masked": layer["websocket.mask"] == "1",
            "payload_len": n}


def check_truth(path: str, quiet: bool) -> list[str]:
    with open(path) as f:
        truth = json.load(f)
    cap = os.path.join(os.path.dirname(path), truth["capture"])
    errors, notes = [], []
    fmt, links, res = file_info(cap)
    if fmt != truth["format"] or links != {truth["link"]} or res != {truth["ts_precision"]}:
        errors.append(f"file is {fmt} {links} {res}, truth says {truth['format']} {truth['link']} {truth['ts_precision']}")

    sp = truth["server_port"]
    pkts = tshark_packets(cap, [sp])
    by_port: dict[int, dict] = defaultdict(lambda: {"frames": defaultdict(list), "bytes": defaultdict(int),
                                                     "http": [], "inflate_failed": defaultdict(int),
                                                     "udp": defaultdict(list)})
    for p in pkts:
        if "tcp" in p:
            t = p["tcp"]
            src, dst = int(t["tcp.srcport"]), int(t["tcp.dstport"])
            if sp not in (src, dst):
                continue
            cport = dst if src == sp else src
            d = "s2c" if src == sp else "c2s"
            c = by_port[cport]
            if "tcp.analysis.retransmission" not in json.dumps(t.get("tcp.analysis", {})):
                c["bytes"][d] += int(t.get("tcp.len", 0))
            for w in as_list(p.get("websocket")):
                c["frames"][d].append(ws_frames(w))
        elif "udp" in p:
            u = p["udp"]
            src, dst = int(u["udp.srcport"]), int(u["udp.dstport"])
            cport = dst if src == sp else src
            by_port[cport]["udp"]["s2c" if src == sp else "c2s"].append(int(u["udp.length"]) - 8)

    for src, dst, n in tshark_inflate_failures(cap, sp):
        by_port[dst if src == sp else src]["inflate_failed"]["s2c" if src == sp else "c2s"] += n

    for src, dst, methods, uris, codes in tshark_http(cap, sp):
        c = by_port[dst if src == sp else src]
        ms, us = [m for m in methods.split("|") if m], [u for u in uris.split("|") if u]
        c["http"] += [("req", m, u) for m, u in zip(ms, us)]
        c["http"] += [("resp", int(x)) for x in codes.split("|") if x]

    for conn in truth.get("connections", []):
        cp = conn["client_port"]
        c = by_port.get(cp)
        if c is None:
            errors.append(f"port {cp}: connection not in capture")
            continue
        for d in ("c2s", "s2c"):
            want = [{k: f[k] for k in ("opcode", "fin", "rsv1", "masked", "payload_len")}
                    for f in conn["frames"] if f["direction"] == d]
            if want != c["frames"][d]:
                errors.append(f"port {cp} {d}: frames differ (truth {len(want)}, tshark {len(c['frames'][d])})")
            if c["inflate_failed"][d]:
                notes.append(f"port {cp} {d}: Wireshark failed to inflate {c['inflate_failed'][d]} frame(s)")
        if "tcp_payload_bytes" in conn and dict(c["bytes"]) != conn["tcp_payload_bytes"]:
            errors.append(f"port {cp}: tcp bytes {dict(c['bytes'])} != truth {conn['tcp_payload_bytes']}")

    http_by_port = defaultdict(list)
    for h in truth.get("http", []):
        http_by_port[h["client_port"]].append(h)
    for cp, rows in http_by_port.items():
        seen = by_port.get(cp, {}).get("http", [])
        reqs = [(m, u) for kind, *rest in seen if kind == "req" for m, u in [rest]]
        resps = [s for kind, *rest in seen if kind == "resp" for s in rest if s >= 200 or s == 101]
        interim = [s for kind, *rest in seen if kind == "resp" for s in rest if 100 <= s < 200 and s != 101]
        if reqs != [(h["method"], h["target"]) for h in rows]:
            errors.append(f"port {cp}: http requests {reqs} != truth")
        if resps != [h["status"] for h in rows]:
            errors.append(f"port {cp}: http statuses {resps} != truth {[h['status'] for h in rows]}")
        want_interim = [s for h in rows for s in h.get("interim_statuses", [])]
        if interim != want_interim:
            errors.append(f"port {cp}: interim responses {interim} != truth {want_interim}")

    if "udp" in truth:
        u = truth["udp"]
        got = by_port.get(u["client_port"], {}).get("udp", {})
        for d in ("c2s", "s2c"):
            want = [g["bytes"] for g in u["datagrams"] if g["direction"] == d]
            if got.get(d, []) != want:
                errors.append(f"udp {d}: {got.get(d)} != truth {want}")

    name = os.path.basename(path)
    if not quiet or errors:
        for n in notes:
            print(f"{name}: note: {n}")
    print(f"{name}: {'OK' if not errors else 'MISMATCH'}"
          + (f" ({len(notes)} note(s): Wireshark inflate failures)" if notes and quiet else ""))
    for e in errors:
        print(f"{name}:   {e}")
    return errors


def main() -> int:
    args = sys.argv[1:]
    quiet = "--quiet" in args
    files = [a for a in args if a != "--quiet"]
    bad = 0
    for f in files:
        bad += bool(check_truth(f, quiet))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
