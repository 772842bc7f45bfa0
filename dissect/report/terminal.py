"""The headline figures of an analysis on a terminal (``dissect summary``).

Everything printed that came from traffic (event names, namespaces, hosts, anomaly kinds, reader
warning details, file names) goes through :func:`safe_text` first, so a capture cannot move the
cursor, rewrite earlier lines, set the window title or reverse the text direction.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

# C0 controls, DEL, C1 controls, and the Unicode format characters that reorder or hide text
# (bidi embeddings/overrides/isolates, zero-width marks, line/paragraph separators, BOM).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)
MAX_TEXT = 200


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe_text(s: Any, limit: int | None = MAX_TEXT) -> str:
    """``s`` as a string fit for a terminal: control and bidi characters shown as ``\\xNN`` escapes.

    Nothing that a terminal interprets (ESC, CR, BS, BEL, C1 CSI, ...) survives; the text is cut to
    ``limit`` characters (``...`` marks a cut).
    """
    if s is None:
        return ""
    text = s if isinstance(s, str) else str(s)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    return _UNSAFE.sub(_escape_char, text)


def _fmt_ms(x: Any) -> str:
    if x is None:
        return "-"
    x = float(x)
    if x >= 1000:
        return f"{x / 1000:.2f} s"
    if x >= 10:
        return f"{x:.1f} ms"
    return f"{x:.3f} ms"


def _fmt_int(x: Any) -> str:
    return "-" if x is None else f"{int(x):,}"


def _size(f: Mapping[str, Any]) -> str:
    """A capture file's size: for a gzip-compressed one, the capture's bytes and the file's."""
    if f.get("uncompressed_bytes") is None:
        return _fmt_bytes(f.get("bytes"))
    return f"{_fmt_bytes(f.get('uncompressed_bytes'))} (gzip: {_fmt_bytes(f.get('bytes'))} on disk)"


def _fmt_bytes(x: Any) -> str:
    if x is None:
        return "-"
    v = float(x)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{int(v)} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{v:.1f} GiB"  # pragma: no cover


def plural(n: Any, word: str, many: str | None = None) -> str:
    """``1 session``, ``2 sessions``, ``- sessions`` (count unknown): the count with its noun."""
    if n is None:
        return f"- {many or word + 's'}"
    return f"{int(n):,} {word if int(n) == 1 else (many or word + 's')}"


def _counts(d: Mapping[str, Any] | None) -> str:
    if not d:
        return "-"
    items = sorted(d.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    return ", ".join(f"{safe_text(k, 60) or '-'} {int(v):,}" for k, v in items)


def _pct_line(p: Mapping[str, Any] | None, count: bool = True) -> str:
    """Percentiles of a distribution; ``count``: lead with ``n=`` (left out where the line
    already gives the count)."""
    if not p or not p.get("count"):
        return "-"
    return (
        (f"n={p['count']:,}  " if count else "") + f"p50 {_fmt_ms(p.get('p50'))}  p90 {_fmt_ms(p.get('p90'))}  "
        f"p99 {_fmt_ms(p.get('p99'))}  max {_fmt_ms(p.get('max'))}"
    )


def _num_pct_line(p: Mapping[str, Any] | None) -> str:
    """Percentiles of a count (sockets reached): ``p50 3  p90 3.8  p99 4  max 4``."""
    if not p or not p.get("count"):
        return "-"

    def num(x: Any) -> str:
        return "-" if x is None else f"{float(x):,.1f}".removesuffix(".0")

    return f"p50 {num(p.get('p50'))}  p90 {num(p.get('p90'))}  p99 {num(p.get('p99'))}  max {num(p.get('max'))}"


def print_summary(
    analysis_or_summary: Analysis | Mapping[str, Any],
    file: IO[str] | None = None,
    color: bool | None = None,
    top: int = 10,
) -> None:
    """Print the headline figures of an analysis or of a summary.json dict.

    ``color=None`` styles the output only when ``file`` is a terminal.
    """
    from dissect.output.summary import summary_of

    if isinstance(analysis_or_summary, Mapping):
        s: Mapping[str, Any] = analysis_or_summary
    else:
        s = summary_of(analysis_or_summary)
    out = file if file is not None else sys.stdout
    if color is None:
        isatty = getattr(out, "isatty", None)
        color = bool(isatty and isatty())

    def head(text: str) -> None:
        line = click.style(text, bold=True, fg="cyan") if color else text
        out.write(line + "\n")

    def row(label: str, value: str, bad: bool = False) -> None:
        lab = f"  {label:<21} "
        if color:
            lab = click.style(lab, dim=True)
            if bad:
                value = click.style(value, fg="red", bold=True)
        out.write(f"{lab}{value}\n")

    totals = s.get("totals", {})
    head("Captures")
    files = s.get("files") or []
    for f in files[:top]:
        lts = ",".join(safe_text(x, 20) for x in f.get("link_types") or []) or "-"
        row(
            safe_text(f.get("path"), 60),
            f"{plural(f.get('packets'), 'packet')}, {_size(f)}, "
            f"link {lts}, {plural(f.get('sessions'), 'session')}",
        )
    if len(files) > top:
        row("...", f"{len(files) - top} more files")
    for skipped in s.get("skipped_files") or []:
        row("skipped", f"{safe_text(skipped.get('path'), 60)}: {safe_text(skipped.get('reason'), 100)}", bad=True)
    row("files", _fmt_int(totals.get("files", len(files))))
    row("packets", _fmt_int(totals.get("packets")))
    packed = [f for f in files if f.get("uncompressed_bytes") is not None]
    if packed:
        unpacked = sum(int(f.get("uncompressed_bytes") or 0) for f in packed)
        unpacked += sum(int(f.get("bytes") or 0) for f in files if f.get("uncompressed_bytes") is None)
        row("bytes", f"{_fmt_bytes(unpacked)} of captures ({_fmt_bytes(totals.get('bytes'))} on disk, "
                     f"{plural(len(packed), 'file')} gzip-compressed)")
    else:
        row("bytes", _fmt_bytes(totals.get("bytes")))
    cap = s.get("capture") or {}
    if cap.get("duration_s") is not None:
        row("duration", f"{float(cap['duration_s']):.3f} s")

    head("Sessions")
    row("total", _fmt_int(totals.get("sessions")))
    protos = {k: v.get("sessions", 0) for k, v in (s.get("protocols") or {}).items()}
    row("by app protocol", _counts({k: v for k, v in protos.items() if v}))
    sess = s.get("sessions") or {}
    row("closed by", _counts(sess.get("by_close")))
    row(
        "tcp trouble",
        f"{_fmt_int(sess.get('retransmissions'))} retransmissions, "
        f"{_fmt_int(sess.get('out_of_order'))} out of order, "
        f"{_fmt_bytes(sess.get('lost_bytes'))} lost",
        bad=bool(sess.get("lost_bytes")),
    )

    layers = {k: h for k, h in (s.get("handshakes") or {}).items() if h.get("count")}
    if layers:
        head("Handshakes")
    for layer, h in layers.items():
        failed = int(h.get("failed") or 0)
        row(
            safe_text(layer, 20),
            f"{h['count']:,} ({failed:,} failed)  {_pct_line(h.get('duration_ms'), count=False)}",
            bad=failed > 0,
        )

    tls = s.get("tls") or {}
    if tls.get("sessions"):
        head("TLS")
        row("sessions", f"{_fmt_int(tls['sessions'])} ({_counts(tls.get('by_version'))})")
        row("decrypted", _fmt_int(tls.get("decrypted")))
        undecrypted = int(tls.get("not_decrypted") or 0)
        if undecrypted:
            row("not decrypted", f"{undecrypted:,} ({_counts(tls.get('not_decrypted_by_reason'))})", bad=True)
            reasons = tls.get("not_decrypted_by_reason") or {}
            if any(r.startswith("no key") for r in reasons):
                row("", "give the key log with --tls-keylog FILE (SSLKEYLOGFILE, node --tls-keylog, "
                        "Python keylog_filename, curl, browsers)")

    http = s.get("http") or {}
    if http.get("count"):
        head("HTTP")
        row("exchanges", _fmt_int(http.get("count")))
        row("by status", _counts(http.get("by_status")))
        row("duration", _pct_line(http.get("duration_ms")))

    fr = s.get("ws_frames") or {}
    msg = s.get("ws_messages") or {}
    if fr.get("count") or msg.get("count"):
        head("WebSocket")
        row("frames", _fmt_int(fr.get("count")))
        row("frames by opcode", _counts(fr.get("by_opcode")))
        if fr.get("by_close_code"):
            row("close codes", _counts(fr.get("by_close_code")))
        row("messages", _fmt_int(msg.get("count")))
        size = msg.get("payload_bytes") or {}
        if size.get("count"):
            row(
                "message size",
                f"p50 {_fmt_bytes(size.get('p50'))}  p90 {_fmt_bytes(size.get('p90'))}  "
                f"p99 {_fmt_bytes(size.get('p99'))}  max {_fmt_bytes(size.get('max'))}",
            )
    else:
        head("WebSocket")
        row("frames", "0: no WebSocket traffic found")

    sio = s.get("sio_packets") or {}
    if sio.get("count"):
        head("Engine.IO / Socket.IO")
        row("packets", _fmt_int(sio.get("count")))
        row("by engine.io type", _counts(sio.get("by_eio_type")))
        row("by socket.io type", _counts(sio.get("by_sio_type")))
        events = sio.get("events") or []
        for e in events[:top]:
            ns = safe_text(e.get("namespace") or "/", 40)
            ev = safe_text(e.get("event"), 60)
            row(f"event {ns}", f"{ev}  {int(e.get('count') or 0):,}")
        if len(events) > top:
            row("...", f"{len(events) - top} more events listed in summary.json")
        row("ack latency", _pct_line(sio.get("ack_latency_ms")))

    socks = s.get("sio_sockets") or {}
    fan = s.get("sio_broadcasts")
    if socks.get("count") or (fan or {}).get("count"):
        head("Socket.IO sockets")
        row("sockets", _fmt_int(socks.get("count")))
        reasons = socks.get("by_disconnect_reason") or {}
        bad = {"ping timeout", "transport error"}
        row("why they ended", _counts(reasons), bad=any(r in bad for r in reasons))
        row("ended by", _counts(socks.get("by_disconnect_by")))
        if socks.get("refused"):
            row("refused", _fmt_int(socks.get("refused")), bad=True)
        if socks.get("recovered") or socks.get("not_recovered"):
            row("recovery", f"{int(socks.get('recovered') or 0):,} recovered, "
                            f"{int(socks.get('not_recovered') or 0):,} not; "
                            f"{int(socks.get('replayed_events') or 0):,} events replayed",
                bad=bool(socks.get("not_recovered")))
        if (socks.get("max_pong_delay_ms") or {}).get("count"):
            row("worst pong delay", _pct_line(socks.get("max_pong_delay_ms")))
        # sio_broadcasts: absent from the summary of an earlier dissect, then not a word
        if fan is not None and not fan.get("count"):
            row("broadcasts", "none (no server event sent alike to several sockets)")
        elif fan:
            row("broadcasts", plural(fan.get("count"), "fan-out"))
            row("sockets reached", _num_pct_line(fan.get("recipients")))
            row("broadcast spread", _pct_line(fan.get("spread_ms"), count=False))

    anom = s.get("anomalies") or {}
    head("Anomalies")
    row("total", _fmt_int(anom.get("total", 0)), bad=bool(anom.get("total")))
    for table, kinds in (anom.get("by_table") or {}).items():
        row(safe_text(table, 20), _counts(kinds), bad=True)

    warn = s.get("warnings") or {}
    head("Reader warnings")
    row("total", _fmt_int(warn.get("total", 0)), bad=bool(warn.get("total")))
    for kind, w in (warn.get("by_kind") or {}).items():
        details = "; ".join(safe_text(d, 80) for d in w.get("details") or [])
        row(
            safe_text(kind, 22),
            f"{int(w.get('count') or 0):,}" + (f"  ({details})" if details else ""),
            bad=True,
        )
