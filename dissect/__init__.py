"""dissect: offline dissection of TCP, HTTP/1.x, WebSocket, Engine.IO and Socket.IO captures.

    >>> import dissect
    >>> a = dissect.analyze("captures/sio4_websocket.pcap")
    >>> a.sio_packets[a.sio_packets.sio_type == "EVENT"].event.value_counts()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Analysis", "analyze", "__version__"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from dissect.api import analyze
    from dissect.output.tables import Analysis


def __getattr__(name: str) -> Any:
    # Imported on first use: the command line does not pay for pandas unless it needs DataFrames.
    if name == "analyze":
        from dissect.api import analyze

        return analyze
    if name == "Analysis":
        from dissect.output.tables import Analysis

        return Analysis
    raise AttributeError(f"module 'dissect' has no attribute {name!r}")
