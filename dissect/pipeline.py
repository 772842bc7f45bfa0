"""The pipeline, in the order the data flows:

reader (pcap/pcapng chunks) -> link layer -> IP -> TCP/UDP -> flow table and TCP reassembly ->
application dissectors per session, chosen by :mod:`dissect.protocols.registry` -> rows in an
:class:`~dissect.records.Outbox` ->
consumers (report writers, the summary, the in-memory collector of :func:`dissect.analyze`).

The per-packet loop is the hot path: it decodes the common case (Ethernet or cooked Linux, IPv4
without options, TCP) inline with ``struct.unpack_from`` on the read chunk, builds the flow key as
one slice of the packet (the IPv4 addresses and the TCP ports are contiguous when the header has
no options), and leaves everything rarer to :mod:`dissect.capture.link` and :mod:`dissect.capture.ip`.
"""

from __future__ import annotations

import gc
import struct
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from dissect import fastpaths
from dissect.capture import link
from dissect.capture.ip import IPLayer
from dissect.capture.reader import CaptureReader, Packet
from dissect.capture.tunnels import gre, udp_tunnel, with_injected
from dissect.protocols.registry import Dispatcher
from dissect.protocols.tls import KeyLog
from dissect.records import Outbox
from dissect.transport.flows import FlowTable
from dissect.transport.limits import Limits
from dissect.transport.ownership import Ownership
from dissect.transport.tcp import ACK, FIN, HALF, MASK, SYN, TcpConnection
from dissect.transport.tcp import Direction as TcpDirection

_tcp_hdr = struct.Struct("!HHIIBB").unpack_from
_udp_hdr = struct.Struct("!HH").unpack_from
# RFC 791 3.1: version/IHL, total length, flags/fragment offset, protocol
_ip4_hdr = struct.Struct("!BxHxxHxB").unpack_from

DRAIN_EVERY = 4096
EVICT_EVERY = 1 << 16
YOUNG_GC_THRESHOLD = 50_000


class Consumer(Protocol):
    def add(self, table: str, rows: Iterable[tuple]) -> None: ...


# A consumer may also take the rows the compiled core makes without tuples
# (fastpaths.COMPILED_DIRECT_ROWS, dissect/compiled/direct_rows.pxi): it has
#     direct_spec() -> dict | None    what it needs ({"csv": (digits, ts_fn, text_fn, float_fn, kinds)}
#                                     for CSV lines, with "grouped": True for them by session,
#                                     "blocks": True for each row's marks beside them (report.html's
#                                     blocks); {} for the figures alone), None: tuples only
#     add_formatted(table, rows, csv, figures, candidates)    a batch of ``rows`` rows: their CSV
#                                     lines (bytes; grouped, [(session_id, rows, bytes)]; or None),
#                                     summary figures and sio_broadcasts candidates (DirectRows.take)
# The compiled core makes them only when every consumer of the pipeline takes them.


def direct_spec(consumers: Sequence[Any]) -> dict[str, Any] | None:
    """What ``consumers`` together take of the rows without tuples (above): their specs in one,
    or None when one takes tuples only or two want CSV lines."""
    got: dict[str, Any] = {}
    for c in consumers:
        spec = getattr(c, "direct_spec", None)
        want = spec() if spec is not None else None
        if want is None or (want.get("csv") is not None and got.get("csv") is not None):
            return None
        got.update(want)
    return got


class Stats:
    """What the pipeline counted besides rows: per file, link types, decode failures
    (``counters``), and what the dissectors counted (``protocol``, the outbox's counters)."""

    def __init__(self) -> None:
        self.files: list[dict[str, Any]] = []
        self.counters: Counter[str] = Counter()
        self.protocol: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.warning_details: list[tuple[str, str]] = []
        self.nanosecond = False


class Pipeline:
    def __init__(self, consumers: Sequence[Consumer], limits: Limits | None = None,
                 accept: Callable[[bytes, int, bytes, int], bool] | None = None,
                 progress: Callable[[int], None] | None = None,
                 ownership: Ownership | None = None, keylog: KeyLog | None = None) -> None:
        self.outbox = Outbox()
        self.limits = limits or Limits()
        self.consumers = consumers
        # TLS secrets: the key log given (--tls-keylog), and those the captures carry in pcapng
        # Decryption Secrets Blocks, added as the reader meets them.
        self.keylog = keylog if keylog is not None else KeyLog()
        self.dispatcher = Dispatcher(self.outbox, self.limits, ownership, self.keylog)
        self.flows = FlowTable(self.outbox, self.limits, accept, self.dispatcher.first_data,
                               self.dispatcher.app_protocol, ownership)
        self.ip = IPLayer()
        self.stats = Stats()
        self.progress = progress
        # Inner packets of tunnels (VXLAN, Geneve, GRE), read right after their outer packet.
        self.inject: deque[Packet] = deque()
        self.last_ts = 0
        self.outbox.direct = self._direct_rows(consumers, ownership)

    @staticmethod
    def _direct_rows(consumers: Sequence[Consumer], ownership: Ownership | None) -> Any:
        """The compiled core's rows without tuples, when every consumer takes them (see above);
        a --jobs worker's sessions shared by every worker are made as tuples (their owner is not
        known yet)."""
        make = fastpaths.compiled_direct_rows()
        want = direct_spec(consumers) if make is not None and consumers else None
        if want is None:
            return None
        try:
            return make(want.get("csv"), bool(want.get("grouped")), ownership.shared if ownership is not None else None,
                        bool(want.get("blocks")))
        except ValueError:  # a writer's columns not those the rows are written for
            return None

    def drain(self) -> None:
        direct = self.outbox.direct
        made = direct.take() if direct is not None and direct.pending() else ()
        drained = self.outbox.drain()
        for table, n, csv, figures, candidates in made:  # a table's rows made without tuples come first
            for c in self.consumers:
                c.add_formatted(table, n, csv, figures, candidates)  # type: ignore[attr-defined]
        for table, rows in drained.items():
            for c in self.consumers:
                c.add(table, rows)

    def finish(self) -> None:
        self.outbox.capture_end = self.last_ts
        self.flows.flush_all(self.last_ts)
        self.dispatcher.finish(self.last_ts)
        self.drain()
        st = self.stats
        st.counters.update(self.ip.counters)
        if self.flows.evicted:
            st.counters["flows-evicted"] += self.flows.evicted
        if self.flows.filtered:
            st.counters["flows-filtered-out"] += self.flows.filtered
        if self.flows.half_open_flushed:
            st.counters["half-open-flows-flushed"] += self.flows.half_open_flushed
        st.protocol.update(self.outbox.counters)

    def run_reader(self, reader: CaptureReader) -> None:
        """Dissect every packet of one capture file."""
        reader.on_tls_keys = self.keylog.add_text
        # Each packet allocates a few row tuples and objects; with the default threshold (700)
        # the cyclic collector runs every couple of hundred packets to scan them. A larger young
        # generation keeps collections (and the bound on uncollected cycles) but makes them rare.
        threshold = gc.get_threshold()
        gc.set_threshold(max(threshold[0], YOUNG_GC_THRESHOLD), *threshold[1:])
        try:
            self._run_reader(reader)
        finally:
            gc.set_threshold(*threshold)

    def _run_reader(self, reader: CaptureReader) -> None:
        self.flows.source_file = reader.path
        self.flows.tcp_streams = 0
        unknown_links: Counter[int] = Counter()
        packets = fastpaths.compiled_packets()
        if packets is not None:  # the compiled twin of _loop (dissect/compiled/packets.pyx)
            packets.configure(link.DECODERS, udp_tunnel, gre, TcpConnection, TcpDirection, Outbox)
            self.last_ts = packets.run_packets(self, reader, unknown_links, fastpaths.TCP_IN_ORDER,
                                               DRAIN_EVERY, EVICT_EVERY)
        else:
            self._loop(reader, unknown_links)
        self._file_done(reader, unknown_links)

    def _loop(self, reader: CaptureReader, unknown_links: Counter[int]) -> None:  # noqa: C901 - the hot loop
        flows = self.flows
        tcp_get = flows.tcp.get
        udp_get = flows.udp.get
        decoders = link.DECODERS
        ipdecode = self.ip.decode
        counters = self.stats.counters
        outbox = self.outbox
        progress = self.progress
        last_ts = self.last_ts
        npk = 0
        tcp_hdr = _tcp_hdr
        ip4_hdr = _ip4_hdr
        in_order_fast = fastpaths.TCP_IN_ORDER
        half_open = flows.half_open

        inject = self.inject
        frame = 0  # Wireshark's frame number: every record of the file, 1-based
        for ts, lt, buf, off, caplen, wirelen in with_injected(reader, inject):
            npk += 1
            if wirelen >= 0:  # a tunnel's inner packet (-1) has its outer packet's number
                frame += 1
                outbox.frame = frame
            if not npk % DRAIN_EVERY:
                if outbox.pending():
                    self.drain()
                if not npk % EVICT_EVERY:
                    flows.evict(ts)
                    tcp_get = flows.tcp.get
                    udp_get = flows.udp.get
                if progress is not None:
                    progress(reader.position)
            if ts > last_ts:
                last_ts = ts
            end = off + caplen

            # -- link layer: Ethernet without tags inline, the rest in dissect.capture.link
            if lt == 1 and caplen >= 34:
                etype = (buf[off + 12] << 8) | buf[off + 13]
                l3 = off + 14
                if etype == 0x8100 or etype == 0x88A8:
                    etype, l3 = link.ethernet(buf, off, end)
            else:
                dec = decoders.get(lt)
                if dec is None:
                    unknown_links[lt] += 1
                    continue
                etype, l3 = dec(buf, off, end)

            # -- IP: IPv4 without options or fragments inline
            plain4 = etype == 0x0800 and l3 + 20 <= end
            if plain4:
                vihl, l4end, frag, proto = ip4_hdr(buf, l3)
                plain4 = vihl == 0x45 and not frag & 0x3FFF
            if plain4:
                l4 = l3 + 20
                l4end += l3
                if l4end < l4:
                    if l4end != l3:
                        counters["ipv4-bad-length"] += 1
                        continue
                    l4end = end  # total length 0: a TSO / BIG TCP capture, the frame says
                key = buf[l3 + 12 : l3 + 24]
                data = buf
                alen = 4
            else:
                decoded = ipdecode(etype, buf, l3, end, ts)
                if decoded is None:
                    continue
                proto, src, dst, data, l4, l4end = decoded
                if data is not buf:  # reassembled from fragments
                    end = l4end
                alen = len(src)
                key = src + dst + data[l4 : l4 + 4]

            if proto == 6:
                if l4 + 20 > end:
                    counters["tcp-truncated"] += 1
                    continue
                entry = tcp_get(key)
                if entry is not None:
                    conn = entry[0]
                    if conn is None:
                        continue
                    if conn.foreign and not data[l4 + 13] & 0x07:
                        conn.ts_last = ts  # --jobs: another worker's flow, nothing to track
                        conn.packets[entry[1]] += 1  # (an index pass's flow nobody looks into: counted)
                        continue
                sport, dport, seq, ack, doff, flags = tcp_hdr(data, l4)
                poff = l4 + ((doff >> 4) << 2)
                if entry is None:
                    entry = flows.new_tcp(key, key[:alen], key[alen : 2 * alen], sport, dport, flags, ts)
                conn, d = entry
                if conn is None:
                    continue
                if flags & 0x07:  # SYN, FIN or RST: the slow path
                    if flags & SYN and not flags & ACK and conn.finished and \
                            conn.streams[d].isn != seq:
                        conn, d = flows.restart_tcp(key, key[:alen], key[alen : 2 * alen], sport,
                                                    dport, flags, ts)
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
                conn.packets[d] += 1
                conn.ts_last = ts
                if flags & ACK:
                    if conn.ack_ts is None and d == 0 and conn.synack_ts is not None \
                            and not flags & SYN:
                        conn.ack_ts = ts
                    other = conn.streams[1 - d]
                    nxt = other.next_seq
                    if nxt >= 0 and ack != nxt and not ((ack - nxt) & MASK) & HALF:
                        conn.acked(1 - d, ts, ack)
                if l4end > poff:
                    if flags & SYN:
                        seq = (seq + 1) & MASK  # data on a SYN (TCP Fast Open) follows the ISN
                    if l4end <= end:
                        stream = conn.streams[d]
                        app = conn.app
                        if in_order_fast and seq == stream.next_seq and app is not None and not stream.pending:
                            # fastpaths.TCP_IN_ORDER: TcpConnection.data's in-order case, the
                            # commonest segment, inline
                            stream.next_seq = stream.high = (l4end - poff + seq) & MASK
                            stream.delivered += l4end - poff
                            app.feed(d, ts, data[poff:l4end])
                        else:
                            conn.data(d, ts, seq, data[poff:l4end])
                    else:  # cut by the snaplen: use what was captured, the rest is lost
                        counters["tcp-snaplen-cut"] += 1
                        have = max(0, end - poff)
                        if have:
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
                udport = (data[l4 + 2] << 8) | data[l4 + 3]
                if udport == 4789 or udport == 6081:  # VXLAN, Geneve: the inner frame is a packet too
                    udp_tunnel(inject, counters, ts, data, l4 + 8, min(l4end, end), udport)
                uentry = udp_get(key)
                if uentry is None:
                    sport, dport = _udp_hdr(data, l4)
                    uentry = flows.new_udp(key, key[:alen], key[alen : 2 * alen], sport, dport, ts)
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
                gre(inject, counters, ts, data, l4, min(l4end, end))
            else:
                counters[f"ip-proto-{proto}"] += 1

        self.last_ts = last_ts

    def _file_done(self, reader: CaptureReader, unknown_links: Counter[int]) -> None:
        if self.progress is not None:
            self.progress(reader.position)
        st = self.stats
        st.nanosecond = st.nanosecond or reader.nanosecond
        for lt, n in unknown_links.items():
            st.warnings["unknown-link-type"] += n
            st.warning_details.append(
                ("unknown-link-type", f"{reader.path}: {n} packets of unknown link type {lt}"))
        for kind, n in reader.warnings.items():
            st.warnings[kind] += n
        st.warning_details.extend(reader.warning_details)
        st.files.append({
            "path": reader.path,
            "format": reader.format,
            "packets": reader.packets,
            "bytes": reader.size,
            "link_types": {link.LINK_NAMES.get(k, str(k)): v for k, v in reader.link_types.items()},
            "ts_precision": "ns" if reader.nanosecond else "us",
        })
        self.drain()
