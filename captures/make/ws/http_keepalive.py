#!/usr/bin/env python3
"""http_keepalive: python http.server (HTTP/1.1) and one curl run making nine requests on ONE
keep-alive connection: 200 with Content-Length, 200 chunked (4 chunks), HEAD, 204, 304
(If-None-Match), POST with a small body (201), POST with a 2000-byte body (curl sends
Expect: 100-continue, the server answers an interim 100 Continue first), a 404, and a last 200.

The server logs what it received and sent per request; curl reports per URL (-w '%{json}') its
status, body size, local port and whether it opened a new connection. Both go to RAWDIR.

    python3 http_keepalive.py RAWDIR [PORT]
"""

import json
import os
import platform
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

RAW = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 9360
BASE = f"http://127.0.0.1:{PORT}"

PAGE = ("<html><body>" + "dissect keep-alive test page. " * 50 + "</body></html>\n").encode()
CHUNKS = [b"a" * 100, b"b" * 2000, b"c" * 5, b"d"]
LOG: list[dict] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dissect-test/1.0"

    def log_message(self, *args):  # keep stderr quiet
        pass

    def handle_expect_100(self):
        self.interim.append(100)
        return super().handle_expect_100()

    def parse_request(self):
        self.interim = []
        self.t0 = time.time()
        return super().parse_request()

    def record(self, status, body_bytes, content_length=None, chunks=None, request_body=0):
        LOG.append({
            "client_port": self.client_address[1],
            "method": self.command,
            "target": self.path,
            "status": status,
            "content_length": content_length,
            "transfer_encoding": "chunked" if chunks else None,
            "chunks": chunks,
            "body_bytes": body_bytes,
            "request_body_bytes": request_body,
            "request_headers": {k: self.headers[k] for k in ("If-None-Match", "Expect", "Content-Length")
                                if k in self.headers},
            "interim_statuses": self.interim,
            "t_server": round(self.t0, 6),
        })

    def send_fixed(self, status, body, head=False, extra=()):
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        if status not in (204, 304):
            self.send_header("Content-Type", "text/html" if body is PAGE else "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = 0
        if not head and status not in (204, 304):
            self.wfile.write(body)
            sent = len(body)
        cl = len(body) if status not in (204, 304) else None
        return sent, cl

    def do_GET(self, head=False):
        if self.path.startswith("/index.html"):
            sent, cl = self.send_fixed(200, PAGE, head, [("ETag", '"v1"')])
            self.record(200, sent, cl)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for c in CHUNKS:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.record(200, sum(map(len, CHUNKS)), None, [len(c) for c in CHUNKS])
        elif self.path == "/nothing":
            self.send_fixed(204, b"")
            self.record(204, 0)
        elif self.path == "/etag":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_fixed(304, b"", extra=[("ETag", '"v1"')])
                self.record(304, 0)
            else:
                sent, cl = self.send_fixed(200, b'{"v":1}', extra=[("ETag", '"v1"')])
                self.record(200, sent, cl)
        else:
            body = b'{"error":"not found"}'
            sent, cl = self.send_fixed(404, body, head)
            self.record(404, sent, cl)

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        data = self.rfile.read(n)
        body = json.dumps({"received": len(data)}).encode()
        sent, cl = self.send_fixed(201, body)
        self.record(201, sent, cl, request_body=len(data))


def curl_args() -> list[str]:
    w = ["-s", "--http1.1", "-o", "/dev/null", "-w", "%{json}\\n"]
    reqs = [
        [f"{BASE}/index.html"],
        [f"{BASE}/chunked"],
        ["-I", f"{BASE}/index.html"],
        [f"{BASE}/nothing"],
        ["-H", 'If-None-Match: "v1"', f"{BASE}/etag"],
        ["-H", "Content-Type: application/octet-stream", "--data-binary", "p" * 300, f"{BASE}/submit"],
        ["-H", "Content-Type: application/octet-stream", "-H", "Expect: 100-continue", "--data-binary", "q" * 2000, f"{BASE}/upload"],
        [f"{BASE}/missing"],
        [f"{BASE}/index.html?again=1"],
    ]
    args = ["curl"]
    for i, r in enumerate(reqs):
        if i:
            args.append("--next")
        args += w + r
    return args


def main() -> None:
    httpd = HTTPServer(("127.0.0.1", PORT), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    out = subprocess.run(curl_args(), check=True, capture_output=True, text=True).stdout
    time.sleep(0.2)
    httpd.shutdown()
    httpd.server_close()
    client = []
    for line in out.splitlines():
        j = json.loads(line)
        client.append({
            "client_port": j["local_port"], "method": j["method"], "status": j["http_code"],
            "body_bytes": j["size_download"], "url": j["url_effective"], "num_connects": j["num_connects"],
            "size_request": j["size_request"], "size_upload": j["size_upload"], "size_header": j["size_header"],
        })
    ver = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]
    srv_peer = f"python http.server ({Handler.server_version}, {Handler.sys_version})"
    with open(os.path.join(RAW, "http_keepalive.server.json"), "w") as f:
        json.dump({"role": "server", "peer": srv_peer, "http": LOG}, f, indent=1)
    with open(os.path.join(RAW, "http_keepalive.client.json"), "w") as f:
        json.dump({"role": "client", "peer": f"curl {ver}", "http": client}, f, indent=1)
    ports = {c["client_port"] for c in client}
    if len(ports) != 1 or sum(c["num_connects"] for c in client) != 1:
        sys.exit(f"curl did not keep one connection: ports {ports}")


if __name__ == "__main__":
    main()
