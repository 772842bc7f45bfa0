# The block walk of a pcapng file in C: CaptureReader._pcapng's twin (included by packets.pyx).

cdef enum:
    MAX_IFACES = 64  # interfaces of a section walked in C; a packet of a later one goes through the reader


cdef class PcapngWalk(PcapWalk):
    """The blocks of a pcapng file, walked in C over the reader's chunks: CaptureReader._pcapng's
    twin. The common block (an Enhanced Packet Block of a known interface, whole in the chunk) is
    read here; every other block by the reader's own ``pcapng_block``, after which the section's
    byte order and interfaces are read again (``pcapng_state``). The packets counted here reach
    the reader (``pcapng_counted``) before any other block is read and at the end of each chunk,
    so its counters and warnings are those of ``_pcapng`` in the same order. ``advance`` stands
    where ``_pcapng`` yields."""

    cdef object pending0, ifaces
    cdef Py_ssize_t nif
    cdef long long if_lt[MAX_IFACES]
    cdef long long if_mul[MAX_IFACES]
    cdef long long if_tsoff[MAX_IFACES]
    cdef unsigned long long if_limit[MAX_IFACES]  # ticks above: the time in Python integers
    cdef bint if_fast[MAX_IFACES]
    cdef long long if_count[MAX_IFACES]
    cdef int order[MAX_IFACES]  # interfaces in the order their first counted packet came
    cdef int norder
    cdef bint stopped

    def __init__(self, reader):
        self.reader = reader
        self.max_record = reader.max_record
        self.pending0 = reader.pcapng_start()
        self.chunks = iter(reader.chunks())
        self.data = None
        self.n = 0
        self.off = 0
        self.cut = 0
        self.norder = 0
        self.stopped = False
        self._state()

    cdef int _state(self) except -1:
        """The section's byte order and interfaces, as the reader holds them."""
        cdef Py_ssize_t i
        cdef object lt, mul, div, tsoff
        big, ifaces = self.reader.pcapng_state()
        self.big = big
        self.ifaces = ifaces
        self.nif = len(ifaces)
        for i in range(min(self.nif, MAX_IFACES)):
            lt, mul, div, tsoff, _snap = ifaces[i]
            self.if_lt[i] = lt
            self.if_fast[i] = div == 1 and 0 < mul < (1 << 32) and -(1 << 61) < tsoff < (1 << 61)
            if self.if_fast[i]:
                self.if_mul[i] = mul
                self.if_tsoff[i] = tsoff
                self.if_limit[i] = ((1 << 62) // mul)
        return 0

    cdef int _counted(self) except -1:
        """The packets counted here, to the reader."""
        cdef int k, i
        if self.norder:
            pairs = []
            for k in range(self.norder):
                i = self.order[k]
                pairs.append((self.if_lt[i], self.if_count[i]))
                self.if_count[i] = 0
            self.norder = 0
            self.reader.pcapng_counted(pairs, self.cut)
            self.cut = 0
        return 0

    cdef int advance(self) except -1:
        """The next packet (1; its ts, link type, data, offset, caplen and wire length in the
        fields), or 0 at the end of the file."""
        cdef unsigned long long btype, blen, iid, incl, orig, ticks
        cdef Py_ssize_t off, i
        cdef object chunk, pending, packet
        if self.stopped:
            return 0
        while True:
            while self.data is not None and self.off + 12 <= self.n:
                off = self.off
                btype = self._u32(off)
                blen = self._u32(off + 4)
                if btype == 6 and 32 <= blen <= <unsigned long long> self.max_record and not blen & 3 \
                        and off + <Py_ssize_t> blen <= self.n:
                    iid = self._u32(off + 8)
                    incl = self._u32(off + 20)
                    if iid < <unsigned long long> self.nif and iid < MAX_IFACES and 28 + incl <= blen:
                        orig = self._u32(off + 24)
                        i = <Py_ssize_t> iid
                        ticks = (self._u32(off + 12) << 32) | self._u32(off + 16)
                        if self.if_fast[i] and ticks <= self.if_limit[i]:
                            self.ts = <long long> ticks * self.if_mul[i] + self.if_tsoff[i]
                        else:
                            _lt, mul, div, tsoff, _snap = self.ifaces[i]
                            self.ts = ((ticks * mul if div == 1 else ticks * mul // div) + tsoff)
                        if incl < orig:
                            self.cut += 1
                        if self.if_count[i] == 0:
                            self.order[self.norder] = <int> i
                            self.norder += 1
                        self.if_count[i] += 1
                        self.linktype = self.if_lt[i]
                        self.rec_off = off + 28
                        self.caplen = incl
                        self.wirelen = orig
                        self.off = off + <Py_ssize_t> blen
                        return 1
                # any other block: the reader's own code
                self._counted()
                nxt, packet = self.reader.pcapng_block(self.data, off, self.n)
                if nxt == -2:
                    self.stopped = True
                    self.data = None
                    return 0
                self._state()
                if nxt == -1:
                    break
                self.off = nxt
                if packet is not None:
                    self.ts, self.linktype, _data, self.rec_off, self.caplen, self.wirelen = packet
                    return 1
            # the chunk is walked (or none was read yet)
            if self.data is not None:
                self._counted()
                self.reader.pcapng_chunk_done(self.off)
                pending = self.data[self.off:]
            else:
                pending = self.pending0
                self.pending0 = None
            chunk = next(self.chunks, None)
            if chunk is None:
                self.data = None
                self.stopped = True
                self.reader.pcapng_end(len(pending))
                return 0
            self.data = pending + chunk
            if type(self.data) is not bytes:
                self.data = bytes(self.data)
            self.p = <const unsigned char *> PyBytes_AS_STRING(self.data)
            self.n = len(self.data)
            self.off = 0
