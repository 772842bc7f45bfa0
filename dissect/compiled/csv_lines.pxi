# The CSV lines of a batch and what is kept beside them (included by packets.pyx, before
# direct_rows.pxi, whose DirectRows makes them): CsvLines hands the bytes over without a copy; a
# RowMark per row for report.html's blocks; a Mark per row for grouping a part writer's lines by
# session (_grouped_lines).

from libc.stdlib cimport calloc, qsort
from libc.string cimport memset
from cpython.buffer cimport PyBuffer_FillInfo


cdef inline int _put_ll(Buf *b, long long v) except -1:
    cdef char tmp[24]
    return _put(b, tmp, dissect_lld(tmp, v))


cdef unsigned char CSV_CLASS[256]  # 1: a character that makes a cell quoted (, \n \r), 2: a quote
memset(CSV_CLASS, 0, 256)
CSV_CLASS[44] = CSV_CLASS[10] = CSV_CLASS[13] = 1
CSV_CLASS[34] = 3


cdef int _put_ascii_text(Buf *b, const unsigned char *u, Py_ssize_t n) except -1:
    """csv_text of the ASCII text ``u[:n]`` (_put_text's rules; nothing for n == 0)."""
    cdef Py_ssize_t i
    cdef unsigned char c, seen = 0
    cdef const unsigned char *q
    cdef const unsigned char *end = u + n
    cdef bint formula
    if n == 0:
        return 0
    c = u[0]
    formula = c == 61 or c == 43 or c == 45 or c == 64 or c == 9 or c == 13 or c == 39  # = + - @ \t \r '
    for i in range(n):
        seen |= CSV_CLASS[u[i]]
    _grow(b, 2 * n + 3)
    cdef char *o = b.p + b.n
    if seen:
        o[0] = 34
        o += 1
    if formula:
        o[0] = 39
        o += 1
    if seen & 2:  # quotes doubled: the spans between them copied whole
        while u < end:
            q = <const unsigned char *> memchr(u, 34, end - u)
            if q == NULL:
                memcpy(o, u, end - u)
                o += end - u
                break
            memcpy(o, u, q - u + 1)
            o += q - u + 1
            o[0] = 34
            o += 1
            u = q + 1
    else:
        memcpy(o, u, n)
        o += n
    if seen:
        o[0] = 34
        o += 1
    b.n = o - b.p
    return 0


cdef class CsvLines:
    """The CSV lines of a batch, handed to the writer without a copy (the buffer protocol: the
    writer's file.write takes them as it takes bytes)."""

    cdef char *p
    cdef Py_ssize_t n
    cdef readonly object marks  # with blocks: the rows' RowMark cells (bytes), else None

    def __dealloc__(self):
        free(self.p)

    def __len__(self):
        return self.n

    def __bytes__(self):
        return PyBytes_FromStringAndSize(self.p, self.n)

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, self.p, self.n, 1, flags)

    def __releasebuffer__(self, Py_buffer *view):
        pass


cdef struct Mark:
    # a grouped row: its session and where its line ends (it starts where the one before ends)
    long long sid
    Py_ssize_t end


cdef struct RowMark:
    # a row of a table with blocks: where its line ends, its time, 1 when it goes client to server
    long long end
    long long ts
    long long c2s


cdef inline int _row_mark(Buf *marks, Py_ssize_t end, long long ts, bint c2s) except -1:
    cdef RowMark m
    m.end = end
    m.ts = ts
    m.c2s = c2s
    return _put(marks, <char *> &m, sizeof(RowMark))


cdef inline bint _no_int64(object ts):
    """True when ``ts`` is not an int that fits in 64 bits (its row then goes as a tuple)."""
    cdef int overflow = 0
    if not PyLong_CheckExact(ts):
        return True
    PyLong_AsLongLongAndOverflow(ts, &overflow)
    return overflow != 0


cdef struct Group:
    # the rows of one session in a batch: an open-addressing table's slot (empty: rows == 0)
    long long sid
    Py_ssize_t rows
    Py_ssize_t size
    char *o  # where its next line goes


cdef int _by_sid(const void *a, const void *b) noexcept nogil:
    cdef long long x = (<const Mark *> a).sid, y = (<const Mark *> b).sid
    return -1 if x < y else (1 if x > y else 0)


cdef inline int _mark(Buf *marks, object sid, Py_ssize_t end) except -1:
    cdef Mark m
    m.sid = PyLong_AsLongLong(sid)
    m.end = end
    return _put(marks, <char *> &m, sizeof(Mark))


cdef object _grouped_lines(Buf *b, Buf *marks):
    """The lines of ``b`` (ends in ``marks``), by session: [(session_id, rows, bytes)] in
    ascending session_id, each session's lines in their order. Two passes over the rows: each
    session's size (a hash table of the batch's sessions), then each line copied to its place."""
    cdef Py_ssize_t n = marks.n // sizeof(Mark), i, k = 0, start, h, cap = 16
    cdef int bits = 4
    cdef Mark *m = <Mark *> marks.p
    cdef Group *slots = NULL
    cdef Py_ssize_t *which = NULL
    cdef Mark *found = NULL  # the sessions in order of appearance: (sid, slot)
    cdef Group *g
    cdef bytes chunk
    out = []
    if n == 0:
        return out
    while cap < 2 * n:
        cap <<= 1
        bits += 1
    try:
        slots = <Group *> calloc(cap, sizeof(Group))
        which = <Py_ssize_t *> malloc(n * sizeof(Py_ssize_t))
        found = <Mark *> malloc(n * sizeof(Mark))
        if slots == NULL or which == NULL or found == NULL:
            raise MemoryError()
        start = 0
        for i in range(n):
            h = <Py_ssize_t> ((<unsigned long long> m[i].sid * 0x9E3779B97F4A7C15ULL) >> (64 - bits))
            while slots[h].rows and slots[h].sid != m[i].sid:
                h = (h + 1) & (cap - 1)
            g = &slots[h]
            if not g.rows:
                g.sid = m[i].sid
                found[k].sid = m[i].sid
                found[k].end = h
                k += 1
            g.rows += 1
            g.size += m[i].end - start
            start = m[i].end
            which[i] = h
        qsort(found, k, sizeof(Mark), _by_sid)
        for i in range(k):
            g = &slots[found[i].end]
            chunk = PyBytes_FromStringAndSize(NULL, g.size)
            g.o = PyBytes_AS_STRING(chunk)
            out.append((g.sid, g.rows, chunk))
        start = 0
        for i in range(n):
            g = &slots[which[i]]
            memcpy(g.o, b.p + start, m[i].end - start)
            g.o += m[i].end - start
            start = m[i].end
    finally:
        free(slots)
        free(which)
        free(found)
    b.n = 0
    marks.n = 0
    return out
