"""--jobs N: the same rows and summary as one process, with Engine.IO sessions kept whole."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import dissect
from dissect.cli import main
from dissect.protocols.registry import http_affinity
from dissect.transport.ownership import SHARED, Ownership

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
ALL = sorted(str(p) for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))


def canonical(df: pd.DataFrame) -> list[tuple]:
    return sorted(tuple("" if pd.isna(v) else str(v) for v in row) for row in df.itertuples(index=False))


@pytest.fixture(scope="module")
def one_and_two() -> tuple[dissect.Analysis, dissect.Analysis]:
    return dissect.analyze(ALL), dissect.analyze(ALL, jobs=2)


@pytest.mark.parametrize("table", ["sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets",
                                   "sio_sockets"])
def test_jobs_rows_identical(one_and_two: tuple[dissect.Analysis, dissect.Analysis], table: str) -> None:
    a, b = one_and_two
    assert len(a.table(table)) > 0
    assert canonical(a.table(table)) == canonical(b.table(table))


def _without_row_order(summary: dict) -> str:
    return json.dumps({k: v for k, v in summary.items() if k != "row_order"}, sort_keys=True)


def test_jobs_summary_identical(one_and_two: tuple[dissect.Analysis, dissect.Analysis]) -> None:
    a, b = one_and_two
    assert "row_order" not in a.summary and b.summary["row_order"] == "sessions"
    assert _without_row_order(a.summary) == _without_row_order(b.summary)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("workers", [2, 3])
def test_jobs_report_files_identical(tmp_path: Path, fmt: str, workers: int,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """--jobs 3 (and --jobs 2 with the compiled core) writes one process's rows grouped by
    session_id (Parquet too: the parts hold rows)."""
    from dissect import cli

    monkeypatch.setattr(cli, "two_stages", lambda jobs: False)
    r = CliRunner()
    for jobs in (1, workers):
        res = r.invoke(main, ["report", *ALL, "--out", str(tmp_path / str(jobs)), "--no-html", "-q",
                              "--jobs", str(jobs), "--format", fmt])
        assert res.exit_code == 0, res.output
    one_a = dissect.Analysis.from_dir(str(tmp_path / "1"))
    split_a = dissect.Analysis.from_dir(str(tmp_path / str(workers)))
    for name in ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets", "sio_sockets",
                 "sio_broadcasts"):
        if fmt == "csv":
            one = (tmp_path / "1" / f"{name}.csv").read_text().splitlines()
            split = (tmp_path / str(workers) / f"{name}.csv").read_text().splitlines()
            assert one[0] == split[0]  # one header
            key = (lambda line: int(line.split(",", 1)[0])) if name != "sio_broadcasts" else None
            assert split[1:] == (sorted(one[1:], key=key) if key else one[1:]), name
        else:
            df = one_a.table(name)
            if name != "sio_broadcasts":
                df = df.sort_values("session_id", kind="stable")
            assert split_a.table(name).astype(str).values.tolist() == df.astype(str).values.tolist(), name
    one_s = json.loads((tmp_path / "1" / "summary.json").read_text())
    split_s = json.loads((tmp_path / str(workers) / "summary.json").read_text())
    assert split_s["row_order"] == "sessions"
    assert _without_row_order(one_s) == _without_row_order(split_s)


def test_work_is_split() -> None:
    """Both workers own some sessions of the polling capture (the split is real)."""
    owners = set()
    for i in range(2):
        own = Ownership(i, 2)
        for sid in range(1, 200):
            own.new_flow(sid)
        owners |= {o for o in own.owners.values()}
    assert owners == {0, 1}


def test_flows_are_dealt_evenly() -> None:
    """Round-robin by session id: N workers own equal shares of the flows (within one)."""
    for count in (2, 3):
        shares = [sum(Ownership(i, count).new_flow(sid) for sid in range(1, 101)) for i in range(count)]
        assert sum(shares) == 100 and max(shares) - min(shares) <= 1, shares


def _first_request(own: Ownership, session_id: int, target: str) -> bool:
    """What the protocol registry does with a connection's first request under --jobs."""
    key, shared = http_affinity(f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    return own.regroup(session_id, key, shared)


def test_engineio_requests_follow_their_sid() -> None:
    own = Ownership(0, 2)
    for s in (1, 2, 3):
        own.new_flow(s)
    assert _first_request(own, 1, "/socket.io/?EIO=4&transport=polling&t=x") is True
    assert own.owners[1] == SHARED  # the handshake: every worker, rows to the sid's owner
    _first_request(own, 2, "/socket.io/?EIO=4&transport=polling&sid=abc")
    _first_request(own, 3, "/socket.io/?EIO=4&transport=websocket&sid=abc")
    assert own.owners[2] == own.owners[3] == own.key_owner("abc")


def test_sid_read_as_the_engineio_tracker_reads_it() -> None:
    """A sid with "+" (kept as is by Engine.IO, a space to form decoding) and an escape: the
    connection goes to the owner of the sid the tracker names, where the session's rows go."""
    from dissect.protocols.engineio import request_query

    target = "/socket.io/?EIO=3&transport=polling&sid=ab+cd%2Fef"
    own = Ownership(0, 64)
    own.new_flow(1)
    _first_request(own, 1, target)
    assert request_query(target)["sid"] == "ab+cd/ef"
    assert own.owners[1] == own.key_owner("ab+cd/ef") != own.key_owner("ab cd/ef")


@pytest.mark.parametrize("extra", [[], ["--format", "jsonl"], ["--namespace", "/", "--host", "127.0.0.1"]])
def test_two_stages_write_the_same_bytes(tmp_path: Path, extra: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """--jobs 2 in pure Python (one process dissects, one writes; here with either core): every
    file is byte for byte that of one process, rows in the same order; filters included."""
    from dissect import cli

    monkeypatch.setattr(cli, "two_stages", lambda jobs: jobs == 2)
    r = CliRunner()
    for jobs in ("1", "2"):
        res = r.invoke(main, ["report", *ALL, "--out", str(tmp_path / jobs), "-q", "--jobs", jobs, *extra])
        assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "1").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "2").iterdir())
    assert "summary.json" in names and "report.html" in names and len(names) == 10
    for name in names:  # report.html included
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    assert sum(1 for _ in (tmp_path / "2" / names[-1]).open()) > 100  # ws_messages: many rows


def test_two_stages_parquet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyarrow")
    from dissect import cli

    monkeypatch.setattr(cli, "two_stages", lambda jobs: jobs == 2)
    r = CliRunner()
    for jobs in ("1", "2"):
        res = r.invoke(main, ["report", *ALL, "--out", str(tmp_path / jobs), "-q", "--no-html", "--jobs", jobs,
                              "--format", "parquet"])
        assert res.exit_code == 0, res.output
    for name in ("sessions", "ws_frames", "sio_packets"):
        a = pd.read_parquet(tmp_path / "1" / f"{name}.parquet")
        b = pd.read_parquet(tmp_path / "2" / f"{name}.parquet")
        assert len(a) > 0 and a.equals(b), name


class _FailingWriter:
    def __init__(self, after: int) -> None:
        self.after = after
        self.rows = 0

    def add(self, table: str, rows: list[tuple]) -> None:
        self.rows += len(rows)
        if self.rows > self.after:
            raise OSError(28, "No space left on device")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("after", [-1, 0, 500])
def test_two_stages_writer_failure_is_one_message(after: int) -> None:
    """The writing side failing (at its start, on the first rows, later) stops the run with
    one clear message, never a hang or a traceback from the child."""
    from dissect.errors import DissectError
    from dissect.run.two_stage import run_two_stages

    def make() -> _FailingWriter:
        if after < 0:
            raise PermissionError(13, "Permission denied", "/out")
        return _FailingWriter(after)

    with pytest.raises(DissectError, match="writing the tables failed: (PermissionError|OSError)"):
        run_two_stages(ALL, make)


def test_default_jobs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without --jobs: one process with the compiled core (its rows handed to a writer cost what the
    writing does); in pure Python two processes on two cores or more where fork exists, else one;
    --jobs 2 where fork does not exist is a usage error, not a traceback."""
    from dissect import cli

    monkeypatch.setattr(cli.fastpaths, "COMPILED", False)
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 2)
    assert cli.default_jobs() == (2 if cli._can_fork() else 1)
    assert cli.two_stages(2)  # --jobs 2 in pure Python: dissect, write
    monkeypatch.setattr(cli.fastpaths, "COMPILED", True)
    assert cli.default_jobs() == 1
    assert not cli.two_stages(2)  # with the compiled core: two workers sharing the sessions
    monkeypatch.setattr(cli.fastpaths, "COMPILED", False)
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 1)
    assert cli.default_jobs() == 1
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(cli, "_can_fork", lambda: False)
    assert cli.default_jobs() == 1
    res = CliRunner().invoke(main, ["report", ALL[0], "--out", str(tmp_path), "-q", "--jobs", "2"])
    assert res.exit_code == 2 and "fork" in res.output


_ORPHAN_SCRIPT = """
import os, sys, time
from dissect.run.two_stage import run_two_stages

class SlowWriter:
    def add(self, table, rows):
        time.sleep(0.2)
    def close(self):
        pass

def make():
    with open(sys.argv[2], "w") as f:
        f.write(str(os.getpid()))
    return SlowWriter()

run_two_stages([sys.argv[1]] * 10000, make)  # a few seconds of dissecting
"""


def test_two_stages_child_ends_with_a_killed_parent(tmp_path: Path) -> None:
    """The writing side never outlives the dissecting side, even one killed outright (the child
    must not hold the parent's end of the pipe open)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT, ALL[0], str(pid_file)],
                              stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and parent.poll() is None, parent.stderr.read() if parent.stderr else ""
        time.sleep(0.05)
    child = int(pid_file.read_text())
    time.sleep(0.3)  # mid-run: the slow writer holds the parent back
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    while True:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break  # gone (reaped by init)
        with open(f"/proc/{child}/stat") as f:
            if f.read().split(") ")[1].startswith("Z"):
                break  # a zombie waiting for init: it has ended
        assert time.monotonic() < deadline, "the writing side outlived its parent"
        time.sleep(0.1)
    assert parent.stderr is not None
    assert b"Traceback" not in parent.stderr.read()


def test_a_worker_run_twice_leaves_no_duplicate(tmp_path: Path) -> None:
    """A --jobs worker's part appears whole under a name of its own or not at all: a worker run
    twice leaves two whole parts (the parent reads only the one its worker returned), nothing
    half-written beside them."""
    from dissect.run.filters import Filters
    from dissect.run.jobs import _worker  # noqa: PLC2701 - the worker itself
    from dissect.transport.limits import Limits

    part = tmp_path / "0"
    args = (0, 2, ALL[:1], str(part), "csv", 6, Limits(), Filters(), True, None, True)
    first = _worker(args)[2]
    second = _worker(args)[2]
    assert first and second and first != second
    content = [{str(p.relative_to(d)): p.read_bytes() for p in Path(d).rglob("*") if p.is_file()}
               for d in (first, second)]
    assert content[0] == content[1] and content[0]
    assert sorted(p.name for p in part.iterdir()) == sorted([Path(first).name, Path(second).name])
