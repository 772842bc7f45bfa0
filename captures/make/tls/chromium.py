"""The tls13_chromium_sio4 scenario: headless Chromium runs chromium_page.html (socket.io-client 4 in
the page) against chromium_sio4_server.js over https/wss.

The client's own reports are
- the page's log (what its socket.io client exchanged through XMLHttpRequest and WebSocket, its
  handlers, its Engine.IO session), turned into client.json by lib/browserlog.js in the server process;
- Chromium's NetLog (``--log-net-log``, capture mode Everything): per socket the local and remote
  address (TCP_CONNECT), the TLS result (SSL_CONNECT: version, cipher suite, ALPN, resumption, key
  exchange group), the ClientHello it sent (its random, SNI and offered ALPN) and the plaintext of
  the HTTP requests it wrote on the socket (SSL_SOCKET_BYTES_SENT);
- Chromium's NSS key log (``--ssl-key-log-file``), keyed by client random.
run_peers adds the TLS rows (as lib/tlslog.js gives them for node clients) and the sockets to
client.json, so tls.py merges both peers' views as for the other scenarios. Nothing here reads the
capture.
"""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SNI = "dissect.test"
# IANA names of the TLS 1.3 suites (the NetLog gives the code point) and of the groups
SUITES = {0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",
          0x1303: "TLS_CHACHA20_POLY1305_SHA256"}
GROUPS = {29: "X25519", 23: "secp256r1", 24: "secp384r1", 0x11EC: "X25519MLKEM768"}
VERSIONS = {"TLS 1.3": "TLSv1.3", "TLS 1.2": "TLSv1.2"}
METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ")


def chromium_cmd(tmp: str, url: str) -> list[str]:
    return [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
            f"--user-data-dir={os.path.join(tmp, 'profile')}",
            "--ignore-certificate-errors",  # the throw-away self-signed certificate (test only)
            f"--host-resolver-rules=MAP {SNI} 127.0.0.1",
            f"--ssl-key-log-file={os.path.join(tmp, 'chromium.keys')}",
            f"--log-net-log={os.path.join(tmp, 'netlog.json')}", "--net-log-capture-mode=Everything",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
            url]


def version() -> str:
    out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    return out.split(" built on")[0] or "Chromium"


def run_peers(tmp: str, port: int, log_port: int, server_args: list[str]) -> int:
    certs = os.path.join(tmp, "certs")
    server_cmd = ["node", "chromium_sio4_server.js", "--port", str(port), "--log-port", str(log_port),
                  "--log", os.path.join(tmp, "server.json"), "--client-log", os.path.join(tmp, "client.json"),
                  "--cert", certs, *server_args]
    server = subprocess.Popen(server_cmd, cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    browser = None
    try:
        line = server.stdout.readline()
        if line.strip() != "READY":
            print(f"server did not start: {line!r}", file=sys.stderr)
            return 1
        with open(os.path.join(tmp, "chromium.stderr"), "w") as err:
            browser = subprocess.Popen(chromium_cmd(tmp, f"http://127.0.0.1:{log_port}/"), stdout=err,
                                       stderr=err, start_new_session=True)
        # "LOGGED" once the page posted its log
        ready, _, _ = select.select([server.stdout], [], [], 60)
        line = server.stdout.readline() if ready else "(nothing within 60 s)"
        if line.strip() != "LOGGED":
            print(f"no log from the page: {line!r}", file=sys.stderr)
            return 1
        time.sleep(1.0)
        # a clean shutdown: Chromium closes its sockets and finishes the NetLog
        browser.send_signal(signal.SIGTERM)
        browser.wait(timeout=20)
        time.sleep(0.3)
        server.stdin.write("quit\n")
        server.stdin.flush()
        rc = server.wait(timeout=15)
        add_client_tls(tmp)
        return rc
    finally:
        if browser is not None and browser.poll() is None:
            os.killpg(browser.pid, signal.SIGKILL)
        if server.poll() is None:
            server.kill()


# ---------------------------------------------------------------------------------------------------
# Chromium's NetLog and key log


def load_netlog(path: str) -> dict:
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # not finalized: close the events list
        return json.loads(text.rstrip().rstrip(",") + "]}")


def client_hello(msg: bytes) -> dict:
    """random, SNI and offered ALPN of a ClientHello handshake message (type, length, body)."""
    out: dict = {"client_random": msg[6:38].hex(), "sni": None, "alpn_offered": []}
    i = 38
    i += 1 + msg[i]  # session id
    i += 2 + int.from_bytes(msg[i:i + 2], "big")  # cipher suites
    i += 1 + msg[i]  # compression methods
    end = i + 2 + int.from_bytes(msg[i:i + 2], "big")
    i += 2
    while i + 4 <= end:
        etype, elen = int.from_bytes(msg[i:i + 2], "big"), int.from_bytes(msg[i + 2:i + 4], "big")
        body = msg[i + 4:i + 4 + elen]
        if etype == 0 and len(body) > 5:  # server_name: list length, type 0, name length, name
            out["sni"] = body[5:5 + int.from_bytes(body[3:5], "big")].decode("ascii")
        elif etype == 16:  # ALPN: list length, then length-prefixed names
            j = 2
            while j < len(body):
                out["alpn_offered"].append(body[j + 1:j + 1 + body[j]].decode("ascii"))
                j += 1 + body[j]
        i += 4 + elen
    return out


def netlog_sockets(netlog: dict, server_port: int) -> list[dict]:
    """Chromium's own account of every TCP socket it opened to server_port."""
    c = netlog["constants"]
    ev = {v: k for k, v in c["logEventTypes"].items()}
    phase = {v: k for k, v in c["logEventPhase"].items()}
    offset = int(c["timeTickOffset"])
    epoch = lambda e: (int(e["time"]) + offset) / 1000  # noqa: E731
    by_source: dict[int, list] = {}
    for e in netlog["events"]:
        by_source.setdefault(e["source"]["id"], []).append(e)
    sockets = []
    for events in by_source.values():
        s: dict = {}
        for e in events:
            name, ph, p = ev[e["type"]], phase[e["phase"]], e.get("params", {})
            if name == "SOCKET_ALIVE" and ph == "PHASE_BEGIN":
                s["t_open"] = epoch(e)
            elif name == "SOCKET_ALIVE" and ph == "PHASE_END":
                s["t_close"] = epoch(e)
            elif name == "TCP_CONNECT" and ph == "PHASE_END" and "local_address" in p:
                s["local"], s["remote"] = p["local_address"], p["remote_address"]
            elif name == "SSL_HANDSHAKE_MESSAGE_SENT" and p.get("type") == 1 and "client_random" not in s:
                s.update(client_hello(base64.b64decode(p["bytes"])))
            elif name == "SSL_CONNECT" and ph == "PHASE_END":
                s["ssl"] = p
                s["t_secure"] = epoch(e)
            elif name == "SSL_SOCKET_BYTES_SENT" and "bytes" in p:
                data = base64.b64decode(p["bytes"])
                if data.startswith(METHODS):
                    method, target = data.split(b"\r\n", 1)[0].decode("latin1").split(" ")[:2]
                    s.setdefault("requests", []).append({"t": epoch(e), "method": method, "target": target})
        if "remote" in s and s["remote"].rsplit(":", 1)[1] == str(server_port):
            sockets.append(s)
    sockets.sort(key=lambda s: s["t_open"])
    return sockets


def add_client_tls(tmp: str) -> None:
    """client.json gets "tls" (one row per completed handshake, as lib/tlslog.js writes them for node
    clients), "sockets" (every socket Chromium opened to the server) and "peer"."""
    path = os.path.join(tmp, "client.json")
    with open(path) as f:
        client = json.load(f)
    with open(os.path.join(tmp, "server.json")) as f:
        server_port = json.load(f)["tls"][0]["server_port"]
    keylog: dict[str, list[str]] = {}
    with open(os.path.join(tmp, "chromium.keys")) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and not line.startswith("#"):
                keylog.setdefault(parts[1].lower(), []).append(line.strip())
    sockets = netlog_sockets(load_netlog(os.path.join(tmp, "netlog.json")), server_port)
    rows, socks = [], []
    for s in sockets:
        lip, lport = s["local"].rsplit(":", 1)
        rip, rport = s["remote"].rsplit(":", 1)
        ssl = s.get("ssl") or {}
        done = bool(ssl) and "net_error" not in ssl
        socks.append({"client_ip": lip, "client_port": int(lport), "t_open": s["t_open"], "t_close": s.get("t_close"),
                      "client_hello_sent": "client_random" in s, "client_random": s.get("client_random"),
                      "tls_established": done, "net_error": ssl.get("net_error"),
                      "requests": s.get("requests", [])})
        if not done:
            continue
        rows.append({
            "t_start": s["t_open"], "t_secure": s["t_secure"],
            "client_ip": lip, "client_port": int(lport), "server_ip": rip, "server_port": int(rport),
            "sni": s["sni"], "version": VERSIONS.get(ssl["version"], ssl["version"]),
            "cipher": SUITES.get(ssl["cipher_suite"], hex(ssl["cipher_suite"])),
            "alpn": ssl.get("next_proto") or None, "session_reused": bool(ssl["is_resumed"]),
            "client_random": s["client_random"], "alpn_offered": s["alpn_offered"],
            "key_exchange": GROUPS.get(ssl.get("key_exchange_group"), ssl.get("key_exchange_group")),
            "keylog": keylog.get(s["client_random"], []),
        })
    client["tls"] = rows
    client["sockets"] = socks
    client["keylog_all_lines"] = sum(len(v) for v in keylog.values())
    client["peer"] = f"{client['peer']} ({version()}, BoringSSL)"
    with open(path, "w") as f:
        json.dump(client, f, indent=1)


# ---------------------------------------------------------------------------------------------------
# truth: the HTTP requests and the TCP connections, from both peers


def http_truth(server: dict, client: dict, checks: list[str]) -> list[dict]:
    """Every HTTP request the server handled (page, script, polling, WebSocket upgrade), in order;
    each must be one Chromium wrote on the socket with that client port."""
    sent = {(s["client_port"], r["method"], r["target"]) for s in client["sockets"] for r in s["requests"]}
    # the handshake GET has no sid in its target: the session whose polling transport served it
    first_get = {(t["requests"][0]["client_port"], t["requests"][0]["method"]): t["sid"]
                 for t in server["transports"] if t["name"] == "polling" and t["requests"]}
    ws_sids = {p: t["sid"] for t in server["transports"] if t["name"] == "websocket" for p in t["client_ports"]}
    out = []
    for r in sorted(server["http"], key=lambda r: r["ts"]):
        path = r["target"].split("?")[0]
        if r.get("upgrade"):
            kind, sid, status = "websocket", ws_sids.get(r["client_port"]), 101
        elif path.startswith("/socket.io/") and "EIO=" in r["target"]:
            kind, status = "polling", r["status"]
            query = dict(kv.split("=", 1) for kv in r["target"].split("?", 1)[1].split("&") if "=" in kv)
            sid = query.get("sid") or first_get.get((r["client_port"], r["method"]))
        else:
            kind, sid, status = "page", None, r["status"]
        row = {"client_port": r["client_port"], "method": r["method"], "target": r["target"], "status": status,
               "body_bytes": r["body_bytes"], "content_encoding": r.get("content_encoding"),
               "transport": kind, "eio_sid": sid, "t_server": round(r["ts"], 6)}
        if r.get("upgrade"):
            row["upgrade"] = r["upgrade"]
        if (r["client_port"], r["method"], r["target"]) not in sent:
            checks.append(f"HTTP {r['method']} {r['target']} on client port {r['client_port']}: "
                          "not in Chromium's NetLog")
        out.append(row)
    if len(sent) != len({(x["client_port"], x["method"], x["target"]) for x in out}):
        checks.append(f"Chromium wrote {len(sent)} distinct requests, the server handled {len(out)}")
    return out


def tcp_truth(server: dict, client: dict, http: list[dict], checks: list[str]) -> list[dict]:
    """One row per TCP connection Chromium opened to the server: both peers' view."""
    srv = {c["client_port"]: c for c in server["tcp"]}
    rows = []
    for s in client["sockets"]:
        v = srv.pop(s["client_port"], None)
        if v is None:
            checks.append(f"TCP client port {s['client_port']}: the server never accepted it")
            continue
        if v["tls_established"] != s["tls_established"]:
            checks.append(f"TCP client port {s['client_port']}: TLS established client {s['tls_established']} "
                          f"!= server {v['tls_established']}")
        reqs = [r for r in http if r["client_port"] == s["client_port"]]
        rows.append({
            "client_ip": s["client_ip"], "client_port": s["client_port"],
            "tls_established": s["tls_established"], "client_hello_sent": s["client_hello_sent"],
            "client_random": s["client_random"], "client_net_error": s["net_error"],
            "server_tls_error": v["tls_error"],
            "http_requests": len(reqs), "carries": sorted({r["transport"] for r in reqs}),
            "unused": not reqs,
            "t_open_client": round(s["t_open"], 3), "t_close_client": round(s["t_close"], 3) if s["t_close"] else None,
            "t_open_server": round(v["t_open"], 6), "t_close_server": round(v["t_close"], 6) if v["t_close"] else None,
            "server_bytes_read": v["bytes_read"], "server_bytes_written": v["bytes_written"],
        })
    if srv:
        checks.append(f"TCP connections only the server saw: {sorted(srv)}")
    return rows
