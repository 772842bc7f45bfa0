# The sio_broadcasts candidates of a batch in C (included by packets.pyx: one extension module).
#
# The compiled twin of FanoutCandidates.add_columns (dissect/output/broadcasts.py; switch
# fastpaths.COMPILED_FANOUT), statement for statement: the same candidates, the same four array
# cells each, the same kinds and socket keys (the Python function socket_key, once per socket and
# batch). Only the loop over the batch's rows is in C; every value is the Python code's.

from cpython.list cimport PyList_GET_ITEM

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
