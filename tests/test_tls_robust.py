"""Bad and unusual input: wrong or missing keys, garbage, truncation, oversized records, alerts, lost bytes,
0-RTT, HelloRetryRequest, unsupported suites, and random bytes (hypothesis). Nothing may raise."""

from __future__ import annotations

import os
import ssl

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.protocols.tls import (
    Alert,
    Anomaly,
    ApplicationData,
    HandshakeDone,
    KeyLog,
    ServerHello,
    TlsConnection,
    Undecryptable,
    looks_like_tls,
)
from dissect.protocols.tls.handshake import HELLO_RETRY_REQUEST_RANDOM
from dissect.protocols.tls.keys import traffic_key_iv
from tests.test_tls_e2e import feed, self_signed_certificate, sessions_for
from tests.test_tls_vectors import (
    APPLICATION_PAYLOAD,
    CLIENT_HELLO_RECORD,
    RFC8448_WIRE,
    SERVER_HELLO_RECORD,
    rfc8448_keylog,
)


def kinds(events: list) -> list[str]:
    return [e.kind for e in events if isinstance(e, Anomaly)]


def reasons(events: list) -> list[str]:
    return [e.reason for e in events if isinstance(e, Undecryptable)]


def run(conn: TlsConnection, wire: list[tuple[int, bytes]]) -> list:
    events: list = []
    for ts, (direction, data) in enumerate(wire):
        events += conn.receive(direction, ts, data)
    return events + conn.finish(len(wire))


def wrong_keylog(text: str) -> KeyLog:
    """The same labels and client randoms with other secrets."""
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            label, random_hex, secret = line.split()
            lines.append(f"{label} {random_hex} {os.urandom(len(secret) // 2).hex()}")
    return KeyLog.from_text("\n".join(lines))


def test_wrong_key_tls12_and_tls13() -> None:
    for name, spec in (("wrong-12", {"version": "1.2", "ciphers": "ECDHE-RSA-AES128-GCM-SHA256", "writes": 6}),
                       ("wrong-13", {"version": "1.3", "writes": 6})):
        result = sessions_for(name, spec)
        conn = TlsConnection(wrong_keylog(result["keylog"]))
        events = feed(conn, result["sessions"][0]["wire"])
        assert reasons(events) == ["wrong key"]
        assert not [e for e in events if isinstance(e, ApplicationData)]
        assert conn.decrypted is False and conn.why_undecryptable == "wrong key"
        assert sum(isinstance(e, HandshakeDone) for e in events) == 1  # framing still gives the timing
        assert kinds(events) == []


def test_missing_keys() -> None:
    result = sessions_for("missing", {"version": "1.2", "ciphers": "ECDHE-RSA-AES256-GCM-SHA384", "writes": 4})
    wire = result["sessions"][0]["wire"]
    for keylog, reason in ((None, "no keys"), (KeyLog(), "no key for this session")):
        conn = TlsConnection(keylog)
        events = feed(conn, wire)
        assert reasons(events) == [reason] and conn.decrypted is False
        assert conn.version == "TLS 1.2" and conn.cipher == "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        assert not [e for e in events if isinstance(e, ApplicationData)]
        # TLS 1.2 without keys: the encrypted close_notify alerts are still seen as alerts
        assert [(e.direction, e.description, e.fatal) for e in events if isinstance(e, Alert)] == [
            (0, "encrypted", None), (1, "encrypted", None)]
        assert [e.direction for e in events if isinstance(e, HandshakeDone)] == [1]


def test_key_log_given_after_the_engine_was_built() -> None:
    keylog = KeyLog()
    conn = TlsConnection(keylog)
    events = conn.receive(0, 0, CLIENT_HELLO_RECORD)
    keylog.add_text(str(rfc8448_keylog_text()))  # e.g. a Decryption Secrets Block read after the ClientHello
    for ts, (direction, data) in enumerate(RFC8448_WIRE[1:], start=1):
        events += conn.receive(direction, ts, data)
    assert [e.data for e in events if isinstance(e, ApplicationData)] == [APPLICATION_PAYLOAD, APPLICATION_PAYLOAD]


def rfc8448_keylog_text() -> str:
    return "\n".join(
        f"{label} {CLIENT_HELLO_RECORD[11:43].hex()} {secret.hex()}"
        for label, secret in rfc8448_keylog().secrets_for(CLIENT_HELLO_RECORD[11:43]).items()
    )


def test_garbage_stream_stops_that_direction() -> None:
    conn = TlsConnection(None)
    events = conn.receive(0, 1, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert kinds(events) == ["tls-bad-record"]
    assert conn.receive(0, 2, CLIENT_HELLO_RECORD) == []  # stopped for good
    assert not looks_like_tls(b"GET / HTTP/1.1\r\n") and looks_like_tls(CLIENT_HELLO_RECORD)
    assert not looks_like_tls(CLIENT_HELLO_RECORD[:5]) and not looks_like_tls(b"\x16\x03\x05\x00\x10\x01")


def test_truncated_record_at_finish() -> None:
    conn = TlsConnection(rfc8448_keylog())
    conn.receive(0, 0, CLIENT_HELLO_RECORD[:-3])
    events = conn.finish(5)
    assert [(e.kind, e.detail) for e in events] == [
        ("tls-truncated-record", f"{len(CLIENT_HELLO_RECORD) - 3} bytes of an incomplete record at the end")]
    assert conn.receive(0, 6, CLIENT_HELLO_RECORD[-3:]) == []  # nothing after finish


def test_record_over_the_size_limit() -> None:
    conn = TlsConnection(None)
    assert conn.receive(1, 0, bytes([23, 3, 3]) + (2**14 + 2049).to_bytes(2, "big")) != []
    assert conn.receive(1, 0, b"") == []
    # once TLS 1.3 is known, the limit is 2^14 + 256
    conn = TlsConnection(None)
    run_events = conn.receive(0, 0, CLIENT_HELLO_RECORD) + conn.receive(1, 1, SERVER_HELLO_RECORD)
    assert kinds(run_events) == []
    events = conn.receive(1, 2, bytes([23, 3, 3]) + (2**14 + 257).to_bytes(2, "big"))
    assert kinds(events) == ["tls-record-too-large"]


def test_crafted_plaintext_fatal_alert() -> None:
    conn = TlsConnection(None)
    conn.receive(0, 0, CLIENT_HELLO_RECORD)
    events = conn.receive(1, 1, bytes.fromhex("1503030002 0228"))
    assert events == [Alert(1, 1, 2, "handshake_failure", True, False)]


def test_real_fatal_alert_from_a_server_given_a_bad_finished() -> None:
    cert, key = self_signed_certificate()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname, client_ctx.verify_mode = False, ssl.CERT_NONE
    for ctx in (server_ctx, client_ctx):
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    wire: list[tuple[int, bytes]] = []
    for step in range(3):
        for obj in (client, server):
            try:
                obj.do_handshake()
            except ssl.SSLError:
                pass
            for source, sink, direction in ((c_out, s_in, 0), (s_out, c_in, 1)):
                data = source.read()
                if data:
                    if direction == 0 and step == 1:  # the client's Finished flight: spoil its last byte
                        data = data[:-1] + bytes([data[-1] ^ 1])
                    wire.append((direction, data))
                    sink.write(data)
    events = run(TlsConnection(None), wire)
    fatal = [e for e in events if isinstance(e, Alert) and e.direction == 1]
    assert fatal and fatal[0].fatal is True and fatal[0].encrypted is False
    assert fatal[0].description in ("bad_record_mac", "decrypt_error")


def test_lost_bytes_stop_one_direction_only() -> None:
    result = sessions_for("gap", {"version": "1.3", "writes": 8, "seed": 9})
    wire = [(d, bytes.fromhex(x)) for d, x in result["sessions"][0]["wire"]]
    conn = TlsConnection(KeyLog.from_text(result["keylog"]))
    events: list = []
    for ts, (direction, data) in enumerate(wire):
        if ts == 6 and direction == 0:
            events += conn.gap(0, ts, 1000)
        events += conn.receive(direction, ts, data)
    assert reasons(events) == ["lost bytes"] and "tls-lost-bytes" in kinds(events)
    assert conn.decrypted is True  # what came before the gap was decrypted
    later_s2c = [e for e in events if isinstance(e, ApplicationData) and e.direction == 1 and e.ts > 6]
    assert later_s2c and not [e for e in events if isinstance(e, ApplicationData) and e.direction == 0 and e.ts >= 6]


def test_unsupported_cipher_suite_and_no_handshake() -> None:
    server_hello = bytearray(SERVER_HELLO_RECORD)
    server_hello[5 + 4 + 2 + 32 + 1 : 5 + 4 + 2 + 32 + 3] = b"\x13\x04"  # TLS_AES_128_CCM_SHA256
    conn = TlsConnection(rfc8448_keylog())
    events = run(conn, [(0, CLIENT_HELLO_RECORD), (1, bytes(server_hello))])
    assert reasons(events) == ["unsupported cipher suite TLS_AES_128_CCM_SHA256"]
    conn = TlsConnection(rfc8448_keylog())
    events = run(conn, [(0, RFC8448_WIRE[4][1]), (1, RFC8448_WIRE[5][1])])  # only application data records
    assert reasons(events) == ["no handshake"] and not [e for e in events if isinstance(e, ApplicationData)]


def test_hello_retry_request_then_server_hello() -> None:
    retry = bytearray(SERVER_HELLO_RECORD)
    retry[11:43] = HELLO_RETRY_REQUEST_RANDOM
    wire = [(0, CLIENT_HELLO_RECORD), (1, bytes(retry)), (0, CLIENT_HELLO_RECORD)] + RFC8448_WIRE[1:]
    conn = TlsConnection(rfc8448_keylog())
    events = run(conn, wire)
    hellos = [e for e in events if isinstance(e, ServerHello)]
    assert len(hellos) == 1 and hellos[0].hello_retry is True
    assert [e.data for e in events if isinstance(e, ApplicationData)] == [APPLICATION_PAYLOAD, APPLICATION_PAYLOAD]


def _client_hello_with_early_data() -> bytes:
    """RFC 8448's ClientHello with an empty early_data extension appended (the engine checks no transcript)."""
    record = bytearray(CLIENT_HELLO_RECORD)
    extensions_at = 5 + 4 + 2 + 32 + 1 + 0 + 2 + 6 + 2  # header, hs header, version, random, sid, suites, comp
    record += b"\x00\x2a\x00\x00"
    for at, size in ((3, 2), (6, 3), (extensions_at, 2)):
        record[at : at + size] = (int.from_bytes(record[at : at + size], "big") + 4).to_bytes(size, "big")
    return bytes(record)


def _early_record(secret: bytes, seq: int, payload: bytes) -> bytes:
    key, iv = traffic_key_iv(secret, 16, "sha256")
    header = bytes([23, 3, 3]) + (len(payload) + 1 + 16).to_bytes(2, "big")
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    return header + AESGCM(key).encrypt(nonce, payload + b"\x17", header)


def test_early_data_decrypted_with_its_secret_or_skipped() -> None:
    early_secret = bytes(range(32))
    client_hello = _client_hello_with_early_data()
    early = _early_record(early_secret, 0, b"GET /early") + _early_record(early_secret, 1, b" HTTP/1.1")
    wire = [(0, client_hello + early)] + RFC8448_WIRE[1:]
    text = rfc8448_keylog_text()
    early_line = f"CLIENT_EARLY_TRAFFIC_SECRET {client_hello[11:43].hex()} {early_secret.hex()}"
    with_secret = KeyLog.from_text(f"{text}\n{early_line}")
    events = run(TlsConnection(with_secret), wire)
    assert [e.data for e in events if isinstance(e, ApplicationData) and e.direction == 0] == [
        b"GET /early", b" HTTP/1.1", APPLICATION_PAYLOAD]
    assert kinds(events) == ["tls-early-data"]
    events = run(TlsConnection(KeyLog.from_text(text)), wire)
    assert [e.data for e in events if isinstance(e, ApplicationData) and e.direction == 0] == [APPLICATION_PAYLOAD]
    assert kinds(events) == ["tls-early-data", "tls-records-skipped"]


operations = st.lists(
    st.tuples(st.sampled_from(["receive", "gap", "finish"]), st.integers(0, 1), st.binary(max_size=300)),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(ops=operations, prefix=st.booleans())
def test_random_bytes_never_raise(ops: list[tuple[str, int, bytes]], prefix: bool) -> None:
    conn = TlsConnection(rfc8448_keylog())
    if prefix:  # past the ClientHello and ServerHello, so the random bytes reach decryption and parsing
        conn.receive(0, 0, CLIENT_HELLO_RECORD)
        conn.receive(1, 0, SERVER_HELLO_RECORD)
    for ts, (op, direction, data) in enumerate(ops):
        if op == "receive":
            events = conn.receive(direction, ts, data)
        elif op == "gap":
            events = conn.gap(direction, ts, len(data))
        else:
            events = conn.finish(ts)
        assert "tls-internal-error" not in kinds(events)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), content_type=st.sampled_from([21, 22, 23]), direction=st.integers(0, 1))
def test_well_framed_random_records_never_raise(body: bytes, content_type: int, direction: int) -> None:
    conn = TlsConnection(rfc8448_keylog())
    conn.receive(0, 0, CLIENT_HELLO_RECORD)
    for record_type in (22, content_type):
        record = bytes([record_type, 3, 3]) + len(body).to_bytes(2, "big") + body
        assert "tls-internal-error" not in kinds(conn.receive(direction, 1, record))
