"""Tests of dissect.protocols.websocket: RFC 6455 framing, RFC 7692 permessage-deflate, resync, limits."""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect.protocols import websocket as ws
from dissect.protocols.websocket import DeflateParams, WebSocketDissector, accept_key, negotiate
from dissect.records import C2S, S2C, Outbox, WsFrame, WsMessage

TAKEOVER = DeflateParams(False, False, 15, 15)
NO_TAKEOVER = DeflateParams(True, True, 15, 15)


# ----------------------------------------------------------------------------- helpers


class Recorder:
    """A WsUpper that keeps what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int, bytes | None]] = []

    def ws_message(self, direction: int, ts: int, opcode: int, payload: bytes | None) -> None:
        self.calls.append((direction, ts, opcode, payload))

    def payloads(self, direction: int) -> list[bytes | None]:
        return [p for d, _, _, p in self.calls if d == direction]


def frame(
    op: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    mask: bytes | None = None,
    rsv: int = 0,
    length_form: int | None = None,
    length: int | None = None,
) -> bytes:
    """An RFC 6455 5.2 frame; ``length_form`` 7/16/64 forces the length encoding."""
    n = len(payload) if length is None else length
    form = length_form or (7 if n < 126 else 16 if n < 65536 else 64)
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    mbit = 0x80 if mask is not None else 0
    if form == 7:
        hdr = bytes([b0, mbit | n])
    elif form == 16:
        hdr = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        hdr += mask
    return hdr + payload


def cmask(op: int, payload: bytes = b"", **kw: object) -> bytes:
    """A client (masked) frame."""
    return frame(op, payload, mask=b"\x37\xfa\x21\x3d", **kw)  # type: ignore[arg-type]


def run(
    feeds: list[tuple[int, bytes]] | list[tuple[int, int, bytes]],
    deflate: DeflateParams | None = None,
    max_message_bytes: int = 16 << 20,
    finish: bool = True,
) -> tuple[Outbox, Recorder]:
    """Feed (direction, data) or (direction, ts, data) items, then finish."""
    outbox = Outbox()
    rec = Recorder()
    d = WebSocketDissector(3, outbox, deflate, rec, max_message_bytes)
    ts = 0
    for item in feeds:
        if len(item) == 2:
            ts += 1
            direction, data = item  # type: ignore[misc]
        else:
            direction, ts, data = item  # type: ignore[misc]
        d.feed(direction, ts, data)
    if finish:
        d.finish(ts + 1)
    check_invariants(outbox)
    return outbox, rec


def tags(row: WsFrame | WsMessage) -> set[str]:
    return set(row.anomaly.split(";")) if row.anomaly else set()


def check_invariants(outbox: Outbox) -> None:
    frames, msgs = outbox.ws_frames, outbox.ws_messages
    for f in frames:
        assert type(f) is WsFrame and len(f) == len(WsFrame._fields)
        assert f.direction in ("c2s", "s2c")
        assert f.opcode_name == ws.OPCODE_NAMES[f.opcode]
        assert tags(f) <= set(ws.ANOMALY_TAGS), f.anomaly
    for m in msgs:
        assert type(m) is WsMessage and len(m) == len(WsMessage._fields)
        assert m.direction in ("c2s", "s2c")
        assert m.frames >= 1 and m.ts_first <= m.ts_last
        assert tags(m) <= set(ws.ANOMALY_TAGS), m.anomaly
        assert m.payload_bytes is None or m.payload_bytes >= 0
        assert len(m.text_preview) <= 64
    assert [f.frame_index for f in frames] == list(range(len(frames)))
    assert [m.message_index for m in msgs] == list(range(len(msgs)))


def check_complete(outbox: Outbox) -> None:
    """After finish: every frame belongs to exactly one message."""
    assert sum(m.frames for m in outbox.ws_messages) == len(outbox.ws_frames)
    assert sum(m.wire_bytes for m in outbox.ws_messages) == sum(
        f.header_len + f.payload_len for f in outbox.ws_frames
    )


def deflate_raw(data: bytes, co: zlib._Compress | None = None) -> bytes:
    """RFC 7692 7.2.1: compress, sync-flush, drop the trailing 00 00 ff ff."""
    co = co or zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    out = co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i = [], 0
    for s in sizes:
        if i >= len(data):
            break
        out.append(data[i : i + s])
        i += s
    if i < len(data):
        out.append(data[i:])
    return out


# ------------------------------------------------------------------------ handshake


def test_accept_key_rfc6455_vector() -> None:
    # RFC 6455 section 1.3
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_negotiate_valid_with_subprotocol_and_deflate() -> None:
    req = {
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-protocol": "chat, superchat",
        "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
    }
    resp = {
        "sec-websocket-accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        "sec-websocket-protocol": "chat",
        "sec-websocket-extensions": "permessage-deflate; client_no_context_takeover",
    }
    ok, detail, deflate = negotiate(req, resp)
    assert ok
    assert detail == (
        "status=101 accept=valid subprotocol=chat "
        "extensions=permessage-deflate; client_no_context_takeover"
    )
    assert deflate == DeflateParams(False, True, 15, 15)


def test_negotiate_invalid_and_missing_accept() -> None:
    req = {"sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}
    ok, detail, deflate = negotiate(req, {"sec-websocket-accept": "AAAA"}, status=101)
    assert not ok and "accept=invalid" in detail and deflate is None
    ok, detail, _ = negotiate(req, {}, status=400)
    assert not ok and detail == "status=400 accept=missing"
    ok, detail, _ = negotiate({}, {"sec-websocket-accept": "x"})
    assert not ok and "accept=no-key" in detail


def test_negotiate_deflate_parameters() -> None:
    req = {"sec-websocket-key": "k", "sec-websocket-extensions": "permessage-deflate"}
    resp = {
        "sec-websocket-accept": accept_key("k"),
        "sec-websocket-extensions": 'x-foo, permessage-deflate; server_max_window_bits="10"; '
        "client_max_window_bits=9; server_no_context_takeover",
    }
    ok, detail, deflate = negotiate(req, resp)
    assert ok and "deflate-params-invalid" not in detail
    assert deflate == DeflateParams(True, False, 10, 9)
    # RFC 7692 7.1.2: a response's window bits need a value in 8..15
    resp["sec-websocket-extensions"] = "permessage-deflate; client_max_window_bits=16"
    _, detail, deflate = negotiate(req, resp)
    assert "deflate-params-invalid" in detail and deflate == DeflateParams(False, False, 15, 15)
    resp["sec-websocket-extensions"] = "permessage-deflate; client_max_window_bits"
    _, detail, _ = negotiate(req, resp)
    assert "deflate-params-invalid" in detail
    # the server accepted what the client never offered
    _, detail, deflate = negotiate({"sec-websocket-key": "k"}, resp)
    assert "extension-not-offered" in detail and deflate is not None
    # no extension accepted
    resp.pop("sec-websocket-extensions")
    assert negotiate(req, resp)[2] is None


def _websockets_pair(
    client_ext: list[object] | None = None,
    server_ext: list[object] | None = None,
) -> tuple[object, object, dict[str, str], dict[str, str]]:
    """A client and a server (websockets' sans-IO protocols) after the opening handshake."""
    from websockets.client import ClientProtocol
    from websockets.server import ServerProtocol
    from websockets.uri import parse_uri

    client = ClientProtocol(parse_uri("ws://example.com/chat"), extensions=client_ext)
    server = ServerProtocol(extensions=server_ext)
    request = client.connect()
    client.send_request(request)
    server.receive_data(b"".join(client.data_to_send()))
    [request] = server.events_received()
    response = server.accept(request)
    server.send_response(response)
    client.receive_data(b"".join(server.data_to_send()))
    client.events_received()

    def headers(h: object) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in h.raw_items():  # type: ignore[attr-defined]
            k = k.lower()
            out[k] = f"{out[k]}, {v}" if k in out else v
        return out

    return client, server, headers(request.headers), headers(response.headers)


def _pmd(
    snct: bool = False, cnct: bool = False, smwb: int | None = None, cmwb: int | None = None
) -> tuple[list[object], list[object]]:
    from websockets.extensions.permessage_deflate import (
        ClientPerMessageDeflateFactory,
        ServerPerMessageDeflateFactory,
    )

    return (
        [ClientPerMessageDeflateFactory(snct, cnct, smwb, cmwb or True)],
        [ServerPerMessageDeflateFactory(snct, cnct, smwb, cmwb)],
    )


@pytest.mark.parametrize(
    "params, expected",
    [
        ((False, False, None, None), DeflateParams(False, False, 15, 15)),
        ((False, True, None, None), DeflateParams(False, True, 15, 15)),
        ((True, False, 10, 12), DeflateParams(True, False, 10, 12)),
    ],
)
def test_negotiate_real_websockets_handshake(params: tuple, expected: DeflateParams) -> None:
    client_ext, server_ext = _pmd(*params)
    _, _, req, resp = _websockets_pair(client_ext, server_ext)
    ok, detail, deflate = negotiate(req, resp)
    assert ok and detail.startswith("status=101 accept=valid extensions=permessage-deflate")
    assert deflate == expected


# ------------------------------------------------------------- RFC 6455 section 5.7


@pytest.mark.parametrize(
    "direction, wire, opcode, fin_flags, payload",
    [
        (S2C, "810548656c6c6f", 1, [True], b"Hello"),  # single-frame unmasked text
        (C2S, "818537fa213d7f9f4d5158", 1, [True], b"Hello"),  # single-frame masked text
        (S2C, "010348656c80026c6f", 1, [False, True], b"Hello"),  # fragmented unmasked
        (S2C, "890548656c6c6f", 9, [True], None),  # unmasked ping
        (C2S, "8a8537fa213d7f9f4d5158", 10, [True], None),  # masked pong
        (S2C, "827e0100" + "ab" * 256, 2, [True], b"\xab" * 256),  # 256 bytes binary
        (S2C, "827f0000000000010000" + "cd" * 65536, 2, [True], b"\xcd" * 65536),  # 64 KiB
    ],
    ids=["text", "masked-text", "fragmented", "ping", "masked-pong", "256-bytes", "64-KiB"],
)
def test_rfc6455_examples(
    direction: int, wire: str, opcode: int, fin_flags: list[bool], payload: bytes | None
) -> None:
    data = bytes.fromhex(wire)
    for feeds in ([(direction, data)], [(direction, data[i : i + 1]) for i in range(len(data))]):
        outbox, rec = run(feeds)
        check_complete(outbox)
        assert [f.fin for f in outbox.ws_frames] == fin_flags
        assert all(f.anomaly == "" for f in outbox.ws_frames)
        assert outbox.ws_frames[0].opcode == opcode
        assert outbox.ws_frames[0].masked == (direction == C2S)
        [m] = outbox.ws_messages
        assert m.opcode_name == ws.OPCODE_NAMES[opcode] and m.anomaly == ""
        assert m.frames == len(fin_flags) and m.wire_bytes == len(data)
        assert m.payload_bytes == (5 if payload is None else len(payload))
        if opcode == 1:
            assert m.text_preview == "Hello"
        if payload is None:
            assert rec.calls == []
        else:
            assert rec.calls == [(direction, rec.calls[0][1], opcode, payload)]
    header_len = {7: 2, 10: 4, 11: 6}.get(len(data) - 5, None)
    if header_len:
        assert outbox.ws_frames[0].header_len == header_len


def test_lengths_and_header_len() -> None:
    outbox, _ = run([(S2C, frame(2, b"x" * 256)), (C2S, cmask(2, b"y" * 65536))])
    f1, f2 = outbox.ws_frames
    assert (f1.payload_len, f1.header_len) == (256, 4)
    assert (f2.payload_len, f2.header_len) == (65536, 14)


def test_timestamps_frame_completed_by_later_feed() -> None:
    data = frame(1, b"Hello")
    outbox, rec = run([(S2C, 100, data[:3]), (S2C, 200, data[3:]), (S2C, 300, frame(9))])
    assert [f.ts for f in outbox.ws_frames] == [200, 300]
    assert (outbox.ws_messages[0].ts_first, outbox.ws_messages[0].ts_last) == (200, 200)
    assert rec.calls == [(S2C, 200, 1, b"Hello")]


def test_fragmented_message_timestamps_and_control_between_fragments() -> None:
    feeds = [
        (C2S, 10, cmask(1, b"Hel", fin=False)),
        (C2S, 20, cmask(9, b"ping!")),  # RFC 6455 5.4: control frames may be interjected
        (C2S, 30, cmask(0, b"lo, ", fin=False)),
        (C2S, 40, cmask(0, b"world")),
    ]
    outbox, rec = run(feeds)
    check_complete(outbox)
    assert [f.opcode for f in outbox.ws_frames] == [1, 9, 0, 0]
    assert all(f.anomaly == "" for f in outbox.ws_frames)
    ping, text = outbox.ws_messages
    assert (ping.opcode_name, ping.ts_first, ping.payload_bytes) == ("ping", 20, 5)
    assert (text.opcode_name, text.frames, text.ts_first, text.ts_last) == ("text", 3, 10, 40)
    assert text.payload_bytes == 12 and text.text_preview == "Hello, world"
    assert text.wire_bytes == sum(len(f[2]) for f in feeds) - len(feeds[1][2])
    assert rec.calls == [(C2S, 40, 1, b"Hello, world")]


def test_preview_is_64_characters_and_code_point_split_across_fragments() -> None:
    text = ("é" * 40 + "x" * 40).encode()
    a, b = text[:1], text[1:]  # the first code point is split between the two frames
    outbox, rec = run([(S2C, frame(1, a, fin=False)), (S2C, frame(0, b))])
    [m] = outbox.ws_messages
    assert m.anomaly == "" and m.text_preview == "é" * 40 + "x" * 24
    assert m.payload_bytes == len(text) and rec.calls[0][3] == text


def test_binary_payload_only_materialised_for_upper() -> None:
    outbox = Outbox()
    d = WebSocketDissector(1, outbox)
    d.feed(C2S, 1, cmask(2, os.urandom(1000)))
    d.feed(C2S, 2, cmask(2, b"z" * 10, fin=False)[:9])
    d.feed(C2S, 3, cmask(2, b"z" * 10, fin=False)[9:] + cmask(0, b"q"))
    d.finish(4)
    assert [m.payload_bytes for m in outbox.ws_messages] == [1000, 11]


# ---------------------------------------------------------------------------- close


@pytest.mark.parametrize(
    "body, code, reason, tag",
    [
        (b"", None, None, None),
        (b"\x03\xe8", 1000, "", None),
        (b"\x03\xe8bye", 1000, "bye", None),
        (struct.pack(">H", 1001) + "au revoir é".encode(), 1001, "au revoir é", None),
        (struct.pack(">H", 1014), 1014, "", None),
        (struct.pack(">H", 3000), 3000, "", None),
        (struct.pack(">H", 4999), 4999, "", None),
        (b"\x03", None, None, ws.CLOSE_BODY_1_BYTE),
        (struct.pack(">H", 999), 999, "", ws.INVALID_CLOSE_CODE),
        (struct.pack(">H", 1004), 1004, "", ws.INVALID_CLOSE_CODE),
        (struct.pack(">H", 1005), 1005, "", ws.INVALID_CLOSE_CODE),
        (struct.pack(">H", 1006), 1006, "", ws.INVALID_CLOSE_CODE),
        (struct.pack(">H", 1015), 1015, "", ws.INVALID_CLOSE_CODE),
        (struct.pack(">H", 2999), 2999, "", ws.INVALID_CLOSE_CODE),
        (struct.pack(">H", 5000), 5000, "", ws.INVALID_CLOSE_CODE),
        (b"\x03\xe8\xc3\x28", 1000, "\ufffd(", ws.INVALID_UTF8),
    ],
)
@pytest.mark.parametrize("direction", [C2S, S2C])
def test_close_codes_and_reasons(
    body: bytes, code: int | None, reason: str | None, tag: str | None, direction: int
) -> None:
    data = cmask(8, body) if direction == C2S else frame(8, body)
    outbox, rec = run([(direction, data)])
    [f] = outbox.ws_frames
    [m] = outbox.ws_messages
    assert (f.opcode_name, f.close_code, f.close_reason) == ("close", code, reason)
    assert f.anomaly == m.anomaly == (tag or "")
    assert m.opcode_name == "close" and m.payload_bytes == len(body) and rec.calls == []


def test_close_reason_from_real_library() -> None:
    client, server, _, _ = _websockets_pair()
    server.send_close(1001, "going away")  # type: ignore[attr-defined]
    client.send_close(1000, "ok")  # type: ignore[attr-defined]
    outbox, _ = run([
        (S2C, b"".join(server.data_to_send())),  # type: ignore[attr-defined]
        (C2S, b"".join(client.data_to_send())),  # type: ignore[attr-defined]
    ])
    assert [(f.close_code, f.close_reason, f.masked) for f in outbox.ws_frames] == [
        (1001, "going away", False), (1000, "ok", True),
    ]


# ----------------------------------------------------------------- anomaly tags


ANOMALY_CASES = [
    ("unmasked client", C2S, frame(1, b"Hello"), None,
     [{ws.UNMASKED_CLIENT_FRAME}], [{ws.UNMASKED_CLIENT_FRAME}]),
    ("masked server", S2C, cmask(1, b"Hello"), None,
     [{ws.MASKED_SERVER_FRAME}], [{ws.MASKED_SERVER_FRAME}]),
    ("ping 126 bytes", S2C, frame(9, b"p" * 126), None,
     [{ws.CONTROL_TOO_LONG}], [{ws.CONTROL_TOO_LONG}]),
    ("fragmented ping", S2C, frame(9, b"p", fin=False), None,
     [{ws.CONTROL_FRAGMENTED}], [{ws.CONTROL_FRAGMENTED}]),
    ("opcode 3", S2C, frame(3, b"abc"), None,
     [{ws.RESERVED_OPCODE}], [{ws.RESERVED_OPCODE}]),
    ("opcode 0xB", S2C, frame(11), None, [{ws.RESERVED_OPCODE}], [{ws.RESERVED_OPCODE}]),
    ("rsv1 no deflate", S2C, frame(1, b"Hello", rsv=4), None,
     [{ws.RSV_WITHOUT_EXTENSION}], [{ws.RSV_WITHOUT_EXTENSION}]),
    ("rsv2 with deflate", S2C, frame(1, b"Hello", rsv=2), TAKEOVER,
     [{ws.RSV_WITHOUT_EXTENSION}], [{ws.RSV_WITHOUT_EXTENSION}]),
    ("rsv3", S2C, frame(2, b"x", rsv=1), None,
     [{ws.RSV_WITHOUT_EXTENSION}], [{ws.RSV_WITHOUT_EXTENSION}]),
    ("rsv1 on continuation", S2C,
     bytes.fromhex("4103f248cd") + frame(0, bytes.fromhex("c9c90700"), rsv=4), TAKEOVER,
     [set(), {ws.RSV1_ON_CONTINUATION}], [{ws.RSV1_ON_CONTINUATION}]),
    ("rsv1 on ping", S2C, frame(9, rsv=4), TAKEOVER,
     [{ws.RSV1_ON_CONTROL}], [{ws.RSV1_ON_CONTROL}]),
    ("stray continuation", S2C, frame(0, b"lo"), None,
     [{ws.CONTINUATION_WITHOUT_START}], [{ws.CONTINUATION_WITHOUT_START}]),
    ("new message inside fragmented", S2C, frame(1, b"Hel", fin=False) + frame(1, b"lo"),
     None, [set(), {ws.NEW_MESSAGE_INSIDE_FRAGMENTED}],
     [{ws.MESSAGE_INTERRUPTED}, {ws.NEW_MESSAGE_INSIDE_FRAGMENTED}]),
    ("16-bit length for 5", S2C, frame(1, b"Hello", length_form=16), None,
     [{ws.LENGTH_NOT_MINIMAL}], [{ws.LENGTH_NOT_MINIMAL}]),
    ("64-bit length for 200", S2C, frame(2, b"x" * 200, length_form=64), None,
     [{ws.LENGTH_NOT_MINIMAL}], [{ws.LENGTH_NOT_MINIMAL}]),
    ("64-bit length MSB", S2C, frame(2, b"xy", length=(1 << 63) | 2), None,
     [{ws.LENGTH_MSB_SET, ws.TRUNCATED}],
     [{ws.LENGTH_MSB_SET, ws.TRUNCATED, ws.MESSAGE_TOO_LARGE}]),
    ("frame after close", S2C, frame(8) + frame(1, b"Hello"), None,
     [set(), {ws.FRAME_AFTER_CLOSE}], [set(), {ws.FRAME_AFTER_CLOSE}]),
    ("invalid utf-8", S2C, frame(1, b"ok \xc3\x28"), None, [set()], [{ws.INVALID_UTF8}]),
    ("invalid utf-8 in 2nd fragment", C2S,
     cmask(1, b"ok", fin=False) + cmask(0, b"\xff"), None, [set(), set()],
     [{ws.INVALID_UTF8}]),
    ("utf-8 cut at message end", S2C, frame(1, b"\xc3"), None, [set()], [{ws.INVALID_UTF8}]),
    ("close 1 byte", S2C, frame(8, b"\x03"), None,
     [{ws.CLOSE_BODY_1_BYTE}], [{ws.CLOSE_BODY_1_BYTE}]),
    ("close 1005", S2C, frame(8, b"\x03\xed"), None,
     [{ws.INVALID_CLOSE_CODE}], [{ws.INVALID_CLOSE_CODE}]),
    ("inflate failed", S2C, frame(1, b"\xff\xff", rsv=4), NO_TAKEOVER,
     [set()], [{ws.INFLATE_FAILED}]),
    ("truncated frame", S2C, frame(1, b"Hello")[:4], None,
     [{ws.TRUNCATED}], [{ws.TRUNCATED}]),
    ("truncated message", C2S, cmask(1, b"Hel", fin=False), None,
     [set()], [{ws.TRUNCATED}]),
]


@pytest.mark.parametrize(
    "name, direction, wire, deflate, frame_tags, message_tags",
    ANOMALY_CASES,
    ids=[c[0] for c in ANOMALY_CASES],
)
def test_anomaly_tags(
    name: str,
    direction: int,
    wire: bytes,
    deflate: DeflateParams | None,
    frame_tags: list[set[str]],
    message_tags: list[set[str]],
) -> None:
    for feeds in ([(direction, wire)], [(direction, wire[i : i + 1]) for i in range(len(wire))]):
        outbox, _ = run(feeds, deflate=deflate)
        check_complete(outbox)
        assert [tags(f) for f in outbox.ws_frames] == frame_tags, name
        assert [tags(m) for m in outbox.ws_messages] == message_tags, name


def test_every_anomaly_tag_is_tested() -> None:
    covered = set().union(*(t for case in ANOMALY_CASES for t in case[4] + case[5]))
    covered |= {
        ws.MESSAGE_TOO_LARGE,  # test_message_too_large_uncompressed, test_deflate_bomb_is_bounded
        ws.INFLATE_CONTEXT_LOST,  # test_inflate_failure_loses_context_only_under_takeover
        ws.LOST_BYTES,  # test_gap_*
        ws.RESYNC,  # test_gap_over_headers_resyncs_on_plausible_header
    }
    assert covered == set(ws.ANOMALY_TAGS)
    assert len(set(ws.ANOMALY_TAGS)) == len(ws.ANOMALY_TAGS)


def test_invalid_utf8_preview_keeps_valid_prefix() -> None:
    for feeds in ([(S2C, frame(1, b"abc\xe2\x82x"))], [(S2C, frame(1, b"abc\xe2\x82x")[:4]),
                                                      (S2C, frame(1, b"abc\xe2\x82x")[4:])]):
        outbox, rec = run(feeds)
        [m] = outbox.ws_messages
        assert m.text_preview == "abc" and m.anomaly == ws.INVALID_UTF8
        assert rec.calls[0][3] == b"abc\xe2\x82x"  # the upper still gets the bytes


def test_message_interrupted_gives_upper_none() -> None:
    outbox, rec = run([(S2C, frame(2, b"Hel", fin=False) + frame(2, b"xyz"))])
    assert rec.calls == [(S2C, 1, 2, None), (S2C, 1, 2, b"xyz")]
    assert outbox.ws_messages[0].payload_bytes == 3


def test_message_too_large_uncompressed() -> None:
    wire = frame(2, b"a" * 600, fin=False) + frame(0, b"b" * 600) + frame(1, b"small")
    outbox, rec = run([(C2S, wire)], max_message_bytes=1000)
    big, small = outbox.ws_messages
    assert tags(big) == {ws.UNMASKED_CLIENT_FRAME, ws.MESSAGE_TOO_LARGE}
    assert big.payload_bytes == 1200  # still counted
    assert small.payload_bytes == 5
    assert [c[3] for c in rec.calls] == [None, b"small"]


def test_row_arity_and_types() -> None:
    outbox, _ = run([(S2C, frame(1, b"x") + frame(8, b"\x03\xe8") + frame(2, b"y", fin=False))])
    for row in outbox.ws_frames + outbox.ws_messages:  # type: ignore[operator]
        assert len(row) == len(type(row)._fields)
    f = outbox.ws_frames[0]
    assert isinstance(f.fin, bool) and isinstance(f.masked, bool) and isinstance(f.ts, int)


# --------------------------------------------------------- RFC 7692 permessage-deflate

HELLO_DEFLATED = bytes.fromhex("f248cdc9c90700")  # RFC 7692 7.2.3.1
HELLO_AGAIN = bytes.fromhex("f200110000")  # 7.2.3.2: the second "Hello", sharing the window


@pytest.mark.parametrize(
    "wire",
    [
        "c107f248cdc9c90700",  # 7.2.3.1 single frame
        "4103f248cd" "8004c9c90700",  # 7.2.3.1 fragmented
        "c10b000500faff48656c6c6f00",  # 7.2.3.3 a block with no compression
        "c108f348cdc9c9070000",  # 7.2.3.4 BFINAL set
        "c10df24805000000ffffcac9c90700",  # 7.2.3.5 two DEFLATE blocks in one message
    ],
)
def test_rfc7692_examples(wire: str) -> None:
    data = bytes.fromhex(wire)
    for feeds in ([(S2C, data)], [(S2C, data[i : i + 1]) for i in range(len(data))]):
        outbox, rec = run(feeds, deflate=TAKEOVER)
        [m] = outbox.ws_messages
        assert (m.compressed, m.payload_bytes, m.text_preview, m.anomaly) == (
            True, 5, "Hello", "")
        assert outbox.ws_frames[0].compressed and not outbox.ws_frames[-1].compressed or len(
            outbox.ws_frames) == 1
        assert rec.calls == [(S2C, rec.calls[0][1], 1, b"Hello")]


def test_rfc7692_context_takeover() -> None:
    # 7.2.3.2: with context takeover the second "Hello" refers to the first one.
    wire = frame(1, HELLO_DEFLATED, rsv=4) + frame(1, HELLO_AGAIN, rsv=4)
    outbox, rec = run([(S2C, wire)], deflate=TAKEOVER)
    assert [m.anomaly for m in outbox.ws_messages] == ["", ""]
    assert rec.payloads(S2C) == [b"Hello", b"Hello"]
    # without context takeover the server must send the full form both times
    wire = frame(1, HELLO_DEFLATED, rsv=4) * 2
    outbox, rec = run([(S2C, wire)], deflate=NO_TAKEOVER)
    assert rec.payloads(S2C) == [b"Hello", b"Hello"]


def test_rfc7692_context_takeover_is_per_direction() -> None:
    # The server forbade its own context takeover but allowed the client's. Wireshark applies
    # the parameters crosswise; the peers (and this dissector) do not.
    params = DeflateParams(True, False, 15, 15)
    takeover_wire = frame(1, HELLO_DEFLATED, rsv=4) + frame(1, HELLO_AGAIN, rsv=4)
    client_wire = cmask(1, HELLO_DEFLATED, rsv=4) + cmask(1, HELLO_AGAIN, rsv=4)
    outbox, rec = run([(C2S, client_wire), (S2C, takeover_wire)], deflate=params)
    assert rec.payloads(C2S) == [b"Hello", b"Hello"]
    # s2c has no context takeover: the back-reference has nothing to refer to
    assert rec.payloads(S2C) == [b"Hello", None]
    assert outbox.ws_messages[3].anomaly == ws.INFLATE_FAILED
    assert outbox.ws_messages[3].payload_bytes is None


def test_uncompressed_message_under_deflate() -> None:
    # RFC 7692 6: RSV1 clear = not compressed, the inflater is not touched
    wire = frame(1, HELLO_DEFLATED, rsv=4) + frame(1, b"plain") + frame(1, HELLO_AGAIN, rsv=4)
    outbox, rec = run([(S2C, wire)], deflate=TAKEOVER)
    assert [m.compressed for m in outbox.ws_messages] == [True, False, True]
    assert rec.payloads(S2C) == [b"Hello", b"plain", b"Hello"]


def test_inflate_failure_loses_context_only_under_takeover() -> None:
    bad = frame(1, b"\xff\xff", rsv=4)
    good = frame(1, HELLO_DEFLATED, rsv=4)
    outbox, rec = run([(S2C, bad + good)], deflate=TAKEOVER)
    assert [m.anomaly for m in outbox.ws_messages] == [ws.INFLATE_FAILED, ws.INFLATE_CONTEXT_LOST]
    assert rec.payloads(S2C) == [None, None]
    assert [m.payload_bytes for m in outbox.ws_messages] == [None, None]
    outbox, rec = run([(S2C, bad + good)], deflate=NO_TAKEOVER)
    assert [m.anomaly for m in outbox.ws_messages] == [ws.INFLATE_FAILED, ""]
    assert rec.payloads(S2C) == [None, b"Hello"]


def test_deflate_bomb_is_bounded() -> None:
    comp = deflate_raw(bytes(10 << 20))
    assert len(comp) < 20_000
    wire = frame(2, comp, rsv=4) + frame(1, HELLO_DEFLATED, rsv=4)
    tracemalloc.start()
    t0 = time.perf_counter()
    outbox, rec = run([(S2C, c) for c in chunked(wire, [1460] * 100)], deflate=TAKEOVER,
                    max_message_bytes=1 << 20)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2.0
    assert peak < 8 << 20
    bomb, after = outbox.ws_messages
    assert bomb.anomaly == ws.MESSAGE_TOO_LARGE and bomb.payload_bytes is None
    # under context takeover the window is now unknown
    assert after.anomaly == ws.INFLATE_CONTEXT_LOST
    assert rec.payloads(S2C) == [None, None]


def test_bfinal_stream_of_empty_blocks_is_bounded() -> None:
    # 0x03 0x00 = an empty final fixed-Huffman block; thousands of them in one message
    wire = frame(2, b"\x03\x00" * 5000, rsv=4)
    t0 = time.perf_counter()
    outbox, _ = run([(S2C, wire)], deflate=TAKEOVER)
    assert time.perf_counter() - t0 < 1.0
    assert outbox.ws_messages[0].anomaly == ws.INFLATE_FAILED


def test_bfinal_then_context_takeover() -> None:
    # 7.2.3.4 then 7.2.3.2: the window survives a BFINAL block
    wire = bytes.fromhex("c108f348cdc9c9070000") + frame(1, HELLO_AGAIN, rsv=4)
    outbox, rec = run([(S2C, wire)], deflate=TAKEOVER)
    assert rec.payloads(S2C) == [b"Hello", b"Hello"]


# -------------------------------------------------------- frames from real libraries

Action = tuple[int, str, bytes, int]  # direction, kind, payload, fragments

actions_st = st.lists(
    st.tuples(
        st.sampled_from([C2S, S2C]),
        st.sampled_from(["text", "binary", "binary", "ping"]),
        st.one_of(
            st.text(max_size=200).map(str.encode),
            st.binary(max_size=300),
            st.just(b"A" * 5000),
            st.just(os.urandom(70_000)),
        ),
        st.integers(1, 3),
    ),
    min_size=1,
    max_size=12,
)


def _websockets_conversation(
    client: object, server: object, actions: list[Action]
) -> tuple[list[tuple[int, bytes]], list[tuple[int, int, bytes]]]:
    """Wire bytes per action, and the expected data messages (direction, opcode, payload)."""
    out: list[tuple[int, bytes]] = []
    expected: list[tuple[int, int, bytes]] = []
    for direction, kind, payload, nfrag in actions:
        peer = client if direction == C2S else server
        if kind == "ping":
            peer.send_ping(payload[:125])  # type: ignore[attr-defined]
        else:
            if kind == "text":
                payload = payload.decode("utf-8", "replace").encode()
            cut = [len(payload) * i // nfrag for i in range(nfrag + 1)]
            parts = [payload[cut[i] : cut[i + 1]] for i in range(nfrag)]
            send = peer.send_text if kind == "text" else peer.send_binary  # type: ignore[attr-defined]
            send(parts[0], fin=nfrag == 1)
            for i, part in enumerate(parts[1:], 2):
                peer.send_continuation(part, fin=i == nfrag)  # type: ignore[attr-defined]
            expected.append((direction, 1 if kind == "text" else 2, payload))
        out.append((direction, b"".join(peer.data_to_send())))  # type: ignore[attr-defined]
    return out, expected


def _check_conversation(
    wire: list[tuple[int, bytes]],
    expected: list[tuple[int, int, bytes]],
    actions: list[Action],
    deflate: DeflateParams | None,
    sizes: list[int],
) -> None:
    feeds: list[tuple[int, bytes]] = []
    for direction, data in wire:
        feeds += [(direction, c) for c in chunked(data, sizes)]
    outbox, rec = run(feeds, deflate=deflate)
    check_complete(outbox)
    assert all(f.anomaly == "" for f in outbox.ws_frames), [f.anomaly for f in outbox.ws_frames]
    assert all(m.anomaly == "" for m in outbox.ws_messages)
    assert [(d, op, p) for d, _, op, p in rec.calls] == expected
    assert len(outbox.ws_messages) == len(actions)
    assert sum(len(d) for _, d in wire) == sum(m.wire_bytes for m in outbox.ws_messages)
    for m, (direction, kind, payload, nfrag) in zip(outbox.ws_messages, actions, strict=True):
        assert m.direction == ("c2s", "s2c")[direction]
        assert m.opcode_name == kind
        if kind != "ping":
            assert m.frames == nfrag
            assert m.compressed == (deflate is not None)
            if kind == "text":
                text = payload.decode("utf-8", "replace")
                assert m.payload_bytes == len(text.encode())
                assert m.text_preview == text[:64]
            else:
                assert m.payload_bytes == len(payload)
    for f in outbox.ws_frames:
        assert f.masked == (f.direction == "c2s")
        assert f.compressed == (f.rsv1 and deflate is not None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actions=actions_st,
    pmd=st.sampled_from([
        None,
        (False, False, None, None),
        (False, True, None, None),
        (True, False, None, 9),
        (True, True, 10, None),
    ]),
    sizes=st.lists(st.integers(1, 3000), max_size=60),
)
def test_websockets_library_round_trip(
    actions: list[Action], pmd: tuple | None, sizes: list[int]
) -> None:
    client_ext, server_ext = _pmd(*pmd) if pmd else (None, None)
    client, server, req, resp = _websockets_pair(client_ext, server_ext)
    ok, _, deflate = negotiate(req, resp)
    assert ok and (deflate is None) == (pmd is None)
    wire, expected = _websockets_conversation(client, server, actions)
    _check_conversation(wire, expected, actions, deflate, sizes)


def _wsproto_pair(
    client_pmd: object, server_pmd: object
) -> tuple[object, object, DeflateParams | None]:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    def parse(head: bytes) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in head.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            out[k] = f"{out[k]}, {v.strip()}" if k in out else v.strip()
        return out

    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    req = client.send(Request(host="example.com", target="/ws",
                              extensions=[client_pmd] if client_pmd else []))
    server.receive_data(req)
    list(server.events())
    resp = server.send(AcceptConnection(extensions=[server_pmd] if server_pmd else []))
    client.receive_data(resp)
    list(client.events())
    ok, _, deflate = negotiate(parse(req), parse(resp))
    assert ok
    return client, server, deflate


@settings(max_examples=40, deadline=None)
@given(
    actions=actions_st,
    pmd=st.sampled_from([None, (False, False), (True, False), (False, True), (True, True)]),
    sizes=st.lists(st.integers(1, 2000), max_size=40),
)
def test_wsproto_library_round_trip(
    actions: list[Action], pmd: tuple | None, sizes: list[int]
) -> None:
    from wsproto.events import BytesMessage, Ping, TextMessage
    from wsproto.extensions import PerMessageDeflate

    def ext() -> PerMessageDeflate | None:
        if pmd is None:
            return None
        return PerMessageDeflate(client_no_context_takeover=pmd[0],
                                 server_no_context_takeover=pmd[1])

    client, server, deflate = _wsproto_pair(ext(), ext())
    assert (deflate is None) == (pmd is None)
    wire: list[tuple[int, bytes]] = []
    expected: list[tuple[int, int, bytes]] = []
    for direction, kind, payload, nfrag in actions:
        peer = client if direction == C2S else server
        if kind == "ping":
            data = peer.send(Ping(payload[:125]))  # type: ignore[attr-defined]
        else:
            text = payload.decode("utf-8", "replace")
            if kind == "text":
                payload = text.encode()
            cut = [len(text if kind == "text" else payload) * i // nfrag for i in range(nfrag + 1)]
            data = b""
            for i in range(nfrag):
                fin = i == nfrag - 1
                if kind == "text":
                    ev: object = TextMessage(text[cut[i] : cut[i + 1]], message_finished=fin)
                else:
                    ev = BytesMessage(payload[cut[i] : cut[i + 1]], message_finished=fin)
                data += peer.send(ev)  # type: ignore[attr-defined]
            expected.append((direction, 1 if kind == "text" else 2, payload))
        wire.append((direction, data))
    _check_conversation(wire, expected, actions, deflate, sizes)


# ------------------------------------------------------------------ gaps and resync


def test_gap_inside_payload_keeps_framing() -> None:
    first = cmask(2, b"A" * 100)
    nxt = cmask(1, b"next")
    outbox = Outbox()
    rec = Recorder()
    d = WebSocketDissector(1, outbox, upper=rec)
    d.feed(C2S, 1, first[:30])
    d.gap(C2S, 2, 40)  # bytes 30..69 of the frame are lost
    d.feed(C2S, 3, first[70:] + nxt)
    d.finish(4)
    check_invariants(outbox)
    check_complete(outbox)
    f1, f2 = outbox.ws_frames
    assert tags(f1) == {ws.LOST_BYTES} and f1.ts == 3 and f1.payload_len == 100
    assert f2.anomaly == ""  # no resync needed: the frame's end was known
    m1, m2 = outbox.ws_messages
    assert tags(m1) == {ws.LOST_BYTES} and m1.payload_bytes == 100
    assert rec.calls == [(C2S, 3, 2, None), (C2S, 3, 1, b"next")]


def test_gap_to_exact_frame_end() -> None:
    first = frame(1, b"Hello, world")
    outbox = Outbox()
    rec = Recorder()
    d = WebSocketDissector(1, outbox, upper=rec)
    d.feed(S2C, 1, first[:5])
    d.gap(S2C, 2, len(first) - 5)
    d.feed(S2C, 3, frame(1, b"after"))
    d.finish(4)
    check_complete(outbox)
    assert [tags(f) for f in outbox.ws_frames] == [{ws.LOST_BYTES}, set()]
    assert outbox.ws_frames[0].ts == 2
    assert rec.payloads(S2C) == [None, b"after"]


def test_gap_over_headers_resyncs_on_plausible_header() -> None:
    # s2c payload bytes 0xff can never start a plausible header (opcode 15)
    a, b, c = frame(2, b"\xff" * 50), frame(2, b"\xff" * 300), frame(2, b"\xff" * 40)
    e, f = frame(1, b"found"), frame(9, b"p")
    outbox = Outbox()
    rec = Recorder()
    d = WebSocketDissector(1, outbox, upper=rec)
    d.feed(S2C, 1, a + b[:10])
    d.gap(S2C, 2, len(b) - 10 + 20)  # rest of b and c's header + 18 payload bytes
    d.feed(S2C, 3, c[20:] + e + f)
    d.finish(4)
    check_invariants(outbox)
    check_complete(outbox)
    assert [(fr.opcode, tags(fr)) for fr in outbox.ws_frames] == [
        (2, set()), (2, {ws.LOST_BYTES}), (1, {ws.RESYNC}), (9, set()),
    ]
    assert rec.payloads(S2C) == [b"\xff" * 50, None, b"found"]


def test_gap_resync_onto_continuation_of_lost_message() -> None:
    parts = [cmask(1, b"part%d" % i, fin=False) if i == 0 else
             cmask(0, b"part%d" % i, fin=i == 4) for i in range(5)]
    outbox = Outbox()
    rec = Recorder()
    d = WebSocketDissector(1, outbox, upper=rec)
    d.feed(C2S, 1, parts[0] + parts[1][:3])
    d.gap(C2S, 2, len(parts[1]) - 3 + len(parts[2]) + 2)
    d.feed(C2S, 3, parts[3][2:] + parts[4] + cmask(1, b"ok"))
    d.finish(4)
    check_invariants(outbox)
    check_complete(outbox)
    msgs = outbox.ws_messages
    assert [(m.opcode_name, m.frames, tags(m)) for m in msgs] == [
        ("text", 2, {ws.LOST_BYTES, ws.RESYNC}), ("text", 1, set()),
    ]
    assert msgs[0].payload_bytes is None
    assert ws.CONTINUATION_WITHOUT_START not in msgs[0].anomaly
    assert rec.payloads(C2S) == [None, b"ok"]


def test_gap_when_the_message_start_was_lost() -> None:
    outbox = Outbox()
    d = WebSocketDissector(1, outbox)
    d.feed(S2C, 1, frame(1, b"x"))
    d.gap(S2C, 2, 30)
    d.feed(S2C, 3, frame(0, b"tail", fin=True) + frame(1, b"y"))
    d.finish(4)
    check_complete(outbox)
    assert [(m.opcode_name, tags(m)) for m in outbox.ws_messages] == [
        ("text", set()), ("continuation", {ws.LOST_BYTES, ws.RESYNC}), ("text", set()),
    ]


def test_gap_context_takeover_vs_no_takeover() -> None:
    for params, second in ((TAKEOVER, None), (NO_TAKEOVER, b"Hello")):
        outbox = Outbox()
        rec = Recorder()
        d = WebSocketDissector(1, outbox, params, rec)
        d.feed(S2C, 1, frame(1, HELLO_DEFLATED, rsv=4))
        d.gap(S2C, 2, 100)
        d.feed(S2C, 3, frame(1, HELLO_DEFLATED, rsv=4))
        d.finish(4)
        assert rec.payloads(S2C) == [b"Hello", second]
        last = outbox.ws_messages[-1]
        if second is None:
            assert ws.INFLATE_CONTEXT_LOST in tags(last) and last.payload_bytes is None
        else:
            assert last.payload_bytes == 5


def test_gap_in_uncompressed_frame_keeps_context() -> None:
    # the lost bytes were inside a known, uncompressed frame: the deflate window is intact
    outbox = Outbox()
    rec = Recorder()
    d = WebSocketDissector(1, outbox, TAKEOVER, rec)
    plain = frame(2, b"z" * 100)
    d.feed(S2C, 1, frame(1, HELLO_DEFLATED, rsv=4) + plain[:10])
    d.gap(S2C, 2, 50)
    d.feed(S2C, 3, plain[60:] + frame(1, HELLO_AGAIN, rsv=4))
    d.finish(4)
    assert rec.payloads(S2C) == [b"Hello", None, b"Hello"]


def test_gap_during_scan_and_garbage_only() -> None:
    outbox = Outbox()
    d = WebSocketDissector(1, outbox)
    d.feed(C2S, 1, b"\x81")
    d.gap(C2S, 2, 5)
    d.feed(C2S, 3, b"\xff" * 10_000)
    d.gap(C2S, 4, 5)
    d.feed(C2S, 5, b"\x00")
    d.finish(6)
    check_invariants(outbox)
    assert outbox.ws_frames == []


# ------------------------------------------------------------- robustness (fuzz)


def _strip_ts(outbox: Outbox) -> tuple[list[tuple], list[tuple]]:
    return (
        [f[:2] + f[3:] for f in outbox.ws_frames],
        [m[:2] + m[4:] for m in outbox.ws_messages],
    )


frame_st = st.builds(
    lambda op, fin, rsv, masked, form, payload, comp: frame(
        op, deflate_raw(payload) if comp else payload, fin=fin, rsv=rsv,
        mask=os.urandom(4) if masked else None, length_form=form,
    ),
    st.sampled_from([0, 1, 2, 8, 9, 10, 0, 1, 2, 3, 11]),
    st.booleans(),
    st.sampled_from([0, 0, 0, 4, 2, 1]),
    st.booleans(),
    st.sampled_from([None, None, None, 16, 64]),
    st.one_of(st.binary(max_size=200), st.text(max_size=100).map(str.encode)),
    st.booleans(),
)
stream_st = st.one_of(
    st.binary(max_size=3000),
    st.lists(frame_st, max_size=12).map(b"".join),
    st.lists(st.one_of(frame_st, st.binary(max_size=20)), max_size=12).map(b"".join),
)
deflate_st = st.sampled_from([None, TAKEOVER, NO_TAKEOVER, DeflateParams(True, False, 9, 15)])


@settings(max_examples=300, deadline=None)
@given(
    data=stream_st,
    sizes=st.lists(st.integers(1, 200), max_size=50),
    direction=st.sampled_from([C2S, S2C]),
    deflate=deflate_st,
    cap=st.sampled_from([16 << 20, 100]),
)
def test_arbitrary_bytes_never_raise_and_chunking_does_not_matter(
    data: bytes, sizes: list[int], direction: int, deflate: DeflateParams | None, cap: int
) -> None:
    whole, rec_whole = run([(direction, data)], deflate=deflate, max_message_bytes=cap)
    parts, rec_parts = run([(direction, c) for c in chunked(data, sizes)], deflate=deflate,
                           max_message_bytes=cap)
    check_complete(whole)
    check_complete(parts)
    assert _strip_ts(whole) == _strip_ts(parts)
    assert [c[2:] for c in rec_whole.calls] == [c[2:] for c in rec_parts.calls]


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from([C2S, S2C]), stream_st, st.integers(0, 400)), max_size=8
    ),
    deflate=deflate_st,
)
def test_arbitrary_bytes_with_gaps_never_raise(
    ops: list[tuple[int, bytes, int]], deflate: DeflateParams | None
) -> None:
    outbox = Outbox()
    d = WebSocketDissector(9, outbox, deflate, Recorder(), max_message_bytes=1000)
    for ts, (direction, data, lost) in enumerate(ops):
        d.feed(direction, ts, data)
        d.gap(direction, ts, lost)
    d.finish(len(ops))
    d.feed(C2S, 99, b"\x81\x00")  # after finish: ignored
    check_invariants(outbox)
    check_complete(outbox)
