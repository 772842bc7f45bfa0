"""Cross-check dissect against Wireshark's own dissectors (``dissect crosscheck``).

Wireshark (tshark 4.0, or pyshark driving it) dissects the same capture and every disagreement with
dissect's tables is listed. :mod:`.wireshark` runs tshark and reads its fields into a
:class:`WiresharkView` (:mod:`.pyshark_engine` fills the same view through pyshark), :mod:`.checks`
compares that view with dissect's tables (what is compared is listed there) and :mod:`.result`
holds the outcome.

UDP flows are not compared. Wireshark is run with TCP out-of-order reassembly on (dissect
reassembles out-of-order segments too). ``--port`` / ``--host`` select the same flows on both
sides (a Wireshark display filter). A capture cut short is compared as far as tshark reads it, and
the result's ``notes`` say so.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

from dissect.api import analyze
from dissect.errors import CaptureWarning
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
    display_filter,
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
    "display_filter",
    "follow_bytes",
    "pair_http",
    "pyshark_view",
    "require_tshark",
    "tshark_view",
]

#: The ways to run Wireshark's dissectors, by ``--engine`` name: (capture, key log, display filter)
#: -> view.
ENGINES: dict[str, Callable[[str, str | None, str | None], WiresharkView]] = {"tshark": tshark_view,
                                                                   "pyshark": pyshark_view}


def compare(path: str, engine: str = "tshark", tls_keylog: str | None = None, port: Iterable[int] = (),
            host: Iterable[str] = ()) -> CrossCheckResult:
    """Dissect ``path`` and compare it with Wireshark (``engine`` ``tshark`` or ``pyshark``), both
    decrypting TLS with the key log ``tls_keylog`` when given, both limited to the flows of ``port``
    / ``host`` when given.

    Raises :class:`~dissect.errors.CaptureError` for a capture dissect cannot read,
    :class:`WiresharkError` when Wireshark is missing or fails, ValueError for a ``host`` that is not
    an IP address. A capture cut short is compared as far as Wireshark read it (``notes`` say so).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; engines are {', '.join(ENGINES)}")
    ports, hosts = list(port), list(host)
    flows = display_filter(ports, hosts)
    require_tshark()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptureWarning)  # said in the result's notes instead
        analysis = analyze(path, tls_keylog=tls_keylog, port=ports or None, host=hosts or None)
    view = ENGINES[engine](path, tls_keylog, flows)
    result = compare_analysis(analysis, view, path, engine)
    for kind, info in ((analysis.summary.get("warnings") or {}).get("by_kind") or {}).items():
        details = info.get("details") or [] if isinstance(info, dict) else []
        result.note(f"dissect: {kind}" + (f" ({details[0]})" if details else ""))
    for note in view.notes:
        result.note(note)
    return result
