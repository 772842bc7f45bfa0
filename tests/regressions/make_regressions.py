"""Write the regression captures of this directory (minimised from what the fuzzer and the
hostile tests found; see docs/fuzzing.md). Run from the repository root:

    python -m tests.regressions.make_regressions

Each ``<name>.pcap[ng]`` gets a ``<name>.json``: what went wrong and what a fixed dissect must
report (checked by ``tests/test_hostile.py::test_regression_capture``):

- ``reader_warning``: the capture is damaged: summary.json must carry at least one reader warning;
- ``http_targets``: HTTP exchanges before the damage that must still be in the ``http`` table;
- ``anomalies``: tags that must appear in the ``anomaly`` column of some table;
- ``handshakes``: ``[layer, ok]`` rows that must be in the ``handshakes`` table.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from tests.fuzz.traffic import (
    C2S,
    EIO4_OPEN,
    S2C,
    blocks,
    c2s_text,
    conversation,
    http_exchange,
    pcap,
    s2c_text,
    ws_upgrade,
)

HERE = Path(__file__).parent


def _epbs(steps: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    out = []
    for ts, frame in conversation(steps):
        ticks = round(ts * 1e6)
        out.append((6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)) + frame))
    return out


IDB_ETHERNET = (1, struct.pack("<HHI", 1, 0, 0))


def _sio_ws(*s2c_after_open: bytes) -> bytes:
    steps = ws_upgrade("/socket.io/?EIO=4&transport=websocket") + [s2c_text(EIO4_OPEN), c2s_text(b"40")]
    steps += [s2c_text(p) for p in s2c_after_open] + [c2s_text(b'42["after"]')]
    return pcap(steps)


def _polling_error(body: bytes) -> bytes:
    return pcap([
        (C2S, b"GET /socket.io/?EIO=4&transport=polling&t=1 HTTP/1.1\r\nHost: example\r\n\r\n"),
        (S2C, b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
         % (len(body), body)),
    ])


def _jsonp(body: bytes) -> bytes:
    return pcap([
        (C2S, b"GET /socket.io/?EIO=3&transport=polling&j=0&t=1 HTTP/1.1\r\nHost: example\r\n\r\n"),
        (S2C, b"HTTP/1.1 200 OK\r\nContent-Type: text/javascript; charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s"
         % (len(body), body)),
    ])


NESTED = b"[" * 5000
# A handshake GET whose transport parameter carries a comma, a newline and a formula.
EVIL_TRANSPORT = b"/socket.io/?EIO=4&transport=web,socket%0A9,tcp,=HYPERLINK(%22http://x%22)&t=1"

REGRESSIONS: dict[str, tuple[bytes, dict[str, Any]]] = {
    "ws_length_msb_set.pcap": (
        pcap(ws_upgrade() + [c2s_text(b"hi"), (S2C, bytes((0x82, 127)) + struct.pack("!Q", 1 << 63) + b"x" * 64)]),
        {"bug": "dissect.analyze() raises TypeError in dissect/tables.py _tidy (astype Int64): ws_frames.payload_len "
                "and ws_messages.payload_bytes/wire_bytes hold the 64-bit length 2**63 (> int64)",
         "anomalies": ["length-msb-set", "message-too-large"], "handshakes": [["websocket", True]]},
    ),
    "pcapng_idb_empty_at_end.pcapng": (
        blocks(IDB_ETHERNET, *_epbs(http_exchange("/before")), (1, b"")),
        {"bug": "struct.error in dissect/reader.py CaptureReader._idb: an Interface Description Block of 12 "
                "bytes (no body) as the last block is read past the end of the data",
         "reader_warning": True, "http_targets": ["/before"]},
    ),
    "pcapng_idb_empty_only.pcapng": (
        blocks((1, b"")),
        {"bug": "struct.error from CaptureReader.__init__ (_peek_pcapng_resolution -> _idb): the CLI "
                "prints a traceback instead of a warning or one line",
         "reader_warning": True},
    ),
    "pcapng_obsolete_packet_block_short.pcapng": (
        blocks(IDB_ETHERNET, *_epbs(http_exchange("/before")), (2, b"\x00\x00")),
        {"bug": "struct.error in dissect/reader.py CaptureReader._pcapng: an obsolete Packet Block (type 2) "
                "shorter than its 20 fixed bytes is unpacked past the end of the data",
         "reader_warning": True, "http_targets": ["/before"]},
    ),
    "pcapng_idb_tsoffset_cut.pcapng": (
        blocks((1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 14, 8))),
        {"bug": "struct.error in dissect/reader.py CaptureReader._idb: an if_tsoffset option (code 14, "
                "length 8) whose value runs past the end of the file; raised from CaptureReader.__init__",
         "reader_warning": True},
    ),
    "eio_open_nested_json.pcap": (
        _sio_ws(b"0" + NESTED),
        {"bug": "RecursionError in dissect/engineio.py EngineIO._open: json.loads of an open packet nested "
                "5000 deep; only ValueError/UnicodeDecodeError are caught",
         "anomalies": ["eio-bad-open"], "handshakes": [["websocket", True]]},
    ),
    "sio_connect_error_nested_json.pcap": (
        _sio_ws(b"44" + NESTED),
        {"bug": "RecursionError in dissect/socketio.py connect_error_message: json.loads of a CONNECT_ERROR "
                "payload nested 5000 deep",
         "handshakes": [["websocket", True]]},
    ),
    "eio_error_body_nested_json.pcap": (
        _polling_error(b'{"code":' + NESTED),
        {"bug": "RecursionError in dissect/engineio.py _error_message: json.loads of a polling handshake's "
                "error response body nested 5000 deep",
         "handshakes": [["engineio", False]]},
    ),
    "eio_jsonp_nested_json.pcap": (
        _jsonp(b"___eio[0](" + NESTED + b");"),
        {"bug": "RecursionError in dissect/engineio.py _jsonp_response: json.loads of a JSONP literal nested "
                "5000 deep"},
    ),
    "eio_transport_query_csv_injection.pcap": (
        pcap([
            (C2S, b"GET " + EVIL_TRANSPORT + b" HTTP/1.1\r\nHost: example\r\n\r\n"),
            (S2C, b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
        ]),
        {"bug": "CSV injection in dissect/writers.py row_formatter: handshakes.transport is in "
                "records.VOCABULARY_COLUMNS (written without csv_text), but dissect/engineio.py "
                "EngineIO.polling_response takes it from the request's query string (transport=...): a "
                "comma adds cells, %0A adds a row, '=' starts a formula",
         "handshakes": [["engineio", False]]},
    ),
}


def main() -> None:
    for name, (data, meta) in REGRESSIONS.items():
        (HERE / name).write_bytes(data)
        stem = name.rsplit(".", 1)[0]
        (HERE / f"{stem}.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
