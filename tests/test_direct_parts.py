"""The compiled core's rows without tuples grouped by session (DirectRows ``grouped``,
dissect/compiled/direct_rows.pxi) for the part writers of ``--jobs`` workers and ``--dask`` tasks
(dissect.run.parts.PartWriter without report.html's block times), against the row tuples they
shortcut: the merged tables byte for byte the same, switch fastpaths.COMPILED_DIRECT_ROWS on and off.

The workers run in this process (run_jobs's ``mapper``), so the spy sees what they were handed; parts
spill to several runs (a small SPILL_BYTES) and drains come often (tuples and lines interleaved in a
table). A session every worker dissects (an Engine.IO polling handshake, whose owner is known only
from its open packet) is refused by the grouped rows: its rows are tuples, kept by one worker only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from dissect import fastpaths, pipeline
from dissect.run import parts
from dissect.run.jobs import run_jobs

from . import craft
from .test_compiled import CORPUS, OPEN, WS_REQUEST, WS_RESPONSE, needs_compiled
from .test_direct_rows import _sio_capture

TABLES = ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets", "sio_sockets",
          "sio_broadcasts")


def _in_process(fn: Callable[[Any], Any], args: list[Any]) -> list[Any]:
    return [fn(a) for a in args]


class _Spy:
    """The sessions and rows that reach PartWriter.add_formatted, by table."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: dict[str, int] = {}
        self.sessions: set[int] = set()
        real = parts.PartWriter.add_formatted

        def add_formatted(writer: parts.PartWriter, table: str, rows: int, csv: Any, *rest: Any) -> None:
            self.rows[table] = self.rows.get(table, 0) + rows
            assert sum(n for _sid, n, _data in csv) == rows
            self.sessions |= {sid for sid, _n, _data in csv}
            real(writer, table, rows, csv, *rest)

        monkeypatch.setattr(parts.PartWriter, "add_formatted", add_formatted)


def _jobs(paths: Sequence[Path], workers: int, direct: bool) -> dict[str, bytes]:
    saved = fastpaths.COMPILED_DIRECT_ROWS
    try:
        fastpaths.COMPILED_DIRECT_ROWS = direct
        with tempfile.TemporaryDirectory() as out:
            run_jobs([str(p) for p in paths], workers, out_dir=out, mapper=_in_process)
            return {t: (Path(out) / f"{t}.csv").read_bytes() for t in TABLES}
    finally:
        fastpaths.COMPILED_DIRECT_ROWS = saved


def _lines_by_session(data: bytes) -> list[bytes]:
    """A table's rows, grouped by session_id in a stable order (as --jobs writes them)."""
    lines = data.splitlines(keepends=True)
    return lines[:1] + sorted(lines[1:], key=lambda line: int(line.split(b",", 1)[0]))


@needs_compiled
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_parts_identical_with_and_without_direct_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      workers: int) -> None:
    """Fan-outs, acks, quoted text over 6 sessions, drains every 5 packets, parts in several runs:
    the merged tables the same from lines grouped in C as from tuples grouped by the part writer."""
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(pipeline, "DRAIN_EVERY", 5)
    monkeypatch.setattr(parts, "SPILL_BYTES", 4096)
    script = []
    for i in range(60):
        script += [(s, 1, b'42["tick",{"n":%d,"t":"a,\\"b\\""}]' % i) for s in range(6)]
        script += [(i % 6, 0, b'42%d["ask","caf\xc3\xa9"]' % i), (i % 6, 1, b"43%d[1.5]" % i)]
    path = tmp_path / "sio.pcap"
    _sio_capture(path, script, sessions=6)
    with_lines = _jobs([path], workers, direct=True)
    assert spy.rows["sio_packets"] >= 250 and spy.rows["ws_frames"] >= 250 and len(spy.sessions) == 6
    assert with_lines == _jobs([path], workers, direct=False)
    one = _jobs([path], 1, direct=False)
    for table in TABLES:  # and the rows of one process, grouped by session
        expected = one[table] if table == "sio_broadcasts" else b"".join(_lines_by_session(one[table]))
        assert with_lines[table] == expected, table


@needs_compiled
def test_corpus_parts_identical_with_and_without_direct_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(parts, "SPILL_BYTES", 1 << 16)
    paths = [p for p in CORPUS if "tls" not in p.name][:40]
    assert _jobs(paths, 2, direct=True) == _jobs(paths, 2, direct=False)
    assert spy.rows.get("ws_frames", 0) > 100


def _shared_then_upgraded(path: Path) -> None:
    """One TCP connection: an Engine.IO polling handshake (no sid yet: every --jobs worker dissects
    it), then on the same connection the WebSocket upgrade with that sid and Socket.IO events; then
    three plain WebSocket sessions beside it."""
    client, server = ("10.0.0.9", 40999), craft.SERVER
    seq = {0: 1000, 1: 5000}
    packets = [craft.tcp_packet(client, server, 999, 0, 0x02), craft.tcp_packet(server, client, 4999, 1000, 0x12)]

    def send(d: int, data: bytes) -> None:
        src, dst = (client, server) if d == 0 else (server, client)
        packets.append(craft.tcp_packet(src, dst, seq[d], seq[1 - d], 0x18, data))
        seq[d] += len(data)

    send(0, b"GET /socket.io/?EIO=4&transport=polling&t=a HTTP/1.1\r\nHost: h\r\n\r\n")
    send(1, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: %d\r\n\r\n"
         % len(OPEN) + OPEN)
    send(0, WS_REQUEST.replace(b"transport=websocket", b"transport=websocket&sid=abc"))
    send(1, WS_RESPONSE)
    send(0, craft.ws_frame(1, b"2probe", b"abcd"))
    send(1, craft.ws_frame(1, b"3probe", None))
    send(0, craft.ws_frame(1, b"5", b"abcd"))
    send(0, craft.ws_frame(1, b"40", b"abcd"))
    send(1, craft.ws_frame(1, b'40{"sid":"shared"}', None))
    for i in range(30):
        send(1, craft.ws_frame(1, b'42["tick",%d]' % i, None))
        send(0, craft.ws_frame(1, b'42%d["ask"]' % i, b"wxyz"))
    _sio_capture(path, [(s, 1, b'42["x",%d]' % i) for i in range(20) for s in range(3)], lead=packets)


@needs_compiled
@pytest.mark.parametrize("workers", [2, 3])
def test_a_session_every_worker_dissects_is_not_made_without_tuples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    workers: int) -> None:
    """The polling handshake's connection, upgraded in place: every worker dissects it until its
    owner is known, so its WebSocket rows are tuples (held until then, kept by its owner only); the
    other sessions' rows are made without tuples. The tables are one process's, grouped by session."""
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(pipeline, "DRAIN_EVERY", 3)  # (a table's tuple waiting holds back its other rows)
    path = tmp_path / "shared.pcap"
    _shared_then_upgraded(path)
    split = _jobs([path], workers, direct=True)
    one = _jobs([path], 1, direct=False)
    assert spy.rows["sio_packets"] >= 60 and 1 not in spy.sessions  # session 1: the shared one
    for table in TABLES:
        expected = one[table] if table == "sio_broadcasts" else b"".join(_lines_by_session(one[table]))
        assert split[table] == expected, table
    assert sum(line.startswith(b"1,") for line in split["ws_frames"].splitlines()) == 65  # (its frames, once)
