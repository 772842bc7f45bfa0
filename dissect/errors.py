"""Errors a user can meet. Everything else that goes wrong in a capture is a warning or an anomaly."""

from __future__ import annotations


class DissectError(Exception):
    """Base of dissect's own errors; the CLI prints its message on one line and exits 2."""


class CaptureError(DissectError):
    """A capture file that cannot be read at all (missing, unreadable, not a pcap/pcapng)."""
