"""The outcome of a cross-check: every :class:`Disagreement` between dissect and Wireshark, and how
many items each check compared (:class:`CrossCheckResult`, rendered as text, JSON or JUnit test
cases)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from dissect.report.check.results import RuleResult

__all__ = ["CHECKS", "MAX_JUNIT_LINES", "CrossCheckResult", "Disagreement"]

#: The checks, in the order they are reported.
CHECKS = ("streams", "roles", "tcp_handshake", "bytes", "http", "ws_handshake", "ws_frames")
#: Disagreements listed in one JUnit test case (the count says how many there were).
MAX_JUNIT_LINES = 50


@dataclass(frozen=True)
class Disagreement:
    """One difference between dissect and Wireshark.

    ``session_id`` is dissect's session, or None where no dissect session corresponds (a
    ``tcp.stream`` dissect does not have); ``tcp_stream`` is Wireshark's ``tcp.stream`` of it
    (what to type in Wireshark: ``tcp.stream == N``), None when unknown.
    """

    check: str
    session_id: int | None
    detail: str
    tcp_stream: int | None = None

    def where(self) -> str:
        """``session 7 (tcp.stream == 6)``, ``tcp.stream == 4`` or ``-``."""
        stream = None if self.tcp_stream is None else f"tcp.stream == {self.tcp_stream}"
        if self.session_id is None:
            return stream or "-"
        return f"session {self.session_id}" + (f" ({stream})" if stream else "")


@dataclass
class CrossCheckResult:
    """The outcome of one capture: every disagreement, how many items each check compared, and
    ``notes`` on what limited the comparison (a capture cut short is compared as far as tshark read
    it)."""

    path: str
    engine: str
    disagreements: list[Disagreement] = field(default_factory=list)
    compared: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    digits: int = 9  # decimals shown in times: the capture's precision (6 or 9)
    notes: list[str] = field(default_factory=list)
    # dissect's session_id -> Wireshark's tcp.stream (the sessions table's tcp_stream column)
    streams: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.disagreements

    def add(self, check: str, session_id: int | None, detail: str, tcp_stream: int | None = None) -> None:
        if tcp_stream is None and session_id is not None:
            tcp_stream = self.streams.get(session_id)
        self.disagreements.append(Disagreement(check, session_id, detail, tcp_stream))

    def count(self, check: str, n: int = 1) -> None:
        self.compared[check] = self.compared.get(check, 0) + n

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def epoch(self, ns: int | None) -> str:
        """Epoch seconds with the capture's precision (what Wireshark's frame.time_epoch shows)."""
        if ns is None:
            return "-"
        if self.digits == 6:
            us = (ns + 500) // 1000
            return f"{us // 1_000_000}.{us % 1_000_000:06d}"
        return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"

    def t(self, ns: int | None) -> str:
        """A time for messages: UTC ISO 8601 with the capture's precision, then the epoch seconds in
        brackets (``2023-11-14T22:13:20.123457Z [1700000000.123457]``)."""
        if ns is None:
            return "-"
        epoch = self.epoch(ns)
        whole, _, frac = epoch.partition(".")
        try:
            day = dt.datetime.fromtimestamp(int(whole), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        except (OverflowError, OSError, ValueError):
            return epoch
        return f"{day}.{frac}Z [{epoch}]"

    def to_dict(self) -> dict[str, Any]:
        return {"capture": self.path, "engine": self.engine, "compared": dict(self.compared),
                "notes": list(self.notes), "disagreements": [asdict(d) for d in self.disagreements]}

    def _by_check(self) -> dict[str, list[Disagreement]]:
        by_check: dict[str, list[Disagreement]] = defaultdict(list)
        for d in self.disagreements:
            by_check[d.check].append(d)
        return by_check

    def render(self, quiet: bool = False) -> str:
        """Readable text: disagreements grouped by check, then the counts compared and the notes.
        ``quiet``: the disagreements only (empty text when there is none)."""
        if quiet and self.ok:
            return ""
        head = f"{self.path} ({self.engine}): "
        head += "no disagreement" if self.ok else f"{len(self.disagreements)} disagreement(s)"
        lines = [head]
        by_check = self._by_check()
        for check in sorted(by_check, key=lambda c: CHECKS.index(c) if c in CHECKS else 99):
            items = by_check[check]
            lines.append(f"  {check} ({len(items)}):")
            for d in items:
                lines.append(f"    {d.where()}: {d.detail}")
        if not quiet:
            counts = ", ".join(f"{c} {n}" for c, n in self.compared.items())
            lines.append(f"  compared: {counts}")
            lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def junit_results(self) -> list[RuleResult]:
        """One JUnit test case per check of :data:`CHECKS` (and any other with a disagreement), named
        ``<capture>: <check>``."""
        by_check = self._by_check()
        note = f" ({'; '.join(self.notes)})" if self.notes else ""
        out = []
        for check in [*CHECKS, *sorted(set(by_check) - set(CHECKS))]:
            items = by_check.get(check, [])
            n = self.compared.get(check, 0)
            if not items:
                out.append(RuleResult(f"{self.path}: {check}", True,
                                      f"{n} compared with {self.engine}, no disagreement{note}", value=0.0))
                continue
            lines = [f"{d.where()}: {d.detail}" for d in items[:MAX_JUNIT_LINES]]
            out.append(RuleResult(f"{self.path}: {check}", False,
                                  f"{len(items)} disagreement(s) with {self.engine} ({n} compared){note}",
                                  lines, float(len(items)), len(items)))
        return out
