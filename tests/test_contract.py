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
    section = re.search(rf"^## {table}(?: \([^)]*\))?\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section is not None, f"no section for {table} in {CONTRACT}"
    lines = section.group(1).splitlines()
    first = TABLES[table]._fields[0]  # type: ignore[attr-defined]  # session_id, or broadcast_index
    start = next(i for i, line in enumerate(lines) if line.startswith((first + ",", first + " (")))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip() or lines[i].startswith("Added")),
               len(lines))
    listing = " ".join(lines[start:end])
    while "(" in listing:  # drop the explanations in (possibly nested) parentheses
        listing = re.sub(r"\([^()]*\)", "", listing)
    listing = re.split(r"\.(?:\s|$)", listing)[0]  # the listing ends with its sentence
    return [cell.split()[0] for cell in listing.rstrip(". ").split(",") if cell.strip()]


@pytest.mark.parametrize("table", list(TABLES))
def test_columns_are_the_contracts(table: str) -> None:
    columns = contract_columns(table)
    assert len(columns) >= 8
    assert list(TABLES[table]._fields[: len(columns)]) == columns  # type: ignore[attr-defined]


def added_columns(table: str) -> list[str]:
    """The columns of the contract's "Added (...): a (...), b (...)." sentences of a table (and of
    "Only with `--payloads`: c"), in order; a cell of several words is prose, not a column."""
    text = CONTRACT.read_text(encoding="utf-8")
    section = re.search(rf"^## {table}(?: \([^)]*\))?\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section is not None
    body = " ".join(section.group(1).split("\n"))
    while "(" in body:
        body = re.sub(r"\([^()]*\)", "", body)
    out: list[str] = []
    for m in re.finditer(r"(?:Added|Only with `--payloads`)[^:]*: ([^.;]*)", body):
        out += [cell.strip() for cell in m.group(1).split(",") if len(cell.split()) == 1]
    return out


# Contract columns that a later issue adds and that are not built yet: each named here is a
# promise still open (the test fails once the column exists, so the list stays true).
NOT_YET: dict[str, set[str]] = {}


@pytest.mark.parametrize("table", list(TABLES))
def test_added_columns_follow_in_the_contracts_order(table: str) -> None:
    fields = list(TABLES[table]._fields)  # type: ignore[attr-defined]
    built = [c for c in added_columns(table) if c not in NOT_YET.get(table, set())]
    assert all(c in fields for c in built), [c for c in built if c not in fields]
    positions = [fields.index(c) for c in built]
    assert positions == sorted(positions) and (not positions or positions[0] >= len(contract_columns(table)))
    assert not (NOT_YET.get(table, set()) & set(fields))


def test_added_columns_are_read() -> None:
    assert added_columns("sessions") == ["tls_version", "tls_cipher", "sni", "alpn", "tls_decrypted",
                                         "frame_first", "tcp_stream", "community_id"]
    assert added_columns("sio_packets") == ["frame", "acked_event", "data"]
    assert added_columns("ws_messages") == ["payload"]
    assert added_columns("handshakes") == []
