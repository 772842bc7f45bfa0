#!/usr/bin/env python3
"""udp_exchange: a UDP client and server (stdlib sockets) in lock-step: the client sends ten
datagrams of fixed sizes (one of them empty), the server answers each with a datagram of its own
fixed size (one empty, one 8000 bytes). Both sides log every datagram they send and receive.

    python3 udp_exchange.py RAWDIR [PORT]
"""

import json
import os
import platform
import socket
import sys
import threading
import time

RAW = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 9390
C2S = [0, 1, 16, 100, 512, 1000, 1400, 1472, 4000, 9000]
S2C = [64, 1, 32, 200, 256, 1500, 700, 0, 8000, 12]
PEER = f"python {platform.python_version()} socket (UDP)"


def now_ms() -> float:
    return time.time_ns() / 1e6


def payload(n: int, seed: int) -> bytes:
    return bytes((i + seed) & 0xFF for i in range(n))


def server(sock: socket.socket, log: dict) -> None:
    for i, n in enumerate(S2C):
        data, peer = sock.recvfrom(65535)
        log["received"].append(len(data))
        log["peer_port"] = peer[1]
        log["sent_log"].append((now_ms(), n))
        sock.sendto(payload(n, i), peer)
        log["sent"].append(n)


def main() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", PORT))
    srv.settimeout(5)
    slog = {"local_port": PORT, "sent": [], "received": [], "sent_log": []}
    t = threading.Thread(target=server, args=(srv, slog))
    t.start()

    cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cli.bind(("127.0.0.1", 0))
    cli.settimeout(5)
    clog = {"local_port": cli.getsockname()[1], "sent": [], "received": [], "sent_log": []}
    for i, n in enumerate(C2S):
        clog["sent_log"].append((now_ms(), n))
        cli.sendto(payload(n, 100 + i), ("127.0.0.1", PORT))
        clog["sent"].append(n)
        data, _ = cli.recvfrom(65535)
        clog["received"].append(len(data))
    t.join()
    cli.close()
    srv.close()
    with open(os.path.join(RAW, "udp_exchange.server.json"), "w") as f:
        json.dump({"role": "server", "peer": PEER, "udp": slog}, f, indent=1)
    with open(os.path.join(RAW, "udp_exchange.client.json"), "w") as f:
        json.dump({"role": "client", "peer": PEER, "udp": clog}, f, indent=1)


if __name__ == "__main__":
    main()
