"""Unwrap a received TLS-RPT report: gzip (RFC 8460 §5.2) and report e-mail (§5.3).

Pure: bytes in, bytes out, never more than a caller-given bound. Received reports are
untrusted input (RFC 8460 §7): a gzip bomb stops at the bound, a gzip header's file name
is never used (§6.3), and a whole e-mail is searched for its report part leniently,
recording each deviation from §5.3 as a warning.
"""

from __future__ import annotations

import email
import email.policy
import zlib
from dataclasses import dataclass
from email.message import EmailMessage, Message

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


def looks_like_mail(data: bytes) -> bool:
    """Does ``data`` start like an RFC 5322 message (a header field, or an mbox line)?"""
    head = data[:1000].lstrip(b"\r\n")
    if head.startswith(b"From "):
        return True
    name, colon, _ = head.partition(b":")
    return bool(colon) and 0 < len(name) <= 76 and all(33 <= c <= 126 for c in name)


def extract_from_mail(data: bytes) -> tuple[bytes, bool, MailEnvelope, tuple[Notice, ...]]:
    """The report part of a report e-mail: (decoded bytes, is gzip, envelope, warnings).

    RFC 8460 §5.3: ``multipart/report; report-type="tlsrpt"`` with an
    ``application/tlsrpt+gzip`` or ``application/tlsrpt+json`` part. Variants real senders
    use (``application/gzip``, ``application/json``, ``application/octet-stream`` with a
    ``.json.gz`` name, a single-part message) are accepted with a warning.
    Raises :class:`ReportError` ``report.mail.no-report`` when no part holds a report.
    """
    warnings: list[Notice] = []
    # Each MIME part starts on a line beginning with "--" (RFC 2046 §5.1.1). The email
    # package parses every part (about 0.3 ms each) before we walk the first
    # MAX_MAIL_PARTS, so a message of countless empty parts is refused before parsing.
    delimiters = data.count(b"\n--")
    if delimiters > _MAX_DELIMITER_LINES:
        raise ReportError(
            f"the e-mail has {delimiters} lines starting with '--' (MIME part boundaries); "
            "a report e-mail has a few parts",
            code="report.mail.too-many-parts",
            rfc="RFC 8460 §7",
        )
    message = email.message_from_bytes(data, policy=email.policy.default)
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
