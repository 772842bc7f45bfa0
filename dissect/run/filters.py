"""Filters shared by every command (``--port``, ``--host``, ``--session``, ``--namespace``).

Port and host filters select flows as they are created (other traffic costs almost nothing);
session and namespace filters select rows on their way to the consumers.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dissect.pipeline import Consumer
from dissect.records import TABLES

# Each table's time column for --since/--until (sessions: the span ts_first..ts_last overlaps).
TIME_COLUMNS = {"handshakes": "ts_start", "http": "ts_request", "ws_frames": "ts", "ws_messages": "ts_last",
                "sio_packets": "ts", "sio_sockets": "ts_connect"}

TimeArg = str | float | int | dt.datetime | None


def parse_time(value: TimeArg, option: str = "time") -> int | None:
    """Epoch seconds (``1700000000.5``) or ISO 8601 (``2026-12-04T15:00:00Z``; without a zone: UTC)
    as integer nanoseconds; None for None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        when = value
    else:
        try:
            return round(float(value) * 1e9)
        except ValueError:
            pass
        try:
            when = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{option} {value!r} is neither epoch seconds nor an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return round(when.timestamp() * 1e9)


@dataclass
class Filters:
    """Filters shared by every command (``--port``, ``--host``, ``--session``, ``--namespace``,
    ``--since``, ``--until``, ``--event``).

    Port and host filters select flows as they are created (other traffic costs almost nothing);
    the others select rows on their way to the consumers: every packet is still dissected, so a
    session that straddles the time window keeps its full context (its handshake is read), and
    only its rows outside the window are dropped.
    """

    ports: frozenset[int] = frozenset()
    hosts: frozenset[bytes] = frozenset()
    sessions: frozenset[int] = frozenset()
    namespaces: frozenset[str] = frozenset()
    since: int | None = None  # ns
    until: int | None = None  # ns
    events: frozenset[str] = frozenset()  # Socket.IO rows of these events (or ACKs answering them)

    @classmethod
    def make(cls, port: Iterable[int] | int | None = None, host: Iterable[str] | str | None = None,
             session: Iterable[int] | int | None = None,
             namespace: Iterable[str] | str | None = None, since: TimeArg = None, until: TimeArg = None,
             event: Iterable[str] | str | None = None) -> Filters:
        def many(x: Any) -> list[Any]:
            if x is None:
                return []
            if isinstance(x, (str, int)):
                return [x]
            return list(x)

        hosts = set()
        for h in many(host):
            hosts.add(host_address(h))
        ports = set()
        for p in many(port):
            try:
                number = int(p)
            except (TypeError, ValueError):
                number = -1
            if isinstance(p, (bool, float)) or not 0 <= number <= 65535:
                raise ValueError(f"--port {p!r} is not a port number (0 to 65535)")
            ports.add(number)
        t0, t1 = parse_time(since, "--since"), parse_time(until, "--until")
        if t0 is not None and t1 is not None and t1 < t0:
            raise ValueError("--until is before --since")
        return cls(frozenset(ports), frozenset(hosts),
                   frozenset(int(s) for s in many(session)), frozenset(many(namespace)), t0, t1,
                   frozenset(many(event)))

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.ports or self.hosts or self.sessions or self.namespaces)

    def flow_filter(self) -> Callable[[bytes, int, bytes, int], bool] | None:
        if not self.ports and not self.hosts:
            return None
        ports, hosts = self.ports, self.hosts

        def accept(cip: bytes, cport: int, sip: bytes, sport: int) -> bool:
            if ports and cport not in ports and sport not in ports:
                return False
            return not hosts or cip in hosts or sip in hosts

        return accept

    def wrap(self, consumer: Consumer) -> Consumer:
        if not (self.sessions or self.namespaces or self.events or self.since is not None
                or self.until is not None):
            return consumer
        return RowFilter(consumer, self)


def host_address(text: str) -> bytes:
    """The packed address of ``--host`` text: an IPv4 or IPv6 address, the IPv6 one also in
    brackets as in a URL or an endpoint (``[::1]``, RFC 3986 section 3.2.2); ValueError if none."""
    h = text.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    try:
        return ipaddress.ip_address(h).packed
    except ValueError:
        raise ValueError(f"--host {text!r} is not an IP address") from None


class RowFilter:
    """A consumer that passes on only the rows the filters select."""

    def __init__(self, inner: Consumer, filters: Filters) -> None:
        self.inner = inner
        self.f = filters
        lo = -(1 << 127) if filters.since is None else filters.since
        hi = 1 << 127 if filters.until is None else filters.until
        self.window = None if filters.since is None and filters.until is None else (lo, hi)

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        f = self.f
        if f.sessions:
            rows = [r for r in rows if r[0] in f.sessions]
        if table == "sio_sockets" and f.namespaces:
            rows = [r for r in rows if r.namespace in f.namespaces]  # type: ignore[attr-defined]
        if table == "sio_packets":
            if f.namespaces:
                rows = [r for r in rows if r.namespace in f.namespaces]  # type: ignore[attr-defined]
            if f.events:
                rows = [r for r in rows if r.event in f.events or r.acked_event in f.events]  # type: ignore[attr-defined]
        if self.window is not None:
            lo, hi = self.window
            if table == "sessions":
                rows = [r for r in rows if r.ts_last >= lo and r.ts_first <= hi]  # type: ignore[attr-defined]
            elif table == "sio_sockets":  # a socket open during the window (like a session)
                rows = [r for r in rows if (r.ts_disconnect is None or r.ts_disconnect >= lo)  # type: ignore[attr-defined]
                        and r.ts_connect <= hi]  # type: ignore[attr-defined]
            else:
                i = TABLES[table]._fields.index(TIME_COLUMNS[table])  # type: ignore[attr-defined]
                rows = [r for r in rows if r[i] is not None and lo <= r[i] <= hi]
        if rows:
            self.inner.add(table, rows)


