"""Which record protections a connection gets from the key log, decided once at ServerHello time.

TLS 1.2: CLIENT_RANDOM (the master secret) gives the key block; each side uses its half from its
ChangeCipherSpec on. TLS 1.3: each side starts with its handshake traffic secret and moves to its application
traffic secret (``next_secret``) after its Finished. When a handshake secret is missing, the application key is
a ``trial`` key: records it does not open are skipped (``skippable`` says why) until it opens one. A client that
announced 0-RTT data starts with CLIENT_EARLY_TRAFFIC_SECRET (or nothing) and its handshake key as the trial.
"""

from __future__ import annotations

from typing import NamedTuple

from .cipher import Tls13Protection
from .handshake import ClientHelloInfo, ServerHelloInfo, version_name
from .keylog import KeyLog
from .keys import KeyBlock, key_block
from .suites import SUITES, suite_name


class Tls12Keys(NamedTuple):
    key_block: KeyBlock
    encrypt_then_mac: bool


class SideKeys(NamedTuple):
    """One TLS 1.3 side's keys right after the ServerHello."""

    protection: Tls13Protection | None
    trial: Tls13Protection | None
    skippable: str | None
    next_secret: bytes | None


class Tls13Keys(NamedTuple):
    client: SideKeys
    server: SideKeys
    early_data_note: str | None  # set when the client announced 0-RTT data


def select_keys(keylog: KeyLog | None, hello: ClientHelloInfo | None, server: ServerHelloInfo
                ) -> Tls12Keys | Tls13Keys | str:
    """The keys of a connection, or the reason (``Undecryptable``) why there are none."""
    suite = SUITES.get(server.cipher_suite)
    tls13 = server.version == 0x0304
    if keylog is None:
        return "no keys"
    if server.version not in (0x0303, 0x0304):
        return f"unsupported version {version_name(server.version)}"
    if suite is None or suite.tls13 != tls13:
        return f"unsupported cipher suite {suite_name(server.cipher_suite)}"
    if hello is None:
        return "no handshake"
    secrets = keylog.secrets_for(hello.random)
    if not tls13:
        master_secret = secrets.get("CLIENT_RANDOM")
        if master_secret is None:
            return "no key for this session"
        keys = key_block(master_secret, hello.random, server.random, suite)
        return Tls12Keys(keys, suite.kind == "cbc" and server.encrypt_then_mac)
    client_hs = secrets.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET")
    server_hs = secrets.get("SERVER_HANDSHAKE_TRAFFIC_SECRET")
    client_app = secrets.get("CLIENT_TRAFFIC_SECRET_0")
    server_app = secrets.get("SERVER_TRAFFIC_SECRET_0")
    early = secrets.get("CLIENT_EARLY_TRAFFIC_SECRET")
    if not (client_hs or server_hs or client_app or server_app):
        return "no key for this session"

    def protection(secret: bytes | None) -> Tls13Protection | None:
        return Tls13Protection(suite, secret) if secret else None

    if server_hs:
        server_keys = SideKeys(protection(server_hs), None, None, server_app)
    else:
        skipped = "no SERVER_HANDSHAKE_TRAFFIC_SECRET: the server's handshake records are skipped"
        server_keys = SideKeys(None, protection(server_app), skipped if server_app else None, server_app)
    note = None
    if hello.early_data:
        skipped = "records no client key opens are skipped (0-RTT data or handshake records)"
        client_keys = SideKeys(protection(early), protection(client_hs or client_app), skipped, client_app)
        note = "0-RTT data offered: decrypted" if early else "0-RTT data offered: no CLIENT_EARLY_TRAFFIC_SECRET"
    elif client_hs:
        client_keys = SideKeys(protection(client_hs), None, None, client_app)
    else:
        skipped = "no CLIENT_HANDSHAKE_TRAFFIC_SECRET: the client's handshake records are skipped"
        client_keys = SideKeys(None, protection(client_app), skipped if client_app else None, client_app)
    return Tls13Keys(client_keys, server_keys, note)
