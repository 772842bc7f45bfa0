"""Ground-truth recorder for the python-socketio peers (same log format as lib/record.js).

Every Engine.IO packet the peer encodes (sends) or decodes (receives) is recorded by wrapping
python-engineio's Packet.encode/Packet.decode; packets encoded or decoded inside Payload (one HTTP body
of several packets) went over polling, all others over WebSocket. Socket.IO packets are decoded from
the recorded Engine.IO messages, per direction, with python-socketio's own Packet class.

Limitation: one Engine.IO session per process (the python scenario has one client connection).
"""

from __future__ import annotations

import json
import sys
import time

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
    def __init__(self, role: str):
        self.role = role
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

    def _record(self, direction, ptype, data, transport):
        name = EIO_NAMES.get(ptype, str(ptype))
        if name == "open":
            d = data if isinstance(data, dict) else json.loads(data)
            self.sid = d["sid"]
        if name == "upgrade":
            self.upgraded = True
        self.packets.append({"ts": time.time(), "dir": direction, "transport": transport, "type": name, "data": data})

    def app(self, kind: str, **fields):
        self.app_log.append({"ts": time.time(), "kind": kind, **fields})

    def note_request(self, method: str, transport: str, client_port: int):
        self.requests.append({"ts": time.time(), "method": method, "transport": transport, "client_port": client_port})

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
            row = {"ts": m["ts"], "transport": m["transport"], "type": ptype, "namespace": pkt.namespace or "/",
                   "ack_id": pkt.id, "attachments": pkt.attachment_count}
            if ptype in ("EVENT", "BINARY_EVENT"):
                row["event"] = pkt.data[0]
            if ptype in ("CONNECT", "CONNECT_ERROR"):
                row["data"] = pkt.data
            rows.append(row)
        return rows

    def dump(self, path: str):
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
            "sessions": [{"sid": self.sid, "label": "A", "upgraded": self.upgraded, "close_reason": self.close_reason}],
            "engineio": eio_rows,
            "socketio": sio_rows,
            "app": self.app_log,
            **self.extra,
        }
        with open(path, "w") as f:
            json.dump(out, f, indent=1, default=str)
