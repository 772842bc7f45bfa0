"""The TLS record layer over one direction's reassembled byte stream (RFC 5246 6.2, RFC 8446 5.1).

``RecordReader`` cuts TLSPlaintext/TLSCiphertext records (type, legacy version, length, fragment) out of bytes
fed in arbitrary pieces; ``HandshakeReassembler`` cuts handshake messages out of handshake record fragments (a
message may span records; a record may hold several messages). Both stop for good at the first framing error and
say why in ``error`` as (anomaly kind, detail); they never raise on input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
HEARTBEAT = 24

HEADER_LENGTH = 5
MAX_PLAINTEXT = 2**14
MAX_TLS13_CIPHERTEXT = 2**14 + 256  # RFC 8446 5.2
MAX_TLS12_CIPHERTEXT = 2**14 + 2048  # RFC 5246 6.2.3
MAX_HANDSHAKE_MESSAGE = 64 * 1024  # this engine's bound on one reassembled handshake message
#: The anomaly kinds of ``error`` (the ``sessions`` table's ``anomaly``; docs/REPORTS.md).
ANOMALIES: tuple[str, ...] = ("tls-bad-record", "tls-record-too-large", "tls-handshake-too-large")


class Record(NamedTuple):
    content_type: int
    version: int
    header: bytes  # the 5 header bytes (the AAD of TLS 1.3)
    fragment: bytes


# Record(...) without the Python-level __new__ of NamedTuple: the same tuple, made once per record on the hot path
_new_record: Callable[[type[Record], tuple[int, int, bytes, bytes]], Record] = tuple.__new__


class RecordReader:
    """Records out of a byte stream. Buffers at most one incomplete record (header + ``max_length`` bytes)."""

    __slots__ = ("_buffer", "_need", "max_length", "error")

    def __init__(self, max_length: int = MAX_TLS12_CIPHERTEXT) -> None:
        self._buffer = bytearray()
        self._need = 0  # bytes the buffered record needs before it is worth parsing again
        self.max_length = max_length
        self.error: tuple[str, str] | None = None

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete record held back."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Record]:
        """The records completed by ``data``. After an error, ``error`` is set and nothing more is returned."""
        if self.error is not None:
            return []
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._need:
                return []
            view = bytes(self._buffer)
            self._buffer = bytearray()
        else:
            view = bytes(data)
            if len(view) >= HEADER_LENGTH:  # the commonest case: one whole record, nothing buffered
                content_type = view[0]
                length = (view[3] << 8) | view[4]
                if (len(view) == HEADER_LENGTH + length and CHANGE_CIPHER_SPEC <= content_type <= HEARTBEAT
                        and view[1] == 3 and length <= self.max_length):
                    return [_new_record(Record, (content_type, 0x300 | view[2], view[:5], view[5:]))]
        records: list[Record] = []
        pos = 0
        end_of_data = len(view)
        need = HEADER_LENGTH
        while end_of_data - pos >= HEADER_LENGTH:
            content_type = view[pos]
            major = view[pos + 1]
            if not CHANGE_CIPHER_SPEC <= content_type <= HEARTBEAT or major != 3:
                self.error = ("tls-bad-record", f"content type {content_type}, version byte 0x{major:02x}")
                return records
            length = (view[pos + 3] << 8) | view[pos + 4]
            if length > self.max_length:
                self.error = ("tls-record-too-large", f"{length} bytes (limit {self.max_length})")
                return records
            end = pos + HEADER_LENGTH + length
            if end > end_of_data:
                need = HEADER_LENGTH + length
                break
            records.append(_new_record(
                Record, (content_type, (major << 8) | view[pos + 2], view[pos : pos + 5], view[pos + 5 : end])))
            pos = end
        if pos < end_of_data:
            self._buffer = bytearray(view[pos:])
            self._need = need
        return records


class HandshakeReassembler:
    """Handshake messages (type, whole message with its 4-byte header) out of handshake fragments."""

    __slots__ = ("_buffer", "error")

    def __init__(self) -> None:
        self._buffer = b""
        self.error: tuple[str, str] | None = None

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete handshake message held back."""
        return len(self._buffer)

    def feed(self, fragment: bytes) -> list[tuple[int, bytes]]:
        if self.error is not None:
            return []
        data = self._buffer + fragment if self._buffer else fragment
        messages: list[tuple[int, bytes]] = []
        pos = 0
        while len(data) - pos >= 4:
            length = int.from_bytes(data[pos + 1 : pos + 4], "big")
            if length > MAX_HANDSHAKE_MESSAGE:
                self.error = ("tls-handshake-too-large", f"message type {data[pos]}, {length} bytes")
                self._buffer = b""
                return messages
            end = pos + 4 + length
            if end > len(data):
                break
            messages.append((data[pos], data[pos:end]))
            pos = end
        self._buffer = data[pos:]
        return messages
