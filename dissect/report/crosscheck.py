"""Cross-check dissect against Wireshark's own dissectors (``dissect crosscheck``).

Wireshark (tshark 4.0, or pyshark driving it) dissects the same capture and every disagreement with
dissect's tables is listed. What is compared, per capture:

``streams``
    One ``tcp.stream`` per dissect TCP session. Streams are matched to sessions by their endpoint
    pair (either order), and where a pair is reused by the first-packet time nearest to the
    session's ``ts_first``. A stream or session left without a partner is a disagreement; for the
    pairs, ``ts_first``, ``ts_last`` and ``packets_c2s``/``packets_s2c`` are compared too.
``roles``
    Only where Wireshark saw a SYN (SYN without ACK): its sender must be dissect's client and
    ``client_inferred`` must be false. Without a SYN, ``client_inferred`` must be true.
``tcp_handshake``
    ``syn_ts`` (first SYN), ``synack_ts`` (first SYN/ACK) and ``ack_ts`` (the client's first
    packet with ACK set after the SYN/ACK) against ``frame.time_epoch`` of those packets.
``bytes``
    ``bytes_c2s`` / ``bytes_s2c`` against the reassembled bytes of each direction:
    ``tshark -q -z follow,tcp,raw,N`` (engine ``tshark``), or the sum of ``tcp.len`` over the
    segments Wireshark does not flag as (spurious) retransmissions (engine ``pyshark``).
``http``
    Per session, the sequence of exchanges (method, target, status), paired by Wireshark's
    ``http.request_in`` (in order where it is missing). Times: dissect stamps a message with the
    segment that carries its *first* byte, Wireshark shows a reassembled message at its *last*
    segment; so the Wireshark time compared is that of the first frame listed in ``tcp.segment``
    (the segments it reassembled), or the frame itself for a single-segment message.
``ws_handshake``
    Per session, the ``handshakes`` rows of layer ``websocket``: ``ts_start`` against the
    first-segment time of each request carrying ``Upgrade: websocket``, ``ts_end`` against that of
    its response (whatever the status).
``ws_frames``
    Per session and direction, the sequence of (opcode, fin, masked, payload length, close code),
    aligned with :class:`difflib.SequenceMatcher` so that a missing or extra frame is reported as
    such, and for aligned frames the time (both show a frame at the packet that completed it).
    Decompressed payloads are not compared: Wireshark 4.0 inflates with the wrong side's
    permessage-deflate parameters when they are asymmetric (``shared/PROTOCOLS.md``).

Every time is compared with a tolerance of :data:`TIME_TOLERANCE_NS` (half a microsecond): dissect's
DataFrames hold float epoch seconds, whose rounding is at most about 0.12 us today, and packets of a
microsecond capture one microsecond apart must still be told apart.

UDP flows are not compared. Wireshark is run with TCP out-of-order reassembly on (dissect
reassembles out-of-order segments too).

Wireshark details the extraction copes with (tshark 4.0.17):

- ``-T fields -E occurrence=a`` flattens the frames or messages of one packet into lists; optional
  fields (``websocket.payload_length_ext_16/64``, ``websocket.payload.close.status_code``) are
  consumed in order by the frames that have them (7-bit length 126/127, close with a body).
  The list separator is ``\\x1f``, not the default comma, which URIs may contain.
- ``websocket.payload_length`` is the 7-bit field; the length is in the extended fields.
- With several HTTP responses in one segment only the first gets ``http.request_in`` (the others
  only ``http.prev_request_in``): those responses are paired with the remaining requests in order.
- FT_NONE fields such as ``tcp.analysis.retransmission`` print nothing with ``-T fields``, which
  is one more reason the tshark engine takes bytes from ``-z follow``.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dissect.api import analyze
from dissect.errors import DissectError
from dissect.output.summary import to_number

__all__ = [
    "CHECKS",
    "TIME_TOLERANCE_NS",
    "CrossCheckResult",
    "Disagreement",
    "WiresharkError",
    "WiresharkView",
    "compare",
    "compare_analysis",
    "pyshark_view",
    "tshark_view",
]

#: Largest difference between two times that still counts as the same time.
TIME_TOLERANCE_NS = 500

#: The checks, in the order they are reported.
CHECKS = ("streams", "roles", "tcp_handshake", "bytes", "http", "ws_handshake", "ws_frames")

#: Preferences given to Wireshark (both engines): full TCP and HTTP reassembly.
TSHARK_PREFS = {
    "tcp.desegment_tcp_streams": "TRUE",
    "tcp.reassemble_out_of_order": "TRUE",
    "tcp.analyze_sequence_numbers": "TRUE",
    "http.desegment_headers": "TRUE",
    "http.desegment_body": "TRUE",
}

Endpoint = tuple[str, int]

#: Streams followed per tshark run (each ``-z follow`` is one more tap over every packet).
FOLLOW_BATCH = 200


class WiresharkError(DissectError):
    """tshark (or pyshark) is missing or could not read the capture."""


# -- results -------------------------------------------------------------------------------------


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


# -- what Wireshark says ---------------------------------------------------------------------------


@dataclass
class TcpPacket:
    """One TCP segment as Wireshark dissected it."""

    frame: int
    ts: int  # ns
    stream: int
    src: Endpoint
    dst: Endpoint
    syn: bool
    ack: bool
    length: int
    retransmission: bool = False


@dataclass
class HttpMessage:
    """One HTTP request or response; ``start`` is the time of its first segment, ``ts`` the time
    of the packet Wireshark shows it at (its last segment)."""

    frame: int
    ts: int
    start: int
    stream: int
    src: Endpoint
    is_request: bool
    method: str | None = None
    uri: str | None = None
    status: int | None = None
    request_in: int | None = None
    upgrade: str | None = None


@dataclass
class WsFrame:
    """One WebSocket frame as Wireshark dissected it."""

    frame: int
    ts: int
    stream: int
    src: Endpoint
    opcode: int
    fin: bool
    masked: bool
    length: int
    close_code: int | None


@dataclass
class WiresharkView:
    """Everything the comparison needs from Wireshark, whichever engine produced it.

    ``stream_bytes[stream][endpoint]`` is the number of reassembled bytes ``endpoint`` sent.
    """

    packets: list[TcpPacket] = field(default_factory=list)
    http: list[HttpMessage] = field(default_factory=list)
    ws: list[WsFrame] = field(default_factory=list)
    stream_bytes: dict[int, dict[Endpoint, int]] = field(default_factory=dict)


def _ns(epoch: str) -> int:
    """``frame.time_epoch`` text (seconds with up to 9 decimals) as integer nanoseconds."""
    epoch = epoch.strip()
    whole, _, frac = epoch.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def _ip(text: str) -> str:
    """An IP address in the form dissect writes (``ipaddress``'s compressed form)."""
    text = text.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes")


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def _ws_length(seven: int, ext16: Iterable[int], ext64: Iterable[int]) -> int:
    return seven if seven < 126 else next(iter(ext16 if seven == 126 else ext64), seven)


def require_tshark() -> str:
    """The path of tshark; raises :class:`WiresharkError` when it is not installed."""
    path = shutil.which("tshark")
    if path is None:
        raise WiresharkError("tshark is not installed (apt-get install tshark); cannot cross-check")
    return path


def _pref_args() -> list[str]:
    args: list[str] = []
    for k, v in TSHARK_PREFS.items():
        args += ["-o", f"{k}:{v}"]
    return args


def _run_tshark(args: Sequence[str]) -> str:
    tshark = require_tshark()
    proc = subprocess.run([tshark, "-n", *_pref_args(), *args], capture_output=True, text=True,
                          encoding="utf-8", errors="replace", check=False)
    if proc.returncode != 0:
        err = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Running as user" not in ln]
        raise WiresharkError(f"tshark failed (exit {proc.returncode}): {' '.join(err)[:300]}")
    return proc.stdout


_AGG = "\x1f"  # tshark's aggregator for several occurrences: never in a URI or a number
_FIELDS = (
    "frame.number", "frame.time_epoch", "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport",
    "ip.dst", "ipv6.dst", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.len",
    "tcp.segment", "http.request.method", "http.request.uri", "http.response.code",
    "http.request_in", "http.upgrade", "websocket.opcode", "websocket.fin", "websocket.mask",
    "websocket.payload_length", "websocket.payload_length_ext_16", "websocket.payload_length_ext_64",
    "websocket.payload.close.status_code",
)


def tshark_view(path: str) -> WiresharkView:
    """Wireshark's view of ``path`` from ``tshark -T fields`` (one pass) and ``-z follow`` (one
    more pass for every stream's reassembled bytes)."""
    args = ["-r", path, "-Y", "tcp", "-T", "fields", "-E", "header=n", "-E", "separator=/t",
            "-E", "occurrence=a", "-E", f"aggregator={_AGG}", "-E", "quote=n"]
    for f in _FIELDS:
        args += ["-e", f]
    out = _run_tshark(args)
    view = WiresharkView()
    times: dict[int, int] = {}
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) < len(_FIELDS):
            continue
        v = dict(zip(_FIELDS, cols, strict=False))

        def many(name: str, v: dict[str, str] = v) -> list[str]:
            text = v[name]
            return text.split(_AGG) if text else []

        def last(name: str) -> str:
            values = many(name)
            return values[-1] if values else ""

        def first(name: str) -> str:
            values = many(name)
            return values[0] if values else ""

        frame = int(v["frame.number"])
        ts = _ns(v["frame.time_epoch"])
        times[frame] = ts
        stream = _int(first("tcp.stream"))
        sport, dport = _int(first("tcp.srcport")), _int(first("tcp.dstport"))
        if stream is None or sport is None or dport is None:
            continue
        # The innermost IP header carries the TCP segment (tunnels put the outer one first).
        src = (_ip(last("ip.src") or last("ipv6.src")), sport)
        dst = (_ip(last("ip.dst") or last("ipv6.dst")), dport)
        view.packets.append(TcpPacket(frame, ts, stream, src, dst, _flag(first("tcp.flags.syn")),
                                      _flag(first("tcp.flags.ack")), _int(first("tcp.len")) or 0))
        segments = [int(s) for s in many("tcp.segment")]
        seg_start = times.get(min(segments), ts) if segments else ts
        methods, uris = many("http.request.method"), many("http.request.uri")
        codes, request_in = many("http.response.code"), many("http.request_in")
        upgrade = last("http.upgrade") or None
        # The first HTTP message of a packet is the one that may have started in earlier segments;
        # only the last request of a packet can be an upgrade (nothing follows one on the wire).
        for i, method in enumerate(methods):
            view.http.append(HttpMessage(
                frame, ts, seg_start if i == 0 else ts, stream, src, True, method=method,
                uri=uris[i] if i < len(uris) else None,
                upgrade=upgrade if i == len(methods) - 1 else None))
        for i, code in enumerate(codes):
            req = _int(request_in[i]) if len(request_in) == len(codes) else None
            view.http.append(HttpMessage(
                frame, ts, seg_start if i == 0 and not methods else ts, stream, src, False,
                status=_int(code), request_in=req,
                upgrade=upgrade if i == len(codes) - 1 else None))
        ext16 = iter(int(x) for x in many("websocket.payload_length_ext_16"))
        ext64 = iter(int(x) for x in many("websocket.payload_length_ext_64"))
        close = iter(many("websocket.payload.close.status_code"))
        fins, masks = many("websocket.fin"), many("websocket.mask")
        lengths = many("websocket.payload_length")
        for i, op in enumerate(many("websocket.opcode")):
            opcode = int(op)
            length = _ws_length(int(lengths[i]), ext16, ext64)
            close_code = _int(next(close, None)) if opcode == 8 and length >= 2 else None
            view.ws.append(WsFrame(frame, ts, stream, src, opcode, _flag(fins[i]),
                                   _flag(masks[i]), length, close_code))
    view.stream_bytes = follow_bytes(path, sorted({p.stream for p in view.packets}))
    return view


def follow_bytes(path: str, streams: Sequence[int]) -> dict[int, dict[Endpoint, int]]:
    """Reassembled bytes per stream and sender from ``tshark -q -z follow,tcp,raw,N``.

    The output lists the stream's two nodes, then the data as hex lines: lines of node 0 start at
    the margin, lines of node 1 with a tab.
    """
    out: dict[int, dict[Endpoint, int]] = {}
    for i in range(0, len(streams), FOLLOW_BATCH):
        args = ["-r", path, "-q"]
        for s in streams[i:i + FOLLOW_BATCH]:
            args += ["-z", f"follow,tcp,raw,{s}"]
        _parse_follow(_run_tshark(args), out)
    return out


def _parse_follow(text: str, out: dict[int, dict[Endpoint, int]]) -> None:
    """Add the byte counts of ``-z follow,tcp,raw`` output to ``out``."""
    stream: int | None = None
    nodes: list[Endpoint] = []
    counts = [0, 0]
    in_data = False

    def flush() -> None:
        if stream is not None and len(nodes) == 2:
            per = out.setdefault(stream, {})
            for node, n in zip(nodes, counts, strict=True):
                per[node] = per.get(node, 0) + n

    for line in text.splitlines():
        if line.startswith("====="):
            if in_data:
                flush()
                stream, nodes, counts, in_data = None, [], [0, 0], False
            continue
        if line.startswith("Follow:"):
            continue
        if line.startswith("Filter:"):
            stream = _int(line.rsplit(" ", 1)[-1])
            continue
        if line.startswith("Node ") and ":" in line:
            addr = line.split(":", 1)[1].strip()
            host, _, port = addr.rpartition(":")
            nodes.append((_ip(host), _int(port) or 0))
            in_data = True
            continue
        if in_data and line.strip():
            side = 1 if line.startswith("\t") else 0
            hexed = line.strip()
            if len(hexed) <= 120 and _MISSING.match(bytes.fromhex(hexed) if _is_hex(hexed) else b""):
                continue  # Wireshark writes "[N bytes missing in capture file]" for a hole
            counts[side] += len(hexed) // 2
    if in_data:
        flush()


_MISSING = re.compile(rb"\[\d+ bytes missing in capture file\]\x00?\Z")  # NUL-terminated


def _is_hex(text: str) -> bool:
    return len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text)


def pyshark_view(path: str) -> WiresharkView:
    """The same view through ``pyshark.FileCapture`` (PDML); bytes are the sum of ``tcp.len`` over
    segments that are not (spurious) retransmissions, since pyshark cannot run ``-z follow``."""
    require_tshark()
    try:
        import pyshark  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        raise WiresharkError("pyshark is not installed (pip install pyshark)") from None

    view = WiresharkView()
    times: dict[int, int] = {}
    cap = pyshark.FileCapture(path, keep_packets=False, override_prefs=dict(TSHARK_PREFS),
                              display_filter="tcp")
    try:
        for pkt in cap:
            _pyshark_packet(pkt, view, times)
    except Exception as e:  # pyshark wraps tshark's failures in its own exception types
        if isinstance(e, DissectError):
            raise
        raise WiresharkError(f"pyshark failed on {path}: {e}") from e
    finally:
        cap.close()
    sums: dict[int, dict[Endpoint, int]] = {}
    for p in view.packets:
        per = sums.setdefault(p.stream, {p.src: 0, p.dst: 0})
        if not p.retransmission:
            per[p.src] = per.get(p.src, 0) + p.length
    view.stream_bytes = sums
    return view


def _field(layer: Any, name: str) -> str | None:
    value = layer.get_field_value(name)
    return None if value is None else str(value)


def _all_values(layer: Any, name: str) -> list[str]:
    f = layer.get_field(name)
    if f is None:
        return []
    return [str(x.show) for x in getattr(f, "all_fields", [f])]


def _pyshark_packet(pkt: Any, view: WiresharkView, times: dict[int, int]) -> None:
    frame = int(pkt.frame_info.number)
    ts = _ns(str(pkt.frame_info.time_epoch))
    times[frame] = ts
    if "tcp" not in pkt:
        return
    tcp = pkt.tcp
    stream = _int(_field(tcp, "stream"))
    if stream is None:
        return
    ip = pkt.ipv6 if "ipv6" in pkt and "ip" not in pkt else pkt.ip
    src = (_ip(str(ip.src)), int(tcp.srcport))
    dst = (_ip(str(ip.dst)), int(tcp.dstport))
    names = set(tcp.field_names)
    retrans = bool({"analysis_retransmission", "analysis_spurious_retransmission"} & names)
    view.packets.append(TcpPacket(frame, ts, stream, src, dst, _flag(_field(tcp, "flags_syn")),
                                  _flag(_field(tcp, "flags_ack")), _int(_field(tcp, "len")) or 0,
                                  retrans))
    segments: list[int] = []
    for layer in pkt.layers:
        if "tcp_segment" in layer.field_names:
            segments = [int(x) for x in _all_values(layer, "tcp_segment")]
            break
    seg_start = times.get(min(segments), ts) if segments else ts
    first_message = True
    for h in pkt.get_multiple_layers("http"):
        method = _field(h, "request_method")
        code = _field(h, "response_code")
        upgrade = _field(h, "upgrade")
        if method is None and code is None:
            continue
        start = seg_start if first_message else ts
        first_message = False
        view.http.append(HttpMessage(
            frame, ts, start, stream, src, method is not None, method=method,
            uri=_field(h, "request_uri"), status=_int(code),
            request_in=_int(_field(h, "request_in")),
            upgrade=upgrade))
    for w in pkt.get_multiple_layers("websocket"):
        opcode = _int(_field(w, "opcode"))
        if opcode is None:
            continue
        seven = _int(_field(w, "payload_length")) or 0
        ext16 = [int(x) for x in _all_values(w, "payload_length_ext_16")]
        ext64 = [int(x) for x in _all_values(w, "payload_length_ext_64")]
        length = _ws_length(seven, ext16, ext64)
        code_text = _field(w, "payload_close_status_code") or _field(w, "close_status_code")
        close_code = _int(code_text) if opcode == 8 and length >= 2 else None
        view.ws.append(WsFrame(frame, ts, stream, src, opcode, _flag(_field(w, "fin")),
                               _flag(_field(w, "mask")), length, close_code))


ENGINES: dict[str, Callable[[str], WiresharkView]] = {"tshark": tshark_view,
                                                       "pyshark": pyshark_view}


# -- the comparison --------------------------------------------------------------------------------


def _ns_of(x: Any) -> int | None:
    """A DataFrame timestamp (float epoch seconds, or NaN/None) as integer nanoseconds."""
    f = to_number(x)
    return None if f is None else round(f * 1e9)


def _same_time(a: int | None, b: int | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TIME_TOLERANCE_NS


def _opt_int(x: Any) -> int | None:
    if x is None:
        return None
    try:
        if x != x:
            return None
        return int(x)
    except (TypeError, ValueError):
        return None


@dataclass
class _Stream:
    """One tcp.stream, summarised."""

    stream: int
    packets: list[TcpPacket]
    endpoints: frozenset[Endpoint]
    first: int
    last: int
    client: Endpoint | None  # sender of the first SYN
    syn: int | None
    synack: int | None
    ack: int | None

    @classmethod
    def build(cls, stream: int, packets: list[TcpPacket]) -> _Stream:
        syn = next((p for p in packets if p.syn and not p.ack), None)
        synack = next((p for p in packets if p.syn and p.ack), None)
        client = syn.src if syn is not None else None
        ack = None
        if synack is not None:
            ack_sender = client if client is not None else synack.dst
            ack = next((p for p in packets if p.frame > synack.frame and p.src == ack_sender
                        and p.ack and not p.syn), None)
        return cls(stream, packets, frozenset({packets[0].src, packets[0].dst}),
                   min(p.ts for p in packets), max(p.ts for p in packets), client,
                   syn.ts if syn else None, synack.ts if synack else None,
                   ack.ts if ack else None)


def compare_analysis(analysis: Any, view: WiresharkView, path: str = "",
                     engine: str = "tshark") -> CrossCheckResult:
    """Compare dissect's :class:`~dissect.output.tables.Analysis` of one capture with Wireshark's view."""
    summary = getattr(analysis, "summary", None) or {}
    res = CrossCheckResult(path, engine, digits=6 if summary.get("ts_precision") == "us" else 9)
    by_stream: dict[int, list[TcpPacket]] = defaultdict(list)
    for p in view.packets:
        by_stream[p.stream].append(p)
    streams = [_Stream.build(s, pk) for s, pk in sorted(by_stream.items())]

    sessions = analysis.sessions
    tcp_rows = [r for r in sessions.to_dict("records") if r.get("transport") == "tcp"]
    by_pair: dict[frozenset[Endpoint], list[dict[str, Any]]] = defaultdict(list)
    for r in tcp_rows:
        pair = frozenset({(_ip(str(r["client_ip"])), int(r["client_port"])),
                          (_ip(str(r["server_ip"])), int(r["server_port"]))})
        by_pair[pair].append(r)

    matched: list[tuple[_Stream, dict[str, Any]]] = []
    used: set[int] = set()
    for st in sorted(streams, key=lambda s: s.first):
        candidates = [r for r in by_pair.get(st.endpoints, []) if int(r["session_id"]) not in used]
        res.count("streams")
        if not candidates:
            a, b = sorted(st.endpoints)
            res.add("streams", None, f"tcp.stream {st.stream} ({a[0]}:{a[1]} <-> {b[0]}:{b[1]}, "
                                     f"first packet {res.t(st.first)}, {len(st.packets)} packets) "
                                     "has no dissect session")
            continue
        best = min(candidates, key=lambda r: abs((_ns_of(r["ts_first"]) or 0) - st.first))
        used.add(int(best["session_id"]))
        matched.append((st, best))
    for r in tcp_rows:
        if int(r["session_id"]) not in used:
            res.count("streams")
            res.add("streams", int(r["session_id"]),
                    f"dissect session {r['client_ip']}:{r['client_port']} -> "
                    f"{r['server_ip']}:{r['server_port']} (ts_first {res.t(_ns_of(r['ts_first']))}) "
                    "has no tcp.stream")

    for st, row in matched:
        sid = int(row["session_id"])
        client = (_ip(str(row["client_ip"])), int(row["client_port"]))
        _compare_stream(res, sid, st, row, client)
        _compare_roles(res, sid, st, row, client)
        _compare_tcp_handshake(res, sid, st, row)
        _compare_bytes(res, sid, st, row, client, view.stream_bytes.get(st.stream, {}))

    stream_of = {sid: (st, (_ip(str(r["client_ip"])), int(r["client_port"])))
                 for st, r in matched for sid in [int(r["session_id"])]}
    _compare_http(res, analysis, view, stream_of)
    _compare_ws(res, analysis, view, stream_of)
    return res


def _compare_stream(res: CrossCheckResult, sid: int, st: _Stream, row: dict[str, Any],
                    client: Endpoint) -> None:
    for col, ws_value in (("ts_first", st.first), ("ts_last", st.last)):
        mine = _ns_of(row[col])
        if not _same_time(mine, ws_value):
            res.add("streams", sid, f"tcp.stream {st.stream}: {col} dissect {res.t(mine)}, "
                                    f"wireshark {res.t(ws_value)}")
    c2s = sum(1 for p in st.packets if p.src == client)
    s2c = len(st.packets) - c2s
    for col, ws_n in (("packets_c2s", c2s), ("packets_s2c", s2c)):
        if _opt_int(row[col]) != ws_n:
            res.add("streams", sid, f"tcp.stream {st.stream}: {col} dissect {row[col]}, "
                                    f"wireshark {ws_n}")


def _compare_roles(res: CrossCheckResult, sid: int, st: _Stream, row: dict[str, Any],
                   client: Endpoint) -> None:
    inferred = bool(row["client_inferred"])
    res.count("roles")
    if st.client is None:
        if not inferred:
            res.add("roles", sid, f"tcp.stream {st.stream}: wireshark saw no SYN, dissect "
                                  "has client_inferred false")
        return
    if st.client != client:
        res.add("roles", sid, f"tcp.stream {st.stream}: client dissect {client[0]}:{client[1]}, "
                              f"wireshark (SYN sender) {st.client[0]}:{st.client[1]}")
    if inferred:
        res.add("roles", sid, f"tcp.stream {st.stream}: wireshark saw the SYN, dissect has "
                              "client_inferred true")


def _compare_tcp_handshake(res: CrossCheckResult, sid: int, st: _Stream,
                           row: dict[str, Any]) -> None:
    for col, ws_value, what in (("syn_ts", st.syn, "first SYN"),
                                ("synack_ts", st.synack, "first SYN/ACK"),
                                ("ack_ts", st.ack, "client's first ACK after the SYN/ACK")):
        mine = _ns_of(row[col])
        if mine is None and ws_value is None:
            continue
        res.count("tcp_handshake")
        if not _same_time(mine, ws_value):
            res.add("tcp_handshake", sid, f"tcp.stream {st.stream}: {col} dissect {res.t(mine)}, "
                                          f"wireshark {what} {res.t(ws_value)}")


def _compare_bytes(res: CrossCheckResult, sid: int, st: _Stream, row: dict[str, Any],
                   client: Endpoint, per_node: dict[Endpoint, int]) -> None:
    server = next((e for e in st.endpoints if e != client), client)
    if (_opt_int(row.get("lost_bytes")) or 0) > 0:
        # Wireshark's follow stream leaves out the data behind a hole that never fills, while
        # dissect delivers it after declaring the hole lost: the counts are not comparable.
        return
    for col, node in (("bytes_c2s", client), ("bytes_s2c", server)):
        res.count("bytes")
        ws_n = per_node.get(node, 0)
        if _opt_int(row[col]) != ws_n:
            res.add("bytes", sid, f"tcp.stream {st.stream}: {col} dissect {row[col]}, "
                                  f"wireshark {ws_n}")


def _by_session(df: Any, sort: str) -> dict[int, list[dict[str, Any]]]:
    """The rows of a table as dicts, grouped by session_id, each group sorted by ``sort``."""
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if df is None or not len(df):
        return out
    for r in df.to_dict("records"):
        out[int(r["session_id"])].append(r)
    for rows in out.values():
        rows.sort(key=lambda r: _sort_value(r.get(sort)))
    return out


def _sort_value(x: Any) -> float:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if f != f else f


def _pair_http(messages: list[HttpMessage]) -> list[tuple[HttpMessage, HttpMessage | None]]:
    """Requests with their responses: by ``http.request_in``, else in order. Interim 1xx
    responses other than 101 are not exchanges of their own."""
    requests = [m for m in messages if m.is_request]
    responses = [m for m in messages if not m.is_request
                 and not (m.status is not None and 100 <= m.status < 200 and m.status != 101)]
    by_frame: dict[int, list[HttpMessage]] = defaultdict(list)
    for r in requests:
        by_frame[r.frame].append(r)
    answer: dict[int, HttpMessage] = {}
    unpaired: list[HttpMessage] = []
    for resp in responses:
        reqs = by_frame.get(resp.request_in or -1, [])
        free = [r for r in reqs if id(r) not in answer]
        if free:
            answer[id(free[0])] = resp
        else:
            unpaired.append(resp)
    pending = [r for r in requests if id(r) not in answer]
    for req, resp in zip(pending, unpaired, strict=False):
        answer[id(req)] = resp
    return [(r, answer.get(id(r))) for r in requests]


def _compare_http(res: CrossCheckResult, analysis: Any, view: WiresharkView,
                  stream_of: dict[int, tuple[_Stream, Endpoint]]) -> None:
    by_stream: dict[int, list[HttpMessage]] = defaultdict(list)
    for m in view.http:
        by_stream[m.stream].append(m)
    http_rows = _by_session(analysis.http, "ts_request")
    handshakes = _by_session(analysis.handshakes, "ts_start")
    for sid, (st, _client) in sorted(stream_of.items()):
        pairs = _pair_http(by_stream.get(st.stream, []))
        mine = http_rows.get(sid, [])
        theirs_keys = [(q.method, q.uri, p.status if p else None) for q, p in pairs]
        mine_keys = [(str(r["method"]), str(r["target"]), _opt_int(r["status"])) for r in mine]
        sm = difflib.SequenceMatcher(a=mine_keys, b=theirs_keys, autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag == "equal":
                for r, (q, p) in zip(mine[i1:i2], pairs[j1:j2], strict=True):
                    res.count("http")
                    _compare_http_times(res, sid, r, q, p)
                continue
            for r in mine[i1:i2]:
                res.count("http")
                res.add("http", sid, f"dissect exchange {r['method']} {r['target']} -> "
                                     f"{_opt_int(r['status'])} at {res.t(_ns_of(r['ts_request']))} "
                                     "not in wireshark")
            for q, p in pairs[j1:j2]:
                res.count("http")
                res.add("http", sid, f"wireshark exchange {q.method} {q.uri} -> "
                                     f"{p.status if p else None} (frame {q.frame}, "
                                     f"{res.t(q.start)}) not in dissect")
        # The WebSocket handshakes: requests that ask for Upgrade: websocket.
        upgrades = [(q, p) for q, p in pairs if q.upgrade and "websocket" in q.upgrade.lower()]
        ws_rows = [r for r in handshakes.get(sid, []) if r["layer"] == "websocket"]
        for k in range(max(len(upgrades), len(ws_rows))):
            res.count("ws_handshake")
            if k >= len(ws_rows):
                q, p = upgrades[k]
                res.add("ws_handshake", sid, f"wireshark upgrade request {q.uri} (frame {q.frame}, "
                                             f"{res.t(q.start)}) has no websocket handshake row")
                continue
            if k >= len(upgrades):
                r = ws_rows[k]
                res.add("ws_handshake", sid, "dissect websocket handshake at "
                                             f"{res.t(_ns_of(r['ts_start']))} has no upgrade request "
                                             "in wireshark")
                continue
            q, p = upgrades[k]
            r = ws_rows[k]
            start, end = _ns_of(r["ts_start"]), _ns_of(r["ts_end"])
            if not _same_time(start, q.start):
                res.add("ws_handshake", sid, f"ts_start dissect {res.t(start)}, wireshark GET "
                                             f"(frame {q.frame}) {res.t(q.start)}")
            ws_end = p.start if p else None
            if not _same_time(end, ws_end):
                frame = f" (frame {p.frame})" if p else ""
                res.add("ws_handshake", sid, f"ts_end dissect {res.t(end)}, wireshark response"
                                             f"{frame} {res.t(ws_end)}")


def _compare_http_times(res: CrossCheckResult, sid: int, row: dict[str, Any], q: HttpMessage,
                        p: HttpMessage | None) -> None:
    what = f"{row['method']} {row['target']}"
    mine = _ns_of(row["ts_request"])
    if not _same_time(mine, q.start):
        res.add("http", sid, f"{what}: ts_request dissect {res.t(mine)}, wireshark first segment "
                             f"{res.t(q.start)} (shown at frame {q.frame}, {res.t(q.ts)})")
    mine = _ns_of(row["ts_response"])
    theirs = p.start if p else None
    if not _same_time(mine, theirs):
        shown = f" (shown at frame {p.frame}, {res.t(p.ts)})" if p else ""
        res.add("http", sid, f"{what}: ts_response dissect {res.t(mine)}, wireshark first segment "
                             f"{res.t(theirs)}{shown}")


def _frame_key(opcode: Any, fin: Any, masked: Any, length: Any, close: Any) -> tuple[Any, ...]:
    return (_opt_int(opcode), bool(fin), bool(masked), _opt_int(length), _opt_int(close))


def _fmt_key(key: tuple[Any, ...]) -> str:
    opcode, fin, masked, length, close = key
    text = f"opcode {opcode} fin {int(fin)} masked {int(masked)} len {length}"
    return text + (f" close {close}" if close is not None else "")


def _compare_ws(res: CrossCheckResult, analysis: Any, view: WiresharkView,
                stream_of: dict[int, tuple[_Stream, Endpoint]]) -> None:
    by_stream: dict[int, list[WsFrame]] = defaultdict(list)
    for f in view.ws:
        by_stream[f.stream].append(f)
    frames = _by_session(analysis.ws_frames, "frame_index")
    for sid, (st, client) in sorted(stream_of.items()):
        theirs_all = by_stream.get(st.stream, [])
        mine_all = frames.get(sid, [])
        for direction in ("c2s", "s2c"):
            theirs = [f for f in theirs_all if (f.src == client) == (direction == "c2s")]
            mine = [r for r in mine_all if r["direction"] == direction]
            a = [_frame_key(r["opcode"], r["fin"], r["masked"], r["payload_len"], r["close_code"])
                 for r in mine]
            b = [_frame_key(f.opcode, f.fin, f.masked, f.length, f.close_code) for f in theirs]
            sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
            for tag, i1, i2, j1, j2 in sm.get_opcodes():
                if tag == "equal":
                    for r, f in zip(mine[i1:i2], theirs[j1:j2], strict=True):
                        res.count("ws_frames")
                        ts = _ns_of(r["ts"])
                        if not _same_time(ts, f.ts):
                            res.add("ws_frames", sid, f"{direction} frame_index {r['frame_index']} "
                                                      f"({_fmt_key(a[mine.index(r)])}): ts dissect "
                                                      f"{res.t(ts)}, wireshark frame {f.frame} "
                                                      f"{res.t(f.ts)}")
                    continue
                for k in range(i1, i2):
                    r = mine[k]
                    res.count("ws_frames")
                    res.add("ws_frames", sid, f"{direction} frame_index {r['frame_index']} "
                                              f"({_fmt_key(a[k])}, {res.t(_ns_of(r['ts']))}) "
                                              "not in wireshark")
                for k in range(j1, j2):
                    f = theirs[k]
                    res.count("ws_frames")
                    res.add("ws_frames", sid, f"{direction} wireshark frame {f.frame} "
                                              f"({_fmt_key(b[k])}, {res.t(f.ts)}) not in dissect")


def compare(path: str, engine: str = "tshark") -> CrossCheckResult:
    """Dissect ``path`` and compare it with Wireshark (``engine`` ``tshark`` or ``pyshark``).

    Raises :class:`~dissect.errors.CaptureError` for a capture dissect cannot read and
    :class:`WiresharkError` when Wireshark is missing or fails.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; engines are {', '.join(ENGINES)}")
    require_tshark()
    analysis = analyze(path)
    view = ENGINES[engine](path)
    return compare_analysis(analysis, view, path, engine)
