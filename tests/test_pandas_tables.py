"""The pandas side of the tables: one missing value for text, ``category`` for the few-valued text
columns, a short ``repr``, ``CaptureError`` as an ``OSError`` and ``CaptureWarning`` on a capture read
only in part."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import dissect
from dissect.cli import main
from dissect.errors import CaptureError, CaptureWarning
from dissect.output.tables import CATEGORY_COLUMNS, TABLE_NAMES, Analysis
from dissect.records import TABLES, column_types

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
# Socket.IO v4 polling then WebSocket (open packets without a Socket.IO packet: sio_type missing),
# plain WebSocket, a refused upgrade, TLS with keys.
NAMES = ["sio4_polling_upgrade.pcapng", "ws_basic.pcap", "http_ws_upgrade_400.pcap", "tls12_ws_aesgcm.pcap"]


def _analyze(name: str) -> Analysis:
    keys = CAPTURES / name.replace(".pcapng", ".keys").replace(".pcap", ".keys")
    return dissect.analyze(str(CAPTURES / name), tls_keylog=str(keys) if keys.exists() else None)


def _text_columns(table: str) -> list[str]:
    return [c for c, hint in column_types(TABLES[table]).items() if hint.startswith("str")]


@pytest.mark.parametrize("name", NAMES)
def test_missing_text_is_one_missing_value_never_empty(name: str) -> None:
    a = _analyze(name)
    checked = 0
    for table in TABLE_NAMES:
        df = a.table(table)
        for col in _text_columns(table):
            values = df[col].astype(object)
            assert not (values == "").any(), f"{table}.{col} holds ''"
            assert all(isinstance(v, str) or pd.isna(v) for v in values), f"{table}.{col}"
            checked += len(values)
    assert checked


def test_sio_type_and_namespace_are_missing_the_same_way() -> None:
    """The issue's case: an Engine.IO packet without a Socket.IO packet had sio_type '' but namespace NaN."""
    p = _analyze("sio4_polling_upgrade.pcapng").sio_packets
    no_sio = p[p.eio_type != "message"]
    assert len(no_sio) > 5
    assert no_sio.sio_type.isna().all() and no_sio.namespace.isna().all() and no_sio.event.isna().all()
    assert p.anomaly.isna().all()  # a clean capture: no anomaly is missing, not ''
    events = p[p.sio_type == "EVENT"]
    assert len(events) and events.namespace.notna().all() and events.event.notna().all()


@pytest.mark.parametrize("name", NAMES)
def test_few_valued_columns_are_categories(name: str) -> None:
    a = _analyze(name)
    seen = set()
    for table in TABLE_NAMES:
        df = a.table(table)
        for col in df.columns:
            is_cat = isinstance(df[col].dtype, pd.CategoricalDtype)
            assert is_cat == (col in CATEGORY_COLUMNS), f"{table}.{col}: {df[col].dtype}"
            if is_cat:
                seen.add(col)
                cats = list(df[col].cat.categories)
                assert cats == sorted(set(df[col].dropna().astype(str)))  # the values present, sorted
    assert {"direction", "layer", "transport", "app_protocol", "close", "opcode_name"} <= seen
    # comparisons and grouping read as on text
    if len(a.ws_frames):
        assert (a.ws_frames.direction == "c2s").any()
        assert set(a.ws_frames.groupby("direction", observed=True).size().index) <= {"c2s", "s2c"}


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_written_report_reads_back_as_the_same_frames(tmp_path: Path, fmt: str) -> None:
    name = "sio4_polling_upgrade.pcapng"
    res = CliRunner().invoke(main, ["report", str(CAPTURES / name), "--out", str(tmp_path / "r"), "--no-html",
                                    "--format", fmt, "--quiet"])
    assert res.exit_code == 0, res.output
    live, loaded = _analyze(name), Analysis.from_dir(str(tmp_path / "r"))
    for table in TABLE_NAMES:
        keys = [live.table(table).columns[0], next(c for c in live.table(table).columns if c.startswith("ts"))]
        a, b = (x.table(table).sort_values(keys, kind="stable").reset_index(drop=True) for x in (live, loaded))
        assert len(a) == len(b) and (len(a) or table == "sio_broadcasts"), table  # (test_sio_broadcasts)
        for col in _text_columns(table):
            assert str(a[col].dtype) == str(b[col].dtype), (table, col)
            assert a[col].isna().tolist() == b[col].isna().tolist(), (table, col)
            assert a[col].dropna().astype(str).tolist() == b[col].dropna().astype(str).tolist(), (table, col)


def test_repr_is_a_short_summary() -> None:
    a = _analyze("sio4_polling_upgrade.pcapng")
    text = repr(a)
    assert len(text.splitlines()) <= 12 and len(text) < 1000
    assert "sio4_polling_upgrade.pcapng" in text and "1 capture file" in text
    for table in TABLE_NAMES:
        assert f"{table} " in text
        assert f"{len(a.table(table)):,} row" in text
    assert "frame_index" not in text and "eio_sid" not in text  # no DataFrame printed
    first = a.summary["capture"]["ts_first"]
    stamp = pd.Timestamp(first, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S")
    assert stamp in text and f"({a.summary['capture']['duration_s']:,.3f} s)" in text
    assert "0 rows" in repr(Analysis())


def test_capture_error_is_an_os_error(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.pcap"
    garbage.write_bytes(b"not a capture at all\n")
    for path in (garbage, tmp_path / "missing.pcap"):
        with pytest.raises(OSError) as info:
            dissect.analyze(str(path))
        assert isinstance(info.value, CaptureError)
        assert str(info.value).startswith(str(path))


def test_a_truncated_capture_warns_and_keeps_what_was_read(tmp_path: Path) -> None:
    data = (CAPTURES / "ws_basic.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 7])
    with pytest.warns(CaptureWarning, match=r"truncated-file \(1\): .*cut\.pcap: last record cut short"):
        a = dissect.analyze(str(cut))
    assert issubclass(CaptureWarning, UserWarning)
    assert a.summary["warnings"]["by_kind"]["truncated-file"]["count"] == 1
    whole = _analyze("ws_basic.pcap")
    assert 0 < len(a.ws_frames) <= len(whole.ws_frames) and len(a.sessions) == len(whole.sessions)


def test_a_clean_capture_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaptureWarning)
        _analyze("ws_basic.pcap")


def test_the_command_line_says_it_its_own_way(tmp_path: Path) -> None:
    """No Python warning text from a command: it has its own words for a damaged capture."""
    data = (CAPTURES / "ws_basic.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 7])
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "read without warnings"\nmetric = "summary.warnings.total"\nmax = 0\n')
    res = CliRunner().invoke(main, ["check", str(cut), "--rules", str(rules)])
    assert res.exit_code == 1 and "CaptureWarning" not in res.output


def test_check_rules_on_category_columns(tmp_path: Path) -> None:
    """Rules compare, order and test substrings of category columns as of text (exit 0/1, never 2)."""
    rules = tmp_path / "rules.toml"
    rules.write_text("""
[[rule]]
name = "substring"
table = "ws_frames"
where = "'s2' in direction"
expect = "some"

[[rule]]
name = "order"
table = "ws_frames"
where = "direction < 'd'"
expect = "some"

[[rule]]
name = "allowed"
table = "ws_frames"
column = "opcode_name"
allowed = ["text", "binary", "close"]
""")
    res = CliRunner().invoke(main, ["check", str(CAPTURES / "sio4_websocket.pcap"), "--rules", str(rules)])
    assert res.exit_code == 0, res.output
    assert "3 rule(s): 3 held" in res.output
    frames = dissect.analyze(str(CAPTURES / "sio4_websocket.pcap")).ws_frames
    assert f"{int((frames.direction == 's2c').sum())} ws_frames row(s) where 's2' in direction" in res.output
