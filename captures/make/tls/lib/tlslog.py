"""TLS side of the Python peers' own logs (the counterpart of tlslog.js).

TlsLog.setup(ctx, keylog) makes an ssl.SSLContext record, for every connection made with it:
  - the secrets, through SSLContext.keylog_filename (OpenSSL's own NSS key log writer); the lines of
    one connection are the ones carrying its ClientHello random;
  - the ClientHello/ServerHello randoms and the ServerHello's extension types (so the peer knows
    whether encrypt_then_mac / extended_master_secret were agreed), through the handshake messages
    its own OpenSSL handed to SSLContext._msg_callback (CPython's debugging hook);
  - the SNI the server was asked for (sni_callback, servers only).
TlsLog.note(sslobj_or_socket, client_port=..) adds what the ssl module reports once the handshake
is done: version(), cipher(), selected_alpn_protocol(), session_reused, and the ports.
dump() returns the rows in the shape tlslog.js writes. Nothing here reads the capture.
"""

from __future__ import annotations

import ssl
import time

HANDSHAKE = 22
CLIENT_HELLO, SERVER_HELLO = 1, 2
EXT_NAMES = {0: "server_name", 10: "supported_groups", 11: "ec_point_formats", 16: "alpn", 22: "encrypt_then_mac",
             23: "extended_master_secret", 35: "session_ticket", 43: "supported_versions", 51: "key_share",
             41: "pre_shared_key", 65281: "renegotiation_info"}


def _server_hello(data: bytes) -> dict:
    """Fields of a ServerHello handshake message (type and 24-bit length included)."""
    body = data[4:]
    sid_len = body[34]
    p = 35 + sid_len
    suite = int.from_bytes(body[p:p + 2], "big")
    p += 3  # cipher suite, compression method
    exts = []
    if p + 2 <= len(body):
        end = p + 2 + int.from_bytes(body[p:p + 2], "big")
        p += 2
        while p + 4 <= end:
            t, n = int.from_bytes(body[p:p + 2], "big"), int.from_bytes(body[p + 2:p + 4], "big")
            exts.append(t)
            p += 4 + n
    return {"server_random": body[2:34].hex(), "session_id_len": sid_len, "cipher_id": f"0x{suite:04X}",
            "server_hello_extensions": [EXT_NAMES.get(t, str(t)) for t in exts]}


class TlsLog:
    def __init__(self, role: str) -> None:
        self.role = role
        self.keylogs: list[str] = []
        self._recs: dict[int, tuple[object, dict]] = {}  # id(conn object) -> (object, row); keeps it alive
        self.rows: list[dict] = []

    def _rec(self, obj) -> dict:
        key = id(obj)
        if key not in self._recs:
            row = {"t_start": time.time()}
            self._recs[key] = (obj, row)
            self.rows.append(row)
        return self._recs[key][1]

    def setup(self, ctx: ssl.SSLContext, keylog: str) -> ssl.SSLContext:
        ctx.keylog_filename = keylog
        if keylog not in self.keylogs:
            self.keylogs.append(keylog)

        def msg(conn, direction, version, content_type, msg_type, data):
            if content_type != HANDSHAKE or not data:
                return
            if msg_type == CLIENT_HELLO and data[0] == CLIENT_HELLO:
                self._rec(conn)["client_random"] = data[6:38].hex()
            elif msg_type == SERVER_HELLO and data[0] == SERVER_HELLO:
                self._rec(conn).update(_server_hello(data))

        ctx._msg_callback = msg
        if self.role == "server":
            def sni(sslobj, name, _ctx):
                self._rec(sslobj)["sni"] = name
            ctx.sni_callback = sni
        return ctx

    def note(self, conn, *, client: tuple, server: tuple, sni: str | None = None, **extra) -> dict:
        """conn: the SSLSocket or SSLObject (the object the _msg_callback saw)."""
        row = self._rec(conn)
        name, _proto, _bits = conn.cipher()
        row.update({
            "t_secure": time.time(),
            "client_ip": client[0], "client_port": client[1], "server_ip": server[0], "server_port": server[1],
            "version": conn.version(), "cipher": IANA.get(name), "cipher_openssl": name,
            "alpn": conn.selected_alpn_protocol(), "session_reused": conn.session_reused,
        })
        if self.role == "client":
            row["sni"] = sni
        row.update(extra)
        return row

    def dump(self) -> list[dict]:
        lines = []
        for path in self.keylogs:
            with open(path) as f:
                lines += [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
        out = []
        for row in self.rows:
            r = dict(row)
            if "server_hello_extensions" in r:
                r["encrypt_then_mac"] = "encrypt_then_mac" in r["server_hello_extensions"]
                r["extended_master_secret"] = "extended_master_secret" in r["server_hello_extensions"]
            r["keylog"] = [ln for ln in lines if ln.split(" ")[1] == r.get("client_random")]
            out.append(r)
        return out


# OpenSSL cipher names -> IANA names (from `openssl ciphers -stdname`), for the suites used here.
IANA = {
    "TLS_AES_128_GCM_SHA256": "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384": "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256": "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES128-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "ECDHE-RSA-AES256-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "ECDHE-RSA-AES128-SHA": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "ECDHE-RSA-AES256-SHA": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
}


def server_context(cert_dir: str, log: TlsLog, keylog: str, *, max_version=None, ciphers=None, alpn=None,
                   options: int = 0) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{cert_dir}/cert.pem", f"{cert_dir}/key.pem")
    if max_version:
        ctx.maximum_version = max_version
    if ciphers:
        ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    ctx.options |= options
    return log.setup(ctx, keylog)


def client_context(cert_dir: str, log: TlsLog, keylog: str, *, min_version=None, max_version=None, ciphers=None,
                   alpn=None, options: int = 0) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(f"{cert_dir}/cert.pem")
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if ciphers:
        ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    ctx.options |= options
    return log.setup(ctx, keylog)


# OpenSSL's SSL_OP_NO_ENCRYPT_THEN_MAC (1 << 19; the ssl module has no name for it, but passes the bit on)
OP_NO_ENCRYPT_THEN_MAC = 1 << 19
