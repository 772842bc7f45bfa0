"""``dissect follow``: every message of a session, in order, on the corpus."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

import dissect
from dissect.cli import main

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
FOLLOWED = ["sio4_websocket.pcap", "sio4_polling_upgrade.pcapng", "sio2_websocket.pcap", "ws_basic.pcap",
            "websockets_py.pcapng", "http_keepalive.pcap", "tls13_sio4_polling_upgrade.pcapng"]


def keys(name: str) -> list[str]:
    k = (CAPTURES / name).with_suffix(".keys")
    return ["--tls-keylog", str(k)] if k.exists() else []


@pytest.mark.parametrize("name", FOLLOWED)
def test_follow_shows_every_message_of_every_session_in_order(name: str) -> None:
    path = str(CAPTURES / name)
    key = keys(name)
    a = dissect.analyze(path, payloads=True, tls_keylog=key[1] if key else None)
    runner = CliRunner()
    for sid in a.sessions.session_id:
        res = runner.invoke(main, ["follow", path, "--session", str(sid), "--format", "jsonl", "-q", *key])
        assert res.exit_code == 0, res.output
        events = [json.loads(line) for line in res.output.splitlines()]
        assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
        kinds = Counter((e["layer"], e["kind"]) for e in events)
        sio = a.sio_packets[a.sio_packets.session_id == sid]
        http = a.http[a.http.session_id == sid]
        assert kinds[("http", "request")] == len(http)
        assert kinds[("http", "response")] == int(http.ts_response.notna().sum())
        assert sum(n for (layer, _), n in kinds.items() if layer in ("engineio", "socketio")
                   ) == len(sio) + int((a.handshakes[a.handshakes.session_id == sid].layer.isin(
                       ["engineio", "socketio"])).sum())
        if not (sio.transport == "websocket").any():
            msgs = a.ws_messages[(a.ws_messages.session_id == sid) & a.ws_messages.opcode_name.isin(["text", "binary"])]
            assert kinds[("websocket", "message")] == len(msgs)
            assert [e.get("data") for e in events if e["kind"] == "message"] == [
                p if isinstance(p, str) else None for p in msgs.payload]
        assert kinds[("tcp", "end")] == 1


def test_follow_by_tcp_stream_and_frame_pick_the_same_session() -> None:
    path = str(CAPTURES / "sio4_websocket.pcap")
    a = dissect.analyze(path)
    second = a.sessions.iloc[1]
    frame = int(a.ws_frames[a.ws_frames.session_id == second.session_id].frame.iloc[3])
    outs = []
    for how in (["--session", str(second.session_id)], ["--tcp-stream", str(second.tcp_stream)],
                ["--frame", str(frame)]):
        res = CliRunner().invoke(main, ["follow", path, *how, "--format", "jsonl", "-q"])
        assert res.exit_code == 0, res.output
        outs.append(res.output)
    assert outs[0] == outs[1] == outs[2] and outs[0]


def test_follow_text_and_errors() -> None:
    path = str(CAPTURES / "sio4_websocket.pcap")
    res = CliRunner().invoke(main, ["follow", path, "--session", "1", "-q"])
    assert res.exit_code == 0 and "EVENT / \"hello\"" in res.output and "\x1b[" not in res.output  # no colour
    none = CliRunner().invoke(main, ["follow", path, "--session", "99", "-q"])
    assert none.exit_code == 2 and "no session 99" in none.output
    both = CliRunner().invoke(main, ["follow", path, "--session", "1", "--frame", "3", "-q"])
    assert both.exit_code == 2
