"""TCP reassembly (dissect.transport.tcp) on crafted segment orders that real peers will not produce on demand:
reordering, full and partial retransmission, overlaps, wraparound, keep-alives, lost segments."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.transport.tcp import ACK, FIN, SYN, TcpConnection, seq_diff


class Recorder:
    """A stand-in application dissector that keeps what the transport hands it."""

    def __init__(self) -> None:
        self.data = [bytearray(), bytearray()]
        self.gaps: list[tuple[int, int]] = []
        self.events: list[tuple[str, int, int]] = []
        self.finished = False

    def feed(self, direction: int, ts: int, data: bytes) -> None:
        self.data[direction] += data
        self.events.append(("feed", direction, len(data)))

    def gap(self, direction: int, ts: int, nbytes: int) -> None:
        self.gaps.append((direction, nbytes))
        self.data[direction] += b"?" * nbytes  # mark the hole so offsets stay aligned
        self.events.append(("gap", direction, nbytes))

    def finish(self, ts: int) -> None:
        self.finished = True


def conn_with(rec: Recorder, isn: int | None = 1000) -> TcpConnection:
    c = TcpConnection(1, (b"\x0a\0\0\x01", 40000), (b"\x0a\0\0\x02", 80), False, 0, "x", 1 << 20)
    c.app = rec
    c.app_decided = True
    if isn is not None:
        c.control(0, 0, isn, 0, SYN)
    return c


PAYLOAD = bytes(range(256)) * 40


def segments(data: bytes, start: int, sizes: list[int]) -> list[tuple[int, bytes]]:
    out, off = [], 0
    for n in sizes:
        if off >= len(data):
            break
        out.append(((start + off) & 0xFFFFFFFF, data[off : off + n]))
        off += n
    if off < len(data):
        out.append(((start + off) & 0xFFFFFFFF, data[off:]))
    return out


def test_in_order() -> None:
    rec = Recorder()
    c = conn_with(rec)
    for seq, d in segments(PAYLOAD, 1001, [100] * 200):
        c.data(0, 1, seq, d)
    assert bytes(rec.data[0]) == PAYLOAD
    assert c.streams[0].retrans == 0 and c.streams[0].ooo == 0


def test_out_of_order_is_reordered() -> None:
    rec = Recorder()
    c = conn_with(rec)
    segs = segments(PAYLOAD, 1001, [500] * 30)
    segs[2], segs[3] = segs[3], segs[2]
    segs[7], segs[9] = segs[9], segs[7]
    for seq, d in segs:
        c.data(0, 1, seq, d)
    assert bytes(rec.data[0]) == PAYLOAD
    # Wireshark's notion: a segment that arrives behind a later one (3 then 2; 9, 8, 7).
    assert c.streams[0].ooo == 3
    assert not rec.gaps


def test_full_and_partial_retransmissions() -> None:
    rec = Recorder()
    c = conn_with(rec)
    segs = segments(PAYLOAD, 1001, [1000] * 20)
    c.data(0, 1, *segs[0])
    c.data(0, 1, *segs[0])  # full retransmission
    seq1, d1 = segs[1]
    c.data(0, 1, seq1, d1[:300])
    c.data(0, 1, seq1, d1)  # partial: 300 bytes old, 700 new
    for seg in segs[2:]:
        c.data(0, 1, *seg)
    assert bytes(rec.data[0]) == PAYLOAD
    assert c.streams[0].retrans == 2


def test_overlapping_held_segments() -> None:
    rec = Recorder()
    c = conn_with(rec)
    data = PAYLOAD[:3000]
    # Held segments overlap each other and the data that fills the hole.
    c.data(0, 1, 1001 + 1500, data[1500:2500])
    c.data(0, 1, 1001 + 1000, data[1000:2000])
    c.data(0, 1, 1001 + 2400, data[2400:3000])
    c.data(0, 1, 1001, data[:1200])
    assert bytes(rec.data[0]) == data


def test_sequence_wraparound() -> None:
    rec = Recorder()
    isn = 0xFFFFFFFF - 1500
    c = conn_with(rec, isn)
    segs = segments(PAYLOAD, isn + 1, [700] * 20)
    segs[1], segs[2] = segs[2], segs[1]  # reordered right across the wrap
    for seq, d in segs:
        c.data(0, 1, seq, d)
    assert bytes(rec.data[0]) == PAYLOAD
    assert seq_diff(5, 0xFFFFFFFE) == 7


def test_keepalive_not_a_retransmission() -> None:
    rec = Recorder()
    c = conn_with(rec)
    c.data(0, 1, 1001, b"abc")
    c.data(0, 1, 1003, b"c")  # keep-alive: one old byte at next - 1
    c.data(0, 1, 1004, b"def")
    assert bytes(rec.data[0]) == b"abcdef"
    assert c.streams[0].keepalives == 1 and c.streams[0].retrans == 0


def test_lost_segment_declared_on_ack_and_resumes() -> None:
    rec = Recorder()
    c = conn_with(rec)
    segs = segments(PAYLOAD[:5000], 1001, [1000] * 5)
    c.data(0, 1, *segs[0])
    c.data(0, 1, *segs[2])  # segs[1] never captured
    c.acked(0, 2, 1001 + 3000)  # the receiver has it all: the hole is lost from the capture
    c.data(0, 3, *segs[3])
    c.data(0, 3, *segs[4])
    assert rec.gaps == [(0, 1000)]
    expected = PAYLOAD[:1000] + b"?" * 1000 + PAYLOAD[2000:5000]
    assert bytes(rec.data[0]) == expected
    assert c.streams[0].lost == 1000


def test_hole_at_end_of_capture_is_lost() -> None:
    rec = Recorder()
    c = conn_with(rec)
    segs = segments(PAYLOAD[:3000], 1001, [1000] * 3)
    c.data(0, 1, *segs[0])
    c.data(0, 1, *segs[2])
    c.finish(5)
    assert rec.gaps == [(0, 1000)]
    assert rec.finished
    assert c.streams[0].lost == 1000


def test_held_bytes_are_bounded() -> None:
    rec = Recorder()
    c = TcpConnection(1, (b"a" * 4, 1), (b"b" * 4, 2), False, 0, "x", 4096)
    c.app, c.app_decided = rec, True
    c.control(0, 0, 0, 0, SYN)
    for i in range(1, 20):  # first segment lost, the rest keep coming
        c.data(0, i, 1 + i * 1000, PAYLOAD[i * 1000 : (i + 1) * 1000])
    assert c.streams[0].pending_bytes <= 4096 + 1000
    assert rec.gaps and rec.gaps[0] == (0, 1000)


def test_fin_consumes_a_sequence_number() -> None:
    rec = Recorder()
    c = conn_with(rec)
    c.control(1, 0, 5000, 1001, SYN | ACK)
    c.data(0, 1, 1001, b"hello")
    c.control(0, 2, 1006, 5001, FIN | ACK)
    c.fin(0, 1006)
    c.acked(0, 3, 1007)  # ACK of the FIN: no bytes lost
    assert not rec.gaps and c.streams[0].fin_done


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=40), st.randoms(use_true_random=False),
       st.integers(0, 0xFFFFFFFF), st.integers(0, 5))
def test_any_order_with_duplicates_reassembles(sizes: list[int], rnd: random.Random, isn: int,
                                               dups: int) -> None:
    rec = Recorder()
    c = conn_with(rec, isn)
    data = PAYLOAD[: sum(sizes)]
    segs = segments(data, isn + 1, sizes)
    segs += [rnd.choice(segs) for _ in range(dups)]
    rnd.shuffle(segs)
    for seq, d in segs:
        c.data(0, 1, seq, d)
    c.finish(2)
    assert bytes(rec.data[0]) == data
    assert not rec.gaps


def test_zero_window_probe_then_full_segment() -> None:
    """A zero-window probe carries the next byte alone; when the window opens the sender sends
    the segment that starts with that byte again: the stream holds it once."""
    rec = Recorder()
    c = conn_with(rec)
    c.data(0, 1, 1001, PAYLOAD[:100])
    c.data(0, 2, 1101, PAYLOAD[100:101])  # the probe
    c.data(0, 3, 1101, PAYLOAD[100:600])  # window open: the whole segment from the probe's byte
    assert bytes(rec.data[0]) == PAYLOAD[:600]
    assert c.streams[0].retrans == 1 and not rec.gaps
