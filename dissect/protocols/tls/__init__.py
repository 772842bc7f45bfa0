"""TLS: the record layer, handshake facts and decryption of TLS 1.2 and 1.3 (for wss), sans-IO.

A ``TlsConnection`` per TCP connection takes each direction's reassembled bytes (0 = client to server, 1 = server
to client) with opaque int timestamps and returns events: ``ClientHello`` (SNI, ALPN offer, versions, suites),
``ServerHello`` (version, cipher suite, resumption), ``AlpnKnown`` (TLS 1.3 EncryptedExtensions), ``HandshakeDone``,
``ApplicationData`` (decrypted plaintext, in order), ``Alert``, ``Undecryptable`` (once, with the reason) and
``Anomaly``. Secrets come from a ``KeyLog`` (NSS key log format, e.g. SSLKEYLOGFILE or a pcapng Decryption Secrets
Block). Decryptable: TLS 1.3 AES-GCM and ChaCha20-Poly1305 suites; TLS 1.2 AES-GCM, ChaCha20-Poly1305 and AES-CBC
with HMAC-SHA1/256/384 (MAC-then-encrypt or encrypt_then_mac). Every cryptographic primitive is ``cryptography``'s.
Nothing here reads files or sockets; nothing raises on bad input: problems are ``Anomaly`` events.
"""

from __future__ import annotations

from .connection import TlsConnection
from .events import (
    Alert,
    AlpnKnown,
    Anomaly,
    ApplicationData,
    ClientHello,
    HandshakeDone,
    ServerHello,
    TlsEvent,
    Undecryptable,
)
from .keylog import KeyLog
from .records import MAX_TLS12_CIPHERTEXT

__all__ = [
    "Alert",
    "AlpnKnown",
    "Anomaly",
    "ApplicationData",
    "ClientHello",
    "HandshakeDone",
    "KeyLog",
    "ServerHello",
    "TlsConnection",
    "TlsEvent",
    "Undecryptable",
    "looks_like_tls",
]


def looks_like_tls(data: bytes) -> bool:
    """Whether the first client-to-server bytes look like a TLS ClientHello: a handshake record (0x16), version
    0x0300-0x0304, a plausible length, and handshake type ClientHello (0x01)."""
    if len(data) < 6 or data[0] != 0x16 or data[1] != 0x03 or data[2] > 0x04:
        return False
    length = (data[3] << 8) | data[4]
    return 4 <= length <= MAX_TLS12_CIPHERTEXT and data[5] == 0x01
