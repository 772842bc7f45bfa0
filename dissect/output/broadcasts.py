"""Socket.IO fan-outs (table ``sio_broadcasts``): one server event sent to many sockets.

A socket.io server broadcasting (``io.emit``, ``io.to(room).emit``, ``socket.broadcast.emit``)
encodes the packet once and writes the same bytes to every socket of the room; on the wire that is
the same EVENT, byte for byte, to several sockets within a short time. REPORTS.md defines a
fan-out as a maximal group of server-to-client EVENT packets with the same namespace, event name
and payload bytes, each to a different socket, the first and the last within 1 s of each other.
Here, precisely:

* the candidates are the ``sio_packets`` rows with direction ``s2c``, sio_type ``EVENT`` or
  ``BINARY_EVENT`` and a ``payload_digest`` (CRC-32 of the event name and arguments as sent, so
  the ack id, which differs per socket, is left out; a BINARY_EVENT's attachments are not in it);
* a socket is an Engine.IO session (``eio_sid``; the TCP session where no sid is known) and a
  namespace;
* in time order, a candidate joins the open group of its (namespace, event, digest, payload size)
  when it came within 1 s of the group's first packet and its socket is not in the group yet;
  otherwise it closes that group and opens the next one;
* a group of two sockets or more is a fan-out; a group of one is an ordinary emit.

The groups are made once, at the end of a run, from every worker's candidates (``--jobs``,
``--dask``: the sockets of one broadcast are dissected by different workers). Each candidate costs
24 bytes until then (four ``array`` cells), not a Python object.
"""

from __future__ import annotations

from array import array
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Any
from zlib import crc32

from dissect import fastpaths
from dissect.output.batch_counts import RowColumns
from dissect.records import SioBroadcast, ms

WINDOW_NS = 1_000_000_000  # the first and the last packet of a fan-out within 1 s (REPORTS.md)
_EVENT_TYPES = ("EVENT", "BINARY_EVENT")
_INT64 = 1 << 63
# The cells fanout_add_rows reads, in its order.
_ROW_CELLS = ("payload_digest", "direction", "sio_type", "ts", "namespace", "event", "payload_bytes", "eio_sid",
              "session_id")


def _socket_key(eio_sid: Any, session_id: Any, namespace: str) -> int:
    """A 32-bit key for a socket, the same in every worker (no salted ``hash``). Two sockets with
    the same key in one group of the same event (a 1 in 4 billion chance) would count as one."""
    who = f"{eio_sid}" if eio_sid is not None and eio_sid == eio_sid else f"#{session_id}"
    return crc32(f"{who}\0{namespace}".encode("utf-8", "replace"))


# Candidates ordered without numpy up to this many (the command line starts without it).
SMALL = 20_000


def _order(ts: array[int], digest: array[int], socket: array[int], kind: array[int]) -> list[int]:
    """The indices of the candidates whose (kind, digest) occurs more than once, by ts, then
    socket, then index."""
    if len(ts) <= SMALL:
        keys = list(zip(kind, digest, strict=True))
        seen = Counter(keys)
        shared = [i for i, key in enumerate(keys) if seen[key] > 1]
        return sorted(shared, key=lambda i: (ts[i], socket[i]))  # stable: ties by index
    import numpy as np

    shared_np = _shared_keys(np, kind, digest)
    return shared_np[np.lexsort((np.frombuffer(socket, dtype=np.uint32)[shared_np],
                                 np.frombuffer(ts, dtype=np.int64)[shared_np]))].tolist()


def _shared_keys(np: Any, kind: array[int], digest: array[int]) -> Any:
    """The indices (ascending) of the candidates whose (kind, digest) occurs more than once."""
    n = len(kind)
    if n < 2:
        return np.zeros(0, dtype=np.intp)
    k = np.frombuffer(kind, dtype=np.uint32)
    d = np.frombuffer(digest, dtype=np.int64)
    by_key = np.lexsort((d, k))
    ks, ds = k[by_key], d[by_key]
    same = (ks[1:] == ks[:-1]) & (ds[1:] == ds[:-1])  # a candidate and the next in key order
    shared = np.zeros(n, dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    keep = np.zeros(n, dtype=bool)
    keep[by_key] = shared
    return np.flatnonzero(keep)


class FanoutCandidates:
    """Server-to-client EVENTs seen so far (compact arrays), turned into fan-outs by :meth:`groups`."""

    __slots__ = ("ts", "digest", "socket", "kind", "kinds", "_kind_index")

    def __init__(self) -> None:
        self.ts = array("q")
        self.digest = array("q")  # payload digest (32 bits) and payload size (31 bits)
        self.socket = array("I")  # a 32-bit key of the socket (only compared within one group)
        self.kind = array("I")  # index into ``kinds``
        self.kinds: list[tuple[str, str | None]] = []  # (namespace, event)
        self._kind_index: dict[tuple[str, str | None], int] = {}

    def __len__(self) -> int:
        return len(self.ts)

    def add_columns(self, cols: Mapping[str, Sequence[Any]]) -> None:
        """The candidates among ``sio_packets`` rows given column-wise (ts in ns)."""
        compiled = fastpaths.compiled_fanout()
        if compiled is not None:  # this loop in C (dissect/compiled/fanout.pxi), the same cells
            compiled(self, cols, _socket_key)
            return
        digests = cols.get("payload_digest")
        if digests is None:
            return
        sio_types = cols["sio_type"]
        directions = cols["direction"]
        # (the other columns only once a candidate shows: most batches have few or none)
        ts_col: Sequence[Any] = ()
        namespaces = events = sizes = sids = sessions = ts_col
        kind_index, kinds = self._kind_index, self.kinds
        sockets: dict[tuple[Any, Any, str], int] = {}  # this batch's socket keys (a crc32 each)
        for i, d in enumerate(digests):
            if d is None or d != d or directions[i] != "s2c" or sio_types[i] not in _EVENT_TYPES:
                continue
            if not ts_col:
                ts_col, namespaces, events = cols["ts"], cols["namespace"], cols["event"]
                sizes, sids, sessions = cols["payload_bytes"], cols["eio_sid"], cols["session_id"]
            t = int(ts_col[i])
            if not -_INT64 <= t < _INT64:  # a damaged capture's time: no array cell holds it
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
                key = sockets[who] = _socket_key(*who)
            self.ts.append(t)
            self.digest.append((int(d) << 31) | (size & 0x7FFFFFFF))
            self.socket.append(key)
            self.kind.append(k)

    def add_rows(self, rows: list[tuple], fields: Sequence[str]) -> None:
        """:meth:`add_columns` of a batch of ``sio_packets`` row tuples with these ``fields``."""
        compiled = fastpaths.compiled_fanout_rows()
        if compiled is not None:  # in C, read in place from the row tuples (fanout.pxi)
            index = {f: i for i, f in enumerate(fields)}
            idx = tuple(index[f] for f in _ROW_CELLS)
            if compiled(self, rows, idx, _socket_key):
                return
        self.add_columns(RowColumns(fields, rows))

    def merge(self, other: FanoutCandidates) -> None:
        """Add another worker's candidates."""
        remap = array("I")
        for kind in other.kinds:
            k = self._kind_index.get(kind)
            if k is None:
                k = self._kind_index[kind] = len(self.kinds)
                self.kinds.append(kind)
            remap.append(k)
        self.ts.extend(other.ts)
        self.digest.extend(other.digest)
        self.socket.extend(other.socket)
        self.kind.extend(remap[k] for k in other.kind)

    def groups(self) -> list[SioBroadcast]:
        """The fan-outs, in the order of their first packet (then namespace, event), numbered from 0."""
        ts, digest, socket, kind = self.ts, self.digest, self.socket, self.kind
        # Only the candidates whose (kind, digest) another candidate shares can be in a fan-out; the
        # rest (most, usually) would each open a group of one. Leaving them out changes no group
        # (a group holds one key) and no order: ageing closes a group at the first candidate more
        # than the window after it, before that candidate's own group is closed, whichever
        # candidates are left out in between. Then by time, then socket: an order that does not
        # depend on how the workers split the sockets.
        order = _order(ts, digest, socket, kind)
        # open group per (kind, digest): [ts_first, ts_last, sockets, size]
        open_groups: dict[tuple[int, int], list[Any]] = {}
        found: list[tuple[int, int, int, int, int]] = []  # ts_first, ts_last, recipients, size, kind

        def close(key: tuple[int, int], g: list[Any]) -> None:
            if len(g[2]) >= 2:
                found.append((g[0], g[1], len(g[2]), g[3], key[0]))

        # groups by first packet, oldest first: those older than the window cannot grow, and
        # are closed as time passes (memory: the groups of the last second, not of the capture)
        ageing: deque[tuple[int, tuple[int, int], list[Any]]] = deque()
        for i in order:
            t = ts[i]
            while ageing and t - ageing[0][0] > WINDOW_NS:
                _, old_key, old = ageing.popleft()
                if open_groups.get(old_key) is old:
                    del open_groups[old_key]
                    close(old_key, old)
            key = (kind[i], digest[i])
            g = open_groups.get(key)
            if g is not None and t - g[0] <= WINDOW_NS and socket[i] not in g[2]:
                g[1] = t
                g[2].add(socket[i])
                continue
            if g is not None:
                close(key, g)
            g = open_groups[key] = [t, t, {socket[i]}, digest[i] & 0x7FFFFFFF]
            ageing.append((t, key, g))
        for key, g in open_groups.items():
            close(key, g)
        found.sort(key=lambda f: (f[0], self.kinds[f[4]][0], self.kinds[f[4]][1] or "", f[1]))
        rows = []
        for index, (first, last, recipients, size, k) in enumerate(found):
            nsp, event = self.kinds[k]
            rows.append(SioBroadcast(index, nsp, event, first, last, ms(first, last) or 0.0, recipients, size))
        return rows

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]
