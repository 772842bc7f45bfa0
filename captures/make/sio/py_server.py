"""python-socketio (asyncio, aiohttp) server for the sio_python scenario.

    python py_server.py --port 9321 --log server.json
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pyrecord import Recorder

rec = Recorder("server")  # wraps python-engineio before any traffic

import socketio  # noqa: E402
from aiohttp import web  # noqa: E402
from importlib.metadata import version  # noqa: E402


def pattern(n: int, seed: int) -> bytes:
    return bytes((seed + i * 7) & 0xFF for i in range(n))


# python-engineio announces int(ping_interval) * 1000 ms: a fractional interval would be announced as 0
sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=1, ping_timeout=1)

# note the client's TCP port of every HTTP request (each polling request and the WebSocket upgrade)
_handle = sio.eio.handle_request


async def handle_request(request, *a, **kw):
    peer = request.transport.get_extra_info("peername") if request.transport else None
    rec.note_request(request.method, request.query.get("transport", ""), peer[1] if peer else None)
    return await _handle(request, *a, **kw)


sio.eio.handle_request = handle_request
app = web.Application()
sio.attach(app)


# ---- "/" -----------------------------------------------------------------------------------------
@sio.event
async def connect(sid, environ, auth=None):
    rec.app("connection", namespace="/", sio_sid=sid, eio_sid=rec.sid)


@sio.event
async def disconnect(sid, reason=None):
    rec.app("disconnect", namespace="/", eio_sid=rec.sid, reason=str(reason))
    rec.close_reason = str(reason)


@sio.on("hello")
async def hello(sid, msg):
    rec.app("recv_event", namespace="/", eio_sid=rec.sid, event="hello")
    await sio.emit("welcome", {"text": f"welcome, {msg['name']}"}, to=sid)


@sio.on("chat message")
async def chat_message(sid, text):
    rec.app("recv_event", namespace="/", eio_sid=rec.sid, event="chat message")
    rec.app("ack_sent", namespace="/", eio_sid=rec.sid, event="chat message")
    return {"ok": True, "echo": text}


@sio.on("upload")
async def upload(sid, data):
    rec.app("recv_event", namespace="/", eio_sid=rec.sid, event="upload")
    rec.app("ack_sent", namespace="/", eio_sid=rec.sid, event="upload")
    return {"received": len(data)}


@sio.on("pair")
async def pair(sid, obj):
    rec.app("recv_event", namespace="/", eio_sid=rec.sid, event="pair")
    await sio.emit("download", {"name": "blob", "data": pattern(2048, 3)}, to=sid)


@sio.on("ask me")
async def ask_me(sid):
    rec.app("recv_event", namespace="/", eio_sid=rec.sid, event="ask me")
    answer = await sio.call("server question", {"q": "meaning?"}, to=sid, timeout=2)
    rec.app("ack_received", namespace="/", eio_sid=rec.sid, event="server question", args=answer)
    await sio.emit("answer noted", answer, to=sid)


# ---- "/chat" -------------------------------------------------------------------------------------
@sio.on("connect", namespace="/chat")
async def chat_connect(sid, environ, auth=None):
    rec.app("connection", namespace="/chat", sio_sid=sid, eio_sid=rec.sid)

    async def welcomed(*reply):
        rec.app("ack_received", namespace="/chat", eio_sid=rec.sid, event="chat welcome", args=list(reply))

    # emitted once the connection is established (after the CONNECT reply)
    async def welcome():
        await asyncio.sleep(0.01)
        await sio.emit("chat welcome", {"room": "lobby"}, to=sid, namespace="/chat", callback=welcomed)

    sio.start_background_task(welcome)


@sio.on("chat message", namespace="/chat")
async def chat_chat_message(sid, text):
    rec.app("recv_event", namespace="/chat", eio_sid=rec.sid, event="chat message")
    rec.app("ack_sent", namespace="/chat", eio_sid=rec.sid, event="chat message")
    return {"ok": True, "room": "lobby", "echo": text}


@sio.on("disconnect", namespace="/chat")
async def chat_disconnect(sid, reason=None):
    rec.app("disconnect", namespace="/chat", eio_sid=rec.sid, reason=str(reason))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    opt = ap.parse_args()
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", opt.port).start()
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "quit":
            break
    await asyncio.sleep(0.2)
    rec.extra["peer"] = f"python-socketio {version('python-socketio')} / python-engineio {version('python-engineio')} (aiohttp {version('aiohttp')}, python {sys.version.split()[0]})"
    rec.extra["options"] = {"pingInterval": 1000, "pingTimeout": 1000}
    rec.dump(opt.log)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
