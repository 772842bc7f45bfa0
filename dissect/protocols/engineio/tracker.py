"""Every Engine.IO session of one analysis, tied together across TCP connections by its ``sid``
(v4 "Handshake", "HTTP long-polling", "Upgrade"; v3 "Transports", "Transport upgrading").

The HTTP layer calls :meth:`EngineIO.polling_request` and :meth:`EngineIO.polling_response`;
:meth:`EngineIO.websocket_opened` hands the WebSocket layer an
:class:`~dissect.protocols.engineio.websocket.EngineIOWebSocket`. Every Engine.IO packet becomes
one ``sio_packets`` row (:meth:`EngineIO.packet`); handshakes become ``handshakes`` rows.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable

from dissect.protocols.engineio.packets import (
    CLOSE,
    EIO_BAD_OPEN,
    EIO_TYPE_NAMES,
    MESSAGE,
    OPEN,
    OPEN_WRONG_DIRECTION,
    PING,
    PING_WRONG_DIRECTION,
    PONG,
    PONG_WRONG_DIRECTION,
    UPGRADE,
    UPGRADE_WITHOUT_PROBE,
    UPGRADE_WRONG_DIRECTION,
    DecodedPacket,
)
from dissect.protocols.engineio.payloads import (
    content_decoded,
    decode_payload,
    jsonp_request,
    jsonp_response,
)
from dissect.protocols.engineio.query import (
    eio_version,
    is_engineio_target,
    path_mode,
    request_query,
    transport_of,
)
from dissect.protocols.engineio.session import Session
from dissect.protocols.engineio.websocket import EngineIOWebSocket, configure_compiled
from dissect.protocols.socketio import (
    ATTACHMENTS_MISSING,
    GROUP_END,
    GROUP_MORE,
    GROUP_START,
    MAX_ATTACHMENTS,
    SioResult,
    SocketIOState,
    join_tags,
)
from dissect.protocols.socketio.sockets import BY_NAMES, SERVER_SHUTTING_DOWN, TRANSPORT_CLOSE
from dissect.records import C2S, CAPTURE_ENDED, DIRECTION_NAMES, S2C, Handshake, Outbox, SioPacket, capture_ended, ms

# Bounds.
MAX_CLOSED_SESSIONS = 4096  # closed sessions kept for late packets naming their sid
MAX_HELD_ROWS = MAX_ATTACHMENTS + 64  # rows held while a packet's attachments arrive


class EngineIO:
    """Every Engine.IO session of one analysis. Sessions span TCP connections (polling requests on
    several connections, then the WebSocket) and are tied together by their sid.

    ``app_protocols`` maps a TCP session id to the highest layer seen on it: ``engineio`` or
    ``socketio``. When a session ends its counts (``sio-acks-dropped``: events evicted from the
    bounded table of events waiting for an ACK; ``sio-acks-unanswered``: events with an ack id
    whose ACK never came) go to the outbox's counters, which reach summary.json's ``decode``.
    Under ``--jobs`` only the worker that ``reports`` a session counts it (every worker may see a
    shared polling handshake).
    """

    # (slots: the compiled core reads outbox and payloads in place, dissect/compiled/sio_scan.pxi)
    __slots__ = ("outbox", "reports", "payloads", "app_protocols", "_sessions", "_unnamed", "_closed",
                 "_pending_open", "_ws_waiting")

    def __init__(self, outbox: Outbox, reports: Callable[[int, str | None], bool] | None = None,
                 payloads: bool = False) -> None:
        self.outbox = outbox
        self.reports = reports
        self.payloads = payloads  # --payloads: sio_packets rows carry the packet's JSON
        self.app_protocols: dict[int, str] = {}
        self._sessions: dict[str, Session] = {}
        self._unnamed: dict[int, Session] = {}  # sessions whose open packet has not come yet
        self._closed: deque[str] = deque()
        # Handshake GETs (no sid) awaiting their response: (TCP session, ts) -> version, transport
        self._pending_open: dict[tuple[int, int], tuple[int | None, str]] = {}
        self._ws_waiting: dict[int, EngineIOWebSocket] = {}  # WebSockets waiting for the open

    is_engineio_target = staticmethod(is_engineio_target)

    # -- sessions ------------------------------------------------------------------------------

    def _new_session(self, sid: str | None, version: int | None, target: str, tcp: int) -> Session:
        sess = Session(sid, version, SocketIOState(self.outbox, path_mode(target), self.payloads), tcp)
        if sid is None:
            self._unnamed[id(sess)] = sess
        else:
            self._sessions[sid] = sess
        return sess

    def _session(self, sid: str, version: int | None, target: str, tcp: int) -> Session:
        sess = self._sessions.get(sid)
        if sess is None:
            # The capture started after the handshake: the session is picked up where it is.
            sess = self._new_session(sid, version, target, tcp)
        elif sess.version is None and version is not None:
            sess.set_version(version)
        return sess

    def _name(self, sess: Session, sid: str) -> None:
        """The open packet gave ``sess`` its sid."""
        self._unnamed.pop(id(sess), None)
        sess.sid = sid
        self._sessions[sid] = sess

    def end_session(self, sess: Session) -> None:
        """The session is over: held rows go out, CONNECTs never answered fail (or were cut
        short by the capture's end), sockets still open end (``capture ended``, unless the
        heartbeat had given up on them before), acks are counted."""
        for d in (C2S, S2C):
            if sess.held[d] is not None:
                self._flush(sess, d, sess.sio.expect[d] > 0)
        sockets = sess.sio.sockets
        if sockets.live:
            end = self.outbox.capture_end
            sockets.session_ended(end if end is not None else 0, CAPTURE_ENDED, None)
        self.socket_rows(sess)
        sess.sio.close()
        if sess.sio.counters and self._reports(sess):
            self.outbox.counters.update(sess.sio.counters)
        sess.sio.counters.clear()
        if sess.closed:
            return
        sess.closed = True
        self._unnamed.pop(id(sess), None)
        if sess.sid is not None:
            self._closed.append(sess.sid)
            if len(self._closed) > MAX_CLOSED_SESSIONS:
                old = self._closed.popleft()
                gone = self._sessions.get(old)
                if gone is not None and gone.closed:
                    del self._sessions[old]

    def socket_rows(self, sess: Session) -> None:
        """The ``sio_sockets`` rows of the session's sockets that ended (under ``--jobs`` only
        from the worker that reports the session)."""
        sockets = sess.sio.sockets
        if not sockets.ended:
            return
        mine = self._reports(sess)
        sockets.rows(sess.sid, sess.version, sess.transport,
                     self.outbox.sio_sockets.append if mine else None, sess.sio.pending_acks)

    def _reports(self, sess: Session) -> bool:
        """Whether this worker reports the session (``--jobs``): the owner of its sid, or of its
        connection when it started on a WebSocket (nobody dealt it by its sid)."""
        if self.reports is None:
            return True
        return self.reports(sess.first_tcp, None if sess.ws_born else sess.sid)

    def stop_waiting(self, ws: EngineIOWebSocket) -> None:
        """``ws`` no longer waits for its open packet (it came, or the handshake failed)."""
        self._ws_waiting.pop(id(ws), None)

    # -- rows ------------------------------------------------------------------------------------

    def _flush(self, sess: Session, d: int, missing: bool) -> None:
        rows = sess.held[d]
        sess.held[d] = None
        if not rows:
            return
        if missing:
            head = rows[0]
            rows[0] = head._replace(anomaly=join_tags(head.anomaly, ATTACHMENTS_MISSING))
            sess.sio.abandon_attachments(d)
        self.outbox.sio_packets.extend(rows)

    def _deliver(self, sess: Session, d: int, row: SioPacket, res: SioResult | None) -> None:
        if sess.closed:
            # Nothing flushes a closed session again: hold nothing (packets after close are
            # stragglers, such as the answer to a pending GET).
            self.outbox.sio_packets.append(row)
            return
        held = sess.held[d]
        if res is not None:
            if res.broken and held is not None:
                self._flush(sess, d, True)
                held = None
            g = res.group
            if g == GROUP_START:
                if held is not None:
                    self._flush(sess, d, True)
                sess.held[d] = [row]
                return
            if g == GROUP_END and held is not None:
                held.append(row)
                self._flush(sess, d, False)
                return
            if g == GROUP_MORE and held is None:  # its header was flushed (too many rows held)
                self.outbox.sio_packets.append(row)
                return
        if held is None:
            self.outbox.sio_packets.append(row)
            return
        held.append(row)
        if len(held) > MAX_HELD_ROWS:
            self._flush(sess, d, True)

    def _handshake_open(
        self, sess: Session, tcp: int, ts_start: int, ts: int, transport: str,
        info: dict[str, object],
    ) -> None:
        parts = [f"sid={sess.sid}", f"eio={sess.version}"]
        for key in ("pingInterval", "pingTimeout"):
            if key in info:
                parts.append(f"{key}={info[key]}")
        upgrades = info.get("upgrades")
        if isinstance(upgrades, list):
            parts.append("upgrades=" + ",".join(str(u) for u in upgrades))
        if "maxPayload" in info:
            parts.append(f"maxPayload={info['maxPayload']}")
        self.outbox.handshakes.append(
            Handshake(
                tcp, "engineio", ts_start, ts, ms(ts_start, ts), True, " ".join(parts), transport
            )
        )

    def handshake_failed(
        self, tcp: int, ts_start: int, ts: int | None, transport: str, version: int | None, why: str,
    ) -> None:
        """A failed Engine.IO handshake row (``why``: its ``status=`` / ``error=`` detail); an
        unanswered one that the capture's end cut short has ok empty."""
        ok: bool | None = False
        if ts is None and capture_ended(ts_start, self.outbox.capture_end):
            ok, why = None, CAPTURE_ENDED
        self.outbox.handshakes.append(
            Handshake(
                tcp, "engineio", ts_start, ts, ms(ts_start, ts), ok,
                f"eio={version if version is not None else '?'} {why}", transport,
            )
        )

    def _open(
        self, sess: Session, tcp: int, d: int, ts: int, transport: str, buf: bytes, off: int,
        hs_start: int | None,
    ) -> str:
        """An open packet (v4 "Handshake"); returns the row's anomaly."""
        if d == C2S:
            return OPEN_WRONG_DIRECTION
        try:
            info = json.loads(buf[off:])
        except (ValueError, UnicodeDecodeError, RecursionError):  # too deeply nested: malformed for us
            info = None
        if not isinstance(info, dict) or not isinstance(info.get("sid"), str):
            if hs_start is not None:
                self.handshake_failed(tcp, hs_start, ts, transport, sess.version, "error=bad-open")
            return EIO_BAD_OPEN
        sid: str = info["sid"]
        if sess.version is None:
            # PROTOCOLS.md: without EIO=, maxPayload (added in v4) in the open packet means v4.
            sess.set_version(4 if "maxPayload" in info else 3)
        if sess.sid is None:
            self._name(sess, sid)
        sess.sio.open_ts = ts
        sess.sio.sockets.opened(info.get("pingInterval"), info.get("pingTimeout"), sess.version)
        if hs_start is not None:
            self._handshake_open(sess, tcp, hs_start, ts, transport, info)
        return ""

    def packet(
        self, sess: Session, tcp: int, d: int, ts: int, transport: str, pkt: DecodedPacket,
        ws: EngineIOWebSocket | None, hs_start: int | None,
    ) -> bool:
        """One Engine.IO packet, one row. True when it was an open packet (handshake done)."""
        t, buf, off, binary, size, anomaly = pkt
        res: SioResult | None = None
        opened = False
        sockets = sess.sio.sockets
        if d == C2S:
            sockets.c2s(ts)
        if t == MESSAGE:
            if binary:
                res = sess.sio.binary(d, buf, off, ts, tcp, transport)
            else:
                res = sess.sio.text(d, ts, buf, off, tcp, transport)
            if res is not None:
                if res.anomaly:
                    anomaly = join_tags(anomaly, res.anomaly)
                if self.app_protocols.get(tcp) != "socketio":
                    self.app_protocols[tcp] = "socketio"
            elif tcp not in self.app_protocols:
                self.app_protocols[tcp] = "engineio"
        else:
            if tcp not in self.app_protocols:
                self.app_protocols[tcp] = "engineio"
            if t == PING or t == PONG:
                # v3 "2 ping": sent by the client; v4 "Heartbeat": the server pings. The upgrade
                # probe is a client ping in both (v4 "Upgrade").
                if not binary and buf[off:] == b"probe":
                    client_pings = True
                    if t == PONG and ws is not None and d == S2C:
                        ws.probed = True
                elif sess.version is None:
                    client_pings = d == (C2S if t == PING else S2C)  # unknown: no verdict
                else:
                    client_pings = sess.version == 3
                if t == PING and d != (C2S if client_pings else S2C):
                    anomaly = join_tags(anomaly, PING_WRONG_DIRECTION)
                elif t == PONG and d != (S2C if client_pings else C2S):
                    anomaly = join_tags(anomaly, PONG_WRONG_DIRECTION)
                elif binary or buf[off:] != b"probe":
                    # A heartbeat (v4 "Heartbeat"; v3 the client's ping): for the sockets' rows.
                    if t == PING:
                        sockets.ping(ts)
                    else:
                        anomaly = join_tags(anomaly, sockets.pong(ts))
            elif t == OPEN:
                opened = True
                why = self._open(sess, tcp, d, ts, transport, buf, off, hs_start)
                anomaly = join_tags(anomaly, why)
            elif t == UPGRADE:
                if d == S2C:
                    anomaly = join_tags(anomaly, UPGRADE_WRONG_DIRECTION)
                elif ws is None or not ws.probed:
                    anomaly = join_tags(anomaly, UPGRADE_WITHOUT_PROBE)
                if ws is not None and d == C2S:
                    sess.transport = "websocket"
                    sess.ws = ws
        if res is None:
            values: tuple[object, ...] = (
                tcp, ts, DIRECTION_NAMES[d], transport, sess.version,
                EIO_TYPE_NAMES[t] if t >= 0 else "", "", None, None, None, None, size, None,
                anomaly, sess.sid, None, self.outbox.frame, None, None, None,
            )
        else:
            values = (
                tcp, ts, DIRECTION_NAMES[d], transport, sess.version, "message", res.sio_type,
                res.namespace, res.event, res.ack_id, res.attachments, size, res.ack_latency_ms,
                anomaly, sess.sid, res.attachment_index, self.outbox.frame, res.acked_event, res.data,
                res.digest,
            )
        self._deliver(sess, d, SioPacket._make(values), res)
        if sockets.ended:
            self.socket_rows(sess)
        if t == CLOSE:
            # v4 "Protocol": close ends the session (both transports): by the client, the
            # transport closed under its sockets; by the server without DISCONNECT, io.close().
            if not sess.closed and sockets.live:
                sockets.session_ended(ts, TRANSPORT_CLOSE if d == C2S else SERVER_SHUTTING_DOWN, BY_NAMES[d])
            self.end_session(sess)
        return opened

    # -- HTTP long-polling ---------------------------------------------------------------------

    @staticmethod
    def _body_packets(
        sess: Session, body: bytes, headers: dict[str, str], q: dict[str, str], request: bool
    ) -> list[DecodedPacket]:
        """The packets of a polling body: content coding, JSONP, then the payload framing."""
        raw_size = len(body)
        body, problem = content_decoded(body, headers.get("content-encoding", ""))
        if request:
            if "j" in q or body.startswith(b"d="):
                body = jsonp_request(body)
        elif "j" in q:
            body = jsonp_response(body) or body
        packets, seen = decode_payload(body, sess.version, headers.get("content-type", ""))
        if sess.version is None and seen is not None:
            sess.set_version(seen)
        if problem:
            if packets:
                t, buf, off, binary, size, anomaly = packets[-1]
                packets[-1] = (t, buf, off, binary, size, join_tags(anomaly, problem))
            else:
                packets = [(-1, b"", 0, False, raw_size, problem)]
        return packets

    def polling_request(
        self, session_id: int, ts: int, method: str, target: str, headers: dict[str, str],
        body: bytes | None,
    ) -> None:
        """A request to an Engine.IO target (v4 "HTTP long-polling"); POST bodies carry c2s packets.

        Call it as soon as the request is complete (before its response): a POST's EVENT must be
        seen before the ACK that a pending GET may return first. For a GET it only notes a
        handshake request (no ``sid``), so that one never answered fails at :meth:`finish`.
        """
        q = request_query(target)
        version = eio_version(q)
        sid = q.get("sid")
        if method == "GET":
            if sid is None:
                self._pending_open[(session_id, ts)] = (version, transport_of(q))
            return
        if method != "POST" or not body or sid is None:
            return
        sess = self._session(sid, version, target, session_id)
        for pkt in self._body_packets(sess, body, headers, q, True):
            self.packet(sess, session_id, C2S, ts, "polling", pkt, None, None)

    def polling_response(
        self, session_id: int, ts_request: int, ts: int, method: str, target: str, status: int,
        headers: dict[str, str], body: bytes | None,
    ) -> None:
        """The response to an Engine.IO request; GET bodies carry s2c packets.

        The first GET without ``sid`` gets the open packet (v4 "Handshake"); an error status there
        is a failed handshake. A 101 is left to :meth:`websocket_opened`.
        """
        if status == 101 or method != "GET":
            return
        q = request_query(target)
        sid = q.get("sid")
        version = eio_version(q)
        if sid is None:
            pending = self._pending_open.pop((session_id, ts_request), None)
            transport = pending[1] if pending else transport_of(q)
            if not 200 <= status < 300:
                why = f"status={status}"
                message = _error_message(body)
                if message:
                    why += f" error={message}"
                self.handshake_failed(session_id, ts_request, ts, transport, version, why)
                return
            sess = self._new_session(None, version, target, session_id)
            hs_start: int | None = ts_request
            for pkt in self._body_packets(sess, body or b"", headers, q, False):
                if self.packet(sess, session_id, S2C, ts, "polling", pkt, None, hs_start):
                    hs_start = None
            if hs_start is not None:
                self.handshake_failed(
                    session_id, ts_request, ts, transport, sess.version, "error=no-open-packet"
                )
            if sess.sid is None:
                self.end_session(sess)  # nothing can name it again: nothing to wait for
            return
        if not 200 <= status < 300 or not body:
            return
        sess = self._session(sid, version, target, session_id)
        for pkt in self._body_packets(sess, body, headers, q, False):
            self.packet(sess, session_id, S2C, ts, "polling", pkt, None, None)

    # -- WebSocket -----------------------------------------------------------------------------

    def websocket_opened(
        self, session_id: int, ts_request: int, ts_response: int, target: str
    ) -> EngineIOWebSocket:
        """A GET with ``transport=websocket`` got its 101 (v4 "WebSocket").

        With ``sid=`` it is an upgrade of that session (v4 "Upgrade"); without, the session starts
        here and its handshake ends with the open packet.
        """
        self._pending_open.pop((session_id, ts_request), None)
        q = request_query(target)
        version = eio_version(q)
        sid = q.get("sid")
        if sid is not None:
            return EngineIOWebSocket(self, self._session(sid, version, target, session_id), session_id, None)
        sess = self._new_session(None, version, target, session_id)
        sess.transport = "websocket"
        sess.ws_born = True
        ws = EngineIOWebSocket(self, sess, session_id, ts_request)
        sess.ws = ws
        self._ws_waiting[id(ws)] = ws
        return ws

    def finish(self, ts: int) -> None:
        """End of the analysis: unanswered handshakes fail, held rows go out, acks are counted."""
        for (tcp, ts_request), (version, transport) in self._pending_open.items():
            self.handshake_failed(tcp, ts_request, None, transport, version, "error=no-response")
        self._pending_open.clear()
        for ws in list(self._ws_waiting.values()):
            ws.give_up()
        for sess in list(self._sessions.values()) + list(self._unnamed.values()):
            if not sess.closed:
                self.end_session(sess)


def _error_message(body: bytes | None) -> str:
    """The ``message`` of an Engine.IO error response ``{"code":..,"message":..}`` (rare path)."""
    if not body:
        return ""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # too deeply nested: malformed for us
        return ""
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return str(value["message"])[:200]
    return ""



configure_compiled(EngineIO)  # the compiled Socket.IO scan reads an EngineIO's slots
