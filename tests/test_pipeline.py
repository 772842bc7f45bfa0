"""The packet path end to end on crafted captures (what real peers will not produce on demand):
link types, VLAN tags, IPv4 fragments, IPv6 extension headers, reordering and loss through the
whole pipeline, 5-tuple reuse, mid-stream roles; then the CLI's filters and exit codes."""

from __future__ import annotations

import shutil
import socket
import struct
from pathlib import Path

import dpkt
import pytest
from click.testing import CliRunner

import dissect
from dissect.cli import main
from tests import craft

HTTP_REQ = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
HTTP_RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def write(tmp_path: Path, name: str, frames: list[tuple[float, bytes]], linktype: int = 1) -> str:
    p = tmp_path / name
    p.write_bytes(craft.write_pcap(frames, linktype=linktype))
    return str(p)


def one_session(path: str) -> dissect.Analysis:
    a = dissect.analyze(path)
    assert len(a.sessions) == 1, a.sessions
    return a


@pytest.mark.parametrize("wrap,linktype", [
    (lambda ip, v6: craft.ethernet(ip, v6), 1),
    (lambda ip, v6: craft.ethernet(ip, v6, vlans=[10]), 1),
    (lambda ip, v6: craft.ethernet(ip, v6, vlans=[10, 20]), 1),  # QinQ
    (craft.sll, 113),
    (craft.sll2, 276),
    (craft.null_loop, 0),
    (lambda ip, v6: ip, 101),  # raw IP
])
@pytest.mark.parametrize("v6", [False, True])
def test_link_types_and_ip_versions(tmp_path: Path, wrap, linktype: int, v6: bool) -> None:  # type: ignore[no-untyped-def]
    src = ("2001:db8::1", 40000) if v6 else craft.CLIENT
    dst = ("2001:db8::2", 80) if v6 else craft.SERVER
    frames = []
    for ts, ip in craft.handshake_and_data([HTTP_REQ], [HTTP_RESP]):
        if v6:  # rebuild the same segments over IPv6
            pkt = dpkt.ip.IP(ip)
            tcp = pkt.data
            s = (src if pkt.src == socket.inet_aton(craft.CLIENT[0]) else dst)
            d = dst if s is src else src
            ip = craft.tcp_packet(s, d, tcp.seq, tcp.ack, tcp.flags, bytes(tcp.data), v6=True)
        frames.append((ts, wrap(ip, v6)))
    a = one_session(write(tmp_path, "a.pcap", frames, linktype))
    s = a.sessions.iloc[0]
    assert (s.client_ip, s.client_port, s.server_port) == (src[0], 40000, 80)
    assert not s.client_inferred
    assert (s.bytes_c2s, s.bytes_s2c) == (len(HTTP_REQ), len(HTTP_RESP))
    assert s.close == "fin" and s.app_protocol == "http"
    assert list(a.http.status) == [200]
    assert a.sessions.tcp_handshake_ms.iloc[0] == pytest.approx(1.5)


def fragment(ip: bytes, size: int) -> list[bytes]:
    """Split an IPv4 packet (20-byte header) into fragments of ``size`` payload bytes (RFC 791)."""
    payload = ip[20:]
    out = []
    for off in range(0, len(payload), size):
        part = payload[off : off + size]
        flags = (off // 8) | (0x2000 if off + size < len(payload) else 0)
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(part), 77, flags, 64, 6, 0, ip[12:16], ip[16:20])
        out.append(hdr + part)
    return out


def test_ipv4_fragments_reassembled(tmp_path: Path) -> None:
    body = b"x" * 3000
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + body
    frames = []
    for ts, ip in craft.handshake_and_data([HTTP_REQ], [resp]):
        pkt = dpkt.ip.IP(ip)
        if len(bytes(pkt.data)) > 1000:
            parts = fragment(ip, 1000)
            frames += [(ts, craft.ethernet(p)) for p in reversed(parts)]  # out of order too
        else:
            frames.append((ts, craft.ethernet(ip)))
    a = one_session(write(tmp_path, "frag.pcap", frames))
    assert a.sessions.bytes_s2c.iloc[0] == len(resp)
    assert list(a.http.body_bytes) == [3000]
    assert a.summary["decode"]["ip-reassembled"] == 1


def test_ipv6_extension_headers(tmp_path: Path) -> None:
    frames = []
    for ts, ip in craft.handshake_and_data([HTTP_REQ], [HTTP_RESP]):
        pkt = dpkt.ip.IP(ip)
        tcp = bytes(pkt.data)
        s = "2001:db8::1" if pkt.src == socket.inet_aton(craft.CLIENT[0]) else "2001:db8::2"
        d = "2001:db8::2" if s.endswith("1") else "2001:db8::1"
        # hop-by-hop options (8 bytes) then destination options (8 bytes), then TCP
        hbh = bytes([60, 0]) + b"\x01\x04\x00\x00\x00\x00"
        dst_opts = bytes([6, 0]) + b"\x01\x04\x00\x00\x00\x00"
        payload = hbh + dst_opts + tcp
        hdr = struct.pack("!IHBB16s16s", 6 << 28, len(payload), 0, 64, socket.inet_pton(socket.AF_INET6, s),
                          socket.inet_pton(socket.AF_INET6, d))
        frames.append((ts, craft.ethernet(hdr + payload, v6=True)))
    a = one_session(write(tmp_path, "v6.pcap", frames))
    assert a.sessions.client_ip.iloc[0] == "2001:db8::1"
    assert list(a.http.status) == [200]


def reordered_with_loss(tmp_path: Path) -> tuple[str, bytes]:
    """A response in 10 segments: two swapped, one retransmitted, one never captured (but acked)."""
    F, S, P, A = 1, 2, 8, 16
    c, s = craft.CLIENT, craft.SERVER
    body = bytes(range(256)) * 20  # 5120 bytes
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5120\r\n\r\n" + body
    t = craft.T0
    fr = [(t, craft.tcp_packet(c, s, 100, 0, S)), (t + 0.001, craft.tcp_packet(s, c, 900, 101, S | A)),
          (t + 0.002, craft.tcp_packet(c, s, 101, 901, A)),
          (t + 0.003, craft.tcp_packet(c, s, 101, 901, P | A, HTTP_REQ))]
    segs = [(901 + i, resp[i : i + 520]) for i in range(0, len(resp), 520)]
    order = [0, 2, 1, 3, 3, 4, 6, 7, 8, 9]  # 1<->2 swapped, 3 twice, 5 lost
    t += 0.01
    for i in order:
        seq, data = segs[i]
        fr.append((t, craft.tcp_packet(s, c, seq, 101 + len(HTTP_REQ), P | A, data)))
        t += 0.0001
    end = 901 + len(resp)
    fr.append((t, craft.tcp_packet(c, s, 101 + len(HTTP_REQ), end, A)))  # the client has it all
    fr.append((t + 0.001, craft.tcp_packet(c, s, 101 + len(HTTP_REQ), end, F | A)))
    fr.append((t + 0.002, craft.tcp_packet(s, c, end, 102 + len(HTTP_REQ), F | A)))
    fr.append((t + 0.003, craft.tcp_packet(c, s, 102 + len(HTTP_REQ), end + 1, A)))
    return write(tmp_path, "loss.pcap", [(ts, craft.ethernet(ip)) for ts, ip in fr]), resp


def test_reordering_retransmission_and_loss_through_pipeline(tmp_path: Path) -> None:
    path, resp = reordered_with_loss(tmp_path)
    s = one_session(path).sessions.iloc[0]
    assert s.retransmissions == 1
    assert s.out_of_order == 1
    assert s.lost_bytes == 520
    assert s.bytes_s2c == len(resp) - 520
    a = dissect.analyze(path)
    assert list(a.http.status) == [200]
    assert "lost-bytes" in a.http.anomaly.iloc[0]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_reassembly_agrees_with_tshark_on_crafted_reordering(tmp_path: Path) -> None:
    """Wireshark's follow stream over the same crafted reordering and loss: the same bytes per
    direction (Wireshark's placeholder for the hole is not data)."""
    from dissect.report.crosscheck import follow_bytes

    path, _resp = reordered_with_loss(tmp_path)
    by_port = {port: n for (_addr, port), n in follow_bytes(path, [0])[0].items()}
    s = dissect.analyze(path).sessions.iloc[0]
    assert (s.bytes_c2s, s.bytes_s2c) == (by_port[craft.CLIENT[1]], by_port[craft.SERVER[1]])
    assert s.lost_bytes == 520


def test_new_syn_on_finished_tuple_is_new_session(tmp_path: Path) -> None:
    first = craft.handshake_and_data([HTTP_REQ], [HTTP_RESP], isn_c=1000)
    second = craft.handshake_and_data([HTTP_REQ], [HTTP_RESP], isn_c=555555, t0=craft.T0 + 5)
    a = dissect.analyze(write(tmp_path, "reuse.pcap", [(t, craft.ethernet(ip)) for t, ip in first + second]))
    assert list(a.sessions.session_id) == [1, 2]
    assert list(a.http.session_id) == [1, 2]


def test_mid_stream_capture_infers_roles(tmp_path: Path) -> None:
    pk = craft.handshake_and_data([HTTP_REQ], [HTTP_RESP])[3:]  # no SYN, SYN/ACK, ACK
    a = one_session(write(tmp_path, "mid.pcap", [(t, craft.ethernet(ip)) for t, ip in pk]))
    s = a.sessions.iloc[0]
    assert s.client_inferred and s.client_port == 40000  # the higher, ephemeral port
    assert s.syn_ts is None or s.syn_ts != s.syn_ts  # missing, not a sentinel
    assert len(a.handshakes[a.handshakes.layer == "tcp"]) == 0


CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def test_filters(tmp_path: Path) -> None:
    files = [str(CAPTURES / "ws_multi.pcapng"), str(CAPTURES / "http_keepalive.pcap")]
    every = dissect.analyze(files)
    by_port = dissect.analyze(files, port=9360)
    assert set(by_port.sessions.server_port) == {9360} and len(by_port.sessions) == 1
    assert dissect.analyze(files, host="10.9.9.9").sessions.empty
    one = int(every.sessions.session_id.iloc[2])
    only = dissect.analyze(files, session=one)
    assert set(only.sessions.session_id) == {one} and set(only.ws_frames.session_id) <= {one}
    sio = dissect.analyze(str(CAPTURES / "sio4_websocket.pcap"), namespace="/chat")
    assert set(sio.sio_packets.namespace) == {"/chat"}
    r = CliRunner().invoke(main, ["report", *files, "--out", str(tmp_path), "--port", "9360", "--no-html", "-q"])
    assert r.exit_code == 0 and (tmp_path / "sessions.csv").read_text().count("\n") == 2


def test_unreadable_file_exits_2_with_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["summary", str(tmp_path / "missing.pcap")])
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0 and "cannot open" in r.output
    (tmp_path / "junk.pcap").write_bytes(b"definitely not a capture")
    r = CliRunner().invoke(main, ["report", str(tmp_path / "junk.pcap"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "not a pcap or pcapng" in r.output
    assert not (tmp_path / "o").exists()  # nothing written for an unusable input


def test_truncated_capture_reports_what_it_read(tmp_path: Path) -> None:
    data = (CAPTURES / "ws_basic.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3])
    r = CliRunner().invoke(main, ["report", str(cut), "--out", str(tmp_path / "o"), "--no-html"])
    assert r.exit_code == 0
    assert "warning: truncated-file" in r.output
    a = dissect.analyze(str(cut))
    assert len(a.ws_frames) > 5 and a.summary["warnings"]["total"] >= 1


def test_ipv4_total_length_zero_tso(tmp_path: Path) -> None:
    """Captures of TSO / BIG TCP senders carry IPv4 total length 0: the frame gives the length."""
    frames = []
    for ts, ip in craft.handshake_and_data([HTTP_REQ], [HTTP_RESP]):
        if len(ip) > 40:
            ip = ip[:2] + b"\x00\x00" + ip[4:]
        frames.append((ts, craft.ethernet(ip)))
    a = one_session(write(tmp_path, "tso.pcap", frames))
    assert (a.sessions.bytes_c2s.iloc[0], a.sessions.bytes_s2c.iloc[0]) == (len(HTTP_REQ), len(HTTP_RESP))
    assert list(a.http.status) == [200]


def test_websocket_without_captured_handshake(tmp_path: Path) -> None:
    """ws_basic cut right after the 101: the frames that follow are still dissected."""
    src = CAPTURES / "ws_basic.pcap"
    full = dissect.analyze(str(src))
    t101 = float(full.handshakes[full.handshakes.layer == "websocket"].ts_end.iloc[0])
    with open(src, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        kept = [(ts, bytes(buf)) for ts, buf in reader if ts > t101 + 1e-7]
    cut = tmp_path / "cut.pcap"
    with open(cut, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, buf in kept:
            w.writepkt(buf, ts=ts)
    mid = dissect.analyze(str(cut))
    s = mid.sessions.iloc[0]
    assert s.app_protocol == "websocket" and "websocket-handshake-not-captured" in s.anomaly
    later = full.ws_frames[full.ws_frames.ts > t101 + 1e-7]
    cols = ["direction", "fin", "opcode", "masked", "payload_len"]
    assert mid.ws_frames[cols].values.tolist() == later[cols].values.tolist()
    assert mid.ws_frames.anomaly.isna().all()


def test_websocket_detection_is_conservative() -> None:
    from dissect.protocols.websocket import frames_tile

    tls_hello = bytes.fromhex("16030100c4010000c00303") + bytes(180)
    assert frames_tile(tls_hello, masked=True) == (False, False)
    assert frames_tile(b"SSH-2.0-OpenSSH_9.6\r\n", masked=False)[0] is False
    assert frames_tile(b"\x81\x05hello", masked=False) == (True, False)
    assert frames_tile(b"\x81\x05hello", masked=True)[0] is False  # a client must mask
    assert frames_tile(b"\x81\x05hell", masked=False)[0] is False  # short: not tiled
    assert frames_tile(b"\xc1\x03abc\x89\x00", masked=False) == (True, True)  # deflate data + ping


def _outer_udp(payload: bytes, dport: int) -> bytes:
    udp = struct.pack("!HHHH", 54321, dport, 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                       socket.inet_aton("192.0.2.1"), socket.inet_aton("192.0.2.2")) + udp


def _outer_gre(inner_ip: bytes, key: bool) -> bytes:
    gre = struct.pack("!HH", 0x2000 if key else 0, 0x0800) + (b"\0\0\0\x07" if key else b"") + inner_ip
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(gre), 1, 0, 64, 47, 0,
                       socket.inet_aton("192.0.2.1"), socket.inet_aton("192.0.2.2")) + gre


@pytest.mark.parametrize("kind", ["vxlan", "geneve", "gre", "gre-key"])
def test_tunnelled_traffic_is_dissected(tmp_path: Path, kind: str) -> None:
    """VXLAN, Geneve and GRE carry whole packets: the inner connection is a session of its own."""
    frames = []
    for ts, ip in craft.handshake_and_data([HTTP_REQ], [HTTP_RESP]):
        if kind == "vxlan":
            outer = _outer_udp(b"\x08\0\0\0\0\0\x01\0" + craft.ethernet(ip), 4789)
        elif kind == "geneve":  # one 4-byte option, inner protocol IPv4
            outer = _outer_udp(bytes([0x01, 0, 0x08, 0x00, 0, 0, 1, 0]) + b"\0\0\0\0" + ip, 6081)
        else:
            outer = _outer_gre(ip, key=kind == "gre-key")
        frames.append((ts, craft.ethernet(outer)))
    a = dissect.analyze(write(tmp_path, "t.pcap", frames))
    inner = a.sessions[a.sessions.transport == "tcp"]
    assert len(inner) == 1 and inner.client_ip.iloc[0] == craft.CLIENT[0]
    assert (inner.bytes_c2s.iloc[0], inner.bytes_s2c.iloc[0]) == (len(HTTP_REQ), len(HTTP_RESP))
    assert list(a.http.status) == [200]
    tunnel = "tunnel-" + kind.split("-")[0]
    assert a.summary["decode"][tunnel] == len(frames)


def test_gc_young_generation_raised_while_dissecting_and_restored() -> None:
    """run_reader enlarges the collector's young generation for the hot loop only, and gives the
    caller its own thresholds back, also when a consumer fails."""
    import gc

    from dissect.capture.reader import CaptureReader
    from dissect.pipeline import YOUNG_GC_THRESHOLD, Pipeline

    capture = str(Path(__file__).resolve().parent.parent / "captures" / "sio4_websocket.pcap")
    seen: list[int] = []

    class Probe:
        fail = False

        def add(self, table: str, rows: object) -> None:
            seen.append(gc.get_threshold()[0])
            if self.fail:
                raise RuntimeError("consumer failed")

    before = gc.get_threshold()
    probe = Probe()
    Pipeline([probe]).run_reader(CaptureReader(capture))
    assert seen and min(seen) >= YOUNG_GC_THRESHOLD
    assert gc.get_threshold() == before
    probe.fail = True
    with pytest.raises(RuntimeError):
        Pipeline([probe]).run_reader(CaptureReader(capture))
    assert gc.get_threshold() == before


def test_counters_of_every_layer_reach_summary_json(tmp_path: Path) -> None:
    """What the transport and the dissectors count without a row reaches summary.json's decode:
    bytes after a switch to a protocol nobody dissects, bytes HTTP could not parse, flows left out
    by a filter."""
    from dissect.api import Filters, run

    req = b"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: foo/1\r\nConnection: Upgrade\r\n\r\nAB"
    resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo/1\r\nConnection: Upgrade\r\n\r\nXYZ"
    conv = craft.handshake_and_data([req, b"CDE"], [resp])
    garbage = craft.handshake_and_data([b"GET / HTTP/1.1\r\n\r\n"], [b"\x00\x01not http at all"], isn_c=7000,
                                       t0=craft.T0 + 10)
    path = tmp_path / "c.pcap"
    path.write_bytes(craft.write_pcap([(t, craft.ethernet(p)) for t, p in conv + garbage]))
    decode = run(str(path), []).summary["decode"]
    assert decode["upgraded-bytes-not-parsed"] == len(b"AB") + len(b"XYZ") + len(b"CDE")
    assert decode["http-bytes-not-parsed"] == len(b"\x00\x01not http at all")
    filtered = run(str(path), [], filters=Filters.make(port=[1])).summary["decode"]
    assert filtered["flows-filtered-out"] == 2  # the second connection reuses the 5-tuple: a new flow
