"""The analysis split by flows (what --dask runs), in one process: index per file, plan, tasks, parts.

Every table is compared with the local run of the same files: the same rows, and once the local
rows are sorted by session_id (a stable sort, keeping one process's order within a session) the
same order too, as summary.json's ``row_order: sessions`` says."""

from __future__ import annotations

import json
import os
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest

from dissect.output.writers import MemoryCollector, ReportWriter
from dissect.protocols.tls import KeyLog
from dissect.records import SESSION_TABLES, TABLES
from dissect.run import parts
from dissect.run.core import RunResult, load_keylog
from dissect.run.filters import Filters
from dissect.run.flow_index import index_file
from dissect.run.flow_plan import make_plan
from dissect.run.local import run
from dissect.run.split import Output, run_split
from dissect.transport.limits import Limits
from tests import craft
from tests.rotate import rotate, secrets_apart

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def local(files: list[str], keylog: KeyLog | None = None, filters: Filters | None = None,
          limits: Limits | None = None) -> tuple[RunResult, dict[str, list[tuple]]]:
    c = MemoryCollector()
    result = run(files, [c], keylog=keylog, filters=filters, limits=limits)
    c.rows["sio_broadcasts"] = list(result.broadcasts())
    return result, c.rows


def same_as_local(files: list[str], threads: int = 3, keylog: KeyLog | None = None,
                  filters: Filters | None = None, limits: Limits | None = None) -> dict[str, list[tuple]]:
    """Run both; assert every table and summary.json agree. Returns the local rows."""
    a, want = local(files, keylog, filters, limits)
    b, got, _, _ = run_split(files, threads=threads, keylog=keylog, filters=filters, limits=limits)
    assert got is not None
    for table in SESSION_TABLES:
        assert sorted(want[table], key=itemgetter(0)) == sorted(got[table], key=itemgetter(0)), table
    assert want["sio_broadcasts"] == got["sio_broadcasts"]
    sb = dict(b.summary)
    assert sb.pop("row_order") == "sessions"
    assert json.dumps(a.summary, sort_keys=True) == json.dumps(sb, sort_keys=True)
    return want


def keys_of(capture: Path) -> KeyLog | None:
    k = capture.with_suffix(".keys")
    return load_keylog(k) if k.exists() else None


# Engine.IO sessions over several connections (polling, then the upgrade), WebSockets, TLS with a key log
# and with the secrets inside the capture, HTTP keep-alive, UDP.
ROTATED = [("sio4_polling_upgrade.pcapng", 9), ("sio2_polling.pcapng", 11), ("sio_python.pcapng", 13),
           ("sio4_websocket.pcap", 7), ("ws_deflate_ctx.pcap", 5), ("tls13_sio4_polling_upgrade.pcapng", 17),
           ("tls13_dsb.pcapng", 6), ("http_keepalive.pcap", 4), ("udp_exchange.pcapng", 3)]


@pytest.mark.parametrize(("name", "per"), ROTATED)
def test_rotated_capture_gives_the_local_rows(name: str, per: int, tmp_path: Path) -> None:
    files = rotate(CAPTURES / name, tmp_path, per)
    assert len(files) > 3
    rows = same_as_local(files, keylog=keys_of(CAPTURES / name))
    assert rows["sessions"]


def test_secrets_of_earlier_files_reach_the_tasks(tmp_path: Path) -> None:
    """TLS secrets a capture carries (pcapng Decryption Secrets Blocks) in a file before the files of
    the TLS connections: the task reading those gets them, and decrypts as one process does."""
    secrets, packets = secrets_apart(CAPTURES / "tls13_dsb.pcapng", tmp_path)
    files = [secrets, str(CAPTURES / "ws_basic.pcap"), *rotate(packets, tmp_path / "parts", 8)]
    plan = make_plan([index_file(f) for f in files], threads=2)
    tls = [t for t in plan.tasks if t.files[0] >= 2]
    assert tls and all(t.secrets for t in tls)
    rows = same_as_local(files)
    assert any(r.tls_decrypted for r in rows["sessions"])


@pytest.mark.parametrize("per", [9, 23])
def test_evictions_between_files(per: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flows evicted idle or after their close (the packet loop's eviction points made frequent here,
    the timeouts short), 5-tuples used again after that: new sessions where one process starts them."""
    from dissect import pipeline

    monkeypatch.setattr(pipeline, "DRAIN_EVERY", 4)
    monkeypatch.setattr(pipeline, "EVICT_EVERY", 8)
    limits = Limits(idle_timeout_s=0.02, closed_linger_s=0.005)
    files: list[str] = []
    for name in ("sio4_polling_upgrade.pcapng", "ws_multi.pcapng", "sio2_polling.pcapng", "udp_exchange.pcapng",
                 "sio4_websocket.pcap", "http_keepalive.pcap"):
        files += rotate(CAPTURES / name, tmp_path, per)
    rows = same_as_local(files, limits=limits)
    assert len(rows["sessions"]) > len(local(files)[1]["sessions"])  # evicted flows came back as new ones


def test_a_flow_flushed_after_its_tasks_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SYN never answered, alone in the first file, is evicted (idle) in the next file, which its
    task does not read: the task flushes it then, as the run did (a failed handshake, not one the
    capture's end cut short, which it would be at the end: the capture ends 0.1 s later)."""
    from dissect import pipeline

    monkeypatch.setattr(pipeline, "DRAIN_EVERY", 4)
    monkeypatch.setattr(pipeline, "EVICT_EVERY", 8)
    limits = Limits(idle_timeout_s=0.01)
    syn = craft.tcp_packet(("10.1.1.1", 5555), ("10.0.0.2", 80), 7, 0, 0x02)
    (tmp_path / "a.pcap").write_bytes(craft.write_pcap([(craft.T0, craft.ethernet(syn))]))
    (tmp_path / "b.pcap").write_bytes(craft.write_pcap(
        [(t, craft.ethernet(p)) for t, p in craft.handshake_and_data(t0=craft.T0 + 0.1)]))
    files = [str(tmp_path / "a.pcap"), str(tmp_path / "b.pcap")]
    plan = make_plan([index_file(f, limits) for f in files], limits, threads=8)
    assert [(t.files, [sid for sid, _ in t.late]) for t in plan.tasks] == [([0], [1]), ([1], [])]
    rows = same_as_local(files, limits=limits)
    hs = [h for h in rows["handshakes"] if h.session_id == 1]
    assert len(hs) == 1 and hs[0].ok is False and hs[0].detail == "no SYN/ACK"


def test_engineio_session_spanning_files_is_one_task(tmp_path: Path) -> None:
    """The 21 connections of one Engine.IO session (polling requests, the WebSocket upgrading them),
    cut across 12 files, are one group: one task reads the files they span."""
    files = rotate(CAPTURES / "sio4_polling_upgrade.pcapng", tmp_path, 20)
    plan = make_plan([index_file(f) for f in files], threads=4)
    assert len(plan.tasks) == 1 and len(plan.tasks[0].flow_maps()[0]) == 21
    assert plan.tasks[0].files == list(range(len(files)))


def test_unrelated_captures_whose_tuples_collide() -> None:
    """Every corpus capture in one run (many reuse 127.0.0.1 and the same ports): a 5-tuple still
    open at the end of one file continues into the next, a new SYN on a finished one starts a new
    session, as in one process; and in the other order."""
    files = sorted(str(p) for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))
    same_as_local(files)
    same_as_local(files[::-1], threads=5)


def test_flows_local_to_files_are_read_once() -> None:
    """Captures whose flows begin and end inside their file: each file is read by one task only
    (small files in a row by one task), the TLS connections (the corpus carries secrets) by one."""
    files = sorted(str(p) for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))
    plan = make_plan([index_file(f) for f in files], threads=4)
    read = sorted(n for t in plan.tasks for n in t.files)
    assert read == list(range(len(files))) and len(plan.tasks) >= 4
    tls = [t for t in plan.tasks if any(Path(files[n]).name.startswith("tls") for n in t.files)]
    assert len(tls) == 1 and all(Path(files[n]).name.startswith("tls") for n in tls[0].files)


def test_the_index_is_the_same_on_both_packet_loops(tmp_path: Path) -> None:
    """The index pass of a file (its flow log, sightings, counters) is the same through the compiled
    packet loop and record walks (pcap and pcapng) and through the pure-Python ones."""
    from dissect import fastpaths

    files = sorted(str(p) for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))
    files += rotate(CAPTURES / "sio4_polling_upgrade.pcapng", tmp_path, 100)
    saved = fastpaths.COMPILED_PACKET_LOOP
    try:
        indexes = []
        for compiled in (True, False):
            fastpaths.COMPILED_PACKET_LOOP = compiled and fastpaths.COMPILED
            indexes.append([index_file(f) for f in files])
    finally:
        fastpaths.COMPILED_PACKET_LOOP = saved
    assert sum(len(ix.log) for ix in indexes[0]) > 1000
    for a, b in zip(*indexes, strict=True):
        assert a == b, a.path


def test_the_index_skips_the_bytes_nobody_looks_into(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fastpaths.INDEX_SKIPS_UNSEARCHED: a flow of the index pass whose bytes nobody searches
    (WebSocket frames or TLS records from a file's start, a protocol without sids) is tracked as a
    --jobs worker tracks another's flows, its bytes not reassembled. The index (log, sightings,
    packets per flow) is that of every flow reassembled, on both packet loops."""
    from dissect import fastpaths
    from dissect.run import flow_index

    files = rotate(CAPTURES / "sio4_polling_upgrade.pcapng", tmp_path / "a", 40)
    files += rotate(CAPTURES / "ws_multi.pcapng", tmp_path / "b", 25)
    files += [str(CAPTURES / n) for n in ("tls12_ws_aesgcm.pcap", "tls_h2.pcap", "ws_basic.pcap")]
    skipped = []
    real = flow_index._Sniffer.first_data  # noqa: SLF001

    def first_data(sniffer: object, conn: object, *rest: object) -> None:
        real(sniffer, conn, *rest)  # type: ignore[arg-type]
        skipped.append(conn.foreign)  # type: ignore[attr-defined]

    monkeypatch.setattr(flow_index._Sniffer, "first_data", first_data)  # noqa: SLF001
    got = []
    for skip, compiled in ((True, True), (True, False), (False, True)):
        monkeypatch.setattr(fastpaths, "INDEX_SKIPS_UNSEARCHED", skip)
        monkeypatch.setattr(fastpaths, "COMPILED_PACKET_LOOP", compiled and fastpaths.COMPILED)
        got.append([index_file(f, packed=False) for f in files])
        if skip:
            assert any(skipped) and not all(skipped)  # both kinds of flows are there
        else:
            assert not any(skipped)
        skipped.clear()
    for a, b, c in zip(*got, strict=True):
        assert a == b == c, a.path


def test_a_new_syn_on_a_finished_tuple_leaves_the_old_flow_in_its_file(tmp_path: Path) -> None:
    """Captures one after the other on the same 5-tuples (each connection closed by FINs, then opened
    again by a SYN in the next file): new sessions, and no task reads a file twice."""
    import subprocess
    import sys

    files = []
    for seed in range(1, 5):
        files.append(str(tmp_path / f"c{seed}.pcap"))
        subprocess.run([sys.executable, str(CAPTURES.parent / "benchmarks" / "make_capture.py"), "--packets", "900",
                        "--connections", "3", "--seed", str(seed), "--out", files[-1]], check=True, capture_output=True)
    plan = make_plan([index_file(f) for f in files], threads=2)
    assert sorted(n for t in plan.tasks for n in t.files) == [0, 1, 2, 3]
    rows = same_as_local(files)
    assert len(rows["sessions"]) == 12


def test_filters_keep_session_ids() -> None:
    files = [str(CAPTURES / n) for n in ("sio4_websocket.pcap", "http_keepalive.pcap", "udp_exchange.pcapng")]
    same_as_local(files, filters=Filters.make(port=[8080, 5353]))
    same_as_local(files, filters=Filters.make(session=[1, 3], namespace=["/"]))


def test_a_full_flow_table_is_one_task(tmp_path: Path) -> None:
    """Past --max-half-open the flow table sheds flows at any packet, which the replay of per-file
    logs cannot follow: the plan is one task over every file, still the local rows."""
    frames = [(t, craft.ethernet(p)) for t, p in craft.handshake_and_data(t0=craft.T0 + 0.0005)]
    for i in range(60):
        src = (f"10.9.0.{i}", 1024 + i)
        frames.append((craft.T0 + i * 1e-5, craft.ethernet(craft.tcp_packet(src, ("10.0.0.2", 80), 7 + i, 0, 0x02))))
    (tmp_path / "flood.pcap").write_bytes(craft.write_pcap(sorted(frames, key=lambda f: f[0])))
    files = rotate(tmp_path / "flood.pcap", tmp_path / "rotated", 9)
    limits = Limits(max_half_open=10)
    plan = make_plan([index_file(f, limits) for f in files], limits, threads=2)
    assert "max-half-open" in plan.outline.whole and len(plan.tasks) == 1 and plan.tasks[0].whole
    rows = same_as_local(files, limits=limits)
    assert len(rows["sessions"]) > 60  # every SYN a session (the shed real one answered: two)
    same_as_local(files)  # without the bound: split as usual
    assert len(make_plan([index_file(f) for f in files], threads=2).tasks) > 1


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_parts_merge_into_the_local_tables(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks write parts (here in runs of 3 kB, merged), the parts are merged by session: each
    table file is the local one with its rows sorted by session_id."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    monkeypatch.setattr(parts, "SPILL_BYTES", 3000)
    files = rotate(CAPTURES / "sio4_polling_upgrade.pcapng", tmp_path / "in", 30) + \
        rotate(CAPTURES / "ws_multi.pcapng", tmp_path / "in", 25)
    a, rows = local(files)
    out = tmp_path / "out"
    out.mkdir()
    _, none, counts, blocks = run_split(files, threads=3, output=Output(str(tmp_path / "parts"), fmt), out_dir=str(out))
    assert none is None and not (tmp_path / "parts").exists()
    assert counts == {t: len(rows[t]) for t in TABLES}
    want = tmp_path / "want"
    writer: Any
    if fmt == "parquet":
        from dissect.output.writers import ParquetWriter

        writer = ParquetWriter(str(want))
    else:
        writer = ReportWriter(str(want), fmt)
    for table in TABLES:
        writer.add(table, sorted(rows[table], key=itemgetter(0)) if table in SESSION_TABLES else rows[table])
    writer.close()
    for table in TABLES:
        name = f"{table}.{fmt}"
        if fmt == "parquet":
            import pyarrow.parquet as pq

            assert pq.read_table(out / name).equals(pq.read_table(want / name)), table
        else:
            assert (out / name).read_bytes() == (want / name).read_bytes(), table
    if fmt != "parquet":  # report.html's blocks: every row counted, each block where it says
        for table in TABLES:
            b = blocks[table]
            assert sum(b.rows) == len(rows[table])
            data = (out / f"{table}.{fmt}").read_bytes()
            assert all(o == 0 or data[o - 1 : o] == b"\n" for o in b.offsets)
            assert list(b.offsets) == sorted(b.offsets)


def test_a_part_is_read_only_whole(tmp_path: Path) -> None:
    """A part is written aside and renamed when complete: an attempt that dies half-way leaves a
    temporary directory nobody reads, a second attempt writes a part of its own."""
    target = str(tmp_path / "parts")
    w = parts.PartWriter(target, "csv", 6, "task-0")
    w.add("sessions", local([str(CAPTURES / "ws_basic.pcap")])[1]["sessions"])
    first = w.close()
    w2 = parts.PartWriter(target, "csv", 6, "task-0")
    w2.add("sessions", local([str(CAPTURES / "ws_basic.pcap")])[1]["sessions"])
    second = w2.close()
    assert first != second and sorted(os.listdir(target)) == sorted(Path(p).name for p in (first, second))
    assert (Path(first) / "0" / "sessions").read_bytes() == (Path(second) / "0" / "sessions").read_bytes()
