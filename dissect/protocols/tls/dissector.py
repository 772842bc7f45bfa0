"""TLS as a stream dissector: the engine (:class:`TlsConnection`) over one TCP connection, its
``tls`` handshake row and session columns, and the decrypted bytes handed up the same chain as
plaintext.

The decrypted application data of each direction is a byte stream of its own; :class:`TlsPlaintext`
carries it the way a TCP connection carries plaintext: its first bytes go to the protocol registry
(which starts HTTP, say), and a protocol that switches (HTTP's 101 to WebSocket) switches the
plaintext carrier, never the TCP connection, whose dissector stays this one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dissect.protocols.tls.connection import TlsConnection
from dissect.protocols.tls.events import (
    Alert,
    Anomaly,
    ApplicationData,
    ClientHello,
    HandshakeDone,
    TlsEvent,
    Undecryptable,
)
from dissect.protocols.tls.keylog import KeyLog
from dissect.records import CAPTURE_ENDED, Handshake, Outbox, capture_ended, ms
from dissect.transport.tcp import StreamDissector, replay

H2 = "h2"
NO_KEYS = "no keys"
#: The kind this module adds to the engine's (``tls-fatal-alert:<description>``, RFC 8446 6.2), and
#: the ``decode`` counters (docs/REPORTS.md).
ANOMALIES: tuple[str, ...] = ("tls-fatal-alert",)
DECODE_COUNTERS: tuple[str, ...] = ("h2-bytes-not-parsed",)


class TlsPlaintext:
    """The decrypted byte stream of one TLS connection, as a carrier for the next dissector: it
    offers what a TCP connection offers the protocols (``session_id``, ``switch``), and tells the
    TCP connection (``owner``) of the highest layer reached."""

    __slots__ = ("session_id", "owner", "app", "app_decided", "on_first_data")

    def __init__(self, session_id: int, owner: Carrier,
                 on_first_data: Callable[[TlsPlaintext, int, int, bytes], None]) -> None:
        self.session_id = session_id
        self.owner = owner
        self.app: StreamDissector | None = None
        self.app_decided = False
        self.on_first_data = on_first_data

    def switch(self, app: StreamDissector | None, app_protocol: str | None = None,
               trailing: Iterable[tuple[int, int, bytes | int]] = (), anomaly: str = "") -> None:
        """As :meth:`dissect.transport.tcp.TcpConnection.switch`, for the plaintext inside TLS."""
        self.app = app
        self.app_decided = True
        self.owner.note_layer(app_protocol, anomaly)
        if app is not None:
            replay(app, trailing)

    def feed(self, direction: int, ts: int, data: bytes) -> None:
        app = self.app
        if app is not None:
            app.feed(direction, ts, data)
        elif not self.app_decided:
            self.app_decided = True
            self.on_first_data(self, direction, ts, data)

    def gap(self, direction: int, ts: int, nbytes: int) -> None:
        if self.app is not None:
            self.app.gap(direction, ts, nbytes)

    def finish(self, ts: int) -> None:
        if self.app is not None:
            self.app.finish(ts)
            self.app = None


class Carrier:
    """What the TLS layer needs of the TCP connection under it (structural: TcpConnection)."""

    session_id: int

    def note_layer(self, app_protocol: str | None, anomaly: str = "") -> None: ...


class TlsDissector:
    """TLS over one TCP connection (a :class:`~dissect.transport.tcp.StreamDissector`)."""

    __slots__ = ("session_id", "outbox", "keylog", "engine", "plaintext", "ts_hello", "ts_done", "fatal",
                 "hs_written", "anomalies", "h2_bytes")

    def __init__(self, session_id: int, outbox: Outbox, keylog: KeyLog, owner: Carrier,
                 on_first_data: Callable[[TlsPlaintext, int, int, bytes], None]) -> None:
        self.session_id = session_id
        self.outbox = outbox
        self.keylog = keylog
        self.engine = TlsConnection(keylog)
        self.plaintext = TlsPlaintext(session_id, owner, on_first_data)
        self.ts_hello: int | None = None
        self.ts_done: int | None = None
        self.fatal: str | None = None
        self.hs_written = False
        self.anomalies: list[str] = []
        self.h2_bytes = 0

    # -- StreamDissector ----------------------------------------------------------------------------

    def feed(self, direction: int, ts: int, data: bytes) -> None:
        self._events(self.engine.receive(direction, ts, data))

    def gap(self, direction: int, ts: int, nbytes: int) -> None:
        self._events(self.engine.gap(direction, ts, nbytes))

    def transport_ended(self, ts: int, direction: int, how: str) -> None:
        """Optional, from TCP: its first FIN or RST, passed on to the layer inside TLS (a
        WebSocket tells its sockets how their transport ended)."""
        ended = getattr(self.plaintext.app, "transport_ended", None)
        if ended is not None:
            ended(ts, direction, how)

    def finish(self, ts: int) -> None:
        self._events(self.engine.finish(ts))
        self.plaintext.finish(ts)
        self._handshake_row(ts, ended=True)
        if self.h2_bytes:
            self.outbox.counters["h2-bytes-not-parsed"] += self.h2_bytes

    # -- the session row ----------------------------------------------------------------------------

    def session_columns(self) -> dict[str, object]:
        e = self.engine
        return {"tls_version": e.version, "tls_cipher": e.cipher, "sni": e.sni, "alpn": e.alpn,
                "tls_decrypted": bool(e.decrypted)}

    def session_anomaly(self) -> str:
        return ";".join(dict.fromkeys(self.anomalies))

    # -- events -------------------------------------------------------------------------------------

    def _events(self, events: list[TlsEvent]) -> None:
        for ev in events:
            if type(ev) is ApplicationData:
                if self.engine.alpn == H2:  # HTTP/2 is reported, never parsed as HTTP/1
                    self.h2_bytes += len(ev.data)
                else:
                    self.plaintext.feed(ev.direction, ev.ts, ev.data)
            elif type(ev) is ClientHello:
                if self.ts_hello is None:
                    self.ts_hello = ev.ts
            elif type(ev) is HandshakeDone:
                if self.ts_done is None:
                    self.ts_done = ev.ts
                    self._handshake_row(ev.ts)
            elif type(ev) is Alert:
                if ev.fatal and self.fatal is None:
                    self.fatal = ev.description
                    self.anomalies.append(f"tls-fatal-alert:{ev.description}")
                    self._handshake_row(ev.ts)
            elif type(ev) is Anomaly:
                self.anomalies.append(ev.kind)
            elif type(ev) is Undecryptable:
                pass  # the engine keeps the reason (why_undecryptable)

    def _why_not(self) -> str:
        why = self.engine.why_undecryptable or "not decrypted"
        if not len(self.keylog) and why.startswith("no key"):
            why = NO_KEYS
        return why

    def _handshake_row(self, ts: int, ended: bool = False) -> None:
        """The ``tls`` row of ``handshakes``: ClientHello to the end of the handshake; ok false on
        a fatal alert first; ok empty when the capture ended before the handshake did."""
        if self.hs_written or self.ts_hello is None:
            return
        self.hs_written = True
        e = self.engine
        ok: bool | None
        end: int | None
        if self.ts_done is not None and self.fatal is None:
            ok, end = True, self.ts_done
        elif self.fatal is not None:
            ok, end = False, ts
        elif ended and capture_ended(self.ts_hello, self.outbox.capture_end):
            ok, end = None, None  # the capture ended before the handshake could
        else:
            ok, end = False, ts if not ended else None
        parts = [f"version={e.version or '-'}", f"cipher={e.cipher or '-'}", f"sni={e.sni or '-'}",
                 f"alpn={e.alpn or '-'}", f"resumed={'-' if e.resumed is None else str(e.resumed).lower()}"]
        if e.decrypted and e.why_undecryptable is None:
            parts.append("decrypted=true")
        elif e.decrypted:
            parts.append(f"decrypted=partly ({e.why_undecryptable})")
        elif e.server_hello is not None:
            parts.append(f"decrypted=false ({self._why_not()})")
        if self.fatal is not None:
            parts.append(f"alert={self.fatal}")
        if ok is None:
            parts.append(CAPTURE_ENDED)
        elif ok is False and self.fatal is None:
            parts.append("handshake not completed")
        self.outbox.handshakes.append(Handshake(
            self.session_id, "tls", self.ts_hello, end, ms(self.ts_hello, end), ok, " ".join(parts), None))
