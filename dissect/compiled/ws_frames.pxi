# The WebSocket whole-frame fast path in C (included by packets.pyx: one extension module).
#
# The compiled twin of the fast path inside WebSocketDissector.feed (fastpaths.WS_WHOLE_FRAME):
# consecutive unfragmented, uncompressed, well-formed text or binary frames complete in the bytes
# fed, parsed, unmasked (a C loop instead of int.from_bytes XOR) and emitted as the same WsFrame and
# WsMessage rows, with the same call of the upper layer. It stops at the first frame it does not
# take (a header not of that kind, a frame not complete, a text payload that is not ASCII: the
# Python code's UTF-8 handling) and returns where, and the Python loop goes on from there.

from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.unicode cimport PyUnicode_DecodeASCII

cdef extern from *:
    """
    /* A NamedTuple row from a plain tuple, as tuple.__new__(cls, t) makes it. */
    static PyObject *dissect_row(PyObject *cls, PyObject *t) {
        Py_ssize_t i, n = PyTuple_GET_SIZE(t);
        PyTypeObject *tp = (PyTypeObject *)cls;
        PyObject *r = tp->tp_alloc(tp, n);
        if (r == NULL) return NULL;
        for (i = 0; i < n; i++) {
            PyObject *v = PyTuple_GET_ITEM(t, i);
            Py_INCREF(v);
            PyTuple_SET_ITEM(r, i, v);
        }
        return r;
    }
    static PyObject *dissect_unmask(const unsigned char *src, Py_ssize_t n, const unsigned char *m) {
        PyObject *out = PyBytes_FromStringAndSize(NULL, n);
        unsigned char *o;
        Py_ssize_t i;
        if (out == NULL) return NULL;
        o = (unsigned char *)PyBytes_AS_STRING(out);
        for (i = 0; i < n; i++) o[i] = src[i] ^ m[i & 3];
        return out;
    }
    static void dissect_unmask_to(unsigned char *o, const unsigned char *src, Py_ssize_t n, const unsigned char *m) {
        /* eight bytes a step (the mask key twice), then the rest byte by byte */
        Py_ssize_t i = 0;
        unsigned int m4;
        unsigned long long m8, x;
        memcpy(&m4, m, 4);
        m8 = (unsigned long long)m4 | ((unsigned long long)m4 << 32);
        for (; i + 8 <= n; i += 8) {
            memcpy(&x, src + i, 8);
            x ^= m8;
            memcpy(o + i, &x, 8);
        }
        for (; i < n; i++) o[i] = src[i] ^ m[i & 3];
    }
    static int dissect_ascii(const unsigned char *p, Py_ssize_t n) {
        unsigned char acc = 0;
        Py_ssize_t i;
        for (i = 0; i < n; i++) acc |= p[i];
        return acc < 0x80;
    }
    """
    object dissect_row(object cls, object t)
    object dissect_unmask(const unsigned char *src, Py_ssize_t n, const unsigned char *m)
    int dissect_ascii(const unsigned char *p, Py_ssize_t n) nogil
    void dissect_unmask_to(unsigned char *o, const unsigned char *src, Py_ssize_t n, const unsigned char *m) nogil

# Set by configure_ws() from dissect.protocols.websocket (this module imports nothing of dissect's).
cdef object WsFrameRow = None
cdef object WsMessageRow = None
cdef object OPCODE_TEXT = None
cdef object OPCODE_BINARY = None
cdef Py_ssize_t PREVIEW = 64
# where a masked payload of up to SCRATCH_BYTES is unmasked when no bytes object is needed
cdef enum:
    SCRATCH_BYTES = 65536
cdef unsigned char SCRATCH[SCRATCH_BYTES]


def configure_ws(frame_row, message_row, opcode_names, preview_chars):
    global WsFrameRow, WsMessageRow, OPCODE_TEXT, OPCODE_BINARY, PREVIEW
    WsFrameRow = frame_row
    WsMessageRow = message_row
    OPCODE_TEXT = opcode_names[1]
    OPCODE_BINARY = opcode_names[2]
    PREVIEW = preview_chars


def ws_whole_frames(dis, src, Py_ssize_t pos, ts, int direction, str dname, int mask_bit, long long cap,
                    list sink_frames, list sink_msgs, packet, upper):
    """From ``pos`` in ``src`` (bytes or bytearray), every whole frame the fast path takes, as
    WebSocketDissector.feed's fast path would; returns where it stopped. ``dis`` is the dissector
    (its ``_frame_index`` and ``_message_index`` counters are advanced)."""
    return _ws_frames(dis, src, NULL, len(src), pos, ts, direction, dname, mask_bit, cap, sink_frames, sink_msgs,
                      packet, upper, None)


# Set by configure_ws_dissector() from dissect.protocols.websocket.dissector: its classes, and the
# offsets of the slots read here (slots.pxi).
cdef object WsDissector = None
cdef object WsDirection = None
cdef Py_ssize_t O_DIS_WSC, O_DIS_DONE, O_DIS_ST, O_DIS_OUTBOX, O_DIS_CAP, O_DIS_UPPER, O_DIS_SID, O_DIS_FI, O_DIS_MI
cdef Py_ssize_t O_ST_REM, O_ST_SCANNING, O_ST_BUF, O_ST_MSG, O_ST_CLOSED, O_ST_RESYNCED, O_ST_ORPHAN, O_ST_NAME
cdef Py_ssize_t O_ST_MASK


def configure_ws_dissector(cls, direction, outbox):
    global WsDissector, WsDirection, O_DIS_WSC, O_DIS_DONE, O_DIS_ST, O_DIS_OUTBOX, O_DIS_CAP, O_DIS_UPPER
    global O_DIS_SID, O_DIS_FI, O_DIS_MI, O_ST_REM, O_ST_SCANNING, O_ST_BUF, O_ST_MSG, O_ST_CLOSED
    global O_ST_RESYNCED, O_ST_ORPHAN, O_ST_NAME, O_ST_MASK
    O_DIS_WSC = slot_offset(cls, "_wsc")
    O_DIS_DONE = slot_offset(cls, "_done")
    O_DIS_ST = slot_offset(cls, "_st")
    O_DIS_OUTBOX = slot_offset(cls, "outbox")
    O_DIS_CAP = slot_offset(cls, "_fast_cap")
    O_DIS_UPPER = slot_offset(cls, "upper")
    O_DIS_SID = slot_offset(cls, "session_id")
    O_DIS_FI = slot_offset(cls, "_frame_index")
    O_DIS_MI = slot_offset(cls, "_message_index")
    O_ST_REM = slot_offset(direction, "f_rem")
    O_ST_SCANNING = slot_offset(direction, "scanning")
    O_ST_BUF = slot_offset(direction, "buf")
    O_ST_MSG = slot_offset(direction, "msg")
    O_ST_CLOSED = slot_offset(direction, "closed")
    O_ST_RESYNCED = slot_offset(direction, "resynced")
    O_ST_ORPHAN = slot_offset(direction, "orphan")
    O_ST_NAME = slot_offset(direction, "name")
    O_ST_MASK = slot_offset(direction, "mask_bit")
    configure_outbox(outbox)
    WsDissector = cls
    WsDirection = direction


cdef int ws_feed_at(dis, int direction, ts, const unsigned char *p, Py_ssize_t n) except -1:
    """The packet loop's in-order segment ``p[:n]`` for ``dis``, a WebSocketDissector (exact type),
    read in place (no bytes object for the segment, no Python call) when the direction is in the
    steady state WebSocketDissector.feed hands to the compiled whole-frame path: nothing buffered,
    no frame or message in progress, no resync. Whatever is left after the whole frames goes to
    dis.feed, as feed's own loop would go on. 0: not in that state, nothing done (the caller
    calls dis.feed)."""
    cdef Py_ssize_t pos
    if n <= 0 or sget(dis, O_DIS_WSC) is None or sget(dis, O_DIS_DONE):
        return 0
    sts = sget(dis, O_DIS_ST)
    if type(sts) is not tuple or len(<tuple> sts) != 2:
        return 0
    st = (<tuple> sts)[direction]
    if type(st) is not WsDirection:
        return 0
    if sget(st, O_ST_REM) or sget(st, O_ST_SCANNING) or sget(st, O_ST_BUF) or sget(st, O_ST_MSG) is not None \
            or sget(st, O_ST_CLOSED) or sget(st, O_ST_RESYNCED) or sget(st, O_ST_ORPHAN):
        return 0
    outbox = sget(dis, O_DIS_OUTBOX)
    if type(outbox) is not OutboxCls:
        return 0
    pos = _ws_frames(dis, None, p, n, 0, ts, direction, sget(st, O_ST_NAME), sget(st, O_ST_MASK),
                     sget(dis, O_DIS_CAP), sget(outbox, O_OB_WS_FRAMES), sget(outbox, O_OB_WS_MESSAGES),
                     sget(outbox, O_OB_FRAME), sget(dis, O_DIS_UPPER), sget(outbox, O_OB_DIRECT))
    if pos < n:
        dis.feed(direction, ts, PyBytes_FromStringAndSize(<const char *> p + pos, n - pos))
    return 1


cdef Py_ssize_t _ws_frames(dis, src, const unsigned char *fixed, Py_ssize_t n, Py_ssize_t pos, ts, int direction,
                           str dname, int mask_bit, long long cap, list sink_frames, list sink_msgs, packet,
                           upper, direct) except -1:
    """ws_whole_frames over ``src`` (``fixed`` NULL: bytes or bytearray, its buffer read again after
    each frame) or over the ``n`` bytes at ``fixed`` (held alive by the caller). ``direct``: the
    outbox's DirectRows (direct_rows.pxi) or None (row tuples only)."""
    cdef const unsigned char *p = fixed
    cdef Py_ssize_t hl, a, ln
    cdef unsigned long long ln64
    cdef int b0, b1, op
    cdef bint masked = mask_bit != 0
    cdef object payload, preview, opname, fi, mi, sid
    cdef const unsigned char *d
    # the compiled Engine.IO/Socket.IO scan: the upper layer is an EngineIOWebSocket that asks for it
    cdef bint scan = upper is not None and type(upper) is EioWebSocket and sget(upper, O_WS_SCAN)
    cdef bint slots = type(dis) is WsDissector  # its counters read and written in place
    cdef object zst = None, inflate  # the direction and its RFC 7692 stage, once a compressed frame comes
    cdef long long zcap = -1
    sid = sget(dis, O_DIS_SID) if slots else dis.session_id
    while n - pos >= 2:
        if fixed == NULL:
            if type(src) is bytes:
                p = <const unsigned char *> PyBytes_AS_STRING(src)
            else:
                p = <const unsigned char *> PyByteArray_AS_STRING(src)
        b0 = p[pos]
        b1 = p[pos + 1]
        ln64 = b1 & 0x7F
        if ln64 < 126:
            hl = 2
        elif ln64 == 126:
            hl = 4
        else:
            hl = 10
        if b1 & 0x80:
            hl += 4
        if n - pos < hl:
            break
        if ln64 == 126:
            ln64 = dissect_u16(p + pos + 2)
            if ln64 < 126:
                break
        elif ln64 == 127:
            ln64 = (dissect_u32(p + pos + 2) << 32) | dissect_u32(p + pos + 6)
            if ln64 < 65536 or ln64 >> 63:
                break
        a = pos + hl
        op = b0 & 0x0F
        if (ln64 > <unsigned long long> (n - a) or (b1 & 0x80) != mask_bit
                or not (op == 1 or op == 2) or not (b0 & 0x80)):
            break
        if b0 & 0x70:
            # fastpaths.COMPILED_WS_DEFLATE: a whole compressed frame (RSV1 alone, RFC 7692 6), the
            # conditions of the Python fast path (WebSocketDissector.feed, _whole_compressed)
            if (b0 & 0x70) != 0x40:
                break
            if zst is None:
                zcap = dis._czcap
                zst = dis._st[direction]
            inflate = zst.inflate
            if zcap < 0 or <long long> ln64 > zcap or inflate is None or inflate.ctx_lost:
                break
            _compressed_frame(dis, zst, inflate, p, a, <Py_ssize_t> ln64, hl, op, masked, ts, direction, dname,
                              sid, slots, sink_frames, sink_msgs, packet, upper, direct, scan)
            pos = a + <Py_ssize_t> ln64
            continue
        if <long long> ln64 > cap:
            break
        ln = <Py_ssize_t> ln64
        payload = None
        d = NULL
        if op == 1 or upper is not None:
            if not masked:
                d = p + a
            elif ln <= SCRATCH_BYTES:
                dissect_unmask_to(SCRATCH, p + a, ln, p + a - 4)
                d = SCRATCH
            else:
                payload = dissect_unmask(p + a, ln, p + a - 4)
                d = <const unsigned char *> PyBytes_AS_STRING(payload)
        if op == 1:
            if not dissect_ascii(d, ln):
                break  # the Python code's UTF-8 handling (preview, invalid-utf8)
            opname = OPCODE_TEXT
        else:
            opname = OPCODE_BINARY
        if slots:
            fi = sget(dis, O_DIS_FI)
            sset(dis, O_DIS_FI, fi + 1)
            mi = sget(dis, O_DIS_MI)
            sset(dis, O_DIS_MI, mi + 1)
        else:
            fi = dis._frame_index
            dis._frame_index = fi + 1
            mi = dis._message_index
            dis._message_index = mi + 1
        # fastpaths.COMPILED_DIRECT_ROWS: no tuple, the row written where it goes (direct_rows.pxi),
        # while the table has no tuple waiting (the rows' order)
        if not (direct is not None and PyList_GET_SIZE(sink_frames) == 0
                and (<DirectRows> direct).frame_row(sid, fi, ts, dname, op, opname, masked, ln, hl, packet)):
            sink_frames.append(dissect_row(WsFrameRow, (
                sid, fi, ts, dname, True, False, False, False, op, opname,
                masked, ln, hl, False, None, None, "", packet,
            )))
        if not (direct is not None and PyList_GET_SIZE(sink_msgs) == 0
                and (<DirectRows> direct).message_row(sid, mi, ts, dname, opname, ln, hl, d,
                                                       (ln if ln < PREVIEW else PREVIEW) if op == 1 else 0, ln)):
            if op == 1:
                preview = PyUnicode_DecodeASCII(<const char *> d, ln if ln < PREVIEW else PREVIEW, NULL)
            else:
                preview = ""
            sink_msgs.append(dissect_row(WsMessageRow, (
                sid, mi, ts, ts, dname, opname, 1, hl + ln, ln, False, preview, "", None,
            )))
        if upper is not None:
            # fastpaths.COMPILED_SIO_SCAN: an EVENT or ACK on "/" becomes its row here (sio_scan.pxi)
            if not (op == 1 and scan and sio_fast(upper, direction, ts, d, ln)):
                if payload is None:
                    payload = PyBytes_FromStringAndSize(<const char *> d, ln)
                upper.ws_message(direction, ts, op, payload)
        pos = a + ln
    return pos


cdef bytes SYNC_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 7.2.2

# Set by configure_deflate() from dissect.protocols.websocket.deflate: PerMessageInflate, the offsets
# of its slots, zlib.decompressobj and zlib.error, and the window it keeps.
cdef object InflateCls = None
cdef object NEW_INFLATER = None
cdef object ZLIB_ERROR = None
cdef Py_ssize_t O_Z_TAKEOVER, O_Z_CAP, O_Z_SIZE, O_Z_INF, O_Z_HIST, O_Z_HLEN, O_Z_RESTARTS, Z_WINDOW


def configure_deflate(cls, decompressobj, error, Py_ssize_t window):
    global InflateCls, NEW_INFLATER, ZLIB_ERROR, O_Z_TAKEOVER, O_Z_CAP, O_Z_SIZE, O_Z_INF, O_Z_HIST, O_Z_HLEN
    global O_Z_RESTARTS, Z_WINDOW
    O_Z_TAKEOVER = slot_offset(cls, "takeover")
    O_Z_CAP = slot_offset(cls, "cap")
    O_Z_SIZE = slot_offset(cls, "size")
    O_Z_INF = slot_offset(cls, "_inflater")
    O_Z_HIST = slot_offset(cls, "_hist")
    O_Z_HLEN = slot_offset(cls, "_hist_len")
    O_Z_RESTARTS = slot_offset(cls, "_restarts")
    NEW_INFLATER = decompressobj
    ZLIB_ERROR = error
    Z_WINDOW = window
    InflateCls = cls


cdef tuple _inflate_whole(inflate, bytes data):
    """``inflate.begin_message()`` then ``inflate.end_message(data, tailed=True)`` (a whole message
    with its 7.2.2 tail, the caller having checked ctx_lost): for a PerMessageInflate, its common
    case here, a twin of its Python steps (one inflate call giving at most ``cap`` bytes, no final
    block); anything else from where the call left it (its ``inflated`` and ``failed``)."""
    cdef Py_ssize_t n, hlen
    cdef list hist
    cdef tuple res
    if type(inflate) is not InflateCls:
        inflate.begin_message()
        return inflate.end_message(data, True)
    takeover = sget(inflate, O_Z_TAKEOVER)
    # begin_message
    sset(inflate, O_Z_SIZE, 0)
    sset(inflate, O_Z_RESTARTS, 0)
    if not takeover:
        sset(inflate, O_Z_INF, None)  # RFC 7692 7.2.2: a fresh context for every message
        (<list> sget(inflate, O_Z_HIST)).clear()
        sset(inflate, O_Z_HLEN, 0)
    # end_message: frame_payload(data)
    inf = sget(inflate, O_Z_INF)
    if inf is None:
        inf = NEW_INFLATER(-15)
        sset(inflate, O_Z_INF, inf)
    cap = sget(inflate, O_Z_CAP)
    try:
        out = inf.decompress(data, cap + 1)  # (the message's size is 0)
    except ZLIB_ERROR:
        res = inflate.failed()
    else:
        n = len(<bytes> out)
        if n <= cap and not inf.eof:
            if n:  # the size, and the last WINDOW bytes of output kept, as frame_payload keeps them
                sset(inflate, O_Z_SIZE, n)
                hist = sget(inflate, O_Z_HIST)
                hist.append(out if n <= Z_WINDOW else out[n - Z_WINDOW:])
                hlen = sget(inflate, O_Z_HLEN) + (n if n <= Z_WINDOW else Z_WINDOW)
                while hlen - len(<bytes> hist[0]) >= Z_WINDOW:
                    hlen -= len(<bytes> hist.pop(0))
                sset(inflate, O_Z_HLEN, hlen)
            res = (out, "")
        else:
            res = inflate.inflated(inf, out)
    if not takeover:
        sset(inflate, O_Z_INF, None)
    return res


cdef int _compressed_frame(dis, st, inflate, const unsigned char *p, Py_ssize_t a, Py_ssize_t ln, Py_ssize_t hl,
                           int op, bint masked, ts, int direction, dname, sid, bint slots, list sink_frames,
                           list sink_msgs, packet, upper, direct, bint scan) except -1:
    """The whole compressed frame at ``p[a:a + ln]`` (header ``hl`` bytes): unmasked with the 7.2.2
    tail into one bytes object, inflated by the direction's RFC 7692 stage (its own begin_message
    and end_message), and its rows and the upper layer's call made as
    WebSocketDissector.compressed_rows makes them; a message with an anomaly, or text that is not
    ASCII, goes to compressed_rows itself."""
    cdef bytes data = PyBytes_FromStringAndSize(NULL, ln + 4)
    cdef unsigned char *o = <unsigned char *> PyBytes_AS_STRING(data)
    cdef const unsigned char *d
    cdef Py_ssize_t size
    if masked:
        dissect_unmask_to(o, p + a, ln, p + a - 4)
    else:
        memcpy(o, p + a, ln)
    memcpy(o + ln, <const char *> SYNC_TAIL, 4)
    out, tag = _inflate_whole(inflate, data)
    size = len(out)
    d = <const unsigned char *> PyBytes_AS_STRING(out)
    if tag or (op == 1 and not dissect_ascii(d, size)):
        dis.compressed_rows(st, op, ts, ln, hl, out, tag)
        return 0
    if slots:
        fi = sget(dis, O_DIS_FI)
        sset(dis, O_DIS_FI, fi + 1)
        mi = sget(dis, O_DIS_MI)
        sset(dis, O_DIS_MI, mi + 1)
    else:
        fi = dis._frame_index
        dis._frame_index = fi + 1
        mi = dis._message_index
        dis._message_index = mi + 1
    opname = OPCODE_TEXT if op == 1 else OPCODE_BINARY
    if not (direct is not None and PyList_GET_SIZE(sink_frames) == 0
            and (<DirectRows> direct).frame_row(sid, fi, ts, dname, op, opname, masked, ln, hl, packet, True)):
        sink_frames.append(dissect_row(WsFrameRow, (
            sid, fi, ts, dname, True, True, False, False, op, opname,
            masked, ln, hl, True, None, None, "", packet,
        )))
    if not (direct is not None and PyList_GET_SIZE(sink_msgs) == 0
            and (<DirectRows> direct).message_row(sid, mi, ts, dname, opname, ln, hl, d,
                                                   (size if size < PREVIEW else PREVIEW) if op == 1 else 0, size,
                                                   True)):
        preview = PyUnicode_DecodeASCII(<const char *> d, size if size < PREVIEW else PREVIEW, NULL) if op == 1 else ""
        sink_msgs.append(dissect_row(WsMessageRow, (
            sid, mi, ts, ts, dname, opname, 1, hl + ln, size, True, preview, "", None,
        )))
    if upper is not None:
        # fastpaths.COMPILED_SIO_SCAN: an EVENT or ACK on "/" becomes its row here (sio_scan.pxi)
        if not (op == 1 and scan and sio_fast(upper, direction, ts, d, size)):
            upper.ws_message(direction, ts, op, out)
    return 0
