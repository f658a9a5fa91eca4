"""The ``_smtp._tls`` TXT record of SMTP TLS Reporting (RFC 8460 §3).

Pure: text in, frozen values out. The caller joins the strings of one TXT record with no
separator first (RFC 8460 §3, RFC 7208 §3.3).

ABNF (RFC 8460 §3)::

    tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
    field-delim      = *WSP ";" *WSP
    tlsrpt-field     = tlsrpt-rua / tlsrpt-extension
    tlsrpt-version   = %s"v=TLSRPTv1"
    tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
    tlsrpt-uri       = URI        ; RFC 3986; "," "!" ";" MUST be percent-encoded
    tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
    tlsrpt-ext-name  = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)

Decisions where the RFC leaves a choice open (also in docs/coverage/tlsrpt-model.md):

- Whitespace before the first ``;`` (``v=TLSRPTv1 ;``) is allowed by the ABNF but not by
  the "begins with ``v=TLSRPTv1;``" filter of §3; we accept it and lint warns.
- An empty field (``;;``) is outside the ABNF; we skip it and lint warns, so a sloppy
  but unambiguous record still receives reports.
- Duplicate ``rua=``: the RFC is silent; the first wins (as RFC 8461 §3.1 does for its
  record) and lint warns.
- A well-formed URI with a scheme other than ``mailto:``/``https:`` is unusable (§3): it
  is dropped with a warning; a record left with no usable URI is malformed.
- Whitespace the ABNF forbids, between ``rua=`` and the first URI or at the end of the
  record (after the last field, with no ``;`` after it): :func:`lint_tlsrpt_record` (for
  ``lint`` and ``check``) reports an error, as ``lint sts-record`` does, since strict
  senders drop such a record; the sender's :func:`parse_tlsrpt_record` still reads it
  (the address is unambiguous, and a report lost costs the receiver its data).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mtasts.errors import Linted, Notice, TlsRptRecordError

VERSION = "v=TLSRPTv1"
USABLE_SCHEMES = ("mailto", "https")
_RFC = "RFC 8460 §3"
_WSP = " \t"

# tlsrpt-ext-name / tlsrpt-ext-value (RFC 8460 §3).
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
# RFC 3986 URI, loosely: a scheme, then URI characters or pct-encoded octets, without the
# sub-delims "," "!" ";" that RFC 8460 §3 requires to be percent-encoded.
_URI = re.compile(
    r"([A-Za-z][A-Za-z0-9+.\-]*):(?:[A-Za-z0-9\-._~:/?#\[\]@$&'()*+=]|%[0-9A-Fa-f]{2})+"
)
_URI_MAILTO = re.compile(r"mailto:[^?]*@", re.IGNORECASE)
_URI_HTTPS = re.compile(r"https://[^/?#]+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TlsRptRecord:
    """A valid TLS-RPT record: its usable ``rua`` URIs in order, and unknown fields."""

    rua: tuple[str, ...]
    extensions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.rua:
            raise TlsRptRecordError("a TLS-RPT record needs at least one rua URI")
        for uri in self.rua:
            _check_uri(uri)
        for name, value in self.extensions:
            if name == "rua" or not _EXT_NAME.fullmatch(name) or not _EXT_VALUE.fullmatch(value):
                raise TlsRptRecordError(f"invalid extension field {name}={value}")


def is_tlsrpt_record(text: str) -> bool:
    """Does ``text`` claim to be a TLS-RPT record (version tag, then end, WSP or ``;``)?"""
    if not text.startswith(VERSION):
        return False
    rest = text[len(VERSION) :]
    return rest == "" or rest[0] in ";" + _WSP


def parse_tlsrpt_record(text: str) -> TlsRptRecord | None:
    """Parse one joined TXT string; ``None`` if it is not ``v=TLSRPTv1`` at all.

    Raises :class:`TlsRptRecordError` (codes ``tlsrpt-record.*``) for a malformed one.
    """
    parsed = _parse(text, strict=False)
    return None if parsed is None else parsed[0]


def format_tlsrpt_record(record: TlsRptRecord) -> str:
    """The canonical text: ``v=TLSRPTv1; rua=URI,URI; name=value``."""
    fields = [VERSION, "rua=" + ",".join(record.rua)]
    fields.extend(f"{name}={value}" for name, value in record.extensions)
    return "; ".join(fields)


def select_tlsrpt_record(txt_records: Sequence[str]) -> TlsRptRecord | None:
    """Pick the TLS-RPT record from a TXT RRset (each record's strings already joined).

    RFC 8460 §3: records that are not TLS-RPT are dropped; if the number left is not
    exactly one, the domain does not implement TLS-RPT: ``None``. A single remaining
    record that is malformed raises :class:`TlsRptRecordError` (the caller sends nothing
    either way, but can tell the administrator why).
    """
    candidates = [t for t in txt_records if is_tlsrpt_record(t)]
    if len(candidates) != 1:
        return None
    return parse_tlsrpt_record(candidates[0])


def lint_tlsrpt_record(text: str) -> Linted[TlsRptRecord]:
    """Check one record for an administrator: the value, its errors and warnings."""
    if not is_tlsrpt_record(text):
        return Linted(None, errors=(_not_tlsrpt(text),))
    try:
        parsed = _parse(text, strict=True)
    except TlsRptRecordError as exc:
        return Linted(None, errors=(exc.notice(),))
    assert parsed is not None
    return Linted(parsed[0], warnings=parsed[1])


def lint_tlsrpt_records(txt_records: Sequence[str]) -> Linted[TlsRptRecord]:
    """Check a whole TXT RRset at ``_smtp._tls``: exactly one TLS-RPT record (§3)."""
    candidates = [t for t in txt_records if is_tlsrpt_record(t)]
    if len(candidates) > 1:
        message = (
            f"{len(candidates)} TXT records start with {VERSION}; senders ignore them all. "
            "Publish exactly one."
        )
        return Linted(None, errors=(Notice("tlsrpt-record.multiple", message, _RFC),))
    if not candidates:
        hints = [_not_tlsrpt(t) for t in txt_records if t.strip().lower().startswith("v=tlsrpt")]
        message = f"no TXT record starts with {VERSION}; the domain receives no TLS reports"
        return Linted(None, errors=(*hints, Notice("tlsrpt-record.missing", message, _RFC)))
    return lint_tlsrpt_record(candidates[0])


def tlsrpt_record_to_json(record: TlsRptRecord) -> dict[str, object]:
    """``{"rua": [...]}``, plus ``"extensions": {name: value}`` when there are any."""
    out: dict[str, object] = {"rua": list(record.rua)}
    if record.extensions:
        out["extensions"] = dict(record.extensions)
    return out


# --- the grammar ----------------------------------------------------------------------


def _parse(text: str, *, strict: bool) -> tuple[TlsRptRecord, tuple[Notice, ...]] | None:
    """The record and its warnings. ``strict`` (lint): whitespace the ABNF forbids is an
    error; otherwise (the sender) it is a warning."""
    if not is_tlsrpt_record(text):
        return None
    warnings: list[Notice] = []

    def forbidden(code: str, message: str) -> None:
        if strict:
            raise _error(code, message)
        warnings.append(_notice(code, message))

    rest = text[len(VERSION) :]
    pieces = rest.split(";")
    if pieces[0].strip(_WSP):
        # "v=TLSRPTv1 rua=..." : something other than a delimiter after the version.
        raise _error("syntax", f"expected ';' after {VERSION}, found {pieces[0]!r}")
    if pieces[0]:
        warnings.append(
            _notice(
                "space-before-semicolon",
                f"remove the space between {VERSION} and ';': some senders only accept "
                f"records that begin with exactly '{VERSION};'",
            )
        )
    rua: tuple[str, ...] | None = None
    extensions: list[tuple[str, str]] = []
    fields = [p.strip(_WSP) for p in pieces[1:]]
    if fields and fields[-1] == "":
        fields.pop()  # the optional trailing field-delim
    for field in fields:
        if field == "":
            warnings.append(_notice("empty-field", "remove the empty field (';;')"))
            continue
        name, sep, value = field.partition("=")
        if name == "rua" and sep:
            if rua is not None:
                warnings.append(
                    _notice("duplicate-rua", "only the first rua= is used: merge them into one")
                )
                continue
            rua = _parse_rua(value, warnings, forbidden)
        elif sep and _EXT_NAME.fullmatch(name) and _EXT_VALUE.fullmatch(value):
            extensions.append((name, value))
            hint = " (did you mean 'rua'?)" if name.lower() == "rua" else ""
            warnings.append(_notice("unknown-field", f"unknown field '{name}' ignored{hint}"))
        else:
            raise _error("syntax", f"field {field!r} is not name=value (RFC 8460 §3 ABNF)")
    if rua is None:
        raise _error("rua-missing", "the record has no rua= field naming where to send reports")
    body = text.rstrip(_WSP)
    if body != text and not body.endswith(";"):
        # tlsrpt-record ends with a field or a field-delim; WSP alone after the last
        # field is outside the ABNF (E-5 for the STS record says the same).
        forbidden(
            "trailing-whitespace",
            "remove the whitespace at the end of the record (after the last field)",
        )
    return TlsRptRecord(rua, tuple(extensions)), tuple(warnings)


def _parse_rua(
    value: str, warnings: list[Notice], forbidden: Callable[[str, str], None]
) -> tuple[str, ...]:
    """tlsrpt-rua = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)"""
    if value.strip(_WSP) == "":
        raise _error("rua-empty", "rua= is empty: give a mailto: or https: URI")
    if value[0] in _WSP:
        # Outside the ABNF (the URI follows "rua=" at once); strict parsers drop the record.
        forbidden("rua-whitespace", "remove the whitespace after 'rua=': write rua=mailto:...")
    usable: list[str] = []
    for raw in value.split(","):
        uri = raw.strip(_WSP)
        if uri == "":
            raise _error("rua-syntax", f"empty URI in rua={value} (stray comma)")
        scheme = _check_uri_syntax(uri)
        if scheme not in USABLE_SCHEMES:
            warnings.append(
                _notice(
                    "rua-scheme-unusable",
                    f"{uri} is ignored: only mailto: and https: URIs receive reports",
                )
            )
            continue
        _check_uri(uri)
        usable.append(uri)
    if not usable:
        raise _error(
            "rua-scheme", f"rua={value} has no mailto: or https: URI, so no report can be sent"
        )
    return tuple(usable)


def _check_uri_syntax(uri: str) -> str:
    """Check RFC 3986 syntax and the §3 encoding rule; return the lower-case scheme."""
    if "!" in uri or "," in uri or ";" in uri:
        raise _error(
            "rua-unencoded",
            f"{uri}: write '!' as %21 (a DMARC-style size limit is not allowed here)",
        )
    match = _URI.fullmatch(uri)
    if match is None:
        raise _error("rua-syntax", f"{uri} is not a URI (RFC 3986); percent-encode odd bytes")
    return match.group(1).lower()


def _check_uri(uri: str) -> None:
    """A usable rua URI: well formed, ``mailto:`` with an address or ``https://host``."""
    scheme = _check_uri_syntax(uri)
    if scheme == "mailto" and _URI_MAILTO.match(uri):
        return
    if scheme == "https" and _URI_HTTPS.match(uri):
        return
    if scheme in USABLE_SCHEMES:
        raise _error("rua-syntax", f"{uri}: a mailto: URI needs an address, https: a host")
    raise _error("rua-scheme", f"{uri}: only mailto: and https: URIs can receive reports")


def _not_tlsrpt(text: str) -> Notice:
    stripped = text.strip()
    if stripped.startswith(VERSION):
        hint = "remove the leading whitespace"
    elif stripped.lower().startswith(VERSION.lower()):
        hint = f"the version is case-sensitive: write exactly '{VERSION}'"
    else:
        hint = f"a TLS-RPT record starts with '{VERSION};'"
    return Notice("tlsrpt-record.not-tlsrpt", f"not a TLS-RPT record: {hint}", _RFC)


def _error(code: str, message: str) -> TlsRptRecordError:
    return TlsRptRecordError(message, code=f"tlsrpt-record.{code}")


def _notice(code: str, message: str) -> Notice:
    return Notice(f"tlsrpt-record.{code}", message, _RFC)
