"""The tolerant TLS-RPT report reader (RFC 8460 §4.4; receivers per §7.6 of the checklist).

Pure: bytes in, ``Linted[Report]`` out; it never raises. Real senders deviate from the RFC
(Microsoft dates without a zone, the RFC's own ``mx-host`` string, Stalwart's ``null``
contact, Postfix's missing ``policy-domain``, TLSA policy strings holding JSON...). Each
such input is repaired into the model and the repair is recorded as a warning with a
stable code, so the original stays auditable. What cannot be repaired (not JSON, a wrong
shape, a negative count) is an error and the value is ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mtasts.errors import Linted, Notice, ReportError, ReportTooLarge
from mtasts.results import PolicyType, ResultType
from mtasts.tlsrpt.dates import parse_report_datetime
from mtasts.tlsrpt.model import MAX_COUNT, FailureDetail, PolicyResult, Report, canonical_ip
from mtasts.tlsrpt.unpack import GZIP_MAGIC, MailEnvelope, extract_from_mail, gunzip, load_json
from mtasts.tlsrpt.unpack import looks_like_mail as _looks_like_mail

MAX_REPORT_BYTES = 10 * 2**20  # a commonly observed receiver limit (checklist E-76)
MAX_POLICIES = 10_000
MAX_DETAILS = 100_000  # over the whole report
MAX_WARNINGS = 100
_RFC = "RFC 8460 §4.4"
_MISSING: Any = object()

_KEYS_REPORT = {"organization-name", "date-range", "contact-info", "report-id", "policies"}
_KEYS_POLICY_ENTRY = {"policy", "summary", "failure-details"}
_KEYS_POLICY = {"policy-type", "policy-string", "policy-domain", "mx-host"}
_KEYS_SUMMARY = {"total-successful-session-count", "total-failure-session-count"}
_KEYS_DETAIL = {
    "result-type",
    "sending-mta-ip",
    "receiving-mx-hostname",
    "receiving-mx-helo",
    "receiving-ip",
    "failed-session-count",
    "additional-information",
    "failure-reason-code",
}
# Names some tools use for a key, taken from the prose type names (checklist §4.5).
_ALIASES = {"additional-information": ("additional-info-uri",), "mx-host": ("mx-host-pattern",)}
# Looked up in a dict: calling the enum (PolicyType("sts")) costs a few µs per policy.
_POLICY_TYPES = {t.value: t for t in PolicyType}
_RESULT_TYPES = frozenset(t.value for t in ResultType)


class _Reader:
    """Collects warnings (bounded) while one report is read."""

    def __init__(self) -> None:
        self.warnings: list[Notice] = []
        self.dropped = 0
        self.details = 0

    def warn(self, code: str, message: str, rfc: str = _RFC) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(Notice(code, message, rfc))
        else:
            self.dropped += 1

    def result(self, report: Report | None, error: Notice | None = None) -> Linted[Report]:
        warnings = list(self.warnings)
        if self.dropped:
            warnings.append(
                Notice("report.warnings.truncated", f"{self.dropped} more warnings not shown")
            )
        if error is not None:
            return Linted(None, errors=(error,), warnings=tuple(warnings))
        return Linted(report, warnings=tuple(warnings))

    # --- values -------------------------------------------------------------------

    def get(self, obj: Mapping[str, object], key: str, path: str) -> Any:
        if key in obj:
            return obj[key]
        for alias in _ALIASES.get(key, ()):
            if alias in obj:
                self.warn("report.key.alias", f"{path}.{alias} read as {key!r}")
                return obj[alias]
        return _MISSING

    def text(self, value: object, path: str) -> str:
        """A JSON string made safe for I-JSON (no lone surrogates, RFC 7493 §2.1)."""
        if type(value) is str and value.isascii():
            return value  # the common case, decided in O(1): nothing to repair
        if not isinstance(value, str):
            self.warn("report.value.type", f"{path} is {type(value).__name__}, read as text")
            value = json.dumps(value) if isinstance(value, list | dict) else str(value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.warn("report.json.invalid-unicode", f"{path} has a lone surrogate, replaced")
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value

    def optional_text(self, obj: Mapping[str, object], key: str, path: str) -> str | None:
        value = self.get(obj, key, path)
        if value is _MISSING:
            return None
        if type(value) is str and value and value.isascii():
            return value  # as text() would, without building the path it never uses
        if value is None or value == "":
            what = "null" if value is None else "an empty string"
            self.warn("report.value.empty", f"{path}.{key} is {what}; read as absent")
            return None
        return self.text(value, f"{path}.{key}")

    def required_text(self, obj: Mapping[str, object], key: str, path: str) -> str:
        value = self.get(obj, key, path)
        if value is _MISSING or value is None:
            what = "missing" if value is _MISSING else "null"
            self.warn(f"report.{key}.missing", f"{path}.{key} is {what}; read as empty")
            return ""
        return self.text(value, f"{path}.{key}")

    def count(self, value: object, path: str) -> int:
        """A session count: a JSON integer, 0 <= n <= 2^53-1 (RFC 8460 §4.4, RFC 7493)."""
        if isinstance(value, bool) or value is None or isinstance(value, list | dict):
            raise _fail("report.count.type", f"{path} must be a number, not {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise _fail("report.count.type", f"{path} is {value}, not a whole number")
            self.warn("report.count.float", f"{path} is written {value}; read as an integer")
            value = int(value)
        elif isinstance(value, str):
            digits = value.strip()
            # ASCII digits only: str.isdigit() also takes "²" and "١٢", and int() refuses
            # more than 4300 digits with a ValueError.
            if not (digits.isascii() and digits.isdigit()):
                raise _fail("report.count.type", f"{path} is the text {value[:40]!r}, not a number")
            self.warn(
                "report.count.string", f"{path} is the string {value[:40]!r}; read as a number"
            )
            if len(digits.lstrip("0")) > len(str(MAX_COUNT)):
                raise _fail(
                    "report.count.too-large", f"{path} has {len(digits)} digits, above 2^53-1"
                )
            value = int(digits)
        assert isinstance(value, int)
        if value < 0:
            raise _fail("report.count.negative", f"{path} is negative ({value})")
        if value > MAX_COUNT:
            raise _fail("report.count.too-large", f"{path} is {value}, above 2^53-1 (I-JSON)")
        return value

    def strings(self, value: object, path: str, *, string_code: str) -> tuple[str, ...]:
        """A JSON array of strings; a bare string becomes a one-element array (warned)."""
        if value is _MISSING or value is None:
            return ()
        if isinstance(value, str):
            self.warn(string_code, f"{path} is a string, not an array of strings")
            return (self.text(value, path),) if value else ()
        if not isinstance(value, list):
            raise _fail("report.shape", f"{path} must be an array of strings")
        out = []
        for index, item in enumerate(value):
            if type(item) is str and item.isascii():
                out.append(item)  # as text() would, without building the path
                continue
            if item is None or isinstance(item, list | dict):
                raise _fail("report.shape", f"{path}[{index}] must be a string")
            out.append(self.text(item, f"{path}[{index}]"))
        return tuple(out)

    def unknown_keys(self, obj: Mapping[str, object], known: set[str], path: str) -> None:
        if known.issuperset(obj):
            return  # every key known (one pass in C)
        for key in obj:
            if key not in known and not any(key in a for a in _ALIASES.values()):
                self.warn("report.key.unknown", f"{path}.{key} is not an RFC 8460 key; ignored")


def _ascii_strings(value: object) -> tuple[str, ...] | None:
    """``value`` as a tuple when it is a list of ASCII strings (what :meth:`_Reader.strings`
    returns for it, without a warning), else None: the reader's common case, decided
    without building the paths its warnings would need."""
    if type(value) is not list:
        return None
    try:
        if not "".join(value).isascii():  # (one pass in C; a non-string raises)
            return None
    except TypeError:
        return None
    return tuple(value)


def _optional_text(obj: dict[str, object], key: str, path: str, reader: _Reader) -> str | None:
    """:meth:`_Reader.optional_text`, with its common case (a non-empty ASCII string under
    the key itself) decided in place."""
    value = obj.get(key)
    if type(value) is str and value and value.isascii():
        return value
    return reader.optional_text(obj, key, path)


def _plain_count(value: object) -> int | None:
    """A session count already as :meth:`_Reader.count` returns it (a JSON integer in
    range), else None: the common case, without building the path."""
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    return None


def _fail(code: str, message: str) -> ReportError:
    return ReportError(message, code=code)


# --- JSON ---------------------------------------------------------------------------------


def _load_json(raw: bytes, reader: _Reader) -> object:
    """Decode I-JSON (RFC 7493), with every value counted before it is materialised."""
    return load_json(raw, reader.warn)


# --- the report ---------------------------------------------------------------------------


def _detail(obj: object, path: str, reader: _Reader) -> FailureDetail:
    if not isinstance(obj, dict):
        raise _fail("report.shape", f"{path} must be an object")
    if not _KEYS_DETAIL.issuperset(obj):
        reader.unknown_keys(obj, _KEYS_DETAIL, path)
    kind = obj.get("result-type")
    if not isinstance(kind, str) or not kind:
        raise _fail("report.result-type.missing", f"{path} has no result-type")
    if kind not in _RESULT_TYPES:
        fixed = kind.strip().lower()
        if fixed in _RESULT_TYPES:
            reader.warn("report.result-type.case", f"{path}.result-type {kind!r} read as {fixed}")
            kind = fixed
        else:
            reader.warn(
                "report.result-type.unregistered",
                f"{path}.result-type {kind!r} is not in the IANA registry; kept as is",
                "RFC 8460 §4.3",
            )
    count = obj.get("failed-session-count", _MISSING)
    if count is _MISSING:
        raise _fail("report.failed-session-count.missing", f"{path} has no failed-session-count")
    sessions = _plain_count(count)
    return FailureDetail(
        result_type=kind if kind.isascii() else reader.text(kind, f"{path}.result-type"),
        sending_mta_ip=_ip(_optional_text(obj, "sending-mta-ip", path, reader), path, reader),
        receiving_mx_hostname=_optional_text(obj, "receiving-mx-hostname", path, reader),
        receiving_mx_helo=_optional_text(obj, "receiving-mx-helo", path, reader),
        receiving_ip=_ip(_optional_text(obj, "receiving-ip", path, reader), path, reader),
        failed_session_count=(
            sessions
            if sessions is not None
            else reader.count(count, f"{path}.failed-session-count")
        ),
        additional_information=_optional_text(obj, "additional-information", path, reader),
        failure_reason_code=_optional_text(obj, "failure-reason-code", path, reader),
    )


def _ip(text: str | None, path: str, reader: _Reader) -> str | None:
    """RFC 8460 §4.4 ip-address; IPv6 is kept in its RFC 5952 form (E-69: accept others)."""
    if text is None:
        return None
    canonical = canonical_ip(text.strip())  # RFC 5952, IPv4-mapped as ::ffff:a.b.c.d (§5)
    if canonical is None:
        reader.warn("report.ip.invalid", f"{path}: {text!r} is not an IP address; kept as is")
        return text
    if canonical != text:
        reader.warn("report.ip.not-canonical", f"{path}: {text!r} read as {canonical} (RFC 5952)")
    return canonical


def _policy_type(value: object, path: str, reader: _Reader) -> PolicyType:
    if not isinstance(value, str):
        raise _fail("report.policy-type.missing", f"{path}.policy-type is missing")
    fixed = value.strip().lower()
    kind = _POLICY_TYPES.get(fixed)
    if kind is None:
        raise _fail(
            "report.policy-type.unknown",
            f"{path}.policy-type {value!r} is not tlsa, sts or no-policy-found",
        )
    if fixed != value:
        reader.warn("report.policy-type.case", f"{path}.policy-type {value!r} read as {fixed}")
    return kind


def _policy_strings(value: object, kind: PolicyType, path: str, reader: _Reader) -> tuple[str, ...]:
    if type(value) is list:
        try:
            joined = "\n".join(value)
        except TypeError:
            joined = "["  # a non-string: the long way below says so
        if joined.isascii() and not joined.startswith("[") and "\n[" not in joined:
            return tuple(value)  # the common case: no line to warn about or unpack
    if value is _MISSING and kind is not PolicyType.NO_POLICY_FOUND:
        reader.warn("report.policy-string.missing", f"{path}.policy-string is missing")
    lines = reader.strings(
        value, path + ".policy-string", string_code="report.policy-string.string"
    )
    out: list[str] = []
    for line in lines:
        # Microsoft writes the TLSA RRset as one string holding a JSON array (tlsrpt §10).
        if line.startswith("[") and line.endswith("]"):
            try:
                inner = json.loads(line)
            except (ValueError, RecursionError):
                inner = None
            if isinstance(inner, list) and inner and all(isinstance(i, str) for i in inner):
                reader.warn(
                    "report.policy-string.json-encoded",
                    f"{path}.policy-string holds a JSON array in a string; unpacked",
                )
                out.extend(reader.text(i, path + ".policy-string") for i in inner)
                continue
        out.append(line)
    return tuple(out)


def _policy_domain(value: object, path: str, fallback: str | None, reader: _Reader) -> str:
    canonical = type(value) is str and value.isascii() and value.strip().rstrip(".").lower()
    if canonical and canonical == value:
        return canonical  # already canonical: nothing to warn about
    if value is _MISSING or value is None or value == "":
        source = f"taken from TLS-Report-Domain {fallback}" if fallback else "read as empty"
        reader.warn("report.policy-domain.missing", f"{path}.policy-domain is missing; {source}")
        return fallback or ""
    text = reader.text(value, path + ".policy-domain")
    canonical = text.strip().rstrip(".").lower()
    if canonical != text:
        reader.warn("report.policy-domain.not-canonical", f"{path}.policy-domain {text!r} lowered")
    if not canonical.isascii():
        reader.warn("report.policy-domain.u-label", f"{path}.policy-domain is not in A-labels")
    return canonical


def _policy(obj: object, path: str, fallback_domain: str | None, reader: _Reader) -> PolicyResult:
    if not isinstance(obj, dict):
        raise _fail("report.shape", f"{path} must be an object")
    if not _KEYS_POLICY_ENTRY.issuperset(obj):
        reader.unknown_keys(obj, _KEYS_POLICY_ENTRY, path)
    policy = obj.get("policy")
    if not isinstance(policy, dict):
        raise _fail("report.policy.missing", f"{path}.policy must be an object")
    ppath = path + ".policy"
    if not _KEYS_POLICY.issuperset(policy):
        reader.unknown_keys(policy, _KEYS_POLICY, ppath)
    # (each lookup below first tries the common case in place: a dict hit, no warning)
    type_value = policy.get("policy-type")
    kind = _POLICY_TYPES.get(type_value) if type(type_value) is str else None
    if kind is None:
        kind = _policy_type(type_value, ppath, reader)
    mx_value = policy.get("mx-host", _MISSING)
    if mx_value is _MISSING:
        mx_value = reader.get(policy, "mx-host", ppath)  # an alias, warned
    if mx_value is _MISSING and kind is PolicyType.STS:
        reader.warn("report.mx-host.missing", f"{ppath}.mx-host is missing for an sts policy")
    mx_host = _ascii_strings(mx_value)
    if mx_host is None:
        mx_host = reader.strings(mx_value, ppath + ".mx-host", string_code="report.mx-host.string")

    details_value = obj.get("failure-details", _MISSING)
    if details_value is None:
        reader.warn("report.value.empty", f"{path}.failure-details is null; read as []")
        details_value = []
    elif isinstance(details_value, dict):
        reader.warn("report.failure-details.object", f"{path}.failure-details is not an array")
        details_value = [details_value]
    elif details_value is _MISSING:
        details_value = []
    if not isinstance(details_value, list):
        raise _fail("report.shape", f"{path}.failure-details must be an array")
    reader.details += len(details_value)
    if reader.details > MAX_DETAILS:
        raise ReportTooLarge(f"the report has more than {MAX_DETAILS} failure-details")
    details = tuple(
        _detail(d, f"{path}.failure-details[{i}]", reader) for i, d in enumerate(details_value)
    )
    detail_sum = sum(d.failed_session_count for d in details)

    summary = obj.get("summary")
    if not isinstance(summary, dict):
        reader.warn("report.summary.missing", f"{path}.summary is missing; counts derived")
        summary = {}
    if not _KEYS_SUMMARY.issuperset(summary):
        reader.unknown_keys(summary, _KEYS_SUMMARY, path + ".summary")
    counts: list[int] = []
    for key, derived in (
        ("total-successful-session-count", 0),
        ("total-failure-session-count", detail_sum),
    ):
        value = summary.get(key, _MISSING)
        if value is _MISSING or value is None:
            if summary:
                reader.warn("report.summary.missing", f"{path}.summary.{key} missing: {derived}")
            counts.append(derived)
        else:
            plain = _plain_count(value)
            counts.append(
                plain if plain is not None else reader.count(value, f"{path}.summary.{key}")
            )
    if details and detail_sum != counts[1]:
        reader.warn(
            "report.counts.mismatch",
            f"{path}: failure-details add up to {detail_sum} sessions but the summary says "
            f"{counts[1]} (allowed when failure types overlap, RFC 8460 §4)",
        )
    return PolicyResult(
        policy_type=kind,
        policy_string=_policy_strings(policy.get("policy-string", _MISSING), kind, ppath, reader),
        policy_domain=_policy_domain(
            policy.get("policy-domain", _MISSING), ppath, fallback_domain, reader
        ),
        mx_host=mx_host,
        total_successful_session_count=counts[0],
        total_failure_session_count=counts[1],
        failure_details=details,
    )


def _report(obj: object, reader: _Reader, fallback_domain: str | None = None) -> Report:
    if not isinstance(obj, dict):
        raise _fail("report.shape", f"the report is a JSON {type(obj).__name__}, not an object")
    reader.unknown_keys(obj, _KEYS_REPORT, "report")
    date_range = obj.get("date-range")
    if not isinstance(date_range, dict):
        raise _fail("report.date.missing", "report.date-range is missing")
    reader.unknown_keys(date_range, {"start-datetime", "end-datetime"}, "report.date-range")
    start = parse_report_datetime(date_range.get("start-datetime"), "start-datetime", reader.warn)
    end = parse_report_datetime(date_range.get("end-datetime"), "end-datetime", reader.warn)
    if start > end:
        reader.warn("report.date-range.reversed", "start-datetime is after end-datetime")
    policies = obj.get("policies", _MISSING)
    if isinstance(policies, dict):
        reader.warn("report.policies.object", "policies is an object, not an array (MUST, §4)")
        policies = [policies]
    if not isinstance(policies, list):
        raise _fail("report.policies.missing", "report.policies must be an array")
    if len(policies) > MAX_POLICIES:
        raise ReportTooLarge(f"the report has more than {MAX_POLICIES} policies")
    if not policies:
        reader.warn("report.policies.empty", "the report lists no policies")
    return Report(
        organization_name=reader.required_text(obj, "organization-name", "report"),
        date_range_start=start,
        date_range_end=end,
        contact_info=reader.required_text(obj, "contact-info", "report"),
        report_id=reader.required_text(obj, "report-id", "report"),
        policies=tuple(
            _policy(p, f"policies[{i}]", fallback_domain, reader) for i, p in enumerate(policies)
        ),
    )


def report_from_json(obj: object) -> Linted[Report]:
    """Read an already-decoded JSON value tolerantly (see the module docstring)."""
    reader = _Reader()
    try:
        return reader.result(_report(obj, reader))
    except ReportError as exc:
        return reader.result(None, exc.notice())
    except RecursionError:
        return reader.result(None, Notice("report.json.too-deep", "the JSON nests too deeply"))


def read_report(data: bytes, *, max_bytes: int = MAX_REPORT_BYTES) -> Linted[Report]:
    """Read a received report: plain JSON, gzip, or a whole RFC 5322 report e-mail.

    ``max_bytes`` bounds the input and every decompressed form. Never raises.
    """
    reader = _Reader()
    try:
        return reader.result(_read(data, max_bytes, reader))
    except ReportError as exc:
        return reader.result(None, exc.notice())
    except Exception as exc:
        # Untrusted input must never crash a receiver; the cause is kept in the notice
        # (e.g. a message the email package cannot model). Fuzzed in the tests.
        message = f"the report cannot be read: {type(exc).__name__}: {exc}"
        return reader.result(None, Notice("report.unreadable", message[:500]))


def _read(data: bytes, max_bytes: int, reader: _Reader) -> Report:
    if len(data) > max_bytes:
        raise ReportTooLarge(f"the input is {len(data)} bytes, above the {max_bytes} limit")
    envelope: MailEnvelope | None = None
    body = data
    head = data.lstrip(b" \t\r\n")
    if head.startswith(GZIP_MAGIC):
        body = _gunzip(data, max_bytes, reader)
    elif head[:4].lstrip(b"\xef\xbb\xbf").startswith((b"{", b"[")):
        body = data
    elif _looks_like_mail(data):
        body, is_gzip, envelope, notices = extract_from_mail(data)
        for notice in notices:
            reader.warn(notice.code, notice.message, notice.rfc)
        if is_gzip:
            body = _gunzip(body, max_bytes, reader)
    else:
        raise _fail("report.format.unknown", "the input is not JSON, gzip or an e-mail")
    fallback = envelope.tls_report_domain if envelope is not None else None
    report = _report(_load_json(body, reader), reader, fallback)
    if envelope is not None:
        _check_envelope(report, envelope, reader)
    return report


def _gunzip(data: bytes, max_bytes: int, reader: _Reader) -> bytes:
    body, notices = gunzip(data, max_bytes=max_bytes)
    for notice in notices:
        reader.warn(notice.code, notice.message, notice.rfc)
    return body


def _check_envelope(report: Report, envelope: MailEnvelope, reader: _Reader) -> None:
    """RFC 8460 §5.3 headers against the body; the body wins (§5.6)."""
    contact_domain = report.contact_info.rpartition("@")[2].lower()
    submitter = (envelope.tls_report_submitter or "").lower()
    if submitter and contact_domain and submitter != contact_domain:
        reader.warn(
            "report.mail.submitter-mismatch",
            f"TLS-Report-Submitter {submitter} is not the contact-info domain "
            f"{contact_domain} (MUST); the report body wins",
            "RFC 8460 §5.3",
        )
    domain = (envelope.tls_report_domain or "").lower().rstrip(".")
    if domain and report.policies and domain not in {p.policy_domain for p in report.policies}:
        reader.warn(
            "report.mail.domain-mismatch",
            f"TLS-Report-Domain {domain} names no policy-domain in the report; the body wins",
            "RFC 8460 §5.6",
        )
