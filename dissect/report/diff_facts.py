"""What ``dissect diff`` compares, taken from one analysis: counts by readable keys
(``EVENT "chat" on /chat c2s``, ``text c2s``, ``GET 101``) and the facts a regression is made of
(anomalies by kind, lost bytes, retransmissions, close kinds and codes, failed handshakes, TLS
sessions decrypted). Nothing session-specific (timestamps, addresses, ports, session ids) is in a
key, so the same traffic recorded another day compares equal.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from dissect.output.anomalies import anomaly_kind, split_anomalies
from dissect.report.check import cell_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

# The key columns of the counts by key, per table (their values name the key: see key_label).
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "sessions": ("transport", "app_protocol"),
    "handshakes": ("layer", "transport"),
    "http": ("method", "status"),
    "ws_frames": ("opcode_name", "direction"),
    "ws_messages": ("opcode_name", "direction"),
    "sio_packets": ("sio_type", "event", "namespace", "eio_type", "attachment_index", "direction"),
}

# What the counts by key of each table are by, as their results are named
# (``ws_frames: counts by opcode and direction``).
KEY_TITLES: dict[str, str] = {
    "sessions": "app protocol and transport",
    "handshakes": "layer and transport",
    "http": "method and status",
    "ws_frames": "opcode and direction",
    "ws_messages": "opcode and direction",
    "sio_packets": "type, event, namespace and direction",
}

# The tables whose rows carry an ``anomaly`` column.
ANOMALY_TABLES = ("sessions", "http", "ws_frames", "ws_messages", "sio_packets")


def missing(v: Any) -> bool:
    """True for a missing or empty cell (None, NA, NaN, ``''``)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v == ""


def _text(v: Any) -> str:
    return cell_text(v, 60)


def key_label(table: str, values: dict[str, Any]) -> str:
    """A key of the counts by key as people read it, leaving out empty parts:
    ``socketio over tcp``, ``engineio (websocket)``, ``GET 101``, ``text c2s``,
    ``EVENT "chat" on /chat c2s``, ``Engine.IO ping s2c``, ``attachment on /chat c2s``."""
    v = {k: (None if missing(x) else x) for k, x in values.items()}
    parts: list[str] = []
    if table == "sessions":
        proto, transport = v.get("app_protocol"), v.get("transport")
        if proto and transport and proto != transport:
            return f"{_text(proto)} over {_text(transport)}"
        return _text(proto or transport or "unknown")
    if table == "handshakes":
        layer = _text(v.get("layer") or "unknown")
        transport = v.get("transport")
        return f"{layer} ({_text(transport)})" if transport and transport != v.get("layer") else layer
    if table == "http":
        status = v.get("status")
        return f"{_text(v.get('method') or '?')} {_text(status) if status is not None else 'no response'}"
    if table in ("ws_frames", "ws_messages"):
        return f"{_text(v.get('opcode_name') or '?')} {_text(v.get('direction') or '?')}"
    if table == "sio_packets":
        if v.get("sio_type"):
            parts.append(_text(v["sio_type"]))
            if v.get("event"):
                parts.append('"' + cell_text(v["event"], 60) + '"')
        elif v.get("attachment_index") is not None:
            parts.append("attachment")
        else:
            parts.append(f"Engine.IO {_text(v.get('eio_type') or '?')}")
        if v.get("namespace"):
            parts += ["on", _text(v["namespace"])]
        if v.get("direction"):
            parts.append(_text(v["direction"]))
        return " ".join(parts)
    return " ".join(f"{c}={'-' if x is None else _text(x)}" for c, x in v.items())


def keyed_counts(table: str, df: pd.DataFrame, columns: tuple[str, ...] | None = None) -> dict[str, int]:
    """Row counts of ``df`` (a table of the report) by :func:`key_label` of its key columns."""
    cols = [c for c in (columns or KEY_COLUMNS.get(table, ())) if c in df.columns]
    if not len(df) or not cols:
        return {}
    sizes = df.groupby(cols, dropna=False, sort=False).size()
    out: dict[str, int] = {}
    for key, n in sizes.items():
        parts = key if isinstance(key, tuple) else (key,)
        label = key_label(table, dict(zip(cols, parts, strict=False)))
        out[label] = out.get(label, 0) + int(n)
    return out


def anomaly_counts(a: Analysis) -> dict[str, int]:
    """Anomaly tags by ``kind in table`` (``resync in ws_frames``), over every table with an
    ``anomaly`` column."""
    out: dict[str, int] = {}
    for table in ANOMALY_TABLES:
        df = a.table(table)
        if not len(df) or "anomaly" not in df.columns:
            continue
        for cell, n in df["anomaly"].value_counts(dropna=True).items():
            for tag in split_anomalies(cell):
                key = f"{anomaly_kind(tag)} in {table}"
                out[key] = out.get(key, 0) + int(n)
    return out


def column_sum(df: pd.DataFrame, column: str) -> int:
    """The sum of a numeric column (missing values left out; an absent column is 0)."""
    if not len(df) or column not in df.columns:
        return 0
    return int(pd.to_numeric(df[column], errors="coerce").fillna(0).sum())


def session_lines(a: Analysis, column: str, limit: int = 10) -> list[str]:
    """The sessions of ``a`` with a positive ``column`` (lost_bytes, retransmissions), largest first,
    each as ``session_id=1 lost_bytes=6140`` (with its source_file when there are several)."""
    s = a.sessions
    if not len(s) or column not in s.columns:
        return []
    vals = pd.to_numeric(s[column], errors="coerce").fillna(0)
    rows = s[vals > 0].assign(_v=vals[vals > 0]).sort_values("_v", ascending=False, kind="stable")
    several = "source_file" in s.columns and s["source_file"].nunique() > 1
    out = []
    for r in rows.head(limit).to_dict("records"):
        line = f"session_id={cell_text(r['session_id'])} {column}={int(r['_v'])}"
        if several:
            line += f" source_file={cell_text(r['source_file'], 200)}"
        out.append(line)
    return out


def close_kinds(a: Analysis) -> dict[str, int]:
    """Sessions by how they ended: ``fin``, ``rst``, ``open`` (TCP only)."""
    s = a.sessions
    if not len(s) or "close" not in s.columns:
        return {}
    return {str(k): int(n) for k, n in s["close"].dropna().value_counts().items() if k != ""}


def close_codes(a: Analysis) -> dict[str, int]:
    """WebSocket close frames by close code and direction (``1000 c2s``, ``no code s2c``)."""
    f = a.ws_frames
    if not len(f) or "opcode_name" not in f.columns:
        return {}
    closes = f[f["opcode_name"] == "close"]
    out: dict[str, int] = {}
    for code, direction in zip(closes["close_code"], closes["direction"], strict=False):
        key = ("no code" if missing(code) else cell_text(code)) + f" {cell_text(direction)}"
        out[key] = out.get(key, 0) + 1
    return out


def failed_handshakes(a: Analysis) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Failed handshakes (``ok`` false; not those the capture's end cut short) by layer, and the
    distinct details of the failures per layer (``namespace=/admin error=not authorized``)."""
    h = a.handshakes
    if not len(h) or "ok" not in h.columns:
        return {}, {}
    failed = h[h["ok"].map(lambda x: x is False or (not missing(x) and not bool(x)))]
    counts = {str(k): int(n) for k, n in failed["layer"].value_counts().items()}
    details: dict[str, list[str]] = {}
    for layer, detail in zip(failed["layer"], failed["detail"], strict=False):
        if missing(detail):
            continue
        seen = details.setdefault(str(layer), [])
        text = cell_text(detail, 120)
        if text not in seen:
            seen.append(text)
    return counts, details


def tls_decryption(a: Analysis) -> dict[str, int]:
    """TLS sessions by whether dissect decrypted them (``decrypted``, ``not decrypted``)."""
    s = a.sessions
    if not len(s) or "tls_version" not in s.columns:
        return {}
    tls = s[s["tls_version"].map(lambda x: not missing(x))]
    out: dict[str, int] = {}
    for d in tls.get("tls_decrypted", pd.Series([None] * len(tls), index=tls.index)):
        key = "decrypted" if (not missing(d) and bool(d)) else "not decrypted"
        out[key] = out.get(key, 0) + 1
    return out
