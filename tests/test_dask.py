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


def test_dask_equals_local(cluster: str) -> None:
    local = dissect.analyze(FILES)
    remote = dissect.analyze(FILES, dask=cluster)
    for name in ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets"):
        assert len(local.table(name)) > 0
        assert rows(local.table(name)) == rows(remote.table(name)), name
    assert json.dumps(local.summary, sort_keys=True) == json.dumps(remote.summary, sort_keys=True)


def test_report_dask_option(cluster: str, tmp_path: Path) -> None:
    r = CliRunner()
    assert r.invoke(main, ["report", *FILES, "--out", str(tmp_path / "a"), "--no-html", "-q"]).exit_code == 0
    res = r.invoke(main, ["report", *FILES, "--out", str(tmp_path / "b"), "--no-html", "-q", "--dask", cluster])
    assert res.exit_code == 0, res.output
    for name in ("sessions", "ws_frames", "sio_packets"):
        a = sorted((tmp_path / "a" / f"{name}.csv").read_text().splitlines())
        b = sorted((tmp_path / "b" / f"{name}.csv").read_text().splitlines())
        assert a == b


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
