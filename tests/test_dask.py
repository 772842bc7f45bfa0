"""--dask on a distributed.LocalCluster: rotated capture sets (connections and Engine.IO sessions
running through several files) and unrelated captures give every table of the local run.

The rows of --dask are grouped by session_id (summary.json: ``row_order: sessions``): each table
file is the local one with its rows sorted by session_id, a stable sort (one process's order kept
within a session), byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import dissect
from dissect.cli import main
from dissect.records import SESSION_TABLES, TABLES
from tests.rotate import rotate

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
FILES = [str(CAPTURES / n) for n in ("sio4_websocket.pcap", "sio2_polling.pcapng", "ws_multi.pcapng",
                                      "http_keepalive.pcap", "udp_exchange.pcapng")]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as c:
        yield c.scheduler_address


def rows(df: pd.DataFrame) -> list[tuple]:
    return [tuple("" if pd.isna(v) else str(v) for v in r) for r in df.itertuples(index=False)]


def same_summary(local: dict[str, Any], remote: dict[str, Any]) -> None:
    """summary.json of a local run, and of --dask which says its rows are grouped by session."""
    remote = dict(remote)
    assert remote.pop("row_order") == "sessions" and "row_order" not in local
    assert json.dumps(local, sort_keys=True) == json.dumps(remote, sort_keys=True)


def same_tables(local: dissect.Analysis, remote: dissect.Analysis) -> None:
    for name in TABLES:
        assert sorted(rows(local.table(name))) == sorted(rows(remote.table(name))), name


def same_files(local: Path, remote: Path, fmt: str = "csv") -> None:
    """Each table file of ``remote`` is that of ``local`` with its rows stably sorted by session_id."""
    for name in TABLES:
        a = (local / f"{name}.{fmt}").read_bytes().splitlines(keepends=True)
        b = (remote / f"{name}.{fmt}").read_bytes().splitlines(keepends=True)
        head = 1 if fmt == "csv" else 0
        if name in SESSION_TABLES:
            first = (lambda line: int(line.split(b",", 1)[0])) if fmt == "csv" else \
                (lambda line: json.loads(line)["session_id"])
            a = a[:head] + sorted(a[head:], key=first)
        assert a == b, name


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A generated Socket.IO capture cut in 4 (long-lived WebSockets through every file) and a corpus
    capture whose Engine.IO session (21 connections: polling requests, then the WebSocket upgrade)
    spans 3 files."""
    d = tmp_path_factory.mktemp("rotated")
    big = d / "ws.pcap"
    subprocess.run([sys.executable, str(CAPTURES.parent / "benchmarks" / "make_capture.py"), "--packets", "6000",
                    "--connections", "6", "--out", str(big)], check=True, capture_output=True)
    return rotate(big, d / "set", 1500) + rotate(CAPTURES / "sio4_polling_upgrade.pcapng", d / "set", 100)


def test_rotated_set_equals_local(cluster: str, rotated: list[str]) -> None:
    """Connections and Engine.IO sessions that run on from one file into the next: the rows of a
    local run (the per-file split of the first --dask lost 95 % of the Socket.IO rows here)."""
    local = dissect.analyze(rotated)
    remote = dissect.analyze(rotated, dask=cluster)
    assert len(local.sio_packets) > 2000 and len(local.sessions) == 6 + 21
    same_tables(local, remote)
    same_summary(local.summary, remote.summary)


def test_dask_equals_local(cluster: str) -> None:
    """Unrelated captures, some of whose 5-tuples collide."""
    local = dissect.analyze(FILES)
    remote = dissect.analyze(FILES, dask=cluster)
    for name in ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets"):
        assert len(local.table(name)) > 0
    same_tables(local, remote)
    same_summary(local.summary, remote.summary)


def test_report_on_a_rotated_set_writes_the_local_tables(cluster: str, rotated: list[str], tmp_path: Path) -> None:
    """dissect report --dask: every table file is the local one grouped by session, byte for byte;
    summary.json the same figures; report.html drawn; no part file left."""
    r = CliRunner()
    files = rotated + FILES
    assert r.invoke(main, ["report", *files, "--out", str(tmp_path / "a"), "--no-html", "-q"]).exit_code == 0
    res = r.invoke(main, ["report", *files, "--out", str(tmp_path / "b"), "-q", "--dask", cluster])
    assert res.exit_code == 0, res.output
    same_files(tmp_path / "a", tmp_path / "b")
    same_summary(*(json.loads((tmp_path / x / "summary.json").read_text()) for x in "ab"))
    assert (tmp_path / "b" / "report.html").exists()
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == \
        sorted([f"{t}.csv" for t in TABLES] + ["summary.json", "report.html"])


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_report_formats(cluster: str, rotated: list[str], tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq = pytest.importorskip("pyarrow.parquet")
    r = CliRunner()
    for out, more in (("a", []), ("b", ["--dask", cluster])):
        res = r.invoke(main, ["report", *rotated, "--out", str(tmp_path / out), "--no-html", "-q", "--format", fmt,
                              *more])
        assert res.exit_code == 0, res.output
    if fmt == "jsonl":
        same_files(tmp_path / "a", tmp_path / "b", "jsonl")
        return
    for name in TABLES:
        a = pq.read_table(tmp_path / "a" / f"{name}.parquet")
        b = pq.read_table(tmp_path / "b" / f"{name}.parquet")
        if name in SESSION_TABLES:
            a = a.take(pd.Series(a.column("session_id").to_pylist()).sort_values(kind="stable").index.to_list())
        assert a.equals(b), name


def test_parts_in_a_url(cluster: str, rotated: list[str], tmp_path: Path) -> None:
    """--dask-scratch: the part files go to an fsspec URL (here file://; s3://... alike where its
    backend is installed), are read from there and removed."""
    scratch = tmp_path / "scratch"
    r = CliRunner()
    assert r.invoke(main, ["report", *rotated, "--out", str(tmp_path / "a"), "--no-html", "-q"]).exit_code == 0
    res = r.invoke(main, ["report", *rotated, "--out", str(tmp_path / "b"), "--no-html", "-q", "--dask", cluster,
                          "--dask-scratch", f"file://{scratch}"])
    assert res.exit_code == 0, res.output
    same_files(tmp_path / "a", tmp_path / "b")
    assert scratch.is_dir() and not list(scratch.iterdir())
    bad = r.invoke(main, ["report", *rotated, "--out", str(tmp_path / "c"), "-q", "--dask-scratch", str(scratch)])
    assert bad.exit_code == 2 and "--dask-scratch goes with --dask" in bad.output


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _environ(values: dict[str, str | None]) -> None:
    """Set (None: remove) environment variables of this process (run on the workers too)."""
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3(cluster: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 endpoint (moto's server, in this process) that the client and the cluster's workers
    reach through the usual AWS environment variables; a bucket ``dissect``. Yields an s3fs
    filesystem on it."""
    s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed (pip install s3fs)")
    server_mod = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**S3_ENV, "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with distributed.Client(cluster) as client:
        before = client.run(lambda: {k: os.environ.get(k) for k in env})
        client.run(_environ, env)
        try:
            fs = s3fs.S3FileSystem(skip_instance_cache=True)
            fs.mkdir("dissect")
            yield fs
        finally:
            for worker, values in before.items():
                client.run(_environ, values, workers=[worker])
            server.stop()


def test_parts_in_s3(cluster: str, rotated: list[str], s3: Any, tmp_path: Path) -> None:
    """--dask-scratch s3://...: the workers write their part files to an object store (moto's S3
    server here, through s3fs), the client merges them from there into the local tables and
    removes them."""
    r = CliRunner()
    files = rotated + FILES
    assert r.invoke(main, ["report", *files, "--out", str(tmp_path / "a"), "--no-html", "-q"]).exit_code == 0
    seen: list[str] = []
    from dissect.run import parts

    read_index = parts.read_index

    def spying(path: str) -> Iterator[parts.Segment]:
        seen.append(path)
        return read_index(path)

    parts.read_index = spying
    try:
        res = r.invoke(main, ["report", *files, "--out", str(tmp_path / "b"), "-q", "--dask", cluster,
                              "--dask-scratch", "s3://dissect/scratch"])
    finally:
        parts.read_index = read_index
    assert res.exit_code == 0, res.output
    same_files(tmp_path / "a", tmp_path / "b")
    same_summary(*(json.loads((tmp_path / x / "summary.json").read_text()) for x in "ab"))
    assert (tmp_path / "b" / "report.html").exists()
    assert seen and all(p.startswith("s3://dissect/scratch/dissect-") for p in seen)  # read from S3
    s3.invalidate_cache()
    assert s3.find("dissect") == []  # every part removed


def test_report_dask_option(cluster: str, tmp_path: Path) -> None:
    r = CliRunner()
    assert r.invoke(main, ["report", *FILES, "--out", str(tmp_path / "a"), "--no-html", "-q"]).exit_code == 0
    res = r.invoke(main, ["report", *FILES, "--out", str(tmp_path / "b"), "--no-html", "-q", "--dask", cluster])
    assert res.exit_code == 0, res.output
    same_files(tmp_path / "a", tmp_path / "b")
    bad = r.invoke(main, ["report", *FILES, str(tmp_path / "missing.pcap"), "--out", str(tmp_path / "c"),
                          "-q", "--dask", cluster])
    assert bad.exit_code == 2 and "missing.pcap" in bad.output  # one line, as locally
    assert bad.output.count("\n") == 1


def test_report_dask_reuses_out(cluster: str, tmp_path: Path) -> None:
    """--dask writes the report aside and swaps it in like every other run mode: an earlier
    report's files the new one does not write are gone."""
    r = CliRunner()
    out = tmp_path / "r"
    assert r.invoke(main, ["report", FILES[0], "--out", str(out), "-q", "--dask", cluster]).exit_code == 0
    assert (out / "report.html").exists()
    res = r.invoke(main, ["report", FILES[2], "--out", str(out), "-q", "--no-html", "--format", "jsonl",
                          "--dask", cluster])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{t}.jsonl" for t in TABLES] + ["summary.json"])
    assert json.loads((out / "summary.json").read_text())["files"][0]["path"] == FILES[2]


def test_summary_dask(cluster: str, rotated: list[str]) -> None:
    """dissect summary --dask: summary.json's figures and the session list of a local run (each
    task lists its sessions; no row comes back)."""
    r = CliRunner()
    files = rotated + FILES
    a = r.invoke(main, ["summary", *files, "-q", "--json"])
    b = r.invoke(main, ["summary", *files, "-q", "--json", "--dask", cluster])
    assert a.exit_code == b.exit_code == 0, b.output
    local = json.loads(a.stdout)
    assert local["totals"]["sio_packets"] > 2000
    same_summary(local, json.loads(b.stdout))
    a = r.invoke(main, ["summary", *files, "-q", "--sessions"])
    b = r.invoke(main, ["summary", *files, "-q", "--sessions", "--dask", cluster])
    assert a.exit_code == b.exit_code == 0, b.output
    assert a.stdout == b.stdout
    listed = a.stdout.split("Sessions list\n", 1)[1].splitlines()
    assert len(listed) == 1 + local["totals"]["sessions"]  # the header, then one line per session


RULES = """
[[rule]]
name = "every handshake succeeds"
table = "handshakes"
where = "not ok"
expect = "none"
[[rule]]
name = "socket.io connect p90 under 1 ms"
metric = "handshakes.duration_ms"
where = "layer == 'socketio'"
stat = "p90"
max = 1
[[rule]]
name = "close codes"
table = "ws_frames"
column = "close_code"
allowed = [1000]
"""


def test_check_diff_follow_dask(cluster: str, rotated: list[str], tmp_path: Path) -> None:
    """dissect check, diff and follow --dask: the rows come back from the tasks; the same results
    and exit codes as locally (rules that fail included, with their offending rows)."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    r = CliRunner()
    files = rotated + FILES
    runs = [(["check", *files, "--rules", str(rules)], 1, "opcode_name=close close_code=1001"),
            (["diff", FILES[0], *rotated], 1, "FAIL sessions: rows"),
            (["follow", *FILES, "--session", "3"], 0, "engineio handshake ok")]
    for args, code, shown in runs:
        a = r.invoke(main, args)
        b = r.invoke(main, [*args, "--dask", cluster])
        assert a.exit_code == b.exit_code == code, (args, b.output)
        assert a.stdout == b.stdout and shown in a.stdout, args
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        bad = r.invoke(main, ["check", FILES[0], "--rules", str(rules), "--dask", "tcp://127.0.0.1:9"])
    assert bad.exit_code == 2 and "cannot reach the scheduler" in bad.output


def test_unreachable_scheduler_is_one_line(tmp_path: Path) -> None:
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        res = CliRunner().invoke(main, ["report", FILES[0], "--out", str(tmp_path / "r"), "-q", "--dask",
                                        "tcp://127.0.0.1:9"])
    assert res.exit_code == 2 and res.output.startswith("dissect: --dask tcp://127.0.0.1:9: cannot reach")
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir())


class DieOnce(distributed.diagnostics.plugin.WorkerPlugin):  # type: ignore[misc]
    """Kills the worker in the middle of its first task's part: the part files written, not yet
    renamed into place (a worker lost mid-task)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def setup(self, worker: Any) -> None:
        from dissect.run import parts

        marker, rename = self.marker, parts.rename

        def dying_rename(src: str, dst: str) -> None:
            if os.path.exists(marker):
                os.remove(marker)
                os._exit(1)
            rename(src, dst)

        parts.rename = dying_rename


def test_a_worker_dying_mid_task(rotated: list[str], tmp_path: Path) -> None:
    """Dask runs the task again on a worker alive; the half-written part of the dead one is never
    read: the tables hold every row once."""
    r = CliRunner()
    assert r.invoke(main, ["report", *rotated, "--out", str(tmp_path / "a"), "--no-html", "-q"]).exit_code == 0
    marker = tmp_path / "die"
    marker.touch()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as c, distributed.Client(c) as client:
        client.register_plugin(DieOnce(str(marker)))
        res = r.invoke(main, ["report", *rotated, "--out", str(tmp_path / "b"), "--no-html", "-q", "--dask",
                              c.scheduler_address])
    assert res.exit_code == 0, res.output
    assert not marker.exists()  # a worker died
    same_files(tmp_path / "a", tmp_path / "b")
    assert not [p for p in (tmp_path / "b").rglob("*") if "parts" in p.name or p.name.startswith(".")]
