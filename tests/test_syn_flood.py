"""A SYN flood (or a scan) among real traffic: half-open flows are bounded (--max-half-open), each
still a sessions row, the real conversation intact, and --jobs agrees with one process."""

from __future__ import annotations

from pathlib import Path

import pytest

import dissect
from dissect.transport.limits import Limits
from tests import craft

FLOOD = 3000


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> str:
    frames = [(t, craft.ethernet(p)) for t, p in craft.handshake_and_data(t0=craft.T0 + 0.05)]
    for i in range(FLOOD):
        src = (f"10.9.{(i >> 8) & 255}.{i & 255}", 1024 + i)
        frames.append((craft.T0 + i * 1e-5, craft.ethernet(craft.tcp_packet(src, ("10.0.0.2", 80), 1000 + i, 0, 0x02))))
    frames.sort(key=lambda f: f[0])
    path = tmp_path_factory.mktemp("flood") / "flood.pcap"
    path.write_bytes(craft.write_pcap(frames))
    return str(path)


def test_half_open_flows_are_bounded_and_each_is_a_row(flood: str) -> None:
    a = dissect.analyze(flood, limits=Limits(max_half_open=500))
    assert len(a.sessions) == FLOOD + 1  # every SYN a session
    assert a.summary["decode"]["half-open-flows-flushed"] >= FLOOD - 500
    real = a.sessions[a.sessions.client_port == craft.CLIENT[1]]
    assert len(real) == 1 and real.iloc[0].bytes_c2s == 5 and real.iloc[0].close == "fin"
    unbounded = dissect.analyze(flood)  # the default bound is far above this flood
    assert "half-open-flows-flushed" not in unbounded.summary["decode"]
    cols = ["session_id", "client_ip", "client_port", "syn_ts", "close"]
    assert a.sessions[cols].sort_values("session_id").reset_index(drop=True).equals(
        unbounded.sessions[cols].sort_values("session_id").reset_index(drop=True))


def test_jobs_agree_under_a_flood(flood: str) -> None:
    one = dissect.analyze(flood, limits=Limits(max_half_open=500))
    three = dissect.analyze(flood, limits=Limits(max_half_open=500), jobs=3)
    cols = ["session_id", "client_port", "syn_ts", "close", "tcp_stream"]
    assert one.sessions[cols].equals(three.sessions[cols])
    assert len(one.handshakes) == len(three.handshakes)


def test_a_flood_does_not_split_answered_connections(tmp_path: Path) -> None:
    """A connection that got its SYN/ACK is not half-open: a flood after it leaves it whole."""
    frames = [(t, craft.ethernet(p)) for t, p in craft.handshake_and_data(t0=craft.T0)]
    # between the real handshake (T0 .. T0 + 1.5 ms) and its data (T0 + 10 ms)
    syn_only = [(craft.T0 + 0.002 + i * 1e-5, craft.ethernet(craft.tcp_packet((f"10.8.0.{i % 250}", 2000 + i),
                                                                       ("10.0.0.2", 80), 1, 0, 0x02)))
                for i in range(400)]
    path = tmp_path / "f.pcap"
    path.write_bytes(craft.write_pcap(sorted(frames + syn_only, key=lambda f: f[0])))
    a = dissect.analyze(str(path), limits=Limits(max_half_open=50))
    real = a.sessions[a.sessions.client_port == craft.CLIENT[1]]
    assert len(real) == 1 and real.iloc[0].tcp_handshake_ms is not None and real.iloc[0].bytes_c2s == 5
    assert a.summary["decode"]["half-open-flows-flushed"] > 300
