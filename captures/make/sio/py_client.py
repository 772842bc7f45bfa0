"""python-socketio AsyncClient for the sio_python scenario (server: py_server.py).

    python py_client.py --scenario sio_python --port 9321 --log client.json
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pyrecord import Recorder

rec = Recorder("client")  # wraps python-engineio before any traffic

import socketio  # noqa: E402
from importlib.metadata import version  # noqa: E402


def pattern(n: int, seed: int) -> bytes:
    return bytes((seed + i * 7) & 0xFF for i in range(n))


sio = socketio.AsyncClient(reconnection=False)
seen: dict[str, asyncio.Event] = {}


def arrived(event: str) -> asyncio.Event:
    return seen.setdefault(event, asyncio.Event())


def on(event, namespace="/", reply=None):
    """Handle `event`: log it, answer with reply() if given (an ack), and flag its arrival."""

    async def handler(*args):
        rec.app("recv_event", label="A", namespace=namespace, eio_sid=rec.sid, event=event)
        arrived(f"{namespace}{event}").set()
        if reply is not None:
            rec.app("ack_sent", label="A", namespace=namespace, eio_sid=rec.sid, event=event)
            return reply(*args)
        return None

    sio.on(event, handler, namespace=namespace)


on("welcome")
on("download")
on("answer noted")
on("server question", reply=lambda q: {"a": 42})
on("chat welcome", namespace="/chat", reply=lambda d: {"thanks": True})


@sio.event
async def disconnect(reason=None):
    rec.app("disconnect", label="A", namespace="/", eio_sid=rec.sid, reason=str(reason))
    rec.close_reason = str(reason)


async def call(event, data, namespace="/"):
    res = await sio.call(event, data, namespace=namespace, timeout=2)
    rec.app("ack_received", label="A", namespace=namespace, eio_sid=rec.sid, event=event)
    return res


async def wait(key):
    await asyncio.wait_for(arrived(key).wait(), 3)


async def scenario(port: int):
    await sio.connect(f"http://127.0.0.1:{port}", namespaces=["/", "/chat"], wait_timeout=5)
    rec.app("connect", label="A", namespace="/", eio_sid=rec.sid)
    await sio.emit("hello", {"name": "A"})
    await wait("/welcome")
    await call("chat message", "hello from python")
    await call("upload", pattern(3072, 1))
    await sio.emit("pair", {"a": pattern(16, 2), "b": pattern(32, 4)})
    await wait("/download")
    await wait("/chatchat welcome")
    await call("chat message", "hello chat room", namespace="/chat")
    await sio.emit("ask me")
    await wait("/answer noted")
    await asyncio.sleep(1.2)  # ping/pong (pingInterval 1 s)
    if sio.eio.ws is not None:
        sock = sio.eio.ws.get_extra_info("sockname")
        if sock:
            rec.ws_ports.append(sock[1])
    rec.app("close_action", label="A", eio_sid=rec.sid, action="disconnect")
    await sio.disconnect()
    await asyncio.sleep(0.1)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    opt = ap.parse_args()
    rc = 0
    try:
        await scenario(opt.port)
    except Exception as e:  # keep the log for the post-mortem
        print(f"client failed: {e!r}", file=sys.stderr)
        rc = 1
    rec.extra["peer"] = f"python-socketio {version('python-socketio')} AsyncClient / python-engineio {version('python-engineio')} (aiohttp {version('aiohttp')}, python {sys.version.split()[0]})"
    rec.extra["scenario"] = opt.scenario
    rec.dump(opt.log)
    return rc


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
