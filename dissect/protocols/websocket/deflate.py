"""permessage-deflate (RFC 7692) on the receiving side: one stage per direction between the frames'
payload bytes and the message.

After wsproto's ``PerMessageDeflate`` extension: :class:`PerMessageInflate` has a hook per step of
a compressed message (:meth:`~PerMessageInflate.begin_message`,
:meth:`~PerMessageInflate.frame_payload`, :meth:`~PerMessageInflate.end_message`), each giving
the inflated bytes and an anomaly tag. It holds the inflater, the context takeover state
(7.2.3), the window to restart from after a BFINAL block (7.2.3.4) and the cap on a message's
inflated size; the dissector does not look inside.
"""

from __future__ import annotations

import zlib

from dissect import fastpaths
from dissect.protocols.websocket.frames import INFLATE_CONTEXT_LOST, INFLATE_FAILED, MESSAGE_TOO_LARGE

__all__ = ["PerMessageInflate", "SYNC_TAIL"]

WINDOW = 32768  # LZ77 window kept to restart an inflater after BFINAL (RFC 7692 7.2.3.4)
MAX_RESTARTS = 16  # BFINAL blocks accepted in one message
SYNC_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 7.2.2: appended before inflating a message's end


class PerMessageInflate:
    """The inflating side of permessage-deflate for the messages of one direction (RFC 7692 7.2.2).

    ``takeover``: the sender keeps its LZ77 context between messages (no ``*_no_context_takeover``
    agreed, 7.1.1); then a loss (:meth:`lose_context`) makes every later compressed message of the
    direction undecodable. ``cap``: the most bytes one message may inflate to.

    Once a hook reports an anomaly the message is given up: nothing more of it may be fed.
    """

    __slots__ = ("takeover", "cap", "ctx_lost", "size", "_inflater", "_hist", "_hist_len", "_restarts")

    def __init__(self, takeover: bool, cap: int) -> None:
        self.takeover = takeover
        self.cap = cap
        self.ctx_lost = False  # the context was lost under takeover: nothing more inflates
        self.size = 0  # inflated bytes of the current message
        self._inflater: zlib._Decompress | None = None
        self._hist: list[bytes] = []  # the last output, at least WINDOW bytes of it when there is
        self._hist_len = 0
        self._restarts = 0  # inflater restarts after BFINAL blocks in the current message

    def begin_message(self) -> str:
        """A message with RSV1 set starts (RFC 7692 6.1): ``""``, or :data:`INFLATE_CONTEXT_LOST`
        when an earlier loss under context takeover makes it undecodable (feed nothing more)."""
        if self.ctx_lost:
            return INFLATE_CONTEXT_LOST
        self.size = 0
        self._restarts = 0
        if not self.takeover:
            self._inflater = None  # RFC 7692 7.2.2: a fresh context for every message
            self._hist.clear()
            self._hist_len = 0
        return ""

    def frame_payload(self, data: bytes) -> tuple[bytes, str]:
        """Inflate unmasked payload bytes of the message: ``(inflated bytes, "")``, or with
        :data:`MESSAGE_TOO_LARGE` (the bytes are those within the cap; deflate bomb or just too
        big, memory and time stay bounded) or :data:`INFLATE_FAILED` (no bytes: how far a broken
        stream decodes before zlib notices depends on how it was cut into frames and segments)."""
        inf = self._inflater
        if inf is None:
            inf = self._inflater = zlib.decompressobj(-15)
        try:
            out = inf.decompress(data, self.cap - self.size + 1)
        except zlib.error:
            return self.failed()
        return self.inflated(inf, out)

    def inflated(self, inf: zlib._Decompress, out: bytes) -> tuple[bytes, str]:
        """The rest of :meth:`frame_payload` once ``inf.decompress`` gave ``out`` (the compiled
        whole-frame path calls it for what its own twin of the common case does not take:
        dissect/compiled/ws_frames.pxi)."""
        cap = self.cap
        got = b""
        try:
            while True:
                if out:
                    self.size += len(out)
                    if self.size > cap:
                        self._give_up()
                        return got + out[: len(out) - (self.size - cap)], MESSAGE_TOO_LARGE
                    got = got + out if got else out
                    # keep (a reference to) the last 32 KiB of output, not a whole big message
                    if len(out) > WINDOW:
                        out = out[-WINDOW:]
                    hist = self._hist
                    hist.append(out)
                    self._hist_len += len(out)
                    while self._hist_len - len(hist[0]) >= WINDOW:
                        self._hist_len -= len(hist.pop(0))
                if not inf.eof:
                    return got, ""
                # BFINAL (RFC 7692 7.2.3.4): restart with the same window.  Bounded, or a
                # stream of empty final blocks would cost one inflater each.
                self._restarts += 1
                if self._restarts > MAX_RESTARTS:
                    raise zlib.error("too many final blocks")
                data = inf.unused_data
                inf = self._inflater = self._new_inflater()
                if not data:
                    return got, ""
                out = inf.decompress(data, cap - self.size + 1)
        except zlib.error:
            return self.failed()

    def failed(self) -> tuple[bytes, str]:
        """The inflater failed (zlib.error): the message is given up."""
        self._give_up()
        return b"", INFLATE_FAILED

    def end_message(self, data: bytes = b"", tailed: bool = False) -> tuple[bytes, str]:
        """The message's last frame ended: inflate ``data`` (the last unmasked payload bytes, when
        not fed to :meth:`frame_payload`: a message in one frame in one call) and the 7.2.2 tail
        (already at its end when ``tailed``), as :meth:`frame_payload`. Without context takeover
        the inflater is dropped."""
        result = self.frame_payload(data if tailed else data + SYNC_TAIL)
        if not self.takeover:
            self._inflater = None
        return result

    def lose_context(self) -> None:
        """Compressed bytes of this direction were lost or abandoned: under context takeover
        (7.2.3) later messages refer to them, so none can be inflated any more."""
        if self.takeover:
            self.ctx_lost = True

    def _give_up(self) -> None:
        """Stop inflating the current message; under context takeover the window is gone."""
        self._inflater = None
        self.lose_context()

    def _new_inflater(self) -> zlib._Decompress:
        # After a BFINAL block (RFC 7692 7.2.3.4) the stream restarts with the same window.
        if self._hist:
            return zlib.decompressobj(-15, zdict=b"".join(self._hist)[-WINDOW:])
        return zlib.decompressobj(-15)


_core = fastpaths.compiled_core()
if _core is not None:  # the compiled whole-frame path's twin of a whole message's common case
    _core.configure_deflate(PerMessageInflate, zlib.decompressobj, zlib.error, WINDOW)
