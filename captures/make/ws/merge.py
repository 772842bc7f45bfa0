#!/usr/bin/env python3
"""Merge the peers' own logs of one scenario into captures/<name>.truth.json.

    python3 merge.py NAME RAWDIR --capture FILE --format pcap|pcapng --link EN10MB|LINUX_SLL|LINUX_SLL2
                     --ts us|ns --server-port N [--out DIR]

RAWDIR holds NAME.server.json and NAME.client.json, written by the scenario programs while they ran
(see lib/peerlog.js and lib/pylog.py). Everything in the truth file comes from those logs: the
capture is never read. The sender's record is the reference for each message and frame; the
receiver's record must agree with it, or this script fails (so a broken run never yields a truth file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

OPNAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


class Mismatch(Exception):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Mismatch(what)


def secs(t_ms: float | None) -> float | None:
    return None if t_ms is None else round(t_ms / 1000.0, 6)


def parse_extensions(header: str | None) -> dict | None:
    """permessage-deflate parameters per direction from a Sec-WebSocket-Extensions response."""
    if not header:
        return None
    params: dict[str, str | bool] = {}
    for ext in header.split(","):
        parts = [p.strip() for p in ext.split(";")]
        if parts[0] != "permessage-deflate":
            continue
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip()] = v.strip().strip('"') if v else True
    if not params and "permessage-deflate" not in header:
        return None

    def side(prefix: str) -> dict:
        bits = params.get(f"{prefix}_max_window_bits")
        return {
            "no_context_takeover": bool(params.get(f"{prefix}_no_context_takeover", False)),
            "max_window_bits": int(bits) if isinstance(bits, str) else 15,
        }

    return {"c2s": side("client"), "s2c": side("server")}


def group_frames(frames: list[dict]) -> list[list[dict]]:
    """Data frames grouped into messages, in sending order."""
    msgs, cur = [], None
    for f in frames:
        if f["opcode"] >= 8:
            continue
        if f["opcode"] in (1, 2):
            check(cur is None, "new data frame before the previous message ended")
            cur = [f]
        else:
            check(cur is not None, "continuation frame without a message")
            cur.append(f)
        if f["fin"]:
            msgs.append(cur)
            cur = None
    check(cur is None, "unfinished fragmented message")
    return msgs


def frame_row(f: dict, direction: str) -> dict:
    row = {
        "direction": direction,
        "fin": f["fin"],
        "rsv1": f["rsv1"],
        "rsv2": f["rsv2"],
        "rsv3": f["rsv3"],
        "opcode": f["opcode"],
        "opcode_name": OPNAMES.get(f["opcode"], str(f["opcode"])),
        "masked": f["masked"],
        "payload_len": f["payload_len"],
        "header_len": f["header_len"],
    }
    if "close_code" in f:
        row["close_code"] = f["close_code"]
        row["close_reason"] = f["close_reason"]
    row["t_sender"] = secs(f["t"])
    return row


def direction_messages(sender: dict, receiver: dict, direction: str) -> list[dict]:
    sent, recv = sender["sent"], receiver["received"]
    groups = group_frames(sender["frames_sent"])
    check(len(groups) == len(sent), f"{direction}: {len(sent)} messages sent but {len(groups)} framed")
    check(len(recv) == len(sent), f"{direction}: {len(sent)} messages sent but {len(recv)} received")
    out = []
    for m, frames, r in zip(sent, groups, recv):
        check(OPNAMES[frames[0]["opcode"]] == m["opcode"], f"{direction}: opcode {m} vs frames")
        check(len(frames) == m["fragments"], f"{direction}: fragments {m} vs {len(frames)} frames")
        check((r["opcode"], r["payload_bytes"]) == (m["opcode"], m["payload_bytes"]),
              f"{direction}: sent {m} received {r}")
        row = {
            "direction": direction,
            "opcode": m["opcode"],
            "payload_bytes": m["payload_bytes"],
            "fragments": m["fragments"],
            "wire_bytes": sum(f["payload_len"] for f in frames),
            "compressed": frames[0]["rsv1"],
        }
        if m["opcode"] == "text":
            row["text"] = m["text"]
        row["t_sender"] = secs(m["t"])
        out.append(row)
    return out


def merge_ws_connection(srv: dict, cli: dict) -> dict:
    sh, ch = srv["handshake"], cli["handshake"]
    check(sh["key"] == ch["key"], "Sec-WebSocket-Key differs")
    check(sh["accept"] == ch["accept"], "Sec-WebSocket-Accept differs")
    check(sh["response_extensions"] == ch["response_extensions"], "extensions differ")
    check(sh["subprotocol"] == ch["subprotocol"], "subprotocol differs")
    conn = {
        "client_port": cli["client_port"],
        "server_port": cli["server_port"],
        "extensions": sh["response_extensions"],
        "subprotocol": sh["subprotocol"],
        "handshake": {
            "method": "GET",
            "target": ch["request_target"],
            "status": sh["status"],
            "key": ch["key"],
            "accept": sh["accept"],
            "accept_valid": True,  # the client library verified it, or it would not have opened
            "extensions_offered": ch["request_extensions"],
            "protocols_offered": ch["request_protocols"],
            "t_server": secs(srv.get("t_open")),
        },
        "deflate": parse_extensions(sh["response_extensions"]),
        "deflate_params": {"server": sh.get("deflate_params"), "client": ch.get("deflate_params")},
    }
    if cli.get("bytes_written") is not None and srv.get("bytes_written") is not None:
        check(cli["bytes_written"] == srv["bytes_read"], "c2s TCP byte counts differ")
        check(srv["bytes_written"] == cli["bytes_read"], "s2c TCP byte counts differ")
        conn["tcp_payload_bytes"] = {"c2s": cli["bytes_written"], "s2c": srv["bytes_written"]}

    msgs = direction_messages(cli, srv, "c2s") + direction_messages(srv, cli, "s2c")
    conn["messages"] = sorted(msgs, key=lambda m: m["t_sender"])

    frames = [frame_row(f, "c2s") for f in cli["frames_sent"]] + [
        frame_row(f, "s2c") for f in srv["frames_sent"]]
    frames.sort(key=lambda f: f["t_sender"])
    conn["control"] = []
    for f in frames:
        if f["opcode"] >= 8:
            c = {"direction": f["direction"], "opcode": f["opcode_name"], "payload_bytes": f["payload_len"]}
            c.update({k: f[k] for k in ("close_code", "close_reason") if k in f})
            c["t_sender"] = f["t_sender"]
            conn["control"].append(c)
    conn["frames"] = frames

    # Pings/pongs seen through the public API must match the frames the other side sent.
    for a, b, d in ((cli, srv, "c2s"), (srv, cli, "s2c")):
        pings = [f["payload_len"] for f in a["frames_sent"] if f["opcode"] == 9]
        pongs = [f["payload_len"] for f in a["frames_sent"] if f["opcode"] == 10]
        check(pings == [e["payload_bytes"] for e in b["events"] if e["event"] == "ping_received"],
              f"{d}: pings sent/received differ")
        check(pongs == [e["payload_bytes"] for e in b["events"] if e["event"] == "pong_received"],
              f"{d}: pongs sent/received differ")

    # Close handshake.
    init = [(p["close_sent"]["t"], name, p, q) for name, p, q in (("client", cli, srv), ("server", srv, cli))
            if p["close_sent"]]
    if init:
        _, who, ini, resp = min(init, key=lambda x: x[0])
        cs = ini["close_sent"]
        check((resp["close_received"]["code"], resp["close_received"]["reason"]) == (cs["code"], cs["reason"]),
              "close received by the responder differs from the close sent")
        reply = [f for f in resp["frames_sent"] if f["opcode"] == 8]
        close = {"code": cs["code"], "reason": cs["reason"], "initiator": who}
        if reply:
            close["reply_code"] = reply[0].get("close_code")
            close["reply_reason"] = reply[0].get("close_reason")
            check(ini["close_received"]["code"] == (close["reply_code"] or 1005), "reply code differs")
        conn["close"] = close
    else:
        conn["close"] = None
    return conn


def handshake_http(conn: dict) -> dict:
    hs = conn["handshake"]
    return {"client_port": conn["client_port"], "method": "GET", "target": hs["target"],
            "status": hs["status"], "body_bytes": 0, "upgrade": "websocket", "t_server": hs["t_server"]}


def merge_ws(server: dict, client: dict) -> tuple[list[dict], list[dict]]:
    by_port = {c["client_port"]: c for c in server["connections"]}
    conns = []
    for cli in client["connections"]:
        srv = by_port.pop(cli["client_port"], None)
        check(srv is not None, f"server has no connection from port {cli['client_port']}")
        conns.append(merge_ws_connection(srv, cli))
    check(not by_port, f"server-only connections: {sorted(by_port)}")
    return conns, [handshake_http(c) for c in conns]


def merge_http(server: dict, client: dict) -> list[dict]:
    """Server's own log of each exchange, checked against the client's (curl -w / ws client)."""
    srv, cli = server["http"], client["http"]
    check(len(srv) == len(cli), f"server logged {len(srv)} requests, client {len(cli)}")
    out = []
    for s, c in zip(srv, cli):
        for k in ("client_port", "method", "status", "body_bytes"):
            if k in c:
                check(s[k] == c[k], f"http {k}: server {s[k]} client {c[k]}")
        row = dict(s)
        row["t_server"] = round(row["t_server"], 6)
        row.update({f"client_{k}": v for k, v in c.items() if k not in s})
        out.append(row)
    return out


def merge_udp(server: dict, client: dict) -> dict:
    cs, ss = client["udp"], server["udp"]
    check(cs["sent"] == ss["received"], "c2s datagrams differ")
    check(ss["sent"] == cs["received"], "s2c datagrams differ")
    check(cs["local_port"] == ss["peer_port"], "client port differs")
    seq = sorted([("c2s", t, n) for t, n in cs["sent_log"]] + [("s2c", t, n) for t, n in ss["sent_log"]],
                 key=lambda x: x[1])
    return {
        "client_port": cs["local_port"],
        "server_port": ss["local_port"],
        "c2s": {"datagrams": len(cs["sent"]), "bytes": sum(cs["sent"])},
        "s2c": {"datagrams": len(ss["sent"]), "bytes": sum(ss["sent"])},
        "datagrams": [{"direction": d, "bytes": n, "t_sender": secs(t)} for d, t, n in seq],
    }


def dumps(obj, indent: int = 0) -> str:
    """JSON with one line per flat object, so that long lists of messages and frames stay readable."""
    pad = " " * indent
    scalar = lambda v: not isinstance(v, (dict, list))  # noqa: E731
    leaf = lambda v: scalar(v) or all(map(scalar, v.values() if isinstance(v, dict) else v))  # noqa: E731
    flat = lambda o: leaf(o) or (isinstance(o, dict) and all(map(leaf, o.values())))  # noqa: E731
    if isinstance(obj, dict) and not flat(obj):
        items = [f'{pad} {json.dumps(k)}: {dumps(v, indent + 1).lstrip()}' for k, v in obj.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and not leaf(obj):
        items = [dumps(v, indent + 1) for v in obj]
        return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return pad + json.dumps(obj, ensure_ascii=False)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("raw")
    ap.add_argument("--capture", required=True)
    ap.add_argument("--format", required=True, choices=["pcap", "pcapng"])
    ap.add_argument("--link", required=True, choices=["EN10MB", "LINUX_SLL", "LINUX_SLL2"])
    ap.add_argument("--ts", required=True, choices=["us", "ns"])
    ap.add_argument("--server-port", type=int, required=True)
    ap.add_argument("--tool", default="")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    a = ap.parse_args()

    with open(os.path.join(a.raw, f"{a.name}.server.json")) as f:
        server = json.load(f)
    with open(os.path.join(a.raw, f"{a.name}.client.json")) as f:
        client = json.load(f)

    truth: dict = {
        "capture": a.capture,
        "generator": f"captures/make/ws/run.sh {a.name}",
        "peers": {"server": server["peer"], "client": client["peer"]},
        "capture_tool": a.tool,
        "link": a.link,
        "format": a.format,
        "ts_precision": a.ts,
        "server_port": a.server_port,
    }
    try:
        if "connections" in server or "connections" in client:
            conns, hs = merge_ws(server, client)
            truth["connections"] = conns
            truth["http"] = hs
        if "http" in server:
            truth["http"] = sorted(truth.get("http", []) + merge_http(server, client),
                                   key=lambda r: r["t_server"])
        if "udp" in server:
            truth["udp"] = merge_udp(server, client)
        for k in ("notes",):
            if k in server or k in client:
                truth[k] = server.get(k, []) + client.get(k, [])
    except Mismatch as e:
        print(f"merge.py {a.name}: peers disagree: {e}", file=sys.stderr)
        return 1

    path = os.path.join(a.out, f"{a.name}.truth.json")
    with open(path, "w") as f:
        f.write(dumps(truth) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
