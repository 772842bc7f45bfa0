"""The WebSocket whole-frame fast paths (fastpaths.WS_WHOLE_FRAME, and WS_DEFLATE_WHOLE_FRAME for
compressed frames) give exactly the rows of the general frame-by-frame reader they bypass: on the
corpus and on generated conversations (compressed ones with broken deflate data, final blocks and
size caps)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect import fastpaths
from dissect.api import run
from dissect.output.writers import MemoryCollector
from dissect.protocols.websocket import DeflateParams, WebSocketDissector
from dissect.records import C2S, S2C, Outbox

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
CORPUS = sorted(str(p) for p in CAPTURES.glob("*.pcap*"))
TAKEOVER = DeflateParams(False, False, 15, 15)
NO_TAKEOVER = DeflateParams(True, True, 15, 15)


class Recorder:
    """A WsUpper that keeps what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def ws_message(self, direction: int, ts: int, opcode: int, payload: bytes | None) -> None:
        self.calls.append((direction, ts, opcode, payload))

    def ws_closed(self, ts: int, close: tuple[int, int, int | None] | None = None,
                  transport_end: tuple[int, int, str] | None = None) -> None:
        self.calls.append(("closed", ts, close, transport_end))


@pytest.fixture
def general_frames(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the frames that took the general reader (each begins with _begin_frame)."""
    count = [0]
    begin = WebSocketDissector._begin_frame

    def counting(self: WebSocketDissector, *args: object) -> None:
        count[0] += 1
        begin(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(WebSocketDissector, "_begin_frame", counting)
    yield count


def corpus_rows() -> dict[str, list[tuple]]:
    m = MemoryCollector()
    run(CORPUS, [m])
    return m.rows


def test_corpus_rows_identical_with_and_without_whole_frames(
    monkeypatch: pytest.MonkeyPatch, general_frames: list[int]
) -> None:
    assert len(CORPUS) > 10
    fast = corpus_rows()
    frames = len(fast["ws_frames"])
    taken = frames - general_frames[0]
    assert taken > 200 and taken > frames // 2  # the fast path did most of the work
    general_frames[0] = 0
    monkeypatch.setattr(fastpaths, "WS_DEFLATE_WHOLE_FRAME", False)
    deflate_fast = corpus_rows()
    assert deflate_fast == fast
    compressed = general_frames[0] - (frames - taken)  # the corpus's compressed whole frames
    assert compressed > 50
    general_frames[0] = 0
    monkeypatch.setattr(fastpaths, "WS_WHOLE_FRAME", False)
    assert corpus_rows() == fast
    assert general_frames[0] == frames  # every frame took the general reader


# ------------------------------------------------------------------ generated conversations


def frame(op: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None, rsv1: bool = False) -> bytes:
    """An RFC 6455 5.2 frame with the minimal length encoding."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | op
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        hdr = bytes([b0, mbit | n])
    elif n < 65536:
        hdr = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask is None:
        return hdr + payload
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
    return hdr + mask + masked


payloads = st.one_of(
    st.text(max_size=40).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
    st.sampled_from([b"a" * 125, b"b" * 126, "é".encode() * 100, b"\xff" * 300, b"c" * 70000]),
)


@st.composite
def conversations(draw: st.DrawFn) -> tuple[DeflateParams | None, list[tuple[int, int, bytes]]]:
    """(deflate, [(direction, gap length or 0, bytes)]): messages both ways (c2s masked, s2c not,
    now and then the wrong way), fragmented or not, compressed or not, cut into feeds in random
    places, with a lost stretch now and then."""
    deflate = draw(st.sampled_from([None, TAKEOVER, NO_TAKEOVER]))
    wires = {C2S: bytearray(), S2C: bytearray()}
    compressors: dict[int, zlib._Compress | None] = {C2S: None, S2C: None}
    for _ in range(draw(st.integers(0, 10))):
        d = draw(st.sampled_from([C2S, S2C]))
        wrong_mask = draw(st.integers(0, 19)) == 13  # RFC 6455 5.1 broken: the general reader's job
        masked = (d == C2S) != wrong_mask
        mask = draw(st.binary(min_size=4, max_size=4)) if masked else None
        kind = draw(st.sampled_from(["text"] * 8 + ["binary"] * 6 + ["ping", "pong", "close"]))
        if kind in ("ping", "pong", "close"):
            body = draw(st.binary(max_size=20))
            if kind == "close" and draw(st.booleans()):
                body = struct.pack(">H", draw(st.sampled_from([1000, 1001, 3000, 999]))) + body
            wires[d] += frame({"ping": 9, "pong": 10, "close": 8}[kind], body, mask=mask)
            continue
        op = 1 if kind == "text" else 2
        data = draw(payloads)
        compressed = deflate is not None and draw(st.integers(0, 2)) == 1
        if compressed and deflate is not None:
            comp = compressors[d]
            takeover = not (deflate.client_no_context_takeover if d == C2S else deflate.server_no_context_takeover)
            if comp is None or not takeover:
                comp = compressors[d] = zlib.compressobj(wbits=-15)
            end = draw(st.sampled_from(["sync"] * 6 + ["final", "broken", "stored-short", "cut"]))
            if end == "final":  # a BFINAL block (7.2.3.4): the receiver restarts with the same window
                data = comp.compress(data) + comp.flush(zlib.Z_FINISH)
                compressors[d] = None
            elif end == "stored-short" and len(data) >= 4:
                # a stored block 4 bytes short: the 7.2.2 tail inflated at the end of the message is
                # its last 4 bytes (the inflater's output at the end is not empty)
                stored = zlib.compressobj(level=0, wbits=-15)
                data = (stored.compress(data) + stored.flush(zlib.Z_SYNC_FLUSH))[:-9]
                compressors[d] = None
            else:
                data = (comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]  # RFC 7692 7.2.1
                if end == "cut":  # the last bits of the last block come from the tail: fails at the end
                    data = data[: -draw(st.integers(1, 5))]
            if end == "broken" and data:  # not a deflate stream any more: inflate-failed
                at = draw(st.integers(0, len(data) - 1))
                data = data[:at] + bytes([data[at] ^ 0xFF]) + b"\xff\xff" + data[at + 1 :]
        pieces = draw(st.sampled_from([1, 1, 1, 2, 3]))
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), min_size=pieces - 1, max_size=pieces - 1)))
        bounds = [0, *cuts, len(data)]
        for i in range(pieces):
            if i and draw(st.integers(0, 4)) == 2:
                wires[d] += frame(9, b"between", mask=mask)  # a control frame between fragments
            wires[d] += frame(op if i == 0 else 0, data[bounds[i] : bounds[i + 1]], fin=i == pieces - 1,
                              mask=mask, rsv1=compressed and i == 0)
    feeds: list[tuple[int, int, bytes]] = []
    pending = {d: bytes(w) for d, w in wires.items()}
    while pending[C2S] or pending[S2C]:
        d = draw(st.sampled_from([d for d in (C2S, S2C) if pending[d]]))
        size = draw(st.sampled_from([100000, 100000, 200, 30, 7, 2, 1]))
        chunk, pending[d] = pending[d][:size], pending[d][size:]
        lost = draw(st.integers(0, 9)) == 7  # (hypothesis favours the ends of a range)
        feeds.append((d, len(chunk) if lost else 0, b"" if lost else chunk))
    return deflate, feeds


def rows(deflate: DeflateParams | None, feeds: list[tuple[int, int, bytes]], upper: bool, cap: int,
         fast: bool, deflate_fast: bool | None = None) -> tuple[list[tuple], list[tuple], list[tuple] | None]:
    saved = fastpaths.WS_WHOLE_FRAME, fastpaths.WS_DEFLATE_WHOLE_FRAME
    fastpaths.WS_WHOLE_FRAME = fast
    fastpaths.WS_DEFLATE_WHOLE_FRAME = fast if deflate_fast is None else deflate_fast
    try:
        outbox = Outbox()
        rec = Recorder() if upper else None
        ws = WebSocketDissector(7, outbox, deflate, rec, max_message_bytes=cap)
    finally:
        fastpaths.WS_WHOLE_FRAME, fastpaths.WS_DEFLATE_WHOLE_FRAME = saved
    for ts, (d, lost, chunk) in enumerate(feeds):
        if lost:
            ws.gap(d, ts, lost)
        else:
            ws.feed(d, ts, chunk)
    ws.finish(len(feeds))
    return list(outbox.ws_frames), list(outbox.ws_messages), rec.calls if rec else None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(conversations(), st.booleans(), st.sampled_from([16 << 20, 16 << 20, 100, 0]))
def test_generated_rows_identical(
    conversation: tuple[DeflateParams | None, list[tuple[int, int, bytes]]], upper: bool, cap: int
) -> None:
    """Both fast paths against the general reader; and WS_DEFLATE_WHOLE_FRAME alone switched
    (the uncompressed fast path on both sides)."""
    deflate, feeds = conversation
    fast = rows(deflate, feeds, upper, cap, True)
    assert fast == rows(deflate, feeds, upper, cap, False)
    assert fast == rows(deflate, feeds, upper, cap, True, False)


def test_compressed_whole_frames_take_the_deflate_fast_path(general_frames: list[int]) -> None:
    """A compressed conversation of whole frames (context takeover, then none): every data frame
    takes the fast path; with its switch off, every one takes the general reader; the same rows,
    the inflated text in the preview and handed to the upper layer."""
    texts = [f'42["update",{{"n":{i},"data":"{"y" * (i % 50)}"}}]'.encode() for i in range(40)]
    for params in (TAKEOVER, NO_TAKEOVER):
        comp = zlib.compressobj(wbits=-15)
        wire = b""
        for t in texts:
            if params is NO_TAKEOVER:
                comp = zlib.compressobj(wbits=-15)
            wire += frame(1, (comp.compress(t) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4], rsv1=True)
        feeds = [(S2C, 0, wire)]
        general_frames[0] = 0
        fast = rows(params, feeds, True, 16 << 20, True)
        assert general_frames[0] == 0
        assert rows(params, feeds, True, 16 << 20, True, False) == fast
        assert general_frames[0] == len(texts)
        frames_, messages, calls = fast
        assert [f[13] for f in frames_] == [True] * len(texts)  # compressed
        assert [m[10] for m in messages] == [t.decode()[:64] for t in texts]
        assert [m[8] for m in messages] == [len(t) for t in texts]
        assert calls is not None and [c[3] for c in calls if c[0] != "closed"] == texts
