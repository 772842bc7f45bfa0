"""The compiled core's rows without tuples (fastpaths.COMPILED_DIRECT_ROWS, dissect/compiled/direct_rows.pxi)
against the row tuples they shortcut: the same table files and summary.json, byte for byte.

In a CSV report without report.html, the steady-state ws_frames, ws_messages and sio_packets rows are
written as CSV lines, counted for summary.json and collected as sio_broadcasts candidates in C; the
reference is the tuples through the CSV formatter, batch_counts.RowCounts and FanoutCandidates.add_rows
(and, further, the pure-Python loop). Compared here in one process, switch off and on, on generated
Socket.IO traffic damaged the ways real captures are (segments lost, duplicated, reordered, cut) with
drains between any two packets (tuples and direct rows interleaved in a table), text that CSV quotes or
neutralises, non-ASCII event names, binary frames, acks, odd timestamps; on the corpus; and on the
benchmark's traffic.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect import fastpaths, pipeline
from dissect.cli import main
from dissect.output.summary import SummaryBuilder
from dissect.output.writers import MemoryCollector, ReportWriter
from dissect.pipeline import Pipeline

from . import craft
from .test_compiled import CORPUS, OPEN, ROOT, WS_REQUEST, WS_RESPONSE, needs_compiled


def _report(paths: list[Path], out: Path, extra: list[str]) -> dict[str, bytes]:
    html = [] if "--html" in extra else ["--no-html"]
    args = ["report", *map(str, paths), "--out", str(out), *html, "--quiet", "--jobs", "1", *extra]
    try:
        main.main(args=args, prog_name="dissect", standalone_mode=False)
    except SystemExit as e:
        if e.code not in (0, None, 2):
            raise
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def _both(paths: list[Path], extra: Sequence[str] = (), loops: bool = False) -> list[dict[str, bytes]]:
    """The report's files with the direct rows on, off, and (``loops``) on the pure-Python loop."""
    saved = fastpaths.COMPILED_DIRECT_ROWS, fastpaths.COMPILED_PACKET_LOOP
    out = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i, (direct, loop) in enumerate([(True, True), (False, True)] + ([(False, False)] if loops else [])):
                fastpaths.COMPILED_DIRECT_ROWS, fastpaths.COMPILED_PACKET_LOOP = direct, loop
                out.append(_report(paths, Path(tmp) / str(i), list(extra)))
    finally:
        fastpaths.COMPILED_DIRECT_ROWS, fastpaths.COMPILED_PACKET_LOOP = saved
    return out


def _same(files: list[dict[str, bytes]]) -> None:
    first = files[0]
    assert "ws_frames.csv" in first and "summary.json" in first
    for other in files[1:]:
        assert sorted(other) == sorted(first)
        differ = [k for k in first if first[k] != other[k]]
        assert not differ, differ


class _Spy:
    """Counts the rows that reach ReportWriter.add_formatted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: dict[str, int] = {}
        real = ReportWriter.add_formatted

        def add_formatted(writer: ReportWriter, table: str, rows: int, *rest: Any) -> None:
            self.rows[table] = self.rows.get(table, 0) + rows
            real(writer, table, rows, *rest)

        monkeypatch.setattr(ReportWriter, "add_formatted", add_formatted)


@needs_compiled
def test_only_a_csv_report_and_the_summary_take_direct_rows(tmp_path: Path) -> None:
    builder = SummaryBuilder()
    assert Pipeline([ReportWriter(str(tmp_path / "a")), builder]).outbox.direct is not None
    assert Pipeline([builder]).outbox.direct is not None  # figures only
    assert Pipeline([ReportWriter(str(tmp_path / "b"), digits=9), builder]).outbox.direct is not None
    assert Pipeline([ReportWriter(str(tmp_path / "c"), blocks=True), builder]).outbox.direct is not None  # + marks
    # tuples for every other consumer: JSON lines, the API's rows, two writers
    assert Pipeline([ReportWriter(str(tmp_path / "d"), fmt="jsonl"), builder]).outbox.direct is None
    assert Pipeline([MemoryCollector(), builder]).outbox.direct is None
    assert Pipeline([ReportWriter(str(tmp_path / "e")), ReportWriter(str(tmp_path / "f"))]).outbox.direct is None
    saved = fastpaths.COMPILED_DIRECT_ROWS
    try:
        fastpaths.COMPILED_DIRECT_ROWS = False
        assert Pipeline([ReportWriter(str(tmp_path / "g")), builder]).outbox.direct is None
    finally:
        fastpaths.COMPILED_DIRECT_ROWS = saved


@needs_compiled
@pytest.mark.parametrize("deflate", [False, True])
def test_benchmark_traffic_identical_with_and_without_direct_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  deflate: bool) -> None:
    """The benchmark's steady state, plain and under permessage-deflate (every frame compressed,
    context takeover: the compiled path's compressed frames, fastpaths.COMPILED_WS_DEFLATE): nearly
    every row made without a tuple, the same files as the tuples' and as the pure-Python loop's."""
    import subprocess
    import sys

    cap = tmp_path / "bench.pcap"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_capture.py"), "--packets", "20000",
                    "--out", str(cap), *(["--deflate"] if deflate else [])], check=True, capture_output=True,
                   timeout=300)
    spy = _Spy(monkeypatch)
    files = _both([cap], loops=True)
    _same(files)
    assert spy.rows["ws_frames"] > 15_000 and spy.rows["sio_packets"] > 12_000  # the direct rows were used
    assert files[0]["sio_broadcasts.csv"].count(b"\n") > 100  # fan-outs found from the direct candidates
    # `dissect summary`: the figures alone (no CSV lines made), the same as from the tuples
    summaries = []
    for direct in (True, False):
        monkeypatch.setattr(fastpaths, "COMPILED_DIRECT_ROWS", direct)
        capsys.readouterr()
        main.main(args=["summary", str(cap), "--json"], prog_name="dissect", standalone_mode=False)
        summaries.append(capsys.readouterr().out)
    assert summaries[0] == summaries[1] and '"ws_frames"' in summaries[0]


@needs_compiled
def test_corpus_identical_with_and_without_direct_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy(monkeypatch)
    for p in CORPUS:
        keys = p.with_suffix(".keys")
        extra = ["--tls-keylog", str(keys)] if keys.exists() else []
        _same(_both([p], extra))
        _same(_both([p], [*extra, "--payloads"]))
    assert spy.rows.get("ws_frames", 0) > 100  # some of the real captures in the steady state


_NAMES = ["ev", "chat message", "=cmd", "-x", 'say "hi"', "a,b", "café", "日本", "line\\nfeed", "+1", "@at", "'q"]


@st.composite
def _conversation(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A Socket.IO session over WebSocket: client and server frames (events with and without acks,
    acks answered or not, pings, binary frames, text CSV must quote)."""
    client = [craft.ws_frame(1, b"40", b"abcd")]
    server = [craft.ws_frame(1, OPEN, None), craft.ws_frame(1, b'40{"sid":"s"}', None)]
    for i in range(draw(st.integers(1, 25))):
        to_client = draw(st.booleans())
        kind = draw(st.sampled_from(["event", "event", "event_ack", "ack", "ping", "binary", "text"]))
        name = draw(st.sampled_from(_NAMES))
        arg = draw(st.sampled_from(["x", 'q"uote', "c,omma", "=f", "n\\nl", "é", "z" * 80]))
        if kind == "event":
            msg = b"42" + json.dumps([name, arg], ensure_ascii=draw(st.booleans())).encode()
        elif kind == "event_ack":
            msg = b"42" + str(i).encode() + json.dumps([name, arg]).encode()
        elif kind == "ack":
            msg = b"43" + str(draw(st.integers(0, 30))).encode() + b'["ok"]'
        elif kind == "ping":
            msg = b"2" if to_client else b"3"
        elif kind == "text":
            msg = arg.encode()
        else:
            frame = craft.ws_frame(2, bytes(draw(st.integers(0, 255)) for _ in range(draw(st.integers(0, 40)))),
                                   None if to_client else b"wxyz")
            (server if to_client else client).append(frame)
            continue
        (server if to_client else client).append(craft.ws_frame(1, msg, None if to_client else b"wxyz"))
    return b"".join(client), b"".join(server)


@needs_compiled
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), _conversation(), st.integers(1, 9), st.booleans(), st.sampled_from([craft.T0, 0.5, 12.25]))
def test_generated_traffic_identical_with_and_without_direct_rows(
    data: st.DataObject, conversation: tuple[bytes, bytes], drain_every: int, nano: bool, t0: float
) -> None:
    """Two Socket.IO sessions, interleaved, cut into segments and damaged (segments lost, duplicated,
    reordered, cut by the snaplen); drains every few packets; micro- or nanosecond captures; times
    before 1970-01-01 00:00:01 too (the formatter's other way). The same files with the direct
    rows, without them, and from the pure-Python loop."""
    frames_c, frames_s = conversation
    packets: list[tuple[int, bytes]] = []
    segments = []
    for s in range(2):
        client = ("10.0.0.1", 40000 + s)
        streams = {0: WS_REQUEST + frames_c, 1: WS_RESPONSE + frames_s}
        ends = {0: (client, craft.SERVER), 1: (craft.SERVER, client)}
        isn = {0: 1000, 1: 5000}
        segments += [(0, ends[0], craft.tcp_packet(client, craft.SERVER, 999, 0, 0x02)),
                     (0, ends[1], craft.tcp_packet(craft.SERVER, client, 4999, 1000, 0x12))]
        for d, payload in streams.items():
            pos = 0
            while pos < len(payload):
                n = data.draw(st.integers(1, 400))
                fate = data.draw(st.sampled_from(["keep"] * 8 + ["dup", "drop"]))
                ip = craft.tcp_packet(*ends[d], isn[d] + pos, isn[1 - d], 0x18, payload[pos : pos + n])
                if fate != "drop":
                    segments.append((pos + 1, ends[d], ip))
                if fate == "dup":
                    segments.append((pos + 1, ends[d], ip))
                pos += n
    segments.sort(key=lambda s: s[0])
    if data.draw(st.booleans()):  # a few neighbours swapped
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(segments) - 2))
            segments[i], segments[i + 1] = segments[i + 1], segments[i]
    for i, (_, _, ip) in enumerate(segments):
        packets.append((int(t0 * 1e9) + i * 1_234_567 + (7 if nano else 0), craft.ethernet(ip)))
    snaplen = data.draw(st.sampled_from([262144, 262144, 262144, 120]))
    saved = pipeline.DRAIN_EVERY
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conv.pcap"
        path.write_bytes(craft.write_pcap(packets, nano=nano, snaplen=snaplen))
        try:
            pipeline.DRAIN_EVERY = drain_every
            files = _both([path], ["--payloads"] if data.draw(st.booleans()) else [], loops=True)
        finally:
            pipeline.DRAIN_EVERY = saved
    _same(files)


def _sio_capture(path: Path, script: list[tuple[int, int, bytes]], sessions: int = 3,
                 lead: Sequence[bytes] = ()) -> None:
    """A capture of ``sessions`` Socket.IO sessions over WebSocket, connected, then ``script``: (session,
    direction, Engine.IO message) sent as one frame a packet, 1 ms apart; after the IP packets ``lead``."""
    packets = list(lead)
    seq = {}
    for s in range(sessions):
        client = ("10.0.0.1", 41000 + s)
        packets += [craft.tcp_packet(client, craft.SERVER, 999, 0, 0x02),
                    craft.tcp_packet(craft.SERVER, client, 4999, 1000, 0x12)]
        seq[s, 0], seq[s, 1] = 1000, 5000

    def send(s: int, d: int, data: bytes) -> None:
        client = ("10.0.0.1", 41000 + s)
        src, dst = (client, craft.SERVER) if d == 0 else (craft.SERVER, client)
        packets.append(craft.tcp_packet(src, dst, seq[s, d], seq[s, 1 - d], 0x18, data))
        seq[s, d] += len(data)

    for s in range(sessions):
        send(s, 0, WS_REQUEST)
        send(s, 1, WS_RESPONSE + craft.ws_frame(1, OPEN.replace(b"abc", b"sid%d" % s), None))
        send(s, 0, craft.ws_frame(1, b"40", b"abcd"))
        send(s, 1, craft.ws_frame(1, b'40{"sid":"s%d"}' % s, None))
    for s, d, msg in script:
        send(s, d, craft.ws_frame(1, msg, b"wxyz" if d == 0 else None))
    path.write_bytes(craft.write_pcap([(craft.T0 + i * 0.001, craft.ethernet(ip)) for i, ip in enumerate(packets)]))


@needs_compiled
def test_socketio_rows_made_without_tuples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events (with acks, to several sockets at once: fan-outs), acks and quoted text of three
    sessions: their sio_packets rows made without tuples, the same files as the tuples'. (A table's
    rows are made without tuples only while none of its tuples waits for the next drain: frequent
    drains here, as in a long capture.)"""
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(pipeline, "DRAIN_EVERY", 3)
    script = []
    for i in range(40):
        script += [(s, 1, b'42["tick",{"n":%d,"t":"a,\\"b\\""}]' % i) for s in range(3)]  # a fan-out
        script += [(i % 3, 0, b'42%d["=ask","caf\xc3\xa9"]' % i), (i % 3, 1, b"43%d[1.5]" % i)]
    path = tmp_path / "sio.pcap"
    _sio_capture(path, script)
    files = _both([path], loops=True)
    _same(files)
    assert spy.rows["sio_packets"] >= 100
    assert files[0]["sio_broadcasts.csv"].count(b"\n") == 41  # the header and 40 fan-outs
    assert b'"=ask"' not in files[0]["sio_packets.csv"] and b"'=ask" in files[0]["sio_packets.csv"]


@needs_compiled
def test_report_html_identical_with_and_without_direct_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default report (with report.html): the rows made without tuples carry their marks, and
    the writer cuts the same blocks of them as of tuples, so report.html samples the same rows
    (small blocks and a small sample here, drains every few packets: blocks across batches)."""
    from dissect import cli
    from dissect.output import writers

    spy = _Spy(monkeypatch)
    monkeypatch.setattr(pipeline, "DRAIN_EVERY", 7)
    monkeypatch.setattr(writers, "BLOCK_ROWS", 5)
    monkeypatch.setattr(cli, "HTML_ROWS_PER_TABLE", 40)
    script = [(i % 3, 1, b'42["tick",%d]' % i) for i in range(150)]
    script += [(i % 3, 0, b'42%d["ask","a,b"]' % i) for i in range(30)]
    path = tmp_path / "sio.pcap"
    _sio_capture(path, script)
    files = _both([path], ["--html"])
    _same(files)
    assert "report.html" in files[0] and b"systematic sample" in files[0]["report.html"]
    assert spy.rows["sio_packets"] >= 100 and spy.rows["ws_frames"] >= 100


@needs_compiled
def test_acks_kept_in_place_as_the_socketio_state_keeps_them(tmp_path: Path) -> None:
    """The acks the compiled scan keeps in SocketIOState's own dict (sio_scan.pxi): more waiting than
    it keeps (the oldest dropped, by the Python method), an ack id reused while waiting, acks of
    dropped, answered and unknown ids, in both directions: the same rows, anomalies and summary as
    the pure-Python loop's."""
    from dissect.protocols.socketio.packets import MAX_PENDING_ACKS

    n = MAX_PENDING_ACKS + 50
    script = [(0, 0, b'42%d["q",%d]' % (i, i)) for i in range(n)]  # more than are kept
    script += [(0, 0, b'42%d["q",0]' % (n - 1)), (0, 1, b'42%d["r"]' % 7), (0, 1, b'42%d["r"]' % 7)]  # reused
    script += [(0, 1, b"43%d[1]" % i) for i in (0, 10, 60, n - 2, n - 1, n + 5)]  # dropped, kept, unknown
    script += [(0, 0, b"43%d[2]" % 7), (0, 0, b"43%d[2]" % 7)]  # answered, then without its event
    path = tmp_path / "acks.pcap"
    _sio_capture(path, script, sessions=1)
    files = _both([path], loops=True)
    _same(files)
    summary = json.loads(files[0]["summary.json"])
    assert b"ack-id-reused" in files[0]["sio_packets.csv"] and b"ack-without-event" in files[0]["sio_packets.csv"]
    assert summary["decode"].get("sio-acks-dropped", 0) >= 50


@needs_compiled
@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.floats(), st.floats(-1e6, 1e6), st.integers(-(10**9), 10**9).map(lambda k: k / 2_000_000),
                 st.integers(-(10**12), 10**12).map(lambda k: k / 1e6 + 5e-7), st.integers(), st.none()))
def test_float_cells_are_float_text(x: Any) -> None:
    """The compiled float cell (csv_rows.pxi _put_float: round's steps in C) is writers.float_text:
    halfway cases, negative zero, huge and tiny values, NaN, the infinities, ints."""
    from dissect.output.writers import float_text

    if x is None:
        return
    assert fastpaths.compiled_core().float_cell(x, float_text) == float_text(x)


@needs_compiled
def test_int_cells_at_the_edges() -> None:
    """The compiled int cell (two digits a step; an int of one or two 30-bit digits read in place)
    is str(int) at every edge: powers of 10 and of 2 (the digits' and long long's), negatives."""
    from dissect.output.writers import csv_text, float_text, ts_text

    edges = {0, 1, 9, 10, 99, 100, 101, (1 << 63) - 1, -(1 << 63), 1 << 63, 1 << 64, -(1 << 64)}
    for k in range(1, 20):
        edges |= {10**k - 1, 10**k, 10**k + 1}
    for k in (15, 29, 30, 31, 59, 60, 61, 62):
        edges |= {(1 << k) - 1, 1 << k, (1 << k) + 1}
    values = sorted(edges | {-v for v in edges})
    fmt = fastpaths.compiled_csv()
    got = fmt(b"i", [(v,) for v in values], digits=6, text_fn=csv_text, float_fn=float_text,
              ts_fn=lambda ns: ts_text(ns, 6), bools={})
    assert got == "".join(f"{v}\n" for v in values).encode()
