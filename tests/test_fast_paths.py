"""Fast paths give exactly the rows of the general code they bypass."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dissect.protocols.engineio as engineio
from dissect import fastpaths
from dissect.api import run
from dissect.output.writers import MemoryCollector
from dissect.protocols.engineio import EngineIO
from dissect.records import C2S, S2C, Outbox
from dissect.transport.tcp import TcpConnection

from . import craft

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
SIO = sorted(str(p) for p in CAPTURES.glob("sio*.pcap*"))
OPEN = b'0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


def rows_of(paths: list[str]) -> dict[str, list[tuple]]:
    m = MemoryCollector()
    run(paths, [m])
    return m.rows


def test_corpus_rows_identical_with_and_without_fast_events(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = rows_of(SIO)
    monkeypatch.setattr(fastpaths, "SIO_EVENT_HEADER", False)
    assert rows_of(SIO) == fast
    assert sum(1 for r in fast["sio_packets"] if r.sio_type == "EVENT") > 50


def session_rows(messages: list[bytes], fast: bool) -> list[tuple]:
    saved = fastpaths.SIO_EVENT_HEADER
    fastpaths.SIO_EVENT_HEADER = fast
    try:
        return _session_rows(messages)
    finally:
        fastpaths.SIO_EVENT_HEADER = saved


def _session_rows(messages: list[bytes]) -> list[tuple]:
    outbox = Outbox()
    e = EngineIO(outbox)
    ws = e.websocket_opened(1, 10, 20, "/socket.io/?EIO=4&transport=websocket")
    ws.ws_message(S2C, 30, 1, OPEN)
    ws.ws_message(C2S, 40, 1, b"40")
    ws.ws_message(S2C, 50, 1, b'40{"sid":"x"}')
    for i, m in enumerate(messages):
        ws.ws_message(C2S if i % 2 else S2C, 100 + i, 1, m)
    e.finish(10_000)
    return list(outbox.sio_packets)


names = st.one_of(st.text(max_size=12), st.sampled_from(["connect", "disconnect", "newListener", "x\\y", 'q"']))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, st.sampled_from(["", ",1", "]", ',{"a":[1,"]"]}'])), max_size=8),
       st.lists(st.binary(max_size=12), max_size=3))
def test_event_rows_identical(events: list[tuple[str, str]], junk: list[bytes]) -> None:
    """EVENTs without ack id, odd names and tails, and junk after "42"."""
    msgs = [b'42["' + name.encode("utf-8", "surrogatepass") + b'"' + tail.encode() for name, tail in events]
    msgs += [b"42" + j for j in junk]
    fast = session_rows(msgs, True)
    assert fast == session_rows(msgs, False)
    assert len(fast) == 3 + len(msgs)  # one row per Engine.IO packet


ack_ids = st.one_of(st.just(""), st.sampled_from(["0", "1", "2", "007", "12345678901234567", " 1"]),
                    st.integers(0, 3).map(str))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["event", "ack", "junk"]), names, ack_ids,
                          st.sampled_from(["]", ',1]', ' [1]', '"x"]', ""])), max_size=12))
def test_ack_rows_identical(packets: list[tuple[str, str, str, str]]) -> None:
    """EVENTs asking for acks and the ACKs answering them (in either direction, reused ids,
    unanswered, unknown, too long ids, whitespace): the fast path's rows are the general path's,
    latencies included."""
    msgs = []
    for kind, name, ack_id, tail in packets:
        if kind == "event":
            msgs.append(b"42" + ack_id.encode() + b'["' + name.encode("utf-8", "surrogatepass") + b'"' + tail.encode())
        elif kind == "ack":
            msgs.append(b"43" + ack_id.encode() + b"[" + tail.encode())
        else:
            msgs.append(b"4" + ack_id.encode() + tail.encode())
    fast = session_rows(msgs, True)
    assert fast == session_rows(msgs, False)
    assert len(fast) == 3 + len(msgs)


def test_fast_path_takes_acks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path does handle an EVENT with ack id and its ACK (rows made without socketio.text)."""
    msgs = [b'421["ask",{"a":1}]', b"431[true]"]
    calls = []
    text = engineio.SocketIOState.text

    def spy(self, *a, **k):  # type: ignore[no-untyped-def]
        calls.append(a)
        return text(self, *a, **k)

    monkeypatch.setattr(engineio.SocketIOState, "text", spy)
    rows = session_rows(msgs, True)
    assert [(r.sio_type, r.ack_id) for r in rows[3:]] == [("EVENT", 1), ("ACK", 1)]
    assert rows[4].ack_latency_ms == (101 - 100) / 1e6 and rows[4].anomaly == ""
    assert len(calls) == 2  # the CONNECT pair went through the general path; the EVENT/ACK did not


# -- TCP: an in-order segment straight to its dissector (fastpaths.TCP_IN_ORDER) --------------------

ALL_CAPTURES = sorted(str(p) for p in CAPTURES.glob("*.pcap*")) + sorted(
    str(p) for p in (CAPTURES.parent / "tests" / "regressions").glob("*.pcap*"))


def test_corpus_rows_identical_with_and_without_tcp_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = [0]
    general = TcpConnection.data

    def counted(self: TcpConnection, *a: object) -> None:
        calls[0] += 1
        general(self, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(TcpConnection, "data", counted)
    fast = {p: rows_of([p]) for p in ALL_CAPTURES}
    with_fast = calls[0]
    monkeypatch.setattr(fastpaths, "TCP_IN_ORDER", False)
    for p in ALL_CAPTURES:
        assert rows_of([p]) == fast[p], p
    # the shortcut took most segments: without it, the general path saw them all
    assert calls[0] - with_fast > 2 * with_fast


WS_REQUEST = (b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
WS_RESPONSE = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_tcp_in_order_equivalent_on_reordered_lost_duplicated_segments(data: st.DataObject) -> None:
    """A WebSocket conversation cut into segments, some reordered, duplicated, overlapping or lost:
    the rows are the same whether in-order segments take the inline path or TcpConnection.data."""
    frames_c = b"".join(craft.ws_frame(1, f"c{i}".encode() * data.draw(st.integers(1, 40)), b"abcd")
                        for i in range(data.draw(st.integers(1, 8))))
    frames_s = b"".join(craft.ws_frame(2, bytes([i]) * data.draw(st.integers(0, 200)), None)
                        for i in range(data.draw(st.integers(1, 8))))
    streams = {0: WS_REQUEST + frames_c, 1: WS_RESPONSE + frames_s}
    segments = []
    for d, payload in streams.items():
        pos = 0
        while pos < len(payload):
            n = data.draw(st.integers(1, 120))
            segments.append((d, pos, payload[pos : pos + n]))
            pos += n
    if data.draw(st.booleans()):
        segments = [segments[i] for i in data.draw(st.permutations(range(len(segments))))]
    picked = []
    for seg in segments:
        fate = data.draw(st.sampled_from(["keep", "keep", "keep", "dup", "drop", "overlap"]))
        if fate == "drop":
            continue
        picked.append(seg)
        d, off, chunk = seg
        if fate == "dup":
            picked.append(seg)
        elif fate == "overlap" and off > 0:
            picked.append((d, off - 1, streams[d][off - 1 : off + len(chunk)]))
    isn = {0: 1000, 1: 5000}
    ends = {0: (craft.CLIENT, craft.SERVER), 1: (craft.SERVER, craft.CLIENT)}
    packets = [(craft.T0, craft.ethernet(craft.tcp_packet(craft.CLIENT, craft.SERVER, 999, 0, 0x02))),
               (craft.T0 + 0.001, craft.ethernet(craft.tcp_packet(craft.SERVER, craft.CLIENT, 4999, 1000, 0x12))),
               (craft.T0 + 0.002, craft.ethernet(craft.tcp_packet(craft.CLIENT, craft.SERVER, 1000, 5000, 0x10)))]
    for i, (d, off, chunk) in enumerate(picked):
        src, dst = ends[d]
        packets.append((craft.T0 + 0.01 + i * 0.001,
                        craft.ethernet(craft.tcp_packet(src, dst, isn[d] + off, isn[1 - d], 0x18, chunk))))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "conv.pcap")
        with open(path, "wb") as f:
            f.write(craft.write_pcap(packets))
        saved = fastpaths.TCP_IN_ORDER
        try:
            fastpaths.TCP_IN_ORDER = True
            fast = rows_of([path])
            fastpaths.TCP_IN_ORDER = False
            slow = rows_of([path])
        finally:
            fastpaths.TCP_IN_ORDER = saved
    assert fast == slow
    assert fast["sessions"] and fast["sessions"][0].packets_c2s >= 2  # the conversation was dissected
