"""The NSS key log format (SSLKEYLOGFILE): ``LABEL <client_random hex64> <secret hex>`` per line.

Written by browsers, curl, node ``--tls-keylog``, Python ``SSLContext.keylog_filename``, and carried inside pcapng
Decryption Secrets Blocks. Lines are keyed by the ClientHello random. ``#`` starts a comment; blank lines are
skipped; CRLF is fine. A malformed line (wrong field count, bad hex, wrong lengths) is counted in ``bad_lines``;
a well-formed line with a label this engine does not use (e.g. ``RSA``, QUIC labels) in ``ignored_lines``.
No file I/O here: callers read the text and pass it in (``from_text`` / ``add_text``).
"""

from __future__ import annotations

import binascii

# label -> allowed secret lengths in bytes
LABELS: dict[str, tuple[int, ...]] = {
    "CLIENT_RANDOM": (48,),  # TLS 1.2 master secret
    "CLIENT_EARLY_TRAFFIC_SECRET": (32, 48),
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET": (32, 48),
    "SERVER_HANDSHAKE_TRAFFIC_SECRET": (32, 48),
    "CLIENT_TRAFFIC_SECRET_0": (32, 48),
    "SERVER_TRAFFIC_SECRET_0": (32, 48),
    "EXPORTER_SECRET": (32, 48),
}


class KeyLog:
    """Secrets by client random. It may grow while connections use it (lookups happen at ServerHello time)."""

    def __init__(self) -> None:
        self._secrets: dict[bytes, dict[str, bytes]] = {}
        self._count = 0
        self.bad_lines = 0
        self.ignored_lines = 0

    @classmethod
    def from_text(cls, text: str | bytes) -> KeyLog:
        """A key log holding the secrets of ``text`` (the contents of a key log file)."""
        keylog = cls()
        keylog.add_text(text)
        return keylog

    def add_text(self, text: str | bytes) -> int:
        """Add the lines of ``text``; return how many secrets were added or replaced."""
        if isinstance(text, (bytes, bytearray, memoryview)):
            text = bytes(text).decode("ascii", errors="replace")
        added = 0
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 3:
                self.bad_lines += 1
                continue
            label, random_hex, secret_hex = fields
            try:
                client_random = binascii.unhexlify(random_hex)
                secret = binascii.unhexlify(secret_hex)
            except (binascii.Error, ValueError):
                self.bad_lines += 1
                continue
            lengths = LABELS.get(label)
            if lengths is None:
                self.ignored_lines += 1
                continue
            if len(client_random) != 32 or len(secret) not in lengths:
                self.bad_lines += 1
                continue
            entry = self._secrets.setdefault(client_random, {})
            if label not in entry:
                self._count += 1
            entry[label] = secret
            added += 1
        return added

    def copy(self) -> KeyLog:
        """An independent key log with the same secrets (a run adds its captures' secrets to its own)."""
        other = KeyLog()
        other._secrets = {random: dict(labels) for random, labels in self._secrets.items()}
        other._count = self._count
        other.bad_lines = self.bad_lines
        other.ignored_lines = self.ignored_lines
        return other

    def secrets_for(self, client_random: bytes) -> dict[str, bytes]:
        """The secrets logged for a ClientHello random, by label (a copy; empty when none)."""
        return dict(self._secrets.get(bytes(client_random), {}))

    def __len__(self) -> int:
        """The number of secrets held (one per client random and label)."""
        return self._count

    def __repr__(self) -> str:
        return f"KeyLog({self._count} secrets, {len(self._secrets)} sessions, {self.bad_lines} bad lines)"
