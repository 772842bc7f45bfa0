#!/usr/bin/env python3
"""Run the Socket.IO capture scenarios and write their truth files.

    python3 sio.py run NAME        capture scenario NAME into captures/NAME.pcap[ng] + NAME.truth.json
    python3 sio.py peers NAME DIR  (what runs under capture.py) start the server, run the client(s),
                                   stop the server; each peer writes its own log into DIR
    python3 sio.py truth NAME DIR  merge the peers' logs of DIR into the truth file
    python3 sio.py list            the scenario names

The truth is built only from what the peers recorded about their own traffic (see lib/record.js,
pyrecord.py and README.md); the capture file is read only to confirm its format (capinfos).
"""

from __future__ import annotations

import collections
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CAPTURES = os.path.join(REPO, "captures")
CAPTURE_PY = os.path.join(REPO, "captures", "make", "capture.py")
PYTHON = os.environ.get("SIO_PYTHON", sys.executable)  # the interpreter with python-socketio 5
PYTHON_EIO3 = os.environ.get("SIO_PYTHON_EIO3", sys.executable)  # the one with python-socketio 4

# tool/iface/options of capture.py, and what the file must then be
CAP_LO_PCAP = {"tool": "tcpdump", "iface": "lo", "link": "EN10MB", "format": "pcap", "ts_precision": "us"}
CAP_LO_PCAP_NS = {**CAP_LO_PCAP, "nano": True, "ts_precision": "ns"}
# tcpdump 4.99 writes SLL2 on "any" unless told otherwise
CAP_ANY_SLL = {"tool": "tcpdump", "iface": "any", "linktype": "LINUX_SLL", "link": "LINUX_SLL", "format": "pcap",
               "ts_precision": "us"}
CAP_LO_DUMPCAP_PCAP = {"tool": "dumpcap", "iface": "lo", "pcap": True, "link": "EN10MB", "format": "pcap",
                       "ts_precision": "us"}
CAP_LO_PCAPNG = {"tool": "dumpcap", "iface": "lo", "link": "EN10MB", "format": "pcapng", "ts_precision": "ns"}
CAP_ANY_SLL2 = {"tool": "dumpcap", "iface": "any", "linktype": "LINUX_SLL2", "link": "LINUX_SLL2",
                "format": "pcapng", "ts_precision": "ns"}

SCENARIOS = {
    "sio4_websocket": {
        "port": 9301, "lib": "sio4", "capture": CAP_LO_PCAP, "server_args": [],
        "about": "socket.io 4, WebSocket only: '/' and '/chat' on one connection, events and acks both "
                 "ways, binary events/acks (1 and 2 attachments), a broadcast to two connections, a "
                 "clean close (A) and an abrupt one (B: TCP reset).",
    },
    "sio4_polling_upgrade": {
        "port": 9302, "lib": "sio4", "capture": CAP_LO_PCAPNG,
        "server_args": ["--ping-interval", "300", "--ping-timeout", "1000", "--upgrade-delay", "600"],
        "about": "socket.io 4, default transports: polling (server holds the upgrade request back 600 ms) "
                 "with events, acks, a binary event and a 3-event burst, then the upgrade to WebSocket "
                 "and more events; pingInterval 300 ms; clean close.",
    },
    "sio4_connect_error": {
        "port": 9303, "lib": "sio4", "capture": CAP_LO_PCAP_NS, "server_args": [],
        "about": "socket.io 4, WebSocket only: A connects '/auth' with auth {token}, '/admin' is refused by "
                 "middleware (CONNECT_ERROR), the server disconnects A; B's '/auth' token is refused "
                 "(CONNECT_ERROR with data) and the client closes.",
    },
    "sio4_any_sll": {
        "port": 9304, "lib": "sio4", "capture": CAP_ANY_SLL, "server_args": [],
        "about": "socket.io 4, a short WebSocket session captured on 'any' (Linux cooked SLL).",
    },
    "sio2_websocket": {
        "port": 9311, "lib": "sio2", "capture": CAP_LO_PCAP,
        "server_args": ["--ping-interval", "500", "--ping-timeout", "1000"],
        "about": "socket.io 2 (Engine.IO 3), WebSocket only: '/' and '/chat', events and acks both ways, "
                 "binary events/acks, '/admin' refused (ERROR packet), client pings every 500 ms; A closes "
                 "cleanly, B's TCP connection is closed (FIN) without any goodbye.",
    },
    "sio2_polling": {
        "port": 9312, "lib": "sio2", "capture": CAP_LO_PCAPNG,
        "server_args": ["--ping-interval", "400", "--ping-timeout", "1000", "--upgrade-delay", "700"],
        "about": "socket.io 2 (Engine.IO 3): A polls then upgrades to WebSocket; P polls only (binary as "
                 "application/octet-stream payloads), with '/chat'; Q polls only with forceBase64 (binary "
                 "as base64 'b4' text); all close cleanly.",
    },
    "sio2_polling_binary": {
        "port": 9313, "lib": "sio2", "client": "py3", "capture": CAP_LO_DUMPCAP_PCAP,
        "server_args": ["--ping-interval", "500", "--ping-timeout", "1000"],
        "about": "socket.io 2 server with a python-socketio 4 client (python-engineio 3), polling only: the "
                 "client writes every POST as a binary (application/octet-stream) payload and the server "
                 "answers payloads that hold binary packets in that form too; events, acks, non-ASCII text, "
                 "binary events, '/chat', a 3-event burst, client pings; clean close.",
    },
    "sio_python": {
        "port": 9321, "lib": "python", "capture": CAP_ANY_SLL2, "server_args": [],
        "about": "python-socketio server (aiohttp) and AsyncClient: default transports (polling then "
                 "WebSocket), '/' and '/chat', events and acks both ways, binary events, pingInterval "
                 "1 s, clean close. Captured on 'any' as Linux cooked v2 (SLL2).",
    },
    # ---- socket lifecycle scenarios (ports 9350-9399): lifecycle truth in "sockets" ---------------
    "sio4_ping_timeout": {
        "port": 9350, "lib": "sio4", "capture": CAP_LO_PCAP, "life": True,
        "server_script": "sio4_life_server.js", "client_script": "life_client.js", "client_args": ["--flavour", "v4"],
        "server_args": ["--ping-interval", "300", "--ping-timeout", "200"],
        "about": "socket.io 4, pingInterval 300 ms, pingTimeout 200 ms. H (WebSocket) stays healthy and "
                 "disconnects cleanly; Z (WebSocket) and P (polling) are client processes frozen with SIGSTOP "
                 "past pingInterval + pingTimeout: the server closes them with 'ping timeout'; then they are "
                 "SIGCONTed and see their own end.",
        "expect": {"H:/": {"server": "client namespace disconnect", "client": "io client disconnect"},
                   "Z:/": {"server": "ping timeout"}, "P:/": {"server": "ping timeout"}},
    },
    "sio4_disconnects": {
        "port": 9351, "lib": "sio4", "capture": CAP_LO_PCAPNG, "life": True,
        "server_script": "sio4_life_server.js", "client_script": "life_client.js", "client_args": ["--flavour", "v4"],
        "server_args": ["--ping-interval", "1000", "--ping-timeout", "2000"],
        "about": "socket.io 4, sockets ending every way the server names: A leaves '/chat' (client namespace "
                 "disconnect) and keeps '/'; B disconnects (client); C is disconnected by the server "
                 "(socket.disconnect()); D's client process is SIGKILLed (transport close); E's TCP connection "
                 "is reset; F (polling only) and A '/' end with io.close() (server shutting down).",
        "expect": {"A:/chat": {"server": "client namespace disconnect", "client": "io client disconnect"},
                   "A:/": {"server": "server shutting down"},
                   "B:/": {"server": "client namespace disconnect", "client": "io client disconnect"},
                   "C:/": {"server": "server namespace disconnect", "client": "io server disconnect"},
                   "D:/": {"server": "transport close", "client": None},
                   "E:/": {"server": ("transport close", "transport error")},
                   "F:/": {"server": "server shutting down"}},
    },
    "sio4_recovery": {
        "port": 9352, "lib": "sio4", "capture": CAP_LO_PCAP, "life": True, "recovery": True,
        "server_script": "sio4_life_server.js", "client_script": "life_client.js", "client_args": ["--flavour", "v4"],
        "server_args": ["--recovery", "1000", "--ping-interval", "1000", "--ping-timeout", "2000"],
        "about": "socket.io 4 with connectionStateRecovery (maxDisconnectionDuration 1000 ms). R1's TCP "
                 "connection is cut (FIN, no goodbye), the server emits 4 events to R1's rooms while it is away, "
                 "R1 reconnects after 300 ms: recovered, same socket id, the 4 events re-sent. R2 is cut the "
                 "same way and reconnects after 1500 ms: not recovered, a new socket id.",
        "expect": {"R1:/#1": {"server": "transport close", "client": "transport close"},
                   "R1:/#2": {"server": "client namespace disconnect", "recovered": True, "replayed": 4},
                   "R2:/#1": {"server": "transport close", "client": "transport close"},
                   "R2:/#2": {"server": "client namespace disconnect", "recovered": False, "replayed": 0}},
    },
    "sio4_broadcasts": {
        "port": 9353, "lib": "sio4", "capture": CAP_LO_PCAP, "life": True, "broadcasts": True,
        "server_script": "sio4_life_server.js", "client_script": "life_client.js", "client_args": ["--flavour", "v4"],
        "server_args": [],
        "about": "socket.io 4, four WebSocket clients K1-K4 (K1, K2 in room1, K3 in room2): io.emit, "
                 "io.to('room1').emit, socket.broadcast.emit (from K3), one socket.emit per socket with the same "
                 "event and different payloads, and one per socket with the same event and payload 1.2 s apart.",
        "expect": {f"K{i}:/": {"server": "client namespace disconnect"} for i in range(1, 5)},
    },
    "sio4_msgpack": {
        "port": 9354, "lib": "sio4", "capture": CAP_LO_PCAP, "life": True, "parser": "socket.io-msgpack-parser",
        "server_script": "sio4_life_server.js", "client_script": "life_client.js",
        "client_args": ["--flavour", "v4", "--msgpack"], "server_args": ["--msgpack"],
        "about": "socket.io 4 with socket.io-msgpack-parser on both sides (every Socket.IO packet one binary "
                 "Engine.IO message, no attachments). A (WebSocket): '/' and '/chat', events, acks both ways, "
                 "binary data in events and acks, client disconnect. P (polling: binary as 'b<base64>'): events, "
                 "an ack, the server disconnects it.",
        "expect": {"A:/": {"server": "client namespace disconnect"}, "A:/chat": {"server": "client namespace disconnect"},
                   "P:/": {"server": "server namespace disconnect", "client": "io server disconnect"}},
    },
    "sio2_ping_timeout": {
        "port": 9360, "lib": "sio2", "capture": CAP_LO_PCAP, "life": True,
        "client_script": "life_client.js", "client_args": ["--flavour", "v2"],
        "server_args": ["--ping-interval", "300", "--ping-timeout", "200"],
        "about": "socket.io 2 (Engine.IO 3: the client pings), pingInterval 300 ms, pingTimeout 200 ms. H "
                 "healthy, disconnects cleanly; Z's client process is frozen (SIGSTOP): no more pings, the server "
                 "closes it with 'ping timeout'; S is disconnected by the server (socket.disconnect(true)).",
        "expect": {"H:/": {"server": "client namespace disconnect", "client": "io client disconnect"},
                   "Z:/": {"server": "ping timeout"},
                   "S:/": {"server": "server namespace disconnect", "client": "io server disconnect"}},
    },
    "sio_python_disconnects": {
        "port": 9370, "lib": "python", "capture": CAP_LO_PCAPNG, "life": True,
        "server_script": "py_life_server.py", "client_script": "py_life_client.py", "server_args": [],
        "about": "python-socketio 5 server (aiohttp) and AsyncClients, pingInterval 1 s, pingTimeout 1 s, one "
                 "client process per session: B (WebSocket only) is disconnected by the server "
                 "(sio.disconnect(sid)); Z (polling only) is frozen with SIGSTOP and the server ends it (ping "
                 "timeout); A (polling, then WebSocket) disconnects itself. python-socketio's own reasons.",
        # AsyncClient.disconnect() aborts the WebSocket before its queued DISCONNECT goes out (see
        # README.md): the server then says "transport close"
        "expect": {"A:/": {"server": ("client disconnect", "transport close"), "client": "client disconnect"},
                   "B:/": {"server": "server disconnect", "client": "server disconnect"},
                   "Z:/": {"server": "ping timeout"}},
    },
}

EIO_TYPES = ["open", "close", "ping", "pong", "message", "upgrade", "noop"]
SIO_TYPES = ["CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"]
CLOSED_BY = {"disconnect": "client", "closed_after_connect_error": "client", "tcp_reset": "abrupt",
             "tcp_close": "abrupt", "server_disconnect": "server",
             # lifecycle scenarios: a frozen client is closed by the server (ping timeout); a killed
             # client process or a cut transport ends without any goodbye
             "frozen": "server", "server_shutdown": "server", "sigkill": "abrupt", "transport_cut": "abrupt"}


def peer_commands(name: str, tmp: str) -> tuple[list[str], list[str]]:
    sc = SCENARIOS[name]
    port = str(sc["port"])
    if sc["lib"] == "python":
        server = [PYTHON, os.path.join(HERE, sc.get("server_script", "py_server.py"))]
        client = [PYTHON, os.path.join(HERE, sc.get("client_script", "py_client.py"))]
    else:
        server = ["node", os.path.join(HERE, sc.get("server_script", f"{sc['lib']}_server.js"))]
        client = ["node", os.path.join(HERE, sc.get("client_script", f"{sc['lib']}_client.js")), *sc.get("client_args", [])]
    if sc.get("client") == "py3":
        client = [PYTHON_EIO3, os.path.join(HERE, "py3_client.py")]
    server += ["--port", port, "--log", os.path.join(tmp, "server.json"), *sc["server_args"]]
    client += ["--scenario", name, "--port", port, "--log", os.path.join(tmp, "client.json")]
    return server, client


def run_peers(name: str, tmp: str) -> int:
    server_cmd, client_cmd = peer_commands(name, tmp)
    server = subprocess.Popen(server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # blocks until the server listens (or dies)
        if line.strip() != "READY":
            print(f"server did not start: {line!r}", file=sys.stderr)
            return 1
        rc = subprocess.call(client_cmd, timeout=30)
        server.stdin.write("quit\n")
        server.stdin.flush()
        src = server.wait(timeout=15)
        return rc or src
    finally:
        if server.poll() is None:
            server.kill()


# ---------------------------------------------------------------------------------------------------
# truth


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def capinfos(path: str) -> dict:
    out = subprocess.run(["capinfos", "-t", "-E", "-M", "-a", path], capture_output=True, text=True).stdout
    info = {}
    for line in out.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info[k.strip()] = v.strip()
    enc = info.get("File encapsulation", "")
    link = {"ether": "EN10MB", "linux-sll": "LINUX_SLL", "linux-sll2": "LINUX_SLL2"}.get(enc, enc)
    ftype = info.get("File type", "")
    fmt = {"pcap": "pcap", "nsecpcap": "pcap", "pcapng": "pcapng"}.get(ftype, ftype)
    return {"link": link, "format": fmt, "nsecpcap": ftype == "nsecpcap"}


def capture_ports(path: str, server_port: int) -> tuple[set, set]:
    """Client ports with a SYN in the capture, and those whose connection ends (FIN or RST)."""
    out = subprocess.run(["tshark", "-r", path, "-Y", "tcp.flags.syn==1 or tcp.flags.fin==1 or tcp.flags.reset==1",
                          "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.flags.syn"],
                         capture_output=True, text=True).stdout
    syn, end = set(), set()
    for line in out.splitlines():
        src, dst, is_syn = line.split("\t")
        client = int(dst) if int(src) == server_port else int(src)
        (syn if is_syn in ("1", "True") else end).add(client)
    return syn, end


def sio_key(p: dict) -> tuple:
    return (p["type"], p["namespace"], p.get("event"), p["ack_id"], p["attachments"])


def load_clients(tmp: str) -> tuple[dict, set]:
    """client.json plus the logs of the client's child processes (client-LABEL.json), merged; and
    the Engine.IO sessions of children that were killed right after writing their log."""
    paths = [os.path.join(tmp, "client.json")] + sorted(glob.glob(os.path.join(tmp, "client-*.json")))
    logs = [load(p) for p in paths if os.path.exists(p)]
    merged = dict(logs[0])
    for key in ("transports", "sessions", "engineio", "socketio", "app"):
        merged[key] = [row for log in logs for row in log.get(key, [])]
    merged["app"].sort(key=lambda a: a["ts"])
    killed = {s["sid"] for log in logs if log.get("killed_after_dump") for s in log.get("sessions", []) if s.get("sid")}
    merged["processes"] = [{"label": log.get("child"), "pid": log.get("pid"),
                            "killed_after_dump": bool(log.get("killed_after_dump"))} for log in logs]
    return merged, killed


def heartbeat(server: dict, client: dict, sid: str, eio_version: int, opts: dict) -> dict:
    """Pings and pongs of one Engine.IO session, as the pinging peer saw them (v4: the server pings,
    v3: the client); the other peer's count of pings received. Upgrade probes are left out."""
    pinger, other = (server, client) if eio_version == 4 else (client, server)
    rows = sorted((p for p in pinger["engineio"] if p["sid"] == sid and p["type"] in ("ping", "pong")
                   and p.get("data") != "probe"), key=lambda p: p["ts"])
    pings = [p for p in rows if p["type"] == "ping" and p["dir"] == "out"]
    pongs = [p for p in rows if p["type"] == "pong" and p["dir"] == "in"]
    delays, pending, unanswered = [], None, 0
    for p in rows:
        if p["type"] == "ping" and p["dir"] == "out":
            if pending is not None:
                unanswered += 1
            pending = p["ts"]
        elif p["type"] == "pong" and p["dir"] == "in" and pending is not None:
            delays.append((p["ts"] - pending) * 1000)
            pending = None
    if pending is not None:
        unanswered += 1
    received = sum(1 for p in other["engineio"] if p["sid"] == sid and p["type"] == "ping" and p["dir"] == "in"
                   and p.get("data") != "probe")
    return {"pinger": "server" if eio_version == 4 else "client",
            "ping_interval_ms": opts.get("pingInterval"), "ping_timeout_ms": opts.get("pingTimeout"),
            "pings": len(pings), "pongs": len(pongs), "pings_received_by_peer": received,
            "unanswered_pings": unanswered,
            "max_pong_delay_ms": round(max(delays), 3) if delays else None,
            "last_ping_ts": pings[-1]["ts"] if pings else None, "last_pong_ts": pongs[-1]["ts"] if pongs else None}


def lifecycle_truth(sc: dict, server: dict, client: dict, connections: list, events: list, acks: list,
                    eio_version: int, checks: list, notes: list) -> dict:
    """The lifecycle scenarios' extra truth: one row per Socket.IO socket ("sockets"), the
    broadcasts, and the expectations of the scenario checked (a failed one fails the run)."""
    out: dict = {}
    if sc.get("parser"):
        out["parser"] = sc["parser"]
    opts = server.get("options") or {}
    conns = {c["eio_sid"]: c for c in connections}
    app_s = sorted(server["app"], key=lambda a: a["ts"])
    app_c = client["app"]

    def first(rows, **kw):
        return next((a for a in rows if all(a.get(k) == v for k, v in kw.items())), None)

    def last(rows, **kw):
        found = [a for a in rows if all(a.get(k) == v for k, v in kw.items())]
        return found[-1] if found else None

    beats = {sid: heartbeat(server, client, sid, eio_version, opts) for sid in conns}
    sockets = []
    seen_n = collections.Counter()
    for c in (a for a in app_s if a["kind"] == "connection"):
        sid, ns, ssid = c["eio_sid"], c["namespace"], c["sio_sid"]
        sd = first(app_s, kind="disconnect", eio_sid=sid, namespace=ns, sio_sid=ssid)
        cc = first(app_c, kind="connect", eio_sid=sid, namespace=ns, sio_sid=ssid)
        cd = first(app_c, kind="disconnect", eio_sid=sid, namespace=ns, sio_sid=ssid)
        ea = last(app_c, kind="end_action", eio_sid=sid, namespace=ns, sio_sid=ssid)
        conn = conns.get(sid, {})
        label = (cc or {}).get("label") or conn.get("label")
        seen_n[(label, ns)] += 1
        mine = [e for e in events if e["eio_sid"] == sid and e["namespace"] == ns]
        my_acks = [a for a in acks if a["eio_sid"] == sid and a["namespace"] == ns]
        answered = {(a["direction"], a["ack_id"]) for a in my_acks}
        unanswered = sum(1 for e in mine if e["ack_id"] is not None
                         and ("s2c" if e["direction"] == "c2s" else "c2s", e["ack_id"]) not in answered)
        row = {
            "label": label, "n": seen_n[(label, ns)], "eio_sid": sid, "namespace": ns, "socket_sid": ssid,
            "transport": conn.get("transport_final"),
            "ts_connect": c["ts"], "client_ts_connect": (cc or {}).get("ts"),
            "ts_disconnect": (sd or {}).get("ts"), "client_ts_disconnect": (cd or {}).get("ts"),
            "server_disconnect_reason": (sd or {}).get("reason"),
            "client_disconnect_reason": (cd or {}).get("reason"),
            "disconnect_by": (ea or {}).get("by"),
            "end_action": (ea or {}).get("action"),
            "events_c2s": sum(1 for e in mine if e["direction"] == "c2s"),
            "events_s2c": sum(1 for e in mine if e["direction"] == "s2c"),
            "acks_c2s": sum(1 for a in my_acks if a["direction"] == "c2s"),
            "acks_s2c": sum(1 for a in my_acks if a["direction"] == "s2c"),
            "acks_unanswered": unanswered,
            "recovered": None, "replayed_events": None,
            "heartbeat": beats.get(sid),
        }
        if sc.get("recovery"):
            auth = c.get("auth") or {}
            asked = isinstance(auth.get("pid"), str)  # the client's CONNECT asked for recovery
            row["recovered"] = bool(c.get("recovered")) if asked else None
            row["client_recovered"] = (cc or {}).get("recovered")
            row["pid"] = c.get("pid")
            row["connect_auth_pid"] = auth.get("pid")
            row["connect_auth_offset"] = auth.get("offset")
            # the events emitted while this label's previous socket was away ...
            prev = next((x for x in reversed(sockets) if x["label"] == label and x["namespace"] == ns), None)
            gap = [a for a in app_s if a["kind"] == "adapter_broadcast" and a.get("offset") and prev
                   and prev["ts_disconnect"] and prev["ts_disconnect"] <= a["ts"] <= c["ts"]
                   and (ssid in a["rooms"] or prev["socket_sid"] in a["rooms"] or "room1" in a["rooms"])]
            gap_offsets = [a["offset"] for a in gap]
            # ... and those of them this session received again: counted by their offsets
            replayed = [e for e in mine if e["direction"] == "s2c" and e.get("offset") in gap_offsets]
            row["previous_socket_sid"] = prev["socket_sid"] if prev else None
            row["emitted_while_away"] = [{"event": a["event"], "offset": a["offset"], "rooms": a["rooms"], "ts": a["ts"]}
                                         for a in gap]
            row["replayed_events"] = len(replayed) if asked else None
            row["replayed"] = [{"event": e["event"], "offset": e["offset"], "ts": e["ts"]} for e in replayed]
            if bool(row["recovered"]) != bool(row["client_recovered"]):
                checks.append(f"socket {label} {ns} #{row['n']}: server recovered={row['recovered']}, "
                              f"client {row['client_recovered']}")
            if row["recovered"]:
                if ssid != row["previous_socket_sid"]:
                    checks.append(f"socket {label} #{row['n']}: recovered with a new id {ssid}")
                if sorted(e["offset"] for e in replayed) != sorted(gap_offsets):
                    checks.append(f"socket {label} #{row['n']}: replayed {row['replayed']} != emitted while away {gap_offsets}")
        sockets.append(row)
        if row["server_disconnect_reason"] is None:
            checks.append(f"socket {label} {ns} #{row['n']}: the server saw no disconnect")
    out["sockets"] = sockets
    # the client processes (children were frozen or killed) and the signals the scenario sent them
    out["client_processes"] = client.get("processes", [])
    out["signals"] = [{"label": a["label"], "signal": a["signal"], "ts": a["ts"]} for a in app_c if a["kind"] == "signal"]

    # what the scenario says happened
    for key, want in (sc.get("expect") or {}).items():
        lab, _, rest = key.partition(":")
        ns, _, n = rest.partition("#")
        rows = [r for r in sockets if r["label"] == lab and r["namespace"] == ns and (not n or r["n"] == int(n))]
        if not rows:
            checks.append(f"expected socket {key} not found")
        for r in rows:
            for field, k in (("server_disconnect_reason", "server"), ("client_disconnect_reason", "client"),
                             ("recovered", "recovered"), ("replayed_events", "replayed")):
                if k not in want:
                    continue
                ok = r[field] in want[k] if isinstance(want[k], tuple) else r[field] == want[k]
                if not ok:
                    checks.append(f"socket {key}: {field} is {r[field]!r}, expected {want[k]!r}")
            if r["server_disconnect_reason"] == "ping timeout" and eio_version == 4 \
                    and not (r["heartbeat"] or {}).get("unanswered_pings"):
                checks.append(f"socket {key}: ping timeout without an unanswered ping")
    if sc.get("broadcasts"):
        out["broadcasts"] = broadcasts_truth(app_s, sockets, events, checks)
    return out


def broadcasts_truth(app_s: list, sockets: list, events: list, checks: list) -> list:
    """One row per server-side emit call of sio4_broadcasts: the call, whom it was meant for (the
    adapter's view for io.emit / io.to().emit / socket.broadcast.emit, the handler's list for the
    per-socket emits) and what each client received."""
    by_sid = {r["socket_sid"]: r for r in sockets}
    rows = []
    for i, call in enumerate(a for a in app_s if a["kind"] == "broadcast_call"):
        if call.get("intended") is not None:
            intended = call["intended"]
        else:
            ab = next((a for a in app_s if a["kind"] == "adapter_broadcast" and a["ts"] >= call["ts"]
                       and a["event"] == call["event"]), None)
            intended = ab["reached"] if ab else []
        received = []
        for ssid in intended:
            sock = by_sid.get(ssid)
            ev = next((e for e in events if sock and e["eio_sid"] == sock["eio_sid"] and e["namespace"] == call["namespace"]
                       and e["direction"] == "s2c" and e["event"] == call["event"] and e["ts"] >= call["ts"]), None)
            if ev is None:
                checks.append(f"broadcast {call['call']} {call['event']!r}: {ssid} received nothing")
                continue
            received.append({"label": sock["label"], "socket_sid": ssid, "eio_sid": sock["eio_sid"], "ts": ev["ts"],
                             "event": ev["event"], "packet_bytes": ev.get("packet_bytes"),
                             "packet_digest": ev.get("packet_digest")})
        ts = [r["ts"] for r in received]
        same = len({r["packet_digest"] for r in received}) == 1
        spread = (max(ts) - min(ts)) * 1000 if ts else None
        rows.append({
            "index": i, "namespace": call["namespace"], "call": call["call"], "event": call["event"],
            "ts_call": call["ts"], "from_socket_sid": call.get("from_sio_sid"),
            "intended_socket_sids": intended,
            "intended_labels": [by_sid[s]["label"] if s in by_sid else None for s in intended],
            "received": received,
            "same_payload": same, "spread_ms": round(spread, 3) if spread is not None else None,
            # a fan-out as REPORTS.md's sio_broadcasts defines it: same namespace, event and payload
            # bytes, to different sockets, first and last within 1 s
            "is_fanout": bool(len(received) > 1 and same and spread is not None and spread <= 1000),
        })
    return rows


def build_truth(name: str, tmp: str, capture_file: str) -> dict:
    sc = SCENARIOS[name]
    server = load(os.path.join(tmp, "server.json"))
    client, killed_sids = load_clients(tmp)
    checks: list[str] = []
    notes: list[str] = []

    def compare(what, recv, sent, sender_killed=False):
        """The receiver's record is the truth; the sender's must match it, except for packets the
        sender handed over as its connection was being torn down, which never reached the peer, and
        for packets a client sent after it wrote its log, just before it was killed (SIGKILL)."""
        if recv == sent:
            return
        if sent[:len(recv)] == recv:
            notes.append(f"{what}: the last {len(sent) - len(recv)} packet(s) the sender wrote were never "
                         f"received (written while the connection closed): {sent[len(recv):]}")
        elif sender_killed and recv[:len(sent)] == sent:
            notes.append(f"{what}: {len(recv) - len(sent)} packet(s) received after the sender wrote its log "
                         f"(it was then killed): {recv[len(sent):]}")
        else:
            checks.append(f"{what}: received {recv} != sent {sent}")

    def by_sid(rows):
        d = collections.defaultdict(list)
        for r in rows:
            d[r["sid"]].append(r)
        return d

    s_eio, c_eio = by_sid(server["engineio"]), by_sid(client["engineio"])
    s_sio, c_sio = by_sid(server["socketio"]), by_sid(client["socketio"])
    client_sessions = {s["sid"]: s for s in client["sessions"] if s.get("sid")}
    close_actions = {}
    for a in client["app"]:
        if a["kind"] == "close_action" and a["action"] != "namespace_disconnect":
            close_actions[a["eio_sid"]] = a["action"]

    connections, namespaces, events, acks = [], [], [], []
    eio_total = {"c2s": collections.Counter(), "s2c": collections.Counter()}
    eio_by_transport = {"c2s": collections.defaultdict(collections.Counter),
                        "s2c": collections.defaultdict(collections.Counter)}
    sio_total = {"c2s": collections.Counter(), "s2c": collections.Counter()}

    for sess in server["sessions"]:
        sid = sess["sid"]
        csess = client_sessions.get(sid)
        if csess is None:
            checks.append(f"session {sid}: no client log")
        # --- the TCP connections, as the server saw them
        ws_ports, poll_ports = [], []
        for t in server["transports"]:
            if t["sid"] != sid:
                continue
            if t["name"] == "websocket":
                ws_ports += t["client_ports"]
            else:
                for r in t["requests"]:
                    if r["client_port"] not in poll_ports:
                        poll_ports.append(r["client_port"])
        first_transport = next((t["name"] for t in server["transports"] if t["sid"] == sid), None)
        final = "websocket" if (sess["upgraded"] or first_transport == "websocket") else "polling"
        c_ws_ports = sorted({p for t in client["transports"] if t["sid"] == sid and t["name"] == "websocket"
                             for p in t["client_ports"]})
        if c_ws_ports and c_ws_ports != sorted(ws_ports):
            checks.append(f"session {sid}: websocket port server {ws_ports} != client {c_ws_ports}")
        action = close_actions.get(sid)
        conn = {
            "client_port": ws_ports[0] if final == "websocket" and ws_ports else (poll_ports[0] if poll_ports else None),
            "transport_final": final,
            "upgraded_from_polling": bool(sess["upgraded"]),
            "eio_sid": sid,
            "closed_by": CLOSED_BY.get(action),
            "label": csess.get("label") if csess else None,
            "websocket_client_port": ws_ports[0] if ws_ports else None,
            "polling_client_ports": poll_ports,
            "close_action": action,
            "server_close_reason": sess.get("close_reason"),
            "client_close_reason": csess.get("close_reason") if csess else None,
        }
        # --- Engine.IO packets: c2s as the server received them, s2c as the client received them
        views = {"c2s": ([p for p in s_eio[sid] if p["dir"] == "in"], [p for p in c_eio[sid] if p["dir"] == "out"]),
                 "s2c": ([p for p in c_eio[sid] if p["dir"] == "in"], [p for p in s_eio[sid] if p["dir"] == "out"])}
        conn_counts = {}
        for d, (recv, sent) in views.items():
            rc = collections.Counter(p["type"] for p in recv)
            compare(f"session {sid} {d}: Engine.IO", [p["type"] for p in recv], [p["type"] for p in sent],
                    sender_killed=d == "c2s" and sid in killed_sids)
            conn_counts[d] = {t: rc.get(t, 0) for t in EIO_TYPES}
            eio_total[d].update(rc)
            for p in recv:
                if p.get("transport"):
                    eio_by_transport[d][p["transport"]][p["type"]] += 1
        conn["engineio_packets"] = conn_counts
        connections.append(conn)

        # --- Socket.IO packets: again from the receiving side, checked against the sending side
        sviews = {"c2s": ([p for p in s_sio[sid] if p["dir"] == "in"], [p for p in c_sio[sid] if p["dir"] == "out"]),
                  "s2c": ([p for p in c_sio[sid] if p["dir"] == "in"], [p for p in s_sio[sid] if p["dir"] == "out"])}
        open_events = {}
        for d, (recv, sent) in sviews.items():
            compare(f"session {sid} {d}: Socket.IO", [sio_key(p) for p in recv], [sio_key(p) for p in sent],
                    sender_killed=d == "c2s" and sid in killed_sids)
        merged = sorted([(p, d) for d, (recv, _) in sviews.items() for p in recv], key=lambda x: x[0]["ts"])
        for p, d in merged:
            sio_total[d][p["type"]] += 1
            base = {"eio_sid": sid, "direction": d, "namespace": p["namespace"], "ack_id": p["ack_id"],
                    "binary_attachments": p["attachments"], "sio_type": p["type"], "transport": p.get("transport"),
                    "ts": p["ts"]}
            # added for the lifecycle scenarios (only where the peer's recorder gives them)
            for k in ("packet_bytes", "attachment_bytes", "packet_digest"):
                if k in p:
                    base[k] = p[k]
            if sc.get("recovery") and p["type"] in ("EVENT", "BINARY_EVENT"):
                base["offset"] = p.get("last_arg")
            if p["type"] in ("EVENT", "BINARY_EVENT"):
                events.append({**base, "event": p["event"]})
                if p["ack_id"] is not None:
                    open_events[(d, p["namespace"], p["ack_id"])] = p["event"]
            elif p["type"] in ("ACK", "BINARY_ACK"):
                other = "s2c" if d == "c2s" else "c2s"
                ev = open_events.pop((other, p["namespace"], p["ack_id"]), None)
                if ev is None:
                    checks.append(f"session {sid}: {d} ACK {p['ack_id']} on {p['namespace']} answers no event")
                acks.append({**base, "answers_event": ev})
            elif p["type"] in ("CONNECT", "CONNECT_ERROR") and d == "s2c":
                err = None
                err_data = None
                if p["type"] == "CONNECT_ERROR":
                    data = p.get("data")
                    if isinstance(data, dict):
                        err, err_data = data.get("message"), data.get("data")
                    else:
                        err = data
                namespaces.append({"eio_sid": sid, "namespace": p["namespace"], "ok": p["type"] == "CONNECT",
                                   "error": err, "error_data": err_data, "ts": p["ts"]})
        for (d, ns, ack_id), ev in open_events.items():
            checks.append(f"session {sid}: {d} event {ev!r} (ack id {ack_id}, {ns}) never acknowledged")

    # --- application-level cross-checks: what the handlers saw vs the packet-level truth
    def app_count(log, kind):
        return collections.Counter((a.get("eio_sid"), a.get("namespace"), a.get("event")) for a in log["app"]
                                   if a["kind"] == kind)

    ev_c2s = collections.Counter((e["eio_sid"], e["namespace"], e["event"]) for e in events if e["direction"] == "c2s")
    ev_s2c = collections.Counter((e["eio_sid"], e["namespace"], e["event"]) for e in events if e["direction"] == "s2c")
    if app_count(server, "recv_event") != ev_c2s:
        checks.append(f"server handlers saw {dict(app_count(server, 'recv_event'))} != c2s events {dict(ev_c2s)}")
    if app_count(client, "recv_event") != ev_s2c:
        checks.append(f"client handlers saw {dict(app_count(client, 'recv_event'))} != s2c events {dict(ev_s2c)}")
    for log, d, kind in ((server, "s2c", "ack_sent"), (client, "c2s", "ack_sent"),
                         (server, "c2s", "ack_received"), (client, "s2c", "ack_received")):
        n_app = sum(1 for a in log["app"] if a["kind"] == kind)
        n_pkt = sum(1 for a in acks if a["direction"] == d)
        if n_app != n_pkt:
            checks.append(f"{log['role']} {kind}: {n_app} by the handlers, {n_pkt} {d} ACK packets")

    # The capture must be complete: every TCP connection the server saw is there from SYN to FIN/RST.
    # (The capture is only read to validate it; nothing in the truth comes from it.)
    ports_seen = {p for c in connections for p in [c["websocket_client_port"], *c["polling_client_ports"]] if p}
    syn, end = capture_ports(capture_file, sc["port"])
    if not ports_seen <= syn:
        checks.append(f"capture lacks the SYN of client ports {sorted(ports_seen - syn)}")
    if not ports_seen <= end:
        checks.append(f"capture lacks the FIN/RST of client ports {sorted(ports_seen - end)}")

    ci = capinfos(capture_file)
    cap = sc["capture"]
    for k in ("link", "format"):
        if ci[k] != cap[k]:
            checks.append(f"capture {k} is {ci[k]}, expected {cap[k]}")
    if cap["format"] == "pcap" and ci["nsecpcap"] != (cap["ts_precision"] == "ns"):
        checks.append("capture timestamp precision is not " + cap["ts_precision"])

    eio_version = 3 if sc["lib"] == "sio2" else 4
    extra = {}
    if sc.get("life"):
        extra = lifecycle_truth(sc, server, client, connections, events, acks, eio_version, checks, notes)
    truth = {
        "capture": os.path.basename(capture_file),
        "generator": f"captures/make/sio/run.sh scenario {name}",
        "about": sc["about"],
        "peers": {"server": server.get("peer"), "client": client.get("peer")},
        "link": cap["link"], "format": cap["format"], "ts_precision": cap["ts_precision"],
        "capture_tool": f"{cap['tool']} -i {cap['iface']}",
        "server_ip": "127.0.0.1",
        "server_port": sc["port"],
        "eio_version": eio_version,
        "sio_protocol": 4 if eio_version == 3 else 5,
        "server_options": server.get("options"),
        "connections": connections,
        "namespaces": namespaces,
        "events": events,
        "acks": acks,
        "engineio_packets": {d: {t: eio_total[d].get(t, 0) for t in EIO_TYPES} for d in ("c2s", "s2c")},
        "socketio_packets": {d: {t: sio_total[d].get(t, 0) for t in SIO_TYPES} for d in ("c2s", "s2c")},
        **extra,
        "checks": {"ok": not checks, "problems": checks, "notes": notes},
    }
    if any(eio_by_transport[d] for d in eio_by_transport):
        truth["engineio_packets_by_transport"] = {
            d: {tr: {t: c.get(t, 0) for t in EIO_TYPES} for tr, c in sorted(eio_by_transport[d].items())}
            for d in ("c2s", "s2c")}
    return truth


def capture_path(name: str) -> str:
    return os.path.join(CAPTURES, name + (".pcapng" if SCENARIOS[name]["capture"]["format"] == "pcapng" else ".pcap"))


def run(name: str, keep: bool = False) -> int:
    sc = SCENARIOS[name]
    cap = sc["capture"]
    out = capture_path(name)
    tmp = tempfile.mkdtemp(prefix=f"{name}.")
    # --settle 1.5: tcpdump (no immediate mode) hands packets over in blocks with a 1 s timeout and
    # drops what it still holds when interrupted; wait that out before capture.py stops it
    cmd = [sys.executable, CAPTURE_PY, "--out", out, "--tool", cap["tool"], "--iface", cap["iface"],
           "--filter", f"tcp port {sc['port']}", "--settle", "1.5"]
    if cap.get("nano"):
        cmd.append("--nano")
    if cap.get("linktype"):
        cmd += ["--linktype", cap["linktype"]]
    if cap.get("pcap"):
        cmd.append("--pcap")
    cmd += ["--", sys.executable, os.path.abspath(__file__), "peers", name, tmp]
    t0 = time.time()
    rc = subprocess.call(cmd)
    if rc != 0:
        print(f"{name}: peers failed (rc={rc}); logs in {tmp}", file=sys.stderr)
        return rc
    os.chmod(out, 0o644)  # dumpcap writes 0600, tcpdump as its own user
    truth = build_truth(name, tmp, out)
    with open(os.path.join(CAPTURES, name + ".truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    size = os.path.getsize(out)
    status = "ok" if truth["checks"]["ok"] else "CHECKS FAILED: " + "; ".join(truth["checks"]["problems"])
    print(f"{name}: {os.path.basename(out)} {size} bytes, {len(truth['events'])} events, "
          f"{len(truth['acks'])} acks, {time.time() - t0:.1f}s, {status}")
    if keep or not truth["checks"]["ok"]:
        print(f"  peer logs kept in {tmp}")
    else:
        shutil.rmtree(tmp)
    return 0 if truth["checks"]["ok"] else 2


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "peers", "truth", "list"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "list":
        print("\n".join(SCENARIOS))
        return 0
    name = argv[1]
    if name not in SCENARIOS:
        print(f"unknown scenario {name}", file=sys.stderr)
        return 2
    if argv[0] == "peers":
        return run_peers(name, argv[2])
    if argv[0] == "truth":
        truth = build_truth(name, argv[2], capture_path(name))
        json.dump(truth, sys.stdout, indent=1)
        return 0
    return run(name, keep="--keep" in argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
