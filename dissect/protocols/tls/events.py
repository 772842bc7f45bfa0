"""The events ``TlsConnection`` returns. Small NamedTuples (cheap on the application-data hot path).

Directions are ints: 0 = client to server, 1 = server to client. Timestamps are the caller's ints, passed through.
"""

from __future__ import annotations

from typing import NamedTuple


class ClientHello(NamedTuple):
    """The client's first ClientHello (a second one after a HelloRetryRequest is not reported again)."""

    ts: int
    sni: str | None
    alpn_offer: tuple[str, ...]
    versions: tuple[str, ...]  # supported_versions, names such as "TLS 1.3" (or the legacy version alone)
    cipher_suites: tuple[str, ...]  # IANA names in the client's order
    session_id: bytes  # legacy_session_id (non-empty in TLS 1.2: resumption offered, or TLS 1.3 middlebox mode)
    session_ticket: bool  # session_ticket extension present
    pre_shared_key: bool  # TLS 1.3 PSK (resumption) offered
    early_data: bool  # TLS 1.3 0-RTT data announced
    encrypt_then_mac: bool
    extended_master_secret: bool


class ServerHello(NamedTuple):
    """The server's ServerHello (not a HelloRetryRequest: that one only sets ``hello_retry`` here).

    ``resumed``: TLS 1.3: the server accepted a PSK; TLS 1.2: True when the server echoed the client's non-empty
    session id, else None here (a ticket resumption shows only in the next server message; the connection's
    ``resumed`` attribute has the final answer). ``alpn``: TLS 1.2 only; TLS 1.3 reports it in ``AlpnKnown``.
    """

    ts: int
    version: str  # "TLS 1.3", "TLS 1.2", ...
    cipher: str  # IANA name
    resumed: bool | None
    alpn: str | None
    hello_retry: bool  # a HelloRetryRequest came first


class AlpnKnown(NamedTuple):
    """TLS 1.3: EncryptedExtensions was decrypted; ``alpn`` is the protocol the server chose, or None."""

    ts: int
    alpn: str | None


class HandshakeDone(NamedTuple):
    """The TLS handshake is over, at the record that ends it:

    - with keys (decrypted): the record holding the last Finished, i.e. the client's Finished in TLS 1.3 and in
      a resumed TLS 1.2 handshake, the server's Finished in a full TLS 1.2 handshake;
    - TLS 1.2 without keys: the same record, recognised as the first handshake record after that side's
      ChangeCipherSpec (both sides' Finished have then been seen);
    - TLS 1.3 without the client's handshake secret: the client's first protected record after the ServerHello
      (its Finished, unless it sends a certificate first).
    """

    ts: int
    direction: int


class ApplicationData(NamedTuple):
    """Decrypted application data of one record, in order within its direction."""

    direction: int
    ts: int
    data: bytes


class Alert(NamedTuple):
    """An alert. Encrypted TLS 1.2 alerts without keys have level None, description "encrypted", fatal None."""

    direction: int
    ts: int
    level: int | None
    description: str
    fatal: bool | None
    encrypted: bool


class Undecryptable(NamedTuple):
    """Why (some of) the connection cannot be decrypted; at most once per connection.

    Reasons: "no keys", "no key for this session", "wrong key", "unsupported cipher suite <name>",
    "unsupported version <name>", "no handshake", "lost bytes".
    """

    ts: int
    reason: str


class Anomaly(NamedTuple):
    """Something wrong or notable in the stream; ``direction`` is None for the connection as a whole."""

    direction: int | None
    ts: int
    kind: str
    detail: str


TlsEvent = ClientHello | ServerHello | AlpnKnown | HandshakeDone | ApplicationData | Alert | Undecryptable | Anomaly

ALERT_DESCRIPTIONS = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}
