"""The WebSocket dissector: RFC 6455 section 5 frames and messages of one connection after the 101.

Sans-IO: :class:`WebSocketDissector` is fed the in-order stream bytes of one TCP connection after
the 101 response, per direction, with integer-nanosecond timestamps; it appends
:class:`~dissect.records.WsFrame` and :class:`~dissect.records.WsMessage` rows to a
:class:`~dissect.records.Outbox` and hands complete data messages to an optional upper layer
(:class:`WsUpper`). Compressed messages go through the RFC 7692 stage of :mod:`.deflate`.

The dissector never raises on hostile input: whatever violates RFC 6455 / RFC 7692 becomes a
kebab-case tag in the row's ``anomaly`` column (the tag constants of :mod:`.frames`).
"""

from __future__ import annotations

import struct
from typing import Protocol

from dissect import fastpaths
from dissect.protocols.websocket.deflate import PerMessageInflate
from dissect.protocols.websocket.frames import (
    CONTINUATION_WITHOUT_START,
    FRAME_AFTER_CLOSE,
    LOST_BYTES,
    MESSAGE_INTERRUPTED,
    NEW_MESSAGE_INSIDE_FRAGMENTED,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_TEXT,
    OPCODE_NAMES,
    RESYNC,
    RSV1_MESSAGE_START,
    RSV1_NONE,
    TRUNCATED,
    HeaderRules,
    close_body,
    find_header,
    header_anomalies,
    unmask,
)
from dissect.protocols.websocket.handshake import DeflateParams
from dissect.protocols.websocket.message import PREVIEW_CHARS, Message, payload_text, text_preview
from dissect.records import C2S, DIRECTION_NAMES, S2C, Outbox, WsFrame, WsMessage

__all__ = ["WebSocketDissector", "WsUpper"]

_core = fastpaths.compiled_core()
if _core is not None:  # the compiled whole-frame path builds the rows the fast path below builds
    _core.configure_ws(WsFrame, WsMessage, OPCODE_NAMES, PREVIEW_CHARS)

_CTRL_KEEP = 4096  # bytes of an (oversized) close payload kept for code/reason
_U16 = struct.Struct(">H").unpack_from
_U64 = struct.Struct(">Q").unpack_from
# Rows are built with tuple.__new__ (no per-field argument binding): about 3x cheaper than
# calling the NamedTuple, which matters at one or two rows per frame.  The tests check arity.
_row = tuple.__new__


class WsUpper(Protocol):
    """The layer above WebSocket (e.g. Engine.IO), fed one call per data message."""

    def ws_message(self, direction: int, ts: int, opcode: int, payload: bytes | None) -> None:
        """One data message (opcode 1 or 2) after reassembly and decompression.

        ``payload`` is None when it could not be decoded (lost bytes, inflate failure, size
        cap, connection ended mid-message). ``ts`` is the ts of the message's last frame.
        """


class Direction:
    """Parser state of one direction."""

    __slots__ = (
        "d", "name", "mask_bit", "buf", "scanning", "resynced", "orphan", "closed",
        "f_rem", "f_b0", "f_hl", "f_ln", "f_mask", "f_off", "f_tags", "f_lost", "f_ctrl",
        "f_compressed", "msg", "inflate", "rules",
    )

    def __init__(self, d: int, inflate: PerMessageInflate | None, max_len: int) -> None:
        self.d = d
        self.name = DIRECTION_NAMES[d]
        self.mask_bit = 0x80 if d == C2S else 0  # RFC 6455 5.1: client masks, server doesn't
        self.buf = bytearray()
        self.scanning = False  # looking for a plausible header after lost bytes
        self.resynced = False  # the next frame was found by scanning
        self.orphan = False  # a continuation may follow lost bytes without a start
        self.closed = False  # a Close frame was sent in this direction
        # the frame whose header is parsed but whose payload is still arriving
        self.f_rem = 0
        self.f_b0 = 0
        self.f_hl = 0
        self.f_ln = 0
        self.f_mask: bytes | None = None
        self.f_off = 0
        self.f_tags: list[str] = []
        self.f_lost = False
        self.f_ctrl: bytearray | None = None
        self.f_compressed = False
        self.msg: Message | None = None
        self.inflate = inflate  # the RFC 7692 stage; None without permessage-deflate
        # RFC 6455 5.2 headers a peer may legitimately send, for resynchronising: RSV1 only on
        # a data message's first frame under deflate, the mask bit of this direction.
        self.rules = HeaderRules(self.mask_bit, RSV1_NONE if inflate is None else RSV1_MESSAGE_START, max_len)


class WebSocketDissector:
    """RFC 6455 section 5 frames and messages of one TCP connection after the 101.

    ``deflate``: the permessage-deflate parameters of :func:`negotiate` (RFC 7692), None when
    the extension was not negotiated. ``upper`` receives every text/binary message.
    ``max_message_bytes`` caps what is inflated and materialised per message.

    Rows: one :class:`WsFrame` per frame as it completes (``frame_index`` counts both
    directions in order of completion), one :class:`WsMessage` per message as it completes
    (``message_index`` likewise; a control frame is its own message).
    """

    # (slots: the compiled core reads and writes some of them in place, dissect/compiled/ws_frames.pxi)
    __slots__ = ("session_id", "payloads", "outbox", "deflate", "upper", "max_message_bytes", "_frame_index",
                 "_message_index", "_done", "first_close", "transport_end", "_fast_cap", "_wsc", "_st",
                 "_zcap", "_czcap")

    def __init__(
        self,
        session_id: int,
        outbox: Outbox,
        deflate: DeflateParams | None = None,
        upper: WsUpper | None = None,
        max_message_bytes: int = 16 << 20,
        payloads: bool = False,
    ) -> None:
        self.session_id = session_id
        self.payloads = payloads  # --payloads: ws_messages rows carry the whole data message
        self.outbox = outbox
        self.deflate = deflate
        self.upper = upper
        self.max_message_bytes = max(0, max_message_bytes)
        self._frame_index = 0
        self._message_index = 0
        self._done = False
        self.first_close: tuple[int, int, int | None] | None = None  # the first Close frame: ts, direction, code
        self.transport_end: tuple[int, int, str] | None = None  # first FIN / RST (transport_ended)
        # The fast path's largest payload: -1 (no frame) when its switch is off, so that the
        # switch costs the per-frame test nothing.
        self._fast_cap = self.max_message_bytes if fastpaths.WS_WHOLE_FRAME else -1
        # Likewise for a whole compressed frame (fastpaths.WS_DEFLATE_WHOLE_FRAME; wire bytes).
        self._zcap = self.max_message_bytes if fastpaths.WS_DEFLATE_WHOLE_FRAME and deflate is not None else -1
        # ... and taken by the compiled whole-frame path (fastpaths.COMPILED_WS_DEFLATE: -1 when not).
        self._czcap = self._zcap if fastpaths.COMPILED_WS_DEFLATE else -1
        # The same fast path compiled (fastpaths.COMPILED_WS_FRAMES), None without the compiled core
        # or with --payloads (its rows' payload column is left to the Python code).
        self._wsc = fastpaths.compiled_ws_frames() if fastpaths.WS_WHOLE_FRAME and not payloads else None
        # frames longer than this are not believed when resynchronising
        sane_len = max(self.max_message_bytes, 1 << 24)
        # RFC 7692 7.1.1: client_* parameters govern c2s, server_* govern s2c.
        if deflate is None:
            self._st = (Direction(C2S, None, sane_len), Direction(S2C, None, sane_len))
        else:
            cap = self.max_message_bytes
            self._st = (
                Direction(C2S, PerMessageInflate(not deflate.client_no_context_takeover, cap), sane_len),
                Direction(S2C, PerMessageInflate(not deflate.server_no_context_takeover, cap), sane_len),
            )

    # ------------------------------------------------------------------ input

    def feed(self, direction: int, ts: int, data: bytes) -> None:
        """In-order stream bytes of one direction that arrived in a segment at ``ts`` (ns).

        RFC 6455 5.2 framing; a frame's ts is the ts of the feed that completed it.
        """
        if self._done or not data:
            return
        if type(data) is not bytes:
            data = bytes(data)  # e.g. a memoryview: slicing and mask arithmetic need bytes
        st = self._st[direction]
        if st.f_rem:
            # Inside a frame's payload: hand over what belongs to it without buffering.
            n = len(data)
            r = st.f_rem
            if n < r:
                self._payload(st, data)
                st.f_rem = r - n
                return
            self._payload(st, data if n == r else data[:r])
            st.f_rem = 0
            self._end_frame(st, ts)
            if n == r:
                return
            data = data[r:]
        buf = st.buf
        src: bytes | bytearray
        if st.scanning:
            buf += data
            if not self._scan(st):
                return
            src = buf
        elif buf:
            buf += data
            src = buf
        else:
            src = data  # common case: the segment starts on a frame boundary
        n = len(src)
        pos = 0
        sink_frames = self.outbox.ws_frames
        sink_msgs = self.outbox.ws_messages
        packet = self.outbox.frame  # the packet being fed holds the last byte of what ends here
        upper = self.upper
        cap = self._fast_cap
        sid = self.session_id
        dname = st.name
        mask_bit = st.mask_bit
        masked = mask_bit != 0
        wsc = self._wsc
        while n - pos >= 2:
            if wsc is not None and st.msg is None and not st.closed and not st.resynced and not st.orphan:
                # fastpaths.COMPILED_WS_FRAMES: the fast path below, in C, over as many frames as it takes
                pos = wsc(self, src, pos, ts, direction, dname, mask_bit, cap, sink_frames, sink_msgs, packet,
                          upper)
                if n - pos < 2:
                    break
            b0 = src[pos]
            b1 = src[pos + 1]
            ln = b1 & 0x7F
            odd = False  # anything the fast path does not handle
            if ln < 126:
                hl = 2
            elif ln == 126:
                hl = 4
            else:
                hl = 10
            if b1 & 0x80:
                hl += 4
            if n - pos < hl:
                break
            if ln == 126:
                ln = _U16(src, pos + 2)[0]
                odd = ln < 126
            elif ln == 127:
                ln = _U64(src, pos + 2)[0]
                odd = ln < 65536 or ln >> 63 != 0
            a = pos + hl
            end = a + ln
            op = b0 & 0x0F
            if (
                end <= n
                and not odd
                and (b0 & 0x70) == 0
                and (b1 & 0x80) == mask_bit
                and (op == 1 or op == 2)
                and b0 & 0x80
                and st.msg is None
                and not st.closed
                and not st.resynced
                and not st.orphan
                and ln <= cap  # never when fastpaths.WS_WHOLE_FRAME is off (cap is -1)
            ):
                # Fast path, RFC 6455 5.4: an unfragmented, uncompressed, well-formed data
                # message complete in this segment (by far the most common frame); the rows
                # _begin_frame, _payload and _end_frame would write.
                payload: bytes | None = None
                if op == 1 or upper is not None or self.payloads:
                    if mask_bit:
                        m = src[a - 4 : a]
                        payload = (
                            int.from_bytes(src[a:end], "big")
                            ^ int.from_bytes((m * ((ln >> 2) + 1))[:ln], "big")
                        ).to_bytes(ln, "big")
                    else:
                        payload = bytes(src[a:end])
                anomaly = ""
                preview = ""
                if op == 1:
                    assert payload is not None
                    preview, anomaly = text_preview(payload)
                fi = self._frame_index
                self._frame_index = fi + 1
                opname = OPCODE_NAMES[op]
                sink_frames.append(_row(WsFrame, (
                    sid, fi, ts, dname, True, False, False, False, op, opname,
                    masked, ln, hl, False, None, None, "", packet,
                )))
                mi = self._message_index
                self._message_index = mi + 1
                sink_msgs.append(_row(WsMessage, (
                    sid, mi, ts, ts, dname, opname, 1, hl + ln, ln, False, preview, anomaly,
                    payload_text(op, payload) if self.payloads else None,
                )))
                if upper is not None:
                    upper.ws_message(direction, ts, op, payload)
                pos = end
                continue
            if (
                end <= n
                and not odd
                and (b0 & 0x70) == 0x40
                and (b1 & 0x80) == mask_bit
                and (op == 1 or op == 2)
                and b0 & 0x80
                and ln <= self._zcap  # -1 without permessage-deflate or with the switch off
                and st.msg is None
                and not st.closed
                and not st.resynced
                and not st.orphan
                and not st.inflate.ctx_lost  # type: ignore[union-attr]  # (not None: _zcap says so)
            ):
                self._whole_compressed(st, src, a, ln, hl, op, ts)
                pos = end
                continue
            self._begin_frame(st, b0, b1, hl, ln, odd, bytes(src[a - 4 : a]) if b1 & 0x80 else None)
            if end <= n:
                if ln:
                    self._payload(st, src[a:end])
                self._end_frame(st, ts)
                pos = end
            else:
                if a < n:
                    self._payload(st, src[a:n])
                st.f_rem = end - n
                pos = n
                break
        if src is buf:
            if pos:
                del buf[:pos]
        elif pos < n:
            buf += src[pos:]

    def gap(self, direction: int, ts: int, nbytes: int) -> None:
        """``nbytes`` of this direction were lost (never captured).

        The frame in progress is flagged ``lost-bytes`` (its row is written when it ends, at
        ``ts`` if the gap reaches past it) and its message becomes undecodable.  When the gap
        ends where we know the next frame starts, parsing continues there; otherwise the next
        feeds are scanned for a plausible RFC 6455 5.2 header.  Under context takeover
        (RFC 7692 7.2.3) the direction's later compressed messages become undecodable.
        """
        if self._done or nbytes <= 0:
            return
        st = self._st[direction]
        if st.f_rem:
            st.f_lost = True
            m = st.msg
            if m is not None and not st.f_b0 & 0x100:
                m.lose(st.inflate)
            if nbytes < st.f_rem:
                # The gap is inside this frame's payload: we still know where the frame ends.
                st.f_rem -= nbytes
                st.f_off += nbytes
                return
            nbytes -= st.f_rem
            st.f_rem = 0
            self._end_frame(st, ts)
            if nbytes == 0:
                return  # the next feed starts on a frame header
        # Header bytes were lost: where the next frame starts is unknown.
        st.buf.clear()
        st.scanning = True
        st.orphan = True
        m = st.msg
        if m is not None:
            m.lose(st.inflate)
            m.size_known = False
            m.gap_open = True
        if st.inflate is not None:
            st.inflate.lose_context()  # the lost bytes may have held compressed messages

    def finish(self, ts: int) -> None:
        """End of the TCP connection: an incomplete frame or message gets ``truncated``."""
        if self._done:
            return
        self._done = True
        for st in self._st:
            if st.f_rem:
                st.f_tags.append(TRUNCATED)
                st.f_rem = 0
                self._end_frame(st, ts, truncated=True)
            m = st.msg
            if m is not None:
                st.msg = None
                if TRUNCATED not in m.tags:
                    m.tags.append(TRUNCATED)
                m.payload_ok = False
                if m.compressed:
                    m.size_known = False
                self._emit_msg(st, m, m.ts_last if m.ts_first is not None else ts)
            st.buf = bytearray()
        closed = getattr(self.upper, "ws_closed", None)
        if closed is not None:
            closed(ts, self.first_close, self.transport_end)

    def transport_ended(self, ts: int, direction: int, how: str) -> None:
        """Optional, from the transport: its first FIN or RST (``how``) came at ``ts`` from
        ``direction``; passed on to the upper layer when the WebSocket ends."""
        if self.transport_end is None:
            self.transport_end = (ts, direction, how)

    def _whole_compressed(self, st: Direction, src: bytes | bytearray, a: int, ln: int, hl: int, op: int,
                          ts: int) -> None:
        """Fast path (fastpaths.WS_DEFLATE_WHOLE_FRAME), RFC 7692: an unfragmented compressed data
        message whose frame is whole in this segment, with no anomaly in its header; the rows and
        the upper layer's call _begin_frame, _payload and _end_frame would make. The RFC 7692
        stage is called as they call it; when it reports an anomaly the message is finished by
        the same Message steps as theirs."""
        mask = bytes(src[a - 4 : a]) if st.mask_bit else None
        data = unmask(src[a : a + ln], mask, 0) if mask is not None else bytes(src[a : a + ln])
        inflate = st.inflate
        assert inflate is not None
        inflate.begin_message()  # "" (the caller checked ctx_lost)
        out, tag = inflate.end_message(data)  # the payload and the 7.2.2 tail in one inflate call
        self.compressed_rows(st, op, ts, ln, hl, out, tag)

    def compressed_rows(self, st: Direction, op: int, ts: int, ln: int, hl: int, out: bytes, tag: str) -> None:
        """The rows and the upper layer's call of :meth:`_whole_compressed`'s message, inflated to
        ``out`` with the anomaly ``tag`` (also called by the compiled whole-frame path,
        dissect/compiled/ws_frames.pxi, for the messages it leaves to Python)."""
        upper = self.upper
        preview = ""
        anomaly = ""
        size: int | None
        payload: bytes | None
        if tag:  # an anomaly: the general path's Message, fed the same bytes
            m = Message(op, True, upper is not None or self.payloads)
            m.inflated(out, tag)
            size = m.size if m.size_known else None
            preview = m.preview
            anomaly = ";".join(m.tags)
            payload = b"".join(m.chunks) if m.payload_ok and m.chunks is not None else None
        else:
            size = len(out)
            payload = out
            if op == OP_TEXT:
                preview, anomaly = text_preview(out)
        fi = self._frame_index
        self._frame_index = fi + 1
        opname = OPCODE_NAMES[op]
        self.outbox.ws_frames.append(_row(WsFrame, (
            self.session_id, fi, ts, st.name, True, True, False, False, op, opname,
            st.mask_bit != 0, ln, hl, True, None, None, "", self.outbox.frame,
        )))
        mi = self._message_index
        self._message_index = mi + 1
        self.outbox.ws_messages.append(_row(WsMessage, (
            self.session_id, mi, ts, ts, st.name, opname, 1, hl + ln, size, True, preview, anomaly,
            payload_text(op, payload) if self.payloads and payload is not None else None,
        )))
        if upper is not None:
            upper.ws_message(st.d, ts, op, payload)

    # --------------------------------------------------------------- frames

    def _begin_frame(
        self, st: Direction, b0: int, b1: int, hl: int, ln: int, odd: bool, mask: bytes | None
    ) -> None:
        """A frame header was parsed: set up the frame and, for data frames, the message."""
        tags = header_anomalies(b0, b1, ln, odd, st.mask_bit, st.inflate is not None)
        if st.resynced:
            tags.insert(0, RESYNC)
            st.resynced = False
        if st.closed:
            tags.append(FRAME_AFTER_CLOSE)
        op = b0 & 0x0F
        st.f_hl = hl
        st.f_ln = ln
        st.f_mask = mask
        st.f_off = 0
        st.f_tags = tags
        st.f_lost = False
        st.f_compressed = False
        if op > 2:
            # Control (or reserved) frame: its own message (RFC 6455 5.5), flagged by bit 8
            # of f_b0. Only a Close payload is needed.
            st.f_b0 = b0 | 0x100
            st.f_ctrl = bytearray() if op == OP_CLOSE else None
            return
        st.f_b0 = b0
        st.f_ctrl = None
        m = st.msg
        if op != OP_CONT:
            if m is not None:
                # RFC 6455 5.4: a new message may not start inside a fragmented one; after
                # lost bytes that hid the old message's end it simply ended unseen.
                if not m.gap_open:
                    tags.append(NEW_MESSAGE_INSIDE_FRAGMENTED)
                    m.tags.append(MESSAGE_INTERRUPTED)
                m.payload_ok = False
                if m.compressed and m.decoding:
                    m.size_known = False
                    if st.inflate is not None:
                        st.inflate.lose_context()  # the rest of it never reached the window
                st.msg = None
                self._emit_msg(st, m, m.ts_last)
            inflate = st.inflate
            compressed = inflate is not None and bool(b0 & 0x40)  # RFC 7692 6.1
            st.f_compressed = compressed
            m = st.msg = Message(op, compressed, self.upper is not None or self.payloads)
            if inflate is not None and compressed:
                tag = inflate.begin_message()
                if tag:  # inflate-context-lost
                    m.tags.append(tag)
                    m.decoding = False
                    m.payload_ok = False
                    m.size_known = False
        elif m is None:
            m = st.msg = Message(OP_CONT, False, False)
            if st.orphan:
                m.tags.append(LOST_BYTES)  # its start was in the lost bytes
                m.size_known = False
                m.gap_open = True
            else:
                tags.append(CONTINUATION_WITHOUT_START)
            m.decoding = False
            m.payload_ok = False
        st.orphan = False
        m.frames += 1
        m.wire += hl + ln
        if not m.compressed:
            m.count(ln, self.max_message_bytes)  # known from the header, even if payload bytes get lost

    def _payload(self, st: Direction, chunk: bytes | bytearray) -> None:
        """Bytes of the current frame's payload, masked as on the wire (RFC 6455 5.3)."""
        off = st.f_off
        st.f_off = off + len(chunk)
        if st.f_lost:
            return
        if st.f_b0 & 0x100:
            ctrl = st.f_ctrl
            if ctrl is not None and len(ctrl) < _CTRL_KEEP:
                ctrl += chunk[: _CTRL_KEEP - len(ctrl)]
            return
        m = st.msg
        assert m is not None
        if m.compressed:
            inflate = st.inflate
            if m.decoding and inflate is not None:
                mask = st.f_mask
                out, tag = inflate.frame_payload(unmask(chunk, mask, off) if mask else bytes(chunk))
                if tag:
                    m.inflated(out, tag)
                elif out:  # Message.inflated's common case, inline: no more calls than text
                    m.size += len(out)
                    if m.opcode == OP_TEXT and not m.utf8_bad:
                        m.text(out)
                    if m.chunks is not None:
                        m.chunks.append(out)
            return
        # Unmask/copy only what someone needs: text for UTF-8 and preview, any data for upper.
        text = m.opcode == OP_TEXT and not m.utf8_bad and m.decoding
        if text or m.chunks is not None:
            mask = st.f_mask
            p = unmask(chunk, mask, off) if mask else bytes(chunk)
            if text:
                m.text(p)
            if m.chunks is not None:
                m.chunks.append(p)

    def _end_frame(self, st: Direction, ts: int, truncated: bool = False) -> None:
        """The current frame is complete (or ended by a gap / the end of the connection)."""
        b0 = st.f_b0
        op = b0 & 0x0F
        tags = st.f_tags
        if st.f_lost:
            tags.append(LOST_BYTES)
        close_code: int | None = None
        close_reason: str | None = None
        ln = st.f_ln
        if op == OP_CLOSE and st.f_ctrl is not None and not st.f_lost and not truncated:
            body = st.f_ctrl
            mask = st.f_mask
            if mask and body:
                body = bytearray(unmask(body, mask, 0))
            close_code, close_reason = close_body(body, tags)
        if op == OP_CLOSE:
            st.closed = True
            if self.first_close is None:
                self.first_close = (ts, st.d, close_code)
        fin = bool(b0 & 0x80)
        compressed = st.f_compressed
        fi = self._frame_index
        self._frame_index = fi + 1
        self.outbox.ws_frames.append(_row(WsFrame, (
            self.session_id, fi, ts, st.name, fin, bool(b0 & 0x40), bool(b0 & 0x20),
            bool(b0 & 0x10), op, OPCODE_NAMES[op], st.f_mask is not None, ln, st.f_hl,
            compressed, close_code, close_reason, ";".join(tags), self.outbox.frame,
        )))
        st.f_ctrl = None
        if b0 & 0x100:
            mi = self._message_index
            self._message_index = mi + 1
            self.outbox.ws_messages.append(_row(WsMessage, (
                self.session_id, mi, ts, ts, st.name, OPCODE_NAMES[op], 1, st.f_hl + ln,
                None if st.f_lost or truncated else ln, False, "", ";".join(tags), None,
            )))
            return
        m = st.msg
        assert m is not None
        if m.ts_first is None:
            m.ts_first = ts
        m.ts_last = ts
        for t in tags:
            if t not in m.tags:
                m.tags.append(t)
        if fin and not truncated:
            st.msg = None
            m.end(st.inflate)
            self._emit_msg(st, m, ts)

    # ------------------------------------------------------------- messages

    def _emit_msg(self, st: Direction, m: Message, ts_last: int) -> None:
        """Write the message row and hand a text/binary message to the upper layer."""
        mi = self._message_index
        self._message_index = mi + 1
        payload = b"".join(m.chunks) if m.payload_ok and m.chunks is not None else None
        self.outbox.ws_messages.append(_row(WsMessage, (
            self.session_id, mi, ts_last if m.ts_first is None else m.ts_first, ts_last,
            st.name, OPCODE_NAMES[m.opcode], m.frames, m.wire,
            m.size if m.size_known else None, m.compressed, m.preview, ";".join(m.tags),
            payload_text(m.opcode, payload) if self.payloads and payload is not None else None,
        )))
        if self.upper is not None and (m.opcode == OP_TEXT or m.opcode == OP_BINARY):
            self.upper.ws_message(st.d, ts_last, m.opcode, payload)

    # ---------------------------------------------------------------- resync

    def _scan(self, st: Direction) -> bool:
        """After lost bytes: drop bytes up to a plausible RFC 6455 5.2 frame header (see
        :func:`~dissect.protocols.websocket.frames.find_header`). True when one was found."""
        buf = st.buf
        i, found = find_header(buf, st.rules)
        del buf[:i]
        if found:
            st.scanning = False
            st.resynced = True
        return found


if _core is not None:  # the compiled packet loop hands this dissector's segments to the compiled frame path
    _core.configure_ws_dissector(WebSocketDissector, Direction, Outbox)
