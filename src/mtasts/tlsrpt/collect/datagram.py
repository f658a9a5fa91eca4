"""Decoder of libtlsrpt datagrams (the Postfix 3.10+ -> tlsrpt-collectd protocol).

Pure: bytes in, frozen values out; no socket, no clock. The collector daemon calls it.

libtlsrpt (sys4, ``libtlsrpt.c``) writes one JSON object per delivery request::

    {"dpv":"1", "d":"example.com", "pr":"v=TLSRPTv1; rua=...",
     "policies":[{"policy-type":2, "policy-domain":"example.com",
                  "policy-string":["version: STSv1", ...], "mx-host":["*.mx.example.com"],
                  "failure-details":[{"c":202,"s":"192.0.2.1","n":"mx.example.com",
                                      "h":"ehlo","r":"198.51.100.7","a":"...","f":"..."}],
                  "t":1, "f":1}]}

``dpv`` and ``pr`` are absent in libtlsrpt < 0.5; ``policy-domain``, ``policy-string``,
``mx-host``, ``failure-details`` and every failure field but ``c`` are omitted when the
MTA passed NULL / nothing. Anything else is rejected with a reason (never a crash).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from mtasts.errors import DomainNameError, TlsRptError
from mtasts.names import normalize_domain
from mtasts.results import LIBTLSRPT_CODES, PolicyType, ResultType
from mtasts.tlsrpt.policyline import decode_policy_line, encode_policy_line

# libtlsrpt tlsrpt.h: tlsrpt_policy_type_t
POLICY_TYPES: dict[int, PolicyType] = {
    1: PolicyType.TLSA,
    2: PolicyType.STS,
    9: PolicyType.NO_POLICY_FOUND,
}

# libtlsrpt tlsrpt.h: tlsrpt_failure_t -> RFC 8460 §4.3 result types (from the one table,
# mtasts.results.FAILURES).
FAILURE_CODES = LIBTLSRPT_CODES
# 901 (TLSRPT_UNFINISHED_POLICY) is internal to libtlsrpt: the library never sends a
# datagram carrying it. libtlsrpt leaves the code space open; RFC 8460 §4.3.3 says a
# failure that fits no category is a validation-failure with a reason code, so an
# unknown code is counted that way, with reason "libtlsrpt-failure-code-<n>", rather
# than dropping the session. A known code sent without reason text gets the same reason.
UNKNOWN_CODE_REASON = "libtlsrpt-failure-code-{}"

MAX_DATAGRAM = (1 << 20) - 1  # tlsrpt-collectd accepts 16 MiB; a real one is < 64 KiB
MAX_POLICIES = 16
MAX_FAILURES = 1024
MAX_STRINGS = 1024
MAX_TEXT = 8192  # one policy line, record, reason code


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    """One failure of one policy in one session (RFC 8460 §4.4 failure-details fields)."""

    result_type: str
    sending_mta_ip: str = ""
    receiving_mx_hostname: str = ""
    receiving_mx_helo: str = ""
    receiving_ip: str = ""
    additional_information: str = ""
    failure_reason_code: str = ""


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """The outcome of one applied policy in one session."""

    policy_type: PolicyType
    policy_domain: str
    policy_string: tuple[str, ...] = ()
    mx_host: tuple[str, ...] = ()
    failed: bool = False
    failures: tuple[FailureOutcome, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """One delivery request: the report domain, the TLSRPT record the MTA saw, policies."""

    domain: str
    tlsrpt_record: str
    policies: tuple[PolicyOutcome, ...]


def _reject(reason: str, message: str) -> TlsRptError:
    return TlsRptError(
        f"libtlsrpt datagram rejected: {message}",
        code=f"datagram.{reason}",
        rfc="libtlsrpt datagram protocol v1",
    )


# The same few thousand names recur in every datagram: normalising each once keeps the
# decoder at a few microseconds (the collector's hot path). NAME_CACHE entries per cache:
# each holds up to ~800 bytes (a 253-byte name, its normal form, the cache's own
# overhead), so the two caches stay under ~13 MB, which the collector's memory bound
# reserves (at 65,536 entries each, a flood of distinct names pinned ~100 MB nobody
# accounted for: issue 16's 514 MB RSS).
NAME_CACHE = 8192


@functools.lru_cache(maxsize=NAME_CACHE)
def _domain(name: str, field: str) -> str:
    """Lower case, no trailing dot, A-labels (RFC 8460 §4.4 requires A-labels)."""
    try:
        return normalize_domain(name)
    except DomainNameError as exc:
        raise _reject("bad-domain", f"{field} {name[:80]!r} is not a domain name: {exc}") from None


@functools.lru_cache(maxsize=NAME_CACHE)
def _mx_pattern(name: str) -> str:
    """An mx-host pattern: a domain name, or ``*.`` and a domain name (RFC 8461 §4.1)."""
    if name.startswith("*."):
        return "*." + _domain(name[2:], "mx-host pattern")
    return _domain(name, "mx-host pattern")


def _text(obj: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise _reject("missing-field", f"required field {key!r} is missing")
        return ""
    if not isinstance(value, str):
        raise _reject("bad-type", f"field {key!r} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise _reject("too-long", f"field {key!r} is {len(value)} characters (max {MAX_TEXT})")
    return value


def _strings(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if type(value) is not list:
        raise _reject("bad-type", f"field {key!r} must be a list of strings")
    if len(value) > MAX_STRINGS:
        raise _reject("too-long", f"field {key!r} has {len(value)} entries (max {MAX_STRINGS})")
    for v in value:
        if type(v) is not str:
            raise _reject("bad-type", f"field {key!r} must be a list of strings")
        if len(v) > MAX_TEXT:
            raise _reject("too-long", f"an entry of {key!r} is {len(v)} characters")
    return tuple(value)


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    # bool is an int subclass in Python; JSON true/false is not a libtlsrpt number.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _reject("bad-type", f"field {key!r} must be an integer")
    return value


def _failure(raw: Any) -> FailureOutcome:
    if not isinstance(raw, dict):
        raise _reject("bad-type", "a failure-details entry must be an object")
    code = _int(raw, "c")
    result = FAILURE_CODES.get(code)
    # A code without text still says what libtlsrpt saw: it becomes the failure-reason-code
    # (RFC 8460 §4.3.1 asks for one with certificate-not-trusted and validation-failure).
    reason = _text(raw, "f") or UNKNOWN_CODE_REASON.format(code)
    if result is None:
        result = ResultType.VALIDATION_FAILURE
    host = _text(raw, "n")
    return FailureOutcome(
        result_type=result.value,
        sending_mta_ip=_text(raw, "s"),
        receiving_mx_hostname=_domain(host, "receiving MX host") if host else "",
        receiving_mx_helo=_text(raw, "h"),
        receiving_ip=_text(raw, "r"),
        additional_information=_text(raw, "a"),
        failure_reason_code=reason,
    )


def _policy(raw: Any, domain: str) -> PolicyOutcome:
    if not isinstance(raw, dict):
        raise _reject("bad-type", "a policies entry must be an object")
    ptype = POLICY_TYPES.get(_int(raw, "policy-type"))
    if ptype is None:
        raise _reject("bad-policy-type", f"unknown policy-type {raw.get('policy-type')!r}")
    final = _int(raw, "f")
    if final not in (0, 1):
        raise _reject("bad-final-result", f"final result f={final} is neither 0 nor 1")
    raw_failures = raw.get("failure-details", [])
    if not isinstance(raw_failures, list):
        raise _reject("bad-type", "failure-details must be a list")
    if len(raw_failures) > MAX_FAILURES:
        raise _reject("too-long", f"{len(raw_failures)} failure-details (max {MAX_FAILURES})")
    # libtlsrpt's "t" (number of failures) is a checksum; tlsrpt-collectd only logs a
    # mismatch. We do the same: the list is what is counted.
    pdomain = _text(raw, "policy-domain")
    # RFC 8460 §4.4: policy-domain is always present. libtlsrpt omits it when the MTA
    # passes NULL (no-policy-found; sys4/tlsrpt-reporter#51); the delivery domain is
    # then the policy domain (RFC 8460 §1.1).
    return PolicyOutcome(
        policy_type=ptype,
        policy_domain=_domain(pdomain, "policy-domain") if pdomain else domain,
        policy_string=_policy_strings(raw, ptype),
        mx_host=tuple(_mx_pattern(m) for m in _strings(raw, "mx-host")),
        failed=final == 1,
        failures=tuple(_failure(f) for f in raw_failures),
    )


def _policy_strings(raw: dict[str, Any], ptype: PolicyType) -> tuple[str, ...]:
    strings = _strings(raw, "policy-string")
    if ptype is not PolicyType.STS:
        return strings
    # `mtasts daemon` percent-encodes an STS policy line Postfix would not carry verbatim
    # (tabs, braces; mtasts.tlsrpt.policyline.encode_policy_line): restore the line
    return tuple(decode_policy_line(s) for s in strings)


def decode_datagram(data: bytes | bytearray | memoryview) -> SessionOutcome:
    """Decode one libtlsrpt datagram; raise :class:`TlsRptError` (code ``datagram.*``)."""
    if len(data) > MAX_DATAGRAM:
        raise _reject("too-large", f"{len(data)} bytes (max {MAX_DATAGRAM})")
    if len(data) <= MAX_CACHED:
        return _decode_cached(bytes(data))
    return _decode(bytes(data))


# Postfix sends byte-identical datagrams for every session with the same outcome (a
# success carries no per-session data), so the decoded, immutable value is cached by the
# datagram's bytes; rejected datagrams are not cached (exceptions never are). Only
# datagrams up to MAX_CACHED bytes are (a session's is a few hundred), and only
# DECODE_CACHE of them: the collector decodes each distinct datagram once per fold
# anyway, so the cache only spares re-decoding the same few outcomes every flush; it
# holds at most ~1,024 x (1.5 KiB + its decoded value, up to ~20 KiB for 1.5 KiB of
# one-letter policy lines), some 22 MB, which the collector's memory bound reserves.
# (16,384 entries pinned up to ~130 MB under a flood of distinct datagrams, measured.)
MAX_CACHED = 1536
DECODE_CACHE = 1024


def _decode(data: bytes) -> SessionOutcome:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _reject("bad-json", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _reject("bad-type", "the datagram must be a JSON object")
    dpv = obj.get("dpv", "1")
    if dpv != "1":
        raise _reject("bad-version", f"datagram protocol version {dpv!r} is not '1'")
    domain = _domain(_text(obj, "d", required=True), "delivery domain 'd'")
    policies = obj.get("policies")
    if not isinstance(policies, list) or not policies:
        raise _reject("no-policies", "the datagram has no policies")
    if len(policies) > MAX_POLICIES:
        raise _reject("too-long", f"{len(policies)} policies (max {MAX_POLICIES})")
    return SessionOutcome(
        domain=domain,
        tlsrpt_record=_text(obj, "pr"),
        policies=tuple(_policy(p, domain) for p in policies),
    )


_decode_cached = functools.lru_cache(maxsize=DECODE_CACHE)(_decode)

_CODES_BY_RESULT = {v.value: k for k, v in FAILURE_CODES.items()}
_TYPES_BY_POLICY = {v: k for k, v in POLICY_TYPES.items()}


def encode_datagram(session: SessionOutcome) -> bytes:
    """The libtlsrpt datagram for ``session`` (inverse of :func:`decode_datagram`).

    Used by the Python API and the tests; it writes what libtlsrpt 0.5 writes.
    """
    policies = []
    for p in session.policies:
        raw: dict[str, Any] = {"policy-type": _TYPES_BY_POLICY[p.policy_type]}
        raw["policy-domain"] = p.policy_domain
        if p.policy_string:  # an STS policy's lines as the daemon hands them to Postfix
            sts = p.policy_type is PolicyType.STS
            raw["policy-string"] = [encode_policy_line(s) if sts else s for s in p.policy_string]
        if p.mx_host:
            raw["mx-host"] = list(p.mx_host)
        if p.failures:
            raw["failure-details"] = [_encode_failure(f) for f in p.failures]
        raw["t"] = len(p.failures)
        raw["f"] = int(p.failed)
        policies.append(raw)
    obj = {"dpv": "1", "d": session.domain, "pr": session.tlsrpt_record, "policies": policies}
    return orjson.dumps(obj)


def _encode_failure(f: FailureOutcome) -> dict[str, Any]:
    code = _CODES_BY_RESULT.get(f.result_type, 205)
    raw: dict[str, Any] = {"c": code}
    for key, value in (
        ("s", f.sending_mta_ip),
        ("n", f.receiving_mx_hostname),
        ("h", f.receiving_mx_helo),
        ("r", f.receiving_ip),
        ("a", f.additional_information),
        ("f", f.failure_reason_code),
    ):
        if value:
            raw[key] = value
    return raw
