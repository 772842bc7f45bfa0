#!/usr/bin/env python3
"""Python `websockets` server + client over TLS 1.2 (wss), logged with ../ws/lib/pylog.py
(unchanged) and lib/tlslog.py.

    python3 websockets_tls.py tls12_websockets_chacha|tls12_cbc RAWDIR CERTDIR PORT

tls12_websockets_chacha: one connection, TLS 1.2 forced (maximum_version), ECDHE-RSA-CHACHA20-POLY1305,
  ALPN http/1.1, permessage-deflate (websockets' default), text and binary both ways, a compressible
  text, a fragmented message, pings both ways, the client closes with 4000 "done with tls".
tls12_cbc: four connections, one after the other, each with a short exchange and a 1000 close:
  A ECDHE-RSA-AES128-SHA256 with encrypt_then_mac (OpenSSL's default), B the same suite with
  MAC-then-encrypt (the client sets SSL_OP_NO_ENCRYPT_THEN_MAC, so it does not offer the extension),
  C ECDHE-RSA-AES256-SHA384 (MAC-then-encrypt), D ECDHE-RSA-AES128-SHA (HMAC-SHA1, encrypt_then_mac).
The client chooses the suite of each connection (its cipher list holds just that one).
"""

import asyncio
import os
import ssl
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ws", "lib"))
sys.path.insert(0, os.path.join(HERE, "lib"))

from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402

from pylog import CountingClientConnection, CountingServerConnection, PeerLog  # noqa: E402
from tlslog import OP_NO_ENCRYPT_THEN_MAC, TlsLog, client_context, server_context  # noqa: E402

SCENARIO, RAW, CERTS, PORT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
SNI = "dissect.test"
TLS12 = ssl.TLSVersion.TLSv1_2


def pattern(n: int, seed: int) -> bytes:
    return bytes((i * 13 + seed) & 0xFF for i in range(n))


def tls_note(log: TlsLog, ws, role: str) -> None:
    sslobj = ws.transport.get_extra_info("ssl_object")
    local, remote = ws.local_address[:2], ws.remote_address[:2]
    client, server = (local, remote) if role == "client" else (remote, local)
    log.note(sslobj, client=client, server=server, sni=SNI if role == "client" else None)


# ---- the two sides of one connection, per scenario ----------------------------------------------

async def chacha_server(c) -> None:
    await c.send("hello over TLS 1.2 / ChaCha20-Poly1305")
    await c.next()  # text
    await c.next()  # binary
    await c.send(pattern(3000, 1))
    await c.next()  # compressible text
    await c.send("status: all systems nominal; " * 100)
    await c.next()  # fragmented text
    await c.next()  # "ping me"
    await c.ping(b"server-ping")
    await c.send("pinged")
    await c.done()


async def chacha_client(c) -> None:
    await c.next()
    await c.send("hello from the websockets client")
    await c.send(pattern(2000, 0))
    await c.next()
    await c.send("the same sentence again and again. " * 300)
    await c.next()
    await c.send_fragments(["fragment one, ", "fragment two, ", "fragment three"], ping_after=1, ping_data=b"cli-mid")
    await c.ping(b"client-ping")
    await c.send("ping me")
    await c.next()  # pinged
    await c.close(4000, "done with tls")
    await c.done()


async def short_server(c) -> None:
    m = await c.next()
    await c.send(f"echo: {m}")
    await c.next()  # binary
    await c.send(pattern(700, 2))
    await c.done()


async def short_client(c, label: str) -> None:
    await c.send(f"hello from {label} over CBC")
    await c.next()
    await c.send(pattern(1500, 3))
    await c.next()
    await c.close(1000, "")
    await c.done()


# connection label, client cipher list, client options
CBC_CONNS = [
    ("A", "ECDHE-RSA-AES128-SHA256", 0),
    ("B", "ECDHE-RSA-AES128-SHA256", OP_NO_ENCRYPT_THEN_MAC),
    ("C", "ECDHE-RSA-AES256-SHA384", OP_NO_ENCRYPT_THEN_MAC),
    ("D", "ECDHE-RSA-AES128-SHA", 0),
]


async def main() -> None:
    slog = PeerLog("server", scenario=SCENARIO)
    clog = PeerLog("client", scenario=SCENARIO)
    stls, ctls = TlsLog("server"), TlsLog("client")
    if SCENARIO == "tls12_websockets_chacha":
        sctx = server_context(CERTS, stls, os.path.join(RAW, "server.keys"), max_version=TLS12,
                              ciphers="ECDHE-RSA-CHACHA20-POLY1305", alpn=["http/1.1"])
        conns = [("A", dict(max_version=TLS12, alpn=["http/1.1"]))]
        server_side, client_side = chacha_server, lambda c, label: chacha_client(c)
    else:
        sctx = server_context(CERTS, stls, os.path.join(RAW, "server.keys"), max_version=TLS12,
                              ciphers=":".join(sorted({c for _, c, _ in CBC_CONNS})))
        conns = [(label, dict(max_version=TLS12, ciphers=cipher, options=opts)) for label, cipher, opts in CBC_CONNS]
        server_side, client_side = short_server, short_client
    sessions: asyncio.Queue = asyncio.Queue()

    async def handler(ws):
        tls_note(stls, ws, "server")
        try:
            await server_side(slog.attach(ws))
            await sessions.put(None)
        except Exception as e:  # surface errors in the scenario, not just in the server's log
            await sessions.put(e)

    async with serve(handler, "127.0.0.1", PORT, ssl=sctx, create_connection=CountingServerConnection,
                     ping_interval=None):
        for label, copts in conns:
            cctx = client_context(CERTS, ctls, os.path.join(RAW, "client.keys"), **copts)
            async with connect(f"wss://127.0.0.1:{PORT}/tls?conn={label}", ssl=cctx, server_hostname=SNI,
                               create_connection=CountingClientConnection, ping_interval=None) as ws:
                tls_note(ctls, ws, "client")
                await client_side(clog.attach(ws), label)
            err = await sessions.get()
            if err:
                raise err
    slog.data["tls"] = stls.dump()
    clog.data["tls"] = ctls.dump()
    clog.data["peer"] += f", {ssl.OPENSSL_VERSION}"
    slog.data["peer"] += f", {ssl.OPENSSL_VERSION}"
    slog.write(os.path.join(RAW, "server.json"))
    clog.write(os.path.join(RAW, "client.json"))


if __name__ == "__main__":
    asyncio.run(main())
