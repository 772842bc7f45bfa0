"""``dissect follow``: one session's conversation at the message layer (:mod:`dissect.report.follow`)."""

from __future__ import annotations

import sys

import click

from dissect.cli.common import analyze_captures, fail, filter_arguments
from dissect.cli.options import dask_option, filter_options


@click.command("follow")
@click.argument("captures", nargs=-1, required=True)
@click.option("--tcp-stream", type=int, help="The session Wireshark numbers tcp.stream N (in the first capture file).")
@click.option("--frame", type=int,
              help="The session of the packet Wireshark numbers N (a packet that ends one of its rows, or its first).")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True,
              help="Lines for people (colour on a terminal), or one JSON object per event.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@dask_option("the rows come back to this machine (with --session, only that session's: the tasks filter them).")
@filter_options
def follow(captures: tuple[str, ...], tcp_stream: int | None, frame: int | None,
           fmt: str, quiet: bool, dask_address: str | None, port: tuple[int, ...], host: tuple[str, ...],
           session_ids: tuple[int, ...],
           namespace: tuple[str, ...], tls_keylog: str | None, payloads: bool, since: str | None,
           until: str | None, event: tuple[str, ...]) -> None:
    """Follow one session of CAPTURES in time order, a layer above Wireshark's Follow TCP Stream:
    HTTP exchanges, the upgrade, WebSocket messages (decompressed, whole), Socket.IO packets with
    namespace, event, ack id and data, pings, the close. Pick it with --session N (the session_id
    of every table), --tcp-stream N or --frame N (one of them). Payloads are always shown (--payloads is implied).

    Exit 0; 2 when the captures cannot be read or no such session exists.
    """
    from dissect.report.follow import find_session, session_events, write_jsonl, write_text

    session_id = session_ids[0] if session_ids else None
    if len(session_ids) > 1 or sum(x is not None for x in (session_id, tcp_stream, frame)) != 1:
        raise click.UsageError("give one of --session N, --tcp-stream N, --frame N")
    # only --session narrows the analysis: --tcp-stream and --frame need every session's numbers
    args = filter_arguments(port, host, session_ids, namespace, tls_keylog, True, since, until, event)
    analysis = analyze_captures("follow", captures, quiet, args, dask=dask_address)
    sid = find_session(analysis, session_id, tcp_stream, frame)
    if sid is None:
        what = (f"session {session_id}" if session_id is not None else
                f"tcp.stream {tcp_stream}" if tcp_stream is not None else f"a row ending at frame {frame}")
        fail("follow", f"no {what} in {', '.join(captures)}")
    events = session_events(analysis, sid)
    if fmt == "jsonl":
        write_jsonl(events, sid, sys.stdout)
    else:
        write_text(analysis, sid, events, sys.stdout, colour=sys.stdout.isatty())
