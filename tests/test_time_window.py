"""--since/--until (time windows) and --event on the corpus: the rows of the window are exactly the
unfiltered rows in it, sessions that straddle it keep their context."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

import dissect
from dissect.cli import main

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
TIMES = {"handshakes": "ts_start", "http": "ts_request", "ws_frames": "ts", "ws_messages": "ts_last",
         "sio_packets": "ts"}


def cells(df: pd.DataFrame) -> list[tuple[object, ...]]:
    """Rows as tuples with every missing value as None (pandas may spell it None, NaN or NA)."""
    return [tuple(None if pd.isna(v) else v for v in row) for row in df.astype(object).itertuples(index=False)]


def test_window_rows_are_the_unfiltered_rows_in_the_window() -> None:
    path = str(CAPTURES / "sio4_polling_upgrade.pcapng")
    full = dissect.analyze(path)
    t = full.sio_packets.ts.sort_values().to_numpy()
    # boundaries between two rows' times (float seconds hold about 0.24 us at today's epoch)
    k, m = len(t) // 3, 2 * len(t) // 3
    lo, hi = float(t[k - 1] + t[k]) / 2, float(t[m] + t[m + 1]) / 2
    cut = dissect.analyze(path, since=lo, until=hi)
    for table, col in TIMES.items():
        want = full.table(table)
        want = want[(want[col] >= lo) & (want[col] <= hi)].reset_index(drop=True)
        got = cut.table(table).reset_index(drop=True)
        assert cells(got) == cells(want), table
    s = full.sessions
    kept = s[(s.ts_last >= lo) & (s.ts_first <= hi)]
    assert list(cut.sessions.session_id) == list(kept.session_id)
    # a session that straddles the window keeps its context: its sio rows in the window are there
    # although its Engine.IO handshake (before the window) is not
    assert len(cut.sio_packets) and "engineio" not in set(cut.handshakes.layer)


def test_iso_and_epoch_agree() -> None:
    path = str(CAPTURES / "sio4_websocket.pcap")
    full = dissect.analyze(path)
    t = float(full.sio_packets.ts.iloc[10])
    iso = dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()
    a = dissect.analyze(path, since=t)
    b = dissect.analyze(path, since=iso)
    assert len(a.sio_packets) == len(b.sio_packets) == len(full.sio_packets[full.sio_packets.ts >= t - 1e-6])


def test_event_keeps_the_event_and_its_acks() -> None:
    path = str(CAPTURES / "sio4_websocket.pcap")
    full = dissect.analyze(path).sio_packets
    got = dissect.analyze(path, event="chat message").sio_packets
    want = full[(full.event == "chat message") | (full.acked_event == "chat message")]
    assert len(got) == len(want) > 2 and set(got.sio_type) == {"EVENT", "ACK"}


def test_cli_time_options() -> None:
    path = str(CAPTURES / "sio4_websocket.pcap")
    bad = CliRunner().invoke(main, ["summary", path, "--since", "yesterday"])
    assert bad.exit_code == 2 and "neither epoch seconds nor an ISO 8601 time" in bad.output
    backwards = CliRunner().invoke(main, ["summary", path, "--since", "20", "--until", "10"])
    assert backwards.exit_code == 2
    ok = CliRunner().invoke(main, ["summary", path, "--until", "1", "--json", "-q"])
    assert ok.exit_code == 0 and '"sio_packets": 0' in ok.output
