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
}

EIO_TYPES = ["open", "close", "ping", "pong", "message", "upgrade", "noop"]
SIO_TYPES = ["CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"]
CLOSED_BY = {"disconnect": "client", "closed_after_connect_error": "client", "tcp_reset": "abrupt",
             "tcp_close": "abrupt", "server_disconnect": "server"}


def peer_commands(name: str, tmp: str) -> tuple[list[str], list[str]]:
    sc = SCENARIOS[name]
    port = str(sc["port"])
    if sc["lib"] == "python":
        server = [PYTHON, os.path.join(HERE, "py_server.py")]
        client = [PYTHON, os.path.join(HERE, "py_client.py")]
    else:
        server = ["node", os.path.join(HERE, f"{sc['lib']}_server.js")]
        client = ["node", os.path.join(HERE, f"{sc['lib']}_client.js")]
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


def build_truth(name: str, tmp: str, capture_file: str) -> dict:
    sc = SCENARIOS[name]
    server = load(os.path.join(tmp, "server.json"))
    client = load(os.path.join(tmp, "client.json"))
    checks: list[str] = []
    notes: list[str] = []

    def compare(what, recv, sent):
        """The receiver's record is the truth; the sender's must match it, except for packets the
        sender handed over as its connection was being torn down, which never reached the peer."""
        if recv == sent:
            return
        if sent[:len(recv)] == recv:
            notes.append(f"{what}: the last {len(sent) - len(recv)} packet(s) the sender wrote were never "
                         f"received (written while the connection closed): {sent[len(recv):]}")
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
            compare(f"session {sid} {d}: Engine.IO", [p["type"] for p in recv], [p["type"] for p in sent])
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
            compare(f"session {sid} {d}: Socket.IO", [sio_key(p) for p in recv], [sio_key(p) for p in sent])
        merged = sorted([(p, d) for d, (recv, _) in sviews.items() for p in recv], key=lambda x: x[0]["ts"])
        for p, d in merged:
            sio_total[d][p["type"]] += 1
            base = {"eio_sid": sid, "direction": d, "namespace": p["namespace"], "ack_id": p["ack_id"],
                    "binary_attachments": p["attachments"], "sio_type": p["type"], "transport": p.get("transport"),
                    "ts": p["ts"]}
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
