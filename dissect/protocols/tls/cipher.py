"""Per-direction record decryptors ("protections"), one object per key; each counts its own sequence number.

Every protection has ``open(header, fragment) -> (content type, plaintext)`` and raises ``DecryptError`` when the
record does not authenticate. The AEAD objects are built once per key; per record only the nonce and AAD are made.

- TLS 1.3 (RFC 8446 5.2, 5.3): nonce = iv XOR the left-padded 64-bit sequence number, AAD = the 5-byte record
  header; the real content type is the last non-zero byte of the plaintext (zeros after it are padding).
- TLS 1.2 AES-GCM (RFC 5288): nonce = 4-byte salt from the key block + the 8-byte explicit nonce opening each
  record; AAD = seq(8) + type + version + plaintext length.
- TLS 1.2 ChaCha20-Poly1305 (RFC 7905): nonce = the 12-byte IV XOR the padded sequence number; same AAD.
- TLS 1.2 AES-CBC + HMAC (RFC 5246 6.2.3.2): explicit IV per record; MAC-then-encrypt, or encrypt-then-MAC
  (RFC 7366) when both hellos carried the extension. Padding and MAC are both checked.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from .keys import KeyBlock, hash_algorithm, traffic_key_iv
from .suites import CipherSuite

_TAG = 16
#: The anomaly kinds of :class:`DecryptError` (the ``sessions`` table's ``anomaly``; docs/REPORTS.md).
ANOMALIES: tuple[str, ...] = ("tls-decrypt-failed", "tls-bad-inner-plaintext", "tls-bad-mac")


class DecryptError(Exception):
    """A record that does not decrypt or authenticate; ``kind`` is the anomaly kind."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class Protection(Protocol):
    seq: int

    def open(self, header: bytes, fragment: bytes) -> tuple[int, bytes]: ...


def _aead(suite: CipherSuite, key: bytes) -> AESGCM | ChaCha20Poly1305:
    return ChaCha20Poly1305(key) if suite.kind == "chacha" else AESGCM(key)


class Tls13Protection:
    """TLS 1.3 record protection under one traffic secret (kept for the KeyUpdate chain)."""

    __slots__ = ("suite", "secret", "seq", "_aead", "_iv")

    def __init__(self, suite: CipherSuite, secret: bytes) -> None:
        key, iv = traffic_key_iv(secret, suite.key_length, suite.hash_name)
        self.suite = suite
        self.secret = secret
        self.seq = 0
        self._aead = _aead(suite, key)
        self._iv = int.from_bytes(iv, "big")

    def open(self, header: bytes, fragment: bytes) -> tuple[int, bytes]:
        nonce = (self._iv ^ self.seq).to_bytes(12, "big")
        try:
            inner = self._aead.decrypt(nonce, fragment, header)
        except InvalidTag:
            raise DecryptError("tls-decrypt-failed", f"AEAD tag mismatch at sequence number {self.seq}") from None
        self.seq += 1
        if inner and inner[-1]:  # no padding (the commonest): the last byte is the content type
            return inner[-1], inner[:-1]
        content = inner.rstrip(b"\x00")
        if not content:
            raise DecryptError("tls-bad-inner-plaintext", "no content type in TLSInnerPlaintext (all zeros)")
        return content[-1], content[:-1]


class Tls12AeadProtection:
    """TLS 1.2 AES-GCM (explicit nonce) or ChaCha20-Poly1305 (implicit nonce)."""

    __slots__ = ("seq", "_aead", "_iv", "_salt", "_explicit")

    def __init__(self, suite: CipherSuite, key: bytes, iv: bytes) -> None:
        self.seq = 0
        self._aead = _aead(suite, key)
        self._explicit = 8 if suite.kind == "aead-gcm" else 0
        self._salt = iv
        self._iv = int.from_bytes(iv, "big")

    def open(self, header: bytes, fragment: bytes) -> tuple[int, bytes]:
        explicit = self._explicit
        plaintext_length = len(fragment) - explicit - _TAG
        if plaintext_length < 0:
            raise DecryptError("tls-decrypt-failed", f"record of {len(fragment)} bytes is too short for its cipher")
        if explicit:
            nonce = self._salt + fragment[:explicit]
            ciphertext = fragment[explicit:]
        else:
            nonce = (self._iv ^ self.seq).to_bytes(12, "big")
            ciphertext = fragment
        aad = self.seq.to_bytes(8, "big") + header[:3] + plaintext_length.to_bytes(2, "big")
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise DecryptError("tls-decrypt-failed", f"AEAD tag mismatch at sequence number {self.seq}") from None
        self.seq += 1
        return header[0], plaintext


class Tls12CbcProtection:
    """TLS 1.2 AES-CBC with HMAC, MAC-then-encrypt or encrypt-then-MAC (RFC 7366)."""

    __slots__ = ("seq", "_algorithm", "_hmac", "_mac_length", "_encrypt_then_mac")

    def __init__(self, suite: CipherSuite, key: bytes, mac_key: bytes, encrypt_then_mac: bool) -> None:
        self.seq = 0
        self._algorithm = algorithms.AES(key)
        self._hmac = hmac.HMAC(mac_key, hash_algorithm(suite.mac_name or "sha1"))
        self._mac_length = suite.mac_length
        self._encrypt_then_mac = encrypt_then_mac

    def _check_mac(self, header: bytes, data: bytes, tag: bytes) -> None:
        h = self._hmac.copy()
        h.update(self.seq.to_bytes(8, "big") + header[:3] + len(data).to_bytes(2, "big") + data)
        try:
            h.verify(tag)
        except InvalidSignature:
            raise DecryptError("tls-bad-mac", f"HMAC mismatch at sequence number {self.seq}") from None

    def _decrypt(self, iv_and_ciphertext: bytes) -> bytes:
        decryptor = Cipher(self._algorithm, modes.CBC(iv_and_ciphertext[:16])).decryptor()
        return decryptor.update(iv_and_ciphertext[16:]) + decryptor.finalize()

    def _unpad(self, padded: bytes) -> bytes:
        padding = padded[-1]
        if padding + 1 > len(padded) or padded[-padding - 1 :] != bytes([padding]) * (padding + 1):
            raise DecryptError("tls-bad-mac", f"bad CBC padding at sequence number {self.seq}")
        return padded[: -padding - 1]

    def open(self, header: bytes, fragment: bytes) -> tuple[int, bytes]:
        mac_length = self._mac_length
        if self._encrypt_then_mac:
            body_length = len(fragment) - mac_length
            if body_length < 32 or body_length % 16:
                raise DecryptError("tls-decrypt-failed", f"CBC record of {len(fragment)} bytes is malformed")
            body = fragment[:body_length]
            self._check_mac(header, body, fragment[body_length:])
            plaintext = self._unpad(self._decrypt(body))
        else:
            if len(fragment) < 32 or len(fragment) % 16:
                raise DecryptError("tls-decrypt-failed", f"CBC record of {len(fragment)} bytes is malformed")
            content = self._unpad(self._decrypt(fragment))
            if len(content) < mac_length:
                raise DecryptError("tls-bad-mac", f"CBC record too short for its MAC at sequence number {self.seq}")
            plaintext = content[: len(content) - mac_length]
            self._check_mac(header, plaintext, content[len(content) - mac_length :])
        self.seq += 1
        return header[0], plaintext


def tls12_protection(suite: CipherSuite, keys: KeyBlock, direction: int, encrypt_then_mac: bool) -> Protection:
    """The protection of one direction (0 = client to server) of a TLS 1.2 connection."""
    if direction == 0:
        key, iv, mac_key = keys.client_key, keys.client_iv, keys.client_mac_key
    else:
        key, iv, mac_key = keys.server_key, keys.server_iv, keys.server_mac_key
    if suite.kind == "cbc":
        return Tls12CbcProtection(suite, key, mac_key, encrypt_then_mac)
    return Tls12AeadProtection(suite, key, iv)
