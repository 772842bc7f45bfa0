"""The outcome of a cross-check: every :class:`Disagreement` between dissect and Wireshark, and how
many items each check compared (:class:`CrossCheckResult`, rendered as text or JSON)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CHECKS", "CrossCheckResult", "Disagreement"]

#: The checks, in the order they are reported.
CHECKS = ("streams", "roles", "tcp_handshake", "bytes", "http", "ws_handshake", "ws_frames")


@dataclass(frozen=True)
class Disagreement:
    """One difference between dissect and Wireshark.

    ``session_id`` is dissect's session, or None where no dissect session corresponds (a
    ``tcp.stream`` dissect does not have).
    """

    check: str
    session_id: int | None
    detail: str


@dataclass
class CrossCheckResult:
    """The outcome of one capture: every disagreement, and how many items each check compared."""

    path: str
    engine: str
    disagreements: list[Disagreement] = field(default_factory=list)
    compared: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    digits: int = 9  # decimals shown in times: the capture's precision (6 or 9)

    @property
    def ok(self) -> bool:
        return not self.disagreements

    def add(self, check: str, session_id: int | None, detail: str) -> None:
        self.disagreements.append(Disagreement(check, session_id, detail))

    def count(self, check: str, n: int = 1) -> None:
        self.compared[check] = self.compared.get(check, 0) + n

    def t(self, ns: int | None) -> str:
        """A time for messages: epoch seconds with the capture's precision."""
        if ns is None:
            return "-"
        if self.digits == 6:
            us = (ns + 500) // 1000
            return f"{us // 1_000_000}.{us % 1_000_000:06d}"
        return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"

    def to_dict(self) -> dict[str, Any]:
        return {"capture": self.path, "engine": self.engine, "compared": dict(self.compared),
                "disagreements": [asdict(d) for d in self.disagreements]}

    def render(self) -> str:
        """Readable text: disagreements grouped by check, then the counts compared."""
        head = f"{self.path} ({self.engine}): "
        head += "no disagreement" if self.ok else f"{len(self.disagreements)} disagreement(s)"
        lines = [head]
        by_check: dict[str, list[Disagreement]] = defaultdict(list)
        for d in self.disagreements:
            by_check[d.check].append(d)
        for check in sorted(by_check, key=lambda c: CHECKS.index(c) if c in CHECKS else 99):
            items = by_check[check]
            lines.append(f"  {check} ({len(items)}):")
            for d in items:
                where = "-" if d.session_id is None else f"session {d.session_id}"
                lines.append(f"    {where}: {d.detail}")
        counts = ", ".join(f"{c} {n}" for c, n in self.compared.items())
        lines.append(f"  compared: {counts}")
        return "\n".join(lines)

