"""Cross-check dissect against Wireshark's own dissectors (``dissect crosscheck``).

Wireshark (tshark 4.0, or pyshark driving it) dissects the same capture and every disagreement with
dissect's tables is listed. :mod:`.wireshark` runs tshark and reads its fields into a
:class:`WiresharkView` (:mod:`.pyshark_engine` fills the same view through pyshark), :mod:`.checks`
compares that view with dissect's tables (what is compared is listed there) and :mod:`.result`
holds the outcome.

UDP flows are not compared. Wireshark is run with TCP out-of-order reassembly on (dissect
reassembles out-of-order segments too).
"""

from __future__ import annotations

from collections.abc import Callable

from dissect.api import analyze
from dissect.report.crosscheck.checks import TIME_TOLERANCE_NS, compare_analysis
from dissect.report.crosscheck.pyshark_engine import pyshark_view
from dissect.report.crosscheck.result import CHECKS, CrossCheckResult, Disagreement
from dissect.report.crosscheck.wireshark import (
    TSHARK_PREFS,
    Endpoint,
    HttpMessage,
    TcpPacket,
    WiresharkError,
    WiresharkView,
    WsFrame,
    follow_bytes,
    pair_http,
    require_tshark,
    tshark_view,
)

__all__ = [
    "CHECKS",
    "ENGINES",
    "TIME_TOLERANCE_NS",
    "TSHARK_PREFS",
    "CrossCheckResult",
    "Disagreement",
    "Endpoint",
    "HttpMessage",
    "TcpPacket",
    "WiresharkError",
    "WiresharkView",
    "WsFrame",
    "compare",
    "compare_analysis",
    "follow_bytes",
    "pair_http",
    "pyshark_view",
    "require_tshark",
    "tshark_view",
]

#: The ways to run Wireshark's dissectors, by ``--engine`` name.
ENGINES: dict[str, Callable[[str, str | None], WiresharkView]] = {"tshark": tshark_view,
                                                       "pyshark": pyshark_view}


def compare(path: str, engine: str = "tshark", tls_keylog: str | None = None) -> CrossCheckResult:
    """Dissect ``path`` and compare it with Wireshark (``engine`` ``tshark`` or ``pyshark``), both
    decrypting TLS with the key log ``tls_keylog`` when given.

    Raises :class:`~dissect.errors.CaptureError` for a capture dissect cannot read and
    :class:`WiresharkError` when Wireshark is missing or fails.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; engines are {', '.join(ENGINES)}")
    require_tshark()
    analysis = analyze(path, tls_keylog=tls_keylog)
    view = ENGINES[engine](path, tls_keylog)
    return compare_analysis(analysis, view, path, engine)
