"""python-socketio 4 client (Engine.IO 3, Socket.IO protocol 4), polling only, for the
sio2_polling_binary scenario (server: sio2_server.js). python-engineio 3 writes every polling POST in
the binary payload form (application/octet-stream), and asks for binary responses (no b64=1).

    python py3_client.py --scenario sio2_polling_binary --port 9313 --log client.json
(run with the interpreter of .venv-eio3, see run.sh)
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from pyrecord import Recorder

rec = Recorder("client")  # wraps python-engineio before any traffic

import socketio  # noqa: E402
from importlib.metadata import version  # noqa: E402


def pattern(n: int, seed: int) -> bytes:
    return bytes((seed + i * 7) & 0xFF for i in range(n))


sio = socketio.Client(reconnection=False)
seen: dict[str, threading.Event] = {}
ticks = []


def arrived(key: str) -> threading.Event:
    return seen.setdefault(key, threading.Event())


def on(event, namespace="/", reply=None):
    def handler(*args):
        rec.app("recv_event", label="A", namespace=namespace, eio_sid=rec.sid, event=event)
        if event == "tick":
            ticks.append(args)
            if len(ticks) == 3:
                arrived("/tick").set()
        arrived(f"{namespace}{event}").set()
        if reply is not None:
            rec.app("ack_sent", label="A", namespace=namespace, eio_sid=rec.sid, event=event)
            return reply(*args)
        return None

    sio.on(event, handler, namespace=namespace)


on("welcome")
on("download")
on("tick")
on("server question", reply=lambda q: {"a": 42})
on("answer noted")
on("chat welcome", namespace="/chat", reply=lambda d: {"thanks": True})


def call(event, data, namespace="/"):
    res = sio.call(event, data, namespace=namespace, timeout=3)
    rec.app("ack_received", label="A", namespace=namespace, eio_sid=rec.sid, event=event)
    return res


def wait(key):
    if not arrived(key).wait(3):
        raise TimeoutError(key)


def scenario(port: int):
    sio.connect(f"http://127.0.0.1:{port}", transports=["polling"], namespaces=["/chat"])
    rec.app("connect", label="A", namespace="/", eio_sid=rec.sid)
    sio.emit("hello", {"name": "A"})
    wait("/welcome")
    call("chat message", "h\u00e9llo w\u00f6rld \u2713 \U0001F600")  # multi-byte UTF-8, a surrogate pair in UTF-16
    call("upload", pattern(3072, 1))
    sio.emit("pair", {"a": pattern(16, 2), "b": pattern(32, 4)})
    wait("/download")
    wait("/chatchat welcome")
    call("chat message", "hello chat room", namespace="/chat")
    sio.emit("burst", 3)
    wait("/tick")
    sio.emit("ask me")
    wait("/answer noted")
    time.sleep(0.7)  # the client pings every pingInterval (500 ms)
    rec.app("close_action", label="A", eio_sid=rec.sid, action="disconnect")
    sio.disconnect()
    time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    opt = ap.parse_args()
    rc = 0
    try:
        scenario(opt.port)
    except Exception as e:  # keep the log for the post-mortem
        print(f"client failed: {e!r}", file=sys.stderr)
        rc = 1
    rec.extra["peer"] = (f"python-socketio {version('python-socketio')} Client / python-engineio "
                         f"{version('python-engineio')} (requests {version('requests')}, python {sys.version.split()[0]})")
    rec.extra["scenario"] = opt.scenario
    rec.dump(opt.log)
    return rc


if __name__ == "__main__":
    sys.exit(main())
