"""The decrypted tables against Wireshark decrypting the same captures with the same keys
(``tshark -o tls.keylog_file``; Decryption Secrets Blocks without it): TCP streams, roles, bytes,
HTTP exchanges, WebSocket handshakes and every WebSocket frame agree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dissect.report.crosscheck import compare

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
WITH_KEYS = sorted(p for p in CAPTURES.glob("tls*.pcap*") if p.with_suffix(".keys").exists()
                   or "dsb" in p.name)

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


@pytest.mark.parametrize("path", WITH_KEYS, ids=[p.name for p in WITH_KEYS])
def test_decrypted_tables_agree_with_wireshark(path: Path) -> None:
    keys = path.with_suffix(".keys")
    res = compare(str(path), "tshark", str(keys) if keys.exists() else None)
    assert res.ok, res.render()
    decrypted = res.compared.get("http", 0) + res.compared.get("ws_frames", 0)
    assert decrypted > 0 or "h2" in path.name  # Wireshark and dissect saw inside the TLS


def test_corpus_has_every_kind() -> None:
    names = {p.name for p in WITH_KEYS}
    assert len(WITH_KEYS) >= 7 and "tls13_dsb.pcapng" in names
