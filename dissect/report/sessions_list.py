"""``dissect summary --sessions``: one line per session, as ``tshark -z conv,tcp`` or Zeek's conn.log
list connections.

Each line: session id, transport, client -> server (IPv6 as ``[::1]:55310``), app protocol, TLS
version (when TLS), duration, handshake times per layer (``!`` after a failed one, ``?`` when the
capture ended before an answer could come), HTTP exchanges, WebSocket messages, Socket.IO packets,
rows with an anomaly, and how the session closed (fin, rst, open; the WebSocket close code when one
was sent).

:class:`SessionList` is the consumer that gathers the lines while the rows stream past: it keeps
one small record per session and counts the other tables' rows per session, never the rows
themselves, so its memory grows with the sessions, not with the frames or messages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

from dissect.capture.ip import endpoint_text
from dissect.records import TABLES
from dissect.report.terminal import safe_text

# The handshake layers in the order a session climbs them.
LAYERS = ("tcp", "tls", "websocket", "engineio", "socketio")
_ANOMALY = {t: cls._fields.index("anomaly") for t, cls in TABLES.items()  # type: ignore[attr-defined]
            if "anomaly" in cls._fields}  # type: ignore[attr-defined]


@dataclass
class SessionLine:
    """What one line says about a session."""

    session_id: int
    transport: str = ""
    client: str = ""
    server: str = ""
    app_protocol: str = ""
    tls_version: str | None = None
    duration_ms: float | None = None
    close: str | None = None
    handshakes: dict[str, tuple[float | None, bool | None]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)  # rows per table, and "anomalies"
    ws_close_code: int | None = None


class SessionList:
    """A consumer keeping one :class:`SessionLine` per session (see the module doc)."""

    def __init__(self) -> None:
        self.lines: dict[int, SessionLine] = {}

    def _line(self, sid: int) -> SessionLine:
        line = self.lines.get(sid)
        if line is None:
            line = self.lines[sid] = SessionLine(sid)
        return line

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        anomaly = _ANOMALY.get(table)
        for r in rows:
            line = self._line(r[0])
            line.counts[table] += 1
            if anomaly is not None and r[anomaly]:
                line.counts["anomalies"] += 1
            if table == "sessions":
                line.transport, line.app_protocol = r.transport, r.app_protocol  # type: ignore[attr-defined]
                line.client = endpoint_text(r.client_ip, r.client_port)  # type: ignore[attr-defined]
                line.server = endpoint_text(r.server_ip, r.server_port)  # type: ignore[attr-defined]
                line.tls_version, line.close = r.tls_version, r.close  # type: ignore[attr-defined]
                line.duration_ms = (r.ts_last - r.ts_first) / 1e6  # type: ignore[attr-defined]
            elif table == "handshakes":
                line.handshakes.setdefault(r.layer, (r.duration_ms, r.ok))  # type: ignore[attr-defined]
            elif table == "ws_frames" and r.close_code is not None and line.ws_close_code is None:  # type: ignore[attr-defined]
                line.ws_close_code = r.close_code  # type: ignore[attr-defined]


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x / 1000:.2f}s"
    return f"{x:.1f}ms" if x >= 10 else f"{x:.3f}ms"


def handshakes_text(hs: dict[str, tuple[float | None, bool | None]]) -> str:
    """``tcp 0.081ms tls 2.3ms websocket 1.1ms``: each layer's time; ``!`` marks a failed
    handshake, ``?`` one the capture ended before it could be answered."""
    parts = []
    for layer in sorted(hs, key=lambda x: (LAYERS.index(x) if x in LAYERS else len(LAYERS), x)):
        ms, ok = hs[layer]
        mark = "" if ok else ("!" if ok is False else "?")
        parts.append(f"{safe_text(layer, 20)} {_ms(ms)}{mark}")
    return " ".join(parts) or "-"


HEADER = ("id", "proto", "client", "server", "app", "tls", "duration", "http", "ws_msgs", "sio", "anomalies",
          "close", "handshakes")


def session_rows(lines: Iterable[SessionLine]) -> list[tuple[str, ...]]:
    """The cells of each line, in :data:`HEADER`'s order (sorted by session id)."""
    out: list[tuple[str, ...]] = []
    for s in sorted(lines, key=lambda x: x.session_id):
        close = s.close or "-"
        if s.ws_close_code is not None:
            close += f" ws {s.ws_close_code}"
        out.append((str(s.session_id), s.transport or "-", s.client or "-", s.server or "-",
                    s.app_protocol or "-", safe_text(s.tls_version, 20) or "-", _ms(s.duration_ms),
                    str(s.counts["http"]), str(s.counts["ws_messages"]), str(s.counts["sio_packets"]),
                    str(s.counts["anomalies"]), safe_text(close, 30), handshakes_text(s.handshakes)))
    return out


def print_sessions(lines: Iterable[SessionLine], file: IO[str]) -> None:
    """The session list: a header line and one aligned line per session ("no session" when none)."""
    rows = session_rows(lines)
    file.write("Sessions list\n")
    if not rows:
        file.write("  no session\n")
        return
    widths = [max(len(HEADER[i]), *(len(r[i]) for r in rows)) for i in range(len(HEADER) - 1)]
    right = {0, 6, 7, 8, 9, 10}  # numbers

    def fmt(cells: tuple[str, ...]) -> str:
        out = []
        for i, c in enumerate(cells[:-1]):
            out.append(c.rjust(widths[i]) if i in right else c.ljust(widths[i]))
        out.insert(3, "->")  # client -> server
        return "  " + "  ".join(out) + "  " + cells[-1]

    file.write(fmt(HEADER).replace("->", "  ") + "\n")
    for r in rows:
        file.write(fmt(r) + "\n")
