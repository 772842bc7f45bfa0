"""A WebSocket data message being reassembled from its frames (RFC 6455 section 5.4), with the
incremental UTF-8 check of a text message (5.6, 8.1) and its preview.
"""

from __future__ import annotations

import codecs

from dissect.protocols.websocket.frames import INVALID_UTF8, OP_TEXT

__all__ = ["PREVIEW_CHARS", "Message"]

PREVIEW_CHARS = 64  # characters of a text message kept in its row's text_preview
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


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

    def text_end(self) -> None:
        """The last frame arrived: a text message must not end inside a UTF-8 sequence."""
        if self.dec is not None and not self.utf8_bad and self.decoding:
            try:
                self.dec.decode(b"", True)
            except UnicodeDecodeError:
                self.utf8_bad = True
                self.tags.append(INVALID_UTF8)
