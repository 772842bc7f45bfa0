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
            try:
                hosts.add(ipaddress.ip_address(h).packed)
            except ValueError:
                raise ValueError(f"--host {h!r} is not an IP address") from None
        return cls(frozenset(int(p) for p in many(port)), frozenset(hosts),
                   frozenset(int(s) for s in many(session)), frozenset(many(namespace)))

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


