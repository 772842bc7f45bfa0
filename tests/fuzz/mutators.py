"""Mutations of real captures, after Wireshark's fuzz runs (``editcap -E``, truncation, splices)
plus structure-aware ones that keep the headers valid so the dissectors meet the garbage.

Every mutator is a pure function of a :class:`random.Random` and its inputs, so a case is a
function of ``(seed, case index)`` alone (see :func:`make_case`): a crash found by any worker is
reproduced by regenerating its index.

Two families:

- *record level* (on a parsed :class:`~tests.fuzz.capfile.Capture`): drop, duplicate, reorder and
  splice records; edit link/IP/TCP header fields; cut frames (snaplen); change timestamps,
  interfaces and link types; and edit TCP payloads only (bytes, tokens, integers, WebSocket
  frames re-framed around a mutated payload, HTTP bodies with their Content-Length fixed);
- *byte level* (on the serialised file): ``editcap -E`` style byte errors at a rate, truncation
  at a random offset, corrupt record/block length fields, zeroed regions, inserted/deleted/
  appended bytes, and splices of two files at random offsets.
"""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Callable, Sequence

from tests.fuzz.capfile import (
    EPB,
    IDB,
    SPB,
    Capture,
    Layout,
    Record,
    TcpSpan,
    parse,
    replace_payload,
    serialize,
    tcp_span,
)
from tests.fuzz.traffic import ws_frame

MAX_MUTANT = 4 << 20  # keep every case small: speed, not size, finds bugs

# Tokens inserted into TCP payloads: the syntax every dissector keys on, and classic poison.
TOKENS: tuple[bytes, ...] = (
    # HTTP/1.x
    b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n",
    b"POST /engine.io/?EIO=3&transport=polling&sid=x HTTP/1.1\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 400 \r\n", b"\r\n\r\n", b"\r\n", b"\n",
    b"Content-Length: 18446744073709551616\r\n", b"Content-Length: -1\r\n", b"Content-Length: 5, 7\r\n",
    b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip, chunked\r\n", b"ffffffffffffffff\r\n",
    b"0\r\n\r\n", b"1;ext=\"" + b"x" * 50 + b"\"\r\n", b"Upgrade: websocket\r\nConnection: Upgrade\r\n",
    b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8; client_no_context_takeover\r\n",
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
    b"Content-Encoding: gzip\r\n", b"Content-Encoding: deflate\r\n", b"Content-Type: application/octet-stream\r\n",
    b" folded\r\n", b"X: \x00\xff\r\n",
    # WebSocket headers
    b"\x81\x7e\xff\xff", b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00",
    b"\x81\x7f\x00\x00\x00\x00\x00\x00\x00\x05", b"\x88\x01\x03", b"\x88\x02\x03\xe8", b"\x88\x80\x00\x00\x00\x00",
    b"\xc1\x05", b"\xc1\x80\x01\x02\x03\x04", b"\x00\x00\xff\xff", b"\x01\x00", b"\x09\x7e\x00\x7e", b"\x8b\x00",
    b"\xf1\x00", b"\x80\x80\x00\x00\x00\x00",
    # deflate: final empty block, stored block, a bomb-ish run
    b"\x03\x00", b"\x01\x00\x00\xff\xff", b"\xed\xc1\x01\x01\x00\x00\x00\x80\x90\xfe\xaf\xee\x08\x0a",
    # Engine.IO
    b"2probe", b"3probe", b"5", b"6", b"\x1e", b"b", b"bAAAA", b"b4AAAA", b"99999999999:", b"0:", b"1:", b"4294967296:",
    b"\x00\x09\xff", b"\x01" + b"\x09" * 12 + b"\xff", b"\x00\x01\x00\xff4", b"___eio[0](\"", b"\");",
    b'0{"sid":"x","upgrades":["websocket"],"pingInterval":1e309,"pingTimeout":-1,"maxPayload":1}',
    b'0{"sid":' + b"[" * 40, b"EIO=3", b"EIO=4", b"transport=websocket", b"transport=polling", b"sid=", b"&j=0", b"d=",
    # Socket.IO
    b"40", b"40/admin,", b'42["e"]', b"43", b'451-["e",{"_placeholder":true,"num":0}]', b"51000000000-[",
    b'461-0[', b'44{"message":', b"42/nsp,99999999999999999999[", b'42["\\ud800"]', b'42["\\"', b"\x93\xa3",
    b"[", b"]", b"{", b"}", b'"', b"\\", b"\\u", b"\\ud800", b"1e400", b"-0", b"NaN", b"null", b",",
    # text poison
    b"\xff\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x80\xae", b"\x1b[2J\x1b]0;x\x07",
    b"=cmd|' /C calc'!A0", b"\x00" * 8, b"\xff" * 8,
)
# Nested JSON and long runs are generated (too big to list): see _big_token.
INTERESTING_INTS: tuple[int, ...] = (
    0, 1, 0x7E, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
    0xFFFFFFFF, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1,
)
_DIGIT_RUN = re.compile(rb"[0-9]{1,20}")


def _big_token(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    n = rng.choice((64, 999, 1001, 3000, 20000))
    if kind == 0:
        return b"[" * n
    if kind == 1:
        return b'{"a":' * n
    if kind == 2:
        return b"9" * n
    if kind == 3:
        return b"\\u0000" * (n // 6 + 1)
    return bytes(rng.randrange(256) for _ in range(min(n, 4096)))


def token(rng: random.Random) -> bytes:
    return _big_token(rng) if rng.random() < 0.08 else rng.choice(TOKENS)


# -- bytes ---------------------------------------------------------------------------------------


def flip_rate(rng: random.Random, data: bytes, rate: float) -> bytes:
    """editcap -E: each byte becomes a random byte with probability ``rate`` (at least one)."""
    if not data:
        return data
    b = bytearray(data)
    n = len(b)
    for _ in range(max(1, int(rate * n * rng.uniform(0.5, 1.5) + 0.5))):
        b[rng.randrange(n)] = rng.randrange(256)
    return bytes(b)


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """One generic payload mutation (AFL-havoc-like, plus the token dictionary)."""
    n = len(data)
    op = rng.randrange(11)
    if n == 0 and op not in (2, 9):
        op = 2
    if op == 0:
        rate = rng.choice((0.001, 0.01, 0.02, 0.05, 0.2))
        return flip_rate(rng, data, rate), f"flip@{rate}"
    if op == 1:
        b = bytearray(data)
        i = rng.randrange(n)
        b[i] ^= 1 << rng.randrange(8)
        return bytes(b), "bitflip"
    if op == 2:
        i = rng.randrange(n + 1)
        t = token(rng)
        return data[:i] + t + data[i:], f"insert-token({len(t)})"
    if op == 3:
        i = rng.randrange(n)
        t = token(rng)
        return data[:i] + t + data[i + len(t) :], "overwrite-token"
    if op == 4:
        i = rng.randrange(n)
        j = min(n, i + rng.choice((1, 2, 4, 16, 256, n)))
        return data[:i] + data[j:], "delete-range"
    if op == 5:
        i = rng.randrange(n)
        j = min(n, i + rng.randint(1, 512))
        return data[:j] + data[i:j] * rng.randint(1, 8) + data[j:], "repeat-range"
    if op == 6:
        size = rng.choice((1, 2, 4, 8))
        v = rng.choice(INTERESTING_INTS) & ((1 << (8 * size)) - 1)
        i = rng.randrange(max(1, n - size + 1))
        raw = v.to_bytes(size, rng.choice(("big", "little")))
        return data[:i] + raw + data[i + size :], f"int{size}"
    if op == 7:
        runs = list(_DIGIT_RUN.finditer(data))
        if not runs:
            return mutate_bytes(rng, data)
        m = rng.choice(runs)
        new = rng.choice((b"", b"0", b"-1", b"99999999999999999999", b"1" * 400, b"4294967296", b"00", b" 1"))
        return data[: m.start()] + new + data[m.end() :], "digits"
    if op == 8:
        return data[: rng.randrange(n)], "cut"
    if op == 9:
        size = rng.choice((n, rng.randint(1, 64), rng.randint(1, 3000)))
        return rng.randbytes(size), "random-payload"
    i = rng.randrange(n)
    j = min(n, i + rng.randint(1, 64))
    return data[:i] + rng.randbytes(j - i) + data[j:], "random-range"


# -- application-aware payload edits -----------------------------------------------------------


def _ws_frames(p: bytes) -> list[tuple[int, int, int, int, bytes | None]] | None:
    """(start, header_len, payload_len, b0, mask) of whole WebSocket frames tiling ``p``, or None."""
    out = []
    i = 0
    while i < len(p):
        if len(p) - i < 2:
            return None
        b0, b1 = p[i], p[i + 1]
        ln = b1 & 0x7F
        hl = 2
        if ln == 126:
            if len(p) - i < 4:
                return None
            ln, hl = struct.unpack_from("!H", p, i + 2)[0], 4
        elif ln == 127:
            if len(p) - i < 10:
                return None
            ln, hl = struct.unpack_from("!Q", p, i + 2)[0], 10
        mask = None
        if b1 & 0x80:
            mask = p[i + hl : i + hl + 4]
            hl += 4
        if i + hl + ln > len(p) or b0 & 0x0F not in (0, 1, 2, 8, 9, 10):
            return None
        out.append((i, hl, ln, b0, mask))
        i += hl + ln
    return out or None


def _xor(data: bytes, mask: bytes) -> bytes:
    return bytes(c ^ mask[k & 3] for k, c in enumerate(data))


def mutate_ws(rng: random.Random, p: bytes) -> tuple[bytes, str] | None:
    """Mutate the payload of one WebSocket frame of the segment and frame it again, so the frame
    header stays valid and Engine.IO / Socket.IO see the garbage."""
    frames = _ws_frames(p)
    if frames is None:
        return None
    start, hl, ln, b0, mask = rng.choice(frames)
    body = p[start + hl : start + hl + ln]
    if mask is not None:
        body = _xor(body, mask)
    if b0 & 0x40:  # compressed: mutate the deflate stream itself
        new, what = mutate_bytes(rng, body)
    elif rng.random() < 0.3:
        # Keep the Engine.IO/Socket.IO type prefix, replace what follows.
        k = 0
        while k < len(body) and k < 3 and body[k : k + 1].isdigit():
            k += 1
        new, what = body[:k] + token(rng) + (body[k:] if rng.random() < 0.5 else b""), "ws-sio-token"
    else:
        new, what = mutate_bytes(rng, body)
    return p[:start] + ws_frame(b0, new, mask) + p[start + hl + ln :], f"ws-reframe:{what}"


_CL = re.compile(rb"(?im)^content-length:[ \t]*([0-9]+)[ \t]*\r?$")


def mutate_http_body(rng: random.Random, p: bytes) -> tuple[bytes, str] | None:
    """Mutate the body of an HTTP message in the segment and fix its Content-Length."""
    end = p.find(b"\r\n\r\n")
    if end < 0 or not p[:8].startswith((b"HTTP/1.", b"GET ", b"POST ")):
        return None
    head, body = p[: end + 4], p[end + 4 :]
    m = _CL.search(head)
    if m is None or not body:
        return None
    new, what = mutate_bytes(rng, body) if rng.random() < 0.7 else (token(rng) + body, "prefix-token")
    head = head[: m.start(1)] + str(len(new)).encode() + head[m.end(1) :]
    return head + new, f"http-body:{what}"


# -- record level --------------------------------------------------------------------------------


def _payload_packets(cap: Capture) -> list[int]:
    out = []
    for i in cap.packets:
        r = cap.records[i]
        s = tcp_span(r.linktype, r.data)
        if s is not None and s.payload < s.end:
            out.append(i)
    return out


def _tcp_packets(cap: Capture) -> list[tuple[int, TcpSpan]]:
    """(record index, its TCP span) of every packet whose IP and TCP headers parse."""
    out = []
    for i in cap.packets:
        s = tcp_span(cap.records[i].linktype, cap.records[i].data)
        if s is not None:
            out.append((i, s))
    return out


def m_payload(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    """TCP payload only: IP and TCP headers stay valid (the IP length follows the new size)."""
    cands = _payload_packets(cap)
    if not cands:
        return m_tcp_header(rng, cap, others)
    what = []
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        r = cap.records[rng.choice(cands)]
        span = tcp_span(r.linktype, r.data)
        if span is None:  # an earlier edit of this case broke its headers
            continue
        payload = r.data[span.payload : span.end]
        res = None
        k = rng.random()
        if k < 0.35:
            res = mutate_ws(rng, payload)
        elif k < 0.5:
            res = mutate_http_body(rng, payload)
        if res is None:
            res = mutate_bytes(rng, payload)
        new, w = res
        r.data = replace_payload(r.data, span, new)
        r.orig = None
        what.append(w)
    return "payload:" + ",".join(what)


def m_tcp_header(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    tcp = _tcp_packets(cap)
    if not tcp:
        return m_drop(rng, cap, others)
    i, s = rng.choice(tcp)
    r = cap.records[i]
    b = bytearray(r.data)
    field = rng.randrange(6)
    if field == 0:  # seq
        old = struct.unpack_from("!I", b, s.tcp + 4)[0]
        new = rng.choice((old + rng.randint(-3000, 3000), old + (1 << 31), rng.getrandbits(32), old - 1)) & 0xFFFFFFFF
        struct.pack_into("!I", b, s.tcp + 4, new)
    elif field == 1:  # ack
        old = struct.unpack_from("!I", b, s.tcp + 8)[0]
        new = rng.choice((old + rng.randint(-3000, 100000), rng.getrandbits(32), old + (1 << 31))) & 0xFFFFFFFF
        struct.pack_into("!I", b, s.tcp + 8, new)
    elif field == 2:  # flags
        b[s.tcp + 13] = rng.choice((0x02, 0x12, 0x10, 0x11, 0x04, 0x14, 0x18, 0x19, 0x03, 0x07, 0xFF,
                                    rng.randrange(256)))
    elif field == 3:  # data offset
        b[s.tcp + 12] = (rng.randrange(16) << 4) | (b[s.tcp + 12] & 0x0F)
    elif field == 4:  # ports: a new flow, or a collision with another
        struct.pack_into("!H", b, s.tcp + rng.choice((0, 2)), rng.choice((0, 80, 65535, rng.randrange(65536))))
    else:
        b[s.tcp + 12 : s.tcp + 20] = rng.randbytes(8)
    r.data = bytes(b)
    return f"tcp-header:{field}"


def m_ip_header(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    tcp = _tcp_packets(cap)
    if not tcp:
        return m_drop(rng, cap, others)
    i, s = rng.choice(tcp)
    r = cap.records[i]
    b = bytearray(r.data)
    ip = s.ip
    field = rng.randrange(6)
    if s.v6:
        if field == 0:
            struct.pack_into("!H", b, ip + 4, rng.choice((0, 1, 20, 0xFFFF, rng.randrange(65536))))
        elif field == 1:
            b[ip + 6] = rng.choice((0, 43, 44, 60, 51, 59, 135, 17, rng.randrange(256)))
        else:
            b[ip] = rng.randrange(256)
    elif field == 0:  # total length
        struct.pack_into("!H", b, ip + 2, rng.choice((0, 1, 19, 20, 40, 0xFFFF, rng.randrange(65536))))
    elif field == 1:  # fragments: MF and/or an offset
        frag = rng.choice((0x2000, 0x0001, 0x2000 | rng.randrange(8192), rng.randrange(65536)))
        struct.pack_into("!H", b, ip + 6, frag)
        struct.pack_into("!H", b, ip + 4, rng.randrange(4))  # few ids: fragments meet
    elif field == 2:  # version / IHL
        b[ip] = rng.choice((0x44, 0x46, 0x4F, 0x40, 0x65, rng.randrange(256)))
    elif field == 3:
        b[ip + 9] = rng.choice((17, 1, 0, 255, 41, rng.randrange(256)))
    elif field == 4:  # link layer type field
        et_off = ip - 2
        if et_off >= 0:
            et = rng.choice((0x8100, 0x88A8, 0x86DD, 0x0806, 0x0800, rng.randrange(65536)))
            struct.pack_into("!H", b, et_off, et)
    else:
        b[ip : ip + 20] = rng.randbytes(20)
    r.data = bytes(b)
    return f"ip-header:{field}"


def m_fragment(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    """Split an IPv4 TCP packet into IP fragments (maybe overlapping, lost or repeated)."""
    cands = _payload_packets(cap)
    rng.shuffle(cands)
    for i in cands[:20]:
        r = cap.records[i]
        s = tcp_span(r.linktype, r.data)
        if s is None or s.v6 or s.end - s.tcp < 16:
            continue
        link, ip, body = r.data[: s.ip], r.data[s.ip : s.tcp], r.data[s.tcp : s.end]
        step = rng.choice((8, 16, 24, max(8, (len(body) // 2) & ~7)))
        frags = []
        for off in range(0, len(body), step):
            part = body[off : off + step]
            h = bytearray(ip)
            h[0] = 0x45
            mf = 0x2000 if off + step < len(body) else 0
            struct.pack_into("!H", h, 2, 20 + len(part))
            struct.pack_into("!H", h, 6, mf | ((off // 8) if rng.random() > 0.05 else rng.randrange(8192)))
            frags.append(link + bytes(h[:20]) + part)
        if rng.random() < 0.3:
            rng.shuffle(frags)
        if rng.random() < 0.2 and len(frags) > 1:
            frags.pop(rng.randrange(len(frags)))
        if rng.random() < 0.2:
            frags.append(rng.choice(frags))
        new = []
        for f in frags:
            c = r.copy()
            c.data, c.orig = f, None
            new.append(c)
        cap.records[i : i + 1] = new
        return f"ip-fragments:{len(new)}"
    return m_payload(rng, cap, others)


def m_drop(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    if not cap.records:
        return "drop:none"
    k = rng.choice((1, 1, 2, 5, max(1, len(cap.records) // 4)))
    for _ in range(min(k, len(cap.records))):
        del cap.records[rng.randrange(len(cap.records))]
    return f"drop:{k}"


def m_duplicate(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    if not cap.records:
        return "dup:none"
    k = rng.choice((1, 1, 3, 20))
    for _ in range(k):
        i = rng.randrange(len(cap.records))
        j = min(len(cap.records), i + rng.randint(0, 5))
        cap.records.insert(j, cap.records[i].copy())
    return f"dup:{k}"


def m_reorder(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    n = len(cap.records)
    if n < 2:
        return "reorder:none"
    i = rng.randrange(n - 1)
    w = rng.choice((2, 3, 8, 32))
    window = cap.records[i : i + w]
    if rng.random() < 0.5:
        rng.shuffle(window)
    else:
        window.reverse()
    cap.records[i : i + w] = window
    return f"reorder:{w}"


def _as_format(r: Record, cap: Capture) -> Record:
    """A packet record moved into a capture of the other format."""
    c = r.copy()
    if cap.fmt == "pcap" and r.btype != -1:
        c.btype, c.head, c.tail, c.endian = -1, struct.pack(cap.endian + "II", 1_700_000_000, 0), b"", cap.endian
    elif cap.fmt == "pcapng" and r.btype == -1:
        c.btype, c.head, c.endian = EPB, struct.pack("<III", 0, 0, 0), "<"
    return c


def m_splice_records(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    """Records of another capture inserted (link types may not match: garbage to the decoders)."""
    other = rng.choice(others)
    src = [r for r in other.records if r.is_packet] if cap.fmt != other.fmt else other.records
    if not src:
        return "splice:none"
    i = rng.randrange(len(src))
    chunk = [_as_format(r, cap) for r in src[i : i + rng.choice((1, 10, 100))]]
    at = rng.randrange(len(cap.records) + 1)
    cap.records[at:at] = chunk
    return f"splice-records:{len(chunk)}"


def m_snaplen(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    """Frames cut short as by a small snaplen (the original length says more)."""
    pk = cap.packets
    if not pk:
        return "snaplen:none"
    cut = rng.choice((14, 20, 34, 40, 54, 60, 64, 68, 96, 128))
    every = rng.random() < 0.3
    for i in pk if every else [rng.choice(pk)]:
        r = cap.records[i]
        if len(r.data) > cut:
            r.orig = len(r.data) if r.orig is None else max(r.orig, len(r.data))
            r.data = r.data[:cut]
    return f"snaplen:{cut}{'-all' if every else ''}"


def m_timestamps(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    pk = cap.packets
    if not pk:
        return "ts:none"
    what = rng.randrange(4)
    targets = pk if what == 3 else [rng.choice(pk) for _ in range(rng.choice((1, 5)))]
    for i in targets:
        r = cap.records[i]
        if r.btype == SPB or len(r.head) < 8:
            continue
        e = r.endian
        pre = r.head[:-8]
        if what == 0:
            a, b = rng.choice((0, 0xFFFFFFFF, 1 << 31)), rng.choice((0, 999_999, 1_000_000, 999_999_999, 0xFFFFFFFF))
        elif what == 1:
            a, b = rng.getrandbits(32), rng.getrandbits(32)
        else:
            a, b = struct.unpack(e + "II", r.head[-8:])
            a = (a + rng.randint(-100_000, 100_000)) & 0xFFFFFFFF
        r.head = pre + struct.pack(e + "II", a, b)
    return f"ts:{what}"


def m_pcapng_meta(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    """Interfaces: link type, if_tsresol, if_tsoffset, interface ids; unknown and odd blocks."""
    if cap.fmt != "pcapng":
        return m_pcap_header(rng, cap, others)
    what = rng.randrange(8)
    idbs = [r for r in cap.records if r.btype == IDB]
    if what == 0 and idbs:
        r = rng.choice(idbs)
        lt = rng.choice((0, 1, 101, 113, 276, 228, 229, 105, 147, 65535, rng.randrange(65536)))
        r.head = struct.pack(r.endian + "H", lt) + r.head[2:]
    elif what == 1 and idbs:
        r = rng.choice(idbs)
        res = rng.choice((0, 3, 6, 9, 10, 19, 0x7F, 0x80, 0x94, 0xFF, rng.randrange(256)))
        opt = struct.pack(r.endian + "HH", 9, 1) + bytes([res, 0, 0, 0])
        if rng.random() < 0.5:
            opt += struct.pack(r.endian + "HHq", 14, 8, rng.choice((0, -(1 << 40), 1 << 40, -1)))
        if rng.random() < 0.2:  # an option whose length overruns the block
            opt += struct.pack(r.endian + "HH", rng.choice((2, 9, 14)), 0xFFFF)
        r.head = r.head[:8] + opt + struct.pack(r.endian + "HH", 0, 0)
    elif what == 2:
        eps = [r for r in cap.records if r.btype == EPB and not r.raw]
        if eps:
            r = rng.choice(eps)
            r.head = struct.pack(r.endian + "I", rng.choice((1, 2, 255, 0xFFFFFFFF))) + r.head[4:]
    elif what == 3:
        at = rng.randrange(len(cap.records) + 1)
        bt = rng.choice((0x00000BEE, 4, 5, 7, 9, 10, 0x0BAD, 0x40000BAD, 0x80000001, 2, 3, IDB, rng.getrandbits(32)))
        body = rng.randbytes(rng.choice((0, 4, 8, 12, 20, 64)))
        cap.records.insert(at, Record(bt, body, endian=cap.records[0].endian if cap.records else "<"))
    elif what == 4 and idbs:
        r = rng.choice(idbs)
        r.head = r.head[:4] + struct.pack(r.endian + "I", rng.choice((0, 1, 14, 64, 0xFFFFFFFF))) + r.head[8:]
    elif what == 5:
        # A block whose body is too short for its type (IDB, packet blocks, SHB), often last.
        cands = [i for i, r in enumerate(cap.records) if r.btype in (IDB, EPB, SPB, 2, 0x0A0D0D0A)]
        if cands:
            i = rng.choice(cands)
            r = cap.records[i]
            body = (r.head + r.data)[: rng.choice((0, 2, 4, 6, 8, 12, 16))]
            short = Record(r.btype, body, endian=r.endian, raw=True)
            if rng.random() < 0.5:
                cap.records[i:] = [short]
            else:
                cap.records[i] = short
    elif what == 6:
        # Enhanced packet blocks rewritten as obsolete Packet Blocks (type 2), lengths maybe lying.
        for r in cap.records:
            if r.btype == EPB and not r.raw and len(r.head) == 12 and rng.random() < 0.5:
                e = r.endian
                iid, hi, lo = struct.unpack(e + "III", r.head)
                incl = len(r.data) if rng.random() < 0.8 else rng.choice((0, len(r.data) + 1, 0xFFFFFFFF))
                body = struct.pack(e + "HHIIII", iid & 0xFFFF, 0, hi, lo, incl, len(r.data)) + r.data
                r.btype, r.head, r.data, r.tail, r.raw = 2, body, b"", b"", True
    else:
        # A second section, maybe the other byte order, in the middle of the file.
        e = rng.choice("<>")
        shb = Record(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), endian=e)
        idb = Record(IDB, struct.pack(e + "HHI", rng.choice((1, 113, 276, 101)), 0, 0), endian=e)
        at = rng.randrange(len(cap.records) + 1)
        tail = [r.copy() for r in cap.records[at:]]
        for r in tail:
            if r.btype in (EPB, IDB) and r.endian != e:
                _swap_endian(r, e)
            r.endian = e
        cap.records[at:] = [shb, idb] + tail
    return f"pcapng-meta:{what}"


def _swap_endian(r: Record, e: str) -> None:
    """Re-encode the fixed fields of an EPB/IDB for the other byte order (what a writer would do)."""
    old = r.endian
    if r.btype == EPB and len(r.head) == 12:
        r.head = struct.pack(e + "III", *struct.unpack(old + "III", r.head))
    elif r.btype == IDB and len(r.head) >= 8:
        lt, res, snap = struct.unpack_from(old + "HHI", r.head)
        r.head = struct.pack(e + "HHI", lt, res, snap) + r.head[8:]


def m_pcap_header(rng: random.Random, cap: Capture, others: Sequence[Capture]) -> str:
    if cap.fmt != "pcap":
        return m_pcapng_meta(rng, cap, others)
    e = cap.endian
    h = bytearray(cap.header)
    what = rng.randrange(4)
    if what == 0:  # link type (and the FCS bits above it)
        lt = rng.choice((0, 1, 101, 108, 113, 276, 228, 229, 12, 14, 105, 147, 0x10000001, rng.getrandbits(32)))
        struct.pack_into(e + "I", h, 20, lt)
    elif what == 1:  # snaplen
        struct.pack_into(e + "I", h, 16, rng.choice((0, 1, 16, 64, 0xFFFFFFFF)))
    elif what == 2:  # microseconds <-> nanoseconds: the same fractions mean other times
        h[0:4] = {b"\xd4\xc3\xb2\xa1": b"\x4d\x3c\xb2\xa1", b"\x4d\x3c\xb2\xa1": b"\xd4\xc3\xb2\xa1",
                  b"\xa1\xb2\xc3\xd4": b"\xa1\xb2\x3c\x4d", b"\xa1\xb2\x3c\x4d": b"\xa1\xb2\xc3\xd4"}[bytes(h[0:4])]
    else:
        struct.pack_into(e + "HH", h, 4, rng.randrange(65536), rng.randrange(65536))
    cap.header = bytes(h)
    return f"pcap-header:{what}"


RecordMutator = Callable[[random.Random, Capture, Sequence[Capture]], str]
RECORD_MUTATORS: tuple[tuple[RecordMutator, int], ...] = (
    (m_payload, 30),
    (m_tcp_header, 8),
    (m_ip_header, 5),
    (m_fragment, 3),
    (m_drop, 6),
    (m_duplicate, 5),
    (m_reorder, 6),
    (m_splice_records, 4),
    (m_snaplen, 4),
    (m_timestamps, 3),
    (m_pcapng_meta, 5),
    (m_pcap_header, 2),
)


# -- byte level (the serialised file) ------------------------------------------------------------


def b_editcap(rng: random.Random, raw: bytes, lay: Layout, other: bytes) -> tuple[bytes, str]:
    """editcap -E <rate>: random bytes in the packet data (not the file/record headers)."""
    rate = rng.choice((0.001, 0.005, 0.02, 0.05, 0.1))
    b = bytearray(raw)
    for s, e in lay.packet_spans:
        e = min(e, len(b))
        if e > s and rng.random() < min(1.0, rate * (e - s)):
            k = max(1, int(rate * (e - s)))
            for _ in range(k):
                b[rng.randrange(s, e)] = rng.randrange(256)
    return bytes(b), f"editcap-E{rate}"


def b_flip_anywhere(rng: random.Random, raw: bytes, lay: Layout, other: bytes) -> tuple[bytes, str]:
    b = bytearray(raw)
    k = rng.choice((1, 2, 8, 64))
    for _ in range(k):
        i = rng.randrange(len(b))
        b[i] = rng.randrange(256) if rng.random() < 0.5 else b[i] ^ (1 << rng.randrange(8))
    return bytes(b), f"flip-anywhere:{k}"


def b_truncate(rng: random.Random, raw: bytes, lay: Layout, other: bytes) -> tuple[bytes, str]:
    if rng.random() < 0.4 and lay.record_starts:
        at = rng.choice(lay.record_starts) + rng.choice((1, 4, 8, 12, 15, 16, 17, 27, 28, 29))
    else:
        at = rng.randrange(len(raw) + 1)
    return raw[:at], f"truncate@{at}"


def b_length(rng: random.Random, raw: bytes, lay: Layout, other: bytes) -> tuple[bytes, str]:
    """A record / block length field set to something wrong."""
    if not lay.length_fields:
        return b_truncate(rng, raw, lay, other)
    blocks = [f for f in lay.length_fields if f[3].startswith("block")]
    pool = blocks if blocks and rng.random() < 0.5 else lay.length_fields
    off, size, e, what = rng.choice(pool)
    if off + size > len(raw):
        return raw, "length:out"
    (old,) = struct.unpack_from(e + "I", raw, off)
    new = rng.choice((0, 1, 4, 11, 12, 13, old + 1, old - 1, old + 4, old - 4, old * 2, old + 65536, 0xFFFFFFFF,
                      0x7FFFFFFF, (16 << 20), (16 << 20) + 1, 262145, rng.getrandbits(32))) & 0xFFFFFFFF
    b = bytearray(raw)
    struct.pack_into(e + "I", b, off, new)
    return bytes(b), f"length:{what}:{old}->{new}"


def b_zero(rng: random.Random, raw: bytes, lay: Layout, other: bytes) -> tuple[bytes, str]:
    i = rng.randrange(len(raw))
    n = rng.choice((4, 16, 100, 4096))
    return raw[:i] + b"\0" * min(n, len(raw) - i) + raw[i + n :], f"zero:{n}"


def b_append(rng: random.Random, raw: bytes, lay: Layout, other: bytes) -> tuple[bytes, str]:
    k = rng.randrange(3)
    if k == 0:
        tail = rng.randbytes(rng.choice((1, 3, 15, 16, 100, 4096)))
    elif k == 1:  # a record header that promises more than follows
        tail = struct.pack("<IIII", 1_700_000_000, 0, 1000, 1000) + rng.randbytes(10)
    else:  # a pcapng block that promises more than follows
        tail = struct.pack("<II", 6, 1 << 20) + rng.randbytes(40)
    return raw + tail, f"append:{k}:{len(tail)}"


def b_insert_delete(rng: random.Random, raw: bytes, lay: Layout, other: bytes) -> tuple[bytes, str]:
    i = rng.randrange(len(raw))
    if rng.random() < 0.5:
        n = rng.choice((1, 2, 3, 4, 7))
        return raw[:i] + raw[i + n :], f"delete:{n}"
    ins = rng.randbytes(rng.choice((1, 2, 3, 4, 7, 64)))
    return raw[:i] + ins + raw[i:], f"insert:{len(ins)}"


def b_splice(rng: random.Random, raw: bytes, lay: Layout, other: bytes) -> tuple[bytes, str]:
    """Two files spliced at random offsets (editcap-style concatenation gone wrong)."""
    i = rng.randrange(len(raw) + 1)
    j = rng.randrange(len(other) + 1) if rng.random() < 0.7 else 0
    return raw[:i] + other[j:], f"splice-bytes@{i}+{j}"


def b_repeat(rng: random.Random, raw: bytes, lay: Layout, other: bytes) -> tuple[bytes, str]:
    i = rng.randrange(len(raw))
    j = min(len(raw), i + rng.randint(1, 4096))
    return raw[:j] + raw[i:j] * rng.randint(1, 4) + raw[j:], "repeat"


ByteMutator = Callable[[random.Random, bytes, Layout, bytes], tuple[bytes, str]]
BYTE_MUTATORS: tuple[tuple[ByteMutator, int], ...] = (
    (b_editcap, 10),
    (b_flip_anywhere, 6),
    (b_truncate, 8),
    (b_length, 8),
    (b_zero, 3),
    (b_append, 3),
    (b_insert_delete, 3),
    (b_splice, 3),
    (b_repeat, 2),
)


def _pick(rng: random.Random, table: Sequence[tuple[object, int]]) -> object:
    return rng.choices([m for m, _ in table], weights=[w for _, w in table], k=1)[0]


class Corpus:
    """The seed captures, parsed once per process."""

    def __init__(self, files: Sequence[tuple[str, bytes]]) -> None:
        self.names = [n for n, _ in files]
        self.raw = [b for _, b in files]
        self.parsed = [parse(b) for b in self.raw]


def make_case(corpus: Corpus, seed: int, index: int) -> tuple[bytes, str, str]:
    """Mutant number ``index`` of run ``seed``: (bytes, seed capture name, what was done)."""
    rng = random.Random(f"dissect-fuzz:{seed}:{index}")
    k = rng.randrange(len(corpus.raw))
    cap = corpus.parsed[k].copy()
    others = corpus.parsed
    steps: list[str] = []
    r = rng.random()
    n_record = 0 if r < 0.25 else rng.choice((1, 1, 1, 2, 3))
    n_byte = rng.choice((0, 0, 1, 1, 2)) if n_record else rng.choice((1, 1, 2, 3))
    for _ in range(n_record):
        mut = _pick(rng, RECORD_MUTATORS)
        steps.append(mut(rng, cap, others))  # type: ignore[operator]
    raw, lay = serialize(cap)
    for _ in range(n_byte):
        if not raw:
            break
        mut = _pick(rng, BYTE_MUTATORS)
        raw, what = mut(rng, raw, lay, corpus.raw[rng.randrange(len(corpus.raw))])  # type: ignore[operator]
        steps.append(what)
        lay = Layout() if what.startswith(("insert", "delete", "splice", "repeat", "zero")) else lay
    return raw[:MAX_MUTANT], corpus.names[k], " | ".join(steps)
