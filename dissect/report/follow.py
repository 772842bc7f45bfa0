"""One session's conversation in time order, a layer above Wireshark's Follow TCP Stream.

From an analysis made with payloads (:func:`dissect.analyze` ``payloads=True``), the events of one
session: its handshakes (tcp, tls, websocket, engineio, socketio), each HTTP request and response,
each WebSocket message (decompressed, whole) or, where the messages carry Engine.IO, each
Engine.IO / Socket.IO packet with namespace, event, ack id and data (pings and pongs included),
the WebSocket close, and the end of the connection. Each event names the packet (Wireshark's frame
number) that completed it where the tables know it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any

import click

from dissect.capture.ip import endpoint_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

TEXT_DATA_CHARS = 200  # of a payload shown on a text line (JSON lines carry it whole)
DIRECTION_ARROW = {"c2s": "→", "s2c": "←"}
LAYER_COLOUR = {"tcp": "white", "tls": "magenta", "http": "blue", "websocket": "cyan", "engineio": "yellow",
                "socketio": "green"}


@dataclass
class Event:
    """One line of a followed conversation."""

    ts: float
    layer: str  # tcp | tls | http | websocket | engineio | socketio
    kind: str  # handshake, request, response, message, ping, close, end, ...
    direction: str | None = None  # c2s | s2c
    frame: int | None = None  # Wireshark's frame number of the packet that completed it
    summary: str = ""  # what a person reads
    data: str | None = None  # the payload (text, base64 for binary), the packet's JSON
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("fields"))
        return {k: v for k, v in out.items() if v is not None}


def _value(x: Any) -> Any:
    """A cell as a plain value: None for pandas' missing values."""
    if x is None:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    try:
        import pandas as pd

        if x is pd.NA or x is pd.NaT:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if hasattr(x, "item"):
        return x.item()
    return x


def _rows(df: Any, session_id: int) -> list[dict[str, Any]]:
    if not len(df):
        return []
    sub = df[df.session_id == session_id]
    return [{k: _value(v) for k, v in row.items()} for row in sub.to_dict("records")]


def session_events(a: Analysis, session_id: int) -> list[Event]:
    """Every event of one session, in time order (ties keep the layers' order)."""
    events: list[Event] = []
    sessions = _rows(a.sessions, session_id)
    if not sessions:
        return events
    s = sessions[0]
    for h in _rows(a.handshakes, session_id):
        ok = {True: "ok", False: "FAILED", None: "unanswered"}[h["ok"]]
        dur = f" {h['duration_ms']:.3f} ms" if h["duration_ms"] is not None else ""
        events.append(Event(h["ts_end"] if h["ts_end"] is not None else h["ts_start"], h["layer"], "handshake",
                            summary=f"{h['layer']} handshake {ok}{dur} {h['detail'] or ''}".rstrip(),
                            fields={"ok": h["ok"], "duration_ms": h["duration_ms"]}))
    for r in _rows(a.http, session_id):
        events.append(Event(r["ts_request"], "http", "request", "c2s", r.get("frame_request"),
                            f"{r['method']} {r['target']}" + (f" (Upgrade: {r['upgrade']})" if r["upgrade"] else ""),
                            fields={"method": r["method"], "target": r["target"], "host": r["host"]}))
        if r["ts_response"] is not None:
            events.append(Event(r["ts_response"], "http", "response", "s2c", r.get("frame_response"),
                                f"{r['status']} ({r['body_bytes'] or 0} body bytes, {r['duration_ms']:.3f} ms)",
                                fields={"status": r["status"], "body_bytes": r["body_bytes"]}))
    sio = _rows(a.sio_packets, session_id)
    for p in sio:
        events.append(_sio_event(p))
    frames = _rows(a.ws_frames, session_id)
    frame_of = {(f["ts"], f["direction"]): f["frame"] for f in frames}
    if not sio or not any(p["transport"] == "websocket" for p in sio):
        for m in _rows(a.ws_messages, session_id):
            if m["opcode_name"] in ("text", "binary"):
                events.append(Event(m["ts_last"], "websocket", "message", m["direction"],
                                    frame_of.get((m["ts_last"], m["direction"])),
                                    f"{m['opcode_name']} {m['payload_bytes']} bytes"
                                    + (" (compressed)" if m["compressed"] else ""),
                                    m.get("payload"), {"anomaly": m["anomaly"] or None}))
    for f in frames:
        if f["opcode_name"] in ("ping", "pong", "close"):
            extra = ""
            if f["opcode_name"] == "close":
                extra = f" {f['close_code'] or ''} {f['close_reason'] or ''}".rstrip()
            events.append(Event(f["ts"], "websocket", f["opcode_name"], f["direction"], f["frame"],
                                f"{f['opcode_name']}{extra}", fields={"close_code": f["close_code"]}))
    end = {"fin": "closed (FIN)", "rst": "reset (RST)", "open": "still open when the capture ended"}
    events.append(Event(s["ts_last"], "tcp", "end", None, None,
                        f"{end.get(s['close'] or '', s['close'] or 'end')}: {s['packets_c2s']}+{s['packets_s2c']} "
                        f"packets, {s['bytes_c2s']}+{s['bytes_s2c']} bytes"))
    order = {"handshake": 0, "request": 1, "response": 2}
    events.sort(key=lambda e: (e.ts, order.get(e.kind, 3)))
    return events


def _sio_event(p: dict[str, Any]) -> Event:
    layer = "socketio" if p["sio_type"] else "engineio"
    if p["sio_type"]:
        parts = [p["sio_type"], p["namespace"] or "/"]
        if p["event"]:
            parts.append(json.dumps(p["event"], ensure_ascii=False))
        if p["ack_id"] is not None:
            parts.append(f"ack={p['ack_id']}")
        if p.get("acked_event"):
            parts.append(f"answers {json.dumps(p['acked_event'], ensure_ascii=False)}")
        if p["ack_latency_ms"] is not None:
            parts.append(f"{p['ack_latency_ms']:.3f} ms")
        kind = "packet"
    else:
        parts = [p["eio_type"]]
        kind = p["eio_type"] if p["eio_type"] in ("ping", "pong", "close", "open", "upgrade", "noop") else "packet"
    if p["anomaly"]:
        parts.append(f"[{p['anomaly']}]")
    return Event(p["ts"], layer, kind, p["direction"], p.get("frame"), " ".join(parts), p.get("data"),
                 {"transport": p["transport"], "namespace": p["namespace"], "event": p["event"],
                  "ack_id": p["ack_id"], "sio_type": p["sio_type"] or None, "eio_type": p["eio_type"]})


def session_title(a: Analysis, session_id: int) -> str:
    s = _rows(a.sessions, session_id)[0]
    stream = f", tcp.stream {s['tcp_stream']}" if s.get("tcp_stream") is not None else ""
    return (f"session {session_id}: {endpoint_text(s['client_ip'], s['client_port'])} → "
            f"{endpoint_text(s['server_ip'], s['server_port'])} ({s['app_protocol']}{stream}, "
            f"{s['source_file']})")


def _time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%H:%M:%S.%f")


def write_text(a: Analysis, session_id: int, events: list[Event], out: IO[str], colour: bool) -> None:
    """The conversation as lines: time, direction, frame, layer, what happened, its data."""
    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if colour else text

    out.write(style(session_title(a, session_id), bold=True) + "\n")
    for e in events:
        arrow = DIRECTION_ARROW.get(e.direction or "", " ")
        frame = f"#{e.frame}" if e.frame is not None else ""
        head = f"{_time(e.ts)} {arrow} {frame:>7} {e.layer:<9}"
        line = style(head, fg=LAYER_COLOUR.get(e.layer, "white")) + " " + e.summary
        if e.data is not None:
            shown = e.data if len(e.data) <= TEXT_DATA_CHARS else (
                f"{e.data[:TEXT_DATA_CHARS]}… (+{len(e.data) - TEXT_DATA_CHARS} chars: --format jsonl has it whole)")
            line += "  " + style(shown.replace("\n", "\\n"), dim=True)
        out.write(line + "\n")


def write_jsonl(events: list[Event], session_id: int, out: IO[str]) -> None:
    for e in events:
        out.write(json.dumps({"session_id": session_id, **e.to_json()}, ensure_ascii=False) + "\n")


def find_session(a: Analysis, session: int | None, tcp_stream: int | None, frame: int | None) -> int | None:
    """The session asked for by id, by Wireshark's tcp.stream (in the first capture file), or by a
    frame number (a packet that ends one of the session's rows, or its first packet)."""
    s = a.sessions
    if session is not None:
        return session if (s.session_id == session).any() else None
    if tcp_stream is not None:
        first = s.source_file.iloc[0] if len(s) else None
        hit = s[(s.tcp_stream == tcp_stream) & (s.source_file == first)]
        return int(hit.session_id.iloc[0]) if len(hit) else None
    if frame is not None:
        for table, cols in (("sessions", ("frame_first",)), ("ws_frames", ("frame",)), ("sio_packets", ("frame",)),
                            ("http", ("frame_request", "frame_response"))):
            df = a.table(table)
            for col in cols:
                if col in df.columns:
                    hit = df[df[col] == frame]
                    if len(hit):
                        return int(hit.session_id.iloc[0])
    return None


def iter_sessions(a: Analysis) -> Iterator[int]:
    yield from (int(x) for x in a.sessions.session_id)
