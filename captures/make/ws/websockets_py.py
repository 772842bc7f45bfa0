#!/usr/bin/env python3
"""websockets_py: python `websockets` server + client (asyncio implementation), default
permessage-deflate (client offers client_max_window_bits; the server answers
server_max_window_bits=12; client_max_window_bits=12). Text and binary both ways, a larger
compressible text, fragmented messages both ways sent from async iterators with a ping between
fragments (websockets ends them with an empty final continuation frame), pings both ways,
close 1000 from the client.

    python3 websockets_py.py RAWDIR [PORT]
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402

from pylog import CountingClientConnection, CountingServerConnection, PeerLog  # noqa: E402

RAW = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 9355


def pattern(n: int, seed: int) -> bytes:
    return bytes((i * 13 + seed) & 0xFF for i in range(n))


async def server_session(c) -> None:
    await c.send("hello from websockets server")
    await c.next()  # text
    await c.next()  # binary
    await c.send(pattern(3000, 1))
    await c.next()  # large text
    await c.send("status: all systems nominal; " * 100)
    await c.next()  # fragmented text
    await c.send_fragments([pattern(200, 2), pattern(1, 3), pattern(150, 4)], ping_after=0, ping_data=b"srv-mid")
    await c.next()  # "ping me"
    await c.ping(b"server-ping")
    await c.send("pinged")
    await c.done()


async def main() -> None:
    slog = PeerLog("server", scenario="websockets_py")
    clog = PeerLog("client", scenario="websockets_py")
    session_done = asyncio.get_running_loop().create_future()

    async def handler(ws):
        try:
            await server_session(slog.attach(ws))
            session_done.set_result(None)
        except Exception as e:  # surface errors in the scenario, not just in the server's log
            session_done.set_exception(e)

    async with serve(handler, "127.0.0.1", PORT, create_connection=CountingServerConnection,
                     ping_interval=None):
        async with connect(f"ws://127.0.0.1:{PORT}/py?room=1", create_connection=CountingClientConnection,
                           ping_interval=None) as ws:
            c = clog.attach(ws)
            await c.next()  # hello
            await c.send("hello from websockets client")
            await c.send(pattern(2000, 0))
            await c.next()
            await c.send("the same sentence again and again. " * 300)
            await c.next()
            await c.send_fragments(["fragment one, ", "fragment two, ", "fragment three"], ping_after=1,
                                   ping_data=b"cli-mid")
            await c.next()
            await c.ping(b"client-ping")
            await c.send("ping me")
            await c.next()  # pinged
            await c.close(1000, "")
            await c.done()
        await session_done
    slog.write(os.path.join(RAW, "websockets_py.server.json"))
    clog.write(os.path.join(RAW, "websockets_py.client.json"))


if __name__ == "__main__":
    asyncio.run(main())
