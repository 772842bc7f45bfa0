"""sio_sockets: one row per Socket.IO socket and why it ended, checked against what the peers
recorded (``captures/*.truth.json``: ``sockets`` for the lifecycle scenarios, ``connections`` with
``closed_by`` / ``server_close_reason`` for the older ones). See captures/make/sio/README.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import dissect
from dissect.protocols.socketio.sockets import (
    PING_TIMEOUT,
    PONG_LATE,
    SERVER_SHUTTING_DOWN,
    SessionSockets,
    offset_time_ms,
)
from dissect.records import C2S, S2C, SioSocket

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
MS = 1_000_000

# python-socketio 5 names two reasons its own way; the table uses the socket.io server's words.
PYTHON_WORDS = {"server disconnect": "server namespace disconnect",
                "client disconnect": "client namespace disconnect"}

# Captures whose truth has ``sockets``.
LIFECYCLE = ["sio4_ping_timeout.pcap", "sio4_disconnects.pcapng", "sio4_recovery.pcap",
             "sio4_broadcasts.pcap", "sio2_ping_timeout.pcap", "sio_python_disconnects.pcapng",
             "sio4_msgpack.pcap"]


def _truth(capture: str) -> dict[str, Any]:
    stem = capture.rsplit(".", 1)[0]
    return json.loads((CAPTURES / f"{stem}.truth.json").read_text(encoding="utf-8"))


_ROWS: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}


def _rows(capture: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The sio_sockets rows of a capture by (eio_sid, namespace)."""
    if capture not in _ROWS:
        keys = CAPTURES / (capture.rsplit(".", 1)[0] + ".keys")  # wss: its key log
        df = dissect.analyze(str(CAPTURES / capture), tls_keylog=keys if keys.exists() else None).sio_sockets
        rows = {}
        for r in df.to_dict("records"):
            clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            key = (clean["eio_sid"], clean["namespace"])
            assert key not in rows, f"two rows for {key}"
            rows[key] = clean
        _ROWS[capture] = rows
    return _ROWS[capture]


def _none(x: Any) -> Any:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def test_columns_are_the_contracts_in_order() -> None:
    contract = ("session_id eio_sid namespace socket_sid eio_version transport ts_connect ts_disconnect "
                "duration_ms connected disconnect_reason disconnect_by events_c2s events_s2c acks_unanswered "
                "pings max_pong_delay_ms recovered replayed_events").split()
    assert list(SioSocket._fields[: len(contract)]) == contract


@pytest.mark.parametrize("capture", LIFECYCLE)
def test_one_row_per_socket_the_peers_saw(capture: str) -> None:
    truth = _truth(capture)
    rows = _rows(capture)
    assert sorted(rows) == sorted((s["eio_sid"], s["namespace"]) for s in truth["sockets"])


@pytest.mark.parametrize("capture", LIFECYCLE)
def test_reason_and_who_match_the_server(capture: str) -> None:
    rows = _rows(capture)
    for s in _truth(capture)["sockets"]:
        row = rows[(s["eio_sid"], s["namespace"])]
        want = PYTHON_WORDS.get(s["server_disconnect_reason"], s["server_disconnect_reason"])
        assert row["disconnect_reason"] == want, (s["label"], s["namespace"])
        by = s["disconnect_by"]
        if by == "network":
            # A killed client, a reset or a cut transport: on the wire the client's side sent the
            # FIN / RST first (SIGKILL, resetAndDestroy, destroy), so the client ended it.
            assert s["end_action"] in ("sigkill", "tcp_reset", "transport_cut")
            by = "client"
        assert row["disconnect_by"] == by, (s["label"], s["namespace"])
        assert row["connected"] is True


@pytest.mark.parametrize("capture", LIFECYCLE)
def test_times_match_the_server(capture: str) -> None:
    rows = _rows(capture)
    # sio4_msgpack: both peers' handlers ran up to 12 ms after the packets (the client recorded the
    # receipt of A's CONNECT reply at .2173, the wire has it at .2067; the first msgpack packets
    # of a fresh node process): the wire's times are checked to that tolerance there.
    slack = 0.012 if "msgpack" in capture else 0.005
    for s in _truth(capture)["sockets"]:
        row = rows[(s["eio_sid"], s["namespace"])]
        # ts_connect: the CONNECT reply on the wire; the truth: the server's connection handler.
        assert row["ts_connect"] == pytest.approx(s["ts_connect"], abs=slack), s["label"]
        tolerance = slack
        if capture.startswith("sio_python") and s["server_disconnect_reason"] == PING_TIMEOUT:
            # python-engineio's service task notices the timeout on its next round (it checks
            # every few hundred ms): the wire's ping + pingTimeout is earlier than its handler.
            tolerance = 0.5
            assert row["ts_disconnect"] <= s["ts_disconnect"]
        assert row["ts_disconnect"] == pytest.approx(s["ts_disconnect"], abs=tolerance), s["label"]
        assert row["duration_ms"] == pytest.approx((row["ts_disconnect"] - row["ts_connect"]) * 1e3, abs=1e-3)


@pytest.mark.parametrize("capture", LIFECYCLE)
def test_counts_and_recovery_match(capture: str) -> None:
    rows = _rows(capture)
    for s in _truth(capture)["sockets"]:
        row = rows[(s["eio_sid"], s["namespace"])]
        label = (s["label"], s["n"], s["namespace"])
        assert row["events_c2s"] == s["events_c2s"], label
        assert row["events_s2c"] == s["events_s2c"], label
        assert row["acks_unanswered"] == s["acks_unanswered"], label
        assert _none(row["recovered"]) == s["recovered"], label
        assert _none(row["replayed_events"]) == s["replayed_events"], label
        if s["socket_sid"] != s["eio_sid"]:  # protocol v5: the CONNECT reply's sid
            assert row["socket_sid"] == s["socket_sid"], label


@pytest.mark.parametrize("capture", LIFECYCLE)
def test_heartbeat_matches_the_pinger(capture: str) -> None:
    rows = _rows(capture)
    for s in _truth(capture)["sockets"]:
        row = rows[(s["eio_sid"], s["namespace"])]
        hb = s["heartbeat"]
        label = (s["label"], s["namespace"])
        assert row["pings"] == hb["pings"], label
        if hb["max_pong_delay_ms"] is None:
            assert _none(row["max_pong_delay_ms"]) is None, label
        else:
            # The pinger measures from its send call to its pong handler, the wire from the ping
            # to the pong on the wire: never more than the pinger's figure (0.5 ms of clock
            # slack), and within 1 ms of it for the node peers. python-socketio's event loop
            # adds up to a few ms (A: 2.9 ms in its log, 0.44 ms on the wire).
            assert row["max_pong_delay_ms"] <= hb["max_pong_delay_ms"] + 0.5, label
            if not capture.startswith("sio_python"):
                assert row["max_pong_delay_ms"] == pytest.approx(hb["max_pong_delay_ms"], abs=1.0), label


def test_ping_timeouts_and_heartbeat_anomalies() -> None:
    # socket.io 2 (v3): Z's pings stop; the server gives up after pingInterval + pingTimeout.
    z = _rows("sio2_ping_timeout.pcap")[("4hOAFsDCpKXqglCuAAAC", "/")]
    assert z["disconnect_reason"] == PING_TIMEOUT and z["anomaly"] == "pings-stopped"
    # python-socketio: the frozen Z answers the ping after SIGCONT, 1.5 s late (pingTimeout 1 s):
    # the server had closed the session already, so that pong is late and answers nothing.
    pz = _rows("sio_python_disconnects.pcapng")[("T8wyPgQBuYvPRI4vAAAE", "/")]
    assert pz["anomaly"] == PONG_LATE and pz["disconnect_reason"] == PING_TIMEOUT
    healthy = [r for c in LIFECYCLE for r in _rows(c).values() if r["disconnect_reason"] != PING_TIMEOUT]
    assert healthy and all(r["anomaly"] in ("", None) for r in healthy)  # empty (None in pandas)


# -- the older captures: closed_by / server_close_reason per Engine.IO session --------------------

OLDER = ["sio4_websocket.pcap", "sio2_websocket.pcap", "sio2_polling.pcapng", "sio2_polling_binary.pcap",
         "sio4_any_sll.pcap", "sio4_connect_error.pcap", "sio4_polling_upgrade.pcapng", "sio_python.pcapng",
         "tls13_chromium_sio4.pcapng", "tls13_sio4_polling_upgrade.pcapng", "tls13_dsb.pcapng"]


@pytest.mark.parametrize("capture", OLDER)
def test_older_captures_reasons(capture: str) -> None:
    truth = _truth(capture)
    rows = _rows(capture)
    refused = {(n["eio_sid"], n["namespace"]) for n in truth["namespaces"] if not n["ok"]}
    accepted = {(n["eio_sid"], n["namespace"]) for n in truth["namespaces"] if n["ok"]}
    assert set(rows) == refused | accepted
    for key in refused:
        assert rows[key]["connected"] is False and _none(rows[key]["disconnect_reason"]) is None
    for c in truth["connections"]:
        mine = [rows[k] for k in accepted if k[0] == c["eio_sid"]]
        for row in mine:
            if c["closed_by"] == "abrupt":  # a reset or a FIN without goodbye: the server's words
                assert (row["disconnect_reason"], row["disconnect_by"]) == (c["server_close_reason"], "client")
            elif c["closed_by"] == "server":  # sio4_connect_error A: `kick me` -> 41/auth,
                assert (row["disconnect_reason"], row["disconnect_by"]) == ("server namespace disconnect", "server")
            elif capture == "sio_python.pcapng":
                # python-socketio's AsyncClient aborts the WebSocket before its 41 goes out (the
                # truth's checks.notes): the server sees the transport close, as in
                # sio_python_disconnects' A.
                assert (row["disconnect_reason"], row["disconnect_by"]) == ("transport close", "client")
            else:  # the client's disconnect(): a DISCONNECT per namespace
                assert (row["disconnect_reason"], row["disconnect_by"]) == ("client namespace disconnect", "client")


def test_summary_counts_sockets_by_reason() -> None:
    a = dissect.analyze(str(CAPTURES / "sio4_disconnects.pcapng"))
    truth = _truth("sio4_disconnects.pcapng")
    want: dict[str, int] = {}
    for s in truth["sockets"]:
        want[s["server_disconnect_reason"]] = want.get(s["server_disconnect_reason"], 0) + 1
    got = a.summary["sio_sockets"]
    assert got["count"] == len(truth["sockets"])
    assert got["by_disconnect_reason"] == dict(sorted(want.items(), key=lambda kv: (-kv[1], kv[0])))
    r = dissect.analyze(str(CAPTURES / "sio4_recovery.pcap")).summary["sio_sockets"]
    assert (r["recovered"], r["not_recovered"], r["replayed_events"]) == (1, 1, 4)


# -- units --------------------------------------------------------------------------------------


def test_offset_time_of_a_yeast_offset() -> None:
    # sio4_recovery: the welcome EVENT at 1796397272.405 carries the offset "Q91dmrK".
    assert offset_time_ms("Q91dmrK") == 1796397272404
    assert offset_time_ms("Q91dmrK.1") == 1796397272404
    assert offset_time_ms("1796397272404-0") == 1796397272404  # a Redis stream id
    assert offset_time_ms("not an offset!") is None


def test_replayed_events_are_counted_by_offset_within_the_replay() -> None:
    # yeast offsets: Q91dmrK = ...272.404, Q91dm00 = ...268.992, Q91dmuO = ...272.600 (epoch s).
    assert offset_time_ms("Q91dmuO") == 1796397272600
    s = SessionSockets()
    s.opened(25000, 20000, 4)
    t0 = 1796397272_500 * MS  # the reconnecting CONNECT
    s.connect_request("/", t0, 1, b'{"pid":"p1","offset":"Q91dm00"}')
    assert s.slow  # s2c EVENTs of "/" leave the WebSocket fast path while the replay lasts
    s.event(S2C, "/", b'["news",1,"Q91dmrK"]', t0 + 1 * MS)  # made before t0: replayed
    s.connect_answer("/", t0 + 2 * MS, 1, b'{"sid":"x","pid":"p1"}', True)
    s.event(S2C, "/", b'["news",2,"Q91dm00"]', t0 + 3 * MS)  # made before t0: replayed, after the reply
    s.event(S2C, "/", b'["news",3,"Q91dmuO"]', t0 + 100 * MS)  # made after t0: a new event
    s.event(S2C, "/", b'["late",4,"Q91dm00"]', t0 + 2000 * MS)  # past the replay window: not read
    assert not s.slow
    s.disconnect(C2S, "/", t0 + 3000 * MS)
    (row,) = _ended(s)
    assert (row.recovered, row.replayed_events, row.events_s2c) == (True, 2, 4)


def _socket(s: SessionSockets, nsp: str = "/") -> None:
    s.opened(300, 200, 4)
    s.connect_request(nsp, 0, 1, b"")
    s.connect_answer(nsp, 1 * MS, 1, b'{"sid":"x"}', True)


def _ended(s: SessionSockets) -> list[SioSocket]:
    out: list[SioSocket] = []
    s.rows("e", 4, "websocket", out.append, {})
    return out


def test_unanswered_ping_then_the_end_is_a_ping_timeout() -> None:
    s = SessionSockets()
    _socket(s)
    s.ping(300 * MS)
    s.session_ended(600 * MS, SERVER_SHUTTING_DOWN, "server")  # the server's Close frame
    (row,) = _ended(s)
    assert (row.disconnect_reason, row.disconnect_by, row.ts_disconnect) == (PING_TIMEOUT, "server", 500 * MS)
    assert row.pings == 1


def test_answered_pings_leave_the_reason_alone() -> None:
    s = SessionSockets()
    _socket(s)
    s.ping(300 * MS)
    assert s.pong(301 * MS) == ""
    s.session_ended(550 * MS, SERVER_SHUTTING_DOWN, "server")
    (row,) = _ended(s)
    assert (row.disconnect_reason, row.max_pong_delay_ms, row.anomaly) == (SERVER_SHUTTING_DOWN, 1.0, "")


def test_pings_that_stop_are_flagged() -> None:
    s = SessionSockets()
    _socket(s)
    s.ping(300 * MS)
    s.pong(301 * MS)
    s.session_ended(900 * MS, SERVER_SHUTTING_DOWN, "server")  # no ping for 600 ms > 300 + 200
    (row,) = _ended(s)
    assert (row.disconnect_reason, row.anomaly) == (SERVER_SHUTTING_DOWN, "pings-stopped")


def test_late_pong_is_flagged_and_ends_the_socket_at_the_timeout() -> None:
    s = SessionSockets()
    _socket(s)
    s.ping(300 * MS)
    assert s.pong(800 * MS) == PONG_LATE
    s.event(C2S, "/", b'["x"]', 900 * MS)
    s.event(S2C, "/", b'["y"]', 901 * MS)
    s.session_ended(2000 * MS, "capture ended", None)
    (row,) = _ended(s)
    assert (row.disconnect_reason, row.ts_disconnect, row.anomaly) == (PING_TIMEOUT, 500 * MS, PONG_LATE)
    assert row.max_pong_delay_ms is None and (row.events_c2s, row.events_s2c) == (1, 1)


def test_disconnect_of_one_namespace_leaves_the_other() -> None:
    s = SessionSockets()
    _socket(s, "/")
    _socket(s, "/chat")
    s.disconnect(C2S, "/chat", 5 * MS)
    (chat,) = _ended(s)
    assert (chat.namespace, chat.disconnect_reason, chat.disconnect_by) == \
        ("/chat", "client namespace disconnect", "client")
    assert list(s.live) == ["/"]


def test_still_open_at_the_end_of_the_capture() -> None:
    s = SessionSockets()
    _socket(s)
    s.connect_request("/never", 2 * MS, 1, b"")  # never answered
    s.session_ended(100 * MS, "capture ended", None)
    rows = {r.namespace: r for r in _ended(s)}
    assert (rows["/"].disconnect_reason, rows["/"].ts_disconnect, rows["/"].disconnect_by) == \
        ("capture ended", None, None)
    assert rows["/never"].connected is False and rows["/never"].disconnect_reason is None


def test_namespace_and_time_filters_select_sockets() -> None:
    path = str(CAPTURES / "sio4_disconnects.pcapng")
    chat = dissect.analyze(path, namespace="/chat").sio_sockets
    assert list(chat.namespace) == ["/chat"]
    every = dissect.analyze(path).sio_sockets
    # A window after /chat was left (268.0845) keeps the sockets still open then, and only those.
    window = dissect.analyze(path, since=1796397268.2, until=1796397268.3).sio_sockets
    open_then = every[(every.ts_connect <= 1796397268.3) & (every.ts_disconnect >= 1796397268.2)]
    assert sorted(window.eio_sid + window.namespace) == sorted(open_then.eio_sid + open_then.namespace)
    assert "/chat" not in set(window.namespace) and len(window) == 5  # A/, C, D, E, F (B left at .187)


def test_tls_passes_the_fin_to_the_websocket_inside() -> None:
    """wss: the FIN / RST under TLS reaches the WebSocket, so sockets end as ``transport close``
    at the FIN rather than ``capture ended`` (no corpus capture has a wss FIN without a Close
    frame: this checks the hand-over)."""
    from dissect.protocols.tls import KeyLog
    from dissect.protocols.tls.dissector import TlsDissector
    from dissect.records import Outbox

    class Owner:
        session_id = 1

        def note_layer(self, app_protocol: str | None, anomaly: str = "") -> None:
            pass

    class Inner:
        def __init__(self) -> None:
            self.ended: list[tuple[int, int, str]] = []

        def feed(self, direction: int, ts: int, data: bytes) -> None: ...
        def gap(self, direction: int, ts: int, nbytes: int) -> None: ...
        def finish(self, ts: int) -> None: ...

        def transport_ended(self, ts: int, direction: int, how: str) -> None:
            self.ended.append((ts, direction, how))

    tls = TlsDissector(1, Outbox(), KeyLog(), Owner(), lambda *a: None)  # type: ignore[arg-type]
    tls.transport_ended(5, C2S, "fin")  # nothing inside yet: nothing to tell
    inner = Inner()
    tls.plaintext.switch(inner, "websocket")
    tls.transport_ended(7, S2C, "rst")
    assert inner.ended == [(7, S2C, "rst")]
