"""``TlsConnection``: the TLS engine of one TCP connection, sans-IO.

Feed it each direction's reassembled bytes in capture order (``receive``), lost ranges (``gap``) and the end of
the capture (``finish``); each call returns the events it produced (see ``events``). It never raises on input.

Keys come from a ``KeyLog`` looked up at ServerHello time (so secrets added to the key log after the engine was
built, e.g. from a pcapng Decryption Secrets Block, are used). TLS 1.2: CLIENT_RANDOM gives the master secret and
each side starts decrypting at its ChangeCipherSpec. TLS 1.3: the handshake traffic secrets open the records after
the ServerHello, each side's Finished switches it to its application traffic secret, and a KeyUpdate moves that
side along the "traffic upd" chain. A missing handshake secret is tolerated: records are tried against the next
key and skipped until it opens one. 0-RTT records are decrypted with CLIENT_EARLY_TRAFFIC_SECRET when logged, else
skipped (one ``tls-early-data`` anomaly says which); they are held (at most 64 KiB) until the ServerHello names
the cipher suite. Plaintext ChangeCipherSpec records in TLS 1.3 are ignored.

Decryption failing on the connection's first protected record means "wrong key": no more decryption is tried
(record framing still gives handshake timing and TLS 1.2 encrypted alerts). A later failure stops that direction
with an anomaly, as do lost bytes (record framing cannot be trusted after a gap, so no resynchronisation is tried).
"""

from __future__ import annotations

from collections.abc import Callable

from .cipher import DecryptError, Protection, Tls13Protection, tls12_protection
from .events import (
    ALERT_DESCRIPTIONS,
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
from .handshake import (
    CERTIFICATE,
    CERTIFICATE_REQUEST,
    CLIENT_HELLO,
    ENCRYPTED_EXTENSIONS,
    END_OF_EARLY_DATA,
    FINISHED,
    KEY_UPDATE,
    SERVER_HELLO,
    SERVER_HELLO_DONE,
    SERVER_KEY_EXCHANGE,
    ClientHelloInfo,
    ParseFailure,
    ServerHelloInfo,
    parse_client_hello,
    parse_encrypted_extensions,
    parse_server_hello,
    version_name,
)
from .keylog import KeyLog
from .keyring import Tls12Keys, select_keys
from .keys import KeyBlock, next_traffic_secret
from .records import (
    ALERT,
    APPLICATION_DATA,
    CHANGE_CIPHER_SPEC,
    HANDSHAKE,
    HEARTBEAT,
    MAX_TLS13_CIPHERTEXT,
    HandshakeReassembler,
    Record,
    RecordReader,
)
from .suites import SUITES, CipherSuite, suite_name

# ApplicationData(...) without the Python-level __new__ of NamedTuple (the same tuple), once per record
_new_application_data: Callable[[type[ApplicationData], tuple[int, int, bytes]], ApplicationData] = tuple.__new__
MAX_HELD_EARLY_DATA = 64 * 1024
MAX_SKIPPED_RECORDS = 64  # records no key opens before the connection's key is declared wrong
#: The kinds of the :class:`Anomaly` events this engine makes itself (the other kinds of records and
#: decryption are in ``records.ANOMALIES`` and ``cipher.ANOMALIES``); the ``sessions`` table's
#: ``anomaly`` (docs/REPORTS.md).
ANOMALIES: tuple[str, ...] = (
    "tls-decrypt-failed", "tls-bad-direction", "tls-internal-error", "tls-lost-bytes", "tls-truncated-record",
    "tls-truncated-handshake", "tls-early-data", "tls-renegotiation", "tls-unexpected-record", "tls-records-skipped",
    "tls-bad-alert", "tls-bad-handshake", "tls-missing-secret",
)
_FULL_HANDSHAKE_SERVER_MESSAGES = (CERTIFICATE, SERVER_KEY_EXCHANGE, CERTIFICATE_REQUEST, SERVER_HELLO_DONE)


class _Side:
    """The state of one direction."""

    __slots__ = ("reader", "messages", "protection", "trial", "skippable", "skipped", "encrypted", "stopped",
                 "finished", "next_secret")

    def __init__(self) -> None:
        self.reader = RecordReader()
        self.messages = HandshakeReassembler()
        self.protection: Protection | None = None
        self.trial: Tls13Protection | None = None  # the next phase's key, tried when ``protection`` fails
        self.skippable: str | None = None  # why records no key opens are skipped (else they are failures)
        self.skipped = 0
        self.encrypted = False  # this side's records are protected from now on
        self.stopped = False
        self.finished = False  # this side's Finished was seen
        self.next_secret: bytes | None = None  # TLS 1.3 application traffic secret, used after Finished


class TlsConnection:
    """The TLS layer of one TCP connection (0 = client to server, 1 = server to client).

    Attributes for the session row, filled as the handshake goes: ``version`` ("TLS 1.3"), ``cipher`` (IANA
    name), ``sni``, ``alpn`` (the server's choice), ``resumed`` (bool, None while unknown), ``decrypted`` (True
    once a record decrypted, False when decryption was impossible, None before the ServerHello),
    ``why_undecryptable`` (the ``Undecryptable`` reason), ``handshake_done``, ``client_hello``/``server_hello``.
    """

    def __init__(self, keylog: KeyLog | None = None) -> None:
        self.keylog = keylog
        self.version: str | None = None
        self.cipher: str | None = None
        self.sni: str | None = None
        self.alpn: str | None = None
        self.resumed: bool | None = None
        self.decrypted: bool | None = None
        self.why_undecryptable: str | None = None
        self.handshake_done = False
        self.client_hello: ClientHelloInfo | None = None
        self.server_hello: ServerHelloInfo | None = None
        self._sides = (_Side(), _Side())
        self._suite: CipherSuite | None = None
        self._tls13 = False
        self._keys: KeyBlock | None = None
        self._encrypt_then_mac = False
        self._hello_retry = False
        self._resumption_unknown = False  # TLS 1.2: the server's next message tells a resumption
        self._held: list[tuple[int, Record]] = []
        self._held_bytes = 0
        self._draining = False
        self._opened_any = False
        self._closed = False
        self._out: list[TlsEvent] = []

    # -- public API --------------------------------------------------------------------------------------------

    def receive(self, direction: int, ts: int, data: bytes) -> list[TlsEvent]:
        """The events the bytes ``data`` sent in ``direction`` at ``ts`` complete."""
        out: list[TlsEvent] = []
        self._out = out
        if direction not in (0, 1):
            out.append(Anomaly(None, ts, "tls-bad-direction", f"direction {direction!r}"))
            return out
        side = self._sides[direction]
        if side.stopped or self._closed or not data:
            return out
        try:  # the records of ``data``, the hot path inline: application data under a settled key
            for record in side.reader.feed(data):
                if side.stopped:
                    break
                protection = side.protection
                if record.content_type == APPLICATION_DATA and protection is not None and side.trial is None \
                        and side.encrypted and self._opened_any:
                    try:
                        inner_type, plaintext = protection.open(record.header, record.fragment)
                    except DecryptError as exc:
                        self._open_failed(direction, side, ts, exc, APPLICATION_DATA)
                        continue
                    if inner_type == APPLICATION_DATA:
                        if plaintext:
                            out.append(_new_application_data(ApplicationData, (direction, ts, plaintext)))
                    else:
                        self._inner(direction, side, ts, inner_type, plaintext)
                    continue
                self._record(direction, side, ts, record)
            if side.reader.error is not None and not side.stopped:
                self._stop(direction, ts, *side.reader.error)
        except Exception as exc:  # a bug must not take the capture down: it becomes an anomaly
            self._stop(direction, ts, "tls-internal-error", f"{type(exc).__name__}: {exc}")
        return out

    def gap(self, direction: int, ts: int, nbytes: int) -> list[TlsEvent]:
        """``nbytes`` of ``direction`` are missing from the capture: that direction is no longer decoded."""
        out: list[TlsEvent] = []
        self._out = out
        if direction not in (0, 1):
            out.append(Anomaly(None, ts, "tls-bad-direction", f"direction {direction!r}"))
            return out
        side = self._sides[direction]
        if side.stopped or self._closed:
            return out
        self._stop(direction, ts, "tls-lost-bytes", f"{nbytes} bytes lost: this direction is no longer decoded")
        self._undecryptable(ts, "lost bytes")
        return out

    def finish(self, ts: int) -> list[TlsEvent]:
        """The capture ended: report what was left incomplete."""
        out: list[TlsEvent] = []
        self._out = out
        if self._closed:
            return out
        self._closed = True
        for direction, side in enumerate(self._sides):
            if side.stopped:
                continue
            if side.reader.buffered:
                out.append(Anomaly(direction, ts, "tls-truncated-record",
                                   f"{side.reader.buffered} bytes of an incomplete record at the end"))
            if side.messages.buffered:
                out.append(Anomaly(direction, ts, "tls-truncated-handshake",
                                   f"{side.messages.buffered} bytes of an incomplete handshake message at the end"))
        if self._held:
            out.append(Anomaly(0, ts, "tls-early-data", f"{len(self._held)} 0-RTT records and no ServerHello"))
            self._held = []
        return out

    # -- records -------------------------------------------------------------------------------------------------

    def _record(self, direction: int, side: _Side, ts: int, record: Record) -> None:
        content_type = record.content_type
        if content_type == CHANGE_CIPHER_SPEC:
            self._change_cipher_spec(direction, side, ts)
        elif content_type == HEARTBEAT:
            pass
        elif side.encrypted and (content_type == APPLICATION_DATA or not self._tls13):
            if side.protection is None and side.trial is None:
                self._opaque(direction, side, ts, content_type)
                return
            opened = self._open(direction, side, ts, record)
            if opened is not None:
                self._inner(direction, side, ts, *opened)
        elif content_type == HANDSHAKE:
            self._handshake_fragment(direction, side, ts, record.fragment)
        elif content_type == ALERT:
            self._alerts(direction, ts, record.fragment, encrypted=False)
        else:
            self._clear_application_data(direction, side, ts, record)

    def _change_cipher_spec(self, direction: int, side: _Side, ts: int) -> None:
        if self._tls13 or self.server_hello is None:
            return  # TLS 1.3 middlebox compatibility (RFC 8446 D.4)
        if side.encrypted:
            self._stop(direction, ts, "tls-renegotiation", "a second ChangeCipherSpec: renegotiation is not decoded")
            return
        side.encrypted = True
        if direction == 1 and self._resumption_unknown:
            self._resumption_unknown = False
            self.resumed = True
        if self._keys is not None and self._suite is not None:
            side.protection = tls12_protection(self._suite, self._keys, direction, self._encrypt_then_mac)

    def _clear_application_data(self, direction: int, side: _Side, ts: int, record: Record) -> None:
        hello = self.client_hello
        if direction == 0 and self.server_hello is None and hello is not None and hello.early_data:
            if self._held_bytes + len(record.fragment) <= MAX_HELD_EARLY_DATA:
                self._held.append((ts, record))
                self._held_bytes += len(record.fragment)
            return
        if self.server_hello is None:
            self._undecryptable(ts, "no handshake")
            side.encrypted = True  # the capture started after the handshake: the rest is opaque
            return
        self._out.append(Anomaly(direction, ts, "tls-unexpected-record", "application data before the keys"))

    def _opaque(self, direction: int, side: _Side, ts: int, content_type: int) -> None:
        """A protected record without a key: only its framing tells something."""
        if self._tls13:
            if direction == 0 and not self._draining:
                self._done(ts, 0)
        elif content_type == HANDSHAKE:
            if not side.finished:
                side.finished = True
                self._check_done(ts, direction)
        elif content_type == ALERT:
            self._out.append(Alert(direction, ts, None, "encrypted", None, True))

    def _open(self, direction: int, side: _Side, ts: int, record: Record) -> tuple[int, bytes] | None:
        error: DecryptError | None = None
        if side.protection is not None:
            try:
                opened = side.protection.open(record.header, record.fragment)
            except DecryptError as exc:
                error = exc
            else:
                self._opened()
                return opened
        if side.trial is not None:
            try:
                opened = side.trial.open(record.header, record.fragment)
            except DecryptError as exc:
                error = error or exc
            else:
                side.protection, side.trial, side.skippable = side.trial, None, None
                self._opened()
                return opened
        if side.skippable is not None and side.skipped < MAX_SKIPPED_RECORDS:
            side.skipped += 1
            if side.skipped == 1:
                self._out.append(Anomaly(direction, ts, "tls-records-skipped", side.skippable))
            hello = self.client_hello
            if direction == 0 and not self._draining and not (hello is not None and hello.early_data):
                self._done(ts, 0)
            return None
        error = error or DecryptError("tls-decrypt-failed", "no key opens it")
        self._open_failed(direction, side, ts, error, record.content_type)
        return None

    def _opened(self) -> None:
        if not self._opened_any:
            self._opened_any = True
            self.decrypted = True

    def _open_failed(self, direction: int, side: _Side, ts: int, error: DecryptError, content_type: int) -> None:
        if self._opened_any:
            self._stop(direction, ts, error.kind, error.detail)
            return
        self._undecryptable(ts, "wrong key")
        for each in self._sides:
            each.protection, each.trial, each.skippable, each.next_secret = None, None, None, None
        self._opaque(direction, side, ts, content_type)

    def _inner(self, direction: int, side: _Side, ts: int, content_type: int, plaintext: bytes) -> None:
        if content_type == APPLICATION_DATA:
            if plaintext:
                self._out.append(ApplicationData(direction, ts, plaintext))
        elif content_type == HANDSHAKE:
            self._handshake_fragment(direction, side, ts, plaintext)
        elif content_type == ALERT:
            self._alerts(direction, ts, plaintext, encrypted=True)
        elif content_type != HEARTBEAT:
            self._out.append(Anomaly(direction, ts, "tls-unexpected-record", f"inner content type {content_type}"))

    def _alerts(self, direction: int, ts: int, fragment: bytes, encrypted: bool) -> None:
        if not fragment or len(fragment) % 2:
            self._out.append(Anomaly(direction, ts, "tls-bad-alert", f"alert record of {len(fragment)} bytes"))
        for i in range(0, len(fragment) - 1, 2):
            level, code = fragment[i], fragment[i + 1]
            fatal = level == 2 or (self._tls13 and code not in (0, 90))  # RFC 8446 6: severity is implicit
            description = ALERT_DESCRIPTIONS.get(code, f"unknown({code})")
            self._out.append(Alert(direction, ts, level, description, fatal, encrypted))

    # -- handshake -----------------------------------------------------------------------------------------------

    def _handshake_fragment(self, direction: int, side: _Side, ts: int, fragment: bytes) -> None:
        for msg_type, message in side.messages.feed(fragment):
            if side.stopped:
                return
            self._handshake_message(direction, side, ts, msg_type, message[4:])
        if side.messages.error is not None and not side.stopped:
            self._stop(direction, ts, *side.messages.error)

    def _handshake_message(self, direction: int, side: _Side, ts: int, msg_type: int, body: bytes) -> None:
        if msg_type == CLIENT_HELLO and direction == 0:
            self._client_hello(ts, body)
        elif msg_type == SERVER_HELLO and direction == 1:
            self._server_hello(ts, body)
        elif msg_type == FINISHED:
            if side.finished:
                return
            side.finished = True
            if not self._tls13:
                self._check_done(ts, direction)
                return
            self._to_application_keys(direction, side, ts)
            if direction == 0:
                self._done(ts, 0)
        elif self._tls13:
            if msg_type == KEY_UPDATE:
                protection = side.protection
                if isinstance(protection, Tls13Protection):
                    secret = next_traffic_secret(protection.secret, protection.suite.hash_name)
                    side.protection = Tls13Protection(protection.suite, secret)
            elif msg_type == ENCRYPTED_EXTENSIONS and direction == 1:
                parsed = parse_encrypted_extensions(body)
                if isinstance(parsed, ParseFailure):
                    self._out.append(Anomaly(1, ts, "tls-bad-handshake", parsed.detail))
                else:
                    self.alpn = parsed[0]
                    self._out.append(AlpnKnown(ts, self.alpn))
            elif msg_type == END_OF_EARLY_DATA and direction == 0 and side.trial is not None:
                side.protection, side.trial, side.skippable = side.trial, None, None
        elif direction == 1 and self._resumption_unknown:
            self._resumption_unknown = False
            self.resumed = msg_type not in _FULL_HANDSHAKE_SERVER_MESSAGES

    def _client_hello(self, ts: int, body: bytes) -> None:
        info = parse_client_hello(body)
        if isinstance(info, ParseFailure):
            self._stop(0, ts, "tls-bad-handshake", info.detail)
            return
        if self.client_hello is not None:
            if self._hello_retry and self.server_hello is None:
                self.client_hello = info  # the second ClientHello after a HelloRetryRequest
            else:
                self._renegotiation(ts)
            return
        self.client_hello = info
        self.sni = info.sni
        self._out.append(ClientHello(
            ts, info.sni, info.alpn,
            tuple(v for v in map(version_name, info.versions) if v != "GREASE"),
            tuple(s for s in map(suite_name, info.cipher_suites) if s != "GREASE"),
            info.session_id, info.session_ticket, info.pre_shared_key, info.early_data,
            info.encrypt_then_mac, info.extended_master_secret,
        ))

    def _renegotiation(self, ts: int) -> None:
        self._out.append(Anomaly(None, ts, "tls-renegotiation", "a second handshake: renegotiation is not decoded"))
        for side in self._sides:
            side.stopped = True

    def _server_hello(self, ts: int, body: bytes) -> None:
        info = parse_server_hello(body)
        if isinstance(info, ParseFailure):
            self._stop(1, ts, "tls-bad-handshake", info.detail)
            return
        if self.server_hello is not None:
            self._renegotiation(ts)
            return
        if info.hello_retry and not self._hello_retry:
            self._hello_retry = True
            return
        self.server_hello = info
        self.version = version_name(info.version)
        self.cipher = suite_name(info.cipher_suite)
        self._tls13 = info.version == 0x0304
        if self._tls13:
            self.resumed = info.pre_shared_key
            for side in self._sides:
                side.reader.max_length = MAX_TLS13_CIPHERTEXT
                side.encrypted = True
        else:
            hello = self.client_hello
            self.alpn = info.alpn
            if hello is not None and hello.session_id and info.session_id == hello.session_id:
                self.resumed = True
            else:
                self._resumption_unknown = True
        self._out.append(ServerHello(ts, self.version, self.cipher, self.resumed,
                                     None if self._tls13 else info.alpn, self._hello_retry))
        self._load_keys(ts, info)
        held, self._held, self._held_bytes = self._held, [], 0
        self._draining = True
        try:
            for held_ts, record in held:
                self._record(0, self._sides[0], held_ts, record)
        finally:
            self._draining = False

    def _load_keys(self, ts: int, info: ServerHelloInfo) -> None:
        self._suite = SUITES.get(info.cipher_suite)
        keys = select_keys(self.keylog, self.client_hello, info)
        if isinstance(keys, str):
            self._undecryptable(ts, keys)
        elif isinstance(keys, Tls12Keys):
            self._keys, self._encrypt_then_mac = keys
        else:
            for side, side_keys in zip(self._sides, (keys.client, keys.server), strict=True):
                side.protection, side.trial, side.skippable, side.next_secret = side_keys
            if keys.early_data_note is not None:
                self._out.append(Anomaly(0, ts, "tls-early-data", keys.early_data_note))

    def _to_application_keys(self, direction: int, side: _Side, ts: int) -> None:
        """TLS 1.3: after its Finished, a side uses its application traffic secret (RFC 8446 7.1)."""
        side.trial, side.skippable = None, None
        if side.next_secret is not None and self._suite is not None:
            side.protection = Tls13Protection(self._suite, side.next_secret)
            return
        side.protection = None
        if self._opened_any:
            label = "CLIENT_TRAFFIC_SECRET_0" if direction == 0 else "SERVER_TRAFFIC_SECRET_0"
            self._out.append(Anomaly(direction, ts, "tls-missing-secret", f"no {label}: application data is opaque"))

    # -- outcomes ------------------------------------------------------------------------------------------------

    def _check_done(self, ts: int, direction: int) -> None:
        if self._sides[0].finished and self._sides[1].finished:
            self._done(ts, direction)

    def _done(self, ts: int, direction: int) -> None:
        if not self.handshake_done:
            self.handshake_done = True
            self._out.append(HandshakeDone(ts, direction))

    def _undecryptable(self, ts: int, reason: str) -> None:
        if self.why_undecryptable is None:
            self.why_undecryptable = reason
            if not self._opened_any:
                self.decrypted = False
            self._out.append(Undecryptable(ts, reason))

    def _stop(self, direction: int, ts: int, kind: str, detail: str) -> None:
        self._sides[direction].stopped = True
        self._out.append(Anomaly(direction, ts, kind, detail))
