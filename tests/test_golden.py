"""Golden reports: dissect's report of every corpus capture must not change unnoticed.

Each capture in ``captures/`` is reported again (``dissect report CAPTURE --no-html``) and compared
with ``reports/<name>/``. An intended change is accepted with
``python -m dissect.golden --refresh NAME`` after looking at the new report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dissect import golden

CAPTURES = golden.corpus()


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_report_matches_golden(name: str) -> None:
    diffs = golden.check_one(name, CAPTURES[name])
    assert not diffs, (f"{name}: the report differs from reports/{name}/ "
                       f"(if intended: {golden.REFRESH_HINT} {name}):\n  " + "\n  ".join(diffs))


def test_corpus_is_there() -> None:
    assert CAPTURES, f"no capture in {golden.CAPTURES_DIR}"


def test_missing_golden_is_a_failure(tmp_path: Path) -> None:
    name, capture = next(iter(sorted(CAPTURES.items())))
    diffs = golden.check_one(name, capture, reports_dir=tmp_path)
    assert len(diffs) == 1
    assert "no golden report" in diffs[0] and f"--refresh {name}" in diffs[0]


def test_generated_report_is_stable_and_relative(tmp_path: Path) -> None:
    name, capture = min(CAPTURES.items(), key=lambda kv: kv[1].stat().st_size)
    golden.generate(capture, tmp_path / "a")
    golden.generate(capture, tmp_path / "b")
    assert golden.diff_reports(tmp_path / "a", tmp_path / "b") == []
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(golden.REPORT_FILES)
    text = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "a").iterdir())
    assert str(golden.ROOT) not in text
    summary = json.loads((tmp_path / "a" / "summary.json").read_text(encoding="utf-8"))
    assert summary["files"][0]["path"] == f"captures/{capture.name}"


def test_diff_names_file_row_column(tmp_path: Path) -> None:
    """The differences say which file, row and column changed, and from what to what."""
    name, capture = min(CAPTURES.items(), key=lambda kv: kv[1].stat().st_size)
    old, new = tmp_path / "old", tmp_path / "new"
    golden.generate(capture, old)
    golden.generate(capture, new)
    sessions = (new / "sessions.csv").read_text(encoding="utf-8").splitlines()
    header = sessions[0].split(",")
    cells = sessions[1].split(",")
    col = header.index("packets_c2s")
    before = cells[col]
    cells[col] = str(int(before) + 1)
    sessions[1] = ",".join(cells)
    sessions.append(sessions[1])  # and one row more
    (new / "sessions.csv").write_text("\n".join(sessions) + "\n", encoding="utf-8")
    summary = json.loads((new / "summary.json").read_text(encoding="utf-8"))
    summary["totals"]["sessions"] += 1
    (new / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    diffs = golden.diff_reports(old, new)
    assert any(d.startswith("sessions.csv row 1 (session_id=") and
               f"packets_c2s: '{before}' -> '{int(before) + 1}'" in d for d in diffs), diffs
    assert any(d.startswith("sessions.csv row") and "added" in d for d in diffs), diffs
    assert any(d.startswith("summary.json totals.sessions:") for d in diffs), diffs


def test_cli_check_and_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    name = min(CAPTURES, key=lambda n: CAPTURES[n].stat().st_size)
    monkeypatch.setattr(golden, "REPORTS_DIR", tmp_path)
    assert golden.main(["--check", name]) == 1
    assert "--refresh" in capsys.readouterr().out
    assert golden.main(["--refresh", name]) == 0
    assert (tmp_path / name / "summary.json").exists()
    assert golden.main(["--check", name]) == 0
    assert f"{name}: ok" in capsys.readouterr().out
