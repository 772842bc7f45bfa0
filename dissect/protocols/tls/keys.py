"""Key derivation: TLS 1.3 HKDF-Expand-Label (RFC 8446 7.1, 7.3, 7.2 KeyUpdate) and the TLS 1.2 PRF and key
block (RFC 5246 5, 6.3). Every primitive comes from ``cryptography``."""

from __future__ import annotations

from typing import NamedTuple

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from .suites import CipherSuite

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
}


def hash_algorithm(hash_name: str) -> hashes.HashAlgorithm:
    """A ``cryptography`` hash object for "sha1", "sha256" or "sha384"."""
    return _HASHES[hash_name]()


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int, hash_name: str) -> bytes:
    """HKDF-Expand-Label(Secret, Label, Context, Length) of RFC 8446 7.1 (the label gets the "tls13 " prefix)."""
    full_label = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full_label)]) + full_label + bytes([len(context)]) + context
    return HKDFExpand(hash_algorithm(hash_name), length, info).derive(secret)


def derive_secret(secret: bytes, label: bytes, messages: bytes, hash_name: str) -> bytes:
    """Derive-Secret(Secret, Label, Messages) of RFC 8446 7.1: Messages are the concatenated handshake messages."""
    digest = hashes.Hash(hash_algorithm(hash_name))
    digest.update(messages)
    transcript_hash = digest.finalize()
    return hkdf_expand_label(secret, label, transcript_hash, len(transcript_hash), hash_name)


def traffic_key_iv(secret: bytes, key_length: int, hash_name: str) -> tuple[bytes, bytes]:
    """The write key and IV of a TLS 1.3 traffic secret (RFC 8446 7.3)."""
    key = hkdf_expand_label(secret, b"key", b"", key_length, hash_name)
    iv = hkdf_expand_label(secret, b"iv", b"", 12, hash_name)
    return key, iv


def next_traffic_secret(secret: bytes, hash_name: str) -> bytes:
    """application_traffic_secret_N+1 after a KeyUpdate (RFC 8446 7.2)."""
    return hkdf_expand_label(secret, b"traffic upd", b"", hash_algorithm(hash_name).digest_size, hash_name)


def prf(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str) -> bytes:
    """The TLS 1.2 PRF (RFC 5246 5): P_<hash>(secret, label + seed), cut to ``length`` bytes."""
    algorithm = hash_algorithm(hash_name)
    keyed = hmac.HMAC(secret, algorithm)

    def mac(data: bytes) -> bytes:
        h = keyed.copy()
        h.update(data)
        return h.finalize()

    label_seed = label + seed
    a = label_seed  # A(0)
    out = bytearray()
    while len(out) < length:
        a = mac(a)  # A(i) = HMAC(secret, A(i-1))
        out += mac(a + label_seed)
    return bytes(out[:length])


class KeyBlock(NamedTuple):
    """The TLS 1.2 key block sliced as RFC 5246 6.3 says."""

    client_mac_key: bytes
    server_mac_key: bytes
    client_key: bytes
    server_key: bytes
    client_iv: bytes
    server_iv: bytes


def key_block(master_secret: bytes, client_random: bytes, server_random: bytes, suite: CipherSuite) -> KeyBlock:
    """key_block = PRF(master_secret, "key expansion", server_random + client_random), sliced."""
    mac, key, iv = suite.mac_length, suite.key_length, suite.fixed_iv_length
    block = prf(master_secret, b"key expansion", server_random + client_random, 2 * (mac + key + iv), suite.hash_name)
    sizes = (mac, mac, key, key, iv, iv)
    parts = []
    pos = 0
    for size in sizes:
        parts.append(block[pos : pos + size])
        pos += size
    return KeyBlock(*parts)
