"""Ground-truth recorder for the python-socketio peers (same log format as lib/record.js).

Every Engine.IO packet the peer encodes (sends) or decodes (receives) is recorded by wrapping
python-engineio's Packet.encode/Packet.decode; packets encoded or decoded inside Payload (one HTTP body
of several packets) went over polling, all others over WebSocket. Socket.IO packets are decoded from
the recorded Engine.IO messages, per direction, with python-socketio's own Packet class.

A client process has one Engine.IO session. A server may have several: each packet is then tied to
its session by the engineio socket (or the request's sid) found in the calling frames.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

from engineio import async_socket as eio_async_socket
from engineio import base_socket as eio_base_socket
from engineio import packet as eio_packet
from engineio import payload as eio_payload
from socketio import packet as sio_packet

EIO_NAMES = {0: "open", 1: "close", 2: "ping", 3: "pong", 4: "message", 5: "upgrade", 6: "noop"}
SIO_NAMES = ["CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"]


def _in_payload(code) -> bool:
    """True when one of the callers is the given Payload method (so the packet went over polling)."""
    f = sys._getframe(2)
    for _ in range(4):
        if f is None:
            return False
        if f.f_code is code:
            return True
        f = f.f_back
    return False


class Recorder:
    def __init__(self, role: str, label: str = "A"):
        self.role = role
        self.label = label
        self.sessions: dict[str, dict] = {}  # server: every Engine.IO session, by sid
        self.packets: list[dict] = []
        self.app_log: list[dict] = []
        self.requests: list[dict] = []
        self.sid = None
        self.upgraded = False
        self.close_reason = None
        self.ws_ports: list[int] = []
        self.extra: dict = {}
        self._install()

    def _install(self):
        rec = self
        orig_encode = eio_packet.Packet.encode
        orig_decode = eio_packet.Packet.decode
        enc_code = eio_payload.Payload.encode.__code__
        dec_code = eio_payload.Payload.decode.__code__

        def encode(self, *a, **kw):
            # python-engineio 4 caches the encoding: a later call is not a new send (3 has no cache)
            first = getattr(self, "encode_cache", None) is None
            out = orig_encode(self, *a, **kw)
            if first:
                rec._record("out", self.packet_type, self.data, "polling" if _in_payload(enc_code) else "websocket")
            return out

        def decode(self, encoded_packet):
            ret = orig_decode(self, encoded_packet)
            rec._record("in", self.packet_type, self.data, "polling" if _in_payload(dec_code) else "websocket")
            return ret

        eio_packet.Packet.encode = encode
        eio_packet.Packet.decode = decode

        if self.role == "server":
            # the reason python-engineio closes a session with
            orig_close = eio_async_socket.AsyncSocket.close

            async def close(sock, wait=True, abort=False, reason=None):
                sess = rec.sessions.get(sock.sid)
                if sess is not None and sess["close_reason"] is None and not sock.closed and not sock.closing:
                    sess["close_reason"] = str(reason or sock.server.reason.SERVER_DISCONNECT)
                    sess["closed"] = time.time()
                return await orig_close(sock, wait=wait, abort=abort, reason=reason)

            eio_async_socket.AsyncSocket.close = close

    def _session_of_caller(self):
        """Server: the Engine.IO session the packet belongs to, from the calling frames (the engineio
        socket handling it, or the sid of the request being served)."""
        f = sys._getframe(3)
        for _ in range(16):
            if f is None:
                return None
            loc = f.f_locals
            for name in ("self", "socket", "s"):
                v = loc.get(name)
                if isinstance(v, eio_base_socket.BaseSocket):
                    return v.sid
            sid = loc.get("sid")
            if isinstance(sid, str) and sid in self.sessions:
                return sid
            f = f.f_back
        return None

    def _record(self, direction, ptype, data, transport):
        name = EIO_NAMES.get(ptype, str(ptype))
        sid = self.sid
        if name == "open":
            d = data if isinstance(data, dict) else json.loads(data)
            self.sid = sid = d["sid"]
            if self.role == "server":
                self.sessions[sid] = {"sid": sid, "label": None, "opened": time.time(), "upgraded": False,
                                      "close_reason": None}
                for r in reversed(self.requests):  # the handshake request that opened it
                    if r.get("sid") is None:
                        r["sid"] = sid
                        break
        elif self.role == "server":
            sid = self._session_of_caller()
        if name == "upgrade":
            self.upgraded = True
            if sid in self.sessions:
                self.sessions[sid]["upgraded"] = True
        self.packets.append({"ts": time.time(), "sid": sid, "dir": direction, "transport": transport, "type": name,
                             "data": data})

    def app(self, kind: str, **fields):
        self.app_log.append({"ts": time.time(), "kind": kind, **fields})

    def note_request(self, method: str, transport: str, client_port: int, sid: str | None = None):
        self.requests.append({"ts": time.time(), "method": method, "transport": transport, "client_port": client_port,
                              "sid": sid})

    # ---- Socket.IO decode with python-socketio's Packet ----------------------------------------
    @staticmethod
    def decode_socketio(msgs: list[dict]) -> list[dict]:
        out = []
        pending = None
        head = None
        for m in msgs:
            if isinstance(m["data"], (bytes, bytearray)):
                if pending is None:
                    raise ValueError("binary attachment without a packet")
                if pending.add_attachment(m["data"]):
                    out.append((head, pending))
                    pending = None
                continue
            pkt = sio_packet.Packet(encoded_packet=m["data"])
            if pkt.attachment_count:
                pending, head = pkt, m
            else:
                out.append((m, pkt))
        rows = []
        for m, pkt in out:
            # the type as written on the wire: the first character of the text part
            ptype = SIO_NAMES[int(m["data"][0])]
            raw = m["data"].encode("utf-8")
            row = {"ts": m["ts"], "transport": m["transport"], "type": ptype, "namespace": pkt.namespace or "/",
                   "ack_id": pkt.id, "attachments": pkt.attachment_count, "packet_bytes": len(raw),
                   "attachment_bytes": sum(len(a) for a in (pkt.attachments or [])),
                   "packet_digest": hashlib.sha1(raw).hexdigest()[:12]}
            if ptype in ("EVENT", "BINARY_EVENT"):
                row["event"] = pkt.data[0]
            if ptype in ("CONNECT", "CONNECT_ERROR"):
                row["data"] = pkt.data
            rows.append(row)
        return rows

    def dump(self, path: str):
        if self.role == "server" and len(self.sessions) > 1:
            return self._dump_sessions(path)
        eio_rows, sio_rows = [], []
        for d in ("in", "out"):
            msgs = [p for p in self.packets if p["dir"] == d and p["type"] == "message"]
            for r in self.decode_socketio(msgs):
                sio_rows.append({"sid": self.sid, "dir": d, **r})
        sio_rows.sort(key=lambda r: r["ts"])
        for p in self.packets:
            row = {"ts": p["ts"], "sid": self.sid, "dir": p["dir"], "transport": p["transport"], "type": p["type"]}
            if isinstance(p["data"], (bytes, bytearray)):
                row["binary_bytes"] = len(p["data"])
            elif p["type"] != "message" and p["data"] is not None:
                row["data"] = p["data"]
            eio_rows.append(row)
        transports = []
        if self.role == "server":
            poll = [r for r in self.requests if r["transport"] == "polling"]
            ws = [r for r in self.requests if r["transport"] == "websocket"]
            if poll:
                transports.append({"tid": 1, "name": "polling", "sid": self.sid,
                                   "client_ports": sorted({r["client_port"] for r in poll}), "requests": poll})
            if ws:
                transports.append({"tid": 2, "name": "websocket", "sid": self.sid,
                                   "client_ports": [r["client_port"] for r in ws], "requests": []})
        elif self.ws_ports:
            transports.append({"tid": 2, "name": "websocket", "sid": self.sid, "client_ports": self.ws_ports,
                               "requests": []})
        out = {
            "role": self.role,
            "flavour": "python",
            "transports": transports,
            "sessions": [{"sid": self.sid, "label": self.label, "upgraded": self.upgraded,
                          "close_reason": self.close_reason}],
            "engineio": eio_rows,
            "socketio": sio_rows,
            "app": self.app_log,
            **self.extra,
        }
        with open(path, "w") as f:
            json.dump(out, f, indent=1, default=str)

    def _dump_sessions(self, path: str):
        """Server with several Engine.IO sessions: the same log, per session."""
        eio_rows, sio_rows, transports = [], [], []
        for sid in self.sessions:
            mine = [p for p in self.packets if p["sid"] == sid]
            for d in ("in", "out"):
                msgs = [p for p in mine if p["dir"] == d and p["type"] == "message"]
                for r in self.decode_socketio(msgs):
                    sio_rows.append({"sid": sid, "dir": d, **r})
            poll = [r for r in self.requests if r["transport"] == "polling" and r.get("sid") == sid]
            ws = [r for r in self.requests if r["transport"] == "websocket" and r.get("sid") == sid]
            if poll:
                transports.append({"tid": len(transports) + 1, "name": "polling", "sid": sid,
                                   "client_ports": sorted({r["client_port"] for r in poll}), "requests": poll})
            if ws:
                transports.append({"tid": len(transports) + 1, "name": "websocket", "sid": sid,
                                   "client_ports": [r["client_port"] for r in ws], "requests": []})
        sio_rows.sort(key=lambda r: r["ts"])
        unknown = [p for p in self.packets if p["sid"] not in self.sessions]
        if unknown:
            raise RuntimeError(f"{len(unknown)} packet(s) not tied to a session: {unknown[:3]}")
        for p in self.packets:
            row = {"ts": p["ts"], "sid": p["sid"], "dir": p["dir"], "transport": p["transport"], "type": p["type"]}
            if isinstance(p["data"], (bytes, bytearray)):
                row["binary_bytes"] = len(p["data"])
            elif p["type"] != "message" and p["data"] is not None:
                row["data"] = p["data"]
            eio_rows.append(row)
        out = {
            "role": self.role,
            "flavour": "python",
            "transports": transports,
            "sessions": list(self.sessions.values()),
            "engineio": eio_rows,
            "socketio": sio_rows,
            "app": self.app_log,
            **self.extra,
        }
        with open(path, "w") as f:
            json.dump(out, f, indent=1, default=str)
