"""Capture readers: pcap (both byte orders, us/ns), pcapng (interfaces, tsresol, sections, SPB,
unknown blocks), gzip, and damaged files (truncated, corrupt, bad magic, empty)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dissect.capture.reader import W_CORRUPT, W_SNAPLEN, W_TRUNCATED, W_UNKNOWN_BLOCK, CaptureReader
from dissect.errors import CaptureError
from tests import craft


def packets_of(path: Path) -> tuple[CaptureReader, list[tuple[int, int, bytes, int]]]:
    r = CaptureReader(str(path))
    out = [(ts, lt, bytes(buf[off : off + cap]), wire) for ts, lt, buf, off, cap, wire in r]
    return r, out


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, big_endian: bool, nano: bool) -> None:
    frames = [(1_700_000_000.123456, craft.ethernet(b"x" * 40)), (1_700_000_001.5, craft.ethernet(b"y" * 60))]
    p = tmp_path / "a.pcap"
    p.write_bytes(craft.write_pcap(frames, nano=nano, big_endian=big_endian))
    r, pk = packets_of(p)
    assert [f for _, _, f, _ in pk] == [f for _, f in frames]
    assert pk[0][0] == 1_700_000_000_123_456_000
    assert pk[1][0] == 1_700_000_001_500_000_000
    assert r.nanosecond is nano
    assert not r.warnings


def test_pcap_nanosecond_precision_kept(tmp_path: Path) -> None:
    p = tmp_path / "ns.pcap"
    data = bytearray(craft.write_pcap([(1.0, craft.ethernet(b"z" * 20))], nano=True))
    data[24 + 4 : 24 + 8] = (123_456_789).to_bytes(4, "little")
    p.write_bytes(bytes(data))
    _, pk = packets_of(p)
    assert pk[0][0] == 1_123_456_789


def test_pcap_snaplen_cut_counted(tmp_path: Path) -> None:
    p = tmp_path / "cut.pcap"
    p.write_bytes(craft.write_pcap([(1.0, craft.ethernet(b"q" * 200))], snaplen=64))
    r, pk = packets_of(p)
    assert len(pk[0][2]) == 64 and pk[0][3] == 214
    assert r.warnings[W_SNAPLEN] == 1


def test_truncated_pcap_keeps_whole_records(tmp_path: Path) -> None:
    frames = [(float(i), craft.ethernet(bytes([i]) * 50)) for i in range(1, 6)]
    data = craft.write_pcap(frames)
    p = tmp_path / "t.pcap"
    p.write_bytes(data[:-10])
    r, pk = packets_of(p)
    assert len(pk) == 4
    assert r.warnings[W_TRUNCATED] == 1


def test_corrupt_record_length_resyncs(tmp_path: Path) -> None:
    frames = [(1_700_000_000.0 + i, craft.ethernet(bytes([i]) * 50)) for i in range(6)]
    data = bytearray(craft.write_pcap(frames))
    rec = 16 + len(frames[0][1])
    # Corrupt the third record's caplen to something absurd.
    at = 24 + 2 * rec + 8
    data[at : at + 4] = (0x7FFFFFFF).to_bytes(4, "little")
    p = tmp_path / "c.pcap"
    p.write_bytes(bytes(data))
    r, pk = packets_of(p)
    assert r.warnings[W_CORRUPT] >= 1
    got = [f for _, _, f, _ in pk]
    assert got[:2] == [f for _, f in frames[:2]]
    assert got[-3:] == [f for _, f in frames[3:]]  # everything after the damage is back


@pytest.mark.parametrize("content,message", [(b"", "empty"), (b"hello world, not a capture", "not a pcap"),
                                             (b"\x00", "not a pcap")])
def test_not_a_capture(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.pcap"
    p.write_bytes(content)
    with pytest.raises(CaptureError, match=message):
        CaptureReader(str(p))


def test_missing_file() -> None:
    with pytest.raises(CaptureError, match="cannot open"):
        CaptureReader("/nonexistent/x.pcap")


def test_gzip_transparent(tmp_path: Path) -> None:
    frames = [(2.0, craft.ethernet(b"g" * 30))]
    p = tmp_path / "a.pcap.gz"
    p.write_bytes(craft.gz(craft.write_pcap(frames)))
    _, pk = packets_of(p)
    assert [f for _, _, f, _ in pk] == [frames[0][1]]


def test_gzip_cut_short(tmp_path: Path) -> None:
    frames = [(float(i), craft.ethernet(bytes([i]) * 500)) for i in range(1, 50)]
    data = craft.gz(craft.write_pcap(frames))
    p = tmp_path / "cut.pcap.gz"
    p.write_bytes(data[: len(data) // 2])
    r, pk = packets_of(p)
    assert r.warnings[W_TRUNCATED] >= 1
    assert 0 < len(pk) < 49


@pytest.mark.parametrize("big_endian", [False, True])
def test_pcapng_interfaces_resolutions_sections(tmp_path: Path, big_endian: bool) -> None:
    f1 = craft.ethernet(b"a" * 40)
    f2 = craft.sll2(b"b" * 40)
    f3 = craft.null_loop(b"c" * 40)
    data = craft.pcapng([
        [("idb", (1, None)), ("idb", (276, 9)), ("epb", (0, 1_700_000_000_000_001, f1)),
         ("unknown", None), ("epb", (1, 1_700_000_000_000_000_007, f2))],
        [("idb", (0, 3)), ("epb", (0, 1_700_000_000_123, f3)), ("spb", f3)],
    ], big_endian=big_endian)
    p = tmp_path / "a.pcapng"
    p.write_bytes(data)
    r, pk = packets_of(p)
    assert [(ts, lt) for ts, lt, _, _ in pk] == [
        (1_700_000_000_000_001_000, 1),  # default microseconds
        (1_700_000_000_000_000_007, 276),  # if_tsresol 9
        (1_700_000_000_123_000_000, 0),  # if_tsresol 3, new section
        (0, 0),  # simple packet block: no timestamp
    ]
    assert [f for _, _, f, _ in pk] == [f1, f2, f3, f3]
    assert r.warnings[W_UNKNOWN_BLOCK] == 1
    assert r.nanosecond


def test_pcapng_truncated_block(tmp_path: Path) -> None:
    f1 = craft.ethernet(b"a" * 40)
    data = craft.pcapng([[("idb", (1, None))] + [("epb", (0, i, f1)) for i in range(5)]])
    p = tmp_path / "t.pcapng"
    p.write_bytes(data[:-20])
    r, pk = packets_of(p)
    assert len(pk) == 4
    assert r.warnings[W_TRUNCATED] == 1


def test_pcapng_corrupt_block_length_keeps_earlier(tmp_path: Path) -> None:
    f1 = craft.ethernet(b"a" * 40)
    data = bytearray(craft.pcapng([[("idb", (1, None))] + [("epb", (0, i, f1)) for i in range(5)]]))
    blk = len(craft.pcapng([[("idb", (1, None)), ("epb", (0, 0, f1))]])) - len(craft.pcapng([[("idb", (1, None))]]))
    first_epb = len(craft.pcapng([[("idb", (1, None))]]))
    at = first_epb + 2 * blk + 4
    data[at : at + 4] = (7).to_bytes(4, "little")
    p = tmp_path / "c.pcapng"
    p.write_bytes(bytes(data))
    r, pk = packets_of(p)
    assert len(pk) == 2
    assert r.warnings[W_CORRUPT] == 1


def test_large_capture_spans_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dissect.capture.reader as reader

    monkeypatch.setattr(reader, "CHUNK", 1000)  # records straddle many chunk boundaries
    frames = [(1_700_000_000.0 + i / 1000, craft.ethernet(bytes([i % 256]) * (37 + i % 300))) for i in range(500)]
    p = tmp_path / "big.pcap"
    p.write_bytes(craft.write_pcap(frames))
    _, pk = packets_of(p)
    assert [f for _, _, f, _ in pk] == [f for _, f in frames]
    q = tmp_path / "big.pcapng"
    q.write_bytes(craft.pcapng([[("idb", (1, None))] + [("epb", (0, i, f)) for i, (_, f) in enumerate(frames)]]))
    _, pk2 = packets_of(q)
    assert [f for _, _, f, _ in pk2] == [f for _, f in frames]


def test_out_of_range_timestamp_fraction_keeps_the_record(tmp_path: Path) -> None:
    """A whole record whose microsecond field is >= 10^6 is odd, not corrupt: kept and counted."""
    from dissect.capture.reader import W_BAD_TIMESTAMP

    frames = [(1_700_000_000.0 + i, craft.ethernet(bytes([i]) * 40)) for i in range(3)]
    data = bytearray(craft.write_pcap(frames))
    rec = 16 + len(frames[0][1])
    data[24 + rec + 4 : 24 + rec + 8] = (2_000_000).to_bytes(4, "little")  # second record's usec
    p = tmp_path / "ts.pcap"
    p.write_bytes(bytes(data))
    r, pk = packets_of(p)
    assert len(pk) == 3
    assert r.warnings[W_BAD_TIMESTAMP] == 1 and not r.warnings["corrupt-record"]
