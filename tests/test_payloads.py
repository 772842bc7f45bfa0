"""--payloads: whole messages in the rows (ws_messages.payload, sio_packets.data), on the corpus."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import dissect
from dissect import fastpaths
from dissect.cli import main
from dissect.transport.limits import Limits

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
CORPUS = sorted(p for p in CAPTURES.glob("*.pcap*") if not p.with_suffix(".keys").exists()
                and "nokeys" not in p.name)


def keys(p: Path) -> str | None:
    k = p.with_suffix(".keys")
    return str(k) if k.exists() else None


@pytest.mark.parametrize("path", CORPUS + sorted(CAPTURES.glob("tls*.keys")), ids=lambda p: p.name)
def test_payload_sizes_equal_payload_bytes(path: Path) -> None:
    if path.suffix == ".keys":  # a TLS capture: decrypted with its key log
        path = next(p for p in CAPTURES.glob(path.stem + ".pcap*"))
    a = dissect.analyze(str(path), payloads=True, tls_keylog=keys(path))
    m = a.ws_messages
    data = m[m.opcode_name.isin(["text", "binary"]) & m.anomaly.fillna("").eq("")]
    for r in data.itertuples():
        if not isinstance(r.payload, str):  # an empty message: an empty cell (NaN in pandas)
            assert r.payload_bytes == 0
            continue
        raw = r.payload.encode("utf-8") if r.opcode_name == "text" else base64.b64decode(r.payload)
        assert len(raw) == r.payload_bytes
    plain = dissect.analyze(str(path), tls_keylog=keys(path)).ws_messages
    assert plain.payload.isna().all()  # off by default
    assert len(plain) == len(m)


def test_event_data_is_json_whose_first_item_is_the_event() -> None:
    checked = 0
    for path in CORPUS:
        if "sio" not in path.name or "msgpack" in path.name:
            continue
        p = dissect.analyze(str(path), payloads=True).sio_packets
        for r in p[p.sio_type.isin(["EVENT", "BINARY_EVENT"])].itertuples():
            value = json.loads(r.data)
            assert isinstance(value, list) and value[0] == r.event
            checked += 1
        for r in p[p.sio_type.isin(["ACK", "BINARY_ACK"])].itertuples():
            assert isinstance(json.loads(r.data), list)
        for r in p[p.sio_type.eq("BINARY_EVENT")].itertuples():
            assert '"_placeholder":true' in r.data.replace(" ", "")
    assert checked > 100


@pytest.mark.parametrize("name", ["sio4_polling_upgrade.pcapng", "ws_deflate_ctx.pcap", "sio4_websocket.pcap"])
def test_fast_paths_give_the_same_payloads(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = dissect.analyze(str(CAPTURES / name), payloads=True)
    monkeypatch.setattr(fastpaths, "WS_WHOLE_FRAME", False)
    monkeypatch.setattr(fastpaths, "SIO_EVENT_HEADER", False)
    slow = dissect.analyze(str(CAPTURES / name), payloads=True)
    for table in ("ws_messages", "sio_packets"):
        assert fast.table(table).equals(slow.table(table)), table


def test_too_large_message_has_no_payload_and_says_why() -> None:
    a = dissect.analyze(str(CAPTURES / "ws_basic.pcap"), payloads=True, limits=Limits(max_message_bytes=1000,
                                                                                       payloads=True))
    big = a.ws_messages[a.ws_messages.anomaly.fillna("").str.contains("message-too-large")]
    assert len(big) and big.payload.isna().all()


def test_cli_payloads_in_every_format(tmp_path: Path) -> None:
    cap = str(CAPTURES / "sio4_websocket.pcap")
    for fmt in ("csv", "jsonl"):
        out = tmp_path / fmt
        res = CliRunner().invoke(main, ["report", cap, "--out", str(out), "--format", fmt, "--payloads", "-q",
                                        "--no-html", "--jobs", "1"])
        assert res.exit_code == 0, res.output
        back = dissect.Analysis.from_dir(str(out))
        assert back.sio_packets.data.notna().sum() > 10
        assert back.ws_messages.payload.notna().sum() > 10
