"""The TLS benchmark capture (``benchmarks/make_capture.py --tls``) carries the plaintext capture's traffic.

A small capture is made both ways with the same parameters; ``dissect report --tls-keylog`` on the TLS one must
give the plaintext one's WebSocket, Socket.IO and HTTP rows (all but the timestamps, which move with the extra
handshake packets), every session decrypted; without the key log no WebSocket frame is seen (the bytes are really
encrypted). When tshark is installed, Wireshark decrypting with the same key log must see one WebSocket frame per
ws_frames row and agree that the handshake was TLS 1.3 with TLS_AES_128_GCM_SHA256.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKE = ROOT / "benchmarks" / "make_capture.py"
PACKETS, CONNECTIONS = 2000, 20
TIMES = {"ts", "ts_first", "ts_last", "ts_request", "ts_response", "ts_end", "latency_ms"}


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
