"""Unit facts: the key log parser, the record and handshake reassemblers, the hello parsers, the suite table and
TLS 1.2 CBC record protection (both MAC orders, checked against HMAC and AES-CBC built here)."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.protocols.tls import KeyLog
from dissect.protocols.tls.cipher import DecryptError, Tls12CbcProtection
from dissect.protocols.tls.handshake import ClientHelloInfo, ParseFailure, parse_client_hello, parse_server_hello
from dissect.protocols.tls.records import MAX_HANDSHAKE_MESSAGE, HandshakeReassembler, RecordReader
from dissect.protocols.tls.suites import SUITES, suite_name
from tests.test_tls_vectors import CLIENT_HELLO_RECORD, SERVER_HELLO_RECORD

RANDOM = "ab" * 32


def test_keylog_parses_labels_comments_crlf_and_counts_junk() -> None:
    text = (
        "# SSL/TLS secrets log file\r\n"
        "\r\n"
        f"CLIENT_RANDOM {RANDOM} {'11' * 48}\r\n"
        f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {'cd' * 32} {'22' * 32}\n"
        f"SERVER_TRAFFIC_SECRET_0 {'cd' * 32} {'33' * 48}\n"
        "garbage\n"
        f"CLIENT_RANDOM {RANDOM} zz\n"  # bad hex
        f"CLIENT_RANDOM {'ab' * 31} {'11' * 48}\n"  # short random
        f"CLIENT_RANDOM {RANDOM} {'11' * 47}\n"  # master secret of the wrong size
        f"RSA {'ab' * 8} {'11' * 48}\n"  # a well-formed label this engine does not use
    )
    keylog = KeyLog.from_text(text.encode())
    assert len(keylog) == 3 and keylog.bad_lines == 4 and keylog.ignored_lines == 1
    assert keylog.secrets_for(bytes.fromhex(RANDOM)) == {"CLIENT_RANDOM": bytes.fromhex("11" * 48)}
    assert set(keylog.secrets_for(bytes.fromhex("cd" * 32))) == {"CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                                                                 "SERVER_TRAFFIC_SECRET_0"}
    assert keylog.secrets_for(b"\x00" * 32) == {}
    assert keylog.add_text(f"CLIENT_RANDOM {RANDOM} {'44' * 48}") == 1 and len(keylog) == 3  # replaced, not added
    assert keylog.secrets_for(bytes.fromhex(RANDOM))["CLIENT_RANDOM"] == bytes.fromhex("44" * 48)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.binary()))
def test_keylog_never_raises(text: str | bytes) -> None:
    keylog = KeyLog.from_text(text)
    assert len(keylog) >= 0 and keylog.bad_lines >= 0


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(1, 400), max_size=20))
def test_record_reader_any_split_gives_the_same_records(cuts: list[int]) -> None:
    stream = CLIENT_HELLO_RECORD + SERVER_HELLO_RECORD + bytes([23, 3, 3, 0, 0]) + CLIENT_HELLO_RECORD
    reader = RecordReader()
    records = []
    pos = 0
    for cut in cuts + [len(stream)]:
        records += reader.feed(stream[pos : pos + cut])
        pos += cut
    assert [(r.content_type, len(r.fragment)) for r in records] == [(22, 196), (22, 90), (23, 0), (22, 196)]
    assert reader.buffered == 0 and reader.error is None


def test_handshake_reassembler_spans_records_and_bounds_size() -> None:
    messages = CLIENT_HELLO_RECORD[5:] + SERVER_HELLO_RECORD[5:]
    reassembler = HandshakeReassembler()
    out = []
    for i in range(0, len(messages), 7):
        out += reassembler.feed(messages[i : i + 7])
    assert [(t, len(m)) for t, m in out] == [(1, 196), (2, 90)] and reassembler.buffered == 0
    big = HandshakeReassembler()
    assert big.feed(bytes([11]) + (MAX_HANDSHAKE_MESSAGE + 1).to_bytes(3, "big")) == []
    assert big.error is not None and big.error[0] == "tls-handshake-too-large"


def test_parse_rfc8448_hellos() -> None:
    hello = parse_client_hello(CLIENT_HELLO_RECORD[9:])
    assert isinstance(hello, ClientHelloInfo)
    assert hello.sni == "server" and hello.versions == (0x0304,) and hello.session_ticket
    assert [suite_name(c) for c in hello.cipher_suites] == [
        "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384"]
    assert not hello.early_data and not hello.pre_shared_key and hello.alpn == ()
    server = parse_server_hello(SERVER_HELLO_RECORD[9:])
    assert not isinstance(server, ParseFailure)
    assert server.version == 0x0304 and server.legacy_version == 0x0303 and server.cipher_suite == 0x1301
    assert not server.hello_retry and not server.pre_shared_key


def test_every_truncation_of_a_hello_is_a_parse_failure() -> None:
    for parse, body in ((parse_client_hello, CLIENT_HELLO_RECORD[9:]), (parse_server_hello, SERVER_HELLO_RECORD[9:])):
        for end in range(len(body)):
            result = parse(body[:end])  # type: ignore[operator]
            assert isinstance(result, ParseFailure) or end >= 38, end


def test_suite_table() -> None:
    assert SUITES[0xC02F].name == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" and SUITES[0xC02F].fixed_iv_length == 4
    assert SUITES[0xC028].mac_name == "sha384" and SUITES[0xC028].hash_name == "sha384"
    assert SUITES[0xC013].mac_name == "sha1" and SUITES[0xC013].hash_name == "sha256"
    assert SUITES[0xCCA8].kind == "chacha" and SUITES[0x1303].tls13 and not SUITES[0xCCA8].tls13
    assert suite_name(0x000A) == "TLS_RSA_WITH_3DES_EDE_CBC_SHA" and suite_name(0x2A2A) == "GREASE"
    assert suite_name(0xBEEF) == "0xBEEF"


def _cbc_record(key: bytes, mac_key: bytes, seq: int, plaintext: bytes, encrypt_then_mac: bool) -> bytes:
    """A TLS 1.2 AES-CBC-SHA256 application data record built from the RFC 5246 / RFC 7366 formulas."""
    def mac(data: bytes) -> bytes:
        h = hmac.HMAC(mac_key, hashes.SHA256())
        h.update(seq.to_bytes(8, "big") + b"\x17\x03\x03" + len(data).to_bytes(2, "big") + data)
        return h.finalize()

    iv = os.urandom(16)
    body = plaintext if encrypt_then_mac else plaintext + mac(plaintext)
    pad = 15 - len(body) % 16
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = iv + encryptor.update(body + bytes([pad]) * (pad + 1)) + encryptor.finalize()
    fragment = ciphertext + mac(ciphertext) if encrypt_then_mac else ciphertext
    return bytes([23, 3, 3]) + len(fragment).to_bytes(2, "big") + fragment


@pytest.mark.parametrize("encrypt_then_mac", [False, True])
def test_cbc_protection_checks_mac_and_padding(encrypt_then_mac: bool) -> None:
    suite = SUITES[0xC027]
    key, mac_key = os.urandom(16), os.urandom(32)
    protection = Tls12CbcProtection(suite, key, mac_key, encrypt_then_mac)
    for seq, text in enumerate([b"", b"x", b"hello world" * 10]):
        record = _cbc_record(key, mac_key, seq, text, encrypt_then_mac)
        assert protection.open(record[:5], record[5:]) == (23, text)
    record = bytearray(_cbc_record(key, mac_key, 3, b"tampered", encrypt_then_mac))
    record[-1 if encrypt_then_mac else 30] ^= 1
    with pytest.raises(DecryptError) as failure:
        protection.open(bytes(record[:5]), bytes(record[5:]))
    assert failure.value.kind == "tls-bad-mac"
