"""End to end: real TLS stacks (Python's ``ssl`` over ``MemoryBIO`` pairs, OpenSSL underneath) talk in memory with
``SSLContext.keylog_filename`` set; the bytes each side wrote are fed to ``TlsConnection`` in random-sized chunks
(hypothesis), and what it decrypts must be exactly what the peers wrote.

Python cannot choose TLS 1.3 suites (no ``set_ciphersuites``) nor trigger a KeyUpdate, so those sessions run in a
subprocess: OPENSSL_CONF restricts the TLS 1.3 suites, and ``SSL_key_update`` is called through ctypes on the
SSL pointer of the client's SSLObject (checked against its SSL_CTX first; skipped when that check fails).
"""

from __future__ import annotations

import datetime
import json
import os
import random
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.protocols.tls import (
    Alert,
    AlpnKnown,
    Anomaly,
    ApplicationData,
    ClientHello,
    HandshakeDone,
    KeyLog,
    ServerHello,
    TlsConnection,
    Undecryptable,
)
from dissect.protocols.tls.suites import suite_name

ROOT = Path(__file__).resolve().parent.parent
OP_NO_ENCRYPT_THEN_MAC = getattr(ssl, "OP_NO_ENCRYPT_THEN_MAC", 0x00080000)  # OpenSSL's SSL_OP_NO_ENCRYPT_THEN_MAC
_CERT: dict[str, str] = {}


def self_signed_certificate() -> tuple[str, str]:
    """A self-signed RSA certificate and key (PEM files), made once per process."""
    if not _CERT:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dissect.test")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
        )
        folder = tempfile.mkdtemp(prefix="tls-e2e-")
        _CERT["cert"] = os.path.join(folder, "cert.pem")
        _CERT["key"] = os.path.join(folder, "key.pem")
        Path(_CERT["cert"]).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        Path(_CERT["key"]).write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return _CERT["cert"], _CERT["key"]


def _read_all(obj: ssl.SSLObject) -> bytes:
    out = b""
    while True:
        try:
            chunk = obj.read(1 << 16)
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            return out
        if not chunk:
            return out
        out += chunk


def _request_key_update(obj: ssl.SSLObject, ctx: ssl.SSLContext) -> bool:
    """SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) on the SSL* behind ``obj``, if it can be found safely."""
    import ctypes
    import ctypes.util

    libssl = ctypes.CDLL(ctypes.util.find_library("ssl"))
    libssl.OpenSSL_version_num.restype = ctypes.c_ulong
    if libssl.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
        return False
    libssl.SSL_get_SSL_CTX.restype = ctypes.c_void_p
    libssl.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
    libssl.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]
    # CPython's PySSLSocket: PyObject_HEAD, PyObject *Socket, SSL *ssl; PySSLContext: PyObject_HEAD, SSL_CTX *ctx
    ssl_pointer = ctypes.c_void_p.from_address(id(obj._sslobj) + 3 * ctypes.sizeof(ctypes.c_void_p)).value
    ctx_pointer = ctypes.c_void_p.from_address(id(ctx) + 2 * ctypes.sizeof(ctypes.c_void_p)).value
    if not ssl_pointer or libssl.SSL_get_SSL_CTX(ssl_pointer) != ctx_pointer:
        return False
    return bool(libssl.SSL_key_update(ssl_pointer, 1))


def tls_sessions(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one (or, with ``resume``, two) TLS sessions in memory; return their wire bytes, data and facts.

    spec: version "1.2"|"1.3", ciphers (OpenSSL TLS 1.2 cipher string), no_etm, alpn (client offer),
    server_alpn, sni, writes, seed, resume, key_update.
    """
    cert, key = self_signed_certificate()
    rng = random.Random(spec.get("seed", 0))
    keylog_path = tempfile.mktemp(prefix="tls-keylog-")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.keylog_filename = keylog_path
    version = ssl.TLSVersion.TLSv1_3 if spec["version"] == "1.3" else ssl.TLSVersion.TLSv1_2
    for ctx in (client_ctx, server_ctx):
        ctx.minimum_version = ctx.maximum_version = version
        if spec.get("ciphers"):
            ctx.set_ciphers(spec["ciphers"])
        if spec.get("no_etm"):
            ctx.options |= OP_NO_ENCRYPT_THEN_MAC
    if spec.get("alpn"):
        client_ctx.set_alpn_protocols(spec["alpn"])
        server_ctx.set_alpn_protocols(spec.get("server_alpn") or spec["alpn"])
    sessions = []
    session = None
    for _ in range(2 if spec.get("resume") else 1):
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        client = client_ctx.wrap_bio(c_in, c_out, server_hostname=spec.get("sni"), session=session)
        server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
        wire: list[tuple[int, str]] = []

        def pump(c_out: ssl.MemoryBIO = c_out, s_out: ssl.MemoryBIO = s_out, s_in: ssl.MemoryBIO = s_in,
                 c_in: ssl.MemoryBIO = c_in, wire: list[tuple[int, str]] = wire) -> None:
            for source, sink, direction in ((c_out, s_in, 0), (s_out, c_in, 1)):
                data = source.read()
                if data:
                    wire.append((direction, data.hex()))
                    sink.write(data)

        done = [False, False]
        for _ in range(20):
            for i, obj in enumerate((client, server)):
                if not done[i]:
                    try:
                        obj.do_handshake()
                        done[i] = True
                    except ssl.SSLWantReadError:
                        pass
                pump()
            if all(done):
                break
        sent = [b"", b""]
        received = [b"", b""]
        key_update = False
        for i in range(spec.get("writes", 20)):
            direction = i % 2
            writer, reader = (client, server) if direction == 0 else (server, client)
            if spec.get("key_update") and i == spec.get("writes", 20) // 2:
                key_update = _request_key_update(client, client_ctx)
            size = rng.choice([rng.randint(1, 200), rng.randint(1, 3000), rng.randint(15000, 40000)])
            data = rng.randbytes(size)
            writer.write(data)
            sent[direction] += data
            pump()
            received[direction] += _read_all(reader)
            received[1 - direction] += _read_all(writer)  # e.g. TLS 1.3 tickets, a KeyUpdate answer
            pump()
        for obj in (client, server):
            try:
                obj.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
            pump()
        assert received == sent, "the TLS peers themselves disagree"
        cipher_ids = {c["name"]: c["id"] & 0xFFFF for c in client_ctx.get_ciphers()}
        sessions.append({
            "wire": wire, "c2s": sent[0].hex(), "s2c": sent[1].hex(), "version": client.version(),
            "cipher": client.cipher()[0], "cipher_code": cipher_ids.get(client.cipher()[0]),
            "alpn": client.selected_alpn_protocol(), "reused": client.session_reused, "key_update": key_update,
        })
        session = client.session
    keylog = Path(keylog_path).read_text()
    os.unlink(keylog_path)
    return {"sessions": sessions, "keylog": keylog}


def tls_sessions_in_subprocess(spec: dict[str, Any], tls13_suite: str | None = None) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if tls13_suite:
        conf = Path(tempfile.mkdtemp(prefix="tls-conf-")) / "openssl.cnf"
        conf.write_text(
            "openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n[ssl_sect]\n"
            "system_default = system_default_sect\n[system_default_sect]\n"
            f"Ciphersuites = {tls13_suite}\n"
        )
        env["OPENSSL_CONF"] = str(conf)
    code = (
        "import json, sys; from tests.test_tls_e2e import tls_sessions; "
        "print(json.dumps(tls_sessions(json.loads(sys.argv[1]))))"
    )
    done = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.skip(f"the TLS session subprocess failed: {done.stderr[-300:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# --- feeding and checking -----------------------------------------------------------------------------------------
def feed(conn: TlsConnection, wire: list[tuple[int, str]], cuts: random.Random | None = None) -> list[Any]:
    events: list[Any] = []
    for ts, (direction, hexdata) in enumerate(wire):
        data = bytes.fromhex(hexdata)
        pos = 0
        while pos < len(data):
            step = len(data) if cuts is None else cuts.choice([1, 5, 7, 100, 1500, 17000, len(data)])
            events += conn.receive(direction, ts, data[pos : pos + step])
            pos += step
    events += conn.finish(len(wire))
    return events


def check(session: dict[str, Any], keylog: KeyLog, cuts: random.Random | None = None,
          sni: str | None = None) -> tuple[TlsConnection, list[Any]]:
    conn = TlsConnection(keylog)
    events = feed(conn, session["wire"], cuts)
    problems = [e for e in events if isinstance(e, (Anomaly, Undecryptable))]
    assert problems == []
    for direction, key in ((0, "c2s"), (1, "s2c")):
        got = b"".join(e.data for e in events if isinstance(e, ApplicationData) and e.direction == direction)
        assert got == bytes.fromhex(session[key])
    assert conn.version == session["version"].replace("TLSv", "TLS ")
    assert conn.cipher == suite_name(session["cipher_code"])
    assert conn.alpn == session["alpn"]
    assert conn.sni == sni
    assert conn.resumed is session["reused"]
    assert conn.decrypted is True and conn.handshake_done
    assert sum(isinstance(e, HandshakeDone) for e in events) == 1
    assert sum(isinstance(e, ClientHello) for e in events) == sum(isinstance(e, ServerHello) for e in events) == 1
    closes = [(e.direction, e.description, e.encrypted) for e in events if isinstance(e, Alert)]
    assert closes == [(0, "close_notify", True), (1, "close_notify", True)]
    return conn, events


_CACHE: dict[str, dict[str, Any]] = {}


def sessions_for(name: str, spec: dict[str, Any], tls13_suite: str | None = None) -> dict[str, Any]:
    if name not in _CACHE:
        _CACHE[name] = tls_sessions_in_subprocess(spec, tls13_suite) if tls13_suite or spec.get("key_update") \
            else tls_sessions(spec)
    return _CACHE[name]


TLS12 = [
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", False),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", False),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", False),
    ("ECDHE-RSA-AES128-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", False),
    ("ECDHE-RSA-AES128-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", True),
    ("ECDHE-RSA-AES256-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", False),
    ("ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", True),
]


@pytest.mark.parametrize(("openssl_name", "iana_name", "no_etm"), TLS12)
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_tls12_suites_decrypt_exactly(openssl_name: str, iana_name: str, no_etm: bool, seed: int) -> None:
    spec = {"version": "1.2", "ciphers": openssl_name, "no_etm": no_etm, "sni": "ws.example.org", "writes": 24,
            "seed": 1, "alpn": ["http/1.1"]}
    result = sessions_for(f"tls12-{openssl_name}-{no_etm}", spec)
    session = result["sessions"][0]
    assert session["cipher"] == openssl_name
    conn, events = check(session, KeyLog.from_text(result["keylog"]), random.Random(seed), sni="ws.example.org")
    assert conn.cipher == iana_name and conn.version == "TLS 1.2" and conn.alpn == "http/1.1"
    hello = next(e for e in events if isinstance(e, ClientHello))
    assert hello.alpn_offer == ("http/1.1",) and hello.sni == "ws.example.org"
    assert conn.server_hello is not None
    assert conn.server_hello.encrypt_then_mac is (not no_etm and "CBC" in iana_name)
    done = next(e for e in events if isinstance(e, HandshakeDone))
    assert done.direction == 1  # full TLS 1.2 handshake: the server's Finished is last


@pytest.mark.parametrize("suite", ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"])
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_tls13_suites_decrypt_exactly(suite: str, seed: int) -> None:
    spec = {"version": "1.3", "sni": "chat.example.com", "writes": 24, "seed": 2, "alpn": ["h2", "http/1.1"],
            "server_alpn": ["http/1.1"]}
    result = sessions_for(f"tls13-{suite}", spec, tls13_suite=suite)
    session = result["sessions"][0]
    if session["cipher"] != suite:
        pytest.skip(f"OPENSSL_CONF could not force {suite} (got {session['cipher']})")
    conn, events = check(session, KeyLog.from_text(result["keylog"]), random.Random(seed), sni="chat.example.com")
    assert conn.cipher == suite and conn.version == "TLS 1.3" and conn.alpn == "http/1.1"
    assert [e.alpn for e in events if isinstance(e, AlpnKnown)] == ["http/1.1"]
    assert next(e for e in events if isinstance(e, ServerHello)).alpn is None  # not in a TLS 1.3 ServerHello
    assert next(e for e in events if isinstance(e, ClientHello)).versions == ("TLS 1.3",)
    assert next(e for e in events if isinstance(e, HandshakeDone)).direction == 0


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_resumption(version: str) -> None:
    spec = {"version": version, "resume": True, "writes": 6, "seed": 3, "sni": "resume.example"}
    result = sessions_for(f"resume-{version}", spec)
    first, second = result["sessions"]
    assert first["reused"] is False and second["reused"] is True
    keylog = KeyLog.from_text(result["keylog"])
    check(first, keylog, sni="resume.example")
    conn, events = check(second, keylog, sni="resume.example")
    assert conn.resumed is True
    if version == "1.2":  # abbreviated handshake: the client's Finished is last
        assert next(e for e in events if isinstance(e, HandshakeDone)).direction == 0
        assert next(e for e in events if isinstance(e, ClientHello)).session_ticket


def test_tls13_key_update_both_ways() -> None:
    spec = {"version": "1.3", "writes": 16, "seed": 4, "key_update": True}
    result = sessions_for("key-update", spec)
    session = result["sessions"][0]
    if not session["key_update"]:
        pytest.skip("SSL_key_update could not be reached through ctypes")
    check(session, KeyLog.from_text(result["keylog"]))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), which=st.sampled_from(["tls12-gcm", "tls13", "tls12-cbc"]))
def test_mutated_real_streams_never_raise(seed: int, which: str) -> None:
    specs = {
        "tls12-gcm": {"version": "1.2", "ciphers": "ECDHE-RSA-AES128-GCM-SHA256", "writes": 6, "seed": 5},
        "tls12-cbc": {"version": "1.2", "ciphers": "ECDHE-RSA-AES128-SHA256", "writes": 6, "seed": 5},
        "tls13": {"version": "1.3", "writes": 6, "seed": 5},
    }
    result = sessions_for(f"mutate-{which}", specs[which])
    rng = random.Random(seed)
    wire = [list(item) for item in result["sessions"][0]["wire"]]
    for _ in range(rng.randint(1, 4)):
        item = rng.choice(wire)
        data = bytearray(bytes.fromhex(item[1]))
        pos = rng.randrange(len(data))
        action = rng.choice(["flip", "cut", "insert"])
        if action == "flip":
            data[pos] ^= 1 << rng.randrange(8)
        elif action == "cut":
            del data[pos : pos + rng.randint(1, 40)]
        else:
            data[pos:pos] = rng.randbytes(rng.randint(1, 40))
        item[1] = data.hex()
    conn = TlsConnection(KeyLog.from_text(result["keylog"]))
    events = feed(conn, [(d, x) for d, x in wire], rng)
    assert not [e for e in events if isinstance(e, Anomaly) and e.kind == "tls-internal-error"]
