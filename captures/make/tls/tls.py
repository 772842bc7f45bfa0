#!/usr/bin/env python3
"""Run the TLS capture scenarios and write their truth files (and key logs).

    python3 tls.py run NAME        capture NAME into captures/NAME.pcap[ng], NAME.truth.json, NAME.keys
    python3 tls.py peers NAME DIR  (what runs under capture.py) the scenario's peers; logs go to DIR
    python3 tls.py list            the scenario names

Every peer logs its own traffic: the application layer with the recorders of ../sio and ../ws
(unchanged), the TLS layer with lib/tlslog.js / lib/tlslog.py (version, cipher, ALPN, resumption,
SNI, the ClientHello random and the key log lines of each connection). The truth is merged from those
logs only; the two peers' reports must agree. The capture is read afterwards only to confirm its format
and that it holds every connection from SYN to FIN (capinfos, tshark on TCP flags), and by check.py,
which compares the truth with what tshark decrypts with the key log.
"""

from __future__ import annotations

import importlib.util
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
PYTHON = os.environ.get("TLS_PYTHON", sys.executable)  # the interpreter with websockets (run.sh: .venv)
SNI = "dissect.test"


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sio = _load("sio_corpus", os.path.join(HERE, "..", "sio", "sio.py"))  # build_truth, capinfos, capture_ports
wsmerge = _load("ws_merge", os.path.join(HERE, "..", "ws", "merge.py"))  # merge_ws, merge_http, dumps
chromium = _load("tls_chromium", os.path.join(HERE, "chromium.py"))  # the browser scenario

CAP_LO_PCAP = sio.CAP_LO_PCAP
CAP_LO_PCAPNG = sio.CAP_LO_PCAPNG

SCENARIOS = {
    "tls13_sio4_polling_upgrade": {
        "port": 9401, "kind": "sio", "capture": CAP_LO_PCAPNG, "keys": "file",
        "server_args": ["--ping-interval", "300", "--ping-timeout", "1000", "--upgrade-delay", "750"],
        "about": "socket.io 4 over https/wss, TLS 1.3 (node defaults: TLS_AES_256_GCM_SHA384, no ALPN): polling "
                 "over a keep-alive https.Agent (2 TLS connections; the agent resumes the TLS 1.3 session for "
                 "the second one), the server holds the upgrade back 750 ms, then wss (a third, resumed, TLS "
                 "connection); events, acks both ways, binary events and a binary ack, '/' and '/chat', "
                 "pingInterval 300 ms, clean disconnect.",
    },
    "tls12_websockets_chacha": {
        "port": 9402, "kind": "ws", "capture": CAP_LO_PCAPNG, "keys": "file",
        "cmd": ["@PY", "websockets_tls.py", "tls12_websockets_chacha"],
        "about": "python websockets server and client over TLS 1.2 (forced), ECDHE-RSA-CHACHA20-POLY1305, ALPN "
                 "http/1.1, permessage-deflate; text and binary both ways, a fragmented message, pings both "
                 "ways, close 4000 'done with tls' from the client.",
    },
    "tls12_ws_aesgcm": {
        "port": 9403, "kind": "ws", "capture": CAP_LO_PCAP, "keys": "file",
        "cmd": ["node", "ws_tls.js"],
        "about": "node ws over TLS 1.2: connection A on 127.0.0.1 with ECDHE-RSA-AES128-GCM-SHA256, connection B "
                 "on ::1 (IPv6) with ECDHE-RSA-AES256-GCM-SHA384; no deflate; text/binary both ways, a 70 KB "
                 "message, a fragmented message each way, pings, close 1000 / 4001.",
    },
    "tls12_cbc": {
        "port": 9404, "kind": "ws", "capture": CAP_LO_PCAPNG, "keys": "file",
        "cmd": ["@PY", "websockets_tls.py", "tls12_cbc"],
        "about": "python websockets over TLS 1.2 CBC suites, four connections: A ECDHE-RSA-AES128-SHA256 with "
                 "encrypt_then_mac, B the same with MAC-then-encrypt, C ECDHE-RSA-AES256-SHA384 "
                 "MAC-then-encrypt, D ECDHE-RSA-AES128-SHA (HMAC-SHA1) encrypt_then_mac; a short exchange "
                 "and close 1000 on each.",
    },
    "tls_curl_https": {
        "port": 9405, "kind": "http", "capture": CAP_LO_PCAP, "keys": "file",
        "cmd": ["@PY", "https_scenarios.py", "tls_curl_https"],
        "about": "curl (HTTP/1.1, TLS 1.3 with TLS_AES_128_GCM_SHA256, ALPN http/1.1) to python http.server + "
                 "ssl: 4 requests on one keep-alive connection (the 4th asks Connection: close), then 2 on a "
                 "new connection that resumes the TLS session (curl's session cache).",
    },
    "tls_resumption": {
        "port": 9406, "kind": "http", "capture": CAP_LO_PCAPNG, "keys": "file",
        "cmd": ["@PY", "https_scenarios.py", "tls_resumption"],
        "about": "python http.client (ssl session= argument) to python http.server + ssl, one GET and one POST per "
                 "connection: TLS 1.2 full + resumed (session ticket), TLS 1.2 full + resumed by session ID "
                 "(client OP_NO_TICKET), TLS 1.3 full + resumed (PSK ticket).",
    },
    "tls13_dsb": {
        "port": 9407, "kind": "sio", "capture": CAP_LO_PCAPNG, "keys": "dsb",
        "server_args": ["--ciphers", "TLS_CHACHA20_POLY1305_SHA256"],
        "about": "socket.io 4 over wss only (TLS 1.3, TLS_CHACHA20_POLY1305_SHA256): '/' and '/chat', events, "
                 "acks both ways, a binary event, clean disconnect. The key log is embedded in the pcapng as a "
                 "Decryption Secrets Block (editcap --inject-secrets); no .keys file.",
    },
    "tls_nokeys": {
        "port": 9408, "kind": "sio", "capture": CAP_LO_PCAP, "keys": "none",
        "server_args": [],
        "about": "socket.io 4 over wss only (TLS 1.3, node defaults), the same traffic as tls13_dsb; its key log "
                 "is NOT shipped, so it cannot be decrypted: the truth gives SNI, version, cipher and ALPN as the "
                 "peers saw them.",
    },
    "tls_h2": {
        "port": 9409, "kind": "http", "capture": CAP_LO_PCAP, "keys": "file",
        "cmd": ["@PY", "https_scenarios.py", "tls_h2"],
        "about": "curl --http2 to node http2.createSecureServer (TLS 1.3, ALPN h2): three GETs and a POST on one "
                 "connection. HTTP/2, not HTTP/1: dissect must report ALPN h2 and not parse it.",
    },
    "tls13_chromium_sio4": {
        "port": 9450, "log_port": 9451, "kind": "browser", "capture": CAP_LO_PCAPNG, "keys": "file",
        "server_args": ["--ping-interval", "300", "--ping-timeout", "1000", "--upgrade-delay", "600"],
        "about": "a real browser: headless Chromium loads https://dissect.test:9450/ (the page, then "
                 "socket.io.min.js) and runs socket.io-client 4 in the page against socket.io 4 over https/wss, "
                 "TLS 1.3, ALPN http/1.1 (the server is HTTP/1.1-only; Chromium offers h2 and http/1.1); "
                 "default transports: polling (the server holds the upgrade back 600 ms), then the WebSocket "
                 "upgrade; '/' and '/chat', events, acks both ways, binary events and a binary ack, "
                 "pingInterval 300 ms, clean disconnect. Chromium opens more TCP connections than it uses "
                 "(preconnects) and resumes TLS 1.3 sessions; every TCP connection is in tcp_connections.",
    },
}

# IANA code points of the suites used (for check.py)
SUITE_CODES = {
    "TLS_AES_128_GCM_SHA256": 0x1301, "TLS_AES_256_GCM_SHA384": 0x1302, "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": 0xCCA8, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": 0xC02F,
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": 0xC030, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": 0xC027,
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384": 0xC028, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": 0xC013,
}
TLS13_LABELS = {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0",
                "SERVER_TRAFFIC_SECRET_0"}


def capture_path(name: str) -> str:
    return os.path.join(CAPTURES, name + (".pcapng" if SCENARIOS[name]["capture"]["format"] == "pcapng" else ".pcap"))


def make_cert(d: str) -> None:
    """A throw-away self-signed RSA certificate for dissect.test (test only, made at every run)."""
    os.makedirs(d, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/key.pem",
                    "-out", f"{d}/cert.pem", "-days", "30", "-subj", f"/CN={SNI}",
                    "-addext", f"subjectAltName=DNS:{SNI}"], check=True, capture_output=True)


# ---------------------------------------------------------------------------------------------------
# peers


def run_peers(name: str, tmp: str) -> int:
    sc = SCENARIOS[name]
    port = str(sc["port"])
    certs = os.path.join(tmp, "certs")
    if sc["kind"] == "browser":
        return chromium.run_peers(tmp, sc["port"], sc["log_port"], sc["server_args"])
    if sc["kind"] != "sio":
        cmd = [PYTHON if c == "@PY" else c for c in sc["cmd"]] + [tmp, certs, port]
        return subprocess.call(cmd, cwd=HERE, timeout=60)
    server_cmd = ["node", "sio4_tls_server.js", "--port", port, "--log", os.path.join(tmp, "server.json"),
                  "--cert", certs, *sc["server_args"]]
    client_cmd = ["node", "sio4_tls_client.js", "--scenario", name, "--port", port,
                  "--log", os.path.join(tmp, "client.json"), "--cert", certs]
    server = subprocess.Popen(server_cmd, cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        if line.strip() != "READY":
            print(f"server did not start: {line!r}", file=sys.stderr)
            return 1
        rc = subprocess.call(client_cmd, cwd=HERE, timeout=30)
        server.stdin.write("quit\n")
        server.stdin.flush()
        return rc or server.wait(timeout=15)
    finally:
        if server.poll() is None:
            server.kill()


# ---------------------------------------------------------------------------------------------------
# truth


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


COMPARED = ("server_ip", "server_port", "version", "cipher", "cipher_openssl", "alpn", "session_reused",
            "client_random", "sni", "server_random", "cipher_id", "encrypt_then_mac", "extended_master_secret")


def merge_tls(server: dict, client: dict, checks: list[str]) -> tuple[list[dict], list[str]]:
    """One row per TLS connection, from both peers' reports (which must agree); and the client's key
    log lines, in connection order."""
    srows = {(r.get("client_ip"), r.get("client_port")): r for r in server["tls"]}
    crows = sorted(client["tls"], key=lambda r: r["t_secure"] if r.get("t_secure") is not None else r["t_start"])
    rows, keylog = [], []
    for c in crows:
        k = (c.get("client_ip"), c.get("client_port"))
        s = srows.pop(k, None)
        if s is None:
            checks.append(f"TLS {k}: no server record")
            continue
        if not c.get("client_random") and s.get("client_random"):  # curl: its key log, matched by the random
            c["client_random"] = s["client_random"]
            c["keylog"] = [ln for ln in client.get("keylog", []) if ln.split(" ")[1] == c["client_random"]]
        for f in COMPARED:
            if f in c and f in s and c[f] != s[f]:
                checks.append(f"TLS {k}: {f} client {c[f]!r} != server {s[f]!r}")
        if sorted(c["keylog"]) != sorted(s["keylog"]):
            checks.append(f"TLS {k}: key log lines of client and server differ")
        labels = sorted({ln.split(" ")[0] for ln in c["keylog"]})
        need = TLS13_LABELS if c["version"] == "TLSv1.3" else {"CLIENT_RANDOM"}
        if not need <= set(labels):
            checks.append(f"TLS {k}: key log lacks {sorted(need - set(labels))}")
        row = {"client_ip": c["client_ip"], "client_port": c["client_port"], "server_ip": c["server_ip"],
               "server_port": c["server_port"], "sni": s.get("sni")}
        # what both peers report (checked equal above); where the client cannot tell (curl does not
        # say whether the server accepted the session it offered), the server's word
        for f in ("version", "cipher", "cipher_openssl", "alpn", "session_reused", "client_random"):
            row[f] = c[f] if c.get(f) is not None else s.get(f)
        for f in ("session_offered", "resumes_client_port", "alpn_offered", "server_random", "server_hello_extensions",
                  "encrypt_then_mac", "extended_master_secret", "key_exchange"):
            if f in c or f in s:
                row[f] = c.get(f, s.get(f))
        row["keylog_labels"] = labels
        row["reported_by"] = {"client": client["peer"], "server": server["peer"]}
        row["t_client_secure"] = round(c["t_secure"], 6) if c.get("t_secure") is not None else None
        rows.append(row)
        keylog += c["keylog"]
    if srows:
        checks.append(f"TLS connections only the server saw: {sorted(srows)}")
    return rows, keylog


def sio_http(server: dict) -> list[dict]:
    """The HTTP requests the socket.io server handled: polling GET/POSTs and the WebSocket upgrade."""
    out = []
    for t in server["transports"]:
        for r in t["requests"]:
            out.append({"client_port": r["client_port"], "method": r["method"], "transport": "polling",
                        "eio_sid": t["sid"], "t_server": round(r["ts"], 6)})
        if t["name"] == "websocket":
            for p in t["client_ports"]:
                out.append({"client_port": p, "method": "GET", "transport": "websocket", "upgrade": "websocket",
                            "status": 101, "eio_sid": t["sid"]})
    return out


def build_truth(name: str, tmp: str, capture_file: str) -> tuple[dict, list[str]]:
    sc = SCENARIOS[name]
    server = load(os.path.join(tmp, "server.json"))
    client = load(os.path.join(tmp, "client.json"))
    checks: list[str] = []
    if sc["kind"] in ("sio", "browser"):
        sio.SCENARIOS[name] = {"port": sc["port"], "lib": "sio4", "capture": sc["capture"], "about": sc["about"]}
        truth = sio.build_truth(name, tmp, capture_file)
        checks += truth["checks"]["problems"]
        truth["http"] = sio_http(server)
        if sc["kind"] == "browser":
            truth["http"] = chromium.http_truth(server, client, checks)
            truth["tcp_connections"] = chromium.tcp_truth(server, client, truth["http"], checks)
            checks += [f"page: {e}" for e in client.get("page_errors") or []]
            checks += [f"page log: {p}" for p in client.get("browserlog_problems") or []]
    else:
        cap = sc["capture"]
        truth = {"capture": os.path.basename(capture_file), "about": sc["about"],
                 "peers": {"server": server["peer"], "client": client["peer"]},
                 "capture_tool": f"{cap['tool']} -i {cap['iface']}", "link": cap["link"], "format": cap["format"],
                 "ts_precision": cap["ts_precision"], "server_port": sc["port"]}
        try:
            if sc["kind"] == "ws":
                truth["connections"], truth["http"] = wsmerge.merge_ws(server, client)
            else:
                truth["http"] = wsmerge.merge_http(server, client)
        except wsmerge.Mismatch as e:
            checks.append(f"peers disagree: {e}")
        ci = sio.capinfos(capture_file)
        for k in ("link", "format"):
            if ci[k] != cap[k]:
                checks.append(f"capture {k} is {ci[k]}, expected {cap[k]}")
    truth["generator"] = f"captures/make/tls/run.sh {name}"
    truth["server_ip"] = server["tls"][0]["server_ip"] if server.get("tls") else None

    rows, keylog = merge_tls(server, client, checks)
    ports = {r["client_port"] for r in rows}
    syn, end = sio.capture_ports(capture_file, sc["port"])
    if not ports <= syn or not ports <= end:
        checks.append(f"capture lacks the SYN or FIN/RST of client ports {sorted(ports - (syn & end))}")
    keys = {"file": {"shipped": True, "where": "file", "file": f"{name}.keys", "lines": len(keylog)},
            "dsb": {"shipped": True, "where": "dsb", "file": None, "lines": len(keylog),
                    "note": "embedded in the pcapng as a Decryption Secrets Block (secrets type TLSK)"},
            "none": {"shipped": False, "where": None, "file": None, "lines": 0,
                     "note": "the key log was not kept: this capture cannot be decrypted"}}[sc["keys"]]
    if keys["shipped"]:
        keys["written_by"] = "the client peer (its TLS stack's NSS key log), checked equal to the server's"
    truth["tls"] = {"sni": SNI, "keys": keys, "connections": rows}
    truth["checks"] = {"ok": not checks, "problems": checks,
                       "notes": truth.get("checks", {}).get("notes", [])}
    return truth, keylog


def run(name: str, keep: bool = False) -> int:
    sc = SCENARIOS[name]
    cap = sc["capture"]
    out = capture_path(name)
    tmp = tempfile.mkdtemp(prefix=f"{name}.")
    make_cert(os.path.join(tmp, "certs"))
    raw = out if sc["keys"] != "dsb" else os.path.join(tmp, "raw.pcapng")
    cmd = [sys.executable, CAPTURE_PY, "--out", raw, "--tool", cap["tool"], "--iface", cap["iface"],
           "--filter", f"tcp port {sc['port']}", "--settle", "1.5"]
    if cap.get("pcap"):
        cmd.append("--pcap")
    cmd += ["--", sys.executable, os.path.abspath(__file__), "peers", name, tmp]
    t0 = time.time()
    for ext in (".pcap", ".pcapng", ".keys", ".truth.json"):
        if os.path.exists(os.path.join(CAPTURES, name + ext)):
            os.unlink(os.path.join(CAPTURES, name + ext))
    rc = subprocess.call(cmd)
    if rc != 0:
        print(f"{name}: peers failed (rc={rc}); logs in {tmp}", file=sys.stderr)
        return rc
    truth, keylog = build_truth(name, tmp, raw)
    truth["capture"] = os.path.basename(out)  # (tls13_dsb: the file with the secrets injected)
    header = [f"# NSS key log of captures/{os.path.basename(out)} (written by the client peer; "
              "test-only throw-away certificate)"]
    keyfile = os.path.join(tmp, "keys.txt")
    with open(keyfile, "w") as f:
        f.write("\n".join(header + keylog) + "\n")
    if sc["keys"] == "file":
        shutil.copy(keyfile, os.path.join(CAPTURES, name + ".keys"))
        os.chmod(os.path.join(CAPTURES, name + ".keys"), 0o644)
    elif sc["keys"] == "dsb":
        subprocess.run(["editcap", "--inject-secrets", f"tls,{keyfile}", raw, out], check=True)
    os.chmod(out, 0o644)
    with open(os.path.join(CAPTURES, name + ".truth.json"), "w") as f:
        f.write(wsmerge.dumps(truth) + "\n")
    size = os.path.getsize(out)
    status = "ok" if truth["checks"]["ok"] else "CHECKS FAILED: " + "; ".join(truth["checks"]["problems"])
    print(f"{name}: {os.path.basename(out)} {size} bytes, {len(truth['tls']['connections'])} TLS connections, "
          f"{time.time() - t0:.1f}s, {status}")
    if keep or not truth["checks"]["ok"]:
        print(f"  peer logs kept in {tmp}")
    else:
        shutil.rmtree(tmp)
    return 0 if truth["checks"]["ok"] else 2


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "peers", "list"):
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
    return run(name, keep="--keep" in argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
