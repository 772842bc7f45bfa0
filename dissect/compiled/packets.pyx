# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The per-packet loop of :mod:`dissect.pipeline` in C: the compiled twin of ``Pipeline._loop``.

The same loop, statement for statement, with the headers read through a ``const unsigned char*``
into the read chunk instead of ``struct.unpack_from`` tuples: Ethernet (VLAN tags), Linux cooked
SLL and SLL2, IPv4 without options or fragments, IPv6 without extension headers (where the pure-
Python loop calls ``IPLayer.ipv6``: the same values), TCP, and the in-order segment handed straight
to its dissector (the switch ``fastpaths.TCP_IN_ORDER``). Everything else (other link types, IP
options, IPv6 extension headers, fragments, UDP, tunnels, SYN/FIN/RST, out-of-order data) calls
the same Python code the pure-Python loop calls, with the same arguments, so both give the same
rows byte for byte
(``tests/test_compiled.py``). Chosen by ``dissect.fastpaths`` (``COMPILED_PACKET_LOOP``).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject

cdef extern from *:
    """
    static inline unsigned int dissect_u16(const unsigned char *p) { return ((unsigned int)p[0] << 8) | p[1]; }
    static inline unsigned long long dissect_u32(const unsigned char *p) {
        return ((unsigned long long)p[0] << 24) | ((unsigned long long)p[1] << 16) | ((unsigned long long)p[2] << 8) | p[3];
    }
    """
    unsigned int dissect_u16(const unsigned char *p) nogil
    unsigned long long dissect_u32(const unsigned char *p) nogil

include "slots.pxi"

cdef enum:
    FIN = 0x01
    SYN = 0x02
    ACK = 0x10

cdef long long MASK = 0xFFFFFFFF
cdef long long HALF = 0x80000000


cdef inline long long _link(const unsigned char *p, long long lt, long long off, long long end,
                            long long *l3) noexcept:
    """Ethernet (any number of VLAN tags), SLL, SLL2 in place: the EtherType, -2 for another
    link type (the Python decoders), -1 for nothing dissect reads (link.NONE)."""
    cdef long long q
    cdef unsigned int etype
    if lt == 1:
        q = off + 12
        if q + 2 > end:
            return -1
        etype = dissect_u16(p + q)
        while etype == 0x8100 or etype == 0x88A8 or etype == 0x9100 or etype == 0x9200:
            q += 4
            if q + 2 > end:
                return -1
            etype = dissect_u16(p + q)
        l3[0] = q + 2
        return etype
    if lt == 113:
        if off + 16 > end:
            return -1
        l3[0] = off + 16
        return dissect_u16(p + off + 14)
    if lt == 276:
        if off + 20 > end:
            return -1
        l3[0] = off + 20
        return dissect_u16(p + off)
    return -2


def run_packets(pipeline, reader, unknown_links, bint in_order_fast, long long drain_every,
                long long evict_every):
    """Dissect every packet of ``reader`` as ``Pipeline._loop`` does; returns the last ts seen."""
    cdef PcapWalk walk = None
    if reader.format == "pcap":
        walk = PcapWalk(reader)
        it = None
    elif reader.format == "pcapng":
        walk = PcapngWalk(reader)
        it = None
    else:
        it = iter(reader)
    try:
        last_ts = _loop(pipeline, reader, unknown_links, in_order_fast, drain_every, evict_every, walk, it)
    finally:
        if walk is not None:
            reader.close()  # as CaptureReader.__iter__ does when its walk ends
    return last_ts


cdef object _loop(pipeline, reader, unknown_links, bint in_order_fast, long long drain_every,
                  long long evict_every, PcapWalk walk, it):
    flows = pipeline.flows
    cdef dict tcp_table = flows.tcp
    udp_get = flows.udp.get
    decoders = pipeline_link_decoders
    ipdecode = pipeline.ip.decode
    counters = pipeline.stats.counters
    outbox = pipeline.outbox
    progress = pipeline.progress
    half_open = flows.half_open
    inject = pipeline.inject
    last_ts = pipeline.last_ts
    cdef bint slot_frame = type(outbox) is OutboxCls
    cdef long long npk = 0
    cdef long long frame = 0
    cdef long long off, caplen, wirelen, end, l3, l4, l4end, poff, alen, lt, etype, total
    cdef long long seq, ack, nxt, proto, flags, d, sport, dport, udport, have
    cdef const unsigned char *p
    cdef const unsigned char *dp
    cdef PyObject *found
    cdef bint plain4, fast_conn, in_order
    cdef object streams, counts, nseq
    cdef object pkt, ts, buf, data, key, entry, conn, stream, other, app, decoded, dec, uentry, uflow
    while True:
        if inject:
            pkt = inject.popleft()
            ts, lt, buf, off, caplen, wirelen = pkt
        elif walk is not None:
            if not walk.advance():
                break
            ts = walk.ts
            lt = walk.linktype
            buf = walk.data
            off = walk.rec_off
            caplen = walk.caplen
            wirelen = walk.wirelen
        else:
            pkt = next(it, None)
            if pkt is None:
                break
            ts, lt, buf, off, caplen, wirelen = pkt
        npk += 1
        if wirelen >= 0:  # a tunnel's inner packet (-1) has its outer packet's number
            frame += 1
            if slot_frame:
                sset(outbox, O_OB_FRAME, frame)
            else:
                outbox.frame = frame
        if npk % drain_every == 0:
            if outbox.pending():
                pipeline.drain()
            if npk % evict_every == 0:
                flows.evict(ts)
                tcp_table = flows.tcp
                udp_get = flows.udp.get
            if progress is not None:
                progress(reader.position)
        if ts > last_ts:
            last_ts = ts
        end = off + caplen
        if type(buf) is not bytes:
            buf = bytes(buf)
        p = <const unsigned char *> PyBytes_AS_STRING(buf)

        # -- link layer
        if lt == 1 and caplen >= 34:
            etype = (p[off + 12] << 8) | p[off + 13]
            l3 = off + 14
            if etype == 0x8100 or etype == 0x88A8:
                etype = _link(p, 1, off, end, &l3)
                if etype == -1:
                    l3 = 0
        else:
            etype = _link(p, lt, off, end, &l3)
            if etype == -2:
                dec = decoders.get(lt)
                if dec is None:
                    unknown_links[lt] += 1
                    continue
                etype, l3 = dec(buf, off, end)
            elif etype == -1:
                l3 = 0

        # -- IP: IPv4 without options or fragments, and IPv6 without extension headers, inline
        plain4 = etype == 0x0800 and l3 + 20 <= end
        if plain4:
            proto = p[l3 + 9]
            plain4 = p[l3] == 0x45 and not (dissect_u16(p + l3 + 6) & 0x3FFF)
        if plain4:
            l4 = l3 + 20
            l4end = l3 + dissect_u16(p + l3 + 2)
            if l4end < l4:
                if l4end != l3:
                    counters["ipv4-bad-length"] += 1
                    continue
                l4end = end  # total length 0: a TSO / BIG TCP capture, the frame says
            key = PyBytes_FromStringAndSize(<const char *> p + l3 + 12, 12)
            data = buf
            dp = p
            alen = 4
        elif etype == 0x86DD and l3 + 44 <= end and p[l3] >> 4 == 6 and (p[l3 + 6] == 6 or p[l3 + 6] == 17):
            # IPv6 with TCP or UDP straight after the fixed header (no extension headers), as
            # IPLayer.ipv6 reads it: the payload length ends the data when it fits in the frame
            # (0, or more than the frame: the frame's end). Source, destination and the ports are
            # contiguous: the flow key in one copy.
            proto = p[l3 + 6]
            l4 = l3 + 40
            total = dissect_u16(p + l3 + 4)
            l4end = l4 + total if total and l4 + total <= end else end
            key = PyBytes_FromStringAndSize(<const char *> p + l3 + 8, 36)
            data = buf
            dp = p
            alen = 16
        else:
            decoded = ipdecode(etype, buf, l3, end, ts)
            if decoded is None:
                continue
            proto, src, dst, data, l4, l4end = decoded
            if data is not buf:  # reassembled from fragments
                end = l4end
                if type(data) is not bytes:
                    data = bytes(data)
            dp = <const unsigned char *> PyBytes_AS_STRING(data)
            alen = len(src)
            key = src + dst + data[l4 : l4 + 4]

        if proto == 6:
            if l4 + 20 > end:
                counters["tcp-truncated"] += 1
                continue
            found = PyDict_GetItem(tcp_table, key)
            if found is not NULL:
                entry = <object> found
                conn = entry[0]
                if conn is None:
                    continue
                if type(conn) is TcpConn or _kin(type(conn)):  # (or a --dask task's or index pass's)
                    if sget(conn, O_C_FOREIGN) and not dp[l4 + 13] & 0x07:
                        # --jobs: another worker's flow, nothing to track (an index pass's flow
                        # nobody looks into: counted)
                        sset(conn, O_C_TS_LAST, ts)
                        counts = sget(conn, O_C_PACKETS)
                        counts[entry[1]] += 1
                        continue
                elif conn.foreign and not dp[l4 + 13] & 0x07:
                    conn.ts_last = ts
                    conn.packets[entry[1]] += 1
                    continue
            else:
                entry = None
            sport = dissect_u16(dp + l4)
            dport = dissect_u16(dp + l4 + 2)
            seq = dissect_u32(dp + l4 + 4)
            ack = dissect_u32(dp + l4 + 8)
            flags = dp[l4 + 13]
            poff = l4 + ((dp[l4 + 12] >> 4) << 2)
            if entry is None:
                entry = flows.new_tcp(key, key[:alen], key[alen : 2 * alen], sport, dport, flags, ts)
                tcp_table = flows.tcp
            conn, d = entry
            if conn is None:
                continue
            if flags & 0x07:  # SYN, FIN or RST: the slow path
                if flags & SYN and not flags & ACK and conn.finished and conn.streams[d].isn != seq:
                    conn, d = flows.restart_tcp(key, key[:alen], key[alen : 2 * alen], sport, dport, flags, ts)
                    tcp_table = flows.tcp
                    if conn is None:
                        continue
                conn.control(d, ts, seq, ack, flags)
                if flags & ACK and flags & SYN:
                    half_open.pop(conn.session_id, None)  # answered
            if conn.foreign:  # --jobs: another worker dissects it (or an index pass's flow)
                conn.ts_last = ts
                conn.packets[d] += 1
                if flags & FIN:
                    conn.streams[d].fin_done = True
                continue
            # (a TcpConnection's and its Directions' slots read and written in place: slots.pxi)
            fast_conn = type(conn) is TcpConn
            if fast_conn:
                streams = sget(conn, O_C_STREAMS)
                fast_conn = type(streams) is tuple and len(<tuple> streams) == 2 \
                    and type((<tuple> streams)[0]) is TcpDir and type((<tuple> streams)[1]) is TcpDir
            if fast_conn:
                counts = sget(conn, O_C_PACKETS)
                counts[d] += 1
                sset(conn, O_C_TS_LAST, ts)
            else:
                conn.packets[d] += 1
                conn.ts_last = ts
            if flags & ACK:
                if d == 0 and conn.ack_ts is None and conn.synack_ts is not None and not flags & SYN:
                    conn.ack_ts = ts
                if fast_conn:
                    nxt = sget((<tuple> streams)[1 - d], O_D_NEXT_SEQ)
                else:
                    other = conn.streams[1 - d]
                    nxt = other.next_seq
                if nxt >= 0 and ack != nxt and not (((ack - nxt) & MASK) & HALF):
                    conn.acked(1 - d, ts, ack)
            if l4end > poff:
                if flags & SYN:
                    seq = (seq + 1) & MASK  # data on a SYN (TCP Fast Open) follows the ISN
                if l4end <= end:
                    if fast_conn:
                        stream = (<tuple> streams)[d]
                        app = sget(conn, O_C_APP)
                        in_order = in_order_fast and app is not None and seq == sget(stream, O_D_NEXT_SEQ) \
                            and not sget(stream, O_D_PENDING)
                    else:
                        stream = conn.streams[d]
                        app = conn.app
                        in_order = in_order_fast and app is not None and seq == stream.next_seq and not stream.pending
                    if in_order:
                        # fastpaths.TCP_IN_ORDER: TcpConnection.data's in-order case, inline
                        if fast_conn:
                            nseq = (l4end - poff + seq) & MASK
                            sset(stream, O_D_NEXT_SEQ, nseq)
                            sset(stream, O_D_HIGH, nseq)
                            sset(stream, O_D_DELIVERED, sget(stream, O_D_DELIVERED) + (l4end - poff))
                        else:
                            stream.next_seq = stream.high = (l4end - poff + seq) & MASK
                            stream.delivered += l4end - poff
                        # fastpaths.COMPILED_WS_FRAMES: a WebSocket in its steady state reads the segment in place
                        if type(app) is not WsDissector or not ws_feed_at(app, d, ts, dp + poff, l4end - poff):
                            app.feed(d, ts, PyBytes_FromStringAndSize(<const char *> dp + poff, l4end - poff))
                    else:
                        conn.data(d, ts, seq, PyBytes_FromStringAndSize(<const char *> dp + poff, l4end - poff))
                else:  # cut by the snaplen: use what was captured, the rest is lost
                    counters["tcp-snaplen-cut"] += 1
                    have = end - poff
                    if have > 0:
                        conn.data(d, ts, seq, data[poff:end])
                    conn.acked(d, ts, (seq + l4end - poff) & MASK)
                if flags & FIN:
                    conn.fin(d, (seq + l4end - poff) & MASK)
            elif flags & FIN:
                conn.fin(d, seq)
        elif proto == 17:
            if l4 + 8 > end:
                counters["udp-truncated"] += 1
                continue
            udport = dissect_u16(dp + l4 + 2)
            if udport == 4789 or udport == 6081:  # VXLAN, Geneve: the inner frame is a packet too
                pipeline_udp_tunnel(inject, counters, ts, data, l4 + 8, min(l4end, end), udport)
            uentry = udp_get(key)
            if uentry is None:
                uentry = flows.new_udp(key, key[:alen], key[alen : 2 * alen], dissect_u16(dp + l4), udport, ts)
                udp_get = flows.udp.get
            uflow, d = uentry
            if uflow is None:
                continue
            if uflow.foreign:
                uflow.ts_last = ts
                continue
            uflow.packets[d] += 1
            uflow.nbytes[d] += max(0, l4end - l4 - 8)  # the IP length says, even if cut
            uflow.ts_last = ts
        elif proto == 47:
            pipeline_gre(inject, counters, ts, data, l4, min(l4end, end))
        else:
            counters[f"ip-proto-{proto}"] += 1
    return last_ts


cdef class PcapWalk:
    """The records of a pcap file, walked in C over the reader's chunks: CaptureReader._pcap's
    twin, made of the same reader methods for everything but the common record (a corrupt header,
    the counters of a chunk, a bad timestamp, the end). ``advance`` stands where ``_pcap`` yields."""

    cdef object reader, chunks, data, linktype_obj
    cdef const unsigned char *p
    cdef Py_ssize_t n, off, rec_off
    cdef long long count, cut, last_sec, mult, frac_limit, snaplen, max_record, caplen, wirelen, linktype
    cdef bint big
    cdef object ts

    def __init__(self, reader):
        self.reader = reader
        big, mult, snaplen, linktype = reader.pcap_start()
        self.big = big
        self.mult = mult
        self.frac_limit = 1000000000 // mult
        self.snaplen = snaplen
        self.linktype = linktype
        self.linktype_obj = linktype
        self.max_record = reader.max_record
        self.chunks = iter(reader.chunks())
        self.data = None
        self.n = 0
        self.off = 0
        self.count = 0
        self.cut = 0
        self.last_sec = -1

    cdef inline unsigned long long _u32(self, Py_ssize_t at) noexcept:
        cdef const unsigned char *q = self.p + at
        if self.big:
            return (<unsigned long long> q[0] << 24) | (<unsigned long long> q[1] << 16) | (<unsigned long long> q[2] << 8) | q[3]
        return (<unsigned long long> q[3] << 24) | (<unsigned long long> q[2] << 16) | (<unsigned long long> q[1] << 8) | q[0]

    cdef int advance(self) except -1:
        """The next record (1; its ts, data, offset, caplen and wire length in the fields), or 0 at
        the end of the file."""
        cdef unsigned long long sec, frac, incl, orig
        cdef Py_ssize_t end, new
        cdef object chunk, pending
        while True:
            while self.data is not None and self.off + 16 <= self.n:
                sec = self._u32(self.off)
                frac = self._u32(self.off + 4)
                incl = self._u32(self.off + 8)
                orig = self._u32(self.off + 12)
                if incl > <unsigned long long> self.max_record or (incl > orig and orig):
                    new = self.reader.pcap_resync(self.data, self.off, self.last_sec)
                    if new < 0:
                        self.off = self.n  # nothing plausible in this chunk: drop it
                        break
                    self.off = new
                    continue
                end = self.off + 16 + <Py_ssize_t> incl
                if end > self.n:
                    break
                if incl < orig:
                    self.cut += 1
                if frac >= <unsigned long long> self.frac_limit:  # the record is whole; only its timestamp is odd
                    self.reader.pcap_bad_timestamp()
                self.last_sec = sec
                self.count += 1
                self.ts = <long long> (sec * 1000000000ULL + frac * <unsigned long long> self.mult)
                self.rec_off = self.off + 16
                self.caplen = incl
                self.wirelen = orig
                self.off = end
                return 1
            # the chunk is walked (or none was read yet)
            if self.data is not None:
                self.reader.pcap_chunk_done(self.linktype_obj, self.count, self.cut, self.off)
                pending = self.data[self.off:]
            else:
                pending = b""
            chunk = next(self.chunks, None)
            if chunk is None:
                self.data = None
                self.reader.pcap_end(len(pending))
                return 0
            self.data = pending + chunk if pending else chunk
            if type(self.data) is not bytes:
                self.data = bytes(self.data)
            self.p = <const unsigned char *> PyBytes_AS_STRING(self.data)
            self.n = len(self.data)
            self.off = 0
            self.count = 0
            self.cut = 0


include "pcapng_walk.pxi"


# Set by configure() from dissect.pipeline (this module imports nothing of dissect's).
pipeline_link_decoders = None
pipeline_udp_tunnel = None
pipeline_gre = None


# TcpConnection and its Direction (dissect.transport.tcp), and the offsets of the slots the loop
# reads and writes in place (slots.pxi); set by configure().
cdef object TcpConn = None
cdef object TcpDir = None
cdef Py_ssize_t O_C_FOREIGN, O_C_STREAMS, O_C_PACKETS, O_C_TS_LAST, O_C_APP
cdef Py_ssize_t O_D_NEXT_SEQ, O_D_PENDING, O_D_HIGH, O_D_DELIVERED


cdef object KinType = None  # the last subclass of TcpConn _kin found to keep the slots it reads
cdef object NotKinType = None  # the last type it found not to


cdef bint _kin(t) except -1:
    """Whether instances of ``t``, a subclass of TcpConn (those of flowsplit: a --dask index pass's
    and task's), keep ``foreign``, ``ts_last`` and ``packets`` in TcpConn's slots (no class between
    overrides them), so that the foreign-flow path may read and write them in place."""
    global KinType, NotKinType
    if t is KinType:
        return True
    if t is NotKinType:
        return False
    if TcpConn is None or not issubclass(t, TcpConn):
        NotKinType = t
        return False
    for klass in t.__mro__:
        if klass is TcpConn:
            break
        if any(name in klass.__dict__ for name in ("foreign", "ts_last", "packets")):
            NotKinType = t
            return False
    KinType = t
    return True


def foreign_in_place(t):
    """_kin(t), for the tests."""
    return _kin(t)


def configure(decoders, udp_tunnel, gre, tcp_connection, tcp_direction, outbox):
    """The Python helpers the loop calls for what it leaves to them (link.DECODERS, tunnels), and
    the classes of TCP state and of the outbox (its ``frame``) it reads and writes in place."""
    global pipeline_link_decoders, pipeline_udp_tunnel, pipeline_gre, TcpConn, TcpDir
    global O_C_FOREIGN, O_C_STREAMS, O_C_PACKETS, O_C_TS_LAST, O_C_APP
    global O_D_NEXT_SEQ, O_D_PENDING, O_D_HIGH, O_D_DELIVERED
    pipeline_link_decoders = decoders
    pipeline_udp_tunnel = udp_tunnel
    pipeline_gre = gre
    O_C_FOREIGN = slot_offset(tcp_connection, "foreign")
    O_C_STREAMS = slot_offset(tcp_connection, "streams")
    O_C_PACKETS = slot_offset(tcp_connection, "packets")
    O_C_TS_LAST = slot_offset(tcp_connection, "ts_last")
    O_C_APP = slot_offset(tcp_connection, "app")
    O_D_NEXT_SEQ = slot_offset(tcp_direction, "next_seq")
    O_D_PENDING = slot_offset(tcp_direction, "pending")
    O_D_HIGH = slot_offset(tcp_direction, "high")
    O_D_DELIVERED = slot_offset(tcp_direction, "delivered")
    configure_outbox(outbox)  # (sio_scan.pxi's: the outbox's slots)
    TcpConn = tcp_connection
    TcpDir = tcp_direction
include "ws_frames.pxi"
include "sio_scan.pxi"
include "csv_rows.pxi"
include "fanout.pxi"
include "fanout_groups.pxi"
include "summary_counts.pxi"
include "csv_lines.pxi"
include "direct_rows.pxi"
