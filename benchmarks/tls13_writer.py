"""TLS 1.3 (TLS_AES_128_GCM_SHA256) as a client and a server would write it, for benchmark captures.

``Tls13Session`` makes one connection's handshake (ClientHello with SNI, ALPN, supported_versions and an x25519
key_share; ServerHello; the server's EncryptedExtensions, Certificate, CertificateVerify and Finished and the
client's Finished under the handshake traffic keys) and then seals application bytes into TLS 1.3
application-data records under the application traffic keys, one record per write (split at 2^14 bytes, RFC 8446
5.1). The four traffic secrets are drawn at random (there is no real key exchange: the key_share values are random
bytes) and given back as NSS key log lines, which is all a decryptor needs.

Independent of dissect: the key schedule is written here from RFC 8446 7.1/7.3 (HKDF-Expand-Label) and 4.4.4
(Finished), records are sealed with ``cryptography``'s AESGCM directly (RFC 8446 5.2: nonce = iv XOR sequence
number, AAD = record header, inner plaintext = content + content type). The certificate is a real self-signed
Ed25519 one and CertificateVerify a real signature (RFC 8446 4.4.3), both deterministic for a given seed.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import random

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.x509.oid import NameOID

TLS_AES_128_GCM_SHA256 = 0x1301
X25519 = 0x001D
ED25519 = 0x0807
HANDSHAKE, APPLICATION_DATA = 22, 23
CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY, FINISHED = 1, 2, 8, 11, 15, 20
MAX_FRAGMENT = 2**14


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """HKDF-Expand-Label of RFC 8446 7.1 with SHA-256."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def _u8(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def _u16(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _u24(data: bytes) -> bytes:
    return len(data).to_bytes(3, "big") + data


def _extension(ext_type: int, body: bytes) -> bytes:
    return ext_type.to_bytes(2, "big") + _u16(body)


def _handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + _u24(body)


def plaintext_record(content_type: int, fragment: bytes, legacy_version: int = 0x0303) -> bytes:
    return bytes([content_type]) + legacy_version.to_bytes(2, "big") + _u16(fragment)


class Sealer:
    """One direction's record protection under one traffic secret (RFC 8446 5.2, 7.3)."""

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(hkdf_expand_label(secret, b"key", b"", 16))
        self._iv = int.from_bytes(hkdf_expand_label(secret, b"iv", b"", 12), "big")
        self.seq = 0

    def seal(self, content: bytes, content_type: int = APPLICATION_DATA) -> bytes:
        """TLSCiphertext records carrying ``content`` (one record per 2^14 bytes)."""
        out = []
        for start in range(0, max(len(content), 1), MAX_FRAGMENT):
            inner = content[start : start + MAX_FRAGMENT] + bytes([content_type])
            header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
            nonce = (self._iv ^ self.seq).to_bytes(12, "big")
            self.seq += 1
            out.append(header + self._aead.encrypt(nonce, inner, header))
        return b"".join(out)


class ServerIdentity:
    """A self-signed Ed25519 certificate for ``host`` (deterministic for a given ``rnd``)."""

    def __init__(self, host: str, rnd: random.Random) -> None:
        self.key = Ed25519PrivateKey.from_private_bytes(rnd.randbytes(32))
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        start = datetime.datetime(2023, 11, 1, tzinfo=datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(rnd.randrange(1, 1 << 64)).not_valid_before(start)
                .not_valid_after(start + datetime.timedelta(days=365)).sign(self.key, None))
        self.der = cert.public_bytes(serialization.Encoding.DER)


class Tls13Session:
    """One TLS 1.3 connection: its handshake flights, its sealers and its key log lines."""

    def __init__(self, rnd: random.Random, identity: ServerIdentity, sni: str = "localhost",
                 alpn: bytes = b"http/1.1") -> None:
        self.client_random = rnd.randbytes(32)
        secrets = [rnd.randbytes(32) for _ in range(4)]
        self.keylog_lines = [
            f"{label} {self.client_random.hex()} {secret.hex()}"
            for label, secret in zip(("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                      "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"), secrets, strict=True)
        ]
        c_hs, s_hs, c_app, s_app = secrets
        session_id = rnd.randbytes(32)  # middlebox compatibility mode (RFC 8446 D.4)
        alpn_ext = _extension(16, _u16(_u8(alpn)))
        client_hello = _handshake(CLIENT_HELLO, b"".join([
            b"\x03\x03", self.client_random, _u8(session_id),
            _u16(TLS_AES_128_GCM_SHA256.to_bytes(2, "big")), b"\x01\x00",
            _u16(b"".join([
                _extension(0, _u16(b"\x00" + _u16(sni.encode()))),  # server_name
                _extension(10, _u16(X25519.to_bytes(2, "big"))),  # supported_groups
                _extension(13, _u16(ED25519.to_bytes(2, "big") + b"\x04\x03")),  # signature_algorithms
                alpn_ext,
                _extension(43, _u8(b"\x03\x04")),  # supported_versions
                _extension(45, _u8(b"\x01")),  # psk_key_exchange_modes: psk_dhe_ke
                _extension(51, _u16(X25519.to_bytes(2, "big") + _u16(rnd.randbytes(32)))),  # key_share
            ])),
        ]))
        server_hello = _handshake(SERVER_HELLO, b"".join([
            b"\x03\x03", rnd.randbytes(32), _u8(session_id), TLS_AES_128_GCM_SHA256.to_bytes(2, "big"), b"\x00",
            _u16(_extension(43, b"\x03\x04") + _extension(51, X25519.to_bytes(2, "big") + _u16(rnd.randbytes(32)))),
        ]))
        encrypted_extensions = _handshake(ENCRYPTED_EXTENSIONS, _u16(alpn_ext))
        certificate = _handshake(CERTIFICATE, b"\x00" + _u24(_u24(identity.der) + _u16(b"")))
        transcript = client_hello + server_hello + encrypted_extensions + certificate
        signed = b" " * 64 + b"TLS 1.3, server CertificateVerify\x00" + hashlib.sha256(transcript).digest()
        certificate_verify = _handshake(CERTIFICATE_VERIFY,
                                        ED25519.to_bytes(2, "big") + _u16(identity.key.sign(signed)))
        transcript += certificate_verify
        server_finished = _handshake(FINISHED, self._verify_data(s_hs, transcript))
        transcript += server_finished
        client_finished = _handshake(FINISHED, self._verify_data(c_hs, transcript))

        self.client_hello_segment = plaintext_record(HANDSHAKE, client_hello, 0x0301)
        server_hs = Sealer(s_hs)
        self.server_flight_segment = plaintext_record(HANDSHAKE, server_hello) + b"".join(
            server_hs.seal(message, HANDSHAKE)
            for message in (encrypted_extensions, certificate, certificate_verify, server_finished))
        self.client_finished_records = Sealer(c_hs).seal(client_finished, HANDSHAKE)
        self.client = Sealer(c_app)
        self.server = Sealer(s_app)

    @staticmethod
    def _verify_data(base_key: bytes, transcript: bytes) -> bytes:
        """Finished.verify_data of RFC 8446 4.4.4."""
        finished_key = hkdf_expand_label(base_key, b"finished", b"", 32)
        return hmac.new(finished_key, hashlib.sha256(transcript).digest(), hashlib.sha256).digest()
