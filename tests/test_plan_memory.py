"""The plan of a split run (--dask) with packed flow logs and a compact replay gives the plan of the
tuple logs and full connections it replaced (``tests/plan_reference.py``, the code of 3cbb773):
the same session ids, groups, tasks and task contents, on the corpus, on rotated sets, on sets of
many short connections spread over several files; and its memory stays well under the old one's."""

from __future__ import annotations

import pickle
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect.run.filters import Filters
from dissect.run.flow_index import index_file
from dissect.run.flow_plan import make_plan
from dissect.transport.flowlog import PackedLog
from dissect.transport.flowsplit import CREATE, CTRL, EVICT, LAST, SIGHT, UCREATE, ULAST
from dissect.transport.limits import Limits
from tests import craft
from tests.plan_reference import old_make_plan
from tests.rotate import rotate
from tests.test_split import CAPTURES, ROTATED

CORPUS = sorted(str(p) for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))


def same_plan(files: list[str], limits: Limits | None = None, threads: int = 4, keylog_given: bool = False,
              filters: Filters | None = None) -> None:
    """The index of every file with its log as tuples (the old index pass) and packed: the same
    events; the old plan of the tuples and the new plan of the packed logs: equal."""
    packed = [index_file(f, limits) for f in files]
    tuples = [index_file(f, limits, packed=False) for f in files]
    for a, b in zip(packed, tuples, strict=True):
        assert isinstance(a.log, PackedLog) and isinstance(b.log, list)
        assert list(a.log) == b.log and len(a.log) == len(b.log), a.path
        assert not a.log.tail  # every event fitted a record
    packed = pickle.loads(pickle.dumps(packed))  # as Dask hands them to the plan task
    old = old_make_plan(tuples, limits, filters, keylog_given, threads)
    new = make_plan(packed, limits, filters, keylog_given, threads)
    assert new.outline == old.outline and len(new.tasks) == len(old.tasks)
    for a, b in zip(new.tasks, old.tasks, strict=True):
        assert (a.number, a.files, a.late, a.secrets, a.last_ts, a.work, a.whole) == \
            (b.number, b.files, b.late, b.secrets, b.last_ts, b.work, b.whole)
        assert a.flow_maps() == (b.tcp, b.udp)
    assert all(ix.log == [] for ix in packed)  # each log dropped once replayed


def test_corpus_in_both_orders() -> None:
    same_plan(CORPUS)
    same_plan(CORPUS[::-1], threads=5)
    same_plan(CORPUS, threads=2, keylog_given=True)
    same_plan(CORPUS, filters=Filters.make(port=[8080, 5353]))


@pytest.mark.parametrize(("name", "per"), ROTATED)
def test_rotated_sets(name: str, per: int, tmp_path: Path) -> None:
    files = rotate(CAPTURES / name, tmp_path, per)
    same_plan(files, threads=3, keylog_given=(CAPTURES / name).with_suffix(".keys").exists())


def test_rotated_sets_with_evictions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dissect import pipeline

    monkeypatch.setattr(pipeline, "DRAIN_EVERY", 4)
    monkeypatch.setattr(pipeline, "EVICT_EVERY", 8)
    limits = Limits(idle_timeout_s=0.02, closed_linger_s=0.005)
    files: list[str] = []
    for name, per in (("sio4_polling_upgrade.pcapng", 9), ("ws_multi.pcapng", 23), ("udp_exchange.pcapng", 3),
                      ("http_keepalive.pcap", 4)):
        files += rotate(CAPTURES / name, tmp_path, per)
    same_plan(files, limits, threads=3)


def _short_connections(tmp_path: Path, connections: int, files: int) -> list[str]:
    capture = tmp_path / f"short{connections}.pcap"
    subprocess.run([sys.executable, str(CAPTURES.parent / "benchmarks" / "make_capture.py"), "--packets",
                    str(20 * connections), "--connections", str(connections), "--out", str(capture)],
                   check=True, capture_output=True)
    return rotate(capture, tmp_path / "rotated", 20 * connections // files + 1)


def test_many_short_connections_over_several_files(tmp_path: Path) -> None:
    files = _short_connections(tmp_path, 600, 8)
    assert len(files) == 8
    same_plan(files, threads=8)
    same_plan(files, threads=2)


def test_plan_memory_per_flow(tmp_path: Path) -> None:
    """The plan task's peak (unpickling the indexes as Dask hands them over, then the plan), per
    short connection: the old plan took about 4 KB here, the new one under 900 bytes."""
    files = _short_connections(tmp_path, 1000, 10)
    blobs = {packed: pickle.dumps([index_file(f, packed=packed) for f in files]) for packed in (True, False)}
    peaks = {}
    for packed, plan in ((True, make_plan), (False, old_make_plan)):
        tracemalloc.start()
        try:
            got = plan(pickle.loads(blobs[packed]), threads=8)
            peaks[packed] = tracemalloc.get_traced_memory()[1] / got.outline.sessions
        finally:
            tracemalloc.stop()
    assert peaks[False] > 3000 and peaks[True] < 900, peaks  # measured: about 4,000 and 740


# -- generated sets: short connections on a few reused 5-tuples, Engine.IO sids tying some together --

_CLIENTS = [("10.0.0.1", 40000), ("10.0.0.1", 40001), ("10.0.0.2", 40000), ("10.0.0.3", 50000)]
_SERVER = ("10.0.9.9", 80)
_conn = st.tuples(
    st.integers(0, len(_CLIENTS) - 1),  # client (a few: 5-tuples come back)
    st.integers(0, 2000),  # start, ms
    st.integers(0, 4),  # data segments each way
    st.sampled_from(["fin", "rst", "open", "half"]),  # how it ends (half: a SYN never answered)
    st.booleans(),  # starts with its handshake (else mid-stream: an earlier file's)
    st.one_of(st.none(), st.sampled_from(["s1", "s2", "s3"])),  # an Engine.IO sid its request names
    st.integers(0, 2**32 - 1),  # client ISN
)


def _packets(conns: list[tuple[int, int, int, str, bool, str | None, int]]) -> list[tuple[float, bytes]]:
    F, S, R, P, A = 1, 2, 4, 8, 16
    out: list[tuple[float, bytes]] = []
    for client, start, segments, end, syn, sid, isn in conns:
        c = _CLIENTS[client]
        t = craft.T0 + start / 1000
        pk: list[tuple[float, bytes]] = []
        cs, ss = isn, (isn * 7 + 1) & 0xFFFFFFFF
        if syn:
            pk.append((t, craft.tcp_packet(c, _SERVER, cs, 0, S)))
            if end == "half":
                out.extend(pk)
                continue
            pk.append((t + 0.0001, craft.tcp_packet(_SERVER, c, ss, cs + 1, S | A)))
            cs, ss = cs + 1, ss + 1
        t += 0.001
        for k in range(segments):
            req = b"GET /socket.io/?EIO=4&transport=polling" + (f"&sid={sid}".encode() if sid else b"") + \
                b" HTTP/1.1\r\nHost: x\r\n\r\n" if k == 0 else b"x" * 10
            pk.append((t, craft.tcp_packet(c, _SERVER, cs, ss, P | A, req)))
            cs += len(req)
            pk.append((t + 0.0002, craft.tcp_packet(_SERVER, c, ss, cs, P | A, b"HTTP/1.1 200 OK\r\n\r\n")))
            ss += 19
            t += 0.001
        if end == "fin":
            pk.append((t, craft.tcp_packet(c, _SERVER, cs, ss, F | A)))
            pk.append((t + 0.0001, craft.tcp_packet(_SERVER, c, ss, cs + 1, F | A)))
        elif end == "rst":
            pk.append((t, craft.tcp_packet(c, _SERVER, cs, ss, R)))
        out.extend(pk)
    return [(ts, craft.ethernet(p)) for ts, p in sorted(out, key=lambda x: x[0])]


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(conns=st.lists(_conn, min_size=1, max_size=40), per=st.integers(3, 40), threads=st.integers(1, 6),
       evict=st.booleans())
def test_generated_sets(conns: list[tuple[int, int, int, str, bool, str | None, int]], per: int, threads: int,
                        evict: bool, tmp_path_factory: pytest.TempPathFactory) -> None:
    from dissect import pipeline

    tmp = tmp_path_factory.mktemp("gen")
    (tmp / "all.pcap").write_bytes(craft.write_pcap(_packets(conns)))
    files = rotate(tmp / "all.pcap", tmp / "rotated", per)
    with pytest.MonkeyPatch.context() as mp:
        limits = None
        if evict:
            mp.setattr(pipeline, "DRAIN_EVERY", 4)
            mp.setattr(pipeline, "EVICT_EVERY", 8)
            limits = Limits(idle_timeout_s=0.3, closed_linger_s=0.1)
        same_plan(files, limits, threads)


# -- the packed log itself --------------------------------------------------------------------------

_key = st.sampled_from([bytes(12), bytes(range(12)), bytes(range(36)), b"\x01" * 36])
_int = st.one_of(st.integers(0, 2**40), st.integers(-(2**70), 2**70))
_event = st.one_of(
    st.tuples(st.just(CREATE), _key, st.integers(0, 255), _int, st.integers(0, 2**31)),
    st.tuples(st.just(CTRL), _key, st.integers(0, 255), st.integers(0, 2**32 - 1), _int, st.integers(0, 2**31)),
    st.tuples(st.sampled_from([LAST, ULAST]), _key, _int, st.integers(0, 2**40)),
    st.tuples(st.just(UCREATE), _key, _int, st.integers(0, 2**31)),
    st.tuples(st.just(EVICT), _int),
    st.tuples(st.just(SIGHT), _key, st.text(max_size=30)),
)


@given(st.lists(_event, max_size=200))
def test_packed_log_gives_back_its_events(events: list[tuple]) -> None:
    """Any events, values out of a record's range included (those and the rest stay tuples)."""
    log = PackedLog()
    for ev in events:
        log.append(ev)
    log.close()
    assert list(log) == events and len(log) == len(events)
    again = pickle.loads(pickle.dumps(log))
    assert list(again) == events and again == log
    if all(abs(v) < 2**60 for ev in events for v in ev[1:] if isinstance(v, int)):
        assert not log.tail


def test_packed_log_decodes_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    from dissect.transport import flowlog

    monkeypatch.setattr(flowlog, "CHUNK", 7)  # records cut anywhere between two pieces
    events = [(CTRL, bytes(range(12)), 2, 1000 + i, 10**18 + i * 997, i) for i in range(300)]
    events += [(SIGHT, bytes(range(12)), "sid-é-" * 5), (EVICT, 10**18 + 10**9)]
    log = PackedLog()
    for ev in events:
        log.append(ev)
    log.close()
    assert list(log) == events
    assert len(log.data) < 20 * len(events)  # a few bytes an event


def test_times_past_64_bits(tmp_path: Path) -> None:
    """Packet times past 2**63 ns (a pcapng's 64-bit ticks at nanosecond resolution): the packed log
    keeps those events as tuples, the replay cannot put them in its arrays and the plan is one task
    over every file; the rows are still the local ones."""
    from tests.test_split import same_as_local

    base = 2**63 + 5
    items: list[tuple[str, object]] = [("idb", (1, 9))]
    for t, p in craft.handshake_and_data(t0=0.0):
        items.append(("epb", (0, base + round(t * 1e9), craft.ethernet(p))))
    (tmp_path / "late.pcapng").write_bytes(craft.pcapng([items]))
    files = rotate(tmp_path / "late.pcapng", tmp_path / "rotated", 3)
    ix = index_file(files[0])
    assert isinstance(ix.log, PackedLog) and ix.log.tail
    plan = make_plan([index_file(f) for f in files], threads=2)
    assert "64 bits" in plan.outline.whole and len(plan.tasks) == 1 and plan.tasks[0].whole
    rows = same_as_local(files)
    assert len(rows["sessions"]) == 1
