"""Netstrings, the framing of Postfix's socketmap protocol (sans-I/O).

Grammar (D. J. Bernstein, "Netstrings", 1997; Postfix socketmap_table(5)):

    netstring = length ":" payload ","
    length    = "0" / (%x31-39 *DIGIT)      ; decimal, no leading zeros
    payload   = length OCTETs

Pure: bytes in, payloads out. The decoder accepts its input in pieces of any size (one
byte at a time included), keeps at most ``max_length + len(str(max_length)) + 2`` bytes
buffered, and raises :class:`NetstringError` (and nothing else) on malformed input. After
an error it stays broken: the stream has lost its framing, so the caller must close it.
The error carries the payloads that were complete before the bad bytes
(:attr:`NetstringError.complete`): a valid request followed by garbage in one read still
gets its answer before the connection is closed.
"""

from __future__ import annotations

from mtasts.errors import MtastsError

# Postfix's own reply cap (dict_sockmap.c, DEF_MAX_REPLY) is 100000 bytes; a request is
# "<map name> <key>", a key being at most a 255-octet domain plus brackets and a port. We
# default to 1024 like postfix-mta-sts-resolver and postfix-tlspol.
DEFAULT_MAX_REQUEST = 1024


class NetstringError(MtastsError):
    """The peer sent bytes that are not a netstring (or one longer than allowed)."""

    default_code = "socketmap.framing"
    default_rfc = "socketmap_table(5)"

    #: payloads completed in the same ``feed`` before the framing broke, in order
    complete: tuple[bytes, ...] = ()


def encode(payload: bytes) -> bytes:
    """``payload`` framed as a netstring: ``b"<len>:<payload>,"``."""
    return b"%d:%s," % (len(payload), payload)


class NetstringDecoder:
    """Incremental decoder: :meth:`feed` bytes, get back every payload completed so far."""

    __slots__ = ("_buf", "_error", "_max", "_max_digits")

    def __init__(self, max_length: int = DEFAULT_MAX_REQUEST) -> None:
        if max_length < 0:
            raise ValueError("max_length must be >= 0")
        self._max = max_length
        self._max_digits = len(str(max_length))
        self._buf = bytearray()
        self._error: NetstringError | None = None

    @property
    def buffered(self) -> int:
        """How many bytes are held waiting for the rest of a netstring."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the payloads it completed, in order.

        Raises :class:`NetstringError` on a framing error or an over-long netstring.
        """
        if self._error is not None:
            raise self._error
        buf = self._buf
        if not buf and data[-1:] == b",":
            # The common read: exactly one whole netstring (Postfix sends one request
            # and waits). Checked in place, no copy into the buffer; anything else
            # (several, partial, malformed) takes the general path below.
            colon = data.find(b":", 0, self._max_digits + 1)
            if colon > 0:
                digits = data[:colon]
                if digits.isdigit() and (colon == 1 or data[0] != 0x30):
                    length = int(digits)
                    if length <= self._max and colon + length + 2 == len(data):
                        return [data[colon + 1 : -1]]
        buf += data
        out: list[bytes] = []
        pos = 0
        try:
            while True:
                colon = buf.find(b":", pos, pos + self._max_digits + 1)
                if colon < 0:
                    self._check_length_prefix(buf, pos)
                    break
                length = self._parse_length(bytes(buf[pos:colon]))
                end = colon + 1 + length
                if len(buf) <= end:  # payload or the "," not here yet
                    break
                if buf[end] != 0x2C:  # ","
                    raise NetstringError(
                        f"netstring of length {length} is not terminated by ','; "
                        "the client does not speak the socketmap protocol"
                    )
                out.append(bytes(buf[colon + 1 : end]))
                pos = end + 1
        except NetstringError as exc:
            self._error = NetstringError(exc.message, code=exc.code)  # later feeds: no payloads
            exc.complete = tuple(out)
            buf.clear()
            raise
        del buf[:pos]
        return out

    def _check_length_prefix(self, buf: bytearray, pos: int) -> None:
        """No ':' yet: what is buffered must still be able to become a valid length.

        Checked in the order that names the real fault: bytes that are not digits (an
        HTTP request, a stray text protocol) are "not a netstring", whatever their
        length; only a run of digits can be "longer than the limit allows".
        """
        pending = bytes(buf[pos : pos + self._max_digits + 1])
        if pending and not pending.isdigit():
            raise _not_a_length(bytes(buf[pos : pos + 16]))
        if len(pending) > 1 and pending[0] == 0x30:
            raise NetstringError("netstring length has a leading zero")
        if len(pending) > self._max_digits:
            raise NetstringError(
                f"netstring length prefix is longer than {self._max_digits} digits "
                f"(requests are limited to {self._max} bytes)"
            )

    def _parse_length(self, digits: bytes) -> int:
        # length = "0" / (%x31-39 *DIGIT); isdigit() on bytes is ASCII-only
        if not digits:
            raise NetstringError("netstring has no length before ':'")
        if not digits.isdigit():
            raise _not_a_length(digits)
        if len(digits) > 1 and digits[0] == 0x30:
            raise NetstringError("netstring length has a leading zero")
        length = int(digits)
        if length > self._max:
            raise NetstringError(
                f"netstring of {length} bytes is longer than the limit of {self._max} bytes"
            )
        return length


def _not_a_length(data: bytes) -> NetstringError:
    """The error for bytes where a netstring's decimal length must start."""
    shown = data[:16]
    if shown[:1].isdigit() or not shown:
        return NetstringError(f"netstring length {shown!r} is not a decimal number")
    return NetstringError(
        f"expected a netstring length (digits), got {shown!r}: "
        "the client does not speak the socketmap protocol"
    )
