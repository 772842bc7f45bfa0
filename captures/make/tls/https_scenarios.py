#!/usr/bin/env python3
"""HTTPS scenarios: each peer logs its own requests and TLS connections into RAWDIR.

    python3 https_scenarios.py tls_curl_https|tls_resumption|tls_h2 RAWDIR CERTDIR PORT

tls_curl_https  python http.server + ssl (HTTP/1.1, ALPN http/1.1, TLS 1.3) and ONE curl run: 4 requests
                on one keep-alive connection (the 4th sends Connection: close, so the server closes),
                then 2 on a new connection, for which curl offers the TLS session it cached (TLS 1.3
                ticket). curl reports per request (-w '%{json}') and, with -v, per connection (version,
                cipher, ALPN, "SSL re-using session ID"); its key log is SSLKEYLOGFILE. The server logs
                every request and every TLS connection (session_reused as the ssl module reports it).
tls_resumption  the same server; python http.client over sockets wrapped with SSLContext.wrap_socket(
                session=...): a GET and a POST per connection, three pairs (full handshake, then resumed
                with the first one's session): TLS 1.2 with a session ticket, TLS 1.2 by session ID
                (client OP_NO_TICKET), TLS 1.3 (PSK from a NewSessionTicket).
tls_h2          curl --http2 to node http2.createSecureServer (h2_server.js): 4 requests on one
                HTTP/2 connection (ALPN h2).
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from tlslog import IANA, TlsLog, client_context, server_context  # noqa: E402

SCENARIO, RAW, CERTS, PORT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
SNI = "dissect.test"
HOST = "127.0.0.1"

PAGE = ("<html><body>" + "dissect TLS test page. " * 60 + "</body></html>\n").encode()
ITEMS = json.dumps({"items": [{"id": i, "name": f"item {i}"} for i in range(20)]}).encode()
CHUNKS = [b"a" * 100, b"b" * 1500, b"c" * 7]
LOG: list[dict] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dissect-tls-test/1.0"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args):
        pass

    def parse_request(self):
        self.t0 = time.time()
        return super().parse_request()

    def record(self, status, body_bytes, content_length=None, chunks=None, request_body=0):
        LOG.append({"client_port": self.client_address[1], "method": self.command, "target": self.path,
                    "status": status, "content_length": content_length,
                    "transfer_encoding": "chunked" if chunks else None, "chunks": chunks,
                    "body_bytes": body_bytes, "request_body_bytes": request_body,
                    "connection_close": self.headers.get("Connection", "").lower() == "close",
                    "interim_statuses": [], "t_server": round(self.t0, 6)})

    def fixed(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if self.headers.get("Connection", "").lower() == "close":
            self.send_header("Connection", "close")  # so curl does not try to reuse the connection
        self.end_headers()
        self.wfile.write(body)
        return len(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/index.html":
            self.record(200, self.fixed(200, PAGE, "text/html"), len(PAGE))
        elif path == "/api/items":
            self.record(200, self.fixed(200, ITEMS, "application/json"), len(ITEMS))
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for c in CHUNKS:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
            self.wfile.write(b"0\r\n\r\n")
            self.record(200, sum(map(len, CHUNKS)), None, [len(c) for c in CHUNKS])
        else:
            body = b'{"error":"not found"}'
            self.record(404, self.fixed(404, body, "application/json"), len(body))

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"received": len(data)}).encode()
        self.record(201, self.fixed(201, body, "application/json"), len(body), request_body=len(data))


class TLSHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, ctx, tlslog):
        self.ctx, self.tlslog = ctx, tlslog
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        ssock = self.ctx.wrap_socket(sock, server_side=True)  # the handshake, in the accepting thread
        self.tlslog.note(ssock, client=addr[:2], server=ssock.getsockname()[:2])
        return ssock, addr

    def shutdown_request(self, request):
        # close_notify before closing: OpenSSL drops a session from the server's cache when its
        # connection ends without one, and TLS 1.2 session-ID resumption would then fail
        try:
            request.unwrap()
        except (OSError, ValueError):
            pass
        super().shutdown_request(request)


def start_server(stls: TlsLog) -> TLSHTTPServer:
    ctx = server_context(CERTS, stls, os.path.join(RAW, "server.keys"), alpn=["http/1.1"])
    httpd = TLSHTTPServer((HOST, PORT), ctx, stls)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def server_peer() -> str:
    return f"python http.server ({Handler.server_version}, Python {platform.python_version()}, {ssl.OPENSSL_VERSION})"


def write(role: str, data: dict) -> None:
    with open(os.path.join(RAW, f"{role}.json"), "w") as f:
        json.dump({"role": role, **data}, f, indent=1)


# ---- curl ----------------------------------------------------------------------------------------

def curl(reqs: list[list[str]], common: list[str], keylog: str) -> tuple[list[dict], str]:
    args = ["curl"]
    for i, r in enumerate(reqs):
        if i:
            args.append("--next")
        args += common + ["-s", "-v", "-o", "/dev/null", "-w", "%{json}\\n", "--cacert", f"{CERTS}/cert.pem",
                          "--resolve", f"{SNI}:{PORT}:{HOST}"] + r
    p = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "SSLKEYLOGFILE": keylog},
                       timeout=30)
    if p.returncode:
        sys.exit(f"curl failed: {p.returncode} {p.stderr[-2000:]}")
    return [json.loads(line) for line in p.stdout.splitlines()], p.stderr


def curl_tls(out: list[dict], verbose: str) -> list[dict]:
    """One row per connection curl opened, from its -v lines (in order), with the local port from -w."""
    blocks = re.split(r"\n\* Connected to ", "\n" + verbose)[1:]
    new_ports = [j["local_port"] for j in out if j["num_connects"]]
    if len(blocks) != len(new_ports):
        sys.exit(f"curl: {len(blocks)} connections in -v, {len(new_ports)} new connections in -w")
    rows = []
    for port, b in zip(new_ports, blocks):
        m = re.search(r"SSL connection using (\S+) / (\S+)", b)
        alpn = re.search(r"ALPN: server accepted (\S+)", b)
        name = m.group(2)
        # curl gives no times: t_start is the connection's rank
        rows.append({"t_start": len(rows), "t_secure": None, "client_ip": HOST, "client_port": port,
                     "server_ip": HOST, "server_port": PORT, "sni": SNI, "version": m.group(1),
                     "cipher": IANA.get(name, name), "cipher_openssl": name,
                     "alpn": alpn.group(1) if alpn else None,
                     "session_offered": "SSL re-using session ID" in b, "keylog": []})
    return rows


def curl_http(out: list[dict], version: str) -> list[dict]:
    return [{"client_port": j["local_port"], "method": j["method"], "status": j["http_code"],
             "body_bytes": j["size_download"], "url": j["url_effective"], "num_connects": j["num_connects"],
             "http_version": j["http_version"]} for j in out]


def read_keylog(path: str) -> list[str]:
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


def curl_version() -> str:
    return "curl " + subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]


def tls_curl_https() -> None:
    stls = TlsLog("server")
    httpd = start_server(stls)
    base = f"https://{SNI}:{PORT}"
    common = ["--http1.1", "--tlsv1.3", "--tls13-ciphers", "TLS_AES_128_GCM_SHA256"]
    reqs = [[f"{base}/index.html"], [f"{base}/chunked"],
            ["-H", "Content-Type: application/octet-stream", "--data-binary", "p" * 300, f"{base}/submit"],
            ["-H", "Connection: close", f"{base}/api/items"],
            [f"{base}/index.html?again=1"], [f"{base}/missing"]]
    keys = os.path.join(RAW, "client.keys")
    out, verbose = curl(reqs, common, keys)
    time.sleep(0.2)
    httpd.shutdown()
    httpd.server_close()
    write("server", {"peer": server_peer(), "http": LOG, "tls": stls.dump()})
    write("client", {"peer": curl_version(), "http": curl_http(out, "1.1"), "tls": curl_tls(out, verbose),
                     "keylog": read_keylog(keys)})
    if sum(j["num_connects"] for j in out) != 2:
        sys.exit("curl did not use exactly two connections")


# ---- python client with explicit resumption -------------------------------------------------------

class TLSConnection(http.client.HTTPConnection):
    """http.client over a socket wrapped with a given context and session (HTTPSConnection cannot
    pass session=)."""

    def __init__(self, ctx, session):
        super().__init__(HOST, PORT, timeout=10)
        self.ctx, self.session = ctx, session

    def connect(self):
        super().connect()
        self.sock = self.ctx.wrap_socket(self.sock, server_hostname=SNI, session=self.session)


def tls_resumption() -> None:
    stls, ctls = TlsLog("server"), TlsLog("client")
    httpd = start_server(stls)
    keys = os.path.join(RAW, "client.keys")
    pairs = [("tls12_ticket", dict(max_version=ssl.TLSVersion.TLSv1_2)),
             ("tls12_session_id", dict(max_version=ssl.TLSVersion.TLSv1_2, options=ssl.OP_NO_TICKET)),
             ("tls13_psk", dict(min_version=ssl.TLSVersion.TLSv1_3))]
    http_rows = []
    for label, opts in pairs:
        ctx = client_context(CERTS, ctls, keys, alpn=["http/1.1"], **opts)
        session, first_port = None, None
        for attempt in ("full", "resumed"):
            conn = TLSConnection(ctx, session)
            conn.connect()
            local = conn.sock.getsockname()[:2]
            row = ctls.note(conn.sock, client=local, server=conn.sock.getpeername()[:2], sni=SNI,
                            label=f"{label}/{attempt}", session_offered=session is not None)
            if session is not None:
                row["resumes_client_port"] = first_port
            for method, target, body in (("GET", f"/index.html?conn={label}-{attempt}", None),
                                         ("POST", "/submit", b"r" * 200)):
                conn.request(method, target, body=body, headers={"Content-Type": "application/octet-stream"}
                             if body else {})
                resp = conn.getresponse()
                data = resp.read()
                http_rows.append({"client_port": local[1], "method": method, "status": resp.status,
                                  "body_bytes": len(data), "url": target})
            session, first_port = conn.sock.session, local[1]
            conn.sock.unwrap()  # close_notify both ways
            conn.close()
            time.sleep(0.05)
    time.sleep(0.2)
    httpd.shutdown()
    httpd.server_close()
    write("server", {"peer": server_peer(), "http": LOG, "tls": stls.dump()})
    write("client", {"peer": f"python http.client (Python {platform.python_version()}, {ssl.OPENSSL_VERSION})",
                     "http": http_rows, "tls": ctls.dump()})
    for r in ctls.rows:
        if r["session_offered"] and not r["session_reused"]:
            sys.exit(f"{r['label']}: the session was not resumed")


# ---- HTTP/2 --------------------------------------------------------------------------------------

def tls_h2() -> None:
    server = subprocess.Popen(["node", os.path.join(HERE, "h2_server.js"), RAW, CERTS, str(PORT)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout.readline().strip() != "READY":
            sys.exit("h2 server did not start")
        base = f"https://{SNI}:{PORT}"
        reqs = [[f"{base}/index.html"], [f"{base}/api/items"],
                ["-H", "Content-Type: application/octet-stream", "--data-binary", "h" * 500, f"{base}/submit"],
                [f"{base}/missing"]]
        keys = os.path.join(RAW, "client.keys")
        out, verbose = curl(reqs, ["--http2"], keys)
        server.stdin.write("quit\n")
        server.stdin.flush()
        if server.wait(timeout=10):
            sys.exit("h2 server failed")
    finally:
        if server.poll() is None:
            server.kill()
    write("client", {"peer": curl_version(), "http": curl_http(out, "2"), "tls": curl_tls(out, verbose),
                     "keylog": read_keylog(keys)})


if __name__ == "__main__":
    {"tls_curl_https": tls_curl_https, "tls_resumption": tls_resumption, "tls_h2": tls_h2}[SCENARIO]()
