"""Socket.IO packet headers and per-session state (dissect.protocols.socketio).

Examples come from socketio/socket.io-protocol: v5 on ``main`` ("Packet encoding / Examples"),
v4 on branch ``v4`` ("Packet encoding / Examples"); real encodings from socket.io-parser 4.2.7 and
3.4.5 (generated once with node, pasted below) and from python-socketio's ``Packet.encode``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.protocols import socketio as sio
from dissect.protocols.socketio import (
    ACK_ID_REUSED,
    ACK_WITHOUT_EVENT,
    ATTACHMENT_UNEXPECTED,
    ATTACHMENTS_INVALID,
    CONNECT_UNSOLICITED,
    CUSTOM_PARSER,
    GROUP_END,
    GROUP_MORE,
    GROUP_NONE,
    GROUP_START,
    MODE_CUSTOM,
    MODE_EIO,
    MODE_MSGPACK,
    MODE_SIO,
    MODE_UNKNOWN,
    RESERVED_EVENT_NAME,
    SIO_BAD_ACK_ID,
    SIO_BAD_PAYLOAD,
    SIO_BAD_TYPE,
    SIO_WRONG_DIRECTION,
    SocketIOState,
    connect_error_message,
    looks_like_msgpack_map,
    msgpack_packet,
    parse_header,
)
from dissect.protocols.socketio import packets as sio_packets
from dissect.protocols.socketio import state as sio_state
from dissect.records import C2S, S2C, Outbox

MS = 1_000_000


def hdr(text: str | bytes, v5: bool = True) -> tuple:
    data = text.encode() if isinstance(text, str) else text
    h = parse_header(data, 0, v5)
    return (sio.SIO_TYPE_NAMES[h.type] if h.type >= 0 else "", h.namespace, h.event, h.ack_id,
            h.attachments, h.anomaly)


# --- protocol v5 document examples (socket.io-protocol main, "Packet encoding / Examples") ---

V5_EXAMPLES = [
    ("0", ("CONNECT", "/", None, None, None, "")),
    ('0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}', ("CONNECT", "/admin", None, None, None, "")),
    ('4{"message":"Not authorized"}', ("CONNECT_ERROR", "/", None, None, None, "")),
    ('2["foo"]', ("EVENT", "/", "foo", None, None, "")),
    ('2/admin,["bar"]', ("EVENT", "/admin", "bar", None, None, "")),
    ('51-["baz",{"_placeholder":true,"num":0}]', ("BINARY_EVENT", "/", "baz", None, 1, "")),
    ('52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
     ("BINARY_EVENT", "/admin", "baz", None, 2, "")),
    ('212["foo"]', ("EVENT", "/", "foo", 12, None, "")),
    ('3/admin,13["bar"]', ("ACK", "/admin", None, 13, None, "")),
    ('61-15["bar",{"_placeholder":true,"num":0}]', ("BINARY_ACK", "/", None, 15, 1, "")),
    ("1", ("DISCONNECT", "/", None, None, None, "")),
    ("1/admin,", ("DISCONNECT", "/admin", None, None, None, "")),
    # sample session
    ('0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}', ("CONNECT", "/admin", None, None, None, "")),
    ('2/admin,1["tellme"]', ("EVENT", "/admin", "tellme", 1, None, "")),
    ('61-/admin,1[{"_placeholder":true,"num":0}]', ("BINARY_ACK", "/admin", None, 1, 1, "")),
    ('2["hey","Jude"]', ("EVENT", "/", "hey", None, None, "")),
]

# --- protocol v4 document examples (socket.io-protocol v4, "Packet encoding / Examples") ---

V4_EXAMPLES = [
    ("0", ("CONNECT", "/", None, None, None, "")),
    ("0/admin,", ("CONNECT", "/admin", None, None, None, "")),
    ("1/admin,", ("DISCONNECT", "/admin", None, None, None, "")),
    ('2["hello",1]', ("EVENT", "/", "hello", None, None, "")),
    ('2/admin,456["project:delete",123]', ("EVENT", "/admin", "project:delete", 456, None, "")),
    ("3/admin,456[]", ("ACK", "/admin", None, 456, None, "")),
    ('4/admin,"Not authorized"', ("CONNECT_ERROR", "/admin", None, None, None, "")),
    ('51-["hello",{"_placeholder":true,"num":0}]', ("BINARY_EVENT", "/", "hello", None, 1, "")),
    ('51-/admin,456["project:delete",{"_placeholder":true,"num":0}]',
     ("BINARY_EVENT", "/admin", "project:delete", 456, 1, "")),
    ('61-/admin,456[{"_placeholder":true,"num":0}]', ("BINARY_ACK", "/admin", None, 456, 1, "")),
    # "The client may include additional information ... in the namespace field"
    ("0/admin?token=1234&uid=abcd,", ("CONNECT", "/admin", None, None, None, "")),
]


@pytest.mark.parametrize(("text", "expected"), V5_EXAMPLES)
def test_v5_document_examples(text: str, expected: tuple) -> None:
    assert hdr(text) == expected


@pytest.mark.parametrize(("text", "expected"), V4_EXAMPLES)
def test_v4_document_examples(text: str, expected: tuple) -> None:
    assert hdr(text, v5=False) == expected


def test_header_at_offset_of_engineio_message() -> None:
    # Over the wire the Socket.IO packet follows the Engine.IO type "4": no copy, an offset.
    h = parse_header(b'42/chat,7["msg",1]', 1)
    assert (h.type, h.namespace, h.ack_id, h.event) == (2, "/chat", 7, "msg")
    assert h.payload_start == len(b'42/chat,7')


# Real encodings from socket.io-parser (node, captures/make/sio/node_modules).
NODE_V5 = {
    '2/admin,456["project:delete",123]': ("EVENT", "/admin", "project:delete", 456, None, ""),
    '52-7["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]':
        ("BINARY_EVENT", "/", "baz", 7, 2, ""),
    '61-/admin,456[{"_placeholder":true,"num":0}]': ("BINARY_ACK", "/admin", None, 456, 1, ""),
    '4/admin,{"message":"not authorized"}': ("CONNECT_ERROR", "/admin", None, None, None, ""),
    '2["say \\"hi\\"\\\\ \u2028 😀",1]': ("EVENT", "/", 'say "hi"\\ \u2028 😀', None, None, ""),
}
NODE_V4 = {
    '4/admin,"Not authorized"': ("CONNECT_ERROR", "/admin", None, None, None, ""),
    '51-/admin,456["project:delete",{"_placeholder":true,"num":0}]':
        ("BINARY_EVENT", "/admin", "project:delete", 456, 1, ""),
}


@pytest.mark.parametrize(("text", "expected"), list(NODE_V5.items()))
def test_node_v5_encodings(text: str, expected: tuple) -> None:
    assert hdr(text) == expected


@pytest.mark.parametrize(("text", "expected"), list(NODE_V4.items()))
def test_node_v4_encodings(text: str, expected: tuple) -> None:
    assert hdr(text, v5=False) == expected


# --- event names ---


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('2["caf\u00e9"]', "café"),  # raw UTF-8 (JSON.stringify does not escape)
        ('2["caf\\u00e9"]', "café"),  # escaped (python json.dumps default)
        ('2["\\ud83d\\ude00"]', "😀"),  # escaped surrogate pair
        ('2["a\\\\"]', "a\\"),  # escaped backslash right before the closing quote
        ('2["a\\\\\\"b"]', 'a\\"b'),
        ('2[ "spaced" ,1]', "spaced"),
        ("2[42,1]", "42"),  # socket.io-parser accepts a number as the name
        ("2[-1.5e3]", "-1.5e3"),
        ('2["a,b"]', "a,b"),
    ],
)
def test_event_names(text: str, name: str) -> None:
    h = parse_header(text.encode())
    assert (h.event, h.anomaly) == (name, "")


def test_lone_surrogate_name_is_made_writable() -> None:
    h = parse_header(b'2["x\\ud800y"]')
    assert h.event is not None
    h.event.encode("utf-8")  # does not raise


# --- anomalies of the header ---


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("", SIO_BAD_TYPE),
        ("9", SIO_BAD_TYPE),
        ("hello", SIO_BAD_TYPE),
        ("2", SIO_BAD_PAYLOAD),  # EVENT payload is mandatory
        ("2[]", SIO_BAD_PAYLOAD),  # ... and a non-empty array
        ("2{}", SIO_BAD_PAYLOAD),
        ('2["unterminated', SIO_BAD_PAYLOAD),
        ('2["bad \\x escape"]', SIO_BAD_PAYLOAD),
        ("2[true]", SIO_BAD_PAYLOAD),
        ("3", SIO_BAD_PAYLOAD),  # ACK payload is an array
        ("1x", SIO_BAD_PAYLOAD),  # DISCONNECT has none
        ("0[1]", SIO_BAD_PAYLOAD),  # CONNECT: an object or nothing
        ("4", SIO_BAD_PAYLOAD),  # CONNECT_ERROR: an object (v5) or a string (v4)
        ('5["x"]', ATTACHMENTS_INVALID),  # no "N-"
        ('50-["x"]', ATTACHMENTS_INVALID),  # n < 1
        ('51000000000-["x",{"_placeholder":true,"num":0}]', ATTACHMENTS_INVALID),
        (f"5{sio.MAX_ATTACHMENTS + 1}-[\"x\"]", ATTACHMENTS_INVALID),
        ('212345678901234567["x"]', SIO_BAD_ACK_ID),
        ('2["disconnect"]', RESERVED_EVENT_NAME),
    ],
)
def test_header_anomalies(text: str, tag: str) -> None:
    assert tag in parse_header(text.encode()).anomaly.split(";")


def test_reserved_names_are_v5_only() -> None:
    assert parse_header(b'2["disconnect"]', 0, v5=False).anomaly == ""


def test_huge_ack_id_does_not_hit_int_digit_limit() -> None:
    h = parse_header(b"2" + b"9" * 100_000 + b'["x"]')
    assert h.ack_id is None and SIO_BAD_ACK_ID in h.anomaly and h.event == "x"


def test_attachment_count_bound() -> None:
    assert parse_header(f'5{sio.MAX_ATTACHMENTS}-["x"]'.encode()).attachments == sio.MAX_ATTACHMENTS


# --- python-socketio encodings (hypothesis) ---

names = st.text(min_size=1, max_size=30).filter(
    lambda s: s not in sio.RESERVED_EVENTS and not any(0xD800 <= ord(c) <= 0xDFFF for c in s)
)
namespaces = st.one_of(
    st.just("/"),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters=",?"),
            max_size=12).map(lambda s: "/" + s),
)
ack_ids = st.one_of(st.none(), st.integers(min_value=0, max_value=2**53 - 1))


@settings(max_examples=300, deadline=None)  # the first example imports python-socketio
@given(name=names, nsp=namespaces, ack_id=ack_ids,
       blobs=st.lists(st.binary(max_size=8), max_size=3))
def test_python_socketio_event_roundtrip(name: str, nsp: str, ack_id: int | None,
                                         blobs: list[bytes]) -> None:
    from socketio import packet

    data = [name, {"k": 'v"\\'}, *blobs]
    encoded = packet.Packet(packet.EVENT, data=data, namespace=nsp, id=ack_id).encode()
    first = encoded[0] if isinstance(encoded, list) else encoded
    h = parse_header(first.encode("utf-8"))
    assert h.anomaly == ""
    assert h.event == name
    assert h.namespace == nsp
    assert h.ack_id == ack_id
    if blobs:
        assert sio.SIO_TYPE_NAMES[h.type] == "BINARY_EVENT" and h.attachments == len(blobs)
    else:
        assert sio.SIO_TYPE_NAMES[h.type] == "EVENT" and h.attachments is None


@settings(max_examples=100)
@given(nsp=namespaces, ack_id=st.integers(min_value=0, max_value=10**9),
       binary=st.booleans())
def test_python_socketio_ack_roundtrip(nsp: str, ack_id: int, binary: bool) -> None:
    from socketio import packet

    data: list[object] = ["ok", b"\x00\x01"] if binary else ["ok"]
    encoded = packet.Packet(packet.ACK, data=data, namespace=nsp, id=ack_id).encode()
    first = encoded[0] if isinstance(encoded, list) else encoded
    h = parse_header(first.encode())
    assert (h.namespace, h.ack_id, h.anomaly) == (nsp, ack_id, "")
    assert sio.SIO_TYPE_NAMES[h.type] == ("BINARY_ACK" if binary else "ACK")


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=4), st.booleans())
def test_parse_header_never_raises(data: bytes, start: int, v5: bool) -> None:
    parse_header(data, start, v5)


# --- msgpack detection ---


def test_msgpack_map_detection() -> None:
    # socket.io-msgpack-parser: {type: 2, data: ["hi", 1], nsp: "/"} as msgpack
    packet = b"\x83\xa4type\x02\xa4data\x92\xa2hi\x01\xa3nsp\xa1/"
    assert looks_like_msgpack_map(packet)
    assert looks_like_msgpack_map(b"\x04" + packet, 1)
    assert looks_like_msgpack_map(b"\xde\x00\x03\xa4type\x02")
    assert not looks_like_msgpack_map(b"\x01\x02\x03\x04")
    assert not looks_like_msgpack_map(b"\x83\x01\x02")  # map whose first key is not a string
    assert not looks_like_msgpack_map(b"")
    assert not looks_like_msgpack_map(b"\x83")


def test_connect_error_message() -> None:
    assert connect_error_message(b'{"message":"not authorized","data":{"x":1}}') == "not authorized"
    assert connect_error_message(b'"Not authorized"') == "Not authorized"
    assert connect_error_message(b'{"code":3}') == '{"code":3}'
    assert connect_error_message(b"not json") == "not json"


# --- SocketIOState ---


def state(protocol: int = 5, mode: int = MODE_SIO) -> tuple[SocketIOState, Outbox, dict[str, int]]:
    outbox = Outbox()
    s = SocketIOState(outbox, mode)
    s.protocol = protocol
    return s, outbox, s.counters


def text(s: SocketIOState, d: int, ts: int, payload: str) -> sio.SioResult:
    res = s.text(d, ts, ("4" + payload).encode(), 1, 7, "websocket")
    assert res is not None
    return res


def test_ack_latency_and_ack_without_event() -> None:
    s, _, _ = state()
    assert text(s, C2S, 1 * MS, '2/chat,5["q"]').ack_latency_ms is None
    r = text(s, S2C, 4 * MS, '3/chat,5["a"]')
    assert (r.ack_latency_ms, r.anomaly) == (3.0, "")
    again = text(s, S2C, 5 * MS, '3/chat,5["a"]')  # already answered
    assert again.anomaly == ACK_WITHOUT_EVENT and again.ack_latency_ms is None


def test_ack_must_match_namespace_and_opposite_direction() -> None:
    s, _, _ = state()
    text(s, C2S, 0, '21["q"]')
    assert text(s, C2S, MS, '31["a"]').anomaly == ACK_WITHOUT_EVENT  # same direction
    assert text(s, S2C, MS, '3/other,1["a"]').anomaly == ACK_WITHOUT_EVENT  # other namespace
    assert text(s, S2C, 2 * MS, '31["a"]').ack_latency_ms == 2.0
    assert text(s, S2C, 3 * MS, '3["no id"]').anomaly == ACK_WITHOUT_EVENT


def test_ack_id_reused() -> None:
    s, _, _ = state()
    assert text(s, C2S, 0, '21["q"]').anomaly == ""
    assert text(s, C2S, MS, '21["q"]').anomaly == ACK_ID_REUSED
    assert text(s, S2C, 3 * MS, '31[]').ack_latency_ms == 2.0  # from the latest


def test_pending_acks_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sio_state, "MAX_PENDING_ACKS", 3)
    s, _, counters = state()
    for i in range(5):
        text(s, C2S, i, f'2{i}["q"]')
    assert len(s.pending_acks) == 3 and counters["sio-acks-dropped"] == 2
    assert text(s, S2C, 10, '30[]').anomaly == ACK_WITHOUT_EVENT  # the oldest were dropped
    assert text(s, S2C, 10, '34[]').anomaly == ""
    s.close()
    assert counters["sio-acks-unanswered"] == 2


def test_v5_connect_handshakes() -> None:
    s, outbox, _ = state()
    text(s, C2S, 1 * MS, "0")
    text(s, C2S, 2 * MS, '0/admin,{"token":"123"}')
    assert text(s, S2C, 3 * MS, '0{"sid":"wZX3oN0bSVIhsaknAAAI"}').anomaly == ""
    r = text(s, S2C, 5 * MS, '4/admin,{"message":"not authorized"}')
    assert (r.sio_type, r.namespace, r.anomaly) == ("CONNECT_ERROR", "/admin", "")
    got = [(h.layer, h.ts_start, h.ts_end, h.duration_ms, h.ok, h.detail, h.transport, h.session_id)
           for h in outbox.handshakes]
    assert got == [
        ("socketio", 1 * MS, 3 * MS, 2.0, True, "namespace=/", "websocket", 7),
        ("socketio", 2 * MS, 5 * MS, 3.0, False, "namespace=/admin error=not authorized",
         "websocket", 7),
    ]


def test_v5_connect_unsolicited() -> None:
    s, outbox, _ = state()
    assert text(s, S2C, 0, '0{"sid":"x"}').anomaly == CONNECT_UNSOLICITED
    assert text(s, S2C, 0, '4{"message":"no"}').anomaly == CONNECT_UNSOLICITED
    assert outbox.handshakes == []


def test_v4_unprompted_default_namespace() -> None:
    s, outbox, _ = state(protocol=4)
    s.open_ts = 10 * MS
    assert text(s, S2C, 12 * MS, "0").anomaly == ""
    text(s, C2S, 20 * MS, "0/admin?token=abc,")  # the query is not part of the namespace
    text(s, S2C, 21 * MS, "0/admin,")
    text(s, C2S, 30 * MS, "0/secret,")
    text(s, S2C, 32 * MS, '4/secret,"Not authorized"')
    got = [(h.ts_start, h.ts_end, h.ok, h.detail) for h in outbox.handshakes]
    assert got == [
        (10 * MS, 12 * MS, True, "namespace=/"),
        (20 * MS, 21 * MS, True, "namespace=/admin"),
        (30 * MS, 32 * MS, False, "namespace=/secret error=Not authorized"),
    ]
    # v4 too: a custom namespace nobody asked for
    assert text(s, S2C, 40 * MS, "0/other,").anomaly == CONNECT_UNSOLICITED


def test_connect_error_from_client() -> None:
    s, _, _ = state()
    assert text(s, C2S, 0, '4{"message":"x"}').anomaly == SIO_WRONG_DIRECTION


def test_unanswered_connect_fails_on_close() -> None:
    s, outbox, _ = state()
    text(s, C2S, 1 * MS, "0/chat,")
    s.close()
    (h,) = outbox.handshakes
    assert (h.ts_start, h.ts_end, h.ok, h.detail) == (
        1 * MS, None, False, "namespace=/chat error=no-response")


def test_attachments_sequence() -> None:
    s, _, _ = state()
    r = text(s, C2S, 0, '52-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    assert (r.group, r.attachments) == (GROUP_START, 2)
    # the other direction is independent
    other = s.binary(S2C, b"\x00")
    assert other is not None and other.anomaly == ATTACHMENT_UNEXPECTED
    a = s.binary(C2S, b"\x01")
    b = s.binary(C2S, b"\x02")
    assert a is not None and b is not None
    assert (a.group, a.attachment_index, a.namespace, a.anomaly) == (GROUP_MORE, 0, "/", "")
    assert (b.group, b.attachment_index) == (GROUP_END, 1)
    c = s.binary(C2S, b"\x03")
    assert c is not None and c.anomaly == ATTACHMENT_UNEXPECTED


def test_text_while_attachments_expected_breaks_group() -> None:
    s, _, _ = state()
    text(s, C2S, 0, '51-["up",{"_placeholder":true,"num":0}]')
    r = text(s, C2S, 1, '2["next"]')
    assert r.broken and r.group == GROUP_NONE
    assert s.expect[C2S] == 0


def test_impossible_attachment_count_expects_nothing() -> None:
    s, _, _ = state()
    r = text(s, C2S, 0, '51000000000-["x"]')
    assert ATTACHMENTS_INVALID in r.anomaly and r.group == GROUP_NONE and s.expect[C2S] == 0


def test_custom_parser_detection() -> None:
    s, _, _ = state(mode=MODE_UNKNOWN)
    assert s.binary(C2S, b"\x01\x02") is None  # not Socket.IO as far as we know
    # socket.io-msgpack-parser's CONNECT {type: 0, data: {}, nsp: "/"}: decoded
    r = s.binary(C2S, b"\x83\xa4type\x00\xa4data\x80\xa3nsp\xa1/")
    assert r is not None and r.sio_type == "CONNECT" and r.namespace == "/" and not r.anomaly
    assert s.mode == MODE_MSGPACK
    damaged = s.binary(S2C, b"\x01\x02")  # not one of its packets: said so, the session stays msgpack
    assert damaged is not None and damaged.anomaly == CUSTOM_PARSER and s.mode == MODE_MSGPACK
    # a map that is no msgpack-parser packet (no integer type, no nsp): another custom parser
    other, _, _ = state(mode=MODE_UNKNOWN)
    r = other.binary(C2S, b"\x82\xa4kind\x02\xa4body\x90")
    assert r is not None and r.anomaly == CUSTOM_PARSER and other.mode == MODE_CUSTOM
    r2 = other.binary(S2C, b"\x83\xa4type\x00\xa4data\x80\xa3nsp\xa1/")  # every binary message after
    assert r2 is not None and r2.anomaly == CUSTOM_PARSER and r2.sio_type == ""


def test_mode_detection_plain_engineio() -> None:
    s, _, _ = state(mode=MODE_UNKNOWN)
    assert s.text(C2S, 0, b"4hello", 1, 1, "polling") is None
    assert s.mode == MODE_EIO
    assert s.text(C2S, 0, b'42["looks like sio"]', 1, 1, "polling") is None
    assert s.binary(C2S, b"\x83\xa4type\x02") is None
    s2, _, _ = state(mode=MODE_UNKNOWN)
    assert s2.text(C2S, 0, b"4123", 1, 1, "polling") is None  # DISCONNECT with an ack id: no
    s3, _, _ = state(mode=MODE_UNKNOWN)
    assert s3.text(C2S, 0, b"40", 1, 1, "polling") is not None and s3.mode == MODE_SIO


def test_payload_json_not_parsed_on_hot_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("json.loads on the hot path")

    monkeypatch.setattr(json, "loads", boom)
    monkeypatch.setattr(sio_packets.json, "loads", boom)
    s, _, _ = state()
    text(s, C2S, 0, '2/chat,3["ev\\"x",' + '{"a":1},' * 1000 + "1]")
    text(s, S2C, 0, '3/chat,3[{"big":"' + "x" * 10000 + '"}]')
    text(s, C2S, 0, '51-["up",{"_placeholder":true,"num":0}]')


# --- socket.io-msgpack-parser ---

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_msgpack_packet_never_raises(data: bytes) -> None:
    p = msgpack_packet(data)
    assert p is None or 0 <= p.type <= 4


@settings(max_examples=300, deadline=None)
@given(t=st.integers(0, 4), nsp=st.sampled_from(["/", "/chat", "/ä"]), ack=st.one_of(st.none(), st.integers(0, 99)),
       name=st.text(min_size=1, max_size=10), args=st.lists(msgpack_values, max_size=3))
def test_msgpack_packet_round_trip(t: int, nsp: str, ack: int | None, name: str, args: list) -> None:
    """What socket.io-msgpack-parser encodes ({type, data, nsp, id}) reads back as its fields."""
    import msgpack

    data: object = {0: None, 1: None, 2: [name, *args], 3: args, 4: {"message": name}}[t]
    obj: dict[str, object] = {"type": t, "nsp": nsp}
    if data is not None:
        obj["data"] = data
    if ack is not None and t in (2, 3):
        obj["id"] = ack
    p = msgpack_packet(msgpack.packb(obj))
    assert p is not None and (p.type, p.namespace) == (t, nsp)
    assert p.ack_id == (ack if t in (2, 3) else None)
    if t == 2:
        assert p.event == name and p.digest is not None and not p.anomaly.replace("reserved-event-name", "")
    else:
        assert p.event is None and not p.anomaly


def test_msgpack_javascript_undefined_is_dropped() -> None:
    """notepack.io writes undefined as ext type 0 holding 0x00: dropped from objects as
    JSON.stringify drops it (the client's CONNECT without auth: {type: 0, nsp: "/", data: undefined})."""
    p = msgpack_packet(b"\x83\xa4type\x00\xa3nsp\xa1/\xa4data\xd4\x00\x00")
    assert p is not None and p.type == 0 and p.json == "" and not p.anomaly
    p = msgpack_packet(b"\x83\xa4type\x00\xa3nsp\xa1/\xa4data\x82\xa3sid\xa1x\xa3pid\xd4\x00\x00")
    assert p is not None and p.json == '{"sid":"x"}'
