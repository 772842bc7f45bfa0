"""A WebSocket data message being reassembled from its frames (RFC 6455 section 5.4): its size and
size cap, the incremental UTF-8 check of a text message (5.6, 8.1) and its preview, what lost
bytes and the RFC 7692 stage's anomalies do to it.
"""

from __future__ import annotations

import base64
import codecs

from dissect.protocols.websocket.deflate import PerMessageInflate
from dissect.protocols.websocket.frames import INFLATE_FAILED, INVALID_UTF8, LOST_BYTES, MESSAGE_TOO_LARGE, OP_TEXT

__all__ = ["PREVIEW_CHARS", "Message", "text_preview"]

PREVIEW_CHARS = 64  # characters of a text message kept in its row's text_preview
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


def payload_text(opcode: int, data: bytes | None) -> str | None:
    """A message's payload as a ``--payloads`` cell: a text message as text (RFC 6455 5.6; bytes
    that are not UTF-8 replaced), any other as base64 (RFC 4648)."""
    if data is None:
        return None
    if opcode == OP_TEXT:
        return data.decode("utf-8", "replace")
    return base64.b64encode(data).decode("ascii")


def text_preview(data: bytes) -> tuple[str, str]:
    """A whole text message's preview and anomaly (RFC 6455 5.6, 8.1): its first PREVIEW_CHARS
    characters, and :data:`INVALID_UTF8` with the preview cut where the bytes stop being UTF-8
    (what :meth:`Message.text` makes of it fed in pieces)."""
    if data.isascii():
        return data[:PREVIEW_CHARS].decode("ascii"), ""
    try:
        return data.decode("utf-8")[:PREVIEW_CHARS], ""
    except UnicodeDecodeError as e:
        return data[: e.start].decode("utf-8")[:PREVIEW_CHARS], INVALID_UTF8


class Message:
    """A data message being reassembled (RFC 6455 5.4): what its ``ws_messages`` row and the
    upper layer will get."""

    __slots__ = (
        "opcode", "ts_first", "frames", "wire", "size", "compressed", "decoding",
        "size_known", "payload_ok", "preview", "need", "dec", "utf8_bad", "chunks", "tags",
        "ts_last", "gap_open",
    )

    def __init__(self, opcode: int, compressed: bool, keep: bool) -> None:
        self.opcode = opcode
        self.ts_first: int | None = None
        self.frames = 0
        self.wire = 0
        self.size = 0  # payload bytes so far, after decompression
        self.compressed = compressed
        self.decoding = True  # payload bytes still examined (unmask, inflate, UTF-8)
        self.size_known = True  # False: payload_bytes column is None
        self.payload_ok = True  # False: upper gets None
        self.preview = ""
        self.need = PREVIEW_CHARS if opcode == OP_TEXT else 0
        self.dec: codecs.IncrementalDecoder | None = None
        self.utf8_bad = False
        self.chunks: list[bytes] | None = [] if keep else None
        self.tags: list[str] = []
        self.ts_last = 0
        self.gap_open = False  # lost bytes hide where this message ends

    def text(self, data: bytes) -> None:
        """RFC 6455 5.6 / 8.1: incremental UTF-8 check of a text message, and its preview."""
        if self.dec is None:
            if data.isascii():
                if self.need:
                    s = data[: self.need].decode("ascii")
                    self.preview += s
                    self.need -= len(s)
                return
            self.dec = _Utf8Decoder()
        try:
            s = self.dec.decode(data)
        except UnicodeDecodeError as e:
            self.utf8_bad = True
            self.tags.append(INVALID_UTF8)
            # e.object = undecoded bytes held back + data; all before e.start is valid
            s = e.object[: e.start].decode("utf-8")
        if self.need and s:
            s = s[: self.need]
            self.preview += s
            self.need -= len(s)

    def count(self, n: int, cap: int) -> None:
        """``n`` more uncompressed payload bytes (known from a frame header): count them and
        enforce the size cap."""
        self.size += n
        if self.size > cap and self.payload_ok:
            self.tags.append(MESSAGE_TOO_LARGE)
            self.payload_ok = False
            self.chunks = None

    def inflated(self, out: bytes, tag: str) -> None:
        """What the RFC 7692 stage made of compressed payload bytes: check and keep the inflated
        bytes; on an anomaly the message is undecodable."""
        if tag == INFLATE_FAILED:
            # How far a broken stream decodes before zlib notices depends on how it was cut
            # into frames and segments: forget what it decoded so the row does not.
            self.tags = [t for t in self.tags if t != INVALID_UTF8]
            self.preview = ""
            self.need = 0
        elif out:
            # Within the cap the bytes are checked even when the message is too large, as when
            # fed in pieces.
            self.size += len(out)
            if self.opcode == OP_TEXT and not self.utf8_bad:
                self.text(out)
            if self.chunks is not None and not tag:
                self.chunks.append(out)
        if tag:
            self.tags.append(tag)
            self.decoding = False
            self.payload_ok = False
            self.size_known = False
            self.chunks = None

    def lose(self, inflate: PerMessageInflate | None) -> None:
        """Bytes of the message were lost: its payload is gone, maybe the direction's deflate
        context (``inflate``)."""
        if LOST_BYTES not in self.tags:
            self.tags.append(LOST_BYTES)
        self.payload_ok = False
        self.chunks = None
        if self.compressed:
            self.size_known = False
            if self.decoding and inflate is not None:
                inflate.lose_context()  # RFC 7692 7.2.3: later messages refer to the lost bytes
        self.decoding = False

    def end(self, inflate: PerMessageInflate | None) -> None:
        """The message's last frame arrived: flush the inflater, finish the UTF-8 check (a text
        message must not end inside a UTF-8 sequence)."""
        if self.compressed and self.decoding and inflate is not None:
            out, tag = inflate.end_message()
            if out or tag:
                self.inflated(out, tag)
        if self.dec is not None and not self.utf8_bad and self.decoding:
            try:
                self.dec.decode(b"", True)
            except UnicodeDecodeError:
                self.utf8_bad = True
                self.tags.append(INVALID_UTF8)
