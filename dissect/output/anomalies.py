"""The ``anomaly`` column's tags: a cell holds ``;``-joined tags, and a tag's kind is the tag up to its
first ``:``, ``=`` or ``(`` (``"bad_close_code=1005"`` counts as ``bad_close_code``)."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["anomaly_kind", "split_anomalies"]

_KIND_CUT = re.compile(r"[:=(]")


def anomaly_kind(tag: str) -> str:
    """The kind of one anomaly tag: the tag up to its first ``:``, ``=`` or ``(``."""
    kind = _KIND_CUT.split(tag.strip(), maxsplit=1)[0].strip()
    return (kind or tag.strip())[:80]


def split_anomalies(cell: Any) -> list[str]:
    """The tags of one ``anomaly`` cell (``;``-joined); empty for a missing or empty cell."""
    if not cell or not isinstance(cell, str):
        return []
    return [t.strip() for t in cell.split(";") if t.strip()]
