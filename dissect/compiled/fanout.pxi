# The sio_broadcasts candidates of a batch in C (included by packets.pyx: one extension module).
#
# The compiled twin of FanoutCandidates.add_columns (dissect/output/broadcasts.py; switch
# fastpaths.COMPILED_FANOUT), statement for statement: the same candidates, the same four array
# cells each, the same kinds and socket keys (the Python function socket_key, once per socket and
# batch). Only the loop over the batch's rows is in C; every value is the Python code's.

from cpython.list cimport PyList_GET_ITEM
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_Check

cdef extern from *:
    """
    static inline void dissect_prefetch(const void *p) { __builtin_prefetch(p); }
    """
    void dissect_prefetch(const void *p) nogil

cdef enum:
    FANOUT_AHEAD = 8  # rows

cdef tuple FANOUT_EVENT_TYPES = ("EVENT", "BINARY_EVENT")
cdef str S2C_NAME = "s2c"
cdef str EVENT_NAME = "EVENT"
cdef str BINARY_EVENT_NAME = "BINARY_EVENT"


def fanout_add_columns(fc, cols, socket_key):
    """``fc.add_columns(cols)`` for a FanoutCandidates ``fc``; ``socket_key`` is broadcasts._socket_key."""
    cdef Py_ssize_t i, n
    cdef long long t
    cdef int overflow
    cdef object d, tv, nsp, kind, k, size, who, key
    digests = cols.get("payload_digest")
    if digests is None:
        return
    sio_types = cols["sio_type"]
    directions = cols["direction"]
    ts_col = namespaces = events = sizes = sids = sessions = None
    cdef bint fetched = False
    cdef dict kind_index = fc._kind_index
    cdef list kinds = fc.kinds
    cdef dict sockets = {}
    cdef list out_ts = [], out_digest = [], out_socket = [], out_kind = []
    n = len(digests)
    cdef bint lists = type(digests) is list and type(directions) is list and type(sio_types) is list \
        and len(<list> directions) >= n and len(<list> sio_types) >= n
    for i in range(n):
        if lists:  # (rows' columns: lists, read in place)
            d = <object> PyList_GET_ITEM(digests, i)
            if d is None or (type(d) is not int and d != d):
                continue
            tv = <object> PyList_GET_ITEM(directions, i)
            if tv is not S2C_NAME and tv != S2C_NAME:
                continue
            tv = <object> PyList_GET_ITEM(sio_types, i)
            if tv is not EVENT_NAME and tv is not BINARY_EVENT_NAME and tv not in FANOUT_EVENT_TYPES:
                continue
        else:
            d = digests[i]
            if d is None or d != d or directions[i] != "s2c" or sio_types[i] not in FANOUT_EVENT_TYPES:
                continue
        if not fetched:
            ts_col, namespaces, events = cols["ts"], cols["namespace"], cols["event"]
            sizes, sids, sessions = cols["payload_bytes"], cols["eio_sid"], cols["session_id"]
            fetched = True
        tv = int(ts_col[i])
        t = PyLong_AsLongLongAndOverflow(tv, &overflow)
        if overflow:  # a damaged capture's time: no array cell holds it
            continue
        nsp = namespaces[i] or "/"
        kind = (nsp, events[i])
        k = kind_index.get(kind)
        if k is None:
            k = kind_index[kind] = len(kinds)
            kinds.append(kind)
        size = int(sizes[i] or 0)
        who = (sids[i], sessions[i], nsp)
        key = sockets.get(who)
        if key is None:
            key = sockets[who] = socket_key(*who)
        out_ts.append(t)
        out_digest.append((int(d) << 31) | (size & 0x7FFFFFFF))
        out_socket.append(key)
        out_kind.append(k)
    if out_ts:
        fc.ts.extend(out_ts)
        fc.digest.extend(out_digest)
        fc.socket.extend(out_socket)
        fc.kind.extend(out_kind)


def fanout_add_rows(fc, list rows, tuple idx, socket_key):
    """``fc.add_columns`` of the columns of ``rows`` (sio_packets row tuples, read in place; switch
    fastpaths.COMPILED_SUMMARY): ``idx`` holds the indices of payload_digest, direction, sio_type,
    ts, namespace, event, payload_bytes, eio_sid, session_id. The loop of fanout_add_columns, cell
    for cell, with the common cells' arithmetic in C (exact ints) and a row whose namespace and
    event, or whose socket, are the last candidate's objects reusing its kind, or socket key. False
    (nothing added) when a row is not a tuple holding every index."""
    cdef Py_ssize_t i, n = len(rows), width = max(idx) + 1
    cdef Py_ssize_t i_digest = idx[0], i_dir = idx[1], i_type = idx[2], i_ts = idx[3], i_ns = idx[4]
    cdef Py_ssize_t i_event = idx[5], i_size = idx[6], i_sid = idx[7], i_session = idx[8]
    cdef long long t, dv, sv
    cdef int overflow, overflow2
    cdef object row, d, tv, nsp, kind, k, size, who, key, digest
    cdef PyObject *last_ns = NULL
    cdef PyObject *last_event = NULL
    cdef PyObject *last_sid = NULL
    cdef PyObject *last_session = NULL
    cdef PyObject *p_ns
    cdef PyObject *p_event
    cdef PyObject *p_sid
    cdef PyObject *p_session
    cdef object last_k = None, last_key = None, last_nsp = None
    cdef dict kind_index = fc._kind_index
    cdef list kinds = fc.kinds
    cdef dict sockets = {}
    cdef list out_ts = [], out_digest = [], out_socket = [], out_kind = []
    if min(idx) < 0:
        return False
    for i in range(n):
        row = <object> PyList_GET_ITEM(rows, i)
        if not PyTuple_Check(row) or PyTuple_GET_SIZE(row) < width:
            return False
    for i in range(n):
        if i + FANOUT_AHEAD < n:  # the cells' objects are cold: ask for a later row's early
            row = <object> PyList_GET_ITEM(rows, i + FANOUT_AHEAD)
            dissect_prefetch(PyTuple_GET_ITEM(row, i_digest))
            dissect_prefetch(PyTuple_GET_ITEM(row, i_ts))
        row = <object> PyList_GET_ITEM(rows, i)
        d = <object> PyTuple_GET_ITEM(row, i_digest)
        if d is None or (type(d) is not int and d != d):
            continue
        tv = <object> PyTuple_GET_ITEM(row, i_dir)
        if tv is not S2C_NAME and tv != S2C_NAME:
            continue
        tv = <object> PyTuple_GET_ITEM(row, i_type)
        if tv is not EVENT_NAME and tv is not BINARY_EVENT_NAME and tv not in FANOUT_EVENT_TYPES:
            continue
        tv = <object> PyTuple_GET_ITEM(row, i_ts)
        if not PyLong_CheckExact(tv):
            tv = int(tv)
        t = PyLong_AsLongLongAndOverflow(tv, &overflow)
        if overflow:  # a damaged capture's time: no array cell holds it
            continue
        p_ns = PyTuple_GET_ITEM(row, i_ns)
        p_event = PyTuple_GET_ITEM(row, i_event)
        if p_ns == last_ns and p_event == last_event:
            nsp, k = last_nsp, last_k  # the same objects: the same namespace and kind
        else:
            nsp = (<object> p_ns) or "/"
            kind = (nsp, <object> p_event)
            k = kind_index.get(kind)
            if k is None:
                k = kind_index[kind] = len(kinds)
                kinds.append(kind)
            last_ns, last_event, last_nsp, last_k = p_ns, p_event, nsp, k
        size = <object> PyTuple_GET_ITEM(row, i_size)
        if PyLong_CheckExact(d) and PyLong_CheckExact(size):
            dv = PyLong_AsLongLongAndOverflow(d, &overflow)
            sv = PyLong_AsLongLongAndOverflow(size, &overflow2)
            if overflow or overflow2 or dv < 0 or dv > 0xFFFFFFFF:
                digest = (int(d) << 31) | (int(size) & 0x7FFFFFFF)
            else:
                digest = (dv << 31) | (sv & 0x7FFFFFFF)
        else:
            digest = (int(d) << 31) | (int(size or 0) & 0x7FFFFFFF)
        p_sid = PyTuple_GET_ITEM(row, i_sid)
        p_session = PyTuple_GET_ITEM(row, i_session)
        if p_sid == last_sid and p_session == last_session and nsp is last_nsp and last_key is not None:
            key = last_key
        else:
            who = (<object> p_sid, <object> p_session, nsp)
            key = sockets.get(who)
            if key is None:
                key = sockets[who] = socket_key(*who)
            last_sid, last_session, last_key = p_sid, p_session, key
        out_ts.append(t)
        out_digest.append(digest)
        out_socket.append(key)
        out_kind.append(k)
    if out_ts:
        fc.ts.extend(out_ts)
        fc.digest.extend(out_digest)
        fc.socket.extend(out_socket)
        fc.kind.extend(out_kind)
    return True
