"""What each anomaly and reader-warning kind means, in one line, for the page's tables.

Taken from the comments next to each tag in the dissectors (RFC 6455, RFC 7692, RFC 9112, RFC 8446,
the Engine.IO and Socket.IO protocol docs). docs/REPORTS.md lists them with their sections; a kind
missing here is shown without a meaning.
"""

from __future__ import annotations

MEANINGS: dict[str, str] = {
    # TCP and the session
    "lost-bytes": "bytes of this stream were never captured (a hole TCP reassembly gave up on)",
    "websocket-handshake-not-captured": "WebSocket frames without the HTTP Upgrade that started them",
    # HTTP/1.x (RFC 9112)
    "bad-request-line": "the request line is not METHOD SP target SP HTTP-version",
    "bad-status-line": "the status line is not HTTP-version SP status-code SP reason",
    "bad-header": "a header line without a field name and colon, or a fold with nothing before it (RFC 9112 5.1, 5.2)",
    "header-too-large": "the header section is larger than dissect keeps",
    "bad-chunk": "a chunked body with a chunk size that does not parse",
    "truncated-headers": "the connection ended inside the header section",
    "truncated-body": "the connection ended before the body's announced length",
    "no-response": "a request never answered before the connection ended (or too many were waiting)",
    "response-without-request": "a response with no request before it on the connection",
    "te-and-content-length": "both Transfer-Encoding and Content-Length (RFC 9112 6.3: a smuggling risk)",
    "bad-transfer-encoding": "a request's Transfer-Encoding does not end in chunked: its length is unknowable",
    "bad-content-length": "a Content-Length that is not one number: the message length is unknowable",
    # WebSocket (RFC 6455, RFC 7692)
    "unmasked-client-frame": "a client frame without a mask (RFC 6455 5.1, 5.3)",
    "masked-server-frame": "a server frame with a mask (RFC 6455 5.1)",
    "control-too-long": "a control frame with more than 125 bytes of payload (RFC 6455 5.5)",
    "control-fragmented": "a control frame without FIN (RFC 6455 5.5)",
    "reserved-opcode": "an opcode reserved for future use, 0x3-0x7 or 0xB-0xF (RFC 6455 5.2)",
    "rsv-without-extension": "an RSV bit set with no extension negotiated (RFC 6455 5.2)",
    "rsv1-on-continuation": "RSV1 on a continuation frame; permessage-deflate sets it on the first only (RFC 7692 6.1)",
    "rsv1-on-control": "RSV1 on a control frame (RFC 7692 6.1)",
    "continuation-without-start": "a continuation frame with no fragmented message open (RFC 6455 5.4)",
    "new-message-inside-fragmented": "a new text/binary frame while a fragmented message is open (RFC 6455 5.4)",
    "message-interrupted": "a message cut short by a new message's frame",
    "length-not-minimal": "a payload length not in its shortest encoding (RFC 6455 5.2)",
    "length-msb-set": "a 64-bit payload length with its most significant bit set (RFC 6455 5.2)",
    "frame-after-close": "a frame after this side's Close (RFC 6455 5.5.1)",
    "invalid-utf8": "a text message or close reason that is not UTF-8 (RFC 6455 5.6, 8.1)",
    "invalid-close-code": "a close code no endpoint may send (RFC 6455 7.4)",
    "close-body-1-byte": "a Close frame with a one-byte body (RFC 6455 5.5.1)",
    "inflate-failed": "a permessage-deflate message that does not decompress (RFC 7692 7.2.2)",
    "inflate-context-lost": "not decompressed: an earlier loss broke the shared compression context",
    "message-too-large": "a message larger than --max-message-bytes, not kept whole",
    # Engine.IO (protocol v3, v4)
    "eio-bad-type": "an Engine.IO packet type that is not 0-6",
    "eio-empty-packet": "an empty Engine.IO packet",
    "eio-bad-length": "a v3 polling payload without a valid length prefix",
    "eio-truncated": "a v3 polling payload whose length prefix runs past the body",
    "eio-bad-base64": "a base64 binary packet that does not decode",
    "eio-bad-open": "an open packet without a JSON object holding a string sid",
    "eio-bad-encoding": "a polling body whose Content-Encoding does not decode",
    "ws-undecodable": "the WebSocket layer could not give Engine.IO the message",
    "pong-late": "a pong that came after pingTimeout: the server had already given up on the socket",
    "pings-stopped": "no ping for pingInterval + pingTimeout while the socket was open",
    "open-wrong-direction": "an open packet from the client (only the server sends it)",
    "ping-wrong-direction": "a ping from the side that must not ping (v3: the client pings; v4: the server)",
    "pong-wrong-direction": "a pong from the side that must not answer pings",
    "upgrade-wrong-direction": "an upgrade packet from the server (only the client sends it)",
    "upgrade-without-probe": "an upgrade not preceded by the 2probe/3probe exchange",
    # Socket.IO (protocol v4, v5)
    "sio-bad-type": "a Socket.IO packet type that is not 0-6, or an empty message",
    "sio-bad-payload": "a payload of the wrong JSON kind for its packet type, or not JSON",
    "sio-bad-ack-id": "an ack id larger than a JavaScript safe integer",
    "reserved-event-name": "an event named connect, disconnect... (reserved in v5)",
    "attachments-invalid": "a BINARY packet without a valid attachment count",
    "attachments-missing": "fewer binary attachments arrived than the packet announced",
    "attachment-unexpected": "a binary message no BINARY packet announced",
    "ack-without-event": "an ACK whose id matches no EVENT sent the other way",
    "ack-id-reused": "an EVENT reusing an ack id still waiting for its ACK",
    "connect-unsolicited": "a server CONNECT or CONNECT_ERROR nobody asked for",
    "sio-wrong-direction": "a CONNECT_ERROR sent by the client",
    "custom-parser": "a binary message of a custom parser other than socket.io-msgpack-parser: not decoded",
    # TLS (RFC 8446, RFC 5246)
    "tls-bad-record": "bytes that are not a TLS record (unknown content type or version)",
    "tls-record-too-large": "a TLS record longer than the protocol allows",
    "tls-bad-handshake": "a handshake message that does not parse",
    "tls-bad-alert": "an alert record of the wrong length",
    "tls-fatal-alert": "a fatal alert ended the connection (its description after the colon)",
    "tls-unexpected-record": "a record of a type not expected at this point",
    "tls-decrypt-failed": "a record the keys do not decrypt (wrong key log, or a corrupted record)",
    "tls-bad-inner-plaintext": "a decrypted TLS 1.3 record without a content type",
    "tls-missing-secret": "the key log has no secret for this connection: application data stays opaque",
    "tls-early-data": "0-RTT early data (not decrypted)",
    "tls-renegotiation": "a renegotiation: what follows is not decoded",
    "tls-records-skipped": "records no key opens, skipped for the reason that follows (e.g. rejected early data)",
    # reader warnings (summary.json "warnings")
    "truncated-file": "the capture file ends in the middle of a record",
    "corrupt-record": "a record header that makes no sense: reading resumes at the next plausible record, or stops",
    "snaplen-cut-packets": "packets cut by the capture's snapshot length: their missing bytes count as lost",
    "pcapng-unknown-block": "pcapng blocks of a type dissect does not read",
    "pcapng-bad-interface": "packets naming an interface the file never described",
    "invalid-timestamp": "packets whose timestamp is not a valid time",
    "pcapng-unknown-secrets": "a Decryption Secrets Block of a type other than a TLS key log",
    "unknown-link-type": "packets of a link type dissect does not decode",
}


def meaning(kind: str) -> str:
    """The one-line meaning of an anomaly or warning kind; empty when unknown."""
    return MEANINGS.get(kind, "")
