"""Filters shared by every command (``--port``, ``--host``, ``--session``, ``--namespace``).

Port and host filters select flows as they are created (other traffic costs almost nothing);
session and namespace filters select rows on their way to the consumers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dissect.pipeline import Consumer


@dataclass
class Filters:
    """Filters shared by every command (``--port``, ``--host``, ``--session``, ``--namespace``).

    Port and host filters select flows as they are created (other traffic costs almost nothing);
    session and namespace filters select rows on their way to the consumers.
    """

    ports: frozenset[int] = frozenset()
    hosts: frozenset[bytes] = frozenset()
    sessions: frozenset[int] = frozenset()
    namespaces: frozenset[str] = frozenset()

    @classmethod
    def make(cls, port: Iterable[int] | int | None = None, host: Iterable[str] | str | None = None,
             session: Iterable[int] | int | None = None,
             namespace: Iterable[str] | str | None = None) -> Filters:
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
        return cls(frozenset(ports), frozenset(hosts),
                   frozenset(int(s) for s in many(session)), frozenset(many(namespace)))

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
        if not self.sessions and not self.namespaces:
            return consumer
        return RowFilter(consumer, self.sessions, self.namespaces)


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
    def __init__(self, inner: Consumer, sessions: frozenset[int], namespaces: frozenset[str]) -> None:
        self.inner = inner
        self.sessions = sessions
        self.namespaces = namespaces

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        if self.sessions:
            rows = [r for r in rows if r[0] in self.sessions]
        if self.namespaces and table == "sio_packets":
            rows = [r for r in rows if r.namespace in self.namespaces]  # type: ignore[attr-defined]
        if rows:
            self.inner.add(table, rows)


