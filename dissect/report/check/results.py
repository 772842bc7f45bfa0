"""The outcome of a rule (:class:`RuleResult`) and its text: offending rows named by their
identifying columns, cell values, and the results as printed by ``dissect check``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dissect.report.terminal import safe_text


@dataclass
class RuleResult:
    """The outcome of one rule (or one comparison of ``dissect diff``)."""

    name: str
    passed: bool
    message: str
    offenders: list[str] = field(default_factory=list)
    value: float | None = None
    total_offenders: int = 0

    def lines(self) -> list[str]:
        """Human-readable lines: the verdict and message, then the offenders indented."""
        out = [f"{'PASS' if self.passed else 'FAIL'} {safe_text(self.name)}: {self.message}"]
        out += [f"    {o}" for o in self.offenders]
        more = self.total_offenders - len(self.offenders)
        if more > 0:
            out.append(f"    ... and {more} more")
        return out


MAX_OFFENDERS = 10

# Columns that identify a row in offender lists, per table.
ROW_IDS: dict[str, tuple[str, ...]] = {
    "sessions": ("session_id", "app_protocol"),
    "handshakes": ("session_id", "layer"),
    "http": ("session_id", "method", "target"),
    "ws_frames": ("session_id", "frame_index", "direction", "opcode_name"),
    "ws_messages": ("session_id", "message_index", "direction", "opcode_name"),
    "sio_packets": ("session_id", "direction", "sio_type", "namespace", "event"),
    "sio_sockets": ("session_id", "namespace", "eio_sid", "socket_sid"),
    "sio_broadcasts": ("broadcast_index", "namespace", "event", "recipients"),
}


def cell_text(v: Any, limit: int = 60) -> str:
    """A cell value as offender lists and messages show it: ``-`` when missing, true/false, whole
    floats without ``.0``, text made safe to print and cut to ``limit``."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.6g}"
    return safe_text(v, limit)


# Columns shown after the tested one when they are not empty (quoted: they hold free text).
ROW_DETAILS: dict[str, tuple[str, ...]] = {
    "handshakes": ("detail",),
    "sio_sockets": ("disconnect_reason",),
}


def describe_row(
    table: str, row: Mapping[str, Any], column: str | None = None, source_file: str | None = None
) -> str:
    """One offender: the row's identifying columns, the tested column, then the row's details
    (a handshake's ``detail``, such as a CONNECT_ERROR message) and ``source_file`` when given."""
    cols = list(ROW_IDS.get(table, ("session_id",)))
    if column and column not in cols:
        cols.append(column)
    parts = []
    for c in cols:
        if c in row:
            v = row[c]
            if c in ("namespace", "event", "target") and (v is None or v == ""):
                continue
            parts.append(f"{c}={cell_text(v)}")
    for c in ROW_DETAILS.get(table, ()):
        v = row.get(c)
        if c != column and isinstance(v, str) and v:
            parts.append(f'{c}="{cell_text(v, 120)}"')
    if source_file:
        parts.append(f"source_file={cell_text(source_file, 200)}")
    return " ".join(parts)


def source_files(sessions: pd.DataFrame) -> dict[int, str] | None:
    """``session_id`` -> ``source_file`` when the sessions come from more than one capture (offender
    lines then name the file), else None."""
    if not len(sessions) or "source_file" not in sessions.columns:
        return None
    if sessions["source_file"].nunique() < 2:
        return None
    return {int(i): str(f) for i, f in zip(sessions["session_id"], sessions["source_file"], strict=False)}


def offender_lines(
    table: str, df: pd.DataFrame, column: str | None, sources: Mapping[int, str] | None = None
) -> tuple[list[str], int]:
    """The first :data:`MAX_OFFENDERS` rows of ``df`` described (:func:`describe_row`), and how
    many rows there are; with ``sources`` (:func:`source_files`) each names its capture."""
    head = df.head(MAX_OFFENDERS)
    lines = []
    for r in head.to_dict("records"):
        src = None
        if sources is not None:
            sid = r.get("session_id")
            src = sources.get(int(sid)) if sid is not None and not pd.isna(sid) else None
        lines.append(describe_row(table, r, column, src))
    return lines, len(df)


def format_results(results: Iterable[RuleResult], failures_only: bool = False, noun: str = "rule(s)") -> str:
    """The results as text, one rule per line with its offenders under it, and a total line
    (``6 rule(s): 3 held, 3 failed``; ``noun`` names what was checked)."""
    results = list(results)
    lines: list[str] = []
    for res in results:
        if failures_only and res.passed:
            continue
        lines += res.lines()
    failed = sum(1 for r in results if not r.passed)
    lines.append(f"{len(results)} {noun}: {len(results) - failed} held, {failed} failed")
    return "\n".join(lines)

