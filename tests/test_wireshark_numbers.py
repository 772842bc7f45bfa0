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


# -- frame numbers of rows -------------------------------------------------------------------------

# A hostile frame whose 64-bit length has its most significant bit set (RFC 6455 5.2): where it
# ends is a matter of interpretation, so Wireshark and dissect place it in different packets.
FRAMES_DIFFER = {"ws_length_msb_set.pcap"}


def keys_for(path: str) -> str | None:
    keys = Path(path).with_suffix(".keys")
    return str(keys) if keys.exists() else None


def tshark_fields(path: str, display: str, *fields: str) -> list[list[str]]:
    keys = keys_for(path)
    args = ["tshark", "-n", *(["-o", f"tls.keylog_file:{keys}"] if keys else []), "-r", path, "-Y", display,
            "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=False).stdout
    return [line.split("\t") for line in out.splitlines()]


@needs_tshark
@pytest.mark.parametrize("path", CAPTURES, ids=[Path(p).name for p in CAPTURES])
def test_ws_frames_frame_is_where_wireshark_shows_the_frame(path: str) -> None:
    """Every WebSocket frame in the packet (and tcp.stream) where Wireshark shows it, frame by
    frame (TLS captures decrypted with their key log)."""
    from collections import Counter

    theirs: Counter[tuple[int, int, int]] = Counter()
    for frame, stream, opcodes in tshark_fields(path, "websocket", "frame.number", "tcp.stream", "websocket.opcode"):
        for op in opcodes.split(","):
            theirs[(int(stream), int(frame), int(op))] += 1
    a = dissect.analyze(path, tls_keylog=keys_for(path))
    stream_of = dict(zip(a.sessions.session_id, a.sessions.tcp_stream, strict=True))
    mine = Counter((int(stream_of[r.session_id]), int(r.frame), int(r.opcode)) for r in a.ws_frames.itertuples())
    if Path(path).name in FRAMES_DIFFER:
        assert sum(mine.values()) == sum(theirs.values())
    else:
        assert mine == theirs


@needs_tshark
@pytest.mark.parametrize("path", [p for p in CAPTURES if "sio" in Path(p).name or "tls13" in Path(p).name],
                         ids=lambda p: Path(p).name)
def test_sio_packets_frame_is_a_packet_wireshark_shows_them_in(path: str) -> None:
    """Wireshark has no Engine.IO dissector: a Socket.IO packet over WebSocket is in the packet
    holding its WebSocket frame's end; over polling, in the packet where Wireshark shows the HTTP
    message (request or response) that carried it."""
    ws = {(int(s), int(f)) for f, s in tshark_fields(path, "websocket", "frame.number", "tcp.stream")}
    http = {(int(s), int(f)) for f, s in tshark_fields(path, "http", "frame.number", "tcp.stream")}
    a = dissect.analyze(path, tls_keylog=keys_for(path))
    stream_of = dict(zip(a.sessions.session_id, a.sessions.tcp_stream, strict=True))
    rows = a.sio_packets
    assert len(rows) and rows.frame.notna().all()
    for r in rows.itertuples():
        where = (int(stream_of[r.session_id]), int(r.frame))
        assert where in (ws if r.transport == "websocket" else http), (r.transport, where, r.eio_type)


def test_acked_event_names_the_event_answered() -> None:
    """On every ACK row, the event name of the EVENT with the same ack id, namespace and session
    in the other direction (and only there)."""
    checked = 0
    for path in CAPTURES:
        if "sio" not in Path(path).name:
            continue
        p = dissect.analyze(path).sio_packets
        events = {}
        for r in p[p.sio_type.isin(["EVENT", "BINARY_EVENT"]) & p.ack_id.notna()].itertuples():
            events[(r.eio_sid, r.namespace, int(r.ack_id), r.direction)] = r.event
        for r in p.itertuples():
            answered = isinstance(r.ack_latency_ms, float) and r.ack_latency_ms == r.ack_latency_ms  # not NaN
            if r.sio_type in ("ACK", "BINARY_ACK") and answered:
                other = "c2s" if r.direction == "s2c" else "s2c"
                assert r.acked_event == events[(r.eio_sid, r.namespace, int(r.ack_id), other)]
                checked += 1
            else:
                assert r.acked_event is None or r.acked_event != r.acked_event  # empty
    assert checked > 20


@needs_tshark
@pytest.mark.parametrize("path", [p for p in CAPTURES if "http" in Path(p).name or "polling" in Path(p).name
                                  or (Path(p).name.startswith("tls") and keys_for(p) and "h2" not in p)],
                         ids=lambda p: Path(p).name)
def test_http_frames_are_in_the_message_wireshark_reassembles(path: str) -> None:
    """http.frame_request / frame_response name the packet holding the last byte of the head.
    Wireshark shows a message where its body ends; the head's packet is one of the packets it
    reassembled the message from (tcp.segment / tls.segment), or that very packet."""
    msgs: dict[tuple[int, str], list[set[int]]] = {}
    for frame, stream, req, resp, code, tcp_segs, tls_segs in tshark_fields(
            path, "http.request || http.response", "frame.number", "tcp.stream", "http.request",
            "http.response", "http.response.code", "tcp.segment", "tls.segment"):
        if resp and code and int(code.split(",")[0]) < 200 and int(code.split(",")[0]) != 101:
            continue  # an interim 1xx response (not 101) has no row of its own (RFC 9110 15.2)
        frames = {int(frame)} | {int(x) for x in (tcp_segs + "," + tls_segs).split(",") if x}
        kind = "request" if req else "response"
        msgs.setdefault((int(stream), kind), []).append(frames)
    a = dissect.analyze(path, tls_keylog=keys_for(path))
    stream_of = dict(zip(a.sessions.session_id, a.sessions.tcp_stream, strict=True))
    checked = 0
    for sid, rows in a.http.groupby("session_id"):
        rows = rows.sort_values("ts_request")
        stream = int(stream_of[sid])
        theirs_q = msgs.get((stream, "request"), [])
        theirs_r = msgs.get((stream, "response"), [])
        mine_q = [int(f) for f in rows.frame_request if f == f]
        mine_r = [int(f) for f in rows.sort_values("ts_response").frame_response if f == f]
        assert len(mine_q) == len(theirs_q) and len(mine_r) == len(theirs_r)
        for f, frames in zip(mine_q + mine_r, theirs_q + theirs_r, strict=True):
            assert f in frames
            checked += 1
    assert checked
