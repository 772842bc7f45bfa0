"""Engine.IO payloads, sessions, handshakes and the rows they give (dissect.protocols.engineio).

Examples come from socketio/engine.io-protocol (v4 on ``main``, v3 on branch ``v3``) and the
Socket.IO protocol's sample sessions; real encodings from engine.io-parser 2.2.1 (v3) and 5.2.3
(v4), generated once with node (captures/make/sio/node_modules) and pasted below, and from
python-engineio's ``Packet.encode`` / ``Payload.encode``.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.protocols import engineio as eio_mod
from dissect.protocols import socketio as sio_mod
from dissect.protocols.engineio import (
    EIO_BAD_BASE64,
    EIO_BAD_ENCODING,
    EIO_BAD_LENGTH,
    EIO_BAD_OPEN,
    EIO_BAD_TYPE,
    EIO_EMPTY_PACKET,
    EIO_TRUNCATED,
    OPEN_WRONG_DIRECTION,
    PING_WRONG_DIRECTION,
    PONG_WRONG_DIRECTION,
    UPGRADE_WITHOUT_PROBE,
    UPGRADE_WRONG_DIRECTION,
    WS_UNDECODABLE,
    EngineIO,
    EngineIOWebSocket,
    content_decoded,
    decode_payload,
    split_v3_binary,
    split_v3_text,
    split_v4,
    utf16_prefix_end,
)
from dissect.protocols.engineio import payloads as eio_payloads
from dissect.protocols.engineio import tracker as eio_tracker
from dissect.protocols.socketio import (
    ACK_WITHOUT_EVENT,
    ATTACHMENT_UNEXPECTED,
    ATTACHMENTS_INVALID,
    ATTACHMENTS_MISSING,
    CUSTOM_PARSER,
)
from dissect.records import C2S, S2C, Outbox

S = 1_000_000_000  # one second in ns
SID = "lv_VI97HAXpY6yYWAAAC"
OPEN_V4 = (b'0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,'
           b'"pingTimeout":20000,"maxPayload":1000000}')
OPEN_V3 = (b'0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,'
           b'"pingTimeout":5000}')


def types(pkts: list) -> list[tuple[int, bytes, bool, int, str]]:
    """(type, data, binary, size, anomaly) of decoded packets."""
    return [(t, bytes(buf[off:]), binary, size, anomaly)
            for t, buf, off, binary, size, anomaly in pkts]


def q(version: int, sid: str | None = SID, transport: str = "polling",
      path: str = "/socket.io/") -> str:
    target = f"{path}?EIO={version}&transport={transport}&t=N8hyd6w"
    return target + (f"&sid={sid}" if sid else "")


def rows(outbox: Outbox) -> list[tuple]:
    """The interesting columns of every sio_packets row."""
    return [(r.session_id, r.ts, r.direction, r.transport, r.eio_version, r.eio_type, r.sio_type,
             r.namespace, r.event, r.ack_id, r.attachments, r.payload_bytes, r.ack_latency_ms,
             r.anomaly, r.eio_sid) for r in outbox.sio_packets]


def short(outbox: Outbox) -> list[tuple]:
    return [(r.direction, r.eio_type, r.sio_type, r.anomaly) for r in outbox.sio_packets]


def tags(outbox: Outbox) -> set[str]:
    out: set[str] = set()
    for r in outbox.sio_packets:
        if r.anomaly:
            out.update(r.anomaly.split(";"))
    return out


def open_polling(e: EngineIO, version: int = 4, tcp: int = 1, body: bytes | None = None,
                 t0: int = 1 * S, path: str = "/socket.io/") -> None:
    target = q(version, None, path=path)
    e.polling_request(tcp, t0, "GET", target, {}, None)
    if body is None:
        body = OPEN_V4 if version == 4 else b"%d:" % (len(OPEN_V3)) + OPEN_V3
    e.polling_response(tcp, t0, t0 + S, "GET", target, 200, {}, body)


# ============================================================================================
# Payload decoding
# ============================================================================================


def test_v4_payload_examples() -> None:
    # engine.io-protocol v4, "Packet encoding / HTTP long-polling"
    assert types(split_v4(b"4hello\x1e2\x1e4world")) == [
        (4, b"hello", False, 5, ""), (2, b"", False, 0, ""), (4, b"world", False, 5, "")]
    assert types(split_v4(b"4hello\x1ebAQIDBA==")) == [
        (4, b"hello", False, 5, ""), (4, b"\x01\x02\x03\x04", True, 4, "")]
    assert split_v4(b"") == []


def test_v4_payload_node_encoding() -> None:
    # engine.io-parser 5.2.3 encodePayload([message str, message Buffer<01 02 03 04 ff>, ping])
    body = base64.b64decode(
        "NDUxLVsidXAiLHsiX3BsYWNlaG9sZGVyIjp0cnVlLCJudW0iOjB9XR5iQVFJREJQOD0eMg==")
    assert types(split_v4(body)) == [
        (4, b'51-["up",{"_placeholder":true,"num":0}]', False, 39, ""),
        (4, b"\x01\x02\x03\x04\xff", True, 5, ""),
        (2, b"", False, 0, ""),
    ]


def test_v4_payload_anomalies() -> None:
    assert types(split_v4(b"4a\x1e\x1e4b"))[1][4] == EIO_EMPTY_PACKET
    assert types(split_v4(b"9x"))[0][4] == EIO_BAD_TYPE
    assert types(split_v4(b"bA"))[0][4] == EIO_BAD_BASE64
    assert types(split_v3_text(b"10:b9AQIDBA=="))[0][4] == EIO_BAD_TYPE  # v3 "b<type>": type 9


def test_v3_payload_examples() -> None:
    # engine.io-protocol v3, "Sample session" and "Payload"
    body = b"96:" + OPEN_V3
    assert types(split_v3_text(body)) == [(0, OPEN_V3[1:], False, 95, "")]
    assert types(split_v3_text(b"4:4hey")) == [(4, b"hey", False, 3, "")]
    assert types(split_v3_text(b"6:4hello6:4world")) == [
        (4, b"hello", False, 5, ""), (4, b"world", False, 5, "")]
    # "we are not counting bytes, but characters, hence 2 (1 + 1) instead of 4 (1 + 3)"
    assert types(split_v3_text("6:4hello2:4€".encode())) == [
        (4, b"hello", False, 5, ""), (4, "€".encode(), False, 3, "")]
    assert types(split_v3_text("2:4€10:b4AQIDBA==".encode())) == [
        (4, "€".encode(), False, 3, ""), (4, b"\x01\x02\x03\x04", True, 4, "")]
    # socket.io-protocol v4 sample session: the open packet and the unprompted CONNECT together
    assert [t for t, *_ in split_v3_text(b"96:" + OPEN_V3 + b"2:40")] == [0, 4]
    assert split_v3_text(b"0:") == []  # engine.io-parser 2 encodes an empty payload as "0:"


def test_v3_binary_payload_example() -> None:
    # engine.io-protocol v3 "Payload", example with binary (XHR2)
    body = bytes([0x00, 0x04, 0xFF, 0x34, 0xE2, 0x82, 0xAC, 0x01, 0x05, 0xFF,
                  0x04, 0x01, 0x02, 0x03, 0x04])
    assert types(split_v3_binary(body)) == [
        (4, "€".encode(), False, 3, ""), (4, b"\x01\x02\x03\x04", True, 4, "")]


def test_v3_node_encodings() -> None:
    # engine.io-parser 2.2.1: encodePayload(open, '2["chat","😀 emoji é € 𝄞"]', '2["x"]') as text;
    # the prefix 28 counts UTF-16 code units (the emoji and 𝄞 are 2 each), not the 35 bytes.
    text = base64.b64decode(
        "Nzk6MHsic2lkIjoiYWJjIiwidXBncmFkZXMiOlsid2Vic29ja2V0Il0sInBpbmdJbnRlcnZhbCI6MjUwMDAsInBp"
        "bmdUaW1lb3V0Ijo1MDAwfTI4OjQyWyJjaGF0Iiwi8J+YgCBlbW9qaSDDqSDigqwg8J2EniJdNzo0MlsieCJd")
    assert b"28:" in text
    got = types(split_v3_text(text))
    assert [(t, d) for t, d, *_ in got[1:]] == [
        (4, '2["chat","😀 emoji é € 𝄞"]'.encode()), (4, b'2["x"]')]
    assert all(a == "" for *_, a in got)
    # binary without XHR2 support: base64 inside the text payload
    b64 = base64.b64decode(
        "NDA6NDUxLVsidXAiLHsiX3BsYWNlaG9sZGVyIjp0cnVlLCJudW0iOjB9XTEwOmI0QVFJREJQOD0=")
    assert types(split_v3_text(b64))[1] == (4, b"\x01\x02\x03\x04\xff", True, 5, "")
    # XHR2: application/octet-stream records; string lengths are UTF-8 bytes there
    binary = base64.b64decode(
        "AAQA/zQ1MS1bInVwIix7Il9wbGFjZWhvbGRlciI6dHJ1ZSwibnVtIjowfV0BBv8EAQIDBP8AAQL/NDJbIsOp8J+YgCJd")
    assert types(split_v3_binary(binary)) == [
        (4, b'51-["up",{"_placeholder":true,"num":0}]', False, 39, ""),
        (4, b"\x01\x02\x03\x04\xff", True, 5, ""),
        (4, '2["é😀"]'.encode(), False, 11, ""),
    ]
    pkts, version = decode_payload(binary, None, "application/octet-stream")
    assert version == 3 and len(pkts) == 3


def test_utf16_prefix_end() -> None:
    data = "a😀é€b".encode()
    assert utf16_prefix_end(data, 0, 1) == 1
    assert utf16_prefix_end(data, 0, 3) == 5  # a + 😀 (two units, four bytes)
    assert utf16_prefix_end(data, 0, 2) == -2  # between the halves of 😀
    assert utf16_prefix_end(data, 0, 6) == len(data)
    assert utf16_prefix_end(data, 0, 7) == -1
    assert utf16_prefix_end(data, 5, 2) == 5 + 2 + 3


@settings(max_examples=200)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=5))
def test_v3_lengths_are_utf16_units(messages: list[str]) -> None:
    messages = [m for m in messages if not any(0xD800 <= ord(c) <= 0xDFFF for c in m)]
    body = "".join(f"{len(('4' + m).encode('utf-16-le')) // 2}:4{m}" for m in messages).encode()
    got = types(split_v3_text(body))
    assert [(t, d, a) for t, d, _, _, a in got] == [(4, m.encode(), "") for m in messages]


def test_v3_lying_lengths() -> None:
    # too long: swallows the next prefix, then the rest has no valid prefix
    got = types(split_v3_text(b"8:4hello6:4world"))
    assert got[0][:2] == (4, b"hello6:")
    assert got[1][0] == -1 and got[1][4] == EIO_BAD_LENGTH
    # too short: the packet is cut, the rest is not a prefix
    got = types(split_v3_text(b"3:4hello6:4world"))
    assert got[0][:2] == (4, b"he") and got[1][4] == EIO_BAD_LENGTH
    # past the end of the body: what is there, tagged
    got = types(split_v3_text(b"6:4hello20:4world"))
    assert got[0] == (4, b"hello", False, 5, "") and got[1][:2] == (4, b"world")
    assert got[1][4] == EIO_TRUNCATED
    # no prefix at all, and a cut in the middle of a surrogate pair
    assert types(split_v3_text(b"4hello"))[0][4] == EIO_BAD_LENGTH
    assert types(split_v3_text("2:4😀x".encode()))[0][4] == EIO_BAD_LENGTH
    # a prefix of absurd length
    assert types(split_v3_text(b"99999999999999999999:4x"))[0][4] == EIO_BAD_LENGTH


def test_v3_binary_lying_lengths() -> None:
    got = types(split_v3_binary(bytes([0, 9, 0xFF]) + b"4hi"))
    assert got[0][:2] == (4, b"hi") and got[0][4] == EIO_TRUNCATED
    got = types(split_v3_binary(bytes([0, 2, 0xFF]) + b"4a" + bytes([7, 1, 0xFF]) + b"x"))
    assert got[0][:2] == (4, b"a") and got[1][4] == EIO_BAD_LENGTH
    assert types(split_v3_binary(bytes([1, 1, 2, 3])))[0][4] == EIO_BAD_LENGTH  # no 0xFF
    assert types(split_v3_binary(bytes([1, 0, 0xFF])))[0][4] == EIO_EMPTY_PACKET
    assert types(split_v3_binary(bytes([1, 1, 0xFF, 9])))[0][4] == EIO_BAD_TYPE


def test_payload_version_guess() -> None:
    assert decode_payload(b"96:" + OPEN_V3, None)[1] == 3
    assert decode_payload(OPEN_V4, None)[1] == 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.sampled_from([1, 2, 3, 4, 5, 6]),
              st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x1e"),
                      max_size=20)),
    st.binary(max_size=20)), min_size=1, max_size=6))
def test_python_engineio_payloads_roundtrip(items: list) -> None:
    from engineio import packet, payload

    pkts = [packet.Packet(packet.MESSAGE, data=i) if isinstance(i, bytes)
            else packet.Packet(i[0], data=i[1]) for i in items]
    body = payload.Payload(packets=pkts).encode().encode("utf-8")
    got = types(split_v4(body))
    expected = [(4, i, True, len(i), "") if isinstance(i, bytes)
                else (i[0], i[1].encode(), False, len(i[1].encode()), "") for i in items]
    assert got == expected


# ============================================================================================
# Sessions: polling, upgrade, WebSocket
# ============================================================================================


def test_v4_sample_session() -> None:
    """socket.io-protocol v5 "Sample session" (on Engine.IO 4), with the v4 heartbeat."""
    outbox = Outbox()
    e = EngineIO(outbox)
    open_polling(e, 4)
    e.polling_request(1, 3 * S, "POST", q(4), {}, b"40")
    e.polling_response(2, 3 * S, 4 * S, "GET", q(4), 200, {}, b'40{"sid":"wZX3oN0bSVIhsaknAAAI"}')
    e.polling_response(2, 4 * S, 5 * S, "GET", q(4), 200, {}, b'42["hey","Jude"]')
    e.polling_request(1, 6 * S, "POST", q(4), {}, b'42["hello"]\x1e42["world"]')
    ws = e.websocket_opened(3, 7 * S, 7 * S + 1, q(4, transport="websocket"))
    ws.ws_message(C2S, 8 * S, 1, b"2probe")
    e.polling_response(2, 5 * S, 8 * S + 1, "GET", q(4), 200, {}, b"6")
    ws.ws_message(S2C, 9 * S, 1, b"3probe")
    ws.ws_message(C2S, 10 * S, 1, b"5")
    ws.ws_message(C2S, 11 * S, 1, b"40/admin,")
    ws.ws_message(S2C, 12 * S, 1, b'40/admin,{"sid":"-G5j-67EZFp-q59rADQM"}')
    ws.ws_message(C2S, 13 * S, 1, b'42/admin,1["tellme"]')
    ws.ws_message(S2C, 14 * S, 1, b'461-/admin,1[{"_placeholder":true,"num":0}]')
    ws.ws_message(S2C, 14 * S + 1, 2, b"\x01\x02\x03")
    ws.ws_message(S2C, 15 * S, 1, b"2")
    ws.ws_message(C2S, 15 * S + 1, 1, b"3")
    ws.ws_message(C2S, 16 * S, 1, b"1")
    e.finish(20 * S)

    hs = [(h.session_id, h.layer, h.ts_start, h.ts_end, h.ok, h.detail, h.transport)
          for h in outbox.handshakes]
    assert hs == [
        (1, "engineio", 1 * S, 2 * S, True,
         f"sid={SID} eio=4 pingInterval=25000 pingTimeout=20000 upgrades=websocket "
         "maxPayload=1000000", "polling"),
        (2, "socketio", 3 * S, 4 * S, True, "namespace=/", "polling"),
        (3, "socketio", 11 * S, 12 * S, True, "namespace=/admin", "websocket"),
    ]
    assert rows(outbox) == [
        (1, 2 * S, "s2c", "polling", 4, "open", "", None, None, None, None, len(OPEN_V4) - 1, None,
         "", SID),
        (1, 3 * S, "c2s", "polling", 4, "message", "CONNECT", "/", None, None, None, 1, None, "",
         SID),
        (2, 4 * S, "s2c", "polling", 4, "message", "CONNECT", "/", None, None, None, 31, None, "",
         SID),
        (2, 5 * S, "s2c", "polling", 4, "message", "EVENT", "/", "hey", None, None, 15, None, "",
         SID),
        (1, 6 * S, "c2s", "polling", 4, "message", "EVENT", "/", "hello", None, None, 10, None, "",
         SID),
        (1, 6 * S, "c2s", "polling", 4, "message", "EVENT", "/", "world", None, None, 10, None, "",
         SID),
        (3, 8 * S, "c2s", "websocket", 4, "ping", "", None, None, None, None, 5, None, "", SID),
        (2, 8 * S + 1, "s2c", "polling", 4, "noop", "", None, None, None, None, 0, None, "", SID),
        (3, 9 * S, "s2c", "websocket", 4, "pong", "", None, None, None, None, 5, None, "", SID),
        (3, 10 * S, "c2s", "websocket", 4, "upgrade", "", None, None, None, None, 0, None, "", SID),
        (3, 11 * S, "c2s", "websocket", 4, "message", "CONNECT", "/admin", None, None, None, 8,
         None, "", SID),
        (3, 12 * S, "s2c", "websocket", 4, "message", "CONNECT", "/admin", None, None, None, 38,
         None, "", SID),
        (3, 13 * S, "c2s", "websocket", 4, "message", "EVENT", "/admin", "tellme", 1, None, 19,
         None, "", SID),
        (3, 14 * S, "s2c", "websocket", 4, "message", "BINARY_ACK", "/admin", None, 1, 1, 42,
         1000.0, "", SID),
        (3, 14 * S + 1, "s2c", "websocket", 4, "message", "", "/admin", None, None, None, 3, None,
         "", SID),
        (3, 15 * S, "s2c", "websocket", 4, "ping", "", None, None, None, None, 0, None, "", SID),
        (3, 15 * S + 1, "c2s", "websocket", 4, "pong", "", None, None, None, None, 0, None, "",
         SID),
        (3, 16 * S, "c2s", "websocket", 4, "close", "", None, None, None, None, 0, None, "", SID),
    ]
    marks = [r.attachment_index for r in outbox.sio_packets]
    assert marks == [None] * 14 + [0] + [None] * 3
    assert e.app_protocols == {1: "socketio", 2: "socketio", 3: "socketio"}


def test_v3_sample_session() -> None:
    """socket.io-protocol v4 "Sample session" (on Engine.IO 3): unprompted CONNECT for "/"."""
    outbox = Outbox()
    e = EngineIO(outbox)
    open_polling(e, 3, body=b"96:" + OPEN_V3 + b"2:40")
    e.polling_response(1, 3 * S, 4 * S, "GET", q(3), 200, {}, b'16:42["hey","Jude"]')
    e.polling_request(1, 5 * S, "POST", q(3), {}, b'11:42["hello"]11:42["world"]')
    ws = e.websocket_opened(1, 6 * S, 6 * S, q(3, transport="websocket"))
    ws.ws_message(C2S, 7 * S, 1, b"2probe")
    ws.ws_message(S2C, 7 * S + 1, 1, b"3probe")
    ws.ws_message(C2S, 7 * S + 2, 1, b"5")
    ws.ws_message(C2S, 8 * S, 1, b"40/admin,")
    ws.ws_message(S2C, 9 * S, 1, b"40/admin,")
    ws.ws_message(C2S, 10 * S, 1, b'42/admin,1["tellme"]')
    ws.ws_message(S2C, 11 * S, 1, b'461-/admin,1[{"_placeholder":true,"num":0}]')
    ws.ws_message(S2C, 11 * S + 1, 2, b"\x04\x01\x02")  # v3: the first byte is the packet type
    ws.ws_message(C2S, 12 * S, 1, b"2")
    ws.ws_message(S2C, 12 * S + 1, 1, b"3")
    ws.ws_message(C2S, 13 * S, 1, b"1")
    e.finish(20 * S)
    hs = [(h.layer, h.ts_start, h.ts_end, h.ok, h.detail, h.transport) for h in outbox.handshakes]
    assert hs == [
        ("engineio", 1 * S, 2 * S, True,
         f"sid={SID} eio=3 pingInterval=25000 pingTimeout=5000 upgrades=websocket", "polling"),
        ("socketio", 2 * S, 2 * S, True, "namespace=/", "polling"),
        ("socketio", 8 * S, 9 * S, True, "namespace=/admin", "websocket"),
    ]
    assert tags(outbox) == set()
    assert [(r.direction, r.eio_type, r.sio_type, r.namespace, r.payload_bytes, r.ack_latency_ms)
            for r in outbox.sio_packets] == [
        ("s2c", "open", "", None, 95, None),
        ("s2c", "message", "CONNECT", "/", 1, None),
        ("s2c", "message", "EVENT", "/", 15, None),
        ("c2s", "message", "EVENT", "/", 10, None),
        ("c2s", "message", "EVENT", "/", 10, None),
        ("c2s", "ping", "", None, 5, None),
        ("s2c", "pong", "", None, 5, None),
        ("c2s", "upgrade", "", None, 0, None),
        ("c2s", "message", "CONNECT", "/admin", 8, None),
        ("s2c", "message", "CONNECT", "/admin", 8, None),
        ("c2s", "message", "EVENT", "/admin", 19, None),
        ("s2c", "message", "BINARY_ACK", "/admin", 42, 1000.0),
        ("s2c", "message", "", "/admin", 2, None),  # the attachment, its type byte not counted
        ("c2s", "ping", "", None, 0, None),
        ("s2c", "pong", "", None, 0, None),
        ("c2s", "close", "", None, 0, None),
    ]
    assert all(r.eio_version == 3 and r.eio_sid == SID for r in outbox.sio_packets)


def test_ack_latency_across_transports() -> None:
    """EVENT over polling, its ACK over the WebSocket of the same session (same sid)."""
    outbox = Outbox()
    e = EngineIO(outbox)
    open_polling(e, 4)
    e.polling_request(1, 3 * S, "POST", q(4), {}, b"40")
    e.polling_response(1, 3 * S, 4 * S, "GET", q(4), 200, {}, b'40{"sid":"x"}')
    e.polling_request(5, 5 * S, "POST", q(4), {}, b'42["slow",1]\x1e421["needs-ack"]')
    ws = e.websocket_opened(6, 6 * S, 6 * S, q(4, transport="websocket"))
    ws.ws_message(C2S, 7 * S, 1, b"2probe")
    ws.ws_message(S2C, 7 * S, 1, b"3probe")
    ws.ws_message(C2S, 7 * S, 1, b"5")
    ws.ws_message(S2C, 8 * S + 500_000, 1, b"431[]")
    last = outbox.sio_packets[-1]
    assert (last.session_id, last.transport, last.sio_type, last.ack_id, last.ack_latency_ms,
            last.anomaly) == (6, "websocket", "ACK", 1, 3000.5, "")
    # the same id in the other direction, or a new session, does not match
    ws.ws_message(C2S, 9 * S, 1, b"431[]")
    assert outbox.sio_packets[-1].anomaly == ACK_WITHOUT_EVENT


def test_websocket_only_session_and_ping_direction_v4() -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    ws = e.websocket_opened(9, 1 * S, 1 * S + 10, q(4, None, "websocket"))
    ws.ws_message(S2C, 2 * S, 1, OPEN_V4)
    ws.ws_message(C2S, 3 * S, 1, b"40")
    ws.ws_message(S2C, 4 * S, 1, b'40{"sid":"a"}')
    ws.ws_message(S2C, 5 * S, 1, b"2")
    ws.ws_message(C2S, 5 * S, 1, b"3")
    ws.ws_message(C2S, 6 * S, 1, b"2")  # v4: only the server pings
    ws.ws_message(S2C, 6 * S, 1, b"3")
    e.finish(10 * S)
    hs = [(h.session_id, h.layer, h.ts_start, h.ts_end, h.ok, h.transport) for h in outbox.handshakes]
    assert hs == [(9, "engineio", 1 * S, 2 * S, True, "websocket"),
                  (9, "socketio", 3 * S, 4 * S, True, "websocket")]
    assert [r.anomaly for r in outbox.sio_packets][-4:] == [
        "", "", PING_WRONG_DIRECTION, PONG_WRONG_DIRECTION]
    assert {r.eio_sid for r in outbox.sio_packets} == {SID}


def test_ping_direction_v3() -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    ws = e.websocket_opened(9, 1 * S, 1 * S, q(3, None, "websocket"))
    ws.ws_message(S2C, 2 * S, 1, OPEN_V3)
    ws.ws_message(C2S, 3 * S, 1, b"2")
    ws.ws_message(S2C, 3 * S, 1, b"3")
    ws.ws_message(S2C, 4 * S, 1, b"2")  # v3: only the client pings
    ws.ws_message(C2S, 4 * S, 1, b"3")
    ws.ws_message(S2C, 5 * S, 1, b"2probe")  # the probe is the client's
    assert [r.anomaly for r in outbox.sio_packets][1:] == [
        "", "", PING_WRONG_DIRECTION, PONG_WRONG_DIRECTION, PING_WRONG_DIRECTION]


def test_upgrade_anomalies() -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    open_polling(e, 4)
    ws = e.websocket_opened(2, 3 * S, 3 * S, q(4, transport="websocket"))
    ws.ws_message(C2S, 4 * S, 1, b"5")  # no probe first
    ws.ws_message(S2C, 5 * S, 1, b"5")  # the server never sends upgrade
    ws.ws_message(C2S, 6 * S, 1, OPEN_V4)  # nor does the client send open
    assert [r.anomaly for r in outbox.sio_packets][1:] == [
        UPGRADE_WITHOUT_PROBE, UPGRADE_WRONG_DIRECTION, OPEN_WRONG_DIRECTION]
    e.polling_request(1, 7 * S, "POST", q(4), {}, b"5")  # upgrade over polling
    assert outbox.sio_packets[-1].anomaly == UPGRADE_WITHOUT_PROBE


def test_failed_and_missing_handshakes() -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    # refused: 400 with the Engine.IO error body
    target = q(5, None)
    e.polling_request(1, 1 * S, "GET", target, {}, None)
    e.polling_response(1, 1 * S, 2 * S, "GET", target, 400, {},
                       b'{"code":5,"message":"Unsupported protocol version"}')
    # never answered (the lead's HTTP layer should call polling_request for GETs too)
    e.polling_request(2, 3 * S, "GET", q(4, None), {}, None)
    # WebSocket-only, never opened
    e.websocket_opened(3, 4 * S, 4 * S, q(4, None, "websocket"))
    # answered without an open packet
    e.polling_response(4, 5 * S, 6 * S, "GET", q(4, None), 200, {}, b"2")
    # a bad open packet
    e.polling_response(5, 7 * S, 8 * S, "GET", q(4, None), 200, {}, b"0{not json")
    # a client CONNECT never answered
    open_polling(e, 4, tcp=6, t0=10 * S)
    e.polling_request(6, 12 * S, "POST", q(4), {}, b"40/chat,")
    e.finish(20 * S)
    hs = [(h.session_id, h.layer, h.ts_start, h.ts_end, h.ok, h.detail, h.transport)
          for h in outbox.handshakes]
    assert hs == [
        (1, "engineio", 1 * S, 2 * S, False, "eio=? status=400 error=Unsupported protocol version",
         "polling"),
        (4, "engineio", 5 * S, 6 * S, False, "eio=4 error=no-open-packet", "polling"),
        (5, "engineio", 7 * S, 8 * S, False, "eio=4 error=bad-open", "polling"),
        (6, "engineio", 10 * S, 11 * S, True, outbox.handshakes[3].detail, "polling"),
        (2, "engineio", 3 * S, None, False, "eio=4 error=no-response", "polling"),
        (3, "engineio", 4 * S, None, False, "eio=4 error=no-response", "websocket"),
        (6, "socketio", 12 * S, None, False, "namespace=/chat error=no-response", "polling"),
    ]
    assert EIO_BAD_OPEN in tags(outbox)


def test_websocket_refused() -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    e.polling_response(1, 1 * S, 2 * S, "GET", q(4, None, "websocket"), 400, {}, b"")
    (h,) = outbox.handshakes
    assert (h.ok, h.transport, h.detail) == (False, "websocket", "eio=4 status=400")


def test_version_from_open_packet_without_eio_param() -> None:
    for body, version in ((OPEN_V4, 4), (b"96:" + OPEN_V3, 3)):
        outbox = Outbox()
        e = EngineIO(outbox)
        e.polling_response(1, 0, S, "GET", "/engine.io/?transport=polling", 200, {}, body)
        assert outbox.sio_packets[0].eio_version == version
        ws = e.websocket_opened(1, 0, S, "/x/?transport=websocket")
        ws.ws_message(S2C, S, 1, OPEN_V4 if version == 4 else OPEN_V3)
        assert outbox.sio_packets[-1].eio_version == version


def test_capture_starting_mid_session() -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    e.polling_request(1, S, "POST", q(4, "late"), {}, b'42["x"]')
    ws = e.websocket_opened(2, S, S, q(3, "late3", "websocket"))
    ws.ws_message(C2S, 2 * S, 1, b'42["y"]')
    assert [(r.eio_sid, r.eio_version, r.event) for r in outbox.sio_packets] == [
        ("late", 4, "x"), ("late3", 3, "y")]
    assert outbox.handshakes == []


def test_plain_engineio_application() -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    open_polling(e, 4, path="/engine.io/")
    e.polling_request(1, 3 * S, "POST", q(4, path="/engine.io/"), {}, b"4hello\x1e4world")
    e.polling_response(1, 3 * S, 4 * S, "GET", q(4, path="/engine.io/"), 200, {}, b"bAQIDBA==")
    assert [(r.eio_type, r.sio_type, r.namespace, r.anomaly, r.payload_bytes)
            for r in outbox.sio_packets][1:] == [
        ("message", "", None, "", 5), ("message", "", None, "", 5), ("message", "", None, "", 4)]
    assert e.app_protocols == {1: "engineio"}


def test_v3_octet_stream_and_base64_in_sessions() -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    open_polling(e, 3)
    octet = {"content-type": "application/octet-stream"}
    body = (bytes([0, 4, 0, 0xFF]) + b'451-["up",{"_placeholder":true,"num":0}]'
            + bytes([1, 6, 0xFF, 4, 1, 2, 3, 4, 255]))
    e.polling_request(1, 3 * S, "POST", q(3), octet, body)
    e.polling_response(1, 3 * S, 4 * S, "GET", q(3), 200, {},
                       b'40:461-["up",{"_placeholder":true,"num":0}]10:b4AQIDBA==')
    got = [(r.direction, r.sio_type, r.attachments, r.payload_bytes, r.anomaly)
           for r in outbox.sio_packets][1:]
    assert got == [("c2s", "BINARY_EVENT", 1, 39, ""), ("c2s", "", None, 5, ""),
                   ("s2c", "BINARY_ACK", 1, 39, ACK_WITHOUT_EVENT), ("s2c", "", None, 4, "")]


def test_jsonp_v3() -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    open_polling(e, 3)
    payload = '10:42["a\\"b"]'  # as written by engine.io 3 polling-jsonp (JSON.stringify)
    body = b"___eio[4](" + json.dumps(payload).encode() + b");"
    e.polling_response(1, 3 * S, 4 * S, "GET", q(3) + "&j=4", 200, {}, body)
    e.polling_request(1, 5 * S, "POST", q(3) + "&j=4", {}, b"d=" + b"7%3A42%5B%22x%22%5D")
    assert [(r.sio_type, r.event, r.anomaly) for r in outbox.sio_packets][1:] == [
        ("EVENT", 'a"b', ""), ("EVENT", "x", "")]


def test_jsonp_python_engineio_v4() -> None:
    from engineio import packet, payload

    outbox = Outbox()
    e = EngineIO(outbox)
    open_polling(e, 4)
    body = payload.Payload(packets=[packet.Packet(packet.MESSAGE, data='2["a","b"]'),
                                    packet.Packet(packet.PING)]).encode(jsonp_index=3)
    e.polling_response(1, 3 * S, 4 * S, "GET", q(4) + "&j=3", 200, {}, body.encode())
    assert [(r.eio_type, r.event) for r in outbox.sio_packets][1:] == [("message", "a"), ("ping", None)]


def test_content_encoding() -> None:
    body = b'42["big","' + b"x" * 2000 + b'"]\x1e2'
    assert content_decoded(gzip.compress(body), "gzip") == (body, "")
    assert content_decoded(zlib.compress(body), "deflate") == (body, "")
    raw = zlib.compressobj(wbits=-15)
    assert content_decoded(raw.compress(body) + raw.flush(), "deflate") == (body, "")
    assert content_decoded(body, "") == (body, "")
    assert content_decoded(b"not gzip", "gzip") == (b"", EIO_BAD_ENCODING)
    assert content_decoded(gzip.compress(body)[:-20], "gzip")[1] == EIO_BAD_ENCODING
    assert content_decoded(body, "br") == (b"", EIO_BAD_ENCODING)


def test_compressed_polling_responses(monkeypatch: pytest.MonkeyPatch) -> None:
    """engine.io compresses polling responses over 1 KB (httpCompression)."""
    outbox = Outbox()
    e = EngineIO(outbox)
    open_polling(e, 4)
    body = b'42["big","' + b"x" * 2000 + b'"]\x1e2'
    e.polling_response(1, 3 * S, 4 * S, "GET", q(4), 200, {"content-encoding": "gzip"},
                       gzip.compress(body))
    assert [(r.event, r.eio_type, r.anomaly) for r in outbox.sio_packets][1:] == [
        ("big", "message", ""), (None, "ping", "")]
    e.polling_response(1, 3 * S, 4 * S, "GET", q(4), 200, {"content-encoding": "gzip"}, b"junk")
    assert (outbox.sio_packets[-1].eio_type, outbox.sio_packets[-1].payload_bytes,
            outbox.sio_packets[-1].anomaly) == ("", 4, EIO_BAD_ENCODING)
    monkeypatch.setattr(eio_payloads, "MAX_INFLATED", 100)
    e.polling_response(1, 3 * S, 4 * S, "GET", q(4), 200, {"content-encoding": "deflate"},
                       zlib.compress(body))
    assert (outbox.sio_packets[-1].event, outbox.sio_packets[-1].anomaly) == ("big", EIO_TRUNCATED)


# ============================================================================================
# Attachments and custom parsers
# ============================================================================================


def ws_session(version: int = 4,
               path: str = "/socket.io/") -> tuple[Outbox, EngineIO, EngineIOWebSocket]:
    outbox = Outbox()
    e = EngineIO(outbox)
    ws = e.websocket_opened(1, 0, 0, q(version, None, "websocket", path))
    ws.ws_message(S2C, 1, 1, OPEN_V4 if version == 4 else OPEN_V3)
    return outbox, e, ws


TWO_ATTACHMENTS = b'452-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'


def test_attachment_rows_held_until_complete() -> None:
    outbox, e, ws = ws_session()
    ws.ws_message(C2S, 10, 1, TWO_ATTACHMENTS)
    ws.ws_message(S2C, 11, 1, b"2")  # other direction: not held
    ws.ws_message(C2S, 12, 2, b"\x01")
    assert [r.ts for r in outbox.sio_packets] == [1, 11]
    ws.ws_message(C2S, 13, 2, b"\x02\x03")
    assert [(r.ts, r.sio_type, r.anomaly) for r in outbox.sio_packets] == [
        (1, "", ""), (11, "", ""), (10, "BINARY_EVENT", ""), (12, "", ""), (13, "", "")]
    assert [r.namespace for r in outbox.sio_packets[3:]] == ["/", "/"]
    assert tags(outbox) == set()


def test_fewer_attachments_than_announced() -> None:
    outbox, e, ws = ws_session()
    ws.ws_message(C2S, 10, 1, TWO_ATTACHMENTS)
    ws.ws_message(C2S, 11, 2, b"\x01")
    ws.ws_message(C2S, 12, 1, b'42["next"]')  # text before the second attachment
    assert [(r.ts, r.anomaly) for r in outbox.sio_packets][1:] == [
        (10, ATTACHMENTS_MISSING), (11, ""), (12, "")]
    # still missing at the end of the analysis
    ws.ws_message(S2C, 20, 1, b'461-3[{"_placeholder":true,"num":0}]')
    assert outbox.sio_packets[-1].ts == 12
    e.finish(30)
    assert (outbox.sio_packets[-1].ts, outbox.sio_packets[-1].anomaly) == (
        20, ACK_WITHOUT_EVENT + ";" + ATTACHMENTS_MISSING)


def test_more_attachments_than_announced() -> None:
    outbox, e, ws = ws_session()
    ws.ws_message(C2S, 10, 1, b'451-["up",{"_placeholder":true,"num":0}]')
    ws.ws_message(C2S, 11, 2, b"\x01")
    ws.ws_message(C2S, 12, 2, b"\x02")
    assert [r.anomaly for r in outbox.sio_packets][1:] == ["", "", ATTACHMENT_UNEXPECTED]


def test_impossible_attachment_count() -> None:
    outbox, e, ws = ws_session()
    ws.ws_message(C2S, 10, 1, b'451000000000-["up",{"_placeholder":true,"num":0}]')
    ws.ws_message(C2S, 11, 2, b"\x01")
    got = [r.anomaly for r in outbox.sio_packets][1:]
    assert ATTACHMENTS_INVALID in got[0] and got[1] == ATTACHMENT_UNEXPECTED
    e.finish(20)
    assert all(s.held == [None, None] for s in e._sessions.values())


def test_held_rows_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eio_tracker, "MAX_HELD_ROWS", 5)
    outbox, e, ws = ws_session()
    ws.ws_message(C2S, 10, 1, b'4520-["up"]')
    for i in range(10):
        ws.ws_message(C2S, 11 + i, 1, b"3")  # pongs while attachments are awaited
    assert len(outbox.sio_packets) == 1 + 11
    assert outbox.sio_packets[1].anomaly == ATTACHMENTS_MISSING


def test_ws_binary_v3_type_byte_and_v4_raw() -> None:
    outbox, e, ws = ws_session(3)
    ws.ws_message(C2S, 10, 1, b'451-["up",{"_placeholder":true,"num":0}]')
    ws.ws_message(C2S, 11, 2, b"\x04\xAA\xBB")
    ws.ws_message(C2S, 12, 2, b"\x09\xAA")
    ws.ws_message(C2S, 13, 2, b"")
    got = [(r.eio_type, r.payload_bytes, r.anomaly) for r in outbox.sio_packets][1:]
    assert got == [("message", 39, ""), ("message", 2, ""), ("", 1, EIO_BAD_TYPE),
                   ("", 0, EIO_EMPTY_PACKET)]
    outbox, e, ws = ws_session(4)
    ws.ws_message(C2S, 10, 1, b'451-["up",{"_placeholder":true,"num":0}]')
    ws.ws_message(C2S, 11, 2, b"\x04\xAA\xBB")
    assert [(r.eio_type, r.payload_bytes) for r in outbox.sio_packets][-1] == ("message", 3)


def test_undecodable_ws_message() -> None:
    outbox, e, ws = ws_session()
    ws.ws_message(C2S, 10, 1, None)
    ws.ws_message(C2S, 11, 1, b'451-["up",{"_placeholder":true,"num":0}]')
    ws.ws_message(C2S, 12, 2, None)  # counted as the attachment it most likely was
    ws.ws_message(C2S, 13, 1, b"")
    got = [(r.eio_type, r.sio_type, r.anomaly) for r in outbox.sio_packets][1:]
    assert got == [("", "", WS_UNDECODABLE), ("message", "BINARY_EVENT", ""),
                   ("message", "", WS_UNDECODABLE), ("", "", EIO_EMPTY_PACKET)]


MSGPACK_CONNECT = b"\x82\xa4type\x00\xa3nsp\xa1/"
MSGPACK_EVENT = b"\x84\xa4type\x02\xa4data\x92\xa2hi\x01\xa3nsp\xa1/\xa2id\x01"


def test_msgpack_parser_over_websocket_and_polling() -> None:
    """socket.io-msgpack-parser: its binary messages are decoded into the same rows."""
    outbox, e, ws = ws_session(4, path="/realtime/")
    ws.ws_message(C2S, 10, 2, MSGPACK_CONNECT)
    ws.ws_message(S2C, 11, 2, MSGPACK_EVENT)
    ws.ws_message(S2C, 12, 1, b"2")
    ws.ws_message(S2C, 13, 2, b"\x81\xa4kind\x01")  # not one of its packets
    got = [(r.eio_type, r.sio_type, r.namespace, r.event, r.ack_id, r.anomaly) for r in outbox.sio_packets][1:]
    assert got == [("message", "CONNECT", "/", None, None, ""), ("message", "EVENT", "/", "hi", 1, ""),
                   ("ping", "", None, None, None, ""), ("message", "", None, None, None, CUSTOM_PARSER)]
    assert e.app_protocols[1] == "socketio"
    outbox = Outbox()
    e = EngineIO(outbox)
    open_polling(e, 4)
    e.polling_request(1, 3 * S, "POST", q(4), {}, b"b" + base64.b64encode(MSGPACK_CONNECT))
    assert outbox.sio_packets[-1].sio_type == "CONNECT" and outbox.sio_packets[-1].transport == "polling"


# ============================================================================================
# Session bookkeeping
# ============================================================================================


def test_closed_sessions_evicted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eio_tracker, "MAX_CLOSED_SESSIONS", 2)
    outbox = Outbox()
    e = EngineIO(outbox)
    for i in range(5):
        ws = e.websocket_opened(i, 0, 0, q(4, None, "websocket"))
        ws.ws_message(S2C, 1, 1, OPEN_V4.replace(SID.encode(), b"sid%d" % i))
        ws.ws_message(C2S, 2, 1, b"1")
    assert sorted(e._sessions) == ["sid3", "sid4"]


def test_ws_closed_ends_session() -> None:
    outbox, e, ws = ws_session()
    ws.ws_message(C2S, 10, 1, b"40")
    ws.ws_message(C2S, 11, 1, b'421["q"]')
    ws.ws_closed(20)
    assert [(h.layer, h.ok) for h in outbox.handshakes] == [("engineio", True), ("socketio", False)]
    assert outbox.counters["sio-acks-unanswered"] == 1  # reaches summary.json's decode counters
    e.finish(30)
    assert len(outbox.handshakes) == 2


def test_finish_is_idempotent() -> None:
    outbox, e, ws = ws_session()
    ws.ws_message(C2S, 10, 1, b"40")
    e.finish(20)
    n = (len(outbox.handshakes), len(outbox.sio_packets))
    e.finish(30)
    assert (len(outbox.handshakes), len(outbox.sio_packets)) == n


def test_is_engineio_target() -> None:
    assert EngineIO.is_engineio_target("/socket.io/?EIO=4&transport=polling")
    assert EngineIO.is_engineio_target("/engine.io/?transport=websocket&EIO=3&sid=x")
    assert not EngineIO.is_engineio_target("/socket.io/?transport=polling")
    assert not EngineIO.is_engineio_target("/x?NOEIO=4")
    assert not EngineIO.is_engineio_target("/")


# ============================================================================================
# Robustness
# ============================================================================================

version_targets = st.sampled_from([3, 4, None])


def _target(v: int | None, transport: str, sid: str | None) -> str:
    t = f"/socket.io/?transport={transport}" + (f"&EIO={v}" if v else "")
    return t + (f"&sid={sid}" if sid else "")


@settings(max_examples=300, deadline=None)
@given(v=version_targets, with_sid=st.booleans(), open_first=st.booleans(),
       messages=st.lists(st.tuples(st.sampled_from([C2S, S2C]), st.sampled_from([1, 2]),
                                   st.one_of(st.none(), st.binary(max_size=40),
                                             st.sampled_from([b"40", b"451-[\"a\"]", b"2probe",
                                                              b"3probe", b"5", b"1", b"6",
                                                              b'431[]', b'421["x"]']))),
                         max_size=20))
def test_arbitrary_ws_messages_never_raise(v: int | None, with_sid: bool, open_first: bool,
                                           messages: list) -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    ws = e.websocket_opened(1, 0, 0, _target(v, "websocket", "s" if with_sid else None))
    if open_first:
        ws.ws_message(S2C, 0, 1, OPEN_V4)
    for i, (d, op, payload) in enumerate(messages):
        ws.ws_message(d, i, op, payload)
    e.finish(10**6)
    assert len(outbox.sio_packets) == len(messages) + open_first
    for r in outbox.sio_packets:
        for tag in filter(None, r.anomaly.split(";")):
            assert tag == tag.lower() and " " not in tag


@settings(max_examples=300, deadline=None)
@given(v=version_targets, body=st.binary(max_size=80),
       ctype=st.sampled_from(["", "application/octet-stream", "text/plain"]),
       method=st.sampled_from(["GET", "POST"]), with_sid=st.booleans(),
       jsonp=st.booleans(), status=st.sampled_from([200, 400]))
def test_arbitrary_polling_bodies_never_raise(v: int | None, body: bytes, ctype: str, method: str,
                                              with_sid: bool, jsonp: bool, status: int) -> None:
    outbox = Outbox()
    e = EngineIO(outbox)
    target = _target(v, "polling", "s" if with_sid else None) + ("&j=1" if jsonp else "")
    headers = {"content-type": ctype} if ctype else {}
    e.polling_request(1, 0, method, target, headers, body)
    e.polling_response(1, 0, 1, method, target, status, headers, body)
    e.polling_response(1, 0, 1, method, target, status, headers, b"___eio[1](" + body + b");")
    e.finish(2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=10), max_size=5))
def test_v3_text_payload_with_arbitrary_text(parts: list[str]) -> None:
    body = "".join(f"{len(p)}:{p}" for p in parts).encode("utf-8", "surrogatepass")
    split_v3_text(body)


def test_sio_constants_are_kebab_case() -> None:
    for mod in (eio_mod, sio_mod):
        for name in dir(mod):
            value = getattr(mod, name)
            if name.isupper() and isinstance(value, str) and "-" in value:
                assert value == value.lower() and " " not in value


@pytest.mark.parametrize("close,reason,by", [
    ((20, S2C, 1009), "transport error", "server"),  # the server's ws: message too big
    ((20, S2C, 1002), "transport error", "server"),  # protocol error
    ((20, S2C, 1000), "server shutting down", "server"),  # io.close(): a normal Close, no DISCONNECT
    ((20, C2S, 1002), "transport close", "client"),  # the client gave up on the server's bytes
])
def test_close_code_of_the_server_tells_transport_error(close: tuple, reason: str, by: str) -> None:
    """engine.io's WebSocket transport reports an error when the server's ws fails on what it
    received (it then closes with 1002, 1007 or 1009): socket.io says "transport error"."""
    outbox, e, ws = ws_session()
    ws.ws_message(C2S, 10, 1, b"40")
    ws.ws_message(S2C, 11, 1, b'40{"sid":"abc"}')
    ws.ws_closed(21, close, None)
    e.finish(30)
    rows = [(r.namespace, r.disconnect_reason, r.disconnect_by) for r in outbox.sio_sockets]
    assert rows == [("/", reason, by)]
