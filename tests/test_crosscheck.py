"""dissect against Wireshark's own dissectors (``dissect crosscheck``).

Every capture in ``captures/`` must show no disagreement; a crafted capture exercises what the
corpus may not (several WebSocket frames and HTTP messages in one segment, a frame split across
segments, 16-bit lengths, IPv6); perturbed dissect results prove that the cross-check does fail.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import dissect
from dissect.cli.crosscheck import crosscheck as crosscheck_cmd
from dissect.golden import corpus
from dissect.output.tables import Analysis
from dissect.report import crosscheck as cc
from dissect.report.crosscheck import wireshark as cc_wireshark

from . import craft

CAPTURES = corpus()
HAVE_TSHARK = shutil.which("tshark") is not None
needs_tshark = pytest.mark.skipif(not HAVE_TSHARK,
                                  reason="tshark (Wireshark 4.0) is not installed: apt-get install tshark")


def _pyshark_missing() -> bool:
    try:
        import pyshark  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        return True
    return False


# -- the corpus ------------------------------------------------------------------------------------


@needs_tshark
@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_corpus_agrees_with_wireshark(name: str) -> None:
    result = cc.compare(str(CAPTURES[name]))
    assert result.ok, result.render()


@functools.cache
def _smallest_ws_capture() -> Path:
    """The smallest corpus capture with WebSocket frames (cheap enough for pyshark)."""
    for path in sorted(CAPTURES.values(), key=lambda p: p.stat().st_size):
        if len(dissect.analyze(str(path)).ws_frames):
            return path
    pytest.skip("no corpus capture has WebSocket frames")


@functools.cache
def _baseline_checks(path: str) -> frozenset[str]:
    return frozenset(d.check for d in cc.compare(path).disagreements)


@needs_tshark
@pytest.mark.skipif(_pyshark_missing(), reason="pyshark is not installed: pip install pyshark")
def test_pyshark_engine_on_a_small_capture() -> None:
    path = str(_smallest_ws_capture())
    result = cc.compare(path, engine="pyshark")
    assert result.engine == "pyshark"
    assert result.compared["ws_frames"] > 0
    assert result.ok, result.render()


# -- a crafted capture -----------------------------------------------------------------------------

CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 80)
CLIENT6, SERVER6 = ("2001:db8::1", 40002), ("2001:db8::2", 80)
F, S, P, A = 1, 2, 8, 16


class Conn:
    """Writes one TCP connection's packets with sequence numbers kept for us."""

    def __init__(self, out: list[tuple[int, bytes]], client: tuple[str, int],
                 server: tuple[str, int], t0_ns: int, v6: bool = False) -> None:
        self.out, self.client, self.server, self.t, self.v6 = out, client, server, t0_ns, v6
        self.seq = {0: 1000, 1: 5000}
        self.send(0, b"", S)
        self.send(1, b"", S | A)
        self.send(0, b"", A)

    def send(self, d: int, data: bytes = b"", flags: int = P | A, gap_us: int = 100) -> None:
        src, dst = (self.client, self.server) if d == 0 else (self.server, self.client)
        ack = 0 if flags == S else self.seq[1 - d]
        ip = craft.tcp_packet(src, dst, self.seq[d], ack, flags, data, v6=self.v6)
        self.out.append((self.t, craft.ethernet(ip, v6=self.v6)))
        self.seq[d] += len(data) + (1 if flags & (S | F) else 0)
        self.t += gap_us * 1000

    def close(self) -> None:
        self.send(0, b"", F | A)
        self.send(1, b"", F | A)
        self.send(0, b"", A)


UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: 10.0.0.2\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
MASK = b"\x11\x22\x33\x44"

#: The WebSocket frames of the crafted capture: (direction, opcode, fin, masked, length, close).
CRAFTED_FRAMES = [
    ("s2c", 1, True, False, 2, None),
    ("s2c", 2, True, False, 300, None),
    ("c2s", 1, False, True, 1, None),
    ("c2s", 9, True, True, 0, None),
    ("c2s", 0, True, True, 3, None),
    ("c2s", 8, True, True, 5, 1000),
    ("s2c", 8, True, False, 2, 4001),
]


def crafted_packets() -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    t0 = 1_700_000_000_000_000_000
    ws = Conn(out, CLIENT, SERVER, t0)
    ws.send(0, UPGRADE[:40])  # a request in two segments: dissect and Wireshark differ by design
    ws.send(0, UPGRADE[40:])
    ws.send(1, SWITCH + craft.ws_frame(1, b"hi"))  # the first frame shares the 101's segment
    big = craft.ws_frame(2, bytes(range(256)) + bytes(44))
    ws.send(1, big[:150])  # a frame split across two segments
    ws.send(1, big[150:])
    ws.send(0, craft.ws_frame(1, b"a", fin=False, mask=MASK) + craft.ws_frame(9, b"", mask=MASK)
            + craft.ws_frame(0, b"bcd", mask=MASK))  # three frames in one segment
    ws.send(0, craft.ws_frame(8, struct.pack("!H", 1000) + b"bye", mask=MASK))
    ws.send(1, craft.ws_frame(8, struct.pack("!H", 4001)))
    ws.close()

    http = Conn(out, ("10.0.0.1", 40001), SERVER, ws.t + 1_000_000)
    http.send(0, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?x=1,2 HTTP/1.1\r\nHost: x\r\n\r\n")
    http.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
                 b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    http.close()

    v6 = Conn(out, CLIENT6, SERVER6, http.t + 1_000_000, v6=True)
    v6.send(0, b"GET /six HTTP/1.1\r\nHost: six\r\n\r\n")
    v6.send(1, b"HTTP/1.1 204 No Content\r\n\r\n")
    v6.close()
    return out


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("crosscheck") / "crafted.pcap"
    path.write_bytes(craft.write_pcap(crafted_packets(), nano=True))
    return str(path)


@needs_tshark
def test_crafted_capture_is_read_as_built(crafted: str) -> None:
    view = cc.tshark_view(crafted)
    assert len({p.stream for p in view.packets}) == 3
    frames = [("c2s" if f.src == CLIENT else "s2c", f.opcode, f.fin, f.masked, f.length,
               f.close_code) for f in view.ws]
    assert sorted(frames, key=str) == sorted(CRAFTED_FRAMES, key=str)
    requests = [(m.method, m.uri, m.upgrade) for m in view.http if m.is_request]
    assert requests == [("GET", "/chat", "websocket"), ("GET", "/a", None), ("GET", "/b?x=1,2", None),
                        ("GET", "/six", None)]
    # The upgrade request started one segment before the one Wireshark shows it at.
    get = next(m for m in view.http if m.uri == "/chat")
    assert get.start < get.ts
    ws_stream = view.packets[0].stream
    assert view.stream_bytes[ws_stream][CLIENT] == len(UPGRADE) + 7 + 6 + 9 + 11


@needs_tshark
def test_crafted_capture_agrees(crafted: str) -> None:
    result = cc.compare(crafted)
    assert result.compared["ws_frames"] == len(CRAFTED_FRAMES)
    assert result.compared["http"] == 4
    assert result.compared["ws_handshake"] == 1
    assert result.ok, result.render()


@needs_tshark
@pytest.mark.skipif(_pyshark_missing(), reason="pyshark is not installed: pip install pyshark")
def test_engines_see_the_same(crafted: str) -> None:
    a, b = cc.tshark_view(crafted), cc.pyshark_view(crafted)
    assert a.packets == b.packets
    # Wireshark 4.0 gives http.request_in only to the first of several responses in one segment;
    # with -T fields the values cannot be told apart, so the tshark engine pairs those in order.
    assert [dataclasses.replace(m, request_in=None) for m in a.http] == \
        [dataclasses.replace(m, request_in=None) for m in b.http]

    def pairs(v: cc.WiresharkView) -> list[tuple[str | None, int | None]]:
        return [(q.uri, p.status if p else None) for q, p in cc.pair_http(v.http)]

    assert pairs(a) == pairs(b) == [("/chat", 101), ("/a", 200), ("/b?x=1,2", 404), ("/six", 204)]
    assert a.ws == b.ws
    assert a.stream_bytes == b.stream_bytes


# -- the cross-check can fail ----------------------------------------------------------------------


def _perturbed(monkeypatch: pytest.MonkeyPatch, change: Callable[[Analysis], None]) -> None:
    """Make ``crosscheck.analyze`` return dissect's real result, changed by ``change``."""
    real = dissect.analyze

    def fake(path: Any, **kw: Any) -> Analysis:
        a = real(path, **kw)
        change(a)
        return a

    monkeypatch.setattr(cc, "analyze", fake)


def _checks(result: cc.CrossCheckResult) -> set[str]:
    return {d.check for d in result.disagreements}


def drop_ws_frame(a: Analysis) -> None:
    a.ws_frames = a.ws_frames.drop(index=a.ws_frames.index[len(a.ws_frames) // 2])


def shift_ws_frame(a: Analysis) -> None:
    a.ws_frames.loc[a.ws_frames.index[0], "ts"] += 2e-6


def wrong_payload_len(a: Analysis) -> None:
    a.ws_frames.loc[a.ws_frames.index[-1], "payload_len"] += 1


def shift_syn(a: Analysis) -> None:
    a.sessions.loc[a.sessions.index[0], "syn_ts"] -= 1e-6


def swap_roles(a: Analysis) -> None:
    s = a.sessions
    i = s.index[0]
    s.loc[i, ["client_ip", "client_port", "server_ip", "server_port"]] = [
        s.loc[i, "server_ip"], s.loc[i, "server_port"], s.loc[i, "client_ip"], s.loc[i, "client_port"]]


def extra_byte(a: Analysis) -> None:
    a.sessions.loc[a.sessions.index[0], "bytes_s2c"] += 1


def drop_session(a: Analysis) -> None:
    a.sessions = a.sessions.iloc[1:]


def drop_http(a: Analysis) -> None:
    a.http = a.http.iloc[1:]


def late_response(a: Analysis) -> None:
    a.http.loc[a.http.index[0], "ts_response"] += 1e-3


def shift_ws_handshake(a: Analysis) -> None:
    hs = a.handshakes
    hs.loc[hs.index[hs.layer == "websocket"][0], "ts_end"] += 1e-6


PERTURBATIONS = [
    (drop_ws_frame, "ws_frames"), (shift_ws_frame, "ws_frames"), (wrong_payload_len, "ws_frames"),
    (shift_syn, "tcp_handshake"), (swap_roles, "roles"), (extra_byte, "bytes"),
    (drop_session, "streams"), (drop_http, "http"), (late_response, "http"),
    (shift_ws_handshake, "ws_handshake"),
]


@needs_tshark
@pytest.mark.parametrize("change,check", PERTURBATIONS, ids=[c.__name__ for c, _ in PERTURBATIONS])
def test_perturbed_result_disagrees(monkeypatch: pytest.MonkeyPatch, change: Callable[[Analysis], None],
                                    check: str) -> None:
    path = str(_smallest_ws_capture())
    assert check not in _baseline_checks(path)
    _perturbed(monkeypatch, change)
    result = cc.compare(path)
    assert check in _checks(result), result.render()


@needs_tshark
def test_dropped_frame_is_named(monkeypatch: pytest.MonkeyPatch, crafted: str) -> None:
    """A missing frame is reported once, as missing, not as every later frame differing."""

    def drop_ping(a: Analysis) -> None:
        a.ws_frames = a.ws_frames[a.ws_frames.opcode != 9]

    _perturbed(monkeypatch, drop_ping)
    result = cc.compare(crafted)
    assert [d.check for d in result.disagreements] == ["ws_frames"], result.render()
    assert "opcode 9" in result.disagreements[0].detail
    assert "not in dissect" in result.disagreements[0].detail


@needs_tshark
def test_cli_exit_codes(monkeypatch: pytest.MonkeyPatch, crafted: str, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(crosscheck_cmd, [crafted])
    assert ok.exit_code == 0, ok.output
    assert "no disagreement" in ok.output and "compared:" in ok.output

    as_json = runner.invoke(crosscheck_cmd, [crafted, "--json"])
    assert as_json.exit_code == 0
    data = json.loads(as_json.output)
    assert data[0]["disagreements"] == [] and data[0]["compared"]["ws_frames"] == len(CRAFTED_FRAMES)

    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    bad = runner.invoke(crosscheck_cmd, [str(junk)])
    assert bad.exit_code == 2

    _perturbed(monkeypatch, extra_byte)
    differ = runner.invoke(crosscheck_cmd, [crafted, "--json"])
    assert differ.exit_code == 1
    assert json.loads(differ.output)[0]["disagreements"][0]["check"] == "bytes"


def test_cli_without_tshark(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cc_wireshark.shutil, "which", lambda name: None)
    path = tmp_path / "x.pcap"
    path.write_bytes(craft.write_pcap(crafted_packets()))
    result = CliRunner().invoke(crosscheck_cmd, [str(path)])
    assert result.exit_code == 2
    assert "tshark is not installed" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_result_render_groups_by_check() -> None:
    r = cc.CrossCheckResult("x.pcap", "tshark", digits=6)
    r.add("ws_frames", 1, "c2s frame_index 3: ts")
    r.add("streams", None, "tcp.stream 4 has no dissect session")
    r.count("streams", 5)
    text = r.render()
    assert text.index("streams (1)") < text.index("ws_frames (1)")
    assert "- : tcp.stream 4" not in text and "-: tcp.stream 4" in text
    assert "compared: streams 5" in text
    assert r.epoch(1_700_000_000_123_456_789) == "1700000000.123457"
    assert r.t(1_700_000_000_123_456_789).endswith("Z [1700000000.123457]")
    assert dataclasses.asdict(r.disagreements[0]) == {"check": "ws_frames", "session_id": 1,
                                                      "detail": "c2s frame_index 3: ts", "tcp_stream": None}
    assert os.path.basename(r.to_dict()["capture"]) == "x.pcap"
