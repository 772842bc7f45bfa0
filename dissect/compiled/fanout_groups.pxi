# The sio_broadcasts grouping in C (included by packets.pyx: one extension module).
#
# The compiled twin of the loop of dissect.output.broadcasts.Found.add (switch
# fastpaths.COMPILED_FANOUT_GROUPS): the same groups. The Python loop walks every candidate in
# (ts, socket) order with one open group per key and closes groups as they age; a group holds one
# key, so walking the candidates key by key, each key's in (ts, socket) order, makes the same
# groups (the caller sorts the fan-outs found afterwards). Here the caller gives that order (numpy
# lexsort by kind, digest, ts, socket; ties by index), and one loop cuts it into groups: a
# candidate joins the open group when it has the same key, came within the window of the group's
# first packet and its socket is not in the group yet; otherwise the group closes (a fan-out when
# it has two sockets or more) and the candidate opens the next. The group's sockets are a small
# open-addressing set, stamped by group so that it never needs clearing.

from libc.stdlib cimport calloc, free, malloc


cdef struct SocketSet:
    unsigned int *keys
    unsigned int *stamps
    unsigned int *members  # the sockets of the open group, to rehash when the set grows
    Py_ssize_t cap  # slots, a power of two
    Py_ssize_t size
    unsigned int stamp


cdef int socket_set_init(SocketSet *s, Py_ssize_t cap) noexcept:
    s.keys = <unsigned int *> malloc(cap * sizeof(unsigned int))
    s.stamps = <unsigned int *> calloc(cap, sizeof(unsigned int))
    s.members = <unsigned int *> malloc((cap // 2 + 1) * sizeof(unsigned int))
    s.cap = cap
    s.size = 0
    s.stamp = 1
    return 0 if s.keys != NULL and s.stamps != NULL and s.members != NULL else -1


cdef void socket_set_free(SocketSet *s) noexcept:
    free(s.keys)
    free(s.stamps)
    free(s.members)


cdef inline Py_ssize_t socket_slot(SocketSet *s, unsigned int key) noexcept:
    """The slot holding ``key``, or the empty slot where it would go."""
    cdef Py_ssize_t mask = s.cap - 1
    cdef Py_ssize_t i = <Py_ssize_t> ((key * <unsigned long long> 0x9E3779B1) & mask)
    while s.stamps[i] == s.stamp and s.keys[i] != key:
        i = (i + 1) & mask
    return i


cdef void socket_set_clear(SocketSet *s) noexcept:
    """Empty the set for the next group (a new stamp; every slot cleared once in 2^32 groups)."""
    cdef Py_ssize_t i
    s.size = 0
    if s.stamp == 0xFFFFFFFF:
        for i in range(s.cap):
            s.stamps[i] = 0
        s.stamp = 0
    s.stamp += 1


cdef int socket_set_add(SocketSet *s, unsigned int key) noexcept:
    """Add ``key``: 1 when added, 0 when it was there, -1 when out of memory."""
    cdef Py_ssize_t i = socket_slot(s, key), j
    cdef SocketSet grown
    if s.stamps[i] == s.stamp:
        return 0
    if (s.size + 1) * 2 > s.cap:  # keep it at most half full: rehash the group into twice the slots
        if socket_set_init(&grown, s.cap * 2) < 0:
            socket_set_free(&grown)
            return -1
        for j in range(s.size):
            grown.members[j] = s.members[j]
            i = socket_slot(&grown, s.members[j])
            grown.keys[i] = s.members[j]
            grown.stamps[i] = grown.stamp
        grown.size = s.size
        socket_set_free(s)
        s[0] = grown
        i = socket_slot(s, key)
    s.keys[i] = key
    s.stamps[i] = s.stamp
    s.members[s.size] = key
    s.size += 1
    return 1


def fanout_groups(const long long[:] ts, const long long[:] digest, const unsigned int[:] socket,
                  const unsigned int[:] kind, const long long[:] order, long long window,
                  long long[:] first_out, long long[:] last_out, long long[:] recipients_out,
                  long long[:] digest_out, unsigned int[:] kind_out):
    """The fan-outs of the candidates (columns ``ts``, ``digest``, ``socket``, ``kind``) walked in
    ``order``, written to the ``*_out`` columns (room for len(order) // 2 each); returns how many."""
    cdef Py_ssize_t n = order.shape[0], j, i, found = 0
    cdef long long t, g_first = 0, g_last = 0, g_digest = 0
    cdef unsigned int g_kind = 0
    cdef bint open_group = False
    cdef int added
    cdef SocketSet s
    if socket_set_init(&s, 64) < 0:
        socket_set_free(&s)
        raise MemoryError()
    try:
        for j in range(n):
            i = <Py_ssize_t> order[j]
            t = ts[i]
            if open_group and kind[i] == g_kind and digest[i] == g_digest \
                    and <unsigned long long> t - <unsigned long long> g_first <= <unsigned long long> window:
                # (t >= g_first in this order: the difference as unsigned cannot overflow)
                added = socket_set_add(&s, socket[i])
                if added < 0:
                    raise MemoryError()
                if added:
                    g_last = t
                    continue
            if open_group and s.size >= 2:
                first_out[found] = g_first
                last_out[found] = g_last
                recipients_out[found] = s.size
                digest_out[found] = g_digest
                kind_out[found] = g_kind
                found += 1
            socket_set_clear(&s)
            if socket_set_add(&s, socket[i]) < 0:
                raise MemoryError()
            g_first = g_last = t
            g_kind = kind[i]
            g_digest = digest[i]
            open_group = True
        if open_group and s.size >= 2:
            first_out[found] = g_first
            last_out[found] = g_last
            recipients_out[found] = s.size
            digest_out[found] = g_digest
            kind_out[found] = g_kind
            found += 1
    finally:
        socket_set_free(&s)
    return found
