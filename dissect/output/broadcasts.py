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
24 bytes until then (four ``array`` cells), not a Python object, and only while few: past
``SPILL_AT`` candidates they go to temporary files, one per bucket of their (kind, digest) key,
so that memory stays flat however long the capture. A group holds one key, so the buckets are
grouped one after the other with the same result as all the candidates at once. The fan-outs
found (32 bytes each) become rows batch by batch as they are written (:class:`FanoutRows`).
"""

from __future__ import annotations

import os
import shutil
import weakref
from array import array
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload
from zlib import crc32

from dissect import fastpaths
from dissect.output.batch_counts import RowColumns
from dissect.output.report_dir import temp_dir
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


# Candidates held in memory before they go to disk (24 bytes each), and the files they go to.
SPILL_AT = 1 << 18
BUCKET_BITS = 6
BUCKETS = 1 << BUCKET_BITS
SPILL_PREFIX = "dissect-fanout-"  # then host-pid-random, in the system's temporary directory
# Rows per batch of FanoutRows.chunks.
CHUNK_ROWS = 1 << 12


class FanoutCandidates:
    """Server-to-client EVENTs seen so far (compact arrays, spilled to disk past ``SPILL_AT``),
    turned into fan-outs by :meth:`groups`."""

    __slots__ = ("ts", "digest", "socket", "kind", "kinds", "_kind_index", "_spill")

    def __init__(self) -> None:
        self.ts = array("q")
        self.digest = array("q")  # payload digest (32 bits) and payload size (31 bits)
        self.socket = array("I")  # a 32-bit key of the socket (only compared within one group)
        self.kind = array("I")  # index into ``kinds``
        self.kinds: list[tuple[str, str | None]] = []  # (namespace, event)
        self._kind_index: dict[tuple[str, str | None], int] = {}
        self._spill: SpillFiles | None = None

    def __len__(self) -> int:
        return len(self.ts) + (self._spill.count if self._spill is not None else 0)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a worker's candidates to the parent or the Dask client) with the spilled ones
        read back: the files are this host's."""
        ts, digest, socket, kind = array("q"), array("q"), array("I"), array("I")
        for cols in self._all():
            ts.extend(cols[0])
            digest.extend(cols[1])
            socket.extend(cols[2])
            kind.extend(cols[3])
        return {"ts": ts, "digest": digest, "socket": socket, "kind": kind, "kinds": self.kinds}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        self.ts, self.digest, self.socket, self.kind = state["ts"], state["digest"], state["socket"], state["kind"]
        self.kinds = state["kinds"]
        self._kind_index = {kind: k for k, kind in enumerate(self.kinds)}
        self._spill_if_many()

    def add_columns(self, cols: Mapping[str, Sequence[Any]]) -> None:
        """The candidates among ``sio_packets`` rows given column-wise (ts in ns)."""
        compiled = fastpaths.compiled_fanout()
        if compiled is not None:  # this loop in C (dissect/compiled/fanout.pxi), the same cells
            compiled(self, cols, _socket_key)
            self._spill_if_many()
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
        self._spill_if_many()

    def add_rows(self, rows: list[tuple], fields: Sequence[str]) -> None:
        """:meth:`add_columns` of a batch of ``sio_packets`` row tuples with these ``fields``."""
        compiled = fastpaths.compiled_fanout_rows()
        if compiled is not None:  # in C, read in place from the row tuples (fanout.pxi)
            index = {f: i for i, f in enumerate(fields)}
            idx = tuple(index[f] for f in _ROW_CELLS)
            if compiled(self, rows, idx, _socket_key):
                self._spill_if_many()
                return
        self.add_columns(RowColumns(fields, rows))

    def add_arrays(self, cells: tuple[bytes, bytes, bytes, bytes], sockets: list[tuple[Any, Any, str]],
                   kinds: list[tuple[str, Any]]) -> None:
        """Candidates the compiled core collected without row tuples (dissect/compiled/direct_rows.pxi):
        ``cells`` holds their ts and digest cells (int64) and indices (uint32) into ``sockets``
        ((eio_sid, session_id, namespace)) and ``kinds`` ((namespace, event)), native bytes; the
        cells :meth:`add_rows` would append."""
        ts, digest, socket, kind = cells
        keys = array("I", [_socket_key(*who) for who in sockets])
        index = self._kind_index
        remap = array("I")
        for name in kinds:
            k = index.get(name)
            if k is None:
                k = index[name] = len(self.kinds)
                self.kinds.append(name)
            remap.append(k)
        take = fastpaths.compiled_core().take_u32
        self.ts.frombytes(ts)
        self.digest.frombytes(digest)
        self.socket.frombytes(take(socket, keys))
        self.kind.frombytes(take(kind, remap))
        self._spill_if_many()

    def merge(self, other: FanoutCandidates) -> None:
        """Add another worker's candidates."""
        remap = array("I")
        for name in other.kinds:
            k = self._kind_index.get(name)
            if k is None:
                k = self._kind_index[name] = len(self.kinds)
                self.kinds.append(name)
            remap.append(k)
        for ts, digest, socket, kind in other._all():
            self.ts.extend(ts)
            self.digest.extend(digest)
            self.socket.extend(socket)
            self.kind.extend(remap[k] for k in kind)
            self._spill_if_many()

    def _all(self) -> Iterator[tuple[array[int], array[int], array[int], array[int]]]:
        """Every candidate, as column arrays: the spilled ones by bucket, then those in memory."""
        if self._spill is not None:
            for b in range(BUCKETS):
                yield self._spill.read(b)
        yield self.ts, self.digest, self.socket, self.kind

    def _spill_if_many(self) -> None:
        if len(self.ts) < SPILL_AT:
            return
        if self._spill is None:
            self._spill = SpillFiles()
        self._spill.write(self.ts, self.digest, self.socket, self.kind)
        self.ts, self.digest, self.socket, self.kind = array("q"), array("q"), array("I"), array("I")

    def groups(self) -> FanoutRows:
        """The fan-outs, in the order of their first packet (then namespace, event, last packet,
        payload, recipients), numbered from 0."""
        found = Found(numpy=self._spill is not None)
        if self._spill is None:
            found.add(self.ts, self.digest, self.socket, self.kind)
        else:  # a group holds one key: bucket by bucket, the same groups
            self._spill.write(self.ts, self.digest, self.socket, self.kind)
            self.ts, self.digest, self.socket, self.kind = array("q"), array("q"), array("I"), array("I")
            for b in range(BUCKETS):
                found.add(*self._spill.read(b))
        return found.rows(self.kinds)

    def clear(self) -> None:
        if self._spill is not None:
            self._spill.close()
        self.__init__()  # type: ignore[misc]


class SpillFiles:
    """Candidates on disk: one file per spill (a run), its candidates grouped by the bucket of
    their (kind, digest) key, column by column, with where each bucket starts; a bucket is read
    back from every run, in the runs' order. Removed by :meth:`close` or when collected."""

    def __init__(self) -> None:
        # (a run killed outright cannot remove its spill: the next one to spill removes those of
        # this host's processes that no longer run)
        self.dir = temp_dir(SPILL_PREFIX)
        self.count = 0
        self.runs: list[tuple[str, list[int]]] = []  # (path, where each bucket starts, then the count)
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.dir, True)

    def write(self, ts: array[int], digest: array[int], socket: array[int], kind: array[int]) -> None:
        n = len(ts)
        if not n:
            return
        import numpy as np

        d = np.frombuffer(digest, dtype=np.int64)
        k = np.frombuffer(kind, dtype=np.uint32)
        mixed = (d.view(np.uint64) ^ (k.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))) \
            * np.uint64(0xBF58476D1CE4E5B9)
        bucket = (mixed >> np.uint64(64 - BUCKET_BITS)).astype(np.uint8)  # the hash's top bits
        order = np.argsort(bucket, kind="stable")  # (a radix sort) each bucket's candidates in their order
        starts = [0, *np.cumsum(np.bincount(bucket, minlength=BUCKETS)).tolist()]
        path = os.path.join(self.dir, f"{len(self.runs)}.bin")
        with open(path, "wb") as f:
            for col, dtype in ((ts, np.int64), (digest, np.int64), (socket, np.uint32), (kind, np.uint32)):
                f.write(np.frombuffer(col, dtype=dtype)[order].tobytes())
        self.runs.append((path, starts))
        self.count += n

    def read(self, b: int) -> tuple[array[int], array[int], array[int], array[int]]:
        cols = (array("q"), array("q"), array("I"), array("I"))
        for path, starts in self.runs:
            n, start, end = starts[-1], starts[b], starts[b + 1]
            if end == start:
                continue
            with open(path, "rb") as f:
                base = 0
                for col in cols:
                    f.seek(base + start * col.itemsize)
                    col.frombytes(f.read((end - start) * col.itemsize))
                    base += n * col.itemsize
        return cols

    def close(self) -> None:
        self._cleanup()


class Found:
    """The fan-outs found (five array cells each), made into :class:`FanoutRows`."""

    def __init__(self, numpy: bool = False) -> None:
        self.numpy = numpy  # whether to order with numpy however few the candidates (imported already)
        self.first = array("q")
        self.last = array("q")
        self.recipients = array("q")
        self.digest = array("q")
        self.kind = array("I")

    def add(self, ts: array[int], digest: array[int], socket: array[int], kind: array[int]) -> None:
        """The fan-outs among these candidates (every candidate of a key among them)."""
        compiled = fastpaths.compiled_fanout_groups()
        if compiled is not None:
            self._add_compiled(compiled, ts, digest, socket, kind)
            return
        # Only the candidates whose (kind, digest) another candidate shares can be in a fan-out; the
        # rest (most, usually) would each open a group of one. Leaving them out changes no group
        # (a group holds one key) and no order: ageing closes a group at the first candidate more
        # than the window after it, before that candidate's own group is closed, whichever
        # candidates are left out in between. Then by time, then socket: an order that does not
        # depend on how the workers split the sockets.
        order = _order(ts, digest, socket, kind)
        # open group per (kind, digest): [ts_first, ts_last, sockets]
        open_groups: dict[tuple[int, int], list[Any]] = {}

        def close(key: tuple[int, int], g: list[Any]) -> None:
            if len(g[2]) >= 2:
                self.first.append(g[0])
                self.last.append(g[1])
                self.recipients.append(len(g[2]))
                self.digest.append(key[1])
                self.kind.append(key[0])

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
            g = open_groups[key] = [t, t, {socket[i]}]
            ageing.append((t, key, g))
        for key, g in open_groups.items():
            close(key, g)

    def _add_compiled(self, compiled: Any, ts: array[int], digest: array[int], socket: array[int],
                      kind: array[int]) -> None:
        """:meth:`add` by the C loop (dissect/compiled/fanout_groups.pxi), walking the candidates
        key by key: a group holds one key, so the same groups (:meth:`rows` orders them)."""
        n = len(ts)
        if n < 2:
            return
        if n <= SMALL and not self.numpy:  # (no numpy for a small report)
            order = array("q", sorted(range(n), key=lambda i: (kind[i], digest[i], ts[i], socket[i])))
        else:
            import numpy as np

            order = array("q", np.lexsort((np.frombuffer(socket, dtype=np.uint32), np.frombuffer(ts, dtype=np.int64),
                                           np.frombuffer(digest, dtype=np.int64),
                                           np.frombuffer(kind, dtype=np.uint32))).astype(np.int64).tobytes())
        room = n // 2
        out = [array("q", bytes(8 * room)) for _ in range(4)] + [array("I", bytes(4 * room))]
        found = compiled(ts, digest, socket, kind, order, WINDOW_NS, *out)
        for name, col in zip(("first", "last", "recipients", "digest", "kind"), out, strict=True):
            getattr(self, name).extend(col[:found])

    def rows(self, kinds: list[tuple[str, str | None]]) -> FanoutRows:
        """The fan-outs in the table's order: first packet, namespace, event, last packet, then
        payload and recipients (so that the order does not depend on how they were found)."""
        by_name = sorted(range(len(kinds)), key=lambda k: (kinds[k][0], kinds[k][1] or ""))
        rank = array("I", bytes(4 * len(kinds)))
        for r, k in enumerate(by_name):
            rank[k] = r
        n = len(self.first)
        first, last, recipients, digest, kind = self.first, self.last, self.recipients, self.digest, self.kind
        out = Found()
        names = ("first", "last", "recipients", "digest", "kind")
        if n <= SMALL:
            order = sorted(range(n), key=lambda i: (first[i], rank[kind[i]], last[i], digest[i], recipients[i]))
            for name in names:
                col = getattr(self, name)
                setattr(out, name, array(col.typecode, [col[i] for i in order]))
        else:  # the same order by numpy, the columns taken in it without a Python object each
            import numpy as np

            def view(name: str) -> Any:
                return np.frombuffer(getattr(self, name), dtype=np.uint32 if name == "kind" else np.int64)

            rk = np.frombuffer(rank, dtype=np.uint32)[view("kind")]
            by = np.lexsort((view("recipients"), view("digest"), view("last"), rk, view("first")))
            del rk
            for name in names:  # one column at a time, its source freed before the next (memory)
                col = array(getattr(self, name).typecode)
                col.frombytes(view(name)[by].view(np.uint8))
                setattr(out, name, col)
                setattr(self, name, array(col.typecode))
        for name in names:
            setattr(self, name, array(getattr(self, name).typecode))
        return FanoutRows(out, kinds)


class FanoutRows(Sequence[SioBroadcast]):
    """The ``sio_broadcasts`` rows, made from :class:`Found`'s arrays when read; :meth:`chunks`
    gives them in batches (a writer's), so that a run never holds them all as objects."""

    def __init__(self, found: Found, kinds: list[tuple[str, str | None]]) -> None:
        self._found = found
        self._kinds = kinds

    def __len__(self) -> int:
        return len(self._found.first)

    @overload
    def __getitem__(self, i: int) -> SioBroadcast: ...

    @overload
    def __getitem__(self, i: slice) -> list[SioBroadcast]: ...

    def __getitem__(self, i: int | slice) -> SioBroadcast | list[SioBroadcast]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            return self._rows(start, stop) if step == 1 else [self[j] for j in range(start, stop, step)]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._rows(i, i + 1)[0]

    def _rows(self, start: int, stop: int) -> list[SioBroadcast]:
        """Rows ``start`` to ``stop`` (0 <= start <= stop <= len)."""
        f, kinds = self._found, self._kinds
        return [SioBroadcast(i, kinds[k][0], kinds[k][1], a, b, ms(a, b) or 0.0, r, d & 0x7FFFFFFF)
                for i, a, b, r, d, k in zip(range(start, stop), f.first[start:stop], f.last[start:stop],
                                            f.recipients[start:stop], f.digest[start:stop], f.kind[start:stop],
                                            strict=True)]

    def __iter__(self) -> Iterator[SioBroadcast]:
        for chunk in self.chunks():
            yield from chunk

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FanoutRows({list(self)!r})"

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[list[SioBroadcast]]:
        """The rows in order, ``size`` at a time."""
        n = len(self)
        for start in range(0, n, size):
            yield self._rows(start, min(start + size, n))
