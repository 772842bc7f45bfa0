"""A file's flow log (``dissect.transport.flowsplit``), packed: binary records, compressed, read back
as a stream of the same event tuples.

The index pass logs a few events per flow and interval (its first packet, its SYN, FINs and RSTs, its
last packet time, what its bytes name). Held as tuples of Python objects they cost about 175 bytes
an event, and the plan task of a split run holds every file's log; packed they cost a few bytes.

:class:`PackedLog` takes the events as a list would (:meth:`PackedLog.append`), each as one record:
a kind byte, then the kind's fields; a flow key is written once (a :data:`KEY` record gives it the
file's next number), then named by its number; times and frame numbers are written as differences
from the previous event's, which compress well. :meth:`PackedLog.close` compresses the records
(zlib); iterating decompresses them a chunk at a time and yields each event as the tuple that was
appended, so a file's log is never held unpacked. A value that does not fit its field (a time
past 2262 in nanoseconds, say) is kept as it came: that event and every one after it stay tuples.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Any

Event = tuple[Any, ...]

# The event kinds of dissect.transport.flowsplit (repeated here: this module is below it).
CREATE, CTRL, LAST, UCREATE, ULAST, EVICT, SIGHT = range(7)
KEY = 7  # (KEY, key): the file's next key number names this key (a record only, never yielded)

# Record layouts after the kind byte; dt/df: time/frame minus the previous event's.
_CREATE = struct.Struct("<BIqq")  # flags, key, dt, df
_CTRL = struct.Struct("<BIIqq")  # flags, key, seq, dt, df
_LAST = struct.Struct("<Iqq")  # key, ts_last - previous time, packets  (LAST, ULAST)
_UCREATE = struct.Struct("<Iqq")  # key, dt, df
_EVICT = struct.Struct("<q")  # dt
_SIGHT = struct.Struct("<II")  # key, byte length of the UTF-8 text that follows
_KEY = struct.Struct("<B")  # byte length of the key that follows
CHUNK = 1 << 16  # compressed bytes decompressed at a time


class PackedLog:
    """A file's flow log, packed (module doc). ``append`` events, ``close`` once, then iterate (any
    number of times); ``len`` is the number of events."""

    def __init__(self) -> None:
        self._buf: bytearray | None = bytearray()
        self._keys: dict[bytes, int] | None = {}
        self._ts = 0
        self._frame = 0
        self.data = b""  # the compressed records (after close)
        self.tail: list[Event] = []  # the events from the first one that did not fit a record on
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedLog):
            return self.count == other.count and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        if self._buf is not None:
            self.close()
        return {"data": self.data, "tail": self.tail, "count": self.count}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._buf = None
        self._keys = None
        self._ts = self._frame = 0
        self.data, self.tail, self.count = state["data"], state["tail"], state["count"]

    def _key(self, buf: bytearray, key: bytes) -> int:
        keys = self._keys
        assert keys is not None
        n = keys.get(key)
        if n is None:
            n = keys[key] = len(keys)
            buf.append(KEY)
            buf += _KEY.pack(len(key))
            buf += key
        return n

    def append(self, ev: Event) -> None:
        self.count += 1
        buf = self._buf
        if buf is None or self.tail:
            if buf is None:
                raise ValueError("a PackedLog takes no event once closed")
            self.tail.append(ev)
            return
        size = len(buf)
        ts, frame = self._ts, self._frame
        try:
            kind = ev[0]
            if kind == CTRL:
                _, key, flags, seq, ts, frame = ev
                k = self._key(buf, key)
                buf.append(CTRL)
                buf += _CTRL.pack(flags, k, seq, ts - self._ts, frame - self._frame)
            elif kind == CREATE:
                _, key, flags, ts, frame = ev
                k = self._key(buf, key)
                buf.append(CREATE)
                buf += _CREATE.pack(flags, k, ts - self._ts, frame - self._frame)
            elif kind == LAST or kind == ULAST:
                k = self._key(buf, ev[1])
                buf.append(kind)
                buf += _LAST.pack(k, ev[2] - self._ts, ev[3])
            elif kind == UCREATE:
                _, key, ts, frame = ev
                k = self._key(buf, key)
                buf.append(UCREATE)
                buf += _UCREATE.pack(k, ts - self._ts, frame - self._frame)
            elif kind == EVICT:
                ts = ev[1]
                buf.append(EVICT)
                buf += _EVICT.pack(ts - self._ts)
            elif kind == SIGHT:
                k = self._key(buf, ev[1])
                text = ev[2].encode("utf-8", "surrogatepass")
                buf.append(SIGHT)
                buf += _SIGHT.pack(k, len(text))
                buf += text
            else:
                raise struct.error(f"unknown event kind {kind!r}")
        except (struct.error, TypeError, ValueError, AttributeError, UnicodeError):
            del buf[size:]  # every later event goes to the tail: the key numbers no longer matter
            self.tail.append(ev)
            return
        self._ts, self._frame = ts, frame

    def close(self) -> None:
        """No more events: compress the records."""
        if self._buf is not None:
            self.data = zlib.compress(bytes(self._buf), 6)
            self._buf = None
            self._keys = None

    def __iter__(self) -> Iterator[Event]:
        if self._buf is not None:
            self.close()
        yield from _decode(self.data)
        yield from self.tail


def _pieces(data: bytes) -> Iterator[bytes]:
    z = zlib.decompressobj()
    view = memoryview(data)
    for i in range(0, len(data), CHUNK):
        yield z.decompress(view[i : i + CHUNK])
    yield z.flush()


def _decode(data: bytes) -> Iterator[Event]:  # noqa: C901 - one record kind a branch
    """The events of compressed records, decompressed a chunk at a time."""
    keys: list[bytes] = []
    ts = frame = 0
    buf = b""
    pos = 0
    create, ctrl, last, ucreate, evict, sight, key_len = (_CREATE.unpack_from, _CTRL.unpack_from, _LAST.unpack_from,
                                                           _UCREATE.unpack_from, _EVICT.unpack_from,
                                                           _SIGHT.unpack_from, _KEY.unpack_from)
    for piece in _pieces(data):
        buf = buf[pos:] + piece
        pos = 0
        end = len(buf)
        while pos < end:
            kind = buf[pos]
            p = pos + 1
            if kind == CTRL:
                if p + 25 > end:
                    break
                flags, k, seq, dt, df = ctrl(buf, p)
                ts += dt
                frame += df
                yield CTRL, keys[k], flags, seq, ts, frame
                pos = p + 25
            elif kind == LAST or kind == ULAST:
                if p + 20 > end:
                    break
                k, dt, packets = last(buf, p)
                yield kind, keys[k], ts + dt, packets
                pos = p + 20
            elif kind == CREATE:
                if p + 21 > end:
                    break
                flags, k, dt, df = create(buf, p)
                ts += dt
                frame += df
                yield CREATE, keys[k], flags, ts, frame
                pos = p + 21
            elif kind == KEY:
                if p + 1 > end:
                    break
                n = key_len(buf, p)[0]
                if p + 1 + n > end:
                    break
                keys.append(buf[p + 1 : p + 1 + n])
                pos = p + 1 + n
            elif kind == UCREATE:
                if p + 20 > end:
                    break
                k, dt, df = ucreate(buf, p)
                ts += dt
                frame += df
                yield UCREATE, keys[k], ts, frame
                pos = p + 20
            elif kind == EVICT:
                if p + 8 > end:
                    break
                ts += evict(buf, p)[0]
                yield EVICT, ts
                pos = p + 8
            elif kind == SIGHT:
                if p + 8 > end:
                    break
                k, n = sight(buf, p)
                if p + 8 + n > end:
                    break
                yield SIGHT, keys[k], buf[p + 8 : p + 8 + n].decode("utf-8", "surrogatepass")
                pos = p + 8 + n
            else:
                raise ValueError(f"a packed flow log with a record of unknown kind {kind}")
    if pos < len(buf):
        raise ValueError("a packed flow log ends inside a record")
