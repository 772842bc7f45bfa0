"""A capture that ends before an answer could come is not a failure: the handshake's ok is empty
and its detail says "capture ended" (tcp, engineio, socketio), as a `tcpdump -c N` capture does to
the last connection. A real failure (the answer never came, the capture went on) stays ok false."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

import dissect

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def cut(src: Path, dst: Path, keep: int) -> None:
    """The first ``keep`` packets of a pcap, as ``tcpdump -c keep`` would have written them."""
    with src.open("rb") as f:
        r = dpkt.pcap.Reader(f)
        with dst.open("wb") as out:
            w = dpkt.pcap.Writer(out, linktype=r.datalink())
            for i, (ts, buf) in enumerate(r):
                if i >= keep:
                    break
                w.writepkt(buf, ts)


def packets(path: Path) -> list[tuple[float, dpkt.tcp.TCP]]:
    with path.open("rb") as f:
        out = []
        for ts, buf in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(buf).data
            out.append((ts, ip.data if isinstance(ip, dpkt.ip.IP) else None))
        return out


def test_last_syn_of_a_cut_capture_is_capture_ended(tmp_path: Path) -> None:
    src = CAPTURES / "sio4_websocket.pcap"
    pk = packets(src)
    syns = [i for i, (_, t) in enumerate(pk) if t is not None and t.flags & dpkt.tcp.TH_SYN
            and not t.flags & dpkt.tcp.TH_ACK]
    second = syns[1]
    path = tmp_path / "cut.pcap"
    cut(src, path, second + 1)  # ends on the second connection's SYN
    hs = dissect.analyze(str(path)).handshakes
    tcp = hs[hs.layer == "tcp"].sort_values("ts_start")
    assert list(tcp.ok.astype(object))[0] is True or bool(tcp.ok.iloc[0])
    last = tcp.iloc[-1]
    assert last.ok is None or last.ok != last.ok  # empty, not false
    assert "capture ended" in last.detail
    s = dissect.analyze(str(path)).summary
    assert s["handshakes"]["tcp"]["failed"] == 0 and s["handshakes"]["tcp"]["capture_ended"] == 1


@pytest.mark.parametrize("marker,layer", [(b"40", "socketio")])
def test_unanswered_connect_at_the_end_is_capture_ended(tmp_path: Path, marker: bytes, layer: str) -> None:
    src = CAPTURES / "sio4_websocket.pcap"
    pk = packets(src)
    # the client's Socket.IO CONNECT ("40", masked in a WebSocket frame): cut right after it
    at = None
    for i, (_, t) in enumerate(pk):
        if t is not None and t.dport == 9301 and len(t.data) == 8 and t.data[0] == 0x81:
            mask, body = t.data[2:6], t.data[6:8]
            if bytes(b ^ mask[j % 4] for j, b in enumerate(body)) == marker:
                at = i
                break
    assert at is not None
    path = tmp_path / "cut.pcap"
    cut(src, path, at + 1)
    hs = dissect.analyze(str(path)).handshakes
    row = hs[hs.layer == layer].iloc[0]
    assert (row.ok is None or row.ok != row.ok) and "capture ended" in row.detail


def test_an_answer_that_never_came_is_still_a_failure(tmp_path: Path) -> None:
    """The same SYN, but the capture goes on for 5 s more (other traffic): no SYN/ACK is a failure."""
    src = CAPTURES / "sio4_websocket.pcap"
    pk = packets(src)
    syns = [i for i, (_, t) in enumerate(pk) if t is not None and t.flags & dpkt.tcp.TH_SYN
            and not t.flags & dpkt.tcp.TH_ACK]
    second = syns[1]
    with src.open("rb") as f:
        r = dpkt.pcap.Reader(f)
        frames = list(r)
        lt = r.datalink()
    path = tmp_path / "late.pcap"
    with path.open("wb") as out:
        w = dpkt.pcap.Writer(out, linktype=lt)
        for ts, buf in frames[: second + 1]:
            w.writepkt(buf, ts)
        # a packet of the first connection 5 s later: the capture went on, no answer came
        ts0, buf0 = frames[second - 1]
        w.writepkt(buf0, frames[second][0] + 5)
    hs = dissect.analyze(str(path)).handshakes
    last = hs[hs.layer == "tcp"].sort_values("ts_start").iloc[-1]
    assert last.ok == False and last.detail == "no SYN/ACK"  # noqa: E712


UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def test_unanswered_websocket_upgrade_has_a_handshake_row(tmp_path: Path) -> None:
    """An Upgrade GET that no response answered is a websocket handshake row too: a failure when
    the connection closed without an answer, "capture ended" when the capture stopped first."""
    from tests import craft

    closed = [(ts, craft.ethernet(ip)) for ts, ip in craft.handshake_and_data(c2s=[UPGRADE], s2c=[])]
    path = tmp_path / "closed.pcap"
    later = closed[-1][0] + 5, closed[-1][1]  # the capture went on 5 s more: no answer came
    path.write_bytes(craft.write_pcap([*closed, later]))
    hs = dissect.analyze(str(path)).handshakes
    ws = hs[hs.layer == "websocket"]
    assert len(ws) == 1
    assert ws.iloc[0].ok == False and ws.iloc[0].detail == "no response"  # noqa: E712
    assert ws.iloc[0].ts_end is None or ws.iloc[0].ts_end != ws.iloc[0].ts_end

    cut_short = closed[:4]  # handshake and the GET; the capture ends there
    path = tmp_path / "cut.pcap"
    path.write_bytes(craft.write_pcap(cut_short))
    a = dissect.analyze(str(path))
    ws = a.handshakes[a.handshakes.layer == "websocket"]
    assert len(ws) == 1
    assert (ws.iloc[0].ok is None or ws.iloc[0].ok != ws.iloc[0].ok) and ws.iloc[0].detail == "capture ended"
    assert a.summary["handshakes"]["websocket"]["capture_ended"] == 1
