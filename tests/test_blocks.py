"""report.html's blocks of rows (dissect.output.writers.Blocks): cut every BLOCK_ROWS rows of a
table whatever the batches the rows came in, so that the rows the compiled core writes without
tuples (their marks, Blocks.add_marked) and the tuples through ReportWriter.add give the same blocks,
and report.html the same sample."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.output import writers
from dissect.output.writers import Blocks, ReportWriter
from dissect.records import WsFrame

T0 = 1_700_000_000_000_000_000


def _frame(i: int, ts: int, c2s: bool) -> WsFrame:
    return WsFrame(1, i, ts, "c2s" if c2s else "s2c", True, False, False, False, 1, "text", c2s, 3, 2, False,
                   None, None, "", i + 1)


def _state(b: Blocks) -> tuple:
    return (list(b.offsets), list(b.rows), list(b.t_first), list(b.t_last), list(b.c2s), b.room)


_rows = st.lists(st.tuples(st.integers(-(10**12), 10**12), st.booleans()), min_size=1, max_size=120)


@settings(max_examples=200, deadline=None)
@given(_rows, st.lists(st.integers(1, 40), max_size=12), st.integers(1, 9))
def test_blocks_do_not_depend_on_batches(tmp_path_factory: object, rows: list[tuple[int, bool]],
                                         cuts: list[int], block_rows: int) -> None:
    """The same rows in one batch, in batches of any sizes, and as the compiled core's marks (each
    batch's line ends, times, directions): the same blocks, and the same file."""
    saved = writers.BLOCK_ROWS
    writers.BLOCK_ROWS = block_rows
    try:
        frames = [_frame(i, T0 + dt, c2s) for i, (dt, c2s) in enumerate(rows)]
        batches: list[list[WsFrame]] = []
        i = 0
        for k in cuts + [len(frames)]:
            if i < len(frames):
                batches.append(frames[i:i + k])
                i += k
        results = []
        base = Path(tmp_path_factory.mktemp("b"))  # type: ignore[attr-defined]
        for name, parts in (("one", [frames]), ("batches", batches)):
            w = ReportWriter(str(base / name), blocks=True)
            for part in parts:
                w.add("ws_frames", part)
            w.close()
            results.append((_state(w.blocks["ws_frames"]), (base / name / "ws_frames.csv").read_bytes()))
        # the marks: each batch formatted as the writer formats it, its rows' ends, times, directions
        w = ReportWriter(str(base / "marked"), blocks=True)
        fmt = writers.batch_formatter("ws_frames", 6)
        offset = w._offset["ws_frames"]  # noqa: SLF001 - where the first batch goes
        blocks = w.blocks["ws_frames"]
        data = b""
        for part in batches:
            lines = [fmt([r]) for r in part]
            ends, pos = [], 0
            for line in lines:
                pos += len(line)
                ends.append(pos)
            marks = b"".join(struct.pack("=qqq", e, r.ts, r.direction == "c2s")
                             for e, r in zip(ends, part, strict=True))
            blocks.add_marked(offset, marks)
            offset += pos
            data += b"".join(lines)
        results.append((_state(blocks), results[0][1][:w._offset["ws_frames"]] + data))  # noqa: SLF001
        w.close()
        assert results[1] == results[0]
        assert results[2] == results[0]
        assert sum(results[0][0][1]) == len(frames) and sum(results[0][0][4]) == sum(c for _, c in rows)
        assert all(n <= block_rows for n in results[0][0][1])
    finally:
        writers.BLOCK_ROWS = saved


def test_a_closed_block_takes_no_more_rows() -> None:
    """A part's formatter closes the block after each session's rows (dissect.run.parts): the next
    rows start a block of their own."""
    b = Blocks("ws_frames")
    b.add(0, [_frame(0, T0, True)])
    assert b.room == writers.BLOCK_ROWS - 1
    b.close()
    assert b.room == 0
