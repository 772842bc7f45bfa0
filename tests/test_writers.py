"""Report writers: CSV cells (quoting, formula neutralisation, missing values, exact timestamps),
JSON lines, and the round trip CSV -> DataFrame matching dissect.analyze()."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dissect
from dissect.api import run
from dissect.output import writers
from dissect.output.tables import TABLE_NAMES, Analysis, _typed, read_blocks
from dissect.output.writers import Blocks, ReportWriter, _ts_memo, row_formatter, ts_text
from dissect.records import Handshake, SioPacket, WsMessage
from dissect.run.jobs import run_jobs

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def parse(line: str) -> list[str]:
    return next(csv.reader(io.StringIO(line)))


@pytest.mark.parametrize("text,cell", [
    ("plain", "plain"),
    ("a,b", "a,b"),
    ('say "hi"', 'say "hi"'),
    ("two\nlines", "two\nlines"),
    ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
    ("+1", "'+1"),
    ("-2", "'-2"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("", ""),
    ("'quoted", "''quoted"),
])
def test_text_cells_quoted_and_neutralised(text: str, cell: str) -> None:
    row = SioPacket(1, 1_700_000_000_000_000_000, "c2s", "websocket", 4, "message", "EVENT", "/", text,
                    None, None, 3, None, "", "sid")
    fields = parse(row_formatter("sio_packets", 6)(row))
    assert len(fields) == len(SioPacket._fields)
    assert fields[SioPacket._fields.index("event")] == cell
    assert fields[SioPacket._fields.index("ack_id")] == ""  # missing: empty, never a sentinel


def test_neutralised_cells_read_back_exactly(tmp_path: Path) -> None:
    names = ["=1+2", "-x", "'=y", "'plain", "plain", "@a,b"]
    rows = [SioPacket(1, 10**18 + i, "c2s", "websocket", 4, "message", "EVENT", "/", n, None, None, 3, None, "",
                      "sid") for i, n in enumerate(names)]
    w = ReportWriter(str(tmp_path))
    w.add("sio_packets", rows)
    w.close()
    assert list(Analysis.from_dir(str(tmp_path)).sio_packets.event) == names


def test_timestamps_exact_at_capture_precision() -> None:
    ns = 1_795_469_702_802_715_329
    row = Handshake(3, "tcp", ns, ns + 1, 0.000001, True, "", None)
    assert parse(row_formatter("handshakes", 9)(row))[2:4] == ["1795469702.802715329", "1795469702.802715330"]
    assert parse(row_formatter("handshakes", 6)(row))[2:4] == ["1795469702.802715", "1795469702.802715"]


@given(st.one_of(st.integers(0, 2**64), st.integers(0, 3 * 10**9)), st.sampled_from([6, 9]))
def test_memoised_times_equal_the_plain_formatting(ns: int, digits: int) -> None:
    """The writers' cached time cells (digits placed by slicing) equal ts_text, small times too."""
    cache: dict[int, str] = {}
    assert _ts_memo(cache, digits)(ns) == ts_text(ns, digits) == cache[ns]


def test_grouped_cells_format_each_combination() -> None:
    """Runs of flag/vocabulary columns are formatted once per combination: changing any one of
    them changes the line."""
    fmt = row_formatter("ws_frames", 6)
    base = (1, 0, 10**18, "c2s", True, False, False, False, 1, "text", True, 5, 6, False, None, None, "", 7)
    line = fmt(base)
    assert line == "1,0,1000000000.000000,c2s,true,false,false,false,1,text,true,5,6,false,,,,7\n"
    for i in (3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16):
        other = list(base)
        other[i] = {3: "s2c", 8: 8, 14: 1000, 15: "=bye, now", 16: "lost-bytes"}.get(i, not base[i])
        changed = fmt(tuple(other))
        assert changed != line, i
        assert fmt(base) == line
    close = list(base)
    close[14:16] = [1000, "=bye, now"]
    assert fmt(tuple(close)).endswith(",1000,\"'=bye, now\",,7\n")


def test_bools_and_floats() -> None:
    row = WsMessage(1, 0, 10**18, 10**18, "s2c", "text", 2, 30, None, True, "x", "")
    fields = parse(row_formatter("ws_messages", 6)(row))
    assert fields[WsMessage._fields.index("compressed")] == "true"
    assert fields[WsMessage._fields.index("payload_bytes")] == ""


def test_every_table_file_written_even_empty(tmp_path: Path) -> None:
    w = ReportWriter(str(tmp_path))
    w.close()
    for name in TABLE_NAMES:
        header = (tmp_path / f"{name}.csv").read_text().strip()
        assert header.split(",") == list(dissect.Analysis.__dataclass_fields__[name].default_factory().columns)  # type: ignore[misc]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_report_round_trip_equals_analyze(tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="the parquet extra is not installed")
    """What `dissect report` writes reads back to the DataFrames `dissect.analyze` returns."""
    from click.testing import CliRunner

    from dissect.cli import main

    cap = str(CAPTURES / "sio4_polling_upgrade.pcapng")
    res = CliRunner().invoke(main, ["report", cap, "--out", str(tmp_path), "--format", fmt, "--no-html", "-q"])
    assert res.exit_code == 0, res.output
    loaded = Analysis.from_dir(str(tmp_path))
    direct = dissect.analyze(cap)
    for name in ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets"):
        a = loaded.table(name).sort_values(list(loaded.table(name).columns[:2])).reset_index(drop=True)
        b = direct.table(name).sort_values(list(direct.table(name).columns[:2])).reset_index(drop=True)
        assert len(a) == len(b) > 0 or name == "http", name
        for col in a.columns:
            x, y = a[col], b[col]
            if col.startswith("ts") or col.endswith("_ts") or col.endswith("_ms"):
                assert ((x.astype(float) - y.astype(float)).abs().fillna(0) < 1e-6).all(), (name, col)
            else:
                xs = ["" if pd.isna(v) else str(v) for v in x]
                ys = ["" if pd.isna(v) else str(v) for v in y]
                assert xs == ys, (name, col)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["totals"]["sio_packets"] == len(direct.sio_packets)
    assert summary["totals"]["ws_frames"] == len(direct.ws_frames)


def test_large_tables_are_sampled_for_the_html_report(tmp_path: Path) -> None:
    """report.html is drawn from a bounded systematic sample; the page says so."""
    from click.testing import CliRunner

    from dissect.cli import main
    from dissect.report.html import render_html

    cap = str(CAPTURES / "sio4_polling_upgrade.pcapng")
    assert CliRunner().invoke(main, ["report", cap, "--out", str(tmp_path), "--no-html", "-q"]).exit_code == 0
    full = Analysis.from_dir(str(tmp_path))
    small = Analysis.from_dir(str(tmp_path), max_rows=10)
    assert not full.sampled and len(full.sio_packets) > 10
    step = small.sampled["sio_packets"]
    assert step > 1 and len(small.sio_packets) <= 10
    assert list(small.sio_packets.ts) == list(full.sio_packets.ts[::step])
    render_html(small, str(tmp_path / "r.html"))
    assert "systematic sample" in (tmp_path / "r.html").read_text()


def _block_frames(path: Path, table: str, blocks: Blocks, fmt: str) -> list[pd.DataFrame]:
    """Each recorded block parsed on its own, from its offset to the next block's."""
    raw = path.read_bytes()
    if not blocks.offsets:
        return []
    header = raw[: raw.index(b"\n") + 1] if fmt == "csv" else b""
    ends = list(blocks.offsets[1:]) + [len(raw)]
    out = []
    for start, end in zip(blocks.offsets, ends, strict=True):
        data = io.BytesIO(header + raw[start:end])
        if fmt == "csv":
            out.append(pd.read_csv(data, keep_default_na=False, na_values=[""]))
        else:
            out.append(pd.read_json(data, lines=True, dtype=False))
    return out


def _norm(v: object) -> str:
    """A cell as text whatever dtype pandas gave its column (41, 41.0 and "41" alike)."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):  # type: ignore[call-overload]
        return ""
    try:
        return repr(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v)


def _cells(df: pd.DataFrame) -> list[list[str]]:
    return [[_norm(v) for v in row] for row in df.astype(object).itertuples(index=False)]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_blocks_locate_every_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """ReportWriter.blocks: each block's bytes hold exactly its rows, in order; its times and
    client-to-server count are those of its rows; read_blocks returns whole chosen blocks."""
    monkeypatch.setattr(writers, "BLOCK_ROWS", 3)
    w = ReportWriter(str(tmp_path), fmt, blocks=True)
    run(str(CAPTURES / "sio4_polling_upgrade.pcapng"), [w])
    w.close()
    full = Analysis.from_dir(str(tmp_path))
    for table in TABLE_NAMES:
        blocks, df = w.blocks[table], full.table(table)
        assert sum(blocks.rows) == len(df) and max(blocks.rows, default=0) <= 3
        parts = _block_frames(tmp_path / f"{table}.{fmt}", table, blocks, fmt)
        assert [len(p) for p in parts] == list(blocks.rows)
        if not len(df):
            continue
        joined = pd.concat(parts, ignore_index=True)
        assert _cells(joined[list(df.columns)]) == _cells(df)
        if table in writers.ACTIVITY_COLUMNS:
            col = writers.ACTIVITY_COLUMNS[table]
            starts = [sum(blocks.rows[:i]) for i in range(len(blocks.rows))]
            for i, (s, n) in enumerate(zip(starts, blocks.rows, strict=True)):
                rows = df.iloc[s : s + n]
                ends = sorted([rows[col].iloc[0], rows[col].iloc[-1]])  # the span: first to last row
                assert abs(blocks.t_first[i] - ends[0]) < 1e-6 and abs(blocks.t_last[i] - ends[1]) < 1e-6
                assert blocks.c2s[i] == int((rows["direction"] == "c2s").sum())
    # Sampled by whole blocks: every step-th block, at most max_rows rows.
    table = "sio_packets"
    blocks, df = w.blocks[table], full.table(table)
    assert len(df) > 12
    sample, step = read_blocks(str(tmp_path / f"{table}.{fmt}"), table, blocks, max_rows=len(df) // 3)
    assert step >= 3 and len(sample) <= len(df) // 3
    starts = [sum(blocks.rows[:i]) for i in range(len(blocks.rows))]
    chosen = [j for i in range(0, len(starts), step) for j in range(starts[i], starts[i] + blocks.rows[i])]
    assert _cells(sample) == _cells(df.iloc[chosen])


def test_jobs_blocks_point_into_the_joined_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --jobs the part files are joined; the blocks are moved to where their rows landed."""
    monkeypatch.setattr(writers, "BLOCK_ROWS", 2)  # the forked workers inherit it
    blocks: dict[str, Blocks] = {}
    run_jobs([str(CAPTURES / "sio4_polling_upgrade.pcapng"), str(CAPTURES / "ws_multi.pcapng")], 2,
             out_dir=str(tmp_path), blocks=blocks)
    full = Analysis.from_dir(str(tmp_path))
    for table in TABLE_NAMES:
        df = full.table(table)
        parts = _block_frames(tmp_path / f"{table}.csv", table, blocks[table], "csv")
        assert [len(p) for p in parts] == list(blocks[table].rows) and sum(map(len, parts)) == len(df)
        if len(df):
            assert _cells(_typed(table, pd.concat(parts, ignore_index=True))) == _cells(df)
        if table in writers.ACTIVITY_COLUMNS and len(df):
            assert sum(blocks[table].c2s) == int((df["direction"] == "c2s").sum())


@pytest.mark.parametrize("extra", [[], ["--jobs", "2"], ["--format", "jsonl"]])
def test_html_activity_counts_every_row_of_sampled_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          extra: list[str]) -> None:
    """`dissect report`: report.html reads back a sample of blocks, but its plot over time
    counts every row (from the blocks' times), per direction; also when --jobs joined the
    workers' parts, and for JSON lines."""
    import re

    from click.testing import CliRunner

    from dissect import cli

    monkeypatch.setattr(writers, "BLOCK_ROWS", 4)
    monkeypatch.setattr(cli, "HTML_ROWS_PER_TABLE", 12)
    cap = str(CAPTURES / "sio4_polling_upgrade.pcapng")
    assert CliRunner().invoke(cli.main, ["report", cap, "--out", str(tmp_path), "-q", *extra]).exit_code == 0
    full = Analysis.from_dir(str(tmp_path))
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "systematic sample" in page and "sio_packets 1 row in" in page
    fig = json.loads(re.search(r'<h2 id="over-time">.*?var f=(\{.*?\});Plotly', page).group(1))  # type: ignore[union-attr]
    totals = {t["name"]: sum(t["y"][:-1]) for t in fig["data"]}  # (the last point repeats the last bucket's)
    sio = full.sio_packets
    assert len(sio) > 12
    assert totals["sio packets c2s"] == int((sio["direction"] == "c2s").sum())
    assert totals["sio packets s2c"] == int((sio["direction"] == "s2c").sum())
    assert fig["layout"]["template"]["layout"]  # plotly_white, as plain JSON
    assert fig["layout"]["xaxis"]["title"] == {"text": "time (UTC)"}
