"""The WebSocket opening handshake: RFC 6455 section 4.2.2 (Sec-WebSocket-Accept) and the
RFC 7692 section 7.1 permessage-deflate negotiation (Sec-WebSocket-Extensions, section 9.1).

:func:`negotiate` judges a captured GET / 101 pair for the ``handshakes`` row and returns the
:class:`DeflateParams` the dissector needs; nothing here looks at frames.
"""

from __future__ import annotations

import base64
import hashlib
from typing import NamedTuple

__all__ = ["GUID", "DeflateParams", "accept_key", "negotiate"]

# RFC 6455 section 1.3 / 4.2.2: the GUID concatenated to Sec-WebSocket-Key.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for ``key``: base64(SHA-1(key + GUID)), RFC 6455 section 4.2.2."""
    digest = hashlib.sha1((key + GUID).encode("latin-1", "replace")).digest()
    return base64.b64encode(digest).decode("ascii")


class DeflateParams(NamedTuple):
    """permessage-deflate parameters agreed in the server's response, RFC 7692 section 7.1.

    ``server_*`` govern what the server sends (s2c), ``client_*`` what the client sends (c2s).
    """

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int  # 15 when absent
    client_max_window_bits: int  # 15 when absent


def _split_top(value: str, sep: str) -> list[str]:
    """Split a header value on ``sep`` outside quoted-strings (RFC 7230 3.2.6)."""
    out: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return [p for p in out if p]


def _parse_extensions(value: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Sec-WebSocket-Extensions (RFC 6455 section 9.1): [(name, [(param, value|None)])]."""
    exts: list[tuple[str, list[tuple[str, str | None]]]] = []
    for ext in _split_top(value, ","):
        parts = _split_top(ext, ";")
        if not parts:
            continue
        params: list[tuple[str, str | None]] = []
        for p in parts[1:]:
            name, eq, val = p.partition("=")
            v: str | None = None
            if eq:
                v = val.strip()
                if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                    v = v[1:-1].replace("\\", "")
            params.append((name.strip().lower(), v))
        exts.append((parts[0].lower(), params))
    return exts


def _deflate_from_response(
    params: list[tuple[str, str | None]],
) -> tuple[DeflateParams, bool]:
    """RFC 7692 7.1: the response's permessage-deflate parameters; (params, all valid)."""
    valid = True
    seen: set[str] = set()
    snct = cnct = False
    smwb = cmwb = 15
    for name, val in params:
        if name in seen:
            valid = False  # 7.1: a parameter must not appear twice
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if val is not None:
                valid = False
            if name[0] == "s":
                snct = True
            else:
                cnct = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            # 7.1.2: in a response both need a value in 8..15 (1*DIGIT, no leading zero)
            bits = int(val) if val is not None and val.isdigit() and val[0] != "0" else 0
            if not 8 <= bits <= 15:
                valid = False
                bits = 15
            if name[0] == "s":
                smwb = bits
            else:
                cmwb = bits
        else:
            valid = False
    return DeflateParams(snct, cnct, smwb, cmwb), valid


def negotiate(
    request_headers: dict[str, str],
    response_headers: dict[str, str],
    status: int = 101,
) -> tuple[bool, str, DeflateParams | None]:
    """Judge an opening handshake, RFC 6455 section 4.2.2 / 4.1 and RFC 7692 section 5, 7.1.

    ``request_headers`` / ``response_headers``: the upgrade GET's and the response's headers,
    names lower-case, values as on the wire, repeated headers joined with ``", "``.  ``status``
    is the response's status code, only echoed in ``detail`` (judging it is the caller's).

    Returns ``(ok, detail, deflate)``: ``ok`` when Sec-WebSocket-Accept matches the key;
    ``detail`` for the handshakes row, e.g. ``status=101 accept=valid subprotocol=chat
    extensions=permessage-deflate; client_no_context_takeover``; ``deflate`` the
    permessage-deflate parameters when the response accepted that extension, else None.
    """
    key = request_headers.get("sec-websocket-key", "").strip()
    accept = response_headers.get("sec-websocket-accept")
    if accept is None:
        verdict = "missing"
    elif not key:
        verdict = "no-key"
    elif accept.strip() == accept_key(key):
        verdict = "valid"
    else:
        verdict = "invalid"
    ok = verdict == "valid"
    detail = [f"status={status}", f"accept={verdict}"]

    proto = response_headers.get("sec-websocket-protocol")
    if proto is not None:
        detail.append(f"subprotocol={proto.strip()}")
        asked = request_headers.get("sec-websocket-protocol", "")
        if proto.strip() not in {p.strip() for p in asked.split(",")}:
            detail.append("subprotocol-not-offered")  # RFC 6455 4.1, client step 6

    deflate: DeflateParams | None = None
    ext_value = response_headers.get("sec-websocket-extensions")
    if ext_value is not None:
        detail.append(f"extensions={ext_value.strip()}")
        offered = request_headers.get("sec-websocket-extensions", "")
        offered_names = {name for name, _ in _parse_extensions(offered)}
        for name, params in _parse_extensions(ext_value):
            if name != "permessage-deflate":
                continue
            if deflate is not None:
                detail.append("deflate-repeated")  # RFC 7692 5: at most one accepted
                break
            deflate, valid = _deflate_from_response(params)
            if not valid:
                detail.append("deflate-params-invalid")
            if name not in offered_names:
                detail.append("extension-not-offered")  # RFC 6455 9.1
    return ok, " ".join(detail), deflate
