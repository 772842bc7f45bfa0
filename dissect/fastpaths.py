"""The switches of every fast path: a shortcut of the common case beside the general code.

Each fast path reads its switch once (when its loop or its dissector starts) and must give
exactly the rows of the general path it shortcuts; ``tests/test_fast_paths.py`` turns each one off
and compares, on the corpus and on generated traffic. ``DISSECT_NO_FAST_PATHS=1`` in the
environment turns them all off (for comparing, or to rule them out when hunting a bug).
"""

from __future__ import annotations

import os
from typing import Any

_ON = os.environ.get("DISSECT_NO_FAST_PATHS", "") in ("", "0")

# pipeline: an in-order TCP segment with nothing held goes straight to its dissector
# (the in-order case of TcpConnection.data, inline in the per-packet loop).
TCP_IN_ORDER = _ON
# WebSocket: a whole unfragmented frame in one segment is parsed, unmasked and emitted in place
# (WebSocketDissector's general frame-by-frame reader).
WS_WHOLE_FRAME = _ON
# Engine.IO over WebSocket: an EVENT or ACK on "/" (``42[...``, ``421[...``, ``431[...``) has its
# header and event name read without the general Socket.IO header parser.
SIO_EVENT_HEADER = _ON
# WebSocket under permessage-deflate: a whole unfragmented compressed frame in one segment is
# unmasked, inflated and emitted in place (the general reader's _begin_frame / _payload / _end_frame
# of a compressed message; the RFC 7692 stage itself, PerMessageInflate, is the same).
WS_DEFLATE_WHOLE_FRAME = _ON
# --dask index pass: a flow whose bytes nobody searches (WebSocket frames or TLS records from a
# file's start, a protocol without sids) is tracked as a --jobs worker tracks another's flow (its
# SYN/FIN/RST and times logged, its packets counted) without reassembling its bytes
# (dissect.run.flow_index; the general path reassembles them for a dissector that drops them).
INDEX_SKIPS_UNSEARCHED = _ON

# -- the compiled core (dissect/compiled/*.pyx, Cython) ------------------------------------------
# Built by setup.py at ``pip install`` where a C compiler and the Python headers exist; without
# them, or when the import fails, or with DISSECT_NO_EXTENSIONS=1 in the environment, the pure-
# Python code runs (the reference: every compiled path gives its rows byte for byte, which
# tests/test_compiled.py checks). This is the one place that decides; the hot code asks here.
NO_EXTENSIONS = os.environ.get("DISSECT_NO_EXTENSIONS", "") not in ("", "0")


def _load_packets() -> Any:
    if NO_EXTENSIONS:
        return None
    try:
        from dissect.compiled import packets  # type: ignore[attr-defined]  # a C extension
    except ImportError:
        return None
    return packets


_packets = _load_packets()
# Whether the compiled core is built and in use.
COMPILED = _packets is not None
# pipeline: the per-packet loop (pcap records, Ethernet/VLAN/SLL/SLL2, IPv4, TCP, the in-order
# segment) in C (dissect/compiled/packets.pyx; Pipeline._loop).
COMPILED_PACKET_LOOP = COMPILED


# WebSocket: whole unfragmented frames of a segment parsed, unmasked and emitted in C
# (dissect/compiled/ws_frames.pxi; the WS_WHOLE_FRAME fast path of WebSocketDissector.feed).
COMPILED_WS_FRAMES = COMPILED


# Engine.IO over WebSocket: an EVENT or ACK on "/" in a whole text frame becomes its sio_packets row
# in C, inside the compiled whole-frame path (dissect/compiled/sio_scan.pxi; the SIO_EVENT_HEADER
# fast path of EngineIOWebSocket.ws_message, which stays the reference). Needs COMPILED_WS_FRAMES.
COMPILED_SIO_SCAN = COMPILED
# WebSocket under permessage-deflate: the whole compressed frames of WS_DEFLATE_WHOLE_FRAME taken
# by the compiled whole-frame path too (unmasked in C, inflated by the same RFC 7692 stage, their
# rows made in C; a message with an anomaly or text that is not ASCII finished by the Python
# fast path's own rows). Needs COMPILED_WS_FRAMES and WS_DEFLATE_WHOLE_FRAME.
COMPILED_WS_DEFLATE = COMPILED


# Output: CSV rows formatted in C (dissect/compiled/csv_rows.pxi; the f-string row_formatter of
# dissect.output.writers generates).
COMPILED_CSV = COMPILED


# sio_broadcasts: a batch's fan-out candidates collected in C (dissect/compiled/fanout.pxi; the loop
# of FanoutCandidates.add_columns, dissect/output/broadcasts.py).
COMPILED_FANOUT = COMPILED
# sio_broadcasts: the candidates cut into fan-outs in C, key by key (dissect/compiled/fanout_groups.pxi;
# the loop of broadcasts.Found.add).
COMPILED_FANOUT_GROUPS = COMPILED


# summary.json: the figures of a batch of ws_frames, ws_messages and sio_packets rows (Counters,
# totals, distributions' values, the sio_broadcasts candidates) counted in C in one walk over the
# row tuples (dissect/compiled/summary_counts.pxi and fanout_add_rows; the columns of
# dissect.output.batch_counts.ColumnCounts and FanoutCandidates.add_columns, the reference).
COMPILED_SUMMARY = COMPILED


# Output: the rows of the compiled WebSocket and Socket.IO paths' steady state (ws_frames, ws_messages,
# sio_packets EVENT / ACK) made without a row tuple, straight into their CSV line, summary.json's
# figures and the sio_broadcasts candidates, when every consumer of the run takes such batches (a
# CSV report without report.html, and the summary): dissect/compiled/direct_rows.pxi; the tuples,
# the CSV formatter, batch_counts.RowCounts and FanoutCandidates.add_rows are the reference.
COMPILED_DIRECT_ROWS = COMPILED


def compiled_direct_rows() -> Any:
    """The compiled core's DirectRows class, or None for row tuples only."""
    return _packets.DirectRows if COMPILED_DIRECT_ROWS and _packets is not None else None


def compiled_summary() -> Any:
    """The compiled batch counter of summary.json, or None for the Python code on columns."""
    return _packets.summary_counts if COMPILED_SUMMARY and _packets is not None else None


def compiled_fanout_rows() -> Any:
    """The compiled candidate loop over sio_packets row tuples, or None for the columns' loop."""
    return _packets.fanout_add_rows if COMPILED_SUMMARY and _packets is not None else None


def compiled_fanout() -> Any:
    """The compiled FanoutCandidates.add_columns, or None for the Python loop."""
    return _packets.fanout_add_columns if COMPILED_FANOUT and _packets is not None else None


def compiled_fanout_groups() -> Any:
    """The compiled grouping of sio_broadcasts candidates, or None for the Python loop."""
    return _packets.fanout_groups if COMPILED_FANOUT_GROUPS and _packets is not None else None


def compiled_csv() -> Any:
    """The compiled CSV batch formatter, or None for the generated f-strings."""
    return _packets.format_csv if COMPILED_CSV and _packets is not None else None


def compiled_core() -> Any:
    """The compiled core's module (to configure it), or None when it is not in use."""
    return _packets


def compiled_ws_frames() -> Any:
    """The compiled whole-frame WebSocket function, or None for the Python fast path alone."""
    return _packets.ws_whole_frames if COMPILED_WS_FRAMES and _packets is not None else None


def compiled_packets() -> Any:
    """The compiled per-packet loop's module, or None for the pure-Python loop."""
    return _packets if COMPILED_PACKET_LOOP else None


def implementation() -> str:
    """What ``dissect --version`` says: "compiled core" or "pure Python"."""
    return "compiled core" if COMPILED else "pure Python"
