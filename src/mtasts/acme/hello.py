"""The ALPN protocols a TLS ClientHello offers, read from the first bytes of a connection.

tls-alpn-01 (RFC 8737) validation connects with SNI = the name and ALPN = ``acme-tls/1``
only, and must get the validation certificate; every other client must get the real one.
Python's SNI callback runs before ALPN is negotiated and cannot see the offer, so the
server reads it from the ClientHello it has already received.

Pure: bytes in, protocols out.
"""

from __future__ import annotations

ACME_TLS_1 = b"acme-tls/1"
_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_ALPN = 0x0010


def _handshake_bytes(data: bytes) -> bytes:
    """The handshake-layer bytes of the leading TLS records (RFC 8446 §5.1)."""
    out = bytearray()
    pos = 0
    while pos + 5 <= len(data) and data[pos] == _HANDSHAKE:
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        out += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
    return bytes(out)


def offered_alpn(data: bytes) -> tuple[bytes, ...] | None:
    """The ALPN protocol names of the ClientHello at the start of ``data``; () when it
    offers none; None when ``data`` is no (complete) ClientHello."""
    hs = _handshake_bytes(data)
    if len(hs) < 4 or hs[0] != _CLIENT_HELLO:
        return None
    end = 4 + int.from_bytes(hs[1:4], "big")
    if len(hs) < end:
        return None
    pos = 4 + 2 + 32  # legacy_version, random
    try:
        pos += 1 + hs[pos]  # legacy_session_id
        pos += 2 + int.from_bytes(hs[pos : pos + 2], "big")  # cipher_suites
        pos += 1 + hs[pos]  # legacy_compression_methods
        if pos == end:
            return ()  # no extensions at all
        ext_end = pos + 2 + int.from_bytes(hs[pos : pos + 2], "big")
        pos += 2
        if ext_end > end:
            return None
        while pos + 4 <= ext_end:
            kind = int.from_bytes(hs[pos : pos + 2], "big")
            size = int.from_bytes(hs[pos + 2 : pos + 4], "big")
            body = hs[pos + 4 : pos + 4 + size]
            pos += 4 + size
            if kind == _ALPN:
                return _alpn_list(body)
    except IndexError:
        return None
    return ()


def _alpn_list(body: bytes) -> tuple[bytes, ...] | None:
    """RFC 7301 §3.1: ProtocolName protocol_name_list<2..2^16-1>, each <1..2^8-1>."""
    if len(body) < 2 or int.from_bytes(body[:2], "big") != len(body) - 2:
        return None
    names: list[bytes] = []
    pos = 2
    while pos < len(body):
        size = body[pos]
        name = body[pos + 1 : pos + 1 + size]
        if size == 0 or len(name) != size:
            return None
        names.append(name)
        pos += 1 + size
    return tuple(names)


def wants_acme_tls(data: bytes) -> bool:
    """True when the ClientHello offers ``acme-tls/1`` (a tls-alpn-01 validation)."""
    return ACME_TLS_1 in (offered_alpn(data) or ())
