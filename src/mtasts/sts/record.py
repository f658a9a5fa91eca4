"""The ``_mta-sts`` TXT record (RFC 8461 §3.1): select, parse, lint, format.

Grammar (RFC 8461 §3.1, RFC 5234 core rules; ``%s`` = case-sensitive)::

    sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
    sts-field       = sts-id / sts-extension
    sts-field-delim = *WSP ";" *WSP
    sts-version     = %s"v=STSv1"
    sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
    sts-extension   = sts-ext-name "=" sts-ext-value
    sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
    sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mtasts.errors import Linted, Notice, StsRecordError

VERSION = "v=STSv1"
_RFC = "RFC 8461 §3.1"
_WSP = " \t"  # RFC 5234: WSP = SP / HTAB, nothing else
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
_RESERVED = ("v", "id")


@dataclass(frozen=True, slots=True)
class StsRecord:
    """A valid STSv1 record: its ``id`` and any extension fields, in order (names unique)."""

    id: str
    extensions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.id):
            raise StsRecordError(_id_message(self.id), code="sts-record.id.invalid")
        seen: set[str] = set()
        for name, value in self.extensions:
            problem = _extension_problem(name, value)
            if problem is None and (name in _RESERVED or name in seen):
                problem = f"extension name {name!r} is reserved or repeated"
            if problem is not None:
                raise StsRecordError(problem, code="sts-record.extension.invalid")
            seen.add(name)


def _id_message(value: str) -> str:
    return (
        f"id {value!r} is not valid: an id is 1 to 32 letters and digits, with no "
        "punctuation (for example id=20240131T120000 or id=20240131a)"
    )


def _extension_problem(name: str, value: str) -> str | None:
    if not _EXT_NAME.fullmatch(name):
        return (
            f"extension name {name!r} is not valid: it must start with a letter or digit "
            "and hold at most 32 letters, digits, '_', '-' or '.'"
        )
    if not _EXT_VALUE.fullmatch(value):
        return (
            f"the value of {name!r} ({value!r}) is not valid: it must be non-empty printable "
            "US-ASCII without spaces, '=' or ';'"
        )
    return None


def is_sts_record(text: str) -> bool:
    """Whether ``text`` (one TXT record, strings joined) is an STSv1 record at all.

    RFC 8461 §3.1 says to discard records that do not begin with ``v=STSv1;``, but its
    ABNF allows whitespace before that ``;`` (erratum 6285). We follow the grammar:
    ``v=STSv1``, then optional WSP, then ``;`` or the end. So ``v=STSv1 ; id=1`` is an
    STSv1 record (lint warns), ``v=STSv1`` alone is a malformed one (id missing), and
    ``v=STSv10``, ``v=stsv1``, `` v=STSv1;`` and ``id=1; v=STSv1`` are not STSv1 records.
    """
    if not text.startswith(VERSION):
        return False
    rest = text[len(VERSION) :].lstrip(_WSP)
    return rest == "" or rest.startswith(";")


def _not_sts_message(text: str) -> str:
    """Explain why ``text`` is not taken for an STSv1 record, naming the likely fix."""
    stripped = text.lstrip()
    if stripped != text and is_sts_record(stripped):
        return "the record starts with whitespace: it must begin exactly with v=STSv1"
    if text[: len(VERSION)].lower() == VERSION.lower() and not text.startswith(VERSION):
        return "the version is case-sensitive: the record must begin with v=STSv1"
    if text.startswith(VERSION):
        after = text[len(VERSION) :][:1]
        if after.isalnum() or after in ".-_":
            return "the version must be exactly STSv1, followed by ';'"
        return "put a ';' after v=STSv1 to separate it from the next field"
    if VERSION in text:
        return "v=STSv1 must be the first field of the record"
    return "this is not an MTA-STS record: it does not begin with v=STSv1"


def lint_sts_record(text: str) -> Linted[StsRecord]:
    """Check one TXT record (strings joined) against RFC 8461 §3.1; never raises.

    Errors make the record unusable (senders treat the domain as having no policy);
    warnings are legal but risky or ignored content.
    """
    if not is_sts_record(text):
        return Linted(None, (Notice("sts-record.not-sts", _not_sts_message(text), _RFC),))
    errors: list[Notice] = []
    warnings: list[Notice] = []

    def error(code: str, message: str) -> None:
        errors.append(Notice(code, message, _RFC))

    def warn(code: str, message: str) -> None:
        warnings.append(Notice(code, message, _RFC))

    if not text.isascii():
        bad = next(c for c in text if not c.isascii())
        error("sts-record.non-ascii", f"the record must be US-ASCII; remove {bad!r}")
    parts = text[len(VERSION) :].split(";")
    # parts[0] is the WSP between v=STSv1 and the first ";" (is_sts_record checked it).
    if parts[0]:
        warn(
            "sts-record.whitespace",
            "whitespace before the first ';' is allowed by the grammar, but senders that "
            "look for the literal prefix 'v=STSv1;' will ignore this record",
        )
    fields = parts[1:]
    if fields and not fields[-1].strip(_WSP):
        fields.pop()  # [sts-field-delim]: an optional trailing ";" plus WSP
    elif fields and fields[-1] != fields[-1].rstrip(_WSP):
        # WSP is only allowed around a ";": "v=STSv1; id=1 " does not match the ABNF.
        error(
            "sts-record.syntax",
            "the record ends with whitespace after its last field: remove it (or end with ';')",
        )
    record_id: str | None = None
    names: set[str] = set()
    extensions: list[tuple[str, str]] = []
    for raw in fields:
        field = raw.strip(_WSP)
        if not field:
            error("sts-record.syntax", "the record has an empty field (';;'): remove one ';'")
            continue
        if any(c in field for c in _WSP):
            error(
                "sts-record.syntax",
                f"field {field!r} contains whitespace: write name=value with no spaces, and "
                "separate fields with ';'",
            )
            continue
        name, eq, value = field.partition("=")
        if not eq:
            error("sts-record.syntax", f"field {field!r} is not of the form name=value")
            continue
        problem = _extension_problem(name, value)
        if name in names or (name == "v"):
            # RFC 8461 §3.2 (last paragraph): the first occurrence wins; a repeat is ignored
            # but, as an extension, it must still be well-formed.
            if problem is not None:
                error("sts-record.extension.invalid", problem)
            else:
                warn("sts-record.duplicate", f"{name!r} appears again; only the first counts")
            continue
        names.add(name)
        if name == "id":
            if _ID.fullmatch(value):
                record_id = value
            else:
                error("sts-record.id.invalid", _id_message(value))
        elif problem is not None:
            error("sts-record.extension.invalid", problem)
        else:
            extensions.append((name, value))
            warn("sts-record.extension", f"extension {name}={value} is ignored by senders")
    if "id" not in names:
        hint = ""
        if any(n.lower() == "id" for n in names):
            hint = " (field names are case-sensitive: write id, not ID)"
        error(
            "sts-record.id.missing",
            f"the record has no id field; add id=<1-32 letters/digits>{hint}",
        )
    if errors or record_id is None:
        return Linted(None, tuple(errors), tuple(warnings))
    return Linted(StsRecord(record_id, tuple(extensions)), (), tuple(warnings))


def parse_sts_record(text: str) -> StsRecord | None:
    """Parse one TXT record (strings joined, RFC 8461 §3.1 / RFC 7208 §3.3).

    Returns None when ``text`` is not an STSv1 record (see :func:`is_sts_record`), and
    raises StsRecordError (the first error :func:`lint_sts_record` finds) when it is one
    but malformed. A repeated ``id`` (or extension) is ignored: the first one wins.
    """
    if not is_sts_record(text):
        return None
    linted = lint_sts_record(text)
    if linted.errors:
        first = linted.errors[0]
        raise StsRecordError(first.message, code=first.code)
    assert linted.value is not None
    return linted.value


def select_sts_record(txt_records: Sequence[str]) -> StsRecord | None:
    """Pick the policy record from one ``_mta-sts`` TXT RRset (RFC 8461 §3.1).

    Each item is one TXT record with its strings already joined. Records that are not
    STSv1 (SPF, verification tokens, ``v=STSv10``...) are discarded. None: no STSv1 record.
    Several STSv1 records raise StsRecordError ``sts-record.multiple``: the RFC says to
    treat the domain as having no available policy, which the caller decides (a valid
    cached policy still applies, §3.3). One malformed record raises its parse error.
    """
    candidates = [t for t in txt_records if is_sts_record(t)]
    if not candidates:
        return None
    if len(candidates) > 1:
        raise StsRecordError(
            f"there are {len(candidates)} v=STSv1 TXT records; publish exactly one "
            "(senders treat several as no policy)",
            code="sts-record.multiple",
        )
    return parse_sts_record(candidates[0])


def format_sts_record(record: StsRecord) -> str:
    """The TXT record text for ``record``: ``v=STSv1; id=...`` then ``; name=value`` each.

    We write no trailing ``;`` (the RFC example has one; both are valid).
    """
    fields = [VERSION, f"id={record.id}", *(f"{n}={v}" for n, v in record.extensions)]
    return "; ".join(fields)


def sts_record_to_json(record: StsRecord) -> dict[str, object]:
    """``{"id": ..., "extensions": {name: value}}`` for ``--json`` output."""
    return {"id": record.id, "extensions": dict(record.extensions)}
