"""Unwrap a received TLS-RPT report: gzip (RFC 8460 §5.2) and report e-mail (§5.3).

Pure: bytes in, bytes out, never more than a caller-given bound. Received reports are
untrusted input (RFC 8460 §7): a gzip bomb stops at the bound, a gzip header's file name
is never used (§6.3), and a whole e-mail is searched for its report part leniently,
recording each deviation from §5.3 as a warning.

Every parser here has a cost bounded before it runs: the stdlib e-mail parser is quadratic
in MIME encoded words and slow per structured header byte, so the message's line, part and
header budgets are checked first (by counting, and by a policy that meters each header
field as the parser meets it); JSON is counted before it is materialised.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from typing import Any

from mtasts.errors import Notice, ReportError, ReportTooLarge

GZIP_MAGIC = b"\x1f\x8b"
_RFC_MAIL = "RFC 8460 §5.3"
_CHUNK = 64 * 1024
# Media types real senders use for the report part; the first two are the RFC's (§6.4).
_STANDARD_TYPES = ("application/tlsrpt+gzip", "application/tlsrpt+json")
_VARIANT_TYPES = (
    "application/gzip",
    "application/x-gzip",
    "application/json",
    "application/tlsrpt",
    "application/octet-stream",
    "text/json",
)
_REPORT_SUFFIXES = (".json.gz", ".json", ".gz")
MAX_MAIL_PARTS = 100
_MAX_DELIMITER_LINES = 4 * MAX_MAIL_PARTS  # room for close delimiters and "-- " signatures
# A report e-mail is a few parts and a few dozen header fields: the real ones from Google,
# Microsoft, mail.ru and others have at most 75 fields, 14 KB of header and 24 encoded
# words. These bounds are 20 times that or more, and keep the stdlib parser within about
# 2 s and 50 MB for any input up to the 32 MiB ``lint report`` limit.
MAX_MAIL_LINES = 500_000  # base64 at 76 columns: 32 MiB is ~440,000 lines
MAX_HEADER_FIELDS = 2_000  # over the whole message, every part's header included
MAX_HEADER_BYTES = 256 * 1024  # over the whole message
MAX_ENCODED_WORDS = 100  # in one header field ("=?charset?q?...?="; RFC 2047)
# The parser checks every line against the boundary of each enclosing multipart, so deep
# nesting multiplies the cost of every line (400 levels: 30 s for 1.5 MB). Real report
# mails have one or two multiparts (multipart/report, maybe inside a forwarded mixed).
MAX_MULTIPARTS = 20
# Content-Type, -Disposition, -Transfer-Encoding are parsed as structured headers, again at
# each look-up, in time quadratic in comments and quoted strings (5,000 comments in 15 KB:
# 16 s). The samples' longest is 100 bytes and all of a mail's together 335.
MAX_MIME_FIELD_BYTES = 512
MAX_MIME_HEADER_BYTES = 4096  # over all parts
_MIME_FIELDS = ("content-type", "content-disposition", "content-transfer-encoding")
# The unstructured fields we read; a folded Subject of 50,000 lines took 3 s and 58 MB.
MAX_READ_FIELD_BYTES = 8192  # room for 100 encoded words of 75 characters
_READ_FIELDS = ("subject", "tls-report-domain", "tls-report-submitter")
# Every JSON value costs up to ~75 bytes once decoded ("{}," is 3 bytes of input). The
# reader refuses more than 100,000 failure-details (9 values each with every key) and
# 10,000 policies (~15 values each): 1.05 million values at most, so decoding is capped
# at ~90 MB.
MAX_JSON_VALUES = 1_200_000
# Every byte but a quote and the three that start or separate values.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'",[{')
_SCAN_CHUNK = 256 * 1024
_RFC_BOUNDS = "RFC 8460 §7"


@dataclass(frozen=True, slots=True)
class MailEnvelope:
    """What the report e-mail says about the report, beside the report itself (§5.3)."""

    tls_report_domain: str | None
    tls_report_submitter: str | None
    subject: str | None
    filename: str | None


def gunzip(data: bytes, *, max_bytes: int) -> tuple[bytes, tuple[Notice, ...]]:
    """Decompress gzip (every member, RFC 1952 §2.2) into at most ``max_bytes``.

    Streams with a cap, so a bomb costs at most ``max_bytes`` of memory and the time to
    inflate it. Raises :class:`ReportTooLarge` (``report.too-large``) past the cap and
    :class:`ReportError` (``report.gzip.invalid`` / ``report.gzip.truncated``) for bad data.
    """
    warnings: list[Notice] = []
    out = bytearray()
    view = memoryview(data)
    start = 0  # where the current member begins; offsets, so no member re-copies the rest
    while start < len(data):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper; FNAME ignored
        pos = start
        try:
            while not inflater.eof:
                if inflater.unconsumed_tail:
                    chunk: bytes | memoryview = inflater.unconsumed_tail
                else:
                    chunk = view[pos : pos + _CHUNK]
                    pos += len(chunk)
                produced = inflater.decompress(chunk, max_bytes + 1 - len(out))
                out += produced
                if len(out) > max_bytes:
                    raise ReportTooLarge(
                        f"the report inflates to more than {max_bytes} bytes; refused",
                        rfc="RFC 8460 §7",
                    )
                if not chunk and not produced:
                    raise ReportError(
                        "the gzip data ends early: the report was cut off",
                        code="report.gzip.truncated",
                        rfc="RFC 1952",
                    )
        except zlib.error as exc:
            raise ReportError(
                f"the gzip data is corrupt ({exc})", code="report.gzip.invalid", rfc="RFC 1952"
            ) from exc
        start = pos - len(inflater.unused_data) - len(inflater.unconsumed_tail)
        if start < len(data) and data[start : start + 2] != GZIP_MAGIC:
            if data[start:].strip(b"\x00"):
                warnings.append(
                    Notice(
                        "report.gzip.trailing-data",
                        f"{len(data) - start} bytes after the gzip data were ignored",
                        "RFC 1952",
                    )
                )
            break
    return bytes(out), tuple(warnings)


_FIELD_NAME = re.compile(rb"[!-~]+")  # RFC 5322 §3.6.8 ftext, with ":" (split off before)


def looks_like_mail(data: bytes) -> bool:
    """Does ``data`` start like an RFC 5322 message (a header field, or an mbox line)?"""
    head = data[:1000].lstrip(b"\r\n")
    if head.startswith(b"From "):
        return True
    name, colon, _ = head.partition(b":")
    return bool(colon) and 0 < len(name) <= 76 and _FIELD_NAME.fullmatch(name) is not None


def extract_from_mail(data: bytes) -> tuple[bytes, bool, MailEnvelope, tuple[Notice, ...]]:
    """The report part of a report e-mail: (decoded bytes, is gzip, envelope, warnings).

    RFC 8460 §5.3: ``multipart/report; report-type="tlsrpt"`` with an
    ``application/tlsrpt+gzip`` or ``application/tlsrpt+json`` part. Variants real senders
    use (``application/gzip``, ``application/json``, ``application/octet-stream`` with a
    ``.json.gz`` name, a single-part message) are accepted with a warning.
    Raises :class:`ReportError` ``report.mail.no-report`` when no part holds a report.
    """
    warnings: list[Notice] = []
    message = _parse_mail(data)
    top = message.get_content_type()
    if top != "multipart/report":
        warnings.append(_mail_notice("not-multipart-report", f"the message is {top}"))
    elif (message.get_param("report-type") or "") != "tlsrpt":
        report_type = message.get_param("report-type")
        warnings.append(_mail_notice("report-type", f"report-type is {report_type!r}"))
    standard: list[Message[str, str]] = []
    variant: list[Message[str, str]] = []
    for count, candidate in enumerate(message.walk()):
        if count >= MAX_MAIL_PARTS:
            warnings.append(_mail_notice("too-many-parts", f"only {count} parts were read"))
            break
        if candidate.is_multipart():
            continue
        kind = candidate.get_content_type()
        name = (candidate.get_filename() or "").lower()
        if kind in _STANDARD_TYPES:
            standard.append(candidate)
        elif kind in _VARIANT_TYPES or (
            kind not in ("text/plain", "text/html") and name.endswith(_REPORT_SUFFIXES)
        ):
            variant.append(candidate)
    part: Message[str, str]
    if standard:
        part = standard[0]
    elif variant:
        part = variant[0]
        warnings.append(
            _mail_notice(
                "media-type",
                f"the report part is {part.get_content_type()}, "
                "not application/tlsrpt+gzip or application/tlsrpt+json",
            )
        )
    else:
        raise ReportError(
            "the e-mail has no application/tlsrpt+gzip or application/tlsrpt+json part",
            code="report.mail.no-report",
            rfc=_RFC_MAIL,
        )
    if len(standard) + len(variant) > 1:
        warnings.append(_mail_notice("several-reports", "only the first report part was read"))
    payload = part.get_payload(decode=True)
    body = payload if isinstance(payload, bytes) else b""
    is_gzip = body.startswith(GZIP_MAGIC)
    if is_gzip != part.get_content_type().endswith("gzip") and part.get_content_type() in (
        *_STANDARD_TYPES,
        "application/gzip",
        "application/json",
    ):
        found = "gzip" if is_gzip else "not gzip"
        warnings.append(
            _mail_notice(
                "media-type-mismatch", f"{part.get_content_type()} but the data is {found}"
            )
        )
    envelope = MailEnvelope(
        tls_report_domain=_header(message, "TLS-Report-Domain", warnings),
        tls_report_submitter=_header(message, "TLS-Report-Submitter", warnings),
        subject=_header(message, "Subject", None),
        filename=part.get_filename(),
    )
    return body, is_gzip, envelope, tuple(warnings)


def _parse_mail(data: bytes) -> EmailMessage:
    """``email.message_from_bytes`` within the bounds above, or a specific ReportError."""
    # The parser ends a line at CR LF, a bare LF or a bare CR alike, so count all three.
    crlf = data.count(b"\r\n")
    lines = data.count(b"\n") + data.count(b"\r") - crlf
    if lines > MAX_MAIL_LINES:
        raise ReportError(
            f"the e-mail has {lines} lines, above the limit of {MAX_MAIL_LINES}; "
            "a report e-mail (base64 at 76 columns) has far fewer",
            code="report.mail.too-many-lines",
            rfc=_RFC_BOUNDS,
        )
    # Each MIME part starts on a line beginning with "--" (RFC 2046 §5.1.1). The parser
    # builds every part (about 1 ms each) before we walk the first MAX_MAIL_PARTS, so a
    # message of countless empty parts is refused before parsing. "\r--" is a bare CR
    # ending the line before (a CR LF ending is counted once, by "\n--").
    delimiters = data.count(b"\n--") + data.count(b"\r--") + data.startswith(b"--")
    if delimiters > _MAX_DELIMITER_LINES:
        raise ReportError(
            f"the e-mail has {delimiters} lines starting with '--' (MIME part boundaries); "
            "a report e-mail has a few parts",
            code="report.mail.too-many-parts",
            rfc=_RFC_BOUNDS,
        )
    message = email.message_from_bytes(data, policy=_MeteredPolicy(_HeaderBudget()))
    assert isinstance(message, EmailMessage)
    return message


@dataclass(slots=True)
class _HeaderBudget:
    """What one parse has spent; each header field is checked before anything parses it."""

    fields: int = 0
    header_bytes: int = 0
    mime_bytes: int = 0
    messages: int = 0
    multiparts: int = 0

    def new_message(self, policy: Any) -> EmailMessage:
        self.messages += 1
        if self.messages > _MAX_DELIMITER_LINES:
            raise ReportError(
                f"the e-mail nests more than {_MAX_DELIMITER_LINES} messages and parts; "
                "a report e-mail has a few parts",
                code="report.mail.too-many-parts",
                rfc=_RFC_BOUNDS,
            )
        return EmailMessage(policy=policy)

    def charge(self, name: str, value: str) -> None:
        self.fields += 1
        self.header_bytes += len(name) + len(value)
        if self.fields > MAX_HEADER_FIELDS:
            raise _header_error(
                f"the e-mail has more than {MAX_HEADER_FIELDS} header fields (all parts together)"
            )
        if self.header_bytes > MAX_HEADER_BYTES:
            raise _header_error(
                f"the e-mail's header fields add up to more than {MAX_HEADER_BYTES} bytes"
                " (all parts together)"
            )
        words = value.count("=?")
        if words > MAX_ENCODED_WORDS:
            raise _header_error(
                f"the {name[:76]!r} header field holds {words} MIME encoded words "
                f"('=?charset?...?=', RFC 2047), above the limit of {MAX_ENCODED_WORDS}"
            )
        if name.lower() == "content-type" and value.lstrip().lower().startswith("multipart/"):
            self.multiparts += 1
            if self.multiparts > MAX_MULTIPARTS:
                raise ReportError(
                    f"the e-mail has more than {MAX_MULTIPARTS} multipart sections (nested "
                    "or not); a report e-mail has one or two",
                    code="report.mail.too-many-parts",
                    rfc=_RFC_BOUNDS,
                )
        lower = name.lower()
        if lower in _MIME_FIELDS:
            self.mime_bytes += len(value)
            if len(value) > MAX_MIME_FIELD_BYTES:
                raise _header_error(
                    f"a {name[:76]} field is {len(value)} bytes, above {MAX_MIME_FIELD_BYTES}"
                )
            if self.mime_bytes > MAX_MIME_HEADER_BYTES:
                raise _header_error(
                    "the e-mail's Content-Type, Content-Disposition and "
                    f"Content-Transfer-Encoding fields add up to more than "
                    f"{MAX_MIME_HEADER_BYTES} bytes"
                )
        elif lower in _READ_FIELDS and len(value) > MAX_READ_FIELD_BYTES:
            raise _header_error(
                f"the {name[:76]} field is {len(value)} bytes, above {MAX_READ_FIELD_BYTES}"
            )


def _header_error(what: str) -> ReportError:
    return ReportError(
        f"{what}; a report e-mail has a short header. Refused before the header is "
        "decoded: no real sender writes this",
        code="report.mail.header-too-large",
        rfc=_RFC_BOUNDS,
    )


class _MeteredPolicy(EmailPolicy):
    """``policy.default`` that charges each raw header field to a budget as it is read."""

    budget: _HeaderBudget

    def __init__(self, budget: _HeaderBudget) -> None:
        super().__init__(message_factory=budget.new_message)
        object.__setattr__(self, "budget", budget)  # policies refuse plain assignment

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        self.budget.charge(name, value)
        return name, value


class _DuplicateName(Exception):
    """A JSON object names a key twice: the decoder that warns about it takes over."""


def _pairs_once(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _DuplicateName
    return out


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads with hooks builds a JSONDecoder and its C scanner at every call.
# It reads clean JSON (strict, no name twice); anything else is read again the careful
# way below, which warns or says what is wrong. (A module-level decoder is what
# json.loads itself shares between threads.)
_CLEAN_JSON = json.JSONDecoder(object_pairs_hook=_pairs_once, parse_constant=_no_constant)


def load_json(raw: bytes, warn: Callable[[str, str], None]) -> object:
    """Decode I-JSON (RFC 7493): UTF-8, no duplicate names (first wins, warned).

    At most :data:`MAX_JSON_VALUES` values are materialised: the values are counted in
    the bytes first. Raises :class:`ReportError` (``report.json.*``).
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        warn("report.json.bom", "the JSON starts with a byte order mark; ignored")
        raw = raw[3:]
    # fewer bytes than the bound cannot hold more values (each is at least one byte)
    values = count_json_values(raw) if len(raw) >= MAX_JSON_VALUES else 0
    if values > MAX_JSON_VALUES:
        raise ReportTooLarge(
            f"the JSON holds up to {values} values (objects, arrays, strings, numbers), above the "
            f"limit of {MAX_JSON_VALUES}; a report has at most a few per failure-detail",
            code="report.json.too-many-values",
            rfc=_RFC_BOUNDS,
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        warn("report.json.not-utf8", "the JSON is not valid UTF-8; bad bytes replaced")
        text = raw.decode("utf-8", "replace")

    try:
        return _CLEAN_JSON.decode(text)
    except (_DuplicateName, ValueError, RecursionError):
        pass  # read again below: it warns about what it repairs, or says what is wrong

    def pairs_hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        out: dict[str, object] = dict(pairs)
        if len(out) == len(pairs):
            return out  # no name twice (dict() built it in C)
        out = {}
        for key, value in pairs:
            if key in out:
                # RFC 7493 §2.3 forbids duplicate names; never take the last one silently.
                warn("report.json.duplicate-key", f"duplicate key {key!r}: first kept")
            else:
                out[key] = value
        return out

    try:
        try:
            return json.loads(text, object_pairs_hook=pairs_hook, parse_constant=_no_constant)
        except json.JSONDecodeError as strict_error:
            # The RFC's own Appendix B example has a raw line break inside a string.
            try:
                value = json.loads(
                    text, object_pairs_hook=pairs_hook, parse_constant=_no_constant, strict=False
                )
            except ValueError:
                raise strict_error from None
            warn("report.json.control-character", "a string holds a raw control character")
            return value
    except RecursionError:
        raise ReportError("the JSON nests too deeply", code="report.json.too-deep") from None
    except ValueError as exc:
        raise ReportError(
            f"the report is not valid JSON: {exc}", code="report.json.invalid"
        ) from None


def count_json_values(raw: bytes, *, fast_limit: int = MAX_JSON_VALUES) -> int:
    """An upper bound of the number of values ``json.loads`` builds from ``raw``.

    Every value but the first in an array or object follows a ``,``, and every container
    starts with ``[`` or ``{``, so those three characters outside strings bound the count.
    Counting them everywhere is a fast bound; strings are skipped only when it is above
    ``fast_limit``, in C-speed passes and bounded memory (a regex substitution kept a
    list entry per string: 1.2 GB for 32 MB of short strings). Where the text stops being
    JSON (a backslash outside a string), the count may go wrong, but json.loads stops
    there too.
    """
    cheap = raw.count(b",") + raw.count(b"{") + raw.count(b"[") + 1
    if cheap <= fast_limit:
        return cheap
    # Drop escaped backslashes, then escaped quotes (a run of backslashes starts an escape
    # at its first), then all but quotes and , [ {: the pieces between quotes alternate
    # between outside and inside strings.
    skeleton = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    count, inside = 1, False
    for start in range(0, len(skeleton), _SCAN_CHUNK):
        pieces = skeleton[start : start + _SCAN_CHUNK].split(b'"')
        count += len(b"".join(pieces[1::2] if inside else pieces[::2]))
        inside ^= len(pieces) % 2 == 0  # an odd number of quotes in this chunk
    return count


def _header(
    message: EmailMessage | Message, name: str, warnings: list[Notice] | None
) -> str | None:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # a header the parser cannot model
        value = None
    text = None if value is None else " ".join(str(value).split())
    if not text and warnings is not None:
        warnings.append(
            _mail_notice(name.lower() + ".missing", f"the {name} header is missing (MUST)")
        )
    return text or None


def _mail_notice(code: str, message: str) -> Notice:
    return Notice(f"report.mail.{code}", message, _RFC_MAIL)
