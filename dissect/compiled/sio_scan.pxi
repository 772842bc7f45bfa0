# The Engine.IO/Socket.IO event-header fast path in C (included by packets.pyx: one extension module).
#
# The compiled twin of the fast path at the top of EngineIOWebSocket.ws_message
# (fastpaths.SIO_EVENT_HEADER; this one's switch is fastpaths.COMPILED_SIO_SCAN): a whole text
# message that is an Engine.IO message ``4`` carrying a Socket.IO EVENT or ACK on "/" (``42[...``,
# ``42<id>[...``, ``43<id>[...``), in a Socket.IO session with nothing held or expected, becomes its
# sio_packets row straight from the frame's bytes, with the same guards and the same bookkeeping
# (acks, the root socket's event counts, last_c2s, the connection's app level), statement for
# statement. sio_fast returns 0 without touching anything when the message is not such a packet,
# and ws_whole_frames then calls upper.ws_message as before.

from libc.string cimport memchr, memcmp
from cpython.unicode cimport PyUnicode_DecodeUTF8

cdef extern from *:
    """
    /* CRC-32 (ISO-HDLC, zlib's crc32 with the initial value 0), slicing by 8 bytes. */
    static unsigned int dissect_crc_table[8][256];
    static void dissect_crc_init(void) {
        unsigned int c, n, k;
        for (n = 0; n < 256; n++) {
            c = n;
            for (k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320U ^ (c >> 1) : c >> 1;
            dissect_crc_table[0][n] = c;
        }
        for (n = 0; n < 256; n++)
            for (k = 1; k < 8; k++)
                dissect_crc_table[k][n] = (dissect_crc_table[k - 1][n] >> 8)
                                          ^ dissect_crc_table[0][dissect_crc_table[k - 1][n] & 0xFF];
    }
    static unsigned int dissect_crc32(const unsigned char *p, Py_ssize_t n) {
        unsigned int c = 0xFFFFFFFFU, hi;
        while (n >= 8) {
            c ^= (unsigned int)p[0] | ((unsigned int)p[1] << 8) | ((unsigned int)p[2] << 16)
                 | ((unsigned int)p[3] << 24);
            hi = (unsigned int)p[4] | ((unsigned int)p[5] << 8) | ((unsigned int)p[6] << 16)
                 | ((unsigned int)p[7] << 24);
            c = dissect_crc_table[7][c & 0xFF] ^ dissect_crc_table[6][(c >> 8) & 0xFF]
                ^ dissect_crc_table[5][(c >> 16) & 0xFF] ^ dissect_crc_table[4][c >> 24]
                ^ dissect_crc_table[3][hi & 0xFF] ^ dissect_crc_table[2][(hi >> 8) & 0xFF]
                ^ dissect_crc_table[1][(hi >> 16) & 0xFF] ^ dissect_crc_table[0][hi >> 24];
            p += 8;
            n -= 8;
        }
        while (n-- > 0) c = dissect_crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFU;
    }
    """
    void dissect_crc_init() nogil
    unsigned int dissect_crc32(const unsigned char *p, Py_ssize_t n) nogil

dissect_crc_init()

# Set by configure_sio() from dissect.protocols.engineio.websocket (this module imports nothing of dissect's).
cdef object EioWebSocket = None  # the class whose instances this path serves
cdef object SessionCls = None
cdef object SioStateCls = None
cdef object SocketsCls = None
cdef object SocketLifeCls = None
cdef object OutboxCls = None
cdef object SioPacketRow = None
cdef object SIO_DIRECTION_NAMES = None
cdef object SIO_MODE = None
cdef object SIO_RESERVED = None
cdef object SIO_RESERVED_TAG = None
cdef object SIO_ACK_WITHOUT_EVENT = None
cdef int SIO_S2C = 1
cdef long long MAX_ACK_DIGITS = 16
# slot offsets (slots.pxi): EngineIOWebSocket, Session, SocketIOState, SessionSockets, SocketLife, Outbox
cdef Py_ssize_t O_WS_SESS, O_WS_TCP, O_WS_EIO, O_WS_LEVEL, O_WS_SCAN
cdef Py_ssize_t O_SESS_CLOSED, O_SESS_SIO, O_SESS_HELD, O_SESS_VERSION, O_SESS_SID
cdef Py_ssize_t O_SIO_MODE, O_SIO_EXPECT, O_SIO_SOCKETS, O_SIO_PROTOCOL
cdef Py_ssize_t O_SOCK_SLOW, O_SOCK_LAST_C2S, O_SOCK_ROOT, O_LIFE_EVENTS
cdef Py_ssize_t O_OB_SIO, O_OB_FRAME, O_OB_WS_FRAMES, O_OB_WS_MESSAGES, O_OB_DIRECT
cdef Py_ssize_t O_EIO_OUTBOX, O_EIO_PAYLOADS
cdef object EngineIOCls = None  # the tracker (dissect.protocols.engineio.tracker.EngineIO)
# SocketIOState's acks waiting for their ACK (configure_acks; until then its methods are called)
cdef bint ACKS_IN_PLACE = False
cdef Py_ssize_t O_SIO_ACKS
cdef object SIO_ACK_ID_REUSED = None
cdef Py_ssize_t MAX_PENDING_ACKS = 0
cdef str NS_SLASH = "/"


def configure_sio(eio_websocket, engineio, session, sio_state, session_sockets, socket_life, outbox, sio_packet_row,
                  direction_names, int s2c, mode_sio, reserved_events, reserved_event_name, ack_without_event,
                  int max_ack_id_digits):
    global EioWebSocket, SessionCls, SioStateCls, SocketsCls, SocketLifeCls, OutboxCls, SioPacketRow
    global SIO_DIRECTION_NAMES, SIO_MODE, SIO_RESERVED, SIO_RESERVED_TAG, SIO_ACK_WITHOUT_EVENT, SIO_S2C
    global MAX_ACK_DIGITS, O_WS_SESS, O_WS_TCP, O_WS_EIO, O_WS_LEVEL, O_WS_SCAN, O_SESS_CLOSED, O_SESS_SIO
    global O_SESS_HELD, O_SESS_VERSION, O_SESS_SID, O_SIO_MODE, O_SIO_EXPECT, O_SIO_SOCKETS, O_SIO_PROTOCOL
    global O_SOCK_SLOW, O_SOCK_LAST_C2S, O_SOCK_ROOT, O_LIFE_EVENTS, O_EIO_OUTBOX, O_EIO_PAYLOADS, EngineIOCls
    O_EIO_OUTBOX = slot_offset(engineio, "outbox")
    O_EIO_PAYLOADS = slot_offset(engineio, "payloads")
    EngineIOCls = engineio
    O_WS_SESS = slot_offset(eio_websocket, "_sess")
    O_WS_TCP = slot_offset(eio_websocket, "_tcp")
    O_WS_EIO = slot_offset(eio_websocket, "_eio")
    O_WS_LEVEL = slot_offset(eio_websocket, "_level")
    O_WS_SCAN = slot_offset(eio_websocket, "compiled_scan")
    O_SESS_CLOSED = slot_offset(session, "closed")
    O_SESS_SIO = slot_offset(session, "sio")
    O_SESS_HELD = slot_offset(session, "held")
    O_SESS_VERSION = slot_offset(session, "version")
    O_SESS_SID = slot_offset(session, "sid")
    O_SIO_MODE = slot_offset(sio_state, "mode")
    O_SIO_EXPECT = slot_offset(sio_state, "expect")
    O_SIO_SOCKETS = slot_offset(sio_state, "sockets")
    O_SIO_PROTOCOL = slot_offset(sio_state, "protocol")
    O_SOCK_SLOW = slot_offset(session_sockets, "slow")
    O_SOCK_LAST_C2S = slot_offset(session_sockets, "last_c2s")
    O_SOCK_ROOT = slot_offset(session_sockets, "root")
    O_LIFE_EVENTS = slot_offset(socket_life, "events")
    configure_outbox(outbox)
    EioWebSocket = eio_websocket
    SessionCls = session
    SioStateCls = sio_state
    SocketsCls = session_sockets
    SocketLifeCls = socket_life
    SioPacketRow = sio_packet_row
    SIO_DIRECTION_NAMES = direction_names
    SIO_S2C = s2c
    SIO_MODE = mode_sio
    SIO_RESERVED = reserved_events
    SIO_RESERVED_TAG = reserved_event_name
    SIO_ACK_WITHOUT_EVENT = ack_without_event
    MAX_ACK_DIGITS = max_ack_id_digits


def configure_acks(sio_state, ack_id_reused, Py_ssize_t max_pending_acks):
    """SocketIOState's ``pending_acks`` slot and the constants of its event_sent / ack_received,
    which sio_fast then does in place."""
    global ACKS_IN_PLACE, O_SIO_ACKS, SIO_ACK_ID_REUSED, MAX_PENDING_ACKS
    O_SIO_ACKS = slot_offset(sio_state, "pending_acks")
    SIO_ACK_ID_REUSED = ack_id_reused
    MAX_PENDING_ACKS = max_pending_acks
    ACKS_IN_PLACE = True


cdef object _event_sent(sio, int direction, ack_id, ts, name):
    """SocketIOState.event_sent(direction, "/", ack_id, ts, name), statement for statement (``sio``
    of exactly that class); the method itself when the oldest ack must be dropped."""
    acks = sget(sio, O_SIO_ACKS) if ACKS_IN_PLACE else None
    if type(acks) is not dict:
        return sio.event_sent(direction, NS_SLASH, ack_id, ts, name)
    key = (direction, NS_SLASH, ack_id)
    if key in <dict> acks:
        del (<dict> acks)[key]
        (<dict> acks)[key] = (ts, name)
        return SIO_ACK_ID_REUSED
    if len(<dict> acks) >= MAX_PENDING_ACKS:
        return sio.event_sent(direction, NS_SLASH, ack_id, ts, name)
    (<dict> acks)[key] = (ts, name)
    return ""


cdef object _ack_received(sio, int direction, ack_id, ts):
    """SocketIOState.ack_received(direction, "/", ack_id, ts), statement for statement."""
    if ack_id is None:
        return None
    acks = sget(sio, O_SIO_ACKS) if ACKS_IN_PLACE else None
    if type(acks) is not dict:
        return sio.ack_received(direction, NS_SLASH, ack_id, ts)
    sent = (<dict> acks).pop((1 - direction, NS_SLASH, ack_id), None)
    return None if sent is None else ((ts - sent[0]) / 1e6, sent[1])


cdef configure_outbox(outbox):
    global OutboxCls, O_OB_SIO, O_OB_FRAME, O_OB_WS_FRAMES, O_OB_WS_MESSAGES, O_OB_DIRECT
    O_OB_SIO = slot_offset(outbox, "sio_packets")
    O_OB_FRAME = slot_offset(outbox, "frame")
    O_OB_WS_FRAMES = slot_offset(outbox, "ws_frames")
    O_OB_WS_MESSAGES = slot_offset(outbox, "ws_messages")
    O_OB_DIRECT = slot_offset(outbox, "direct")
    OutboxCls = outbox


# Event names decoded lately (a handful repeat over and over): the same str object for the same bytes,
# so that no str is made per packet and the rows' figures meet the same objects (direct_rows.pxi).
cdef enum:
    NAMES = 16
    NAME_BYTES = 64  # longer names are decoded each time
cdef list NAME_CACHE = [None] * NAMES
cdef int NAME_NEXT = 0


cdef object _event_name(const unsigned char *p, Py_ssize_t n):
    """PyUnicode_DecodeUTF8(p[:n], "replace"), the same object as the last time for the same bytes:
    bytes equal to a str's UTF-8 are valid UTF-8, and decode to that str."""
    global NAME_NEXT
    cdef Py_ssize_t k, m
    cdef const char *u
    cdef object s
    if n <= NAME_BYTES:
        for k in range(NAMES):
            s = NAME_CACHE[k]
            if s is None:
                break
            u = PyUnicode_AsUTF8AndSize(s, &m)
            if m == n and memcmp(u, p, n) == 0:
                return s
    s = PyUnicode_DecodeUTF8(<const char *> p, n, "replace")
    if n <= NAME_BYTES:
        NAME_CACHE[NAME_NEXT] = s
        NAME_NEXT = (NAME_NEXT + 1) % NAMES
    return s


def crc32(data):
    """The C CRC-32 of ``data`` (bytes), for the tests to compare with zlib.crc32."""
    return dissect_crc32(<const unsigned char *> PyBytes_AS_STRING(data), len(data))


cdef inline str _join_tags(str a, str b):
    # dissect.protocols.socketio.join_tags
    if not a:
        return b
    if not b:
        return a
    return a + ";" + b


cdef int sio_fast(upper, int direction, ts, const unsigned char *d, Py_ssize_t ln) except -1:
    """EngineIOWebSocket.ws_message's fast path for the text message ``d[:ln]`` (``upper`` is an
    EngineIOWebSocket): 1 when it made the row, 0 when the message is not one it takes (nothing
    done: the caller calls ws_message)."""
    cdef Py_ssize_t i, j, q
    cdef long long ack_val = 0
    cdef bint has_ack = False
    cdef int t
    cdef const unsigned char *found
    cdef object name, ack_id, latency, acked, answered, events, root, tcp, eio, outbox, expect, held
    cdef str anomaly, sio_type
    if ln < 1 or d[0] != 0x34:  # "4": an Engine.IO message
        return 0
    sess = sget(upper, O_WS_SESS)
    if type(sess) is not SessionCls:
        return 0
    sio = sget(sess, O_SESS_SIO)
    if type(sio) is not SioStateCls:
        return 0
    sockets = sget(sio, O_SIO_SOCKETS)
    expect = sget(sio, O_SIO_EXPECT)
    held = sget(sess, O_SESS_HELD)
    if type(sockets) is not SocketsCls or type(expect) is not list or type(held) is not list:
        return 0
    if sget(sess, O_SESS_CLOSED) or sget(sio, O_SIO_MODE) != SIO_MODE or expect[direction] \
            or held[direction] is not None or sget(sockets, O_SOCK_SLOW):
        return 0
    t = d[1] if ln > 1 else -1
    i = 2
    if ln > 2 and 0x30 <= d[2] <= 0x39:
        j = 2
        while j < ln and 0x30 <= d[j] <= 0x39:
            j += 1
        i = j
        if i - 2 > MAX_ACK_DIGITS:
            return 0  # the general path's ack id -1
        for j in range(2, i):
            ack_val = ack_val * 10 + (d[j] - 0x30)
        has_ack = True
    if not (i < ln and d[i] == 0x5B):  # "["
        return 0
    ack_id = ack_val if has_ack else None
    if t == 0x32:  # "2": EVENT
        if not (i + 1 < ln and d[i + 1] == 0x22):  # '"'
            return 0
        found = <const unsigned char *> memchr(d + i + 2, 0x22, ln - i - 2)
        if found == NULL:
            return 0
        q = found - d
        if memchr(d + i + 2, 0x5C, q - i - 2) != NULL:  # escapes: JSON decoding on the general path
            return 0
        name = _event_name(d + i + 2, q - i - 2)
        sio_type = "EVENT"
        latency = None
        acked = None
        anomaly = SIO_RESERVED_TAG if sget(sio, O_SIO_PROTOCOL) != 4 and name in SIO_RESERVED else ""
        if has_ack:
            anomaly = _join_tags(anomaly, _event_sent(sio, direction, ack_id, ts, name))
    elif t == 0x33:  # "3": ACK
        name = None
        sio_type = "ACK"
        answered = _ack_received(sio, direction, ack_id, ts)
        if answered is None:
            latency, acked, anomaly = None, None, SIO_ACK_WITHOUT_EVENT
        else:
            (latency, acked), anomaly = answered, ""
    else:
        return 0
    if direction != SIO_S2C:
        sset(sockets, O_SOCK_LAST_C2S, ts)
    if name is not None:
        root = sget(sockets, O_SOCK_ROOT)
        if root is not None:
            events = sget(root, O_LIFE_EVENTS) if type(root) is SocketLifeCls else root.events
            events[direction] += 1
    tcp = sget(upper, O_WS_TCP)
    eio = sget(upper, O_WS_EIO)
    if not sget(upper, O_WS_LEVEL):
        eio.app_protocols[tcp] = "socketio"
        sset(upper, O_WS_LEVEL, True)
    if type(eio) is EngineIOCls:
        outbox = sget(eio, O_EIO_OUTBOX)
        payloads = sget(eio, O_EIO_PAYLOADS)
    else:
        outbox = eio.outbox
        payloads = eio.payloads
    direct = None
    if type(outbox) is OutboxCls:
        sio_packets = sget(outbox, O_OB_SIO)
        frame = sget(outbox, O_OB_FRAME)
        direct = sget(outbox, O_OB_DIRECT)
    else:
        sio_packets = outbox.sio_packets
        frame = outbox.frame
    # fastpaths.COMPILED_DIRECT_ROWS: no tuple while the table has none waiting (direct_rows.pxi)
    if direct is not None and type(sio_packets) is list and PyList_GET_SIZE(sio_packets) == 0:
        dirname = SIO_DIRECTION_NAMES[direction]
        if (<DirectRows> direct).sio_row(
                tcp, ts, dirname, dirname == S2C_NAME, sget(sess, O_SESS_VERSION), sio_type, name, ack_id, ln - 1,
                latency, anomaly, sget(sess, O_SESS_SID), frame, acked,
                PyUnicode_DecodeUTF8(<const char *> d + i, ln - i, "replace") if payloads else None,
                dissect_crc32(d + i, ln - i) if name is not None else None):
            return 1
    sio_packets.append(dissect_row(SioPacketRow, (
        tcp, ts, SIO_DIRECTION_NAMES[direction], "websocket", sget(sess, O_SESS_VERSION), "message", sio_type,
        "/", name, ack_id, None, ln - 1, latency, anomaly, sget(sess, O_SESS_SID), None,
        frame, acked, PyUnicode_DecodeUTF8(<const char *> d + i, ln - i, "replace") if payloads else None,
        dissect_crc32(d + i, ln - i) if name is not None else None,
    )))
    return 1
