"""Wireshark's numbers in dissect's rows, checked against tshark on every capture of the corpus and
the regression captures: ``sessions.frame_first`` (the frame number of a session's first packet)
and ``sessions.tcp_stream`` (tshark's ``tcp.stream``), and ``community_id`` against the reference
implementation."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest

import dissect

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = sorted(str(p) for p in (ROOT / "captures").glob("*.pcap*")) + sorted(
    str(p) for p in (ROOT / "tests" / "regressions").glob("*.pcap*"))

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def tshark_first_frames(path: str) -> dict[int, int]:
    """tcp.stream -> the frame number of its first packet, as tshark numbers them."""
    out = subprocess.run(["tshark", "-n", "-r", path, "-Y", "tcp", "-T", "fields", "-e", "frame.number",
                          "-e", "tcp.stream"], capture_output=True, text=True, check=False).stdout
    first: dict[int, int] = {}
    for line in out.splitlines():
        frame, _, stream = line.partition("\t")
        if stream:
            first.setdefault(int(stream.split(",")[0]), int(frame))
    return first


@needs_tshark
@pytest.mark.parametrize("path", CAPTURES, ids=[Path(p).name for p in CAPTURES])
def test_tcp_stream_and_frame_first_are_wiresharks(path: str) -> None:
    s = dissect.analyze(path).sessions
    tcp = s[s.transport == "tcp"]
    mine = {int(r.tcp_stream): int(r.frame_first) for r in tcp.itertuples()}
    assert mine == tshark_first_frames(path)
    assert len(mine) == len(tcp)  # one stream per session


def test_frame_first_counts_every_packet_of_its_file(tmp_path: Path) -> None:
    """Packets dissect ignores (ARP here) still count, and each file numbers from 1."""
    from tests import craft

    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00" * 28
    conv = craft.handshake_and_data()
    frames = [(craft.T0 - 1, arp), (craft.T0 - 0.5, arp)] + [(t, craft.ethernet(p)) for t, p in conv]
    one, two = tmp_path / "a.pcap", tmp_path / "b.pcap"
    one.write_bytes(craft.write_pcap(frames))
    again = craft.handshake_and_data(isn_c=9000, t0=craft.T0 + 60)  # a new connection, same 5-tuple
    two.write_bytes(craft.write_pcap([(t, craft.ethernet(p)) for t, p in again]))
    s = dissect.analyze([str(one), str(two)]).sessions
    assert list(s.frame_first) == [3, 1] and list(s.tcp_stream) == [0, 0]


communityid = pytest.importorskip("communityid")


def test_community_id_of_every_corpus_session() -> None:
    cid = communityid.CommunityID(0)
    checked = 0
    for path in CAPTURES:
        for r in dissect.analyze(path).sessions.itertuples():
            make = communityid.FlowTuple.make_tcp if r.transport == "tcp" else communityid.FlowTuple.make_udp
            ip = ipaddress.ip_address
            assert r.community_id == cid.calc(make(str(ip(r.client_ip)), str(ip(r.server_ip)), int(r.client_port),
                                                   int(r.server_port)))
            checked += 1
    assert checked > 50


def test_filters_keep_the_unfiltered_session_ids_and_streams() -> None:
    """--port selects flows; the ones it keeps have the ids and tcp.stream of the unfiltered run,
    so an id can be carried from one run to another."""
    path = str(ROOT / "captures" / "ws_multi.pcapng")
    full = dissect.analyze(path)
    third = full.sessions.iloc[2]
    one = dissect.analyze(path, port=int(third.client_port))
    assert list(one.sessions.session_id) == [third.session_id] != [1]
    assert one.sessions.iloc[0].tcp_stream == third.tcp_stream
    assert set(one.ws_frames.session_id) == {third.session_id}
    for table in ("ws_frames", "ws_messages", "handshakes"):
        mine = full.table(table)
        expect = mine[mine.session_id == third.session_id].reset_index(drop=True)
        assert one.table(table).reset_index(drop=True).equals(expect), table
