"""The tables' columns are the contract's (docs/REPORTS.md, a copy of shared/REPORTS.md): same
names, same order; dissect's extra columns come after the contract's own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dissect.records import TABLES

CONTRACT = Path(__file__).resolve().parent.parent / "docs" / "REPORTS.md"


def contract_columns(table: str) -> list[str]:
    text = CONTRACT.read_text(encoding="utf-8")
    section = re.search(rf"^## {table}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section is not None, f"no section for {table} in {CONTRACT}"
    lines = section.group(1).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("session_id"))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    listing = " ".join(lines[start:end])
    while "(" in listing:  # drop the explanations in (possibly nested) parentheses
        listing = re.sub(r"\([^()]*\)", "", listing)
    return [cell.split()[0] for cell in listing.rstrip(". ").split(",") if cell.strip()]


@pytest.mark.parametrize("table", list(TABLES))
def test_columns_are_the_contracts(table: str) -> None:
    columns = contract_columns(table)
    assert len(columns) >= 8
    assert list(TABLES[table]._fields[: len(columns)]) == columns  # type: ignore[attr-defined]
