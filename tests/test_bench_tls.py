"""The TLS benchmark capture (``benchmarks/make_capture.py --tls``) carries the plaintext capture's traffic.

A small capture is made both ways with the same parameters; ``dissect report --tls-keylog`` on the TLS one must
give the plaintext one's WebSocket, Socket.IO and HTTP rows (all but the timestamps, which move with the extra
handshake packets), every session decrypted; without the key log no WebSocket frame is seen (the bytes are really
encrypted). When tshark is installed, Wireshark decrypting with the same key log must see one WebSocket frame per
ws_frames row and agree that the handshake was TLS 1.3 with TLS_AES_128_GCM_SHA256.

The last tests pin the fast paths this traffic takes (one whole record per segment; TLS 1.3 inner plaintext
without padding) to the general ones: the same records, content types, errors.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dissect.protocols.tls.cipher import DecryptError, Tls13Protection
from dissect.protocols.tls.keys import traffic_key_iv
from dissect.protocols.tls.records import MAX_TLS13_CIPHERTEXT, RecordReader
from dissect.protocols.tls.suites import SUITES

ROOT = Path(__file__).resolve().parent.parent
MAKE = ROOT / "benchmarks" / "make_capture.py"
PACKETS, CONNECTIONS = 2000, 20
# times, and Wireshark frame numbers (the TLS capture has two more packets per connection)
TIMES = {"ts", "ts_first", "ts_last", "ts_request", "ts_response", "ts_end", "latency_ms", "frame",
         "frame_request", "frame_response"}


def _make(out: Path, *extra: str) -> None:
    subprocess.run([sys.executable, str(MAKE), "--packets", str(PACKETS), "--connections", str(CONNECTIONS),
                    "--out", str(out), *extra], check=True, capture_output=True)


def _report(capture: Path, out: Path, *extra: str) -> dict[str, list[dict[str, str]]]:
    subprocess.run([sys.executable, "-m", "dissect", "report", str(capture), "--out", str(out), "--no-html",
                    "--quiet", "--jobs", "1", *extra], check=True, cwd=ROOT, capture_output=True)
    tables = {}
    for name in ("ws_frames", "ws_messages", "sio_packets", "http", "sessions"):
        with open(out / f"{name}.csv", newline="") as f:
            tables[name] = list(csv.DictReader(f))
    return tables


def _without_times(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in TIMES} for row in rows]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bench_tls")
    _make(tmp / "plain.pcap")
    _make(tmp / "tls.pcap", "--tls")
    return {"dir": tmp, "plain": tmp / "plain.pcap", "tls": tmp / "tls.pcap", "keys": tmp / "tls.keys"}


def test_tls_capture_decrypts_to_the_plaintext_rows(made: dict[str, Path]) -> None:
    assert made["keys"].read_text().count("\n") == 4 * CONNECTIONS
    plain = _report(made["plain"], made["dir"] / "out_plain")
    tls = _report(made["tls"], made["dir"] / "out_tls", "--tls-keylog", str(made["keys"]))
    assert len(plain["ws_frames"]) > 1000
    for table in ("ws_frames", "ws_messages", "sio_packets", "http"):
        assert len(tls[table]) == len(plain[table]), table
        assert _without_times(tls[table]) == _without_times(plain[table]), table
    assert len(tls["sessions"]) == CONNECTIONS
    for row in tls["sessions"]:
        assert (row["tls_version"], row["tls_cipher"], row["sni"], row["alpn"], row["tls_decrypted"]) == (
            "TLS 1.3", "TLS_AES_128_GCM_SHA256", "localhost", "http/1.1", "true")
        assert row["app_protocol"] == "socketio" and row["anomaly"] == ""


def test_tls_capture_without_keys_shows_no_websocket(made: dict[str, Path]) -> None:
    tables = _report(made["tls"], made["dir"] / "out_nokeys")
    assert tables["ws_frames"] == [] and tables["sio_packets"] == []
    assert {row["tls_decrypted"] for row in tables["sessions"]} == {"false"}


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_decrypts_every_frame(made: dict[str, Path]) -> None:
    tshark = ["tshark", "-r", str(made["tls"]), "-o", f"tls.keylog_file:{made['keys']}"]
    frames = subprocess.run([*tshark, "-Y", "websocket", "-T", "fields", "-e", "frame.number"],
                            check=True, capture_output=True, text=True).stdout.split()
    plain = _report(made["plain"], made["dir"] / "out_plain_ts")
    assert len(frames) == len(plain["ws_frames"])  # one WebSocket frame per segment in this capture
    hellos = subprocess.run([*tshark, "-Y", "tls.handshake.type == 2", "-T", "fields", "-e",
                             "tls.handshake.extensions.supported_version", "-e", "tls.handshake.ciphersuite"],
                            check=True, capture_output=True, text=True).stdout.splitlines()
    assert hellos == ["0x0304\t0x1301"] * CONNECTIONS
    finished = subprocess.run([*tshark, "-Y", "tls.handshake.type == 20", "-T", "fields", "-e", "frame.number"],
                              check=True, capture_output=True, text=True).stdout.split()
    assert len(finished) == 2 * CONNECTIONS  # both Finished decrypted under the handshake keys


def _record(content_type: int, fragment: bytes, version: bytes = b"\x03\x03") -> bytes:
    return bytes([content_type]) + version + len(fragment).to_bytes(2, "big") + fragment


@pytest.mark.parametrize("bad", [
    _record(17, b"x"),  # not a record type
    b"\x17\x04\x03\x00\x01x",  # not version 3.x
    _record(23, bytes(MAX_TLS13_CIPHERTEXT + 1)),  # over the TLS 1.3 limit
])
def test_one_whole_record_per_feed_gives_what_the_whole_stream_gives(bad: bytes) -> None:
    good = [_record(22, b"hello", b"\x03\x01"), _record(23, bytes(300)), _record(23, b""), _record(21, b"\x01\x00")]
    stream = b"".join(good) + bad + _record(23, b"after")
    whole = RecordReader(MAX_TLS13_CIPHERTEXT)
    at_once = whole.feed(stream)
    one_by_one = RecordReader(MAX_TLS13_CIPHERTEXT)
    each = [r for piece in [*good, bad, _record(23, b"after")] for r in one_by_one.feed(piece)]
    assert each == at_once and len(each) == len(good)
    assert [(r.content_type, r.version, r.header, r.fragment) for r in each][0] == (22, 0x0301, good[0][:5], b"hello")
    assert one_by_one.error == whole.error and whole.error is not None


def test_tls13_inner_plaintext_with_and_without_padding() -> None:
    suite, secret = SUITES[0x1301], bytes(range(32))
    key, iv = traffic_key_iv(secret, suite.key_length, suite.hash_name)

    def seal(seq: int, inner: bytes) -> tuple[bytes, bytes]:
        header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
        nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
        return header, AESGCM(key).encrypt(nonce, inner, header)

    protection = Tls13Protection(suite, secret)
    assert protection.open(*seal(0, b"data\x17")) == (23, b"data")
    assert protection.open(*seal(1, b"data\x00\x17\x00\x00\x00")) == (23, b"data\x00")  # padding stripped
    assert protection.open(*seal(2, b"\x16")) == (22, b"")
    for inner in (b"\x00\x00", b""):  # no content type at all
        with pytest.raises(DecryptError) as raised:
            Tls13Protection(suite, secret).open(*seal(0, inner))
        assert raised.value.kind == "tls-bad-inner-plaintext", inner
