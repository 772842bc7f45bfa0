"""Cipher suites by IANA code: what the record layer needs to decrypt them, and the names of the others.

Only AEAD suites (AES-GCM, ChaCha20-Poly1305) and TLS 1.2 AES-CBC suites with HMAC are decryptable here. Any other
suite is still reported by its IANA name (``suite_name``); decryption then says "unsupported cipher suite".
"""

from __future__ import annotations

from typing import NamedTuple


class CipherSuite(NamedTuple):
    """What decryption needs from a suite (RFC 5246 6.3, RFC 5288, RFC 7905, RFC 8446 B.4)."""

    code: int
    name: str
    kind: str  # "aead-gcm" | "chacha" | "cbc"
    key_length: int
    hash_name: str  # PRF (TLS 1.2) or HKDF (TLS 1.3) hash: "sha256" | "sha384"
    mac_name: str | None  # CBC suites only: "sha1" | "sha256" | "sha384"
    fixed_iv_length: int  # from the key block / HKDF: 12 (TLS 1.3, ChaCha), 4 (TLS 1.2 GCM salt), 0 (CBC)
    tls13: bool

    @property
    def mac_length(self) -> int:
        return {"sha1": 20, "sha256": 32, "sha384": 48}.get(self.mac_name or "", 0)


def _suite(code: int, name: str) -> CipherSuite:
    """Derive a suite's parameters from its IANA name, which states them all."""
    tls13 = "_WITH_" not in name  # TLS 1.3 suite names name no key exchange
    key_length = 32 if ("AES_256" in name or "CHACHA20" in name) else 16
    if "CHACHA20" in name:
        return CipherSuite(code, name, "chacha", 32, "sha256", None, 12, tls13)
    hash_name = "sha384" if name.endswith("SHA384") else "sha256"
    if "_GCM_" in name:
        return CipherSuite(code, name, "aead-gcm", key_length, hash_name, None, 12 if tls13 else 4, tls13)
    mac_name = {"SHA": "sha1", "SHA256": "sha256", "SHA384": "sha384"}[name.rsplit("_", 1)[1]]
    return CipherSuite(code, name, "cbc", key_length, hash_name, mac_name, 0, tls13)


_DECRYPTABLE = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
}

SUITES: dict[int, CipherSuite] = {code: _suite(code, name) for code, name in _DECRYPTABLE.items()}

# Suites seen in the wild that are named but not decrypted here.
OTHER_NAMES: dict[int, str] = {
    0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    0x5600: "TLS_FALLBACK_SCSV",
    0xC008: "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
    0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC0AC: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
    0xC0AD: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
    0xC0AE: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
    0xC0AF: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
}


def suite_name(code: int) -> str:
    """The IANA name of a cipher suite code; "GREASE" for RFC 8701 values; else its hex code."""
    suite = SUITES.get(code)
    if suite is not None:
        return suite.name
    if code in OTHER_NAMES:
        return OTHER_NAMES[code]
    if code & 0x0F0F == 0x0A0A and code >> 12 == (code >> 4) & 0xF:
        return "GREASE"
    return f"0x{code:04X}"
