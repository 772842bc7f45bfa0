# Steady-state rows straight to CSV bytes and summary figures (included by packets.pyx: one
# extension module).
#
# The rows the compiled whole-frame and Socket.IO paths make (ws_frames, ws_messages, and the
# sio_packets EVENT / ACK rows of sio_scan.pxi) cost more as Python tuples, and as the three walks
# the consumers of a plain CSV report make over them, than everything before. When every consumer
# of the pipeline takes batches made here (switch fastpaths.COMPILED_DIRECT_ROWS; Pipeline.direct:
# a CSV ReportWriter without blocks and the SummaryBuilder), such a row is made once, from the C
# values, into what those consumers would have made of its tuple: its CSV line (the cells of
# csv_rows.pxi, byte for byte the f-string's), the figures SummaryBuilder counts
# (summary_counts.pxi's: Counters, totals, distributions' values) and, for a server-to-client
# EVENT, its sio_broadcasts candidate (fanout.pxi's cells). No row object is made.
#
# Order: a table's rows go this way only while its outbox list is empty, and Pipeline.drain hands
# the batch made here before the tuples, so every table keeps the order of the general path.
#
# Grouped (a --jobs worker's or a --dask task's part writer, dissect.run.parts): each row's session
# and where its line ends are kept beside the lines, and ``take`` hands a table's lines grouped by
# session, each session's in the order they were made. A session in ``shared`` (a set: the Engine.IO
# polling handshakes every --jobs worker dissects, dissect.transport.ownership) is refused (the row
# calls return 0): its rows are made as tuples, which wait for their owner to be known.
#
# Blocks (report.html's, dissect.output.writers.Blocks): each row's end, time (ns) and whether it
# goes client to server are kept beside the lines (CsvLines.marks), for the writer to cut its
# blocks as it cuts those of tuples. A row whose time is not an int64 is refused (a tuple).

from cpython.list cimport PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLong
from cpython.set cimport PySet_GET_SIZE
from libc.string cimport memset
from array import array as ARRAY

cdef enum:
    TS_TEXT = 40
    HITS = 8  # combinations remembered per figure (directions and events alternate row to row)


cdef struct Hit:
    # a combination of two cells (objects held in ``held``) and its slot in its KeyCounts
    PyObject *a
    PyObject *b
    Py_ssize_t slot


cdef inline bint _count_hit(Hit *hits, KeyCounts kc, object a, object b) noexcept:
    """Count the combination (a, b) when it is one of ``hits`` (the same objects)."""
    cdef int i
    for i in range(HITS):
        if hits[i].a == <PyObject *> a and hits[i].b == <PyObject *> b:
            kc.counts[hits[i].slot] += 1
            return True
    return False


cdef inline int _remember(Hit *hits, int *next_hit, list held, object a, object b, Py_ssize_t slot) except -1:
    held[next_hit[0]] = (a, b)  # alive while remembered
    hits[next_hit[0]].a = <PyObject *> a
    hits[next_hit[0]].b = <PyObject *> b
    hits[next_hit[0]].slot = slot
    next_hit[0] = (next_hit[0] + 1) % HITS
    return 0

# The kinds (csv_rows.pxi) of the tables' columns the rows below are written for; configure_direct
# is told the writer's, and the direct path is refused when they differ.
DIRECT_KINDS = {
    "ws_frames": b"iitvbbbbivbiibIssI",
    "ws_messages": b"iittvviiIbsss",
    "sio_packets": b"itvvIvvssIIifssIIssI",
}
cdef tuple DIR_OPCODE = ("direction", "opcode_name")
cdef tuple SIO_COMBO = ("sio_type", "namespace", "event")
cdef str NS_ROOT = "/"
cdef str TRANSPORT_WS = "websocket"
cdef str EIO_MESSAGE = "message"
cdef str EMPTY = ""
cdef str C2S = "c2s"
cdef object ONE = 1


cdef class DirectRows:
    """The steady-state rows of ws_frames, ws_messages and sio_packets since the last drain, as
    CSV bytes (when ``csv``), figures and candidates; ``take`` hands them over."""

    cdef Buf fr_buf, msg_buf, sio_buf
    cdef Py_ssize_t n_fr, n_msg, n_sio
    cdef bint csv
    cdef int digits
    cdef object ts_fn, text_fn, float_fn
    # the last timestamp written, and its text
    cdef object ts_key
    cdef char ts_txt[TS_TEXT]
    cdef Py_ssize_t ts_len
    # figures: ws_frames
    cdef KeyCounts fr_combo, msg_combo, sio_combo, sio_anomaly
    # the combinations counted lately, by their cells' objects (held by the KeyCounts' keys)
    cdef Hit fr_hits[HITS]
    cdef Hit msg_hits[HITS]
    cdef Hit sio_hits[HITS]
    cdef int fr_next, msg_next, sio_next
    cdef list fr_held, msg_held, sio_held
    cdef object anomaly_last  # (held)
    cdef long long fr_payload, msg_wire, msg_payload
    cdef Py_ssize_t fr_compressed, msg_compressed  # rows of compressed frames and messages (RFC 7692)
    cdef Buf msg_sizes  # ws_messages' payload_bytes, as doubles (the Distribution's cells)
    cdef list sio_latency
    # sio_broadcasts candidates: cells, and local indices of their (namespace, event) and socket
    cdef Buf c_ts, c_digest, c_who, c_kind  # int64, int64, uint32, uint32 cells (native order)
    cdef list whos, kinds
    cdef dict who_index, kind_index, who_by_session
    # grouped by session (see the top): the rows' marks, and the sessions refused
    cdef bint grouped
    cdef Buf fr_marks, msg_marks, sio_marks
    cdef object shared
    # blocks (see the top): the rows' marks kept in the same Bufs
    cdef bint blocks

    def __cinit__(self):
        self.fr_buf.p = self.msg_buf.p = self.sio_buf.p = NULL
        self.fr_buf.cap = self.msg_buf.cap = self.sio_buf.cap = 0
        self.fr_marks.p = self.msg_marks.p = self.sio_marks.p = NULL
        self.fr_marks.cap = self.msg_marks.cap = self.sio_marks.cap = 0
        self.c_ts.p = self.c_digest.p = self.c_who.p = self.c_kind.p = self.msg_sizes.p = NULL
        self.c_ts.cap = self.c_digest.cap = self.c_who.cap = self.c_kind.cap = self.msg_sizes.cap = 0

    def __dealloc__(self):
        free(self.fr_buf.p)
        free(self.msg_buf.p)
        free(self.sio_buf.p)
        free(self.c_ts.p)
        free(self.c_digest.p)
        free(self.c_who.p)
        free(self.c_kind.p)
        free(self.msg_sizes.p)
        free(self.fr_marks.p)
        free(self.msg_marks.p)
        free(self.sio_marks.p)

    def __init__(self, csv=None, grouped=False, shared=None, blocks=False):
        """``csv``: None (no CSV wanted: figures only), or the writer's (digits, ts_fn, text_fn,
        float_fn, kinds) where ``kinds`` maps each table to its csv_kinds (ValueError when they
        are not the ones these rows are written for). ``grouped``: the lines handed by session
        (CSV only), refusing the sessions in the set ``shared``; ``blocks``: the rows' marks for
        the writer's blocks beside the lines (CSV only, not grouped; see the top)."""
        if (grouped or blocks) and csv is None:
            raise ValueError("grouped rows, and rows with blocks, are CSV lines")
        if grouped and blocks:
            raise ValueError("rows grouped by session have no blocks")
        self.blocks = blocks
        if shared is not None and type(shared) is not set:
            raise TypeError("shared: a set of session ids")
        self.grouped = grouped
        self.shared = shared
        if csv is not None:
            digits, ts_fn, text_fn, float_fn, kinds = csv
            for table, want in DIRECT_KINDS.items():
                if kinds.get(table) != want:
                    raise ValueError(f"{table}: columns of kinds {kinds.get(table)!r}, not {want!r}")
            self.csv = True
            self.digits = digits
            self.ts_fn, self.text_fn, self.float_fn = ts_fn, text_fn, float_fn
        else:
            self.csv = False
        self._reset()

    cdef _reset(self):
        self.fr_buf.n = self.msg_buf.n = self.sio_buf.n = 0
        self.fr_marks.n = self.msg_marks.n = self.sio_marks.n = 0
        self.n_fr = self.n_msg = self.n_sio = 0
        self.ts_key = None
        self.fr_combo, self.msg_combo, self.sio_combo, self.sio_anomaly = KeyCounts(), KeyCounts(), KeyCounts(), KeyCounts()
        memset(self.fr_hits, 0, sizeof(self.fr_hits))
        memset(self.msg_hits, 0, sizeof(self.msg_hits))
        memset(self.sio_hits, 0, sizeof(self.sio_hits))
        self.fr_next = self.msg_next = self.sio_next = 0
        self.fr_held, self.msg_held, self.sio_held = [None] * HITS, [None] * HITS, [None] * HITS
        self.anomaly_last = None
        self.fr_payload = self.msg_wire = self.msg_payload = 0
        self.fr_compressed = self.msg_compressed = 0
        self.msg_sizes.n = 0
        self.sio_latency = []
        self.c_ts.n = self.c_digest.n = self.c_who.n = self.c_kind.n = 0
        self.whos, self.kinds = [], []
        self.who_index, self.kind_index, self.who_by_session = {}, {}, {}

    def pending(self):
        """How many rows are held."""
        return self.n_fr + self.n_msg + self.n_sio

    def take(self):
        """The rows held, per table with rows: (table, rows, CSV bytes or None, figures,
        candidates or None), and start empty; grouped, the CSV is [(session_id, rows, bytes)]
        in ascending session_id. ``figures`` maps (kind, column names) to what
        ColumnCounts would give: ("combos", names), ("cells", name), ("total", name),
        ("true", name), ("values", name). ``candidates``: the sio_broadcasts candidates' lists
        (ts, digest and size, socket index, kind index) and the sockets ((eio_sid, session_id,
        namespace)) and kinds ((namespace, event)) the indices name."""
        out = []
        cdef Py_ssize_t n
        if self.n_fr:
            n = self.n_fr
            out.append(("ws_frames", n, self._lines(&self.fr_buf, &self.fr_marks), {
                ("combos", DIR_OPCODE): self.fr_combo.result(),
                ("cells", "close_code"): {None: n},
                ("cells", "anomaly"): {EMPTY: n},
                ("total", "payload_len"): self.fr_payload,
                ("true", "compressed"): self.fr_compressed,
            }, None))
        if self.n_msg:
            n = self.n_msg
            out.append(("ws_messages", n, self._lines(&self.msg_buf, &self.msg_marks), {
                ("combos", DIR_OPCODE): self.msg_combo.result(),
                ("cells", "frames"): {ONE: n},
                ("cells", "anomaly"): {EMPTY: n},
                ("total", "wire_bytes"): self.msg_wire,
                ("total", "payload_bytes"): self.msg_payload,
                ("true", "compressed"): self.msg_compressed,
                ("values", "payload_bytes"): self._doubles(&self.msg_sizes),
            }, None))
        if self.n_sio:
            n = self.n_sio
            out.append(("sio_packets", n, self._lines(&self.sio_buf, &self.sio_marks), {
                ("combos", SIO_COMBO): self.sio_combo.result(),
                ("cells", "eio_type"): {EIO_MESSAGE: n},
                ("cells", "transport"): {TRANSPORT_WS: n},
                ("cells", "anomaly"): self.sio_anomaly.result(),
                ("values", "ack_latency_ms"): self.sio_latency,
            }, self._candidates()))
        self._reset()
        return out

    cdef object _doubles(self, Buf *b):
        """The doubles in ``b`` as an array('d') (Distribution.add_finite takes it as it takes a
        list of the values, and extends its own array('d') with it in one copy)."""
        out = ARRAY("d")
        out.frombytes(PyBytes_FromStringAndSize(b.p, b.n))
        return out

    cdef object _candidates(self):
        if not self.c_ts.n:
            return None
        return (PyBytes_FromStringAndSize(self.c_ts.p, self.c_ts.n),
                PyBytes_FromStringAndSize(self.c_digest.p, self.c_digest.n),
                PyBytes_FromStringAndSize(self.c_who.p, self.c_who.n),
                PyBytes_FromStringAndSize(self.c_kind.p, self.c_kind.n), self.whos, self.kinds)

    cdef object _lines(self, Buf *b, Buf *marks):
        cdef CsvLines lines
        if self.grouped:
            return _grouped_lines(b, marks)
        lines = self._bytes(b)
        if self.blocks:
            lines.marks = PyBytes_FromStringAndSize(marks.p, marks.n)
            marks.n = 0
        return lines

    cdef inline bint _refused(self, sid):
        return self.shared is not None and PySet_GET_SIZE(self.shared) != 0 and sid in self.shared

    cdef object _bytes(self, Buf *b):
        """The lines in ``b``, handed over (CsvLines owns them; ``b`` starts anew, as large)."""
        cdef CsvLines lines
        cdef Py_ssize_t cap = b.n + (b.n >> 2)
        if not self.csv:
            return None
        lines = CsvLines()
        lines.p, lines.n = b.p, b.n
        b.n = 0
        b.p = <char *> malloc(cap)
        b.cap = cap if b.p != NULL else 0
        return lines

    cdef int _ts(self, Buf *b, object ts) except -1:
        """The CSV cell of the timestamp ``ts`` (kind t, as _put_ts writes it), formatted once for
        the rows of one packet."""
        cdef int overflow = 0
        cdef long long x
        cdef int k, cut
        cdef char tmp[32]
        if ts is not self.ts_key:
            if not PyLong_CheckExact(ts):
                return _put_ts(b, ts, self.digits, self.ts_fn)
            x = PyLong_AsLongLongAndOverflow(ts, &overflow)
            if overflow or x < 1000000000:
                return _put_ts(b, ts, self.digits, self.ts_fn)
            if self.digits == 9:
                k = dissect_lld(tmp, x)
                cut = 9
            else:
                k = dissect_lld(tmp, x // 1000)
                cut = 6
            memcpy(self.ts_txt, tmp, k - cut)
            self.ts_txt[k - cut] = 46  # "."
            memcpy(self.ts_txt + k - cut + 1, tmp + k - cut, cut)
            self.ts_len = k + 1
            self.ts_key = ts
        return _put(b, self.ts_txt, self.ts_len)

    cdef int frame_row(self, sid, fi, ts, dname, int op, opname, bint masked, Py_ssize_t ln, Py_ssize_t hl,
                       packet, bint compressed=False) except -1:
        """The ws_frames row (sid, fi, ts, dname, True, compressed, False, False, op, opname, masked,
        ln, hl, compressed, None, None, "", packet). 1 when made, 0 when refused (grouped)."""
        cdef Buf *b = &self.fr_buf
        if (self.grouped and self._refused(sid)) or (self.blocks and _no_int64(ts)):
            return 0
        self.n_fr += 1
        if not _count_hit(self.fr_hits, self.fr_combo, dname, opname):  # (direction, opcode_name)
            self.fr_combo.add((dname, opname))
            _remember(self.fr_hits, &self.fr_next, self.fr_held, dname, opname, self.fr_combo.last)
        self.fr_payload += ln
        self.fr_compressed += compressed
        if not self.csv:
            return 1
        _put_int(b, sid)
        _put(b, ",", 1)
        _put_int(b, fi)
        _put(b, ",", 1)
        self._ts(b, ts)
        _put(b, ",", 1)
        _put_obj(b, dname)
        if compressed:  # (RSV1: RFC 7692 section 6)
            _put(b, ",true,true,false,false,", 23)
        else:
            _put(b, ",true,false,false,false,", 24)
        _put_ll(b, op)
        _put(b, ",", 1)
        _put_obj(b, opname)
        if masked:
            _put(b, ",true,", 6)
        else:
            _put(b, ",false,", 7)
        _put_ll(b, ln)
        _put(b, ",", 1)
        _put_ll(b, hl)
        if compressed:
            _put(b, ",true,,,,", 9)
        else:
            _put(b, ",false,,,,", 10)
        if packet is not None:
            _put_int(b, packet)
        _put(b, "\n", 1)
        if self.grouped:
            _mark(&self.fr_marks, sid, b.n)
        elif self.blocks:
            _row_mark(&self.fr_marks, b.n, PyLong_AsLongLong(ts), dname == C2S)
        return 1

    cdef int message_row(self, sid, mi, ts, dname, opname, Py_ssize_t ln, Py_ssize_t hl,
                         const unsigned char *preview, Py_ssize_t preview_len, Py_ssize_t payload,
                         bint compressed=False) except -1:
        """The ws_messages row (sid, mi, ts, ts, dname, opname, 1, hl + ln, payload, compressed,
        preview, "", None), the preview given as its ASCII bytes. 1 when made, 0 when refused
        (grouped)."""
        cdef Buf *b = &self.msg_buf
        cdef double size = <double> payload
        if (self.grouped and self._refused(sid)) or (self.blocks and _no_int64(ts)):
            return 0
        self.n_msg += 1
        if not _count_hit(self.msg_hits, self.msg_combo, dname, opname):
            self.msg_combo.add((dname, opname))
            _remember(self.msg_hits, &self.msg_next, self.msg_held, dname, opname, self.msg_combo.last)
        self.msg_wire += hl + ln
        self.msg_payload += payload
        self.msg_compressed += compressed
        _put(&self.msg_sizes, <char *> &size, sizeof(double))
        if not self.csv:
            return 1
        _put_int(b, sid)
        _put(b, ",", 1)
        _put_int(b, mi)
        _put(b, ",", 1)
        self._ts(b, ts)
        _put(b, ",", 1)
        self._ts(b, ts)
        _put(b, ",", 1)
        _put_obj(b, dname)
        _put(b, ",", 1)
        _put_obj(b, opname)
        _put(b, ",1,", 3)
        _put_ll(b, hl + ln)
        _put(b, ",", 1)
        _put_ll(b, payload)
        if compressed:
            _put(b, ",true,", 6)
        else:
            _put(b, ",false,", 7)
        _put_ascii_text(b, preview, preview_len)
        _put(b, ",,\n", 3)
        if self.grouped:
            _mark(&self.msg_marks, sid, b.n)
        elif self.blocks:
            _row_mark(&self.msg_marks, b.n, PyLong_AsLongLong(ts), dname == C2S)
        return 1

    cdef int sio_row(self, tcp, ts, dirname, bint s2c, version, str sio_type, name, ack_id, Py_ssize_t size,
                     latency, str anomaly, sid, packet, acked, data, digest) except -1:
        """The sio_packets row (tcp, ts, dirname, "websocket", version, "message", sio_type, "/",
        name, ack_id, None, size, latency, anomaly, sid, None, packet, acked, data, digest), and
        its sio_broadcasts candidate (``s2c``: its direction is "s2c"). 1 when made, 0 when
        refused (grouped)."""
        cdef Buf *b = &self.sio_buf
        cdef KeyCounts kc = self.sio_combo
        cdef double f
        cdef long long t
        cdef int overflow = 0
        if (self.grouped and self._refused(tcp)) or (self.blocks and _no_int64(ts)):
            return 0
        self.n_sio += 1
        if not _count_hit(self.sio_hits, kc, sio_type, name):  # (sio_type, namespace, event)
            kc.add((sio_type, NS_ROOT, name))
            _remember(self.sio_hits, &self.sio_next, self.sio_held, sio_type, name, kc.last)
        if anomaly is self.anomaly_last:
            self.sio_anomaly.counts[self.sio_anomaly.last] += 1
        else:
            self.sio_anomaly.add(anomaly)
            self.anomaly_last = anomaly
        if latency is not None:
            if PyFloat_CheckExact(latency):
                f = PyFloat_AS_DOUBLE(latency)
                if not (isnan(f) or isinf(f)):
                    self.sio_latency.append(latency)
            else:
                self.sio_latency.append(latency)  # (the ack state's milliseconds are floats)
        if s2c and digest is not None:  # an EVENT: fanout.pxi's candidate
            t = PyLong_AsLongLongAndOverflow(ts, &overflow)
            if not overflow:
                self._candidate(t, digest, size, sid, tcp, name)
        if not self.csv:
            return 1
        _put_int(b, tcp)
        _put(b, ",", 1)
        self._ts(b, ts)
        _put(b, ",", 1)
        _put_obj(b, dirname)
        _put(b, ",websocket,", 11)
        if version is not None:
            _put_int(b, version)
        _put(b, ",message,", 9)
        _put_obj(b, sio_type)
        _put(b, ",/,", 3)
        _put_text(b, name, self.text_fn)
        _put(b, ",", 1)
        if ack_id is not None:
            _put_int(b, ack_id)
        _put(b, ",,", 2)
        _put_ll(b, size)
        _put(b, ",", 1)
        if latency is not None:
            _put_float(b, latency, self.float_fn)
        _put(b, ",", 1)
        _put_text(b, anomaly, self.text_fn)
        _put(b, ",", 1)
        _put_text(b, sid, self.text_fn)
        _put(b, ",,", 2)
        if packet is not None:
            _put_int(b, packet)
        _put(b, ",", 1)
        _put_text(b, acked, self.text_fn)
        _put(b, ",", 1)
        _put_text(b, data, self.text_fn)
        _put(b, ",", 1)
        if digest is not None:
            _put_int(b, digest)
        _put(b, "\n", 1)
        if self.grouped:
            _mark(&self.sio_marks, tcp, b.n)
        elif self.blocks:
            _row_mark(&self.sio_marks, b.n, PyLong_AsLongLong(ts), not s2c)
        return 1

    cdef int _candidate(self, long long t, digest, Py_ssize_t size, sid, tcp, name) except -1:
        """fanout_add_rows's cells of the candidate: ts, (digest << 31) | size, and the local
        indices of its socket (eio_sid, session_id, "/") and kind ("/", event)."""
        cdef object i, seen
        cdef unsigned int u
        cdef long long cell
        # the socket (sid, tcp, "/"): by its session first (an int), then the tuple
        seen = self.who_by_session.get(tcp)
        if seen is not None and (<tuple> seen)[0] is sid:
            i = (<tuple> seen)[1]
        else:
            who = (sid, tcp, NS_ROOT)
            i = self.who_index.get(who)
            if i is None:
                i = self.who_index[who] = len(self.whos)
                self.whos.append(who)
            self.who_by_session[tcp] = (sid, i)
        u = i
        _put(&self.c_who, <char *> &u, 4)
        # the kind ("/", name): by the name alone (the namespace is always "/")
        i = self.kind_index.get(name)
        if i is None:
            i = self.kind_index[name] = len(self.kinds)
            self.kinds.append((NS_ROOT, name))
        u = i
        _put(&self.c_kind, <char *> &u, 4)
        _put(&self.c_ts, <char *> &t, 8)
        cell = (<long long> digest << 31) | (size & 0x7FFFFFFF)
        return _put(&self.c_digest, <char *> &cell, 8)


def take_u32(bytes index, const unsigned int[:] values):
    """``values[i]`` for each ``i`` of ``index`` (bytes of native uint32 cells), as bytes: the
    candidates' local socket and kind indices made the FanoutCandidates' cells (broadcasts.add_arrays)."""
    cdef Py_ssize_t i, n = len(index) // 4, m = values.shape[0]
    cdef const char *src = PyBytes_AS_STRING(index)
    cdef unsigned int k
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n * 4)
    cdef char *o = PyBytes_AS_STRING(out)
    for i in range(n):
        memcpy(&k, src + 4 * i, 4)
        if k >= m:
            raise IndexError("take_u32: an index past the values")
        memcpy(o + 4 * i, &values[k], 4)
    return out
