"""--dask: per-file work on a Dask cluster gives the tables of a local run (distributed.LocalCluster)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import dissect
from dissect.cli import main
from dissect.records import TABLES

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


def rotate(src: Path, out_dir: Path, files: int) -> list[str]:
    """``src`` cut into ``files`` pcap files of about the same packet count, as ``tcpdump -C`` or
    ``editcap -c`` leave a long capture."""
    import dpkt

    with src.open("rb") as f:
        reader = dpkt.pcapng.Reader(f) if src.suffix == ".pcapng" else dpkt.pcap.Reader(f)
        link = reader.datalink()
        packets = list(reader)
    per = -(-len(packets) // files)
    names = []
    for i in range(files):
        name = out_dir / f"{src.stem}_{i:02d}.pcap"
        with name.open("wb") as g:
            w = dpkt.pcap.Writer(g, linktype=link)
            for ts, buf in packets[i * per : (i + 1) * per]:
                w.writepkt(buf, ts)
        names.append(str(name))
    return names


def same_summary(local: dict, remote: dict) -> None:
    """summary.json of a local run, and of --dask which says its rows are grouped by session."""
    remote = dict(remote)
    assert remote.pop("row_order") == "sessions" and "row_order" not in local
    assert json.dumps(local, sort_keys=True) == json.dumps(remote, sort_keys=True)


def same_tables(local: dissect.Analysis, remote: dissect.Analysis) -> None:
    """Every table holds the same rows (their order differs: worker by worker)."""
    for name in TABLES:
        assert sorted(rows(local.table(name))) == sorted(rows(remote.table(name))), name


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A generated Socket.IO capture (long-lived WebSockets through every file) and a corpus capture
    whose Engine.IO sessions (polling requests, then the WebSocket upgrade) span files."""
    import subprocess
    import sys

    d = tmp_path_factory.mktemp("rotated")
    big = d / "ws.pcap"
    subprocess.run([sys.executable, str(CAPTURES.parent / "benchmarks" / "make_capture.py"), "--packets", "6000",
                    "--connections", "6", "--out", str(big)], check=True, capture_output=True)
    return rotate(big, d, 4) + rotate(CAPTURES / "sio4_polling_upgrade.pcapng", d, 3)


def test_rotated_set_equals_local(cluster: str, rotated: list[str]) -> None:
    """Connections and Engine.IO sessions that run on from one file into the next: the rows of a
    local run (the per-file split of the first --dask lost 95 % of the Socket.IO rows here)."""
    local = dissect.analyze(rotated)
    remote = dissect.analyze(rotated, dask=cluster)
    assert len(local.sio_packets) > 2000 and len(local.sessions) == 6 + len(dissect.analyze(rotated[4:]).sessions)
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
    """dissect report --dask: the tasks write part files, the client joins them: every table holds
    the lines of the local report; summary.json the same figures."""
    r = CliRunner()
    assert r.invoke(main, ["report", *rotated, "--out", str(tmp_path / "a"), "--no-html", "-q"]).exit_code == 0
    res = r.invoke(main, ["report", *rotated, "--out", str(tmp_path / "b"), "-q", "--dask", cluster])
    assert res.exit_code == 0, res.output
    for name in TABLES:
        a = (tmp_path / "a" / f"{name}.csv").read_text().splitlines()
        b = (tmp_path / "b" / f"{name}.csv").read_text().splitlines()
        assert a[0] == b[0] and sorted(a[1:]) == sorted(b[1:]), name
    assert (tmp_path / "b" / "report.html").exists()
    sa, sb = (json.loads((tmp_path / x / "summary.json").read_text()) for x in "ab")
    assert sa["totals"] == sb["totals"] and sa["sio_sockets"] == sb["sio_sockets"]
    assert not [p for p in (tmp_path / "b").rglob("*") if ".part" in p.name or "dissect-jobs" in p.name]


def test_a_retried_task_leaves_no_duplicate(tmp_path: Path) -> None:
    """A worker's part files appear whole or not at all: a task run twice (Dask retries a task
    whose worker died) replaces the first attempt's parts instead of adding to them."""
    from dissect.run.filters import Filters
    from dissect.run.jobs import _worker  # noqa: PLC2701 - the task itself
    from dissect.transport.limits import Limits

    part = tmp_path / "0"
    args = (0, 2, FILES[:1], str(part), "csv", 6, Limits(), Filters(), True, False, None)
    _worker(args)
    first = {p.name: p.read_bytes() for p in part.iterdir()}
    _worker(args)
    assert {p.name: p.read_bytes() for p in part.iterdir()} == first
    assert [p.name for p in tmp_path.iterdir()] == ["0"]  # no half-written part left beside it


def test_report_dask_option(cluster: str, tmp_path: Path) -> None:
    r = CliRunner()
    assert r.invoke(main, ["report", *FILES, "--out", str(tmp_path / "a"), "--no-html", "-q"]).exit_code == 0
    res = r.invoke(main, ["report", *FILES, "--out", str(tmp_path / "b"), "--no-html", "-q", "--dask", cluster])
    assert res.exit_code == 0, res.output
    for name in TABLES:
        a = sorted((tmp_path / "a" / f"{name}.csv").read_text().splitlines())
        b = sorted((tmp_path / "b" / f"{name}.csv").read_text().splitlines())
        assert a == b
    bad = r.invoke(main, ["report", *FILES, str(tmp_path / "missing.pcap"), "--out", str(tmp_path / "c"),
                          "-q", "--dask", cluster])
    assert bad.exit_code == 2 and "missing.pcap" in bad.output  # one line, as locally


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
