"""Resource limits a user can set (``dissect report --max-flows`` and friends).

They bound what a hostile or enormous capture can make dissect hold, and what its rows carry
(``--payloads``); every layer that keeps state reads its bound from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Limits:
    max_flows: int = 200_000
    # TCP flows with a SYN and no answer yet (a SYN flood, a scan): past this many the oldest are
    # written out (each still a sessions row); an answer that comes later starts a new session
    max_half_open: int = 50_000
    idle_timeout_s: float = 600.0
    closed_linger_s: float = 30.0
    max_reassembly_bytes: int = 8 << 20  # held out-of-order bytes per direction
    max_message_bytes: int = 16 << 20  # one reassembled / decompressed WebSocket message
    max_body_bytes: int = 8 << 20  # HTTP bodies kept for Engine.IO polling
    # --payloads: rows carry whole messages (ws_messages.payload, sio_packets.data); off by
    # default, for size. A message over max_message_bytes has no payload (its anomaly says why).
    payloads: bool = False
