"""dissect against the peers' own records: every capture in captures/ with its <name>.truth.json.

The truth files were written by the real clients and servers while they sent and received (see
captures/make/*/README.md); nothing in them comes from the capture. Each test compares one kind
of fact for every capture that records it.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import dissect
from dissect.output.tables import Analysis

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
TRUTHS = sorted(CAPTURES.glob("*.truth.json"))


def capture_of(truth_path: Path) -> Path:
    name = truth_path.name[: -len(".truth.json")]
    for ext in (".pcap", ".pcapng", ".pcap.gz"):
        p = truth_path.with_name(name + ext)
        if p.exists():
            return p
    raise FileNotFoundError(f"no capture for {truth_path}")


def tls_keys(name: str) -> dict[str, Any]:
    """The TLS truth's word on keys: shipped or not, in a .keys file or in the capture (DSB)."""
    return truth(name).get("tls", {}).get("keys", {})


def keylog_of(name: str) -> str | None:
    keys = tls_keys(name)
    return str(CAPTURES / keys["file"]) if keys.get("shipped") and keys.get("file") else None


def decryptable(name: str) -> bool:
    """Plaintext, or TLS whose keys the corpus ships (a key log file or a Decryption Secrets Block)."""
    return "tls" not in truth(name) or bool(tls_keys(name).get("shipped"))


@cache
def analysis(name: str) -> Analysis:
    return dissect.analyze(str(capture_of(CAPTURES / f"{name}.truth.json")), tls_keylog=keylog_of(name))


# Captures whose application layer dissect does not decode yet, with the reason; each is checked
# for what dissect says instead (test_not_yet_decoded_is_said_so).
NOT_DECODED: dict[str, str] = {}


@cache
def truth(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURES / f"{name}.truth.json").read_text())
    return data


def names_with(key: str) -> list[str]:
    """The captures whose truth has ``key`` and whose traffic dissect can see into."""
    out = []
    for p in TRUTHS:
        name = p.name[: -len(".truth.json")]
        if truth(name).get(key) and decryptable(name) and name not in NOT_DECODED:
            out.append(name)
    return out


def ws_names() -> list[str]:
    return [n for n in names_with("connections") if "messages" in truth(n)["connections"][0]]


def sio_names() -> list[str]:
    return names_with("events")


def test_corpus_is_there() -> None:
    assert len(TRUTHS) >= 15, "the corpus in captures/ is missing"
    assert ws_names() and sio_names() and names_with("http") and names_with("udp")


def session_of(a: Analysis, client_port: int, transport: str = "tcp") -> Any:
    rows = a.sessions[(a.sessions.client_port == client_port) & (a.sessions.transport == transport)]
    assert len(rows) == 1, f"expected one {transport} session from client port {client_port}, got {len(rows)}"
    return rows.iloc[0]


# -- WebSocket -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ws_names())
def test_ws_messages_match_peers(name: str) -> None:
    a, t = analysis(name), truth(name)
    for conn in t["connections"]:
        sid = session_of(a, conn["client_port"]).session_id
        msgs = a.ws_messages[a.ws_messages.session_id == sid]
        for direction in ("c2s", "s2c"):
            want = [(m["opcode"], m["payload_bytes"], m["fragments"]) for m in conn["messages"]
                    if m["direction"] == direction]
            got_rows = msgs[(msgs.direction == direction) & msgs.opcode_name.isin(["text", "binary"])]
            got = list(zip(got_rows.opcode_name, got_rows.payload_bytes.astype(int), got_rows.frames,
                           strict=True))
            assert got == want, f"{name} port {conn['client_port']} {direction}"
            texts = [m.get("text") for m in conn["messages"] if m["direction"] == direction]
            for want_text, got_text in zip(texts, got_rows.text_preview, strict=True):
                if want_text is not None:  # an empty text is missing in the tables (an empty CSV cell)
                    assert (got_text if isinstance(got_text, str) else "") == want_text[:64]


@pytest.mark.parametrize("name", ws_names())
def test_ws_frames_match_peers(name: str) -> None:
    """Every frame header each peer wrote (recorded through the libraries' frame hooks)."""
    a, t = analysis(name), truth(name)
    for conn in t["connections"]:
        if not conn.get("frames"):
            continue
        sid = session_of(a, conn["client_port"]).session_id
        fr = a.ws_frames[a.ws_frames.session_id == sid]
        for direction in ("c2s", "s2c"):
            want = [(f["fin"], f["rsv1"], f["opcode"], f["masked"], f["payload_len"], f["header_len"])
                    for f in conn["frames"] if f["direction"] == direction]
            rows = fr[fr.direction == direction]
            got = list(zip(rows.fin, rows.rsv1, rows.opcode, rows.masked, rows.payload_len, rows.header_len,
                           strict=True))
            assert got == want, f"{name} port {conn['client_port']} {direction}"
        assert fr.anomaly.isna().all(), fr[fr.anomaly.notna()].to_string()


@pytest.mark.parametrize("name", ws_names())
def test_ws_control_and_close_match_peers(name: str) -> None:
    a, t = analysis(name), truth(name)
    for conn in t["connections"]:
        sid = session_of(a, conn["client_port"]).session_id
        msgs = a.ws_messages[a.ws_messages.session_id == sid]
        ctl = msgs[msgs.opcode_name.isin(["ping", "pong", "close"])]
        want = Counter((c["direction"], c["opcode"]) for c in conn.get("control", []))
        got = Counter(zip(ctl.direction, ctl.opcode_name, strict=True))
        assert got == want, f"{name} port {conn['client_port']}"
        close = conn.get("close")
        if close and close.get("code") is not None:
            fr = a.ws_frames[(a.ws_frames.session_id == sid) & (a.ws_frames.opcode == 8)]
            initiator = "c2s" if close["initiator"] == "client" else "s2c"
            first = fr[fr.direction == initiator].iloc[0]
            assert first.close_code == close["code"]
            reason = first.close_reason  # an empty reason is missing in the tables (an empty CSV cell)
            assert (reason if isinstance(reason, str) else "") == close["reason"]


@pytest.mark.parametrize("name", ws_names())
def test_ws_handshake_and_bytes_match_peers(name: str) -> None:
    a, t = analysis(name), truth(name)
    for conn in t["connections"]:
        s = session_of(a, conn["client_port"])
        hs = a.handshakes[(a.handshakes.session_id == s.session_id) & (a.handshakes.layer == "websocket")]
        assert len(hs) == 1 and bool(hs.iloc[0].ok)
        assert "accept=valid" in hs.iloc[0].detail
        if conn.get("subprotocol"):
            assert f"subprotocol={conn['subprotocol']}" in hs.iloc[0].detail
        if conn.get("extensions"):
            assert "permessage-deflate" in hs.iloc[0].detail
        tb = conn.get("tcp_payload_bytes")
        if tb and "tls" not in t:  # over TLS the peers counted the bytes inside TLS
            assert (s.bytes_c2s, s.bytes_s2c) == (tb["c2s"], tb["s2c"])
        assert s.app_protocol == "websocket"


# -- HTTP ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", names_with("http"))
def test_http_exchanges_match_peers(name: str) -> None:
    a, t = analysis(name), truth(name)
    by_port: dict[int, list[dict[str, Any]]] = {}
    for h in t["http"]:
        if h.get("http_version") == "2":
            continue  # HTTP/2 is not dissected (test_tls_h2_is_not_parsed_as_http1)
        by_port.setdefault(h["client_port"], []).append(h)
    for port, want in by_port.items():
        sid = session_of(a, port).session_id
        rows = a.http[a.http.session_id == sid]
        if "target" not in want[0]:  # the Socket.IO corpus records the method (and the 101) per request
            assert [r.method for r in rows.itertuples()] == [h["method"] for h in want]
            assert [r.status for r in rows.itertuples() if r.status == 101] == [h["status"] for h in want
                                                                                if h.get("status") == 101]
            continue
        got = [(r.method, r.target, r.status, r.body_bytes) for r in rows.itertuples()]
        assert got == [(h["method"], h["target"], h["status"], h["body_bytes"]) for h in want], name
        for h, r in zip(want, rows.itertuples(), strict=True):
            if "request_body_bytes" in h:
                assert r.request_body_bytes == h["request_body_bytes"]
            if h.get("content_length") is not None:
                assert r.content_length == h["content_length"]
            assert pd.isna(r.anomaly), r.anomaly


# -- UDP -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", names_with("udp"))
def test_udp_flow_matches_peers(name: str) -> None:
    a, t = analysis(name), truth(name)
    u = t["udp"]
    s = session_of(a, u["client_port"], "udp")
    assert s.server_port == u["server_port"]
    assert (s.packets_c2s, s.bytes_c2s) == (u["c2s"]["datagrams"], u["c2s"]["bytes"])
    assert (s.packets_s2c, s.bytes_s2c) == (u["s2c"]["datagrams"], u["s2c"]["bytes"])


# -- Engine.IO / Socket.IO -------------------------------------------------------------------------


def sio_rows(a: Analysis) -> Any:
    return a.sio_packets


@pytest.mark.parametrize("name", sio_names())
def test_sio_events_match_peers(name: str) -> None:
    a, t = analysis(name), truth(name)
    p = sio_rows(a)
    ev = p[p.sio_type.isin(["EVENT", "BINARY_EVENT"])]
    got = Counter(zip(ev.eio_sid, ev.direction, ev.namespace, ev.event, ev.sio_type,
                      ev.attachments.fillna(0).astype(int), strict=True))
    want = Counter((e["eio_sid"], e["direction"], e["namespace"], e["event"], e["sio_type"],
                    e["binary_attachments"]) for e in t["events"])
    assert got == want


@pytest.mark.parametrize("name", sio_names())
def test_sio_acks_match_peers(name: str) -> None:
    a, t = analysis(name), truth(name)
    p = sio_rows(a)
    ack = p[p.sio_type.isin(["ACK", "BINARY_ACK"])]
    got = Counter(zip(ack.eio_sid, ack.direction, ack.namespace, ack.ack_id.astype(int), ack.sio_type,
                      strict=True))
    want = Counter((e["eio_sid"], e["direction"], e["namespace"], e["ack_id"], e["sio_type"])
                   for e in t["acks"])
    assert got == want
    # Every ack answers an event the capture holds: its latency is known and positive.
    assert ack.ack_latency_ms.notna().all() and (ack.ack_latency_ms > 0).all()


@pytest.mark.parametrize("name", sio_names())
def test_sio_namespaces_match_peers(name: str) -> None:
    a, t = analysis(name), truth(name)
    hs = a.handshakes[a.handshakes.layer == "socketio"]
    got = Counter((d.split("namespace=")[1].split(" ")[0], bool(ok)) for d, ok in zip(hs.detail, hs.ok, strict=True))
    want = Counter((n["namespace"], bool(n["ok"])) for n in t["namespaces"])
    assert got == want
    for n in t["namespaces"]:
        if n.get("error"):
            assert hs.detail.str.contains(n["error"], regex=False).any()


@pytest.mark.parametrize("name", sio_names())
def test_eio_sessions_and_packets_match_peers(name: str) -> None:
    a, t = analysis(name), truth(name)
    p = sio_rows(a)
    assert set(p.eio_sid.dropna()) == {c["eio_sid"] for c in t["connections"]}
    for conn in t["connections"]:
        mine = p[p.eio_sid == conn["eio_sid"]]
        for direction in ("c2s", "s2c"):
            want = {k: v for k, v in conn.get("engineio_packets", {}).get(direction, {}).items() if v}
            if not want:
                continue
            got = Counter(mine[mine.direction == direction].eio_type)
            if conn.get("close_action") in ("frozen", "sigkill"):
                # a stopped peer's own log ends when it was stopped or killed; the wire may hold
                # what it sent after (a resumed client's close or pong): at least what it logged
                assert all(got[k] >= v for k, v in want.items()), f"{name} {conn['eio_sid']} {direction}"
            else:
                assert dict(got) == want, f"{name} {conn['eio_sid']} {direction}"
        ws_port = conn.get("websocket_client_port")
        if ws_port:
            assert session_of(a, ws_port).app_protocol in ("socketio", "engineio")
        for port in conn.get("polling_client_ports") or []:
            assert session_of(a, port).app_protocol in ("socketio", "engineio", "http")
    eio = a.handshakes[a.handshakes.layer == "engineio"]
    assert len(eio) == len(t["connections"]) and eio.ok.all()
    assert set(p.eio_version.dropna().astype(int)) == {t["eio_version"]}


# -- TLS -------------------------------------------------------------------------------------------

TLS_NAMES = [p.name[: -len(".truth.json")] for p in TRUTHS if "tls" in truth(p.name[: -len(".truth.json")])]
VERSION_NAMES = {"TLSv1.3": "TLS 1.3", "TLSv1.2": "TLS 1.2"}


@pytest.mark.parametrize("name", TLS_NAMES)
def test_tls_sessions_match_peers(name: str) -> None:
    """Version, cipher, SNI, ALPN and resumption as both peers reported them; decrypted exactly
    when the corpus ships the keys; a tls handshake row per connection, ok, in the chain."""
    a, t = analysis(name), truth(name)
    shipped = bool(tls_keys(name).get("shipped"))
    assert len(t["tls"]["connections"]) >= 1
    for conn in t["tls"]["connections"]:
        s = session_of(a, conn["client_port"])
        assert s.tls_version == VERSION_NAMES.get(conn["version"], conn["version"])
        assert s.tls_cipher == conn["cipher"] or conn["cipher"].replace("-", "_") in s.tls_cipher
        assert s.sni == conn["sni"]
        assert (s.alpn if isinstance(s.alpn, str) else None) == conn["alpn"]
        assert bool(s.tls_decrypted) == shipped
        hs = a.handshakes[(a.handshakes.session_id == s.session_id)]
        tls = hs[hs.layer == "tls"]
        assert len(tls) == 1 and bool(tls.iloc[0].ok)
        assert f"resumed={str(bool(conn['session_reused'])).lower()}" in tls.iloc[0].detail
        assert ("decrypted=true" in tls.iloc[0].detail) == shipped
        if not shipped:
            assert "(no keys)" in tls.iloc[0].detail and s.app_protocol == "tls"
        elif conn["alpn"] == "h2":
            assert s.app_protocol == "tls"  # HTTP/2 is reported, never parsed as HTTP/1
        else:
            assert s.app_protocol in ("http", "websocket", "engineio", "socketio")
            tcp_row, tls_row = hs[hs.layer == "tcp"].iloc[0], tls.iloc[0]
            assert tcp_row.ts_end <= tls_row.ts_start <= tls_row.ts_end
            ws = hs[hs.layer == "websocket"]
            assert (ws.ts_start >= tls_row.ts_end).all()  # the upgrade came through TLS


def test_tls_h2_is_not_parsed_as_http1() -> None:
    a = analysis("tls_h2")
    assert a.sessions.iloc[0].alpn == "h2" and len(a.http) == 0
    assert a.summary["decode"]["h2-bytes-not-parsed"] > 0


def test_another_custom_parser_is_said_so(tmp_path: Path) -> None:
    """A custom parser that is not socket.io-msgpack-parser's (here: its maps with the packet type
    renamed, as a home-made binary parser would write) is reported as such, never decoded into
    invented events."""
    import dpkt

    src = CAPTURES / "sio4_msgpack.pcap"
    out = tmp_path / "other_parser.pcap"
    with src.open("rb") as f, out.open("wb") as g:
        r = dpkt.pcap.Reader(f)
        w = dpkt.pcap.Writer(g, linktype=r.datalink())
        for ts, buf in r:
            w.writepkt(buf.replace(b"\xa4type", b"\xa4kind"), ts)  # same length: TCP unchanged
    p = sio_rows(dissect.analyze(str(out)))
    # (the client's frames are masked: only the server's maps were renamed, and the client's are
    # still msgpack-parser's packets)
    renamed = p[(p.eio_type == "message") & (p.transport == "websocket") & (p.direction == "s2c")]
    assert len(renamed) > 10 and (renamed.anomaly == "custom-parser").all()
    assert renamed.sio_type.isna().all() and renamed.event.isna().all()
