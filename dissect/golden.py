"""Golden reports: dissect's report of every corpus capture, kept under ``reports/<name>/``.

    python -m dissect.golden --refresh [NAME...]   # rewrite reports/<name>/ on purpose
    python -m dissect.golden --check [NAME...]     # regenerate into a temp dir and list differences

A golden report is what ``dissect report captures/<name>.<ext> --out reports/<name> --no-html``
writes (the six table CSVs and summary.json), run from the repository root with the relative
capture path, so that ``sessions.source_file`` and the paths in summary.json are relative and the
same on every machine. :func:`normalise` then makes any absolute path under the repository root
relative and drops the summary keys listed in :data:`VOLATILE_SUMMARY_KEYS` (none is written today:
the list is where wall-clock data would go if the summary ever gains some).

Differences are listed per file: for CSVs the row (with its key columns), the column and
``old -> new``, rows added or removed; for summary.json the dotted key path and ``old -> new``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import difflib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dissect.api import CAPTURE_SUFFIXES

ROOT = Path(__file__).resolve().parents[1]
CAPTURES_DIR = ROOT / "captures"
REPORTS_DIR = ROOT / "reports"

#: The files of a golden report.
REPORT_FILES = ("sessions.csv", "handshakes.csv", "http.csv", "ws_frames.csv", "ws_messages.csv",
                "sio_packets.csv", "sio_sockets.csv", "sio_broadcasts.csv", "summary.json")

#: summary.json keys that would differ from run to run (dropped wherever they appear).
VOLATILE_SUMMARY_KEYS = frozenset({"elapsed_s", "elapsed_ms", "wall_time_s", "generated_at"})

#: Key columns shown with every changed CSV row, when the table has them.
_KEY_COLUMNS = ("session_id", "frame_index", "message_index", "layer", "ts", "ts_request")

#: At most this many difference lines per file (the rest are counted).
MAX_LINES_PER_FILE = 60

REFRESH_HINT = "python -m dissect.golden --refresh"


def capture_name(path: str | os.PathLike[str]) -> str:
    """``captures/ws_basic.pcap`` -> ``ws_basic`` (the golden directory's name)."""
    name = Path(path).name
    for suffix in sorted(CAPTURE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def corpus(captures_dir: Path = CAPTURES_DIR) -> dict[str, Path]:
    """Every capture file directly in ``captures/``, by golden name (sorted)."""
    out: dict[str, Path] = {}
    if not captures_dir.is_dir():
        return out
    for p in sorted(captures_dir.iterdir()):
        if not p.is_file() or not p.name.lower().endswith(CAPTURE_SUFFIXES):
            continue
        name = capture_name(p)
        if name in out:
            raise ValueError(f"two captures share the golden name {name!r}: {out[name].name}, "
                             f"{p.name}")
        out[name] = p
    return out


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def generate(capture: Path, out_dir: Path) -> None:
    """Write dissect's report of ``capture`` to ``out_dir`` as the golden files are written.

    Runs the ``dissect report`` command in this process, from the repository root with the
    capture's path relative to it. Raises RuntimeError when the command fails.
    """
    from dissect.cli import main

    capture = Path(capture).resolve()
    try:
        rel = capture.relative_to(ROOT).as_posix()
    except ValueError:
        rel = str(capture)
    out_dir = Path(out_dir).resolve()
    if out_dir.exists():
        for f in out_dir.iterdir():
            if f.is_file():
                f.unlink()
    args = ["report", rel, "--out", str(out_dir), "--no-html", "--quiet"]
    with _cwd(ROOT):
        try:
            main.main(args=args, prog_name="dissect", standalone_mode=False)
        except SystemExit as e:
            if e.code not in (0, None):
                raise RuntimeError(f"dissect {' '.join(args)} exited {e.code}") from None
    normalise(out_dir)


def _relative(text: str) -> str:
    root = str(ROOT) + os.sep
    if text.startswith(root):
        return Path(text).relative_to(ROOT).as_posix()
    return text


def _normalise_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise_json(v) for k, v in value.items() if k not in VOLATILE_SUMMARY_KEYS}
    if isinstance(value, list):
        return [_normalise_json(v) for v in value]
    if isinstance(value, str):
        return _relative(value)
    return value


def normalise(out_dir: Path) -> None:
    """Make a freshly written report machine-independent (see the module docstring)."""
    summary = out_dir / "summary.json"
    if summary.exists():
        data = json.loads(summary.read_text(encoding="utf-8"))
        summary.write_text(json.dumps(_normalise_json(data), indent=2) + "\n", encoding="utf-8")
    sessions = out_dir / "sessions.csv"
    if sessions.exists():
        text = sessions.read_text(encoding="utf-8")
        root = str(ROOT) + os.sep
        if root in text:
            sessions.write_text(text.replace(root, ""), encoding="utf-8")


# -- differences -----------------------------------------------------------------------------------


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return [], []
    return rows[0], rows[1:]


def _row_label(header: list[str], row: list[str], number: int) -> str:
    keys = [f"{c}={row[header.index(c)]}" for c in _KEY_COLUMNS
            if c in header and header.index(c) < len(row)][:2]
    return f"row {number}" + (f" ({', '.join(keys)})" if keys else "")


def diff_csv(name: str, old: Path, new: Path) -> list[str]:
    """Differences between two CSV files: changed cells, added and removed rows and columns.

    Rows are numbered from 1 (the header is row 0); rows are aligned with a sequence matcher, so a
    row inserted in the middle shows as one added row, not as every later row changed.
    """
    old_header, old_rows = _read_csv(old)
    new_header, new_rows = _read_csv(new)
    out: list[str] = []
    for c in old_header:
        if c not in new_header:
            out.append(f"{name}: column {c!r} removed")
    for c in new_header:
        if c not in old_header:
            out.append(f"{name}: column {c!r} added")
    common = [c for c in old_header if c in new_header]
    oi = [old_header.index(c) for c in common]
    ni = [new_header.index(c) for c in common]

    def cells(row: list[str], idx: list[int]) -> tuple[str, ...]:
        return tuple(row[i] if i < len(row) else "" for i in idx)

    a = [cells(r, oi) for r in old_rows]
    b = [cells(r, ni) for r in new_rows]
    sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(paired):  # changed rows, cell by cell
            ra, rb = a[i1 + k], b[j1 + k]
            label = _row_label(common, list(ra), i1 + k + 1)
            changes = [f"{col}: {va!r} -> {vb!r}" for col, va, vb in zip(common, ra, rb, strict=True)
                       if va != vb]
            out.append(f"{name} {label}: " + "; ".join(changes))
        for k in range(i1 + paired, i2):
            out.append(f"{name} row {k + 1} removed: {','.join(a[k])}")
        for k in range(j1 + paired, j2):
            out.append(f"{name} row {k + 1} added (new numbering): {','.join(b[k])}")
    return out


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: value}


def diff_json(name: str, old: Path, new: Path) -> list[str]:
    """Differences between two JSON files, one line per dotted key path."""
    a = _flatten(json.loads(old.read_text(encoding="utf-8")))
    b = _flatten(json.loads(new.read_text(encoding="utf-8")))
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            out.append(f"{name} {key}: {json.dumps(a[key])} -> (removed)")
        elif key not in a:
            out.append(f"{name} {key}: (added) -> {json.dumps(b[key])}")
        elif a[key] != b[key] or type(a[key]) is not type(b[key]):
            out.append(f"{name} {key}: {json.dumps(a[key])} -> {json.dumps(b[key])}")
    return out


def diff_reports(old_dir: Path, new_dir: Path) -> list[str]:
    """Every difference between the golden report ``old_dir`` and a fresh one in ``new_dir``."""
    old_files = {p.name for p in old_dir.iterdir() if p.is_file()}
    new_files = {p.name for p in new_dir.iterdir() if p.is_file()}
    out: list[str] = []
    for f in sorted(old_files - new_files):
        out.append(f"{f}: in the golden report, no longer written")
    for f in sorted(new_files - old_files):
        out.append(f"{f}: written now, missing from the golden report")
    for f in sorted(old_files & new_files):
        old, new = old_dir / f, new_dir / f
        if old.read_bytes() == new.read_bytes():
            continue
        if f.endswith(".csv"):
            lines = diff_csv(f, old, new)
        elif f.endswith(".json"):
            lines = diff_json(f, old, new)
        else:
            lines = [f"{f}: differs"]
        if not lines:  # same content, different bytes (line endings, quoting)
            lines = [f"{f}: same cells, different bytes"]
        if len(lines) > MAX_LINES_PER_FILE:
            more = len(lines) - MAX_LINES_PER_FILE
            lines = lines[:MAX_LINES_PER_FILE] + [f"{f}: ... and {more} more difference(s)"]
        out.extend(lines)
    return out


def _shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def check_one(name: str, capture: Path, reports_dir: Path | None = None) -> list[str]:
    """Regenerate ``capture``'s report into a temporary directory and diff it with the golden one
    (``reports_dir``, default ``reports/``).

    Returns the differences (empty when identical); a missing golden report is one difference
    saying how to create it.
    """
    golden = (reports_dir or REPORTS_DIR) / name
    if not golden.is_dir():
        return [f"no golden report {_shown(golden)}/ for {capture.name}: run "
                f"`{REFRESH_HINT} {name}` (after checking the report)"]
    with tempfile.TemporaryDirectory(prefix=f"golden-{name}-") as tmp:
        fresh = Path(tmp) / name
        generate(capture, fresh)
        return diff_reports(golden, fresh)


def refresh_one(name: str, capture: Path, reports_dir: Path | None = None) -> Path:
    """Rewrite ``reports/<name>/`` (under ``reports_dir`` if given) from ``capture``."""
    out = (reports_dir or REPORTS_DIR) / name
    generate(capture, out)
    return out


def _select(names: Sequence[str]) -> dict[str, Path]:
    all_captures = corpus()
    if not names:
        return all_captures
    out = {}
    for n in names:
        key = capture_name(n)
        if key not in all_captures:
            raise SystemExit(f"golden: no capture named {n!r} in {_shown(CAPTURES_DIR)}/")
        out[key] = all_captures[key]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dissect.golden --refresh|--check [NAME...]``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m dissect.golden", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--refresh", action="store_true", help="rewrite the golden reports")
    mode.add_argument("--check", action="store_true", help="list differences from them (exit 1)")
    parser.add_argument("names", nargs="*", help="captures (name, or file name); default all")
    args = parser.parse_args(argv)
    selected = _select(args.names)
    if not selected:
        print(f"golden: no capture in {CAPTURES_DIR}", file=sys.stderr)
        return 2
    if args.refresh:
        for name, capture in selected.items():
            out = refresh_one(name, capture)
            print(f"refreshed {_shown(out)}/ from {_shown(capture)}")
        return 0
    failed = 0
    for name, capture in selected.items():
        diffs = check_one(name, capture)
        if diffs:
            failed += 1
            print(f"{name}: {len(diffs)} difference(s)")
            for line in diffs:
                print(f"  {line}")
        else:
            print(f"{name}: ok")
    if not args.names and REPORTS_DIR.is_dir():
        for stale in sorted(p.name for p in REPORTS_DIR.iterdir() if p.is_dir()):
            if stale not in selected:
                print(f"{stale}: golden report without a capture (delete {_shown(REPORTS_DIR / stale)}/)")
    if failed:
        print(f"{failed} of {len(selected)} capture(s) differ; if the change is intended: "
              f"{REFRESH_HINT} NAME")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
