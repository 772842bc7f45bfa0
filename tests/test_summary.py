"""summary.json: the streaming SummaryBuilder and from_analysis agree, and say true things.

``synthetic_rows`` (also used by the report tests) makes a small, realistic set of rows for every
table: plain HTTP sessions, WebSocket sessions and Socket.IO sessions with their handshake chains.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dissect import records
from dissect.output import distribution, summary, tables
from dissect.output.tables import Analysis
from dissect.records import (
    Handshake,
    HttpExchange,
    Session,
    SioPacket,
    WsFrame,
    WsMessage,
)

T0 = 1_700_000_000_123_456_789  # fractional seconds: the ns -> s conversions must agree
MS = 10**6


def synthetic_rows(
    n_sessions: int = 9,
    messages: int = 12,
    seed: int = 1,
    events: Sequence[str] = ("message", "typing"),
    namespace: str = "/chat",
    hs_scale: float = 1.0,
    source_file: str = "cap.pcapng",
) -> dict[str, list[Any]]:
    """Rows of every table for ``n_sessions`` sessions: session_id % 3 == 0 plain HTTP,
    == 1 WebSocket, == 2 Socket.IO over WebSocket. ``hs_scale`` stretches handshake durations."""
    rng = random.Random(seed)
    out: dict[str, list[Any]] = {name: [] for name in records.TABLES}
    for sid in range(1, n_sessions + 1):
        kind = sid % 3
        t = T0 + sid * 10**9
        app = ("http", "websocket", "socketio")[kind]
        tcp_ms = round(rng.uniform(0.05, 0.5) * hs_scale, 6)
        syn, synack, ack = t, t + int(tcp_ms * MS / 2), t + int(tcp_ms * MS)
        out["handshakes"].append(Handshake(sid, "tcp", syn, ack, (ack - syn) / 1e6, True, "-", None))
        cur = ack + MS
        frames = msgs = 0
        bytes_c2s = bytes_s2c = 0
        if kind == 0:
            for i in range(3):
                status = 200 if i < 2 else 404
                out["http"].append(
                    HttpExchange(
                        sid,
                        cur,
                        cur + 2 * MS,
                        2.0,
                        "GET",
                        f"/page/{i}",
                        "example.test",
                        status,
                        120,
                        120,
                        None,
                        0,
                        "",
                    )
                )
                cur += 5 * MS
                bytes_c2s += 80
                bytes_s2c += 200
        else:
            target = "/socket.io/?EIO=4&transport=websocket" if kind == 2 else "/ws"
            ws_ms = round(rng.uniform(0.5, 3.0) * hs_scale, 6)
            end = cur + int(ws_ms * MS)
            out["http"].append(
                HttpExchange(
                    sid,
                    cur,
                    end,
                    ws_ms,
                    "GET",
                    target,
                    "example.test",
                    101,
                    None,
                    0,
                    "websocket",
                    0,
                    "",
                )
            )
            out["handshakes"].append(
                Handshake(sid, "websocket", cur, end, ws_ms, True, "101 accept=valid", "websocket")
            )
            cur = end + MS
            idx = 0
            if kind == 2:
                eio_ms = round(rng.uniform(0.2, 1.0) * hs_scale, 6)
                sio_ms = round(rng.uniform(0.5, 2.0) * hs_scale, 6)
                out["handshakes"].append(
                    Handshake(
                        sid,
                        "engineio",
                        cur,
                        cur + int(eio_ms * MS),
                        eio_ms,
                        True,
                        "sid=abc v4",
                        "websocket",
                    )
                )
                cur += int(eio_ms * MS)
                out["sio_packets"].append(
                    SioPacket(
                        sid,
                        cur,
                        "s2c",
                        "websocket",
                        4,
                        "open",
                        "",
                        None,
                        None,
                        None,
                        None,
                        90,
                        None,
                        "",
                        "abc",
                    )
                )
                out["handshakes"].append(
                    Handshake(
                        sid,
                        "socketio",
                        cur,
                        cur + int(sio_ms * MS),
                        sio_ms,
                        True,
                        namespace,
                        "websocket",
                    )
                )
                out["sio_packets"].append(
                    SioPacket(
                        sid,
                        cur,
                        "c2s",
                        "websocket",
                        4,
                        "message",
                        "CONNECT",
                        namespace,
                        None,
                        None,
                        None,
                        8,
                        None,
                        "",
                        "abc",
                    )
                )
                cur += int(sio_ms * MS)
            for m in range(messages):
                direction = "c2s" if m % 2 == 0 else "s2c"
                size = rng.choice([12, 40, 300, 2000, 70000])
                fragmented = size > 60000
                nfr = 2 if fragmented else 1
                for f in range(nfr):
                    out["ws_frames"].append(
                        WsFrame(
                            sid,
                            idx,
                            cur + f * 1000,
                            direction,
                            f == nfr - 1,
                            False,
                            False,
                            False,
                            1 if f == 0 else 0,
                            "text" if f == 0 else "continuation",
                            direction == "c2s",
                            size // nfr,
                            14 if size > 125 else 6,
                            False,
                            None,
                            None,
                            "",
                        )
                    )
                    idx += 1
                frames += nfr
                out["ws_messages"].append(
                    WsMessage(
                        sid,
                        msgs,
                        cur,
                        cur + (nfr - 1) * 1000,
                        direction,
                        "text",
                        nfr,
                        size + 6 * nfr,
                        size,
                        False,
                        f'42{namespace},["x"]'[:64],
                        "",
                    )
                )
                msgs += 1
                if direction == "c2s":
                    bytes_c2s += size
                else:
                    bytes_s2c += size
                if kind == 2:
                    if direction == "c2s":
                        ev = events[m // 2 % len(events)]
                        out["sio_packets"].append(
                            SioPacket(
                                sid,
                                cur,
                                "c2s",
                                "websocket",
                                4,
                                "message",
                                "EVENT",
                                namespace,
                                ev,
                                m,
                                None,
                                size,
                                None,
                                "",
                                "abc",
                            )
                        )
                    else:
                        lat = (1.0 + m) * hs_scale
                        out["sio_packets"].append(
                            SioPacket(
                                sid,
                                cur,
                                "s2c",
                                "websocket",
                                4,
                                "message",
                                "ACK",
                                namespace,
                                None,
                                m - 1,
                                None,
                                size,
                                lat,
                                "",
                                "abc",
                            )
                        )
                cur += 3 * MS
            code = 1000 if sid % 4 else 1006
            anomaly = "" if code == 1000 else "bad_close_code=1006;close_without_reply"
            out["ws_frames"].append(
                WsFrame(
                    sid,
                    idx,
                    cur,
                    "c2s",
                    True,
                    False,
                    False,
                    False,
                    8,
                    "close",
                    True,
                    2,
                    6,
                    False,
                    code,
                    "bye",
                    anomaly,
                )
            )
            out["ws_messages"].append(WsMessage(sid, msgs, cur, cur, "c2s", "close", 1, 8, 2, False, "", anomaly))
            frames += 1
        close = "rst" if sid == 5 else "fin"
        out["sessions"].append(
            Session(
                sid,
                "tcp",
                "10.0.0.1",
                40000 + sid,
                "10.0.0.2",
                8080,
                False,
                syn,
                cur + MS,
                10 + frames,
                8 + frames,
                bytes_c2s,
                bytes_s2c,
                app,
                syn,
                synack,
                ack,
                tcp_ms,
                tcp_ms / 2,
                tcp_ms / 2,
                sid % 2,
                0,
                0,
                close,
                source_file,
                0,
                "" if sid != 7 else "zero_window",
            )
        )
    return out


def synthetic_analysis(**kw: object) -> Analysis:
    rows = synthetic_rows(**kw)  # type: ignore[arg-type]
    return Analysis.from_rows(rows, summary={})


def stream(rows: dict[str, list[Any]], batch: int = 5) -> dict[str, Any]:
    b = summary.SummaryBuilder()
    b.add_file("cap.pcapng", 1234, 567890, {"ETHERNET": 1234})
    b.add_warning("truncated_file", 1, "last record cut at byte 567890")
    b.add_warning("snaplen_cut", 3)
    for table, rs in rows.items():
        for i in range(0, len(rs), batch):
            b.add(table, rs[i : i + batch])
    return b.result()


def test_streaming_and_from_analysis_agree() -> None:
    rows = synthetic_rows()
    streamed = stream(rows, batch=7)
    a = Analysis.from_rows(rows, summary=json.loads(json.dumps(streamed)))
    computed = summary.from_analysis(a)
    assert json.dumps(computed) == json.dumps(streamed)
    # Keys the pipeline adds of its own are carried over.
    a.summary["decode"] = {"tcp_segments": 5}
    assert summary.from_analysis(a)["decode"] == {"tcp_segments": 5}
    # And without the file/warning part (nothing in the tables tells it), the tables still agree.
    bare = summary.from_analysis(Analysis.from_rows(rows, summary={}))
    for key in (
        "totals",
        "protocols",
        "handshakes",
        "ws_frames",
        "ws_messages",
        "sio_packets",
        "anomalies",
        "http",
        "sessions",
    ):
        if key == "totals":
            assert {k: v for k, v in bare[key].items() if k not in ("files", "packets", "bytes")} == {
                k: v for k, v in streamed[key].items() if k not in ("files", "packets", "bytes")
            }
        else:
            assert bare[key] == streamed[key], key


def test_figures_are_right() -> None:
    rows = synthetic_rows()
    s = stream(rows)
    t = s["totals"]
    assert t == {
        "files": 1,
        "packets": 1234,
        "bytes": 567890,
        **{name: len(rows[name]) for name in records.TABLES},
    }
    # Sessions by app protocol: ids 1..9, id % 3 -> http, websocket, socketio.
    protos = s["protocols"]
    assert protos["http"]["sessions"] == 3
    assert protos["websocket"]["sessions"] == 3
    assert protos["socketio"]["sessions"] == 3
    assert protos["udp"]["sessions"] == 0
    # Handshake percentiles equal numpy's on the same values.
    hs = s["handshakes"]
    for layer in ("tcp", "websocket", "engineio", "socketio"):
        vals = [r.duration_ms for r in rows["handshakes"] if r.layer == layer]
        want = np.percentile(vals, [50, 90, 99])
        got = hs[layer]["duration_ms"]
        assert got["count"] == len(vals)
        assert got["p50"] == pytest.approx(want[0], abs=1e-6)
        assert got["p90"] == pytest.approx(want[1], abs=1e-6)
        assert got["p99"] == pytest.approx(want[2], abs=1e-6)
        assert got["max"] == pytest.approx(max(vals), abs=1e-6)
        assert got["method"] == "exact"
    assert hs["engineio"]["count"] == 3
    # Frames by opcode.
    want_ops: dict[str, int] = {}
    for f in rows["ws_frames"]:
        want_ops[f.opcode_name] = want_ops.get(f.opcode_name, 0) + 1
    assert s["ws_frames"]["by_opcode"] == dict(sorted(want_ops.items()))
    assert s["ws_frames"]["by_close_code"] == {"1000": 4, "1006": 2}
    # Message sizes.
    sizes = [m.payload_bytes for m in rows["ws_messages"]]
    mp = s["ws_messages"]["payload_bytes"]
    assert mp["total"] == sum(sizes)
    assert mp["p50"] == pytest.approx(float(np.percentile(sizes, 50)))
    # Ack latency and events.
    lats = [p.ack_latency_ms for p in rows["sio_packets"] if p.ack_latency_ms is not None]
    assert s["sio_packets"]["ack_latency_ms"]["p90"] == pytest.approx(float(np.percentile(lats, 90)))
    events = {(e["namespace"], e["event"]): e["count"] for e in s["sio_packets"]["events"]}
    assert events == {("/chat", "message"): 9, ("/chat", "typing"): 9}
    # Anomalies split into kinds, per table.
    an = s["anomalies"]
    assert an["by_table"]["ws_frames"] == {"bad_close_code": 2, "close_without_reply": 2}
    assert an["by_table"]["sessions"] == {"zero_window": 1}
    assert an["by_kind"]["bad_close_code"] == 4  # frames + messages
    assert an["total"] == 9
    # Reader warnings.
    w = s["warnings"]
    assert w["total"] == 4
    assert w["by_kind"]["truncated_file"]["details"] == ["last record cut at byte 567890"]
    # Files: sessions and time span joined from the sessions table.
    f = s["files"][0]
    assert f["sessions"] == 9 and f["link_types"] == {"ETHERNET": 1234}
    assert f["ts_first"] == pytest.approx(T0 / 1e9 + 1, abs=1e-6)
    assert s["sessions"]["by_close"] == {"fin": 8, "rst": 1}


def test_json_clean_and_stable() -> None:
    rows = synthetic_rows()
    # A NaN duration and an infinite one must not leak into the JSON.
    rows["handshakes"].append(Handshake(99, "tcp", T0, None, float("nan"), False, "-", None))
    rows["handshakes"].append(Handshake(98, "tcp", T0, None, float("inf"), False, "-", None))
    s = stream(rows)
    text = json.dumps(s, allow_nan=False)  # raises on NaN/inf
    assert "NaN" not in text
    assert s["handshakes"]["tcp"]["failed"] == 2
    assert list(s) == [
        "schema",
        "totals",
        "capture",
        "files",
        "protocols",
        "sessions",
        "handshakes",
        "tls",
        "http",
        "ws_frames",
        "ws_messages",
        "sio_packets",
        "sio_sockets",
        "sio_broadcasts",
        "anomalies",
        "warnings",
    ]
    # Same input, another batching: byte-identical JSON.
    assert json.dumps(stream(rows, batch=1)) == json.dumps(stream(rows, batch=1000))
    empty = summary.SummaryBuilder().result()
    json.dumps(empty, allow_nan=False)
    assert empty["handshakes"]["socketio"]["duration_ms"]["p90"] is None


def test_distribution_switches_to_histogram_within_one_percent() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(mean=2.0, sigma=1.5, size=20_000)
    values[:10] = 0.0
    d = summary.Distribution(exact_limit=1000)
    for i in range(0, len(values), 1500):
        d.extend(values[i : i + 1500].tolist())
    assert d.method == "log-histogram"
    assert d.exact is None and len(d.pos) < 2000
    got = d.quantiles([0.5, 0.9, 0.99])
    want = np.percentile(values, [50, 90, 99])
    for g, w in zip(got, want, strict=True):
        assert g is not None and abs(g - w) / w < 0.015
    s = d.summary()
    assert s["count"] == 20_000 and s["min"] == 0.0
    assert s["max"] == pytest.approx(values.max())
    # Exact mode below the limit.
    e = summary.Distribution(exact_limit=1_000_000)
    e.extend(values.tolist())
    assert e.method == "exact"
    assert e.quantiles([0.9])[0] == pytest.approx(float(np.percentile(values, 90)))


@pytest.mark.parametrize("limit", [100, 10_000])
def test_distribution_merge_equals_one_stream(limit: int) -> None:
    """Merging distributions (a split run's tasks) gives what one stream of all the values gives,
    exact or past the limit (merging exact arrays skips extend()'s filter: they passed it)."""
    rng = np.random.default_rng(5)
    a = [*rng.lognormal(size=300).tolist(), None, math.nan, math.inf, 0.0, -2.5]
    b = [*rng.lognormal(size=400).tolist(), -math.inf, 7.0]
    one = summary.Distribution(exact_limit=limit)
    one.extend(a)
    one.extend(b)
    left, right = summary.Distribution(exact_limit=limit), summary.Distribution(exact_limit=limit)
    left.extend(a)
    right.extend(b)
    left.merge(right)
    assert left.method == one.method == ("exact" if limit > 700 else "log-histogram")
    assert json.dumps(left.summary()) == json.dumps(one.summary())
    assert (left.count, left.lo, left.hi, left.pos, left.neg, left.zeros) == \
        (one.count, one.lo, one.hi, one.pos, one.neg, one.zeros)


def test_message_sizes_bounded_memory_for_many_messages() -> None:
    b = summary.SummaryBuilder(exact_limit=10_000)
    batch = [WsMessage(1, i, T0, T0, "c2s", "text", 1, 10 + i % 1000, 4 + i % 1000, False, "", "") for i in range(5000)]
    for _ in range(10):
        b.add("ws_messages", batch)
    r = b.result()["ws_messages"]
    assert r["count"] == 50_000
    p = r["payload_bytes"]
    assert p["method"] == "log-histogram"
    assert p["max"] == 1003 and p["min"] == 4
    assert abs(p["p50"] - 503.5) / 503.5 < 0.02


def test_counter_cap_and_other() -> None:
    b = summary.SummaryBuilder(counter_limit=3)
    pk = [
        SioPacket(
            1,
            T0,
            "c2s",
            "websocket",
            4,
            "message",
            "EVENT",
            "/",
            f"e{i}",
            None,
            None,
            5,
            None,
            "",
            None,
        )
        for i in range(6)
    ]
    b.add("sio_packets", pk)
    ev = b.result()["sio_packets"]["events"]
    assert sum(e["count"] for e in ev) == 6
    assert {"namespace": None, "event": "(other)", "count": 3} in ev


def test_anomaly_kind() -> None:
    assert summary.anomaly_kind("bad_close_code=1005") == "bad_close_code"
    assert summary.anomaly_kind(" rsv2_set ") == "rsv2_set"
    assert summary.anomaly_kind("utf8(invalid at 3)") == "utf8"
    assert summary.split_anomalies("a; b;;") == ["a", "b"]
    assert summary.split_anomalies(None) == [] and summary.split_anomalies(math.nan) == []


def test_from_analysis_on_loaded_frames_handles_missing_columns() -> None:
    rows = synthetic_rows()
    a = Analysis.from_rows(rows, summary={})
    a.sessions = a.sessions.drop(columns=["anomaly", "syn_retransmissions"])
    s = summary.from_analysis(a)
    assert "sessions" not in s["anomalies"]["by_table"]
    assert s["totals"]["sessions"] == 9
    # frame() gives float seconds; the file span comes out in seconds either way.
    assert s["capture"]["ts_first"] == pytest.approx(T0 / 1e9 + 1)
    assert tables.frame("sessions", rows["sessions"]).ts_first.iloc[0] == pytest.approx(T0 / 1e9 + 1)


_NAN = float("nan")
_cells = st.lists(st.sampled_from([None, "", "a", "b", 1, True, 1.0, 0, _NAN, "c2s"]), max_size=40)


@given(_cells, st.booleans())
def test_counts_equal_counter(cells: list[Any], constant: bool) -> None:
    """distribution.count_cells (its one-value shortcut included) counts exactly as Counter does."""
    from collections import Counter

    if constant and cells:
        cells = [cells[0]] * len(cells)
    assert distribution.count_cells(cells) == Counter(cells)
    assert distribution.count_combinations(cells, cells[::-1]) == Counter(zip(cells, cells[::-1], strict=True))


_FINITE = st.floats(allow_nan=False, allow_infinity=False)


@given(st.lists(st.one_of(_FINITE, st.integers(-50, 50).map(float), st.floats(-1e-300, 1e-300),
                          st.sampled_from([0.0, -0.0, 1e308, -1e308])), min_size=1, max_size=300),
       st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0])), min_size=1, max_size=5))
def test_percentiles_without_numpy_are_numpys(values: list[float], qs: list[float]) -> None:
    """Small exact distributions get their percentiles in Python (the command line does not import
    numpy for them): numpy.percentile's floats, bit for bit (a -0.0 among them goes to numpy)."""
    d = summary.Distribution()
    d.extend(values)
    got = d.quantiles(qs)
    want = [float(v) for v in np.percentile(np.array(values), [q * 100 for q in qs])]
    assert [repr(v) for v in got] == [repr(v) for v in want]  # -0.0, nan and inf included
    if -0.0 not in [v for v in values if math.copysign(1, v) < 0]:
        assert [repr(v) for v in distribution.percentiles(sorted(values), [q * 100 for q in qs])] == \
            [repr(v) for v in want]


def test_small_and_large_exact_distributions_agree() -> None:
    d = summary.Distribution()
    rnd = random.Random(7)
    d.extend([rnd.lognormvariate(0, 3) for _ in range(5000)])
    small = d.quantiles((0.5, 0.9, 0.99))
    saved = distribution.SMALL_EXACT
    distribution.SMALL_EXACT = 0
    try:
        assert d.quantiles((0.5, 0.9, 0.99)) == small
    finally:
        distribution.SMALL_EXACT = saved


def test_histogram_quantiles_at_the_ends_of_the_float_range() -> None:
    """Past its exact limit a distribution of values near +-1.8e308 (a damaged capture's times make
    such latencies) gives its quantiles without an overflow: the buckets past the float range stand
    for the largest and smallest values seen (found by hypothesis in the compiled-summary test)."""
    from dissect.output.distribution import Distribution

    d = Distribution(exact_limit=2)
    d.extend([1.797e308, 1.0, 5.0, -1.797e308])
    assert d.method == "log-histogram"
    q = d.quantiles((0.0, 0.5, 0.99, 1.0))
    assert q[0] == -1.797e308 and q[-1] == 1.797e308 and 0.9 < q[1] < 1.1  # type: ignore[operator]
    assert d.summary()["max"] == 1.797e308


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=300),
       st.integers(1, 300))
def test_histogram_buckets_are_the_log_rule_whatever_the_batches(values: list[float], batch: int) -> None:
    """Past the exact limit every value goes to bucket ceil(log|v| / log 1.02) (numpy over a
    batch, as the scalar rule gives it), zeros apart, and the same values in other batches give
    the same buckets (a split run's tasks merge theirs)."""
    d = distribution.Distribution(exact_limit=0)
    for i in range(0, len(values), batch):
        d.add_finite(values[i:i + batch])
    want_pos: dict[int, int] = {}
    want_neg: dict[int, int] = {}
    for v in values:
        if v:
            side = want_pos if v > 0 else want_neg
            k = math.ceil(math.log(abs(v)) / math.log(1.02))
            side[k] = side.get(k, 0) + 1
    assert (d.pos, d.neg, d.zeros) == (want_pos, want_neg, sum(1 for v in values if v == 0))
    assert d.count == len(values) and d.method == "log-histogram"
