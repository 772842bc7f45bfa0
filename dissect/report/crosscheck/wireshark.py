"""Wireshark's view of a capture through ``tshark``: its TCP segments, HTTP messages and WebSocket
frames (a :class:`WiresharkView`), from ``tshark -T fields`` and ``tshark -z follow``.

The records here are what both engines produce (:mod:`.pyshark_engine` fills the same view);
:mod:`.checks` compares them with dissect's tables.

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
- A capture cut short in the middle of a packet makes tshark exit 2 ("appears to have been cut
  short") after printing every packet before the cut: that output is used, and the view says so
  (:data:`CUT_SHORT_NOTE` in ``notes``).
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dissect.errors import DissectError

__all__ = [
    "CUT_SHORT_NOTE",
    "FOLLOW_BATCH",
    "TSHARK_PREFS",
    "Endpoint",
    "HttpMessage",
    "TcpPacket",
    "WiresharkError",
    "WiresharkView",
    "WsFrame",
    "display_filter",
    "follow_bytes",
    "pair_http",
    "parse_epoch_ns",
    "parse_flag",
    "parse_int",
    "parse_ip",
    "require_tshark",
    "tshark_view",
    "ws_payload_length",
]

#: Preferences given to Wireshark (both engines): full TCP and HTTP reassembly.
TSHARK_PREFS = {
    "tcp.desegment_tcp_streams": "TRUE",
    "tcp.reassemble_out_of_order": "TRUE",
    "tcp.analyze_sequence_numbers": "TRUE",
    "http.desegment_headers": "TRUE",
    "http.desegment_body": "TRUE",
}

#: An (IP address, port) pair, the address in the form dissect writes.
Endpoint = tuple[str, int]

#: Streams followed per tshark run (each ``-z follow`` is one more tap over every packet).
FOLLOW_BATCH = 200

#: The note of a view whose capture Wireshark read only up to a cut in the middle of a packet.
CUT_SHORT_NOTE = "tshark: the capture appears to have been cut short: compared as far as tshark read it"
_CUT_SHORT = "cut short in the middle of a packet"


class WiresharkError(DissectError):
    """tshark (or pyshark) is missing or could not read the capture."""


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
    notes: list[str] = field(default_factory=list)  # what limited Wireshark's reading (CUT_SHORT_NOTE)


def pair_http(messages: list[HttpMessage]) -> list[tuple[HttpMessage, HttpMessage | None]]:
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


def parse_epoch_ns(epoch: str) -> int:
    """``frame.time_epoch`` text (seconds with up to 9 decimals) as integer nanoseconds."""
    epoch = epoch.strip()
    whole, _, frac = epoch.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def parse_ip(text: str) -> str:
    """An IP address in the form dissect writes (``ipaddress``'s compressed form)."""
    text = text.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def parse_flag(text: str | None) -> bool:
    """A boolean field's text (``1``, ``True``, ``yes``) as a bool; missing is false."""
    return (text or "").strip().lower() in ("1", "true", "yes")


def parse_int(text: str | None) -> int | None:
    """An integer field's text (decimal, or ``0x`` hex) as an int; None when missing or not a number."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def ws_payload_length(seven: int, ext16: Iterable[int], ext64: Iterable[int]) -> int:
    """A WebSocket frame's payload length from its 7-bit field and the next extended length of
    ``ext16`` (7-bit value 126) or ``ext64`` (127), RFC 6455 section 5.2."""
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


def display_filter(ports: Iterable[int] = (), hosts: Iterable[str] = ()) -> str | None:
    """The Wireshark display filter of ``--port`` / ``--host`` (a port on either side, an address on
    either side), or None without them."""
    parts = []
    ports = sorted(set(ports))
    if ports:
        parts.append("(" + " || ".join(f"tcp.port == {p}" for p in ports) + ")")
    addrs = sorted({ipaddress.ip_address(h.strip().strip("[]")) for h in hosts}, key=str)
    if addrs:
        parts.append("(" + " || ".join(f"{'ipv6' if a.version == 6 else 'ip'}.addr == {a}" for a in addrs) + ")")
    return " && ".join(parts) or None


def _run_tshark(args: Sequence[str], notes: list[str] | None = None) -> str:
    """tshark's output; a capture cut short mid-packet adds :data:`CUT_SHORT_NOTE` to ``notes`` and
    returns what tshark printed before the cut."""
    tshark = require_tshark()
    proc = subprocess.run([tshark, "-n", *_pref_args(), *args], capture_output=True, text=True,
                          encoding="utf-8", errors="replace", check=False)
    if proc.returncode != 0:
        err = [ln for ln in proc.stderr.splitlines() if ln.strip() and "Running as user" not in ln]
        if notes is not None and err and all(_CUT_SHORT in ln for ln in err):
            if CUT_SHORT_NOTE not in notes:
                notes.append(CUT_SHORT_NOTE)
            return proc.stdout
        raise WiresharkError(f"tshark failed (exit {proc.returncode}): {' '.join(err)[:300]}")
    return proc.stdout


_AGG = "\x1f"  # tshark's aggregator for several occurrences: never in a URI or a number
_FIELDS = (
    "frame.number", "frame.time_epoch", "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport",
    "ip.dst", "ipv6.dst", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.len",
    "tcp.segment", "tls.segment", "http.request.method", "http.request.uri", "http.response.code",
    "http.request_in", "http.upgrade", "websocket.opcode", "websocket.fin", "websocket.mask",
    "websocket.payload_length", "websocket.payload_length_ext_16", "websocket.payload_length_ext_64",
    "websocket.payload.close.status_code",
)


def tshark_view(path: str, tls_keylog: str | None = None, flows: str | None = None) -> WiresharkView:
    """Wireshark's view of ``path`` from ``tshark -T fields`` (one pass) and ``-z follow`` (one
    more pass for every stream's reassembled bytes); TLS decrypted with ``tls_keylog`` when given
    (``-o tls.keylog_file``; keys in the capture's Decryption Secrets Blocks are used anyway); only
    the packets matching the display filter ``flows`` (:func:`display_filter`) when given."""
    keys = ["-o", f"tls.keylog_file:{tls_keylog}"] if tls_keylog else []
    shown = f"tcp && ({flows})" if flows else "tcp"
    view = WiresharkView()
    args = [*keys, "-r", path, "-Y", shown, "-T", "fields", "-E", "header=n", "-E", "separator=/t",
            "-E", "occurrence=a", "-E", f"aggregator={_AGG}", "-E", "quote=n"]
    for f in _FIELDS:
        args += ["-e", f]
    out = _run_tshark(args, view.notes)
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
        ts = parse_epoch_ns(v["frame.time_epoch"])
        times[frame] = ts
        stream = parse_int(first("tcp.stream"))
        sport, dport = parse_int(first("tcp.srcport")), parse_int(first("tcp.dstport"))
        if stream is None or sport is None or dport is None:
            continue
        # The innermost IP header carries the TCP segment (tunnels put the outer one first).
        src = (parse_ip(last("ip.src") or last("ipv6.src")), sport)
        dst = (parse_ip(last("ip.dst") or last("ipv6.dst")), dport)
        view.packets.append(TcpPacket(frame, ts, stream, src, dst, parse_flag(first("tcp.flags.syn")),
                                      parse_flag(first("tcp.flags.ack")), parse_int(first("tcp.len")) or 0))
        # a message reassembled from TCP segments, or (decrypted) from TLS records
        segments = [int(s) for s in many("tcp.segment") + many("tls.segment")]
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
            req = parse_int(request_in[i]) if len(request_in) == len(codes) else None
            view.http.append(HttpMessage(
                frame, ts, seg_start if i == 0 and not methods else ts, stream, src, False,
                status=parse_int(code), request_in=req,
                upgrade=upgrade if i == len(codes) - 1 else None))
        ext16 = iter(int(x) for x in many("websocket.payload_length_ext_16"))
        ext64 = iter(int(x) for x in many("websocket.payload_length_ext_64"))
        close = iter(many("websocket.payload.close.status_code"))
        fins, masks = many("websocket.fin"), many("websocket.mask")
        lengths = many("websocket.payload_length")
        for i, op in enumerate(many("websocket.opcode")):
            opcode = int(op)
            length = ws_payload_length(int(lengths[i]), ext16, ext64)
            close_code = parse_int(next(close, None)) if opcode == 8 and length >= 2 else None
            view.ws.append(WsFrame(frame, ts, stream, src, opcode, parse_flag(fins[i]),
                                   parse_flag(masks[i]), length, close_code))
    view.stream_bytes = follow_bytes(path, sorted({p.stream for p in view.packets}), view.notes)
    return view


def follow_bytes(path: str, streams: Sequence[int], notes: list[str] | None = None) -> dict[int, dict[Endpoint, int]]:
    """Reassembled bytes per stream and sender from ``tshark -q -z follow,tcp,raw,N`` (a capture cut
    short: as far as tshark read, noted in ``notes``).

    The output lists the stream's two nodes, then the data as hex lines: lines of node 0 start at
    the margin, lines of node 1 with a tab.
    """
    out: dict[int, dict[Endpoint, int]] = {}
    for i in range(0, len(streams), FOLLOW_BATCH):
        args = ["-r", path, "-q"]
        for s in streams[i:i + FOLLOW_BATCH]:
            args += ["-z", f"follow,tcp,raw,{s}"]
        _parse_follow(_run_tshark(args, [] if notes is None else notes), out)
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
            stream = parse_int(line.rsplit(" ", 1)[-1])
            continue
        if line.startswith("Node ") and ":" in line:
            addr = line.split(":", 1)[1].strip()
            host, _, port = addr.rpartition(":")
            nodes.append((parse_ip(host), parse_int(port) or 0))
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

