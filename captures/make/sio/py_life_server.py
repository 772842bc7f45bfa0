"""python-socketio (asyncio, aiohttp) server for sio_python_disconnects: several Engine.IO sessions,
each ending its own way; the disconnect handlers log python-socketio's reason argument.

    python py_life_server.py --port 9370 --log server.json
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
import time

from pyrecord import Recorder

rec = Recorder("server")  # wraps python-engineio before any traffic

import socketio  # noqa: E402
from aiohttp import web  # noqa: E402
from importlib.metadata import version  # noqa: E402

PING_INTERVAL, PING_TIMEOUT = 1, 1  # seconds (python-engineio announces int(seconds) * 1000 ms)
sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
disconnects: list[dict] = []

# note the client's TCP port and the session of every HTTP request
_handle = sio.eio.handle_request


async def handle_request(request, *a, **kw):
    peer = request.transport.get_extra_info("peername") if request.transport else None
    rec.note_request(request.method, request.query.get("transport", ""), peer[1] if peer else None,
                     request.query.get("sid"))
    return await _handle(request, *a, **kw)


sio.eio.handle_request = handle_request
app = web.Application()
sio.attach(app)


def eio_of(sid, namespace="/"):
    return sio.manager.eio_sid_from_sid(sid, namespace)


# each socket's Engine.IO session (gone from the manager by the time 'disconnect' runs)
rec.sid_of_sio = {}


@sio.event
async def connect(sid, environ, auth=None):
    rec.sid_of_sio[sid] = eio_of(sid)
    rec.app("connection", namespace="/", sio_sid=sid, eio_sid=eio_of(sid),
            transport=sio.transport(sid))


# python-socketio >= 5.12 passes the reason as a second argument; say so if it does not
@sio.event
async def disconnect(sid, *reason):
    eio = rec.sid_of_sio.get(sid) or eio_of(sid)
    r = str(reason[0]) if reason else None
    rec.app("disconnect", namespace="/", sio_sid=sid, eio_sid=eio, reason=r, reason_given=bool(reason))
    disconnects.append({"namespace": "/", "sio_sid": sid, "eio_sid": eio, "reason": r, "ts": time.time()})


async def hello(sid, msg):
    rec.app("recv_event", namespace="/", sio_sid=sid, eio_sid=eio_of(sid), event="hello")
    await sio.emit("welcome", {"text": f"welcome, {msg['name']}"}, to=sid)


async def echo(sid, x):
    rec.app("recv_event", namespace="/", sio_sid=sid, eio_sid=eio_of(sid), event="echo")
    rec.app("ack_sent", namespace="/", sio_sid=sid, eio_sid=eio_of(sid), event="echo")
    return x


async def status(sid):
    rec.app("recv_event", namespace="/", sio_sid=sid, eio_sid=eio_of(sid), event="status")
    rec.app("ack_sent", namespace="/", sio_sid=sid, eio_sid=eio_of(sid), event="status")
    return disconnects


async def kick_me(sid):
    rec.app("recv_event", namespace="/", sio_sid=sid, eio_sid=eio_of(sid), event="kick me")
    rec.app("server_action", namespace="/", sio_sid=sid, eio_sid=eio_of(sid), action="sio.disconnect(sid)")
    await sio.disconnect(sid)


sio.on("hello", hello)
sio.on("echo", echo)
sio.on("status", status)
sio.on("kick me", kick_me)

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
    rec.extra["peer"] = (f"python-socketio {version('python-socketio')} / python-engineio {version('python-engineio')} "
                         f"(aiohttp {version('aiohttp')}, python {sys.version.split()[0]})")
    rec.extra["options"] = {"pingInterval": PING_INTERVAL * 1000, "pingTimeout": PING_TIMEOUT * 1000}
    rec.extra["disconnect_handler_signature"] = str(inspect.signature(disconnect))
    rec.dump(opt.log)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
