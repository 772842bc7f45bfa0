"""Hostile and broken input, made by hand: what README "Damaged captures and hostile traffic" and
shared/REPORTS.md promise. A damaged but readable capture is analysed as far as it goes with a
reader warning (exit 0); only a file that is no capture at all exits 2 with one line; anything
wrong inside the traffic is an ``anomaly`` on its row; time and memory stay bounded.

Regression captures found by the fuzzer (tests/fuzz, docs/fuzzing.md) live in tests/regressions/
and are checked at the end of this file.
"""

from __future__ import annotations

import csv
import json
import random
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import dissect
from dissect.api import run
from dissect.cli import main
from dissect.transport.flows import Limits
from tests import craft
from tests.fuzz.harness import peak_rss_kb, reset_peak_rss
from tests.fuzz.traffic import (
    C2S,
    EIO4_OPEN,
    S2C,
    SYN,
    V3_OPEN,
    blocks,
    c2s_text,
    conversation,
    deflate,
    deflate_bomb,
    http_exchange,
    polling,
    s2c_text,
    sio_session,
    ws_frame,
    ws_upgrade,
)

REGRESSIONS = Path(__file__).parent / "regressions"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def pcap_of(tmp_path: Path, steps: Sequence[tuple[int, bytes]], name: str = "c.pcap", mss: int = 1460) -> Path:
    return write(tmp_path, name, craft.write_pcap(conversation(steps, mss=mss)))


@contextmanager
def bounded(seconds: float, mb: float) -> Iterator[None]:
    """The block must finish within ``seconds`` and grow peak RSS by less than ``mb`` MB."""
    reset_peak_rss()
    base = peak_rss_kb()
    t0 = time.perf_counter()
    yield
    elapsed = time.perf_counter() - t0
    grown = (peak_rss_kb() - base) / 1024
    assert elapsed < seconds, f"took {elapsed:.1f} s (limit {seconds} s)"
    assert grown < mb, f"peak RSS grew {grown:.0f} MB (limit {mb} MB)"


def warnings_of(summary: dict) -> dict[str, int]:
    return {k: v["count"] for k, v in summary["warnings"]["by_kind"].items()}


def tags(cells: Iterable[object]) -> set[str]:
    out: set[str] = set()
    for c in cells:
        if isinstance(c, str) and c:
            out.update(c.split(";"))
    return out


def report_cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


# -- damaged files ---------------------------------------------------------------------------------


def http_pcap_bytes(n: int = 3) -> bytes:
    steps: list[tuple[int, bytes]] = []
    for i in range(n):
        steps += http_exchange(f"/r{i}")
    return craft.write_pcap(conversation(steps))


def test_record_cut_midway_keeps_the_rest(tmp_path: Path) -> None:
    data = http_pcap_bytes()
    p = write(tmp_path, "cut.pcap", data[:-30])  # the last record (an ACK) loses its end
    a = dissect.analyze(p)
    assert warnings_of(a.summary).get("truncated-file") == 1
    assert list(a.http.target) == ["/r0", "/r1", "/r2"]
    assert a.http.status.tolist() == [200, 200, 200]
    code, _out, err = report_cli("report", str(p), "--out", str(tmp_path / "out"), "--no-html")
    assert code == 0
    assert "truncated-file" in err and "Traceback" not in err


def test_pcapng_block_cut(tmp_path: Path) -> None:
    frames = conversation(http_exchange("/a") + http_exchange("/b"))
    items: list[tuple[str, object]] = [("idb", (1, None))]
    items += [("epb", (0, round(ts * 1e6), f)) for ts, f in frames]
    data = craft.pcapng([items])
    last_epb = data.rfind(struct.pack("<I", 6))
    p = write(tmp_path, "cut.pcapng", data[: last_epb + 20])  # inside the last block's header
    a = dissect.analyze(p)
    assert warnings_of(a.summary).get("truncated-file") == 1
    assert list(a.http.target) == ["/a", "/b"]
    assert a.summary["totals"]["packets"] == len(frames) - 1


def test_corrupt_record_length_resyncs(tmp_path: Path) -> None:
    data = bytearray(http_pcap_bytes(4))
    # The 6th record's incl_len becomes absurd: the reader warns and resynchronises.
    off = 24
    for _ in range(5):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        off += 16 + incl
    struct.pack_into("<I", data, off + 8, 0xFFFFFF00)
    p = write(tmp_path, "corrupt.pcap", bytes(data))
    with bounded(10, 100):
        a = dissect.analyze(p)
    assert warnings_of(a.summary).get("corrupt-record", 0) >= 1
    # Records after the damage are still read: the later exchanges are there.
    assert {"/r2", "/r3"} <= set(a.http.target)


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\x03garbage", b"<html>not a capture</html>" * 10, b"\xd4\xc3"])
def test_not_a_capture_exits_2_with_one_line(tmp_path: Path, content: bytes) -> None:
    p = write(tmp_path, "bad.pcap", content)
    code, out, err = report_cli("report", str(p), "--out", str(tmp_path / "out"))
    assert code == 2
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("dissect: ") and str(p) in lines[0]
    assert "Traceback" not in err + out


def test_empty_file_exits_2_with_one_line(tmp_path: Path) -> None:
    p = write(tmp_path, "empty.pcap", b"")
    code, _out, err = report_cli("report", str(p), "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.count("\n") == 1 and "empty" in err


def test_pcapng_unknown_block_type(tmp_path: Path) -> None:
    frames = conversation(http_exchange("/x"))
    items: list[tuple[str, object]] = [("idb", (1, None)), ("unknown", None)]
    items += [("epb", (0, round(ts * 1e6), f)) for ts, f in frames]
    items.append(("unknown", None))
    p = write(tmp_path, "unknown.pcapng", craft.pcapng([items]))
    a = dissect.analyze(p)
    assert warnings_of(a.summary).get("pcapng-unknown-block") == 2
    assert list(a.http.target) == ["/x"]


def test_interface_with_unknown_link_type(tmp_path: Path) -> None:
    frames = conversation(http_exchange("/known"))
    items: list[tuple[str, object]] = [("idb", (1, None)), ("idb", (147, None))]  # 147: LINKTYPE_USER0
    for i, (ts, f) in enumerate(frames):
        items.append(("epb", (0, round(ts * 1e6), f)))
        if i < 5:
            items.append(("epb", (1, round(ts * 1e6), b"\x99" * 60)))
    p = write(tmp_path, "links.pcapng", craft.pcapng([items]))
    a = dissect.analyze(p)
    assert warnings_of(a.summary).get("unknown-link-type") == 5
    assert list(a.http.target) == ["/known"]
    code, _out, err = report_cli("report", str(p), "--out", str(tmp_path / "out"), "--no-html")
    assert code == 0 and "unknown-link-type" in err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["warnings"]["by_kind"]["unknown-link-type"]["count"] == 5


@pytest.mark.parametrize(("name", "tail"), [
    ("empty-idb", (1, b"")),
    ("short-idb", (1, b"\x01\x00")),
    ("idb-option-past-end", (1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 14, 8))),
    ("short-obsolete-packet-block", (2, b"\x00\x00")),
    ("short-epb", (6, b"\x00\x00\x00\x00")),
    ("short-spb", (3, b"")),
])
def test_pcapng_block_too_short_for_its_type_at_the_end(tmp_path: Path, name: str, tail: tuple[int, bytes]) -> None:
    """A last block whose body is shorter than its type's fixed fields: a reader warning, and the
    packets before it analysed (README: damage never raises once the file is a capture)."""
    frames = conversation(http_exchange("/before"))
    epbs = [(6, struct.pack("<IIIII", 0, 0, round(ts * 1e6) & 0xFFFFFFFF, len(f), len(f)) + f) for ts, f in frames]
    p = write(tmp_path, f"{name}.pcapng", blocks((1, struct.pack("<HHI", 1, 0, 0)), *epbs, tail))
    a = dissect.analyze(p)
    assert a.summary["warnings"]["total"] >= 1
    assert list(a.http.target) == ["/before"]
    code, _out, err = report_cli("report", str(p), "--out", str(tmp_path / "out"), "--no-html")
    assert code == 0 and "Traceback" not in err


def test_pcapng_lone_empty_interface_block(tmp_path: Path) -> None:
    """A file that is only a section header and a 12-byte IDB: readable, nothing in it."""
    p = write(tmp_path, "lone.pcapng", blocks((1, b"")))
    code, _out, err = report_cli("report", str(p), "--out", str(tmp_path / "out"), "--no-html")
    assert "Traceback" not in err
    assert code in (0, 2) and (code == 0 or err.count("\n") == 1)


# -- hostile traffic: WebSocket --------------------------------------------------------------------


def test_random_bytes_after_websocket_101(tmp_path: Path) -> None:
    rng = random.Random(6455)
    steps = ws_upgrade() + [(S2C, rng.randbytes(200_000)), (C2S, rng.randbytes(200_000))]
    steps += [(S2C, rng.randbytes(50_000))]
    p = pcap_of(tmp_path, steps)
    with bounded(20, 200):
        a = dissect.analyze(p)
    hs = a.handshakes[a.handshakes.layer == "websocket"]
    assert hs.ok.tolist() == [True]
    assert len(a.ws_frames) > 0
    assert tags(a.ws_frames.anomaly)  # garbage is flagged, not silently believed
    assert a.sessions.app_protocol.tolist() == ["websocket"]


@pytest.mark.parametrize("length", [1 << 63, (1 << 63) - 1, (1 << 64) - 1])
def test_websocket_length_field_2_63(tmp_path: Path, length: int) -> None:
    frame = bytes((0x82, 127)) + struct.pack("!Q", length) + b"x" * 100
    steps = ws_upgrade() + [c2s_text(b"before"), (S2C, frame)]
    p = pcap_of(tmp_path, steps)
    with bounded(10, 100):
        a = dissect.analyze(p)
    s2c = a.ws_frames[a.ws_frames.direction == "s2c"]
    assert len(s2c) == 1
    assert "truncated" in tags(s2c.anomaly)
    if length >> 63:
        assert "length-msb-set" in tags(s2c.anomaly)
    msg = a.ws_messages[a.ws_messages.direction == "s2c"]
    assert "message-too-large" in tags(msg.anomaly)
    assert a.ws_messages[a.ws_messages.direction == "c2s"].text_preview.tolist() == ["before"]
    # The CSV report holds the same rows.
    code, _out, _err = report_cli("report", str(p), "--out", str(tmp_path / "out"), "--no-html", "-q")
    assert code == 0
    with open(tmp_path / "out" / "ws_frames.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["direction"] == "s2c"]
    assert len(rows) == 1 and int(rows[0]["payload_len"]) == length


def test_permessage_deflate_bomb(tmp_path: Path) -> None:
    bomb = deflate_bomb(2048)  # 2 GiB inflated
    assert len(bomb) < 4 << 20
    steps = ws_upgrade(deflate="permessage-deflate; server_no_context_takeover")
    steps += [(S2C, ws_frame(0xC2, bomb, None)), (S2C, ws_frame(0xC1, deflate(b"after the bomb"), None))]
    p = pcap_of(tmp_path, steps, mss=60000)
    with bounded(10, 250):
        a = dissect.analyze(p)
    msgs = a.ws_messages[a.ws_messages.direction == "s2c"].reset_index(drop=True)
    assert len(msgs) == 2
    assert bool(msgs.compressed[0])
    assert "message-too-large" in tags([msgs.anomaly[0]])
    # The direction has no context takeover: the next message is decoded as usual.
    assert msgs.text_preview[1] == "after the bomb" and pd.isna(msgs.anomaly[1])


def test_permessage_deflate_bomb_under_context_takeover(tmp_path: Path) -> None:
    steps = ws_upgrade(deflate="permessage-deflate")
    steps += [(S2C, ws_frame(0xC2, deflate_bomb(64), None)), (S2C, ws_frame(0xC1, deflate(b"next"), None))]
    p = pcap_of(tmp_path, steps, mss=60000)
    with bounded(10, 250):
        a = dissect.analyze(p)
    msgs = a.ws_messages[a.ws_messages.direction == "s2c"].reset_index(drop=True)
    assert "message-too-large" in tags([msgs.anomaly[0]])
    # The window the next message refers to was never built: say so, do not guess.
    assert "inflate-context-lost" in tags([msgs.anomaly[1]]) and pd.isna(msgs.text_preview[1])


def test_permessage_deflate_bomb_in_many_fragments(tmp_path: Path) -> None:
    bomb = deflate_bomb(512)
    frags = [bomb[i : i + 4096] for i in range(0, len(bomb), 4096)]
    wire = ws_frame(0x42, frags[0], None) + b"".join(ws_frame(0x00, f, None) for f in frags[1:-1])
    wire += ws_frame(0x80, frags[-1], None)
    p = pcap_of(tmp_path, ws_upgrade(deflate="permessage-deflate") + [(S2C, wire)], mss=60000)
    with bounded(10, 250):
        a = dissect.analyze(p)
    msgs = a.ws_messages[a.ws_messages.direction == "s2c"]
    assert len(msgs) == 1
    assert "message-too-large" in tags(msgs.anomaly)
    assert msgs.frames.tolist() == [len(frags)]


# -- hostile traffic: Engine.IO / Socket.IO --------------------------------------------------------


@pytest.mark.parametrize(("body", "ctype", "expect"), [
    (b"9999999999:42[\"x\"]", "text/plain; charset=UTF-8", "eio-truncated"),
    (b"4294967296:4hello", "text/plain; charset=UTF-8", "eio-truncated"),
    (b"3:42[\"x\"]", "text/plain; charset=UTF-8", "eio-bad-length"),
    (b"1:6" + b"99999999999999999999999:4", "text/plain; charset=UTF-8", "eio-bad-length"),
    (b"-5:40", "text/plain; charset=UTF-8", "eio-bad-length"),
    (b"\x00\x09\x09\x09\x09\x09\xff4short", "application/octet-stream", "eio-truncated"),
    (b"\x01" + b"\x09" * 30 + b"\xff\x04", "application/octet-stream", "eio-bad-length"),
], ids=["v3-10-digits", "v3-2^32", "v3-short", "v3-huge-digits", "v3-negative", "binary-past-end", "binary-30-digits"])
def test_engineio_polling_lying_length_prefixes(tmp_path: Path, body: bytes, ctype: str, expect: str) -> None:
    steps = polling("/socket.io/?EIO=3&transport=polling&t=1", b"%d:%s2:40" % (len(V3_OPEN), V3_OPEN))
    steps += polling("/socket.io/?EIO=3&transport=polling&t=2&sid=CCCCsid", body, ctype)
    steps += polling("/socket.io/?EIO=3&transport=polling&t=3&sid=CCCCsid", b'11:42["after"]')
    p = pcap_of(tmp_path, steps)
    with bounded(10, 100):
        a = dissect.analyze(p)
    sio = a.sio_packets
    assert expect in tags(sio.anomaly)
    eio_hs = a.handshakes[a.handshakes.layer == "engineio"]
    assert eio_hs.ok.tolist() == [True]
    # The poll after the lying one is decoded normally.
    after = sio[sio.event == "after"]
    assert len(after) == 1 and after.anomaly.isna().tolist() == [True]


@pytest.mark.parametrize("packet", [
    b'42["unterminated',
    b"42[",
    b'42{"not":"an array"}',
    b"42" + b"[" * 5000,
    b'40/admin,["auth","not","an","object"]',
], ids=["unterminated-string", "open-bracket", "object-not-array", "nested-5000", "connect-not-object"])
def test_socketio_broken_json(tmp_path: Path, packet: bytes) -> None:
    """Only what dissect reads of a payload can be judged (socketio.parse_header: the first
    character, an EVENT's name): broken there is ``sio-bad-payload``, and the next packet is fine."""
    p = pcap_of(tmp_path, sio_session(packet, b'42["after",1]'))
    with bounded(10, 100):
        a = dissect.analyze(p)
    c2s = a.sio_packets[a.sio_packets.direction == "c2s"].reset_index(drop=True)
    broken = c2s.iloc[-2]
    assert "sio-bad-payload" in tags([broken.anomaly])
    assert c2s.event.iloc[-1] == "after" and pd.isna(c2s.anomaly.iloc[-1])


@pytest.mark.parametrize("reply", [
    b"0" + b"[" * 5000,  # an Engine.IO open packet nested deeper than Python's recursion limit
    b"44" + b"[" * 5000,  # a CONNECT_ERROR likewise
], ids=["eio-open", "sio-connect-error"])
def test_deeply_nested_json_from_the_server(tmp_path: Path, reply: bytes) -> None:
    steps = ws_upgrade("/socket.io/?EIO=4&transport=websocket") + [s2c_text(EIO4_OPEN), c2s_text(b"40"),
                                                                  s2c_text(reply), c2s_text(b'42["after"]')]
    p = pcap_of(tmp_path, steps)
    a = dissect.analyze(p)
    rows = a.sio_packets
    hostile = rows[(rows.direction == "s2c")].iloc[-1]
    assert tags([hostile.anomaly])
    assert rows.event.iloc[-1] == "after"


@pytest.mark.parametrize("kind", ["error-body", "jsonp"])
def test_deeply_nested_json_in_polling_bodies(tmp_path: Path, kind: str) -> None:
    nested = b"[" * 5000
    if kind == "error-body":  # the handshake refused with a JSON error body
        steps = [(C2S, b"GET /socket.io/?EIO=4&transport=polling&t=1 HTTP/1.1\r\nHost: example\r\n\r\n"),
                 (S2C, b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(nested) + 8, b'{"code":' + nested))]
    else:  # engine.io 3 JSONP polling
        body = b"___eio[0](" + nested + b");"
        steps = [(C2S, b"GET /socket.io/?EIO=3&transport=polling&j=0&t=1 HTTP/1.1\r\nHost: example\r\n\r\n"),
                 (S2C, b"HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))]
    p = pcap_of(tmp_path, steps + http_exchange("/next"))
    a = dissect.analyze(p)
    eio = a.handshakes[a.handshakes.layer == "engineio"]
    assert eio.ok.tolist() == [False]
    assert "/next" in set(a.http.target)


def test_socketio_attachment_count_10_9(tmp_path: Path) -> None:
    p = pcap_of(tmp_path, sio_session(b'451000000000-["upload",{"_placeholder":true,"num":0}]', b'42["after"]'))
    with bounded(10, 100):
        a = dissect.analyze(p)
    c2s = a.sio_packets[a.sio_packets.direction == "c2s"].reset_index(drop=True)
    bin_row = c2s[c2s.sio_type == "BINARY_EVENT"]
    assert len(bin_row) == 1
    assert "attachments-invalid" in tags(bin_row.anomaly)
    assert bin_row.attachments.isna().all()
    # Nothing waits for a billion attachments: the next text packet is an EVENT of its own.
    after = c2s[c2s.event == "after"]
    assert len(after) == 1 and after.anomaly.isna().tolist() == [True]


# -- hostile traffic: HTTP, flows ------------------------------------------------------------------


@pytest.mark.parametrize("direction", [C2S, S2C])
def test_http_header_block_of_megabytes(tmp_path: Path, direction: int) -> None:
    pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(4000))  # 4 MB
    if direction == C2S:
        big = [(C2S, b"GET /big HTTP/1.1\r\nHost: example\r\n" + pad + b"\r\n"),
               (S2C, b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")]
    else:
        big = [(C2S, b"GET /big HTTP/1.1\r\nHost: example\r\n\r\n"),
               (S2C, b"HTTP/1.1 200 OK\r\n" + pad + b"Content-Length: 0\r\n\r\n")]
    p = pcap_of(tmp_path, big + http_exchange("/next"), mss=60000)
    with bounded(10, 150):
        a = dissect.analyze(p)
    assert "header-too-large" in tags(a.http.anomaly)
    nxt = a.http[a.http.target == "/next"]
    assert nxt.status.tolist() == [200]


def syn_flood(n: int) -> bytes:
    """``n`` SYNs from distinct ports: ``n`` one-packet flows."""
    tmpl = bytearray(craft.ethernet(craft.tcp_packet(("10.1.0.1", 1), ("10.2.0.1", 80), 1, 0, SYN)))
    hdr = struct.Struct("<IIII")
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    size = len(tmpl)
    for i in range(n):
        struct.pack_into("!H", tmpl, 34, 1024 + i % 64000)  # source port
        struct.pack_into("!B", tmpl, 29, i // 64000)  # last byte of the source address
        out += hdr.pack(1_700_000_000 + i // 100_000, (i % 100_000) * 10, size, size) + tmpl
    return bytes(out)


class _Counter:
    def __init__(self) -> None:
        self.batches: list[int] = []

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        if table == "sessions":
            self.batches.append(len(list(rows)))


def test_many_tiny_flows_are_flushed(tmp_path: Path) -> None:
    n, max_flows = 200_000, 1000
    p = write(tmp_path, "flood.pcap", syn_flood(n))
    counter = _Counter()
    with bounded(90, 200):
        res = run(str(p), [counter], limits=Limits(max_flows=max_flows))
    assert sum(counter.batches) == n  # every flow became a session row
    assert res.summary["decode"].get("flows-evicted", 0) > 0
    # Sessions were written while reading, not all held to the end: the last batch (the flush
    # at the end) holds at most what the table may keep open.
    assert counter.batches[-1] <= 2 * max_flows


# -- output hygiene --------------------------------------------------------------------------------


def test_terminal_summary_strips_control_characters(tmp_path: Path) -> None:
    evil = '\x1b[2J\x1b]0;pwned\x07\x9b31m\u202eevil\rname\x08'
    p = pcap_of(tmp_path, sio_session(b'42[' + json.dumps(evil).encode() + b',1]'))
    code, out, err = report_cli("summary", str(p))
    assert code == 0, err
    for c in ("\x1b", "\x07", "\x9b", "\u202e", "\r", "\x08"):
        assert c not in out, repr(c)
    assert "\\x1b[2J" in out and "evil" in out


@pytest.mark.parametrize("name", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1"])
def test_csv_formula_cells_are_neutralised(tmp_path: Path, name: str) -> None:
    p = pcap_of(tmp_path, sio_session(b"42[" + json.dumps(name).encode() + b"]"))
    code, _out, err = report_cli("report", str(p), "--out", str(tmp_path / "out"), "--no-html", "-q")
    assert code == 0, err
    with open(tmp_path / "out" / "sio_packets.csv", newline="", encoding="utf-8") as f:
        events = [r["event"] for r in csv.DictReader(f) if r["sio_type"] == "EVENT"]
    assert events == ["'" + name]


def test_csv_cells_from_the_query_string(tmp_path: Path) -> None:
    """Request-target text reaches the tables (handshakes.transport of a refused Engine.IO
    handshake): in the CSV it is one quoted cell, never extra cells, rows or a formula."""
    target = b"/socket.io/?EIO=4&transport=web,socket%0A9,tcp,=HYPERLINK(%22http://x%22)&t=1"
    steps = [(C2S, b"GET " + target + b" HTTP/1.1\r\nHost: example\r\n\r\n"),
             (S2C, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")]
    p = pcap_of(tmp_path, steps + http_exchange("/next"))
    a = dissect.analyze(p)
    code, _out, err = report_cli("report", str(p), "--out", str(tmp_path / "out"), "--no-html", "-q")
    assert code == 0, err
    for name in ("handshakes", "http"):
        assert_csv_well_formed(tmp_path / "out" / f"{name}.csv", len(a.table(name)))


# -- regressions found by the fuzzer ---------------------------------------------------------------

REGRESSION_FILES = sorted(p for p in REGRESSIONS.iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.parametrize("path", REGRESSION_FILES, ids=[p.name for p in REGRESSION_FILES])
def test_regression_capture(path: Path, tmp_path: Path) -> None:
    """Each capture in tests/regressions/ once crashed dissect (the .json beside it says how, and
    what must be reported instead; tests/regressions/make_regressions.py writes both)."""
    expect = json.loads(path.with_suffix(".json").read_text())
    with bounded(30, 300):
        a = dissect.analyze(path)
    if expect.get("reader_warning"):
        assert a.summary["warnings"]["total"] >= 1, a.summary["warnings"]
    assert set(expect.get("http_targets", [])) <= set(a.http.target)
    found = set()
    for df in (a.http, a.ws_frames, a.ws_messages, a.sio_packets):
        found |= tags(df.anomaly)
    assert set(expect.get("anomalies", [])) <= found
    hs = {(layer, bool(ok)) for layer, ok in zip(a.handshakes.layer, a.handshakes.ok, strict=True)}
    assert {(layer, ok) for layer, ok in expect.get("handshakes", [])} <= hs
    code, out, err = report_cli("report", str(path), "--out", str(tmp_path / "out"), "-q")
    assert code == 0, err
    assert "Traceback" not in out + err
    for name in ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets"):
        assert_csv_well_formed(tmp_path / "out" / f"{name}.csv", len(a.table(name)))


def assert_csv_well_formed(path: Path, rows: int) -> None:
    """Every line of a report CSV has the header's cells, no cell starts like a formula, and the
    file holds as many rows as the table."""
    with open(path, newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f))
    width = len(lines[0])
    for i, line in enumerate(lines[1:], 1):
        assert len(line) == width, f"{path.name} row {i}: {len(line)} cells, header has {width}: {line}"
        for cell in line:
            formula = cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(cell)
            assert not formula, f"{path.name} row {i}: formula cell {cell!r}"
    assert len(lines) - 1 == rows


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
