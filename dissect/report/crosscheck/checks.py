"""The comparison of dissect's tables with a :class:`~dissect.report.crosscheck.wireshark.WiresharkView`
(:func:`compare_analysis`). What is compared, per capture:

``streams``
    One ``tcp.stream`` per dissect TCP session. Streams are matched to sessions by their endpoint
    pair (either order), and where a pair is reused by the first-packet time nearest to the
    session's ``ts_first``. A stream or session left without a partner is a disagreement; for the
    pairs, ``ts_first``, ``ts_last``, ``packets_c2s``/``packets_s2c`` and the session's
    ``tcp_stream`` (Wireshark's number for it) are compared too.
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
    permessage-deflate parameters when they are asymmetric (it applies the server's parameters to
    c2s frames and the client's to s2c).

Every time is compared with a tolerance of :data:`TIME_TOLERANCE_NS` (half a microsecond): dissect's
DataFrames hold float epoch seconds, whose rounding is at most about 0.12 us today, and packets of a
microsecond capture one microsecond apart must still be told apart.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from dissect.capture.ip import endpoint_text
from dissect.output.distribution import to_number
from dissect.report.crosscheck.result import CrossCheckResult
from dissect.report.crosscheck.wireshark import (
    Endpoint,
    HttpMessage,
    TcpPacket,
    WiresharkView,
    WsFrame,
    pair_http,
    parse_ip,
)

__all__ = ["TIME_TOLERANCE_NS", "compare_analysis"]

#: Largest difference between two times that still counts as the same time.
TIME_TOLERANCE_NS = 500


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
    for r in tcp_rows:  # how a disagreement names the session in Wireshark's terms
        stream = _opt_int(r.get("tcp_stream"))
        if stream is not None:
            res.streams[int(r["session_id"])] = stream
    by_pair: dict[frozenset[Endpoint], list[dict[str, Any]]] = defaultdict(list)
    for r in tcp_rows:
        pair = frozenset({(parse_ip(str(r["client_ip"])), int(r["client_port"])),
                          (parse_ip(str(r["server_ip"])), int(r["server_port"]))})
        by_pair[pair].append(r)

    matched: list[tuple[_Stream, dict[str, Any]]] = []
    used: set[int] = set()
    for st in sorted(streams, key=lambda s: s.first):
        candidates = [r for r in by_pair.get(st.endpoints, []) if int(r["session_id"]) not in used]
        res.count("streams")
        if not candidates:
            a, b = sorted(st.endpoints)
            res.add("streams", None, f"tcp.stream {st.stream} ({endpoint_text(*a)} <-> {endpoint_text(*b)}, "
                                     f"first packet {res.t(st.first)}, {len(st.packets)} packets) "
                                     "has no dissect session", st.stream)
            continue
        best = min(candidates, key=lambda r: abs((_ns_of(r["ts_first"]) or 0) - st.first))
        used.add(int(best["session_id"]))
        matched.append((st, best))
        res.streams[int(best["session_id"])] = st.stream  # Wireshark's own number names it
    for r in tcp_rows:
        if int(r["session_id"]) not in used:
            res.count("streams")
            res.add("streams", int(r["session_id"]),
                    f"dissect session {endpoint_text(r['client_ip'], r['client_port'])} -> "
                    f"{endpoint_text(r['server_ip'], r['server_port'])} (ts_first {res.t(_ns_of(r['ts_first']))}) "
                    "has no tcp.stream")

    for st, row in matched:
        sid = int(row["session_id"])
        client = (parse_ip(str(row["client_ip"])), int(row["client_port"]))
        _compare_stream(res, sid, st, row, client)
        _compare_roles(res, sid, st, row, client)
        _compare_tcp_handshake(res, sid, st, row)
        _compare_bytes(res, sid, st, row, client, view.stream_bytes.get(st.stream, {}))

    stream_of = {sid: (st, (parse_ip(str(r["client_ip"])), int(r["client_port"])))
                 for st, r in matched for sid in [int(r["session_id"])]}
    _compare_http(res, analysis, view, stream_of)
    _compare_ws(res, analysis, view, stream_of)
    return res


def _compare_stream(res: CrossCheckResult, sid: int, st: _Stream, row: dict[str, Any],
                    client: Endpoint) -> None:
    for col, ws_value in (("ts_first", st.first), ("ts_last", st.last)):
        mine = _ns_of(row[col])
        if not _same_time(mine, ws_value):
            res.add("streams", sid, f"{col} dissect {res.t(mine)}, "
                                    f"wireshark {res.t(ws_value)}")
    mine_stream = _opt_int(row.get("tcp_stream"))
    if mine_stream is not None and mine_stream != st.stream:
        res.add("streams", sid, f"tcp_stream dissect {mine_stream}, wireshark {st.stream}")
    c2s = sum(1 for p in st.packets if p.src == client)
    s2c = len(st.packets) - c2s
    for col, ws_n in (("packets_c2s", c2s), ("packets_s2c", s2c)):
        if _opt_int(row[col]) != ws_n:
            res.add("streams", sid, f"{col} dissect {row[col]}, "
                                    f"wireshark {ws_n}")


def _compare_roles(res: CrossCheckResult, sid: int, st: _Stream, row: dict[str, Any],
                   client: Endpoint) -> None:
    inferred = bool(row["client_inferred"])
    res.count("roles")
    if st.client is None:
        if not inferred:
            res.add("roles", sid, "wireshark saw no SYN, dissect "
                                  "has client_inferred false")
        return
    if st.client != client:
        res.add("roles", sid, f"client dissect {endpoint_text(*client)}, "
                              f"wireshark (SYN sender) {endpoint_text(*st.client)}")
    if inferred:
        res.add("roles", sid, "wireshark saw the SYN, dissect has "
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
            res.add("tcp_handshake", sid, f"{col} dissect {res.t(mine)}, "
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
            res.add("bytes", sid, f"{col} dissect {row[col]}, "
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


def _compare_http(res: CrossCheckResult, analysis: Any, view: WiresharkView,
                  stream_of: dict[int, tuple[_Stream, Endpoint]]) -> None:
    by_stream: dict[int, list[HttpMessage]] = defaultdict(list)
    for m in view.http:
        by_stream[m.stream].append(m)
    http_rows = _by_session(analysis.http, "ts_request")
    handshakes = _by_session(analysis.handshakes, "ts_start")
    for sid, (st, _client) in sorted(stream_of.items()):
        pairs = pair_http(by_stream.get(st.stream, []))
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

