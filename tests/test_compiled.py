"""The compiled core (dissect/compiled, Cython) against the pure-Python code, its reference.

Every compiled path must give the rows, summary.json and table files of the Python code byte for
byte: on the whole corpus (each path in its own process, DISSECT_NO_EXTENSIONS=1 for the Python
one), and on generated captures damaged the ways real ones are (packets reordered, lost,
duplicated, cut by the snaplen or truncated; other link types, VLAN tags, IPv6 extension headers
and odd payload lengths, IP options and fragments, UDP, tunnels), switch by switch in one process.
Without the extension built the comparisons are skipped (with the reason), and what stays tested
is the fallback itself.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect import fastpaths
from dissect.output.writers import MemoryCollector
from dissect.run.local import run

from . import craft
from .test_fast_path_websocket import conversations
from .test_fast_path_websocket import rows as ws_rows

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
CORPUS = sorted(p for p in CAPTURES.glob("*.pcap*")) + sorted((ROOT / "tests" / "regressions").glob("*.pcap*"))

needs_compiled = pytest.mark.skipif(
    not fastpaths.COMPILED,
    reason="the compiled core is not built or DISSECT_NO_EXTENSIONS=1 (pip install -e . with a C compiler "
           "builds it): nothing to compare the pure-Python path with")


def _env(no_extensions: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["DISSECT_NO_EXTENSIONS"] = "1" if no_extensions else "0"
    return env


def _dissect(args: list[str], no_extensions: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dissect", *args], env=_env(no_extensions), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


# -- the switch --------------------------------------------------------------------------------------


def test_version_says_which_core_is_in_use() -> None:
    forced = _dissect(["--version"], no_extensions=True)
    assert forced.returncode == 0
    assert forced.stdout.strip().endswith("(pure Python)"), forced.stdout
    default = _dissect(["--version"], no_extensions=False)
    want = "(compiled core)" if _importable() else "(pure Python)"
    assert default.stdout.strip() == f"dissect, version 0.1.0 {want}", default.stdout


def _importable() -> bool:
    """Whether the extension is built for this Python (whatever DISSECT_NO_EXTENSIONS says)."""
    try:
        import dissect.compiled.packets  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_failing_import_falls_back_to_pure_python() -> None:
    """An extension that cannot be imported (built for another Python, damaged) is not used."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'dissect.compiled.packets':\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from dissect import fastpaths\n"
        "print(fastpaths.implementation(), fastpaths.compiled_packets())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(False), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pure", "Python", "None"]


def test_no_extensions_is_pure_python() -> None:
    code = "from dissect import fastpaths; print(fastpaths.COMPILED, fastpaths.compiled_packets())"
    out = subprocess.run([sys.executable, "-c", code], env=_env(True), capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "None"], out.stderr


@needs_compiled
def test_the_compiled_loop_is_the_one_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the extension built, the pipeline runs the compiled loop, not Pipeline._loop."""
    from dissect.pipeline import Pipeline

    def refuse(*a: object) -> None:
        raise AssertionError("the Python loop ran")

    monkeypatch.setattr(Pipeline, "_loop", refuse)
    rows = _rows([CAPTURES / "sio4_websocket.pcap"])[0]
    assert len(rows["ws_frames"]) > 10


@needs_compiled
def test_foreign_flows_of_subclasses_are_written_in_place_only_when_they_keep_the_slots() -> None:
    """The packet loop writes a foreign flow's ``ts_last`` and ``packets`` in TcpConnection's slots
    for its subclasses (a --dask task's Placeholder, an index pass's LogConn), not for a subclass
    that overrides one of them (its Python attribute would be skipped) nor for another class."""
    from dissect.transport.flowsplit import LogConn, Placeholder
    from dissect.transport.tcp import TcpConnection

    core = fastpaths.compiled_packets()
    assert core is not None
    core_run = _rows([CAPTURES / "sio4_websocket.pcap"])  # (the pipeline configures the core)
    assert core_run

    class Traced(TcpConnection):
        __slots__ = ()

        @property
        def ts_last(self) -> int:
            return 0

        @ts_last.setter
        def ts_last(self, ts: int) -> None:
            pass

    class Below(Traced):
        __slots__ = ()

    assert core.foreign_in_place(Placeholder) and core.foreign_in_place(LogConn)
    assert core.foreign_in_place(TcpConnection)
    assert not core.foreign_in_place(Traced) and not core.foreign_in_place(Below)
    assert not core.foreign_in_place(dict)
    assert core.foreign_in_place(Placeholder)  # (the last answers are cached: asked again)


# -- the corpus, each path in its own process --------------------------------------------------------

_REPORT_ALL = """
import sys
from pathlib import Path
from typing import Any
from dissect.cli import main
out = Path(sys.argv[1])
for arg in sys.argv[2:]:
    cap = Path(arg)
    for fmt, extra in (("csv", []), ("jsonl", []), ("csv", ["--payloads"])):
        args = ["report", str(cap), "--out", str(out / (fmt + "".join(extra)) / cap.name), "--no-html", "--quiet",
                "--jobs", "1", "--format", fmt, *extra]
        keys = cap.with_suffix(".keys")
        if keys.exists():
            args += ["--tls-keylog", str(keys)]
        try:
            main.main(args=args, prog_name="dissect", standalone_mode=False)
        except SystemExit as e:
            if e.code not in (0, None):
                raise
"""


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@needs_compiled
def test_corpus_tables_byte_identical_on_both_paths(tmp_path: Path) -> None:
    """Every table file (CSV, JSON lines, CSV with --payloads) and summary.json of every corpus capture, written by the
    compiled core and by the pure-Python code in separate processes, byte for byte."""
    captures = [str(p.relative_to(ROOT)) for p in CORPUS]
    for name, no_ext in (("compiled", False), ("python", True)):
        check = subprocess.run([sys.executable, "-c", "from dissect import fastpaths; print(fastpaths.COMPILED)"],
                               env=_env(no_ext), capture_output=True, text=True, timeout=60)
        assert check.stdout.strip() == str(not no_ext)
        done = subprocess.run([sys.executable, "-c", _REPORT_ALL, str(tmp_path / name), *captures],
                              env=_env(no_ext), cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
    compiled, python = _files(tmp_path / "compiled"), _files(tmp_path / "python")
    assert len(compiled) >= 3 * 8 * len(CORPUS)  # seven tables and summary.json per capture and format
    assert sorted(compiled) == sorted(python)
    differ = [k for k in compiled if compiled[k] != python[k]]
    assert not differ, differ[:20]
    assert sum(len(v) for k, v in compiled.items() if k.endswith("ws_frames.csv")) > 10_000


# -- generated captures, both loops in one process ---------------------------------------------------


def _rows(paths: list[Path]) -> tuple[dict[str, list[tuple]], str]:
    m = MemoryCollector()
    res = run([str(p) for p in paths], [m])
    return m.rows, json.dumps(res.summary, sort_keys=True, default=str)


def _damaged_file_both_ways(data: st.DataObject, raw: bytearray, header: int, ext: str) -> None:
    """``raw`` perhaps cut after its first ``header`` bytes, perhaps gzipped, read in chunks of a drawn
    size: the compiled and the pure-Python walks give the same rows and summary."""
    from dissect.capture import reader as reader_module

    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(header, len(raw)))]
    chunk = data.draw(st.sampled_from([reader_module.CHUNK, 50, 97, 300, 1000]))
    gz = data.draw(st.booleans())
    saved = reader_module.CHUNK
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (f"damaged.{ext}.gz" if gz else f"damaged.{ext}")
        path.write_bytes(craft.gz(bytes(raw)) if gz else bytes(raw))
        reader_module.CHUNK = chunk
        try:
            (fast_rows, fast_summary), (slow_rows, slow_summary) = _both([path])
        finally:
            reader_module.CHUNK = saved
    assert fast_rows == slow_rows
    assert fast_summary == slow_summary


def _both(paths: list[Path]) -> tuple[tuple[dict[str, list[tuple]], str], tuple[dict[str, list[tuple]], str]]:
    saved = fastpaths.COMPILED_PACKET_LOOP
    try:
        fastpaths.COMPILED_PACKET_LOOP = True
        fast = _rows(paths)
        fastpaths.COMPILED_PACKET_LOOP = False
        slow = _rows(paths)
    finally:
        fastpaths.COMPILED_PACKET_LOOP = saved
    return fast, slow


@needs_compiled
def test_corpus_rows_and_summary_identical_in_process() -> None:
    for p in CORPUS:
        fast, slow = _both([p])
        assert fast == slow, p


WS_REQUEST = (b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
WS_RESPONSE = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
OPEN = b'0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


def _ip_options(ip: bytes) -> bytes:
    """The same IPv4 packet with a 4-byte option (NOPs): not the inline case."""
    body = ip[20:]
    total = 24 + len(body)
    return bytes([0x46]) + ip[1:2] + total.to_bytes(2, "big") + ip[4:20] + b"\x01\x01\x01\x00" + body


def _halves(payload: bytes) -> list[tuple[int, bytes, bool]]:
    """A datagram's payload cut in two fragments, the first 8-aligned: (offset, bytes, more
    fragments); empty when it is too short to cut."""
    cut = max(8, (len(payload) // 2) // 8 * 8)
    if cut >= len(payload):
        return []
    return [(0, payload[:cut], True), (cut, payload[cut:], False)]


def _fragments(ip: bytes) -> list[bytes]:
    """An IPv4 packet cut in two fragments."""
    out = []
    for off, part, more in _halves(ip[20:]):
        flags = (0x2000 if more else 0) | (off // 8)
        hdr = ip[:2] + (20 + len(part)).to_bytes(2, "big") + ip[4:6] + flags.to_bytes(2, "big") + ip[8:20]
        out.append(hdr + part)
    return out or [ip]


def _ip6_options(ip: bytes) -> bytes:
    """An IPv6 packet with a Destination Options header (PadN) before its TCP segment: the
    compiled loop leaves it to IPLayer.ipv6."""
    plen = int.from_bytes(ip[4:6], "big") + 8
    ext = bytes([ip[6], 0, 1, 4, 0, 0, 0, 0])
    return ip[:4] + plen.to_bytes(2, "big") + bytes([60]) + ip[7:40] + ext + ip[40:]


def _fragments6(ip: bytes) -> list[bytes]:
    """An IPv6 packet cut in two fragments (Fragment headers)."""
    out = []
    for off, part, more in _halves(ip[40:]):
        ext = bytes([ip[6], 0]) + (off | more).to_bytes(2, "big") + (77).to_bytes(4, "big")
        out.append(ip[:4] + (8 + len(part)).to_bytes(2, "big") + bytes([44]) + ip[7:40] + ext + part)
    return out or [ip]


def _ip6_length(ip: bytes, plen: int) -> bytes:
    """An IPv6 packet whose payload length says ``plen`` (0: as a jumbogram; more than the frame)."""
    return ip[:4] + plen.to_bytes(2, "big") + ip[6:]


LINKS = ["eth", "eth", "vlan", "qinq", "sll", "sll2", "null", "raw"]


def _frame(link: str, ip: bytes, v6: bool) -> bytes:
    if link == "vlan":
        return craft.ethernet(ip, v6, vlans=[7])
    if link == "qinq":
        return craft.ethernet(ip, v6, vlans=[7, 8])
    if link == "sll":
        return craft.sll(ip, v6)
    if link == "sll2":
        return craft.sll2(ip, v6)
    if link == "null":
        return craft.null_loop(ip, v6)
    if link == "raw":
        return ip
    return craft.ethernet(ip, v6)


LINKTYPES = {"eth": 1, "vlan": 1, "qinq": 1, "sll": 113, "sll2": 276, "null": 0, "raw": 101}


@needs_compiled
@settings(max_examples=80, deadline=None)
@given(st.data())
def test_generated_captures_identical_on_both_loops(data: st.DataObject) -> None:
    """A Socket.IO conversation over WebSocket cut into segments, then damaged: segments reordered,
    lost, duplicated, overlapping; packets cut by the snaplen, truncated, fragmented, carrying IP
    options; a stray UDP datagram and a non-IP frame; any link type. Both loops, the same rows and
    summary."""
    link = data.draw(st.sampled_from(LINKS))
    v6 = data.draw(st.booleans()) and link not in ("null",)
    client = ("fd00::1", 40000) if v6 else craft.CLIENT
    server = ("fd00::2", 80) if v6 else craft.SERVER
    events_c = [b"42" + json.dumps(["ev", "c" * data.draw(st.integers(0, 30)), i]).encode()
                for i in range(data.draw(st.integers(1, 6)))]
    events_s = [b"43" + str(i).encode() + b"[1]" for i in range(data.draw(st.integers(0, 3)))]
    frames_c = craft.ws_frame(1, b"40", b"abcd") + b"".join(craft.ws_frame(1, e, b"wxyz") for e in events_c)
    frames_s = craft.ws_frame(1, OPEN, None) + craft.ws_frame(1, b'40{"sid":"s"}', None) + b"".join(
        craft.ws_frame(1, e, None) for e in events_s)
    if data.draw(st.booleans()):
        frames_s += craft.ws_frame(2, bytes(range(200)), None)
    streams = {0: WS_REQUEST + frames_c, 1: WS_RESPONSE + frames_s}
    segments = []
    for d, payload in streams.items():
        pos = 0
        while pos < len(payload):
            n = data.draw(st.integers(1, 160))
            segments.append((d, pos, payload[pos : pos + n]))
            pos += n
    segments.sort(key=lambda s: (s[1], s[0]))  # the two directions interleaved
    if data.draw(st.booleans()):
        segments = [segments[i] for i in data.draw(st.permutations(range(len(segments))))]
    isn = {0: 1000, 1: 0xFFFFFF00}  # the server's sequence numbers wrap
    ends = {0: (client, server), 1: (server, client)}
    ips = [craft.tcp_packet(client, server, 999, 0, 0x02, v6=v6),
           craft.tcp_packet(server, client, isn[1] - 1, 1000, 0x12, v6=v6),
           craft.tcp_packet(client, server, 1000, isn[1], 0x10, v6=v6)]
    for d, off, chunk in segments:
        fate = data.draw(st.sampled_from(["keep"] * 6 + ["dup", "drop", "overlap", "ack"]))
        if fate == "drop":
            continue
        src, dst = ends[d]
        ip = craft.tcp_packet(src, dst, isn[d] + off, isn[1 - d], 0x18, chunk, v6=v6)
        ips.append(ip)
        if fate == "dup":
            ips.append(ip)
        elif fate == "overlap" and off > 0:
            ips.append(craft.tcp_packet(src, dst, isn[d] + off - 1, isn[1 - d], 0x18,
                                        streams[d][off - 1 : off + len(chunk)], v6=v6))
        elif fate == "ack":
            ips.append(craft.tcp_packet(dst, src, isn[1 - d], isn[d] + off + len(chunk), 0x10, v6=v6))
    if data.draw(st.booleans()):
        ips.append(craft.tcp_packet(client, server, 1000 + len(streams[0]), isn[1], 0x11, v6=v6))
        ips.append(craft.tcp_packet(server, client, isn[1] + len(streams[1]), 1001 + len(streams[0]), 0x11,
                                    v6=v6))
    frames: list[bytes] = []
    for ip in ips:
        damage = data.draw(st.sampled_from(["none"] * 10 + ["options", "fragments", "cut", "short", "length"]))
        if damage == "options":
            ip = _ip6_options(ip) if v6 else _ip_options(ip)
        if damage == "fragments":
            frames += [_frame(link, f, v6) for f in (_fragments6(ip) if v6 else _fragments(ip))]
            continue
        if v6 and damage == "length":
            ip = _ip6_length(ip, data.draw(st.sampled_from([0, len(ip) - 40 + 100, 1])))
        fr = _frame(link, ip, v6)
        if damage == "short":  # the IP total length says more than there is, or a header is cut
            fr = fr[: data.draw(st.integers(0, len(fr)))]
        frames.append(fr)
    if data.draw(st.booleans()):
        udp = bytes(craft.tcp_packet(client, server, 1, 1, 0x10, b"x", v6=v6))
        frames.insert(data.draw(st.integers(0, len(frames))), _frame(link, udp, v6))
    if link in ("eth", "vlan") and data.draw(st.booleans()):
        frames.insert(data.draw(st.integers(0, len(frames))), b"\x02" * 12 + b"\x08\x06" + b"\x00" * 28)  # ARP
    snaplen = data.draw(st.sampled_from([262144, 262144, 96, 200]))
    packets = [(craft.T0 + i * 0.0001, fr) for i, fr in enumerate(frames)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conv.pcap"
        path.write_bytes(craft.write_pcap(packets, linktype=LINKTYPES[link], snaplen=snaplen))
        (fast_rows, fast_summary), (slow_rows, slow_summary) = _both([path])
    assert fast_rows == slow_rows
    assert fast_summary == slow_summary
    assert fast_rows["sessions"]  # the conversation was read


@needs_compiled
@pytest.mark.parametrize("ip", ["ipv4", "ipv6"])
def test_benchmark_traffic_identical_on_both_loops(tmp_path: Path, ip: str) -> None:
    """The benchmark's steady state (50 connections, interleaved), where the compiled loop takes
    nearly every packet inline; over IPv4 and over IPv6."""
    cap = tmp_path / "bench.pcap"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_capture.py"), "--packets", "20000",
                    "--out", str(cap), *(["--ipv6"] if ip == "ipv6" else [])],
                   check=True, capture_output=True, timeout=300)
    fast, slow = _both([cap])
    assert fast == slow
    assert len(fast[0]["ws_frames"]) > 15_000


# -- the WebSocket whole-frame path ------------------------------------------------------------------


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(conversations(), st.booleans(), st.sampled_from([16 << 20, 16 << 20, 100, 0]))
def test_ws_frames_identical_compiled_and_python(
    conversation: tuple[object, list[tuple[int, int, bytes]]], upper: bool, cap: int
) -> None:
    """Messages both ways, fragmented, compressed, control frames between, wrong masks, lost bytes,
    cut anywhere (tests/test_fast_path_websocket.py's conversations): the compiled whole-frame path
    and the Python fast path give the same frames, messages and upper-layer calls."""
    deflate, feeds = conversation
    saved = fastpaths.COMPILED_WS_FRAMES
    try:
        fastpaths.COMPILED_WS_FRAMES = True
        fast = ws_rows(deflate, feeds, upper, cap, True)  # type: ignore[arg-type]
        fastpaths.COMPILED_WS_FRAMES = False
        slow = ws_rows(deflate, feeds, upper, cap, True)  # type: ignore[arg-type]
    finally:
        fastpaths.COMPILED_WS_FRAMES = saved
    assert fast == slow


@needs_compiled
@pytest.mark.parametrize("cap", [16 << 20, 40, 0])
@pytest.mark.parametrize("no_takeover", [False, True])
def test_compressed_frames_compiled_and_python(cap: int, no_takeover: bool) -> None:
    """fastpaths.COMPILED_WS_DEFLATE's twin of the RFC 7692 stage's common case, and what it leaves
    to the stage: a long message (the window trimmed), text that is not ASCII, a message ending in
    a final block (the inflater restarted with the window kept, 7.2.3.4) and messages after it,
    broken deflate data, messages over the cap; both directions, with and without context
    takeover. The same rows and upper-layer calls as the Python fast path."""
    from dissect.protocols.websocket import DeflateParams

    from .test_fast_path_websocket import frame

    deflate = DeflateParams(no_takeover, no_takeover, 15, 15)
    text = b"hello websocket world " * 3
    feeds = []
    for d, mask in ((0, b"\x01\x02\x03\x04"), (1, None)):
        comp = zlib.compressobj(wbits=-15)
        wire = history = b""
        for i, end in enumerate(["sync", "big", "utf8", "sync", "final", "sync", "broken", "sync"]):
            body = text + b"%d" % i
            if end == "big":
                body = bytes(range(256)) * 200  # 51,200 bytes: past the 32 KiB window
            if end == "utf8":
                body = "caf\u00e9 \u2603".encode() + text
            if no_takeover:
                comp = zlib.compressobj(wbits=-15)
            history += body
            if end == "final":  # the next messages go on with the window of everything so far
                data = comp.compress(body) + comp.flush(zlib.Z_FINISH)
                comp = zlib.compressobj(wbits=-15, zdict=history[-32768:])
            else:
                data = (comp.compress(body) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
            if end == "broken":
                data = data[:3] + b"\xff\xff\xff" + data[3:]
            wire += frame(1 if end != "big" else 2, data, mask=mask, rsv1=True)
        feeds.append((d, 0, wire))
    saved = fastpaths.COMPILED_WS_FRAMES, fastpaths.COMPILED_WS_DEFLATE
    try:
        got = []
        for compiled in (True, False):
            fastpaths.COMPILED_WS_FRAMES = fastpaths.COMPILED_WS_DEFLATE = compiled
            got.append(ws_rows(deflate, feeds, True, cap, True))
    finally:
        fastpaths.COMPILED_WS_FRAMES, fastpaths.COMPILED_WS_DEFLATE = saved
    assert got[0] == got[1]
    sizes = [m.payload_bytes for m in got[0][1]]
    assert len(sizes) == 16 and (cap < 100 or (sizes.count(51_200) == 2 and sizes.count(67) >= 4))


@needs_compiled
def test_ws_frames_compiled_path_takes_the_steady_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the corpus, fed by the Python packet loop, the compiled function emits most frames, and
    the tables equal the Python ones."""
    real = fastpaths.compiled_ws_frames()
    taken = [0]

    def counting(dis, *a):  # type: ignore[no-untyped-def]
        before = dis._frame_index
        pos = real(dis, *a)
        taken[0] += dis._frame_index - before
        return pos

    monkeypatch.setattr(fastpaths, "COMPILED_PACKET_LOOP", False)
    monkeypatch.setattr(fastpaths, "compiled_ws_frames", lambda: counting)
    sio = sorted(CAPTURES.glob("sio*.pcap*"))
    fast = _rows(sio)
    assert taken[0] > 0.5 * len(fast[0]["ws_frames"]) > 100
    monkeypatch.setattr(fastpaths, "COMPILED_WS_FRAMES", False)
    monkeypatch.setattr(fastpaths, "compiled_ws_frames", lambda: None)
    assert _rows(sio) == fast


@needs_compiled
def test_compiled_loop_reads_websocket_segments_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled packet loop hands a WebSocket's in-order segments in the steady state to the
    compiled frame path without calling WebSocketDissector.feed (which then sees only the rest),
    and the tables equal those of the Python loop and of the Python frame path."""
    from dissect.protocols.websocket import WebSocketDissector

    calls = [0]
    feed = WebSocketDissector.feed

    def counting(self, *a):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return feed(self, *a)

    monkeypatch.setattr(WebSocketDissector, "feed", counting)
    sio = sorted(CAPTURES.glob("sio*.pcap*"))
    fast = _rows(sio)
    frames = len(fast[0]["ws_frames"])
    assert frames > 100 and calls[0] < 0.5 * frames
    monkeypatch.setattr(fastpaths, "COMPILED_PACKET_LOOP", False)
    calls[0] = 0
    assert _rows(sio) == fast
    assert calls[0] > 0.8 * frames  # the Python loop calls feed for every segment
    monkeypatch.setattr(fastpaths, "COMPILED_PACKET_LOOP", True)
    monkeypatch.setattr(fastpaths, "COMPILED_WS_FRAMES", False)
    monkeypatch.setattr(fastpaths, "compiled_ws_frames", lambda: None)
    assert _rows(sio) == fast


# -- CSV rows ----------------------------------------------------------------------------------------

_TEXTS = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from(list('ab,"\n\r=+-@\t\' é')), max_size=12),
    st.sampled_from(["", "c2s", "=1+1", "'quoted", '"', ",", "-", "\r\n", "x" * 200, "snow\u2603", "a\x00b"]),
)
_INTS = st.one_of(st.integers(-(1 << 70), 1 << 70), st.integers(-5, 5), st.just(1_700_000_000_123_456_789))
_TS = st.one_of(st.integers(-(1 << 65), 1 << 66), st.integers(0, 2_000_000_000),
                st.integers(1_600_000_000_000_000_000, 1_800_000_000_000_000_000))
_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1e6))


def _value(kind: str, optional: bool) -> st.SearchStrategy[object]:
    base: st.SearchStrategy[object] = {"t": _TS, "i": _INTS, "b": st.booleans(), "f": _FLOATS}.get(kind, _TEXTS)
    return st.one_of(st.none(), base) if optional or kind == "f" else base


@needs_compiled
@settings(max_examples=150, deadline=None)
@given(st.data(), st.sampled_from(["6", "9"]))
def test_csv_rows_identical_compiled_and_generated(data: st.DataObject, digits: str) -> None:
    """Rows of every table with values of every kind (huge and negative numbers, early and huge
    timestamps, NaN, text to quote or to guard against formulas, non-ASCII, empty, None): the
    compiled formatter writes the generated f-string's bytes."""
    from dissect.output import writers
    from dissect.records import TABLES, column_types, ts_columns

    for table, cls in TABLES.items():
        kinds = writers.csv_kinds(table).decode()
        types = column_types(cls)
        ts_cols = set(ts_columns(cls))
        strategies = []
        for (name, hint), k in zip(types.items(), kinds, strict=True):
            kind = "t" if name in ts_cols else k.lower() if k.lower() in "ibf" else "s"
            strategies.append(_value(kind, "None" in hint))
        rows = data.draw(st.lists(st.tuples(*strategies).map(cls._make), max_size=6))  # type: ignore[attr-defined]
        python = writers.row_formatter(table, int(digits)).batch(rows).encode()  # type: ignore[attr-defined]
        assert fastpaths.compiled_csv() is not None
        compiled = writers.batch_formatter(table, int(digits))(rows)
        assert compiled == python, table


@needs_compiled
def test_csv_formatter_is_the_compiled_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from dissect.output import writers

    assert isinstance(writers.batch_formatter("ws_frames", 6), functools.partial)
    monkeypatch.setattr(fastpaths, "COMPILED_CSV", False)
    assert not isinstance(writers.batch_formatter("ws_frames", 6), functools.partial)


# -- the pcap record walk ----------------------------------------------------------------------------


@needs_compiled
@settings(max_examples=80, deadline=None)
@given(st.data())
def test_damaged_pcap_files_identical_on_both_walks(data: st.DataObject) -> None:
    """A pcap file (either byte order, micro- or nanoseconds, gzip or not) read in small chunks,
    damaged at the file level: record headers overwritten (a length beyond any record, a caplen
    above the wire length), fractions of a second out of range, the file cut anywhere. The
    compiled record walk and CaptureReader._pcap give the same rows and summary (warnings, counts
    and where the corruption was)."""

    request, response = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    conv = craft.handshake_and_data(c2s=[request] * data.draw(st.integers(1, 4)),
                                    s2c=[response] * data.draw(st.integers(1, 4)))
    nano = data.draw(st.booleans())
    big = data.draw(st.booleans())
    snaplen = data.draw(st.sampled_from([262144, 60]))
    raw = bytearray(craft.write_pcap([(t, craft.ethernet(ip)) for t, ip in conv], nano=nano, big_endian=big,
                                     snaplen=snaplen))
    # where the records start
    starts, off = [], 24
    while off + 16 <= len(raw):
        starts.append(off)
        incl = int.from_bytes(raw[off + 8 : off + 12], "big" if big else "little")
        off += 16 + incl
    order = "big" if big else "little"
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.sampled_from(starts))
        how = data.draw(st.sampled_from(["huge", "caplen", "frac", "garbage"]))
        if how == "huge":
            raw[at + 8 : at + 12] = (20 << 20).to_bytes(4, order)
        elif how == "caplen":
            orig = int.from_bytes(raw[at + 12 : at + 16], order)
            raw[at + 8 : at + 12] = (orig + 7).to_bytes(4, order)
        elif how == "frac":
            raw[at + 4 : at + 8] = (2_000_000_000 if nano else 1_500_000).to_bytes(4, order)
        else:
            raw[at : at + 16] = bytes(data.draw(st.binary(min_size=16, max_size=16)))
    _damaged_file_both_ways(data, raw, 24, "pcap")


# -- the Engine.IO/Socket.IO scan (fastpaths.COMPILED_SIO_SCAN) --------------------------------------

_SIO_NAMES = st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=10),
                       st.text(max_size=6),
                       st.sampled_from(["connect", "disconnect", "newListener", "x\\y", 'q"', "", "ev"]))
_SIO_IDS = st.one_of(st.just(""), st.integers(0, 4).map(str),
                     st.sampled_from(["007", "9999999999999999", "12345678901234567", " 1"]))
_SIO_TAILS = st.sampled_from(["]", ",1]", ',{"a":[1,"]"]}]', "", " [1]", '"x"]'])


@st.composite
def _sio_message(draw: st.DrawFn) -> tuple[int, bytes]:
    """One WebSocket data message of an Engine.IO session: opcode and payload."""
    kind = draw(st.sampled_from(["event"] * 6 + ["ack"] * 3 + [
        "binary-event", "attachment", "recover", "connect", "disconnect", "connect-error", "ping", "pong",
        "noop", "close", "junk", "plain"]))
    ack = draw(_SIO_IDS)
    if kind == "event":
        name = draw(_SIO_NAMES).encode("utf-8", "surrogatepass")
        return 1, b"42" + ack.encode() + b'["' + name + b'"' + draw(_SIO_TAILS).encode()
    if kind == "ack":
        return 1, b"43" + ack.encode() + b"[" + draw(_SIO_TAILS).encode()
    if kind == "binary-event":
        return 1, b'451-["b",{"_placeholder":true,"num":0}]'
    if kind == "attachment":
        return 2, bytes(draw(st.binary(max_size=8)))
    if kind == "recover":  # connection-state recovery asked: s2c EVENTs take the general path
        return 1, b'40{"pid":"p1","offset":"o1"}'
    if kind == "connect":
        return 1, b'40{"sid":"s2"}'
    if kind == "disconnect":
        return 1, draw(st.sampled_from([b"41", b"41/admin,"]))
    if kind == "connect-error":
        return 1, b'44{"message":"no"}'
    if kind == "junk":
        return 1, b"4" + draw(st.binary(max_size=10))
    if kind == "plain":
        return 1, draw(st.binary(max_size=10))
    return 1, {"ping": b"2", "pong": b"3", "noop": b"6", "close": b"1"}[kind]


def _sio_ws_rows(version: int, messages: list[tuple[int, int, bytes]], cuts: list[int],
                 scan: bool, fast: bool = True) -> tuple[dict[str, list[tuple]], dict[str, int]]:
    """An Engine.IO session over a WebSocket: ``messages`` (direction, opcode, payload) framed (c2s
    masked), fed as one stream per direction cut at ``cuts``; the rows of every table, and counters."""
    from dissect.protocols.engineio import EngineIO
    from dissect.protocols.websocket import WebSocketDissector
    from dissect.records import C2S, S2C, Outbox

    saved = fastpaths.COMPILED_SIO_SCAN, fastpaths.SIO_EVENT_HEADER
    fastpaths.COMPILED_SIO_SCAN, fastpaths.SIO_EVENT_HEADER = scan, fast
    try:
        outbox = Outbox()
        e = EngineIO(outbox)
        ws = e.websocket_opened(1, 10, 20, f"/socket.io/?EIO={version}&transport=websocket")
        assert ws.compiled_scan is (scan and fast)
        dis = WebSocketDissector(1, outbox, upper=ws)
        opened = [(S2C, 1, OPEN if version == 4 else b"0" + OPEN[1:]), (C2S, 1, b"40"), (S2C, 1, b'40{"sid":"x"}')]
        ts = 100
        for d, op, payload in opened + messages:
            wire = craft.ws_frame(op, payload, b"mask" if d == C2S else None)
            parts = [wire]
            if cuts:  # split this frame, or send it with the next bytes
                k = cuts[ts % len(cuts)] % (len(wire) + 1)
                parts = [wire[:k], wire[k:]]
            for part in parts:
                outbox.frame += 1
                dis.feed(d, ts, part)
                ts += 1
        dis.finish(ts)
        e.finish(ts + 1)
    finally:
        fastpaths.COMPILED_SIO_SCAN, fastpaths.SIO_EVENT_HEADER = saved
    tables = {t: list(getattr(outbox, t)) for t in outbox.TABLES}
    return tables, dict(outbox.counters)


@needs_compiled
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([4, 4, 3]), st.lists(st.tuples(st.integers(0, 1), _sio_message()), max_size=16),
       st.one_of(st.just([]), st.lists(st.integers(0, 300), min_size=1, max_size=4)))
def test_sio_scan_identical_compiled_python_and_general(
    version: int, messages: list[tuple[int, tuple[int, bytes]]], cuts: list[int]
) -> None:
    """Socket.IO sessions (v5 and v4) over WebSocket: EVENTs with and without ack ids (reused, too
    long, odd names: reserved, escaped, non-ASCII, empty), ACKs answered or not, binary events and
    their attachments, recovery asked, CONNECT, DISCONNECT, CONNECT_ERROR, Engine.IO pings, closes,
    junk; frames whole or cut. The compiled scan, the Python fast path and the general path give
    the same rows of every table."""
    msgs = [(d, op, payload) for d, (op, payload) in messages]
    compiled = _sio_ws_rows(version, msgs, cuts, scan=True)
    assert compiled == _sio_ws_rows(version, msgs, cuts, scan=False)
    assert compiled == _sio_ws_rows(version, msgs, cuts, scan=False, fast=False)
    assert len(compiled[0]["sio_packets"]) >= 3  # the open and the CONNECT pair at least


@needs_compiled
def test_sio_scan_takes_events_and_acks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled scan makes the EVENT and ACK rows itself: ws_message is called for the rest."""
    from dissect.protocols.engineio.websocket import EngineIOWebSocket

    calls = []
    real = EngineIOWebSocket.ws_message

    def spy(self, direction, ts, opcode, payload):  # type: ignore[no-untyped-def]
        calls.append(payload)
        return real(self, direction, ts, opcode, payload)

    monkeypatch.setattr(EngineIOWebSocket, "ws_message", spy)
    msgs = [(0, 1, b'421["ask",{"a":1}]'), (1, 1, b"431[true]"), (1, 1, b'42["news",1]'), (0, 1, b"2")]
    tables, _ = _sio_ws_rows(4, msgs, [], scan=True)
    rows = tables["sio_packets"]
    assert [(r.sio_type, r.event, r.ack_id, r.acked_event) for r in rows[3:]] == [
        ("EVENT", "ask", 1, None), ("ACK", None, 1, "ask"), ("EVENT", "news", None, None), ("", None, None, None)]
    assert rows[4].ack_latency_ms == 1 / 1e6 and rows[4].anomaly == ""
    assert rows[3].payload_digest == zlib.crc32(b'["ask",{"a":1}]')
    assert calls == [OPEN, b"40", b'40{"sid":"x"}', b"2"]  # the EVENTs and the ACK never reached ws_message


@needs_compiled
def test_corpus_rows_identical_with_and_without_the_sio_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    sio = sorted(CAPTURES.glob("sio*.pcap*"))
    scanned = _rows(sio)
    monkeypatch.setattr(fastpaths, "COMPILED_SIO_SCAN", False)
    assert _rows(sio) == scanned
    assert sum(1 for r in scanned[0]["sio_packets"] if r.sio_type == "EVENT") > 50


@needs_compiled
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_compiled_crc32_is_zlibs(data: bytes) -> None:
    assert fastpaths.compiled_core().crc32(data) == zlib.crc32(data)


# -- sio_broadcasts candidates (fastpaths.COMPILED_FANOUT) -------------------------------------------

_FAN_ROW = st.tuples(
    st.one_of(st.integers(0, 3 * 10**9), st.integers(-(1 << 64), 1 << 64), st.floats(0, 1e10)),  # ts
    st.sampled_from(["s2c", "s2c", "c2s"]),
    st.sampled_from(["EVENT", "EVENT", "BINARY_EVENT", "ACK", ""]),
    st.one_of(st.none(), st.sampled_from(["/", "/chat"]), st.just("")),  # namespace
    st.one_of(st.none(), st.sampled_from(["a", "b", "é"])),  # event
    st.one_of(st.none(), st.integers(0, (1 << 32) - 1), st.just(float("nan"))),  # payload_digest
    st.one_of(st.none(), st.integers(0, 1 << 40), st.floats(0, 100),
              st.sampled_from([(1 << 31) - 1, 1 << 31, (1 << 31) + 5, (1 << 40) + 3])),  # payload_bytes
    st.one_of(st.none(), st.sampled_from(["sid1", "sid2"]), st.just(float("nan"))),  # eio_sid
    st.integers(1, 3),  # session_id
)
_FAN_COLS = ("ts", "direction", "sio_type", "namespace", "event", "payload_digest", "payload_bytes", "eio_sid",
             "session_id")


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_FAN_ROW, max_size=30), max_size=4), st.booleans())
def test_fanout_candidates_identical_compiled_and_python(batches: list[list[tuple]], as_tuples: bool) -> None:
    """Batches of sio_packets columns (lists, or other sequences) with every kind of cell (missing,
    NaN, out-of-range times, other directions and types, sizes past 31 bits): the compiled loop
    collects the candidates, kinds and socket keys the Python loop collects."""
    from dissect.output.broadcasts import FanoutCandidates

    got = []
    saved = fastpaths.COMPILED_FANOUT
    try:
        for compiled in (True, False):
            fastpaths.COMPILED_FANOUT = compiled
            fc = FanoutCandidates()
            for rows in batches:
                cols = {c: [r[i] for r in rows] for i, c in enumerate(_FAN_COLS)}
                if as_tuples:
                    cols = {c: tuple(v) for c, v in cols.items()}  # type: ignore[misc]
                fc.add_columns(cols)
            got.append((list(fc.ts), list(fc.digest), list(fc.socket), list(fc.kind), fc.kinds, fc.groups()))
    finally:
        fastpaths.COMPILED_FANOUT = saved
    assert got[0] == got[1]


# -- the pcapng block walk ---------------------------------------------------------------------------


def _ticks(t: float, res: int | None) -> int:
    if res is None:
        return int(t * 1e6)
    if res & 0x80:
        return int(t * (1 << (res & 0x7F)))
    return int(t * 10**res)


@needs_compiled
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_pcapng_files_identical_on_both_walks(data: st.DataObject) -> None:
    """A pcapng file (either byte order; sections of interfaces of two link types and timestamp
    resolutions of micro-, nano-, milliseconds and 2^-20 s; packets interleaved between them,
    simple packet blocks, unknown blocks) read in small chunks, damaged at the block level: a block
    length beyond any block or not a multiple of 4, an unknown interface, a captured length past
    the block, a wire length above the captured one (cut by the snaplen), garbage, the file cut
    anywhere. The compiled block walk (PcapngWalk) and CaptureReader._pcapng give the same rows
    and summary (warnings, counts, link types and where the corruption was)."""

    request, response = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    conv = craft.handshake_and_data(c2s=[request] * data.draw(st.integers(1, 4)),
                                    s2c=[response] * data.draw(st.integers(1, 4)))
    big = data.draw(st.booleans())
    sections: list[list[tuple[str, object]]] = []
    for _ in range(data.draw(st.integers(1, 2))):
        ifaces = data.draw(st.lists(st.tuples(st.sampled_from([1, 113]), st.sampled_from([None, 9, 3, 0x80 | 20])),
                                    min_size=1, max_size=3))
        items: list[tuple[str, object]] = [("idb", i) for i in ifaces]
        for t, ip in conv:
            k = data.draw(st.integers(0, len(ifaces) - 1))
            lt, res = ifaces[k]
            frame = craft.ethernet(ip) if lt == 1 else craft.sll(ip)
            kind = data.draw(st.sampled_from(["epb"] * 6 + ["spb", "unknown"]))
            if kind == "epb":
                items.append(("epb", (k, _ticks(t, res), frame)))
            elif kind == "spb" and ifaces[0][0] == lt:
                items.append(("spb", frame))
            else:
                items.append(("unknown", None))
        sections.append(items)
    raw = bytearray(craft.pcapng(sections, big_endian=big))
    order = "big" if big else "little"
    blocks, off = [], 0
    while off + 12 <= len(raw):
        btype = int.from_bytes(raw[off : off + 4], order)
        blen = int.from_bytes(raw[off + 4 : off + 8], order)
        if btype == 6:
            blocks.append(off)
        off += blen
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.sampled_from(blocks))
        how = data.draw(st.sampled_from(["huge", "odd", "iface", "incl", "orig", "garbage"]))
        blen = int.from_bytes(raw[at + 4 : at + 8], order)
        if how == "huge":
            raw[at + 4 : at + 8] = (20 << 20).to_bytes(4, order)
        elif how == "odd":
            raw[at + 4 : at + 8] = (blen + 2).to_bytes(4, order)
        elif how == "iface":
            raw[at + 8 : at + 12] = (7).to_bytes(4, order)
        elif how == "incl":
            raw[at + 20 : at + 24] = blen.to_bytes(4, order)
        elif how == "orig":
            orig = int.from_bytes(raw[at + 24 : at + 28], order)
            raw[at + 24 : at + 28] = (orig + 100).to_bytes(4, order)
        else:
            raw[at + 8 : at + 28] = bytes(data.draw(st.binary(min_size=20, max_size=20)))
    _damaged_file_both_ways(data, raw, 40, "pcapng")


@needs_compiled
def test_pcapng_goes_through_the_compiled_walk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A pcapng file's common blocks are walked in C: the reader's Python walk never runs, and its
    block method reads only the other blocks (section header, interface descriptions)."""
    from dissect.capture.reader import CaptureReader

    def refuse(*a: object) -> None:
        raise AssertionError("the Python walk ran")

    calls: list[int] = []
    block = CaptureReader.pcapng_block

    def counting(self: CaptureReader, data: bytes, off: int, n: int) -> tuple[int, object]:
        calls.append(off)
        return block(self, data, off, n)

    monkeypatch.setattr(CaptureReader, "_pcapng", refuse)
    monkeypatch.setattr(CaptureReader, "pcapng_block", counting)
    rows = _rows([CAPTURES / "sio2_polling.pcapng"])[0]
    assert len(rows["http"]) > 5
    assert 0 < len(calls) < 10


# -- summary.json's batch counts (fastpaths.COMPILED_SUMMARY) ----------------------------------------


def _summary_both(batches: list[tuple[str, list[Any], str]], exact_limit: int = 1_000_000,
                  counter_limit: int = 10_000) -> list[tuple[list[str], str, str]]:
    """Each path's builder fed ``batches`` (table, rows, given as a list, a tuple or an iterator):
    the errors met (by batch), the summary, the broadcasts."""
    from dissect.output.summary import SummaryBuilder

    got = []
    saved = fastpaths.COMPILED_SUMMARY
    try:
        for compiled in (True, False):
            fastpaths.COMPILED_SUMMARY = compiled
            b = SummaryBuilder(exact_limit=exact_limit, counter_limit=counter_limit)
            errors = []
            for table, rows, container in batches:
                try:
                    b.add(table, tuple(rows) if container == "tuple" else iter(rows) if container == "iter" else rows)
                    errors.append("")
                except Exception as e:  # noqa: BLE001 - a damaged cell: both paths must meet it alike
                    errors.append(type(e).__name__)
            try:
                bc = repr(b.broadcasts())
            except Exception as e:  # noqa: BLE001
                bc = type(e).__name__
            got.append((errors, repr(b.result()), bc))
    finally:
        fastpaths.COMPILED_SUMMARY = saved
    return got


@needs_compiled
def test_corpus_summary_identical_with_and_without_compiled_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """summary.json of every corpus capture (one run each, rows too), the C batch counts on and off."""
    for p in CORPUS:
        monkeypatch.setattr(fastpaths, "COMPILED_SUMMARY", True)
        on = _rows([p])
        monkeypatch.setattr(fastpaths, "COMPILED_SUMMARY", False)
        off = _rows([p])
        assert on == off, p
    sio = sorted(CAPTURES.glob("sio*.pcap*"))
    monkeypatch.setattr(fastpaths, "COMPILED_SUMMARY", True)
    rows, summary = _rows(sio)
    assert json.loads(summary)["sio_packets"]["events_total"] > 50
    assert json.loads(summary)["ws_frames"]["count"] == len(rows["ws_frames"]) > 100


@needs_compiled
def test_compiled_summary_counts_the_common_rows_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """The corpus's rows are counted in C, every figure (none left to the column code), and the
    candidates are read from the rows."""
    from dissect.output import batch_counts
    from dissect.output.broadcasts import FanoutCandidates
    from dissect.output.summary import FIGURES, SummaryBuilder
    from dissect.records import TABLES

    rows, summary = _rows(sorted(CAPTURES.glob("sio*.pcap*")))

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the column code ran")

    for name in ("combos", "cells", "total", "true", "values"):
        monkeypatch.setattr(batch_counts.ColumnCounts, name, refuse)
    monkeypatch.setattr(FanoutCandidates, "add_columns", refuse)
    b = SummaryBuilder()
    for table, figures in FIGURES.items():
        assert rows[table], table
        counts = batch_counts.RowCounts.count(TABLES[table]._fields, rows[table], figures)  # type: ignore[attr-defined]
        assert counts is not None
        assert len(counts.got) == sum(len(f) for f in figures), (table, sorted(counts.got))
        b.add(table, rows[table])
    assert b.result()["sio_packets"]["count"] == len(rows["sio_packets"])
    assert len(b.broadcasts()) == json.loads(summary)["sio_broadcasts"]["count"] > 0


def _odd_cells() -> st.SearchStrategy[Any]:
    """Cells as damaged rows and the API's readers hold them: missing, NaN, infinities, -0.0, bools,
    big ints, numeric text, numpy scalars, pd.NA."""
    import numpy as np
    import pandas as pd

    return st.one_of(
        st.none(), st.just(float("nan")), st.floats(), st.integers(-(1 << 70), 1 << 70), st.booleans(),
        st.text(max_size=3),
        st.sampled_from([np.int64(3), np.float64("nan"), np.float64(2.5), np.bool_(True), pd.NA, -0.0, 1.0, 0, 1,
                         float("inf"), float("-inf"), 1 << 63, "1", "1000", "EVENT", "s2c"]))


def _fresh(values: list[Any]) -> st.SearchStrategy[Any]:
    """One of ``values``, a text one sometimes as a new object equal to it (not the same object)."""
    return st.sampled_from(values).flatmap(
        lambda v: st.sampled_from([v, "".join(list(v))]) if isinstance(v, str) and len(v) > 1 else st.just(v))


_TYPICAL: dict[str, list[Any]] = {
    "direction": ["c2s", "s2c"],
    "opcode_name": ["text", "binary", "close", "ping", "continuation"],
    "close_code": [None, 1000, 1005, 4000],
    "compressed": [True, False],
    "frames": [1, 2, 3],
    "anomaly": ["", "", "bad_close_code=1005", "truncated; gap:3", None],
    "sio_type": ["EVENT", "BINARY_EVENT", "ACK", "CONNECT", "", None],
    "namespace": ["/", "/chat", None, ""],
    "event": ["a", "bb", "é", None],
    "eio_type": ["message", "ping", "pong"],
    "transport": ["websocket", "polling"],
    "ack_latency_ms": [None, 1.5, 0.25, 0, 1e-6],
    "eio_sid": ["sid1", "sid2", None],
}
# Cells the candidate loops turn into numbers (int()): only what both loops take alike.
_FANOUT_CELLS: dict[str, st.SearchStrategy[Any]] = {
    "ts": st.one_of(st.integers(0, 3 * 10**9), st.integers(-(1 << 64), 1 << 64), st.floats(0, 1e10)),
    "payload_digest": st.one_of(st.none(), st.integers(0, (1 << 32) - 1), st.just(float("nan"))),
    "payload_bytes": st.one_of(st.none(), st.integers(0, 1 << 40), st.floats(0, 100)),
    "eio_sid": st.one_of(st.none(), st.sampled_from(["sid1", "sid2"]), st.just(float("nan"))),
    "session_id": st.integers(1, 3),
}


@st.composite
def _summary_batch(draw: st.DrawFn) -> tuple[str, list[Any], str]:
    from dissect.records import TABLES

    table = draw(st.sampled_from(["ws_frames", "ws_messages", "sio_packets", "sio_packets"]))
    fields = TABLES[table]._fields  # type: ignore[attr-defined]
    odd = draw(st.sampled_from([0.0, 0.05, 0.3]))  # how many cells are damaged
    typical = {f: _fresh(v) for f, v in _TYPICAL.items()}
    rows: list[Any] = []
    for _ in range(draw(st.integers(0, 25))):
        cells = []
        for f in fields:
            if table == "sio_packets" and f in _FANOUT_CELLS:
                cells.append(draw(_FANOUT_CELLS[f]))
            elif odd and draw(st.floats(0, 1)) < odd:
                cells.append(draw(_odd_cells()))
            elif f in typical:
                cells.append(draw(typical[f]))
            else:
                cells.append(draw(st.one_of(st.integers(0, 1000), st.none())))
        row: Any = tuple(cells)
        shape = draw(st.sampled_from(["tuple", "tuple", "named", "short"]))
        if shape == "named":
            row = TABLES[table]._make(cells)
        elif shape == "short" and odd:
            row = row[:-1]  # not a row of the table: both paths raise
        rows.append(row)
    if rows and draw(st.booleans()):  # runs of one row's objects (a key repeated by identity)
        rows = [r for r in rows for _ in range(draw(st.integers(1, 4)))]
    return table, rows, draw(st.sampled_from(["list", "list", "tuple", "iter"]))


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_summary_batch(), max_size=5), st.sampled_from([(1_000_000, 10_000), (4, 3)]))
def test_summary_identical_compiled_and_python(batches: list[tuple[str, list[Any], str]],
                                               limits: tuple[int, int]) -> None:
    """Batches of ws_frames, ws_messages and sio_packets rows with damaged cells of every kind (and
    small limits: the "(other)" key and the log histogram): the C batch counts and the column code
    give the same summary, the same broadcasts, and the same errors (a row too short)."""
    on, off = _summary_both(batches, *limits)
    assert on == off
