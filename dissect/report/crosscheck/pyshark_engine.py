"""Wireshark's view of a capture through pyshark (``pyshark.FileCapture``, tshark's PDML): the same
:class:`~dissect.report.crosscheck.wireshark.WiresharkView` as the tshark engine fills.

pyshark cannot run ``-z follow``, so a stream's bytes are the sum of ``tcp.len`` over the segments
Wireshark does not flag as (spurious) retransmissions.
"""

from __future__ import annotations

from typing import Any

from dissect.errors import DissectError
from dissect.report.crosscheck.wireshark import (
    CUT_SHORT_NOTE,
    TSHARK_PREFS,
    Endpoint,
    HttpMessage,
    TcpPacket,
    WiresharkError,
    WiresharkView,
    WsFrame,
    parse_epoch_ns,
    parse_flag,
    parse_int,
    parse_ip,
    require_tshark,
    ws_payload_length,
)

__all__ = ["pyshark_view"]


def pyshark_view(path: str, tls_keylog: str | None = None, flows: str | None = None) -> WiresharkView:
    """The same view through ``pyshark.FileCapture`` (PDML); bytes are the sum of ``tcp.len`` over
    segments that are not (spurious) retransmissions, since pyshark cannot run ``-z follow``. Only
    the packets matching the display filter ``flows`` when given; a capture cut short is read as
    far as tshark reads it (noted)."""
    require_tshark()
    try:
        import pyshark  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        raise WiresharkError("pyshark is not installed (pip install pyshark)") from None

    view = WiresharkView()
    times: dict[int, int] = {}
    prefs = dict(TSHARK_PREFS)
    if tls_keylog:
        prefs["tls.keylog_file"] = tls_keylog
    cap = pyshark.FileCapture(path, keep_packets=False, override_prefs=prefs,
                              display_filter=f"tcp && ({flows})" if flows else "tcp")
    try:
        for pkt in cap:
            _pyshark_packet(pkt, view, times)
    except Exception as e:  # pyshark wraps tshark's failures in its own exception types
        if isinstance(e, DissectError):
            raise
        if "cut short" not in str(e):
            raise WiresharkError(f"pyshark failed on {path}: {e}") from e
        view.notes.append(CUT_SHORT_NOTE)
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
    ts = parse_epoch_ns(str(pkt.frame_info.time_epoch))
    times[frame] = ts
    if "tcp" not in pkt:
        return
    tcp = pkt.tcp
    stream = parse_int(_field(tcp, "stream"))
    if stream is None:
        return
    ip = pkt.ipv6 if "ipv6" in pkt and "ip" not in pkt else pkt.ip
    src = (parse_ip(str(ip.src)), int(tcp.srcport))
    dst = (parse_ip(str(ip.dst)), int(tcp.dstport))
    names = set(tcp.field_names)
    retrans = bool({"analysis_retransmission", "analysis_spurious_retransmission"} & names)
    view.packets.append(TcpPacket(frame, ts, stream, src, dst, parse_flag(_field(tcp, "flags_syn")),
                                  parse_flag(_field(tcp, "flags_ack")), parse_int(_field(tcp, "len")) or 0,
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
            uri=_field(h, "request_uri"), status=parse_int(code),
            request_in=parse_int(_field(h, "request_in")),
            upgrade=upgrade))
    for w in pkt.get_multiple_layers("websocket"):
        opcode = parse_int(_field(w, "opcode"))
        if opcode is None:
            continue
        seven = parse_int(_field(w, "payload_length")) or 0
        ext16 = [int(x) for x in _all_values(w, "payload_length_ext_16")]
        ext64 = [int(x) for x in _all_values(w, "payload_length_ext_64")]
        length = ws_payload_length(seven, ext16, ext64)
        code_text = _field(w, "payload_close_status_code") or _field(w, "close_status_code")
        close_code = parse_int(code_text) if opcode == 8 and length >= 2 else None
        view.ws.append(WsFrame(frame, ts, stream, src, opcode, parse_flag(_field(w, "fin")),
                               parse_flag(_field(w, "mask")), length, close_code))

