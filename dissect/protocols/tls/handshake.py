"""ClientHello, ServerHello and EncryptedExtensions parsing (RFC 8446 4.1.2, 4.1.3, 4.3.1; RFC 5246 7.4.1).

The parsers take a whole handshake message body (without the 4-byte handshake header) and return a NamedTuple, or
a ``ParseFailure`` saying what was wrong. They never raise on any input.
"""

from __future__ import annotations

from typing import NamedTuple

CLIENT_HELLO = 1
SERVER_HELLO = 2
NEW_SESSION_TICKET = 4
END_OF_EARLY_DATA = 5
ENCRYPTED_EXTENSIONS = 8
CERTIFICATE = 11
SERVER_KEY_EXCHANGE = 12
CERTIFICATE_REQUEST = 13
SERVER_HELLO_DONE = 14
CERTIFICATE_VERIFY = 15
CLIENT_KEY_EXCHANGE = 16
FINISHED = 20
KEY_UPDATE = 24

EXT_SERVER_NAME = 0
EXT_ALPN = 16
EXT_ENCRYPT_THEN_MAC = 22
EXT_EXTENDED_MASTER_SECRET = 23
EXT_SESSION_TICKET = 35
EXT_PRE_SHARED_KEY = 41
EXT_EARLY_DATA = 42
EXT_SUPPORTED_VERSIONS = 43

# RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
HELLO_RETRY_REQUEST_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

VERSION_NAMES = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}


def version_name(version: int) -> str:
    """ "TLS 1.3" for 0x0304 and so on; "GREASE" for RFC 8701 values; else the hex code."""
    if version in VERSION_NAMES:
        return VERSION_NAMES[version]
    if version & 0x0F0F == 0x0A0A:
        return "GREASE"
    return f"0x{version:04x}"


class ParseFailure(NamedTuple):
    detail: str


class ClientHelloInfo(NamedTuple):
    random: bytes
    legacy_version: int
    session_id: bytes
    cipher_suites: tuple[int, ...]
    sni: str | None
    alpn: tuple[str, ...]  # the offered protocols, in order
    versions: tuple[int, ...]  # supported_versions, or (legacy_version,) without that extension
    encrypt_then_mac: bool
    extended_master_secret: bool
    session_ticket: bool  # the extension is present (empty: support; non-empty: a ticket offered)
    pre_shared_key: bool
    early_data: bool


class ServerHelloInfo(NamedTuple):
    random: bytes
    legacy_version: int
    session_id: bytes
    cipher_suite: int
    version: int  # supported_versions when present, else legacy_version
    alpn: str | None  # TLS 1.2 only; TLS 1.3 servers put ALPN in EncryptedExtensions
    encrypt_then_mac: bool
    extended_master_secret: bool
    session_ticket: bool
    pre_shared_key: bool  # TLS 1.3: the server accepted a PSK (resumption)
    hello_retry: bool


class _Truncated(Exception):
    pass


class _Reader:
    """Bounds-checked reading of TLS vectors; raises ``_Truncated`` (caught by the parsers)."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise _Truncated(f"needs {n} bytes at offset {self.pos}, {self.end - self.pos} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> _Reader:
        """A reader over the next length-prefixed vector; this reader skips past it."""
        n = self.uint(length_bytes)
        if self.pos + n > self.end:
            raise _Truncated(f"vector of {n} bytes at offset {self.pos}, {self.end - self.pos} left")
        sub = _Reader(self.data, self.pos, self.pos + n)
        self.pos += n
        return sub

    def left(self) -> int:
        return self.end - self.pos

    def take_all(self) -> bytes:
        return self.take(self.left())


def _extensions(r: _Reader) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    if r.left() == 0:  # extensions are optional before TLS 1.3
        return out
    block = r.vector(2)
    while block.left():
        ext_type = block.uint(2)
        out.setdefault(ext_type, block.vector(2).take_all())
    return out


def _alpn_list(data: bytes) -> tuple[str, ...]:
    names = _Reader(data).vector(2)
    out = []
    while names.left():
        out.append(names.vector(1).take_all().decode("ascii", errors="replace"))
    return tuple(out)


def _server_name(data: bytes) -> str | None:
    names = _Reader(data).vector(2)
    while names.left():
        name_type = names.uint(1)
        name = names.vector(2).take_all()
        if name_type == 0:
            return name.decode("ascii", errors="replace")
    return None


def parse_client_hello(body: bytes) -> ClientHelloInfo | ParseFailure:
    try:
        r = _Reader(bytes(body))
        legacy_version = r.uint(2)
        random = r.take(32)
        session_id = r.vector(1).take_all()
        suites_r = r.vector(2)
        suites = tuple(suites_r.uint(2) for _ in range(suites_r.left() // 2))
        r.vector(1)  # legacy_compression_methods
        ext = _extensions(r)
        versions: tuple[int, ...] = (legacy_version,)
        if EXT_SUPPORTED_VERSIONS in ext:
            vr = _Reader(ext[EXT_SUPPORTED_VERSIONS]).vector(1)
            versions = tuple(vr.uint(2) for _ in range(vr.left() // 2))
        return ClientHelloInfo(
            random=random,
            legacy_version=legacy_version,
            session_id=session_id,
            cipher_suites=suites,
            sni=_server_name(ext[EXT_SERVER_NAME]) if ext.get(EXT_SERVER_NAME) else None,
            alpn=_alpn_list(ext[EXT_ALPN]) if EXT_ALPN in ext else (),
            versions=versions,
            encrypt_then_mac=EXT_ENCRYPT_THEN_MAC in ext,
            extended_master_secret=EXT_EXTENDED_MASTER_SECRET in ext,
            session_ticket=EXT_SESSION_TICKET in ext,
            pre_shared_key=EXT_PRE_SHARED_KEY in ext,
            early_data=EXT_EARLY_DATA in ext,
        )
    except _Truncated as exc:
        return ParseFailure(f"ClientHello truncated: {exc}")


def parse_server_hello(body: bytes) -> ServerHelloInfo | ParseFailure:
    try:
        r = _Reader(bytes(body))
        legacy_version = r.uint(2)
        random = r.take(32)
        session_id = r.vector(1).take_all()
        cipher_suite = r.uint(2)
        r.uint(1)  # legacy_compression_method
        ext = _extensions(r)
        version = legacy_version
        if EXT_SUPPORTED_VERSIONS in ext:
            version = _Reader(ext[EXT_SUPPORTED_VERSIONS]).uint(2)
        alpn = _alpn_list(ext[EXT_ALPN]) if EXT_ALPN in ext else ()
        return ServerHelloInfo(
            random=random,
            legacy_version=legacy_version,
            session_id=session_id,
            cipher_suite=cipher_suite,
            version=version,
            alpn=alpn[0] if alpn else None,
            encrypt_then_mac=EXT_ENCRYPT_THEN_MAC in ext,
            extended_master_secret=EXT_EXTENDED_MASTER_SECRET in ext,
            session_ticket=EXT_SESSION_TICKET in ext,
            pre_shared_key=EXT_PRE_SHARED_KEY in ext,
            hello_retry=random == HELLO_RETRY_REQUEST_RANDOM,
        )
    except _Truncated as exc:
        return ParseFailure(f"ServerHello truncated: {exc}")


def parse_encrypted_extensions(body: bytes) -> tuple[str | None, bool] | ParseFailure:
    """(the ALPN protocol the server chose or None, whether it accepted early data) from EncryptedExtensions."""
    try:
        r = _Reader(bytes(body))
        ext = _extensions(r) if r.left() else {}
        alpn = _alpn_list(ext[EXT_ALPN]) if EXT_ALPN in ext else ()
        return (alpn[0] if alpn else None), EXT_EARLY_DATA in ext
    except _Truncated as exc:
        return ParseFailure(f"EncryptedExtensions truncated: {exc}")
