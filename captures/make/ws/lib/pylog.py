"""Peer-side recorder for the python `websockets` scenario (the counterpart of peerlog.js).

A ConnLog wraps one websockets.asyncio connection and records, from inside the peer:
  sent / received   data messages (opcode, payload bytes before compression, frames, text)
  frames_sent       every frame the sans-I/O protocol serialised (hook on Protocol.send_frame, so
                    automatic pongs and the close reply are included), as written on the wire
  events            pings/pongs received (hook on Protocol.recv_frame; websockets has no public
                    event for a received ping)
  close_sent / close_received, bytes_written / bytes_read (counted by the connection subclasses
                    below, handshake included)
The raw JSON has the same shape as peerlog.js writes; merge.py turns both into truth files.
"""

from __future__ import annotations

import asyncio
import json
import platform
import struct
import time

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection
from websockets.frames import Close, Opcode

PEER = f"websockets {websockets.__version__} (python {platform.python_version()})"
OPNAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def now() -> float:
    """Epoch milliseconds (the peer's clock; for ordering only)."""
    return time.time_ns() / 1e6


def parse_wire(raw: bytes) -> dict:
    b0, b1 = raw[0], raw[1]
    masked = bool(b1 & 0x80)
    n, off = b1 & 0x7F, 2
    if n == 126:
        n, off = struct.unpack("!H", raw[2:4])[0], 4
    elif n == 127:
        n, off = struct.unpack("!Q", raw[2:10])[0], 10
    hlen = off + (4 if masked else 0)
    f = {
        "t": now(), "fin": bool(b0 & 0x80), "rsv1": bool(b0 & 0x40), "rsv2": bool(b0 & 0x20),
        "rsv3": bool(b0 & 0x10), "opcode": b0 & 0x0F, "opcode_name": OPNAMES.get(b0 & 0x0F, str(b0 & 0x0F)),
        "masked": masked, "payload_len": n, "header_len": hlen,
    }
    assert len(raw) == hlen + n
    return f


class _Counting:
    """Mixin counting the TCP payload bytes a connection writes and reads."""

    bytes_written = 0
    bytes_read = 0

    def connection_made(self, transport):  # type: ignore[override]
        write = transport.write

        def counted(data):
            self.bytes_written += len(data)
            return write(data)

        transport.write = counted
        super().connection_made(transport)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:  # type: ignore[override]
        self.bytes_read += len(data)
        super().data_received(data)  # type: ignore[misc]


class CountingServerConnection(_Counting, ServerConnection):
    pass


class CountingClientConnection(_Counting, ClientConnection):
    pass


def _deflate_params(ws) -> dict | None:
    for ext in ws.protocol.extensions:
        if ext.name == "permessage-deflate":
            local, remote = ("server", "client") if isinstance(ws, ServerConnection) else ("client", "server")
            return {
                f"{local}_no_context_takeover": ext.local_no_context_takeover,
                f"{remote}_no_context_takeover": ext.remote_no_context_takeover,
                f"{local}_max_window_bits": ext.local_max_window_bits,
                f"{remote}_max_window_bits": ext.remote_max_window_bits,
            }
    return None


class ConnLog:
    def __init__(self, role: str, ws) -> None:
        self.ws = ws
        local, remote = ws.local_address[1], ws.remote_address[1]
        req, resp = ws.request, ws.response
        self.rec = {
            "t_open": now(),
            "local_port": local,
            "remote_port": remote,
            "client_port": local if role == "client" else remote,
            "server_port": remote if role == "client" else local,
            "handshake": {
                "subprotocol": ws.subprotocol,
                "deflate_params": _deflate_params(ws),
                "request_target": req.path,
                "request_extensions": req.headers.get("Sec-WebSocket-Extensions"),
                "request_protocols": req.headers.get("Sec-WebSocket-Protocol"),
                "key": req.headers.get("Sec-WebSocket-Key"),
                "status": int(resp.status_code),
                "accept": resp.headers.get("Sec-WebSocket-Accept"),
                "response_extensions": resp.headers.get("Sec-WebSocket-Extensions"),
            },
            "sent": [], "received": [], "frames_sent": [], "events": [],
            "close_sent": None, "close_received": None, "bytes_written": None, "bytes_read": None,
        }
        self.inbox: asyncio.Queue = asyncio.Queue()
        proto = ws.protocol

        send_frame = proto.send_frame

        def hooked_send(frame):
            send_frame(frame)
            f = parse_wire(proto.writes[-1])
            if f["opcode"] == 8 and len(frame.data) >= 2:
                close = Close.parse(frame.data)
                f["close_code"], f["close_reason"] = int(close.code), close.reason
            self.rec["frames_sent"].append(f)

        proto.send_frame = hooked_send

        recv_frame = proto.recv_frame

        def hooked_recv(frame):
            if frame.opcode in (Opcode.PING, Opcode.PONG):
                ev = "ping_received" if frame.opcode is Opcode.PING else "pong_received"
                self.rec["events"].append({"t": now(), "event": ev, "payload_bytes": len(frame.data)})
            recv_frame(frame)

        proto.recv_frame = hooked_recv
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                binary = isinstance(msg, bytes)
                m = {"t": now(), "opcode": "binary" if binary else "text",
                     "payload_bytes": len(msg) if binary else len(msg.encode())}
                if not binary:
                    m["text"] = msg[:64]
                self.rec["received"].append(m)
                await self.inbox.put(msg)
        except websockets.ConnectionClosed:
            pass

    async def next(self):
        return await self.inbox.get()

    def _log_sent(self, data: bytes, binary: bool, fragments: int) -> None:
        m = {"t": now(), "opcode": "binary" if binary else "text", "payload_bytes": len(data), "fragments": fragments}
        if not binary:
            m["text"] = data.decode()[:64]
        self.rec["sent"].append(m)

    async def send(self, message: str | bytes) -> None:
        binary = isinstance(message, bytes)
        self._log_sent(message if binary else message.encode(), binary, 1)
        await self.ws.send(message)

    async def send_fragments(self, chunks: list, ping_after: int | None = None, ping_data: bytes = b"") -> None:
        """Send chunks as one fragmented message through an async iterator (websockets then ends
        it with an empty final continuation frame: len(chunks) + 1 frames). Optionally ping after
        chunk number `ping_after`, i.e. between two fragments."""
        binary = isinstance(chunks[0], bytes)
        whole = b"".join(c if binary else c.encode() for c in chunks)
        self._log_sent(whole, binary, len(chunks) + 1)

        async def gen():
            for i, c in enumerate(chunks):
                yield c
                if ping_after == i:
                    await self.ping(ping_data, wait=False)

        await self.ws.send(gen())

    async def ping(self, data: bytes, wait: bool = True) -> None:
        self.rec["events"].append({"t": now(), "event": "ping_sent", "payload_bytes": len(data)})
        pong = await self.ws.ping(data)
        if wait:
            await pong

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.rec["close_sent"] = {"t": now(), "code": code, "reason": reason}
        await self.ws.close(code, reason)

    async def done(self) -> None:
        await self.ws.wait_closed()
        await self.reader
        rcvd = self.ws.protocol.close_rcvd
        self.rec["close_received"] = (
            {"t": now(), "code": int(rcvd.code), "reason": rcvd.reason} if rcvd else {"t": now(), "code": 1006, "reason": ""})
        self.rec["bytes_written"] = self.ws.bytes_written
        self.rec["bytes_read"] = self.ws.bytes_read


class PeerLog:
    def __init__(self, role: str, **extra) -> None:
        self.role = role
        self.data = {"role": role, "peer": PEER, "connections": [], **extra}

    def attach(self, ws) -> ConnLog:
        c = ConnLog(self.role, ws)
        self.data["connections"].append(c.rec)
        return c

    def write(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.data, f, indent=1, ensure_ascii=False)
            f.write("\n")
