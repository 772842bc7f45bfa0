"""sio_broadcasts: fan-outs found on the wire equal the broadcasts the socket.io server made
(captures/sio4_broadcasts.truth.json, recorded by the server and the four clients), the same in
one process, --jobs 2, --jobs 3 and the API; the grouping rule itself with hypothesis."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dissect
from dissect.output.broadcasts import WINDOW_NS, FanoutCandidates
from tests.test_cli_ux import invoke

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
CAPTURE = CAPTURES / "sio4_broadcasts.pcap"


def truth() -> dict:
    return json.loads((CAPTURES / "sio4_broadcasts.truth.json").read_text())


def test_fanouts_equal_the_servers_broadcasts() -> None:
    a = dissect.analyze(str(CAPTURE))
    rows = a.sio_broadcasts.to_dict("records")
    calls = truth()["broadcasts"]
    fanouts = [b for b in calls if b["is_fanout"]]
    assert len(fanouts) == 3 and len(calls) == 5  # the scenario: 3 broadcasts, 2 look-alikes that are not
    assert len(rows) == len(fanouts)
    for row, b in zip(rows, fanouts, strict=True):
        assert (row["namespace"], row["event"]) == (b["namespace"], b["event"])
        assert row["recipients"] == len(b["received"]) == len(b["intended_socket_sids"])
        # the server writes before the clients read: the first packet precedes the first receipt
        first_read = min(r["ts"] for r in b["received"])
        assert 0 <= first_read - row["ts_first"] < 0.005
        assert abs(row["spread_ms"] - b["spread_ms"]) < 1.0  # the clients' spread, within 1 ms
        assert row["payload_bytes"] == b["received"][0]["packet_bytes"]
    # the per-socket emits (different payloads; the same payload 1.2 s apart) are no fan-out
    events = {r["event"] for r in rows}
    assert not events & {b["event"] for b in calls if not b["is_fanout"]}
    s = a.summary["sio_broadcasts"]
    assert s["count"] == 3 and s["recipients"]["max"] == 4 and s["recipients"]["min"] == 2


def test_broadcast_to_two_connections_of_sio4_websocket() -> None:
    """The other capture whose scenario has a broadcast ('news' to A and B)."""
    rows = dissect.analyze(str(CAPTURES / "sio4_websocket.pcap")).sio_broadcasts
    assert list(rows.event) == ["news"] and list(rows.recipients) == [2]


def test_the_same_with_jobs_and_in_the_report(tmp_path: Path) -> None:
    texts = []
    for jobs in ("1", "2", "3"):
        out = tmp_path / jobs
        assert invoke("report", str(CAPTURE), "--out", str(out), "-q", "--no-html", "--jobs", jobs)[0] == 0
        texts.append((out / "sio_broadcasts.csv").read_text())
        assert json.loads((out / "summary.json").read_text())["totals"]["sio_broadcasts"] == 3
    assert texts[0] == texts[1] == texts[2]
    assert texts[0].splitlines()[0] == ("broadcast_index,namespace,event,ts_first,ts_last,spread_ms,"
                                        "recipients,payload_bytes")
    assert len(dissect.analyze(str(CAPTURE), jobs=3).sio_broadcasts) == 3


def _cols(rows: list[tuple[int, str, str, int, str, int]]) -> dict[str, list]:
    """sio_packets columns for candidates (ts, namespace, event, digest, socket, size)."""
    return {
        "ts": [r[0] for r in rows], "direction": ["s2c"] * len(rows), "sio_type": ["EVENT"] * len(rows),
        "namespace": [r[1] for r in rows], "event": [r[2] for r in rows],
        "payload_digest": [r[3] for r in rows], "eio_sid": [r[4] for r in rows],
        "session_id": [1] * len(rows), "payload_bytes": [r[5] for r in rows],
    }


candidate = st.tuples(
    st.integers(0, 5 * WINDOW_NS), st.sampled_from(["/", "/chat"]), st.sampled_from(["a", "b"]),
    st.integers(0, 2), st.sampled_from(["s1", "s2", "s3", "s4"]), st.just(10))


@settings(max_examples=200, deadline=None)
@given(st.lists(candidate, max_size=60), st.integers(1, 4), st.randoms())
def test_grouping_does_not_depend_on_the_split(rows: list, workers: int, rnd: random.Random) -> None:
    """Split over workers (each sees part of the sockets, as --jobs) and merged, the fan-outs are
    those of one process; every fan-out has 2+ distinct sockets within the window."""
    one = FanoutCandidates()
    one.add_columns(_cols(rows))
    parts = [FanoutCandidates() for _ in range(workers)]
    for r in rows:
        parts[rnd.randrange(workers)].add_columns(_cols([r]))
    merged = FanoutCandidates()
    for p in parts:
        merged.merge(p)
    expected = one.groups()
    assert merged.groups() == expected
    for g in expected:
        assert g.recipients >= 2 and 0 <= g.ts_last - g.ts_first <= WINDOW_NS
    assert [g.broadcast_index for g in expected] == list(range(len(expected)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * WINDOW_NS), st.sampled_from(["/", "/chat"]), st.sampled_from(["a", "b"]),
                          st.integers(0, 40), st.sampled_from(["s1", "s2", "s3", "s4", "s5"]),
                          st.sampled_from([10, 11])), max_size=80))
def test_leaving_out_unshared_candidates_changes_nothing(rows: list) -> None:
    """groups() leaves out the candidates whose (namespace, event, digest, size) no other candidate
    has: the fan-outs and their order are those of grouping every candidate. The order is made
    with numpy past broadcasts.SMALL candidates, in Python below: the same."""
    from dissect.output import broadcasts

    c = FanoutCandidates()
    c.add_columns(_cols(rows))
    fast = c.groups()
    saved = broadcasts._order, broadcasts.SMALL
    try:
        broadcasts.SMALL = 0  # numpy
        assert c.groups() == fast
        broadcasts._order = lambda ts, digest, socket, kind: sorted(range(len(ts)), key=lambda i: (ts[i], socket[i]))
        assert c.groups() == fast  # every candidate
    finally:
        broadcasts._order, broadcasts.SMALL = saved


@settings(max_examples=200, deadline=None)
@given(st.lists(candidate, max_size=80), st.integers(1, 9), st.integers(1, 3), st.randoms())
def test_spilled_candidates_group_the_same(rows: list, spill_at: int, workers: int, rnd: random.Random) -> None:
    """Past SPILL_AT candidates go to bucket files on disk (memory flat however long the capture):
    the fan-outs and their order are those of every candidate in memory, also when workers'
    spilled builders are pickled (as --jobs/--dask send them) and merged, and with the fan-outs
    ordered by numpy (past SMALL). The spill files are gone after clear()."""
    import os
    import pickle

    from dissect.output import broadcasts

    one = FanoutCandidates()
    one.add_columns(_cols(rows))
    expected = list(one.groups())
    saved = broadcasts.SPILL_AT, broadcasts.SMALL
    try:
        broadcasts.SPILL_AT = spill_at
        spilled = FanoutCandidates()
        for start in range(0, len(rows), 5):  # batches, as a run adds them
            spilled.add_columns(_cols(rows[start:start + 5]))
        assert len(spilled) == len(one)
        assert (spilled._spill is not None) == (len(rows) >= spill_at)
        assert list(spilled.groups()) == expected
        parts = [FanoutCandidates() for _ in range(workers)]
        for r in rows:
            parts[rnd.randrange(workers)].add_columns(_cols([r]))
        merged = FanoutCandidates()
        for p in parts:
            merged.merge(pickle.loads(pickle.dumps(p)))
        broadcasts.SMALL = 0
        assert list(merged.groups()) == expected
        for c in [spilled, merged, *parts]:
            where = c._spill.dir if c._spill is not None else None
            c.clear()
            assert where is None or not os.path.exists(where)
    finally:
        broadcasts.SPILL_AT, broadcasts.SMALL = saved


def test_fanout_rows_come_in_batches() -> None:
    """FanoutRows: the rows are made from the found arrays as a writer asks, batch by batch; the
    same rows as a list, numbered from 0, and the summary counts every fan-out once."""
    rows = [(i * 1000, "/", "e", i % 7, s, 10) for i in range(200) for s in ("s1", "s2")]
    c = FanoutCandidates()
    c.add_columns(_cols(rows))
    found = c.groups()
    batches = list(found.chunks(64))
    assert [len(b) for b in batches] == [64, 64, 64, 8]
    flat = [r for b in batches for r in b]
    assert flat == list(found) == [found[i] for i in range(len(found))]
    assert [r.broadcast_index for r in flat] == list(range(200)) and found[-1] == flat[-1]
    assert all(r.recipients == 2 and r.payload_bytes == 10 for r in flat)


def _reference_groups(rows: list) -> list[tuple]:
    """The rule of docs/REPORTS.md read literally: candidates in (ts, socket) order; each joins its
    key's open group when within the window of its first packet and from a new socket."""
    from zlib import crc32
    key_of = {}
    groups: list[list] = []
    for t, nsp, event, digest, sid, size in sorted(rows, key=lambda r: (r[0], crc32(f"{r[4]}\0{r[1]}".encode()))):
        key = (nsp, event, digest, size)
        g = key_of.get(key)
        if g is not None and t - g[0] <= WINDOW_NS and sid not in g[2]:
            g[1] = t
            g[2].add(sid)
            continue
        g = key_of[key] = [t, t, {sid}, key]
        groups.append(g)
    fan = [g for g in groups if len(g[2]) >= 2]
    return sorted((g[0], g[3][0], g[3][1], g[1], len(g[2]), g[3][3]) for g in fan)


extreme_candidate = st.tuples(
    st.one_of(st.integers(0, 3 * WINDOW_NS), st.integers(-(2**63), 2**63 - 1),
              st.sampled_from([-(2**63), 2**63 - 1, 2**63 - 1 - WINDOW_NS, -(2**63) + WINDOW_NS])),
    st.sampled_from(["/", "/chat"]), st.sampled_from(["a", "b"]),
    st.integers(0, 2), st.sampled_from(["s1", "s2", "s3", "s4"]), st.sampled_from([10, 11]))


@settings(max_examples=300, deadline=None)
@given(st.lists(extreme_candidate, max_size=80))
def test_groups_follow_the_rule_as_written(rows: list) -> None:
    """groups() (numpy runs, singletons dropped, cut at gaps) makes the groups of the rule read
    literally, times at the ends of int64 included."""
    c = FanoutCandidates()
    c.add_columns(_cols(rows))
    got = sorted((g.ts_first, g.namespace, g.event, g.ts_last, g.recipients, g.payload_bytes) for g in c.groups())
    assert got == _reference_groups(rows)


def test_grouping_rule() -> None:
    c = FanoutCandidates()
    s = 1_000_000
    c.add_columns(_cols([
        (0, "/", "a", 7, "s1", 5), (1 * s, "/", "a", 7, "s2", 5), (2 * s, "/", "a", 7, "s2", 5),  # s2 again: next
        (3 * s, "/", "a", 7, "s3", 5),
        (0, "/", "a", 8, "s3", 5),  # another payload: alone
        (5000 * s, "/", "b", 7, "s1", 5), (6001 * s, "/", "b", 7, "s2", 5),  # 1.001 s apart: no fan-out
    ]))
    got = [(g.event, g.ts_first, g.ts_last, g.recipients) for g in c.groups()]
    assert got == [("a", 0, 1 * s, 2), ("a", 2 * s, 3 * s, 2)]


def test_other_captures_without_broadcasts_have_none() -> None:
    for name in ("sio4_disconnects.pcapng", "sio4_recovery.pcap", "ws_basic.pcap"):
        assert len(dissect.analyze(str(CAPTURES / name)).sio_broadcasts) == 0, name


@pytest.mark.parametrize("name", ["sio2_polling.pcapng"])
def test_same_bytes_to_each_client_within_a_second_is_a_fanout_by_definition(name: str) -> None:
    """socket.io 2's scenario emits the same 'tick' to each client as it connects, under 1 s
    apart: by REPORTS.md's definition (the wire cannot tell a loop of emits from a broadcast)
    those are fan-outs; each recipient is a different Engine.IO session of the truth."""
    a = dissect.analyze(str(CAPTURES / name))
    sids = {e["eio_sid"] for e in json.loads((CAPTURES / name.replace(".pcapng", ".truth.json")).read_text())["events"]
            if e["event"] == "tick"}
    assert len(sids) >= 2
    assert (a.sio_broadcasts.recipients <= len(sids)).all() and (a.sio_broadcasts.spread_ms <= 1000).all()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_table_reads_back(tmp_path: Path, fmt: str) -> None:
    from dissect.output.tables import Analysis

    out = tmp_path / "r"
    assert invoke("report", str(CAPTURE), "--out", str(out), "-q", "--no-html", "--format", fmt)[0] == 0
    back = Analysis.from_dir(str(out)).sio_broadcasts
    live = dissect.analyze(str(CAPTURE)).sio_broadcasts
    assert list(back.columns) == list(live.columns) and len(back) == 3
    assert back[["namespace", "event", "recipients", "payload_bytes"]].equals(
        live[["namespace", "event", "recipients", "payload_bytes"]])
    assert (abs(back.ts_first - live.ts_first) < 1e-6).all()


_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_ts = st.one_of(st.integers(0, 3 * WINDOW_NS), st.sampled_from([_INT64_MIN, _INT64_MAX, _INT64_MIN + 1, 0]))


@pytest.mark.skipif(not __import__("dissect.fastpaths").fastpaths.COMPILED, reason="the compiled core is not built")
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_ts, st.sampled_from(["/", "/chat"]), st.sampled_from(["a", "b"]), st.integers(0, 3),
                          st.sampled_from([f"s{i}" for i in range(100)]), st.sampled_from([10, 11])), max_size=150),
       st.booleans())
def test_compiled_grouping_equals_the_python_loop(rows: list, big: bool) -> None:
    """The C loop (fastpaths.COMPILED_FANOUT_GROUPS, key by key) makes the fan-outs of the Python
    loop (every candidate in time order): on times at the ends of int64 (differences past it),
    sockets repeated within a window, groups of up to 100 sockets (the socket set grows past its
    first 64 slots), with numpy's order (past SMALL) and Python's."""
    from dissect import fastpaths
    from dissect.output import broadcasts

    if big:  # one key of its own, many sockets, all within the window
        rows = rows + [(i * 1000, "/", "big", 1, f"s{i}", 10) for i in range(100)]
    c = FanoutCandidates()
    c.add_columns(_cols(rows))
    saved = fastpaths.COMPILED_FANOUT_GROUPS, broadcasts.SMALL
    try:
        fastpaths.COMPILED_FANOUT_GROUPS = False
        expected = list(c.groups())
        fastpaths.COMPILED_FANOUT_GROUPS = True
        assert list(c.groups()) == expected
        broadcasts.SMALL = 0
        assert list(c.groups()) == expected
    finally:
        fastpaths.COMPILED_FANOUT_GROUPS, broadcasts.SMALL = saved
    if big:
        assert [g.recipients for g in expected if g.event == "big"] == [100]


@pytest.mark.parametrize("prefix", ["dissect-fanout-", "dissect-part-"])
def test_a_killed_runs_spill_is_removed_by_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    prefix: str) -> None:
    """A run killed outright (SIGKILL) leaves its spill files (the broadcasts' candidates, a
    --jobs/--dask task's part runs); the next run of this host that makes one removes them, and
    leaves those of a running process and of other hosts alone."""
    import os
    import subprocess
    import sys
    import tempfile

    from dissect.output import broadcasts
    from dissect.output.report_dir import run_prefix
    from dissect.run.parts import PartWriter

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(broadcasts, "SPILL_PREFIX", prefix)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    mine = run_prefix(broadcasts.SPILL_PREFIX)
    host_part = mine[len(broadcasts.SPILL_PREFIX):].split("-")[0]
    stale = tmp_path / f"{broadcasts.SPILL_PREFIX}{host_part}-{dead}-abc"
    running = tmp_path / f"{broadcasts.SPILL_PREFIX}{host_part}-{os.getppid()}-def"
    other_host = tmp_path / f"{broadcasts.SPILL_PREFIX}elsewhere-{dead}-ghi"
    for d in (stale, running, other_host):
        d.mkdir()
        (d / "0.bin").write_bytes(b"x" * 24)
    if prefix == "dissect-part-":
        part = PartWriter(str(tmp_path / "out"), "csv", 6, "t")
        where = part.tmp
    else:
        spill = broadcasts.SpillFiles()
        where = spill.dir
    assert where.startswith(str(tmp_path / mine))
    assert not stale.exists() and running.exists() and other_host.exists()
    if prefix != "dissect-part-":
        spill.close()
        assert not os.path.exists(where)
