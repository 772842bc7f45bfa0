"""The messages HTTP reports to the layer above (RFC 9112 sections 3-6), and that layer's hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["HttpRequest", "HttpResponse", "HttpUpper", "Trailing"]


@dataclass(slots=True)
class HttpRequest:
    """One request: request-line (RFC 9112 section 3) and field section (section 5).

    ``headers`` has lower-cased names; a repeated field is joined with ``", "`` (RFC 9110 section
    5.3). ``body`` is the payload (chunked coding removed) only when the upper layer's
    ``want_body`` returned True, cut at ``max_body_bytes``, and None when bytes of it were lost;
    ``body_bytes`` always counts the whole payload.
    """

    ts: int  # ts of the data that carried the request-line's first byte
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes | None = field(default=None, repr=False)
    body_bytes: int = 0
    frame: int | None = None  # Wireshark's number of the packet that completed the head


@dataclass(slots=True)
class HttpResponse:
    """One response: status-line (RFC 9112 section 4) and field section; body as in HttpRequest."""

    ts: int  # ts of the data that carried the status-line's first byte
    version: str
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes | None = field(default=None, repr=False)
    body_bytes: int = 0
    frame: int | None = None  # Wireshark's number of the packet that completed the head


# What HTTP held when it stopped at a 101 (h11's ``trailing_data``), in order: (direction, ts,
# bytes), or a count of lost bytes in place of bytes.
Trailing = list[tuple[int, int, bytes | int]]


class HttpUpper(Protocol):
    """The layer above HTTP (Engine.IO polling, the WebSocket handshake)."""

    def want_body(self, request: HttpRequest) -> bool:
        """Called when the request's header section is complete: keep both bodies?"""
        ...

    def http_request(self, session_id: int, request: HttpRequest) -> None:
        """The request is complete, body included."""
        ...

    def http_response(
        self, session_id: int, request: HttpRequest | None, response: HttpResponse
    ) -> None:
        """The final response is complete (not called for 1xx, including 101)."""
        ...

    def http_unanswered(self, session_id: int, request: HttpRequest) -> None:
        """The request got no response before the connection (or the capture) ended."""
        ...

    def http_switched(
        self, session_id: int, request: HttpRequest, response: HttpResponse, trailing: Trailing
    ) -> None:
        """A 101: HTTP has stopped; ``trailing`` is what it held of the new protocol (both
        directions, in order). The owner of the connection decides where it and the rest go."""
        ...
