"""python-socketio AsyncClients for sio_python_disconnects (server: py_life_server.py).

    python py_life_client.py --scenario sio_python_disconnects --port 9370 --log DIR/client.json

One Engine.IO session per process (pyrecord's client side): A runs in this process (default
transports: polling, then WebSocket) and starts the others as child processes (--child LABEL, log
DIR/client-LABEL.json):
  B (WebSocket only): the server disconnects it (sio.disconnect(sid));
  Z (polling only): frozen with SIGSTOP past pingInterval + pingTimeout; the server ends it; then
    SIGCONT, it sees its own end;
  A: finally disconnects itself.
Children talk to the parent over stdin/stdout lines (CONNECTED sio_sid eio_sid / note / NOTED / finish).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--scenario", required=True)
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--child", default=None)
opt = ap.parse_args()
LABEL = opt.child or "A"

from pyrecord import Recorder  # noqa: E402

rec = Recorder("client", label=LABEL)  # wraps python-engineio before any traffic

import socketio  # noqa: E402
from importlib.metadata import version  # noqa: E402

sio = socketio.AsyncClient(reconnection=False)
state = {"sio_sid": None, "connected": False}
arrived: dict[str, asyncio.Event] = {}


def base():
    return {"label": LABEL, "namespace": "/", "eio_sid": rec.sid, "sio_sid": state["sio_sid"]}


def flag(event: str) -> asyncio.Event:
    return arrived.setdefault(event, asyncio.Event())


@sio.on("welcome")
async def welcome(data):
    rec.app("recv_event", **base(), event="welcome")
    flag("welcome").set()


@sio.event
async def connect():
    state["sio_sid"] = sio.get_sid("/")
    state["connected"] = True
    rec.app("connect", **base(), transport=sio.transport())


@sio.event
async def disconnect(*reason):
    state["connected"] = False
    r = str(reason[0]) if reason else None
    rec.app("disconnect", **base(), reason=r, reason_given=bool(reason))
    rec.close_reason = r
    flag("disconnect").set()


async def call(event, data=None):
    args = (event,) if data is None else (event, data)
    res = await sio.call(*args, timeout=5)
    rec.app("ack_received", **base(), event=event)
    return res


async def emit(event, data=None):
    rec.app("send_event", **base(), event=event)
    if data is None:
        await sio.emit(event)
    else:
        await sio.emit(event, data)


async def greet():
    await emit("hello", {"name": LABEL})
    await asyncio.wait_for(flag("welcome").wait(), 5)
    rec.app("send_event", **base(), event="echo")
    await call("echo", f"echo from {LABEL}")


def note_ws_port():
    if sio.eio.ws is not None and getattr(sio.eio.ws, "get_extra_info", None):
        sock = sio.eio.ws.get_extra_info("sockname")
        if sock and sock[1] not in rec.ws_ports:
            rec.ws_ports.append(sock[1])


def end_action(action, by, close_action=None):
    rec.app("end_action", **base(), action=action, by=by)
    if close_action:
        rec.app("close_action", label=LABEL, eio_sid=rec.sid, action=close_action)


async def readline():
    return (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()


class Child:
    def __init__(self, label):
        self.label = label
        self.proc = None

    async def start(self):
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--scenario", opt.scenario, "--port", str(opt.port),
            "--log", os.path.join(os.path.dirname(opt.log), f"client-{self.label}.json"), "--child", self.label,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)

    async def expect(self, word, timeout=10):
        line = (await asyncio.wait_for(self.proc.stdout.readline(), timeout)).decode().split()
        if not line or line[0] != word:
            raise RuntimeError(f"child {self.label}: expected {word}, got {line}")
        return line[1:]

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())

    def signal(self, sig):
        rec.app("signal", label=self.label, pid=self.proc.pid, signal=sig.name)
        self.proc.send_signal(sig)


async def server_saw(sio_sid, timeout=6):
    t0 = time.time()
    while True:
        seen = await call("status")
        got = [d for d in seen if d["sio_sid"] == sio_sid]
        if got:
            return got[0]
        if time.time() - t0 > timeout:
            raise RuntimeError(f"the server never reported the end of {sio_sid}: {seen}")
        await asyncio.sleep(0.2)


async def child_b():
    await sio.connect(f"http://127.0.0.1:{opt.port}", transports=["websocket"], wait_timeout=5)
    await greet()
    note_ws_port()
    print("CONNECTED", state["sio_sid"], rec.sid, flush=True)
    end_action("server_disconnect", "server", "server_disconnect")
    await emit("kick me")
    await asyncio.wait_for(flag("disconnect").wait(), 5)
    await asyncio.sleep(0.2)


async def child_z():
    await sio.connect(f"http://127.0.0.1:{opt.port}", transports=["polling"], wait_timeout=5)
    await greet()
    print("CONNECTED", state["sio_sid"], rec.sid, flush=True)
    while (cmd := await readline()) != "note":
        pass
    end_action("frozen", "server", "frozen")
    print("NOTED", flush=True)
    # here the parent SIGSTOPs this process, and later SIGCONTs it and says "finish"
    while (cmd := await readline()) != "finish":
        pass
    try:
        await asyncio.wait_for(flag("disconnect").wait(), 6)
    except asyncio.TimeoutError:
        rec.app("note", label=LABEL, text="no disconnect seen within 6 s of finish")
    await asyncio.sleep(0.2)


async def parent_a():
    await sio.connect(f"http://127.0.0.1:{opt.port}", wait_timeout=5)
    await greet()
    await asyncio.sleep(1.2)  # polling, then the upgrade to WebSocket; a ping
    note_ws_port()

    b = Child("B")
    await b.start()
    b_sid, _ = await b.expect("CONNECTED")
    rc = await asyncio.wait_for(b.proc.wait(), 10)
    if rc != 0:
        raise RuntimeError(f"child B exited {rc}")
    await server_saw(b_sid)

    z = Child("Z")
    await z.start()
    z_sid, _ = await z.expect("CONNECTED")
    await asyncio.sleep(1.3)  # a ping/pong on Z's session
    z.send("note")
    await z.expect("NOTED")
    z.signal(signal.SIGSTOP)
    t0 = time.time()
    saw = await server_saw(z_sid, timeout=8)
    rec.app("note", label=LABEL, text=f"server ended Z after {time.time() - t0:.2f} s: {saw['reason']}")
    await asyncio.sleep(0.2)
    z.signal(signal.SIGCONT)
    z.send("finish")
    rc = await asyncio.wait_for(z.proc.wait(), 10)
    if rc != 0:
        raise RuntimeError(f"child Z exited {rc}")

    await call("echo", "bye")
    note_ws_port()
    end_action("client_disconnect", "client", "disconnect")
    await sio.disconnect()
    await asyncio.sleep(0.2)


async def main():
    rc = 0
    try:
        await {"B": child_b, "Z": child_z, None: parent_a}[opt.child]()
    except Exception as e:  # keep the log for the post-mortem
        print(f"client {LABEL} failed: {e!r}", file=sys.stderr)
        rc = 1
    rec.extra["peer"] = (f"python-socketio {version('python-socketio')} AsyncClient / python-engineio "
                         f"{version('python-engineio')} (aiohttp {version('aiohttp')}, python {sys.version.split()[0]})")
    rec.extra["scenario"] = opt.scenario
    rec.extra["pid"] = os.getpid()
    if opt.child:
        rec.extra["child"] = opt.child
    rec.dump(opt.log)
    return rc


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
