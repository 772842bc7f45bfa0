"""Errors a user can meet. Everything else that goes wrong in a capture is a warning or an anomaly."""

from __future__ import annotations


class DissectError(Exception):
    """Base of dissect's own errors; the CLI prints its message on one line and exits 2."""


class CaptureError(DissectError, OSError):
    """A capture file that cannot be read at all (missing, unreadable, not a pcap/pcapng).

    It is an :class:`OSError` too, as Python's own "this file cannot be read as that format" errors
    are (``gzip.BadGzipFile``, PIL's ``UnidentifiedImageError``): what fails is reading a file, and
    code that already handles ``OSError`` around file input (a missing file is a
    ``FileNotFoundError``) handles it without knowing dissect. Its ``str()`` is the one-line message;
    ``errno`` and ``filename`` are not set.
    """


class CaptureWarning(UserWarning):
    """A capture that was read, but not all of it as it should be (a truncated file, corrupt
    records, packets cut by the snaplen...): ``dissect.analyze`` warns with it besides listing the
    problem in ``summary["warnings"]``. Silence it with
    ``warnings.simplefilter("ignore", dissect.errors.CaptureWarning)``; make it an error with
    ``"error"`` in place of ``"ignore"``."""
