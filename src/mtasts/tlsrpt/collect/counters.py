"""In-memory pre-aggregation of session outcomes (pure: no I/O, the day comes in).

The collector adds every decoded datagram here and flushes the counters to the store in
batches, so the database sees one upsert per counter per flush, not one per message.

Keys (RFC 8460 §4: one report per policy domain per UTC day):

* :class:`PolicyKey` = (UTC day, delivery domain, TLSRPT record seen, policy type,
  policy domain, policy-string lines, mx-host patterns) -> successful / failed sessions;
* (:class:`PolicyKey`, :class:`FailureKey`) -> failed-session-count, where
  :class:`FailureKey` = (result type, sending IP, MX host, MX HELO, receiving IP,
  additional information, failure reason code).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from mtasts.errors import TlsRptError
from mtasts.results import PolicyType
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome

# The weight of a session that made new keys: an upper bound of the memory its keys
# hold, from its datagram's bytes and how many strings it decodes to (each a Python str
# of 49 bytes + its text, and a pointer in a tuple): size + STRING_OVERHEAD per string
# + KEY_OVERHEAD. Measured (tracemalloc, distinct domains): 813 bytes real for a 324-byte
# STS success (weight 1,284), 1,188 for a 422-byte STS failure (1,774), 3,120 for a
# 1,382-byte one with 22 policy lines (3,742). The old weight, size + 1 KiB, was below
# the real memory for datagrams with many strings (a policy of 1,024 one-letter lines
# decodes to 15 times its bytes).
STRING_OVERHEAD = 56
KEY_OVERHEAD = 512


def outcome_weight(outcome: SessionOutcome, size: int) -> int:
    """:attr:`Counters.weight` of a session of ``size`` bytes that made new keys."""
    strings = 2  # domain, tlsrpt record
    for p in outcome.policies:
        strings += 1 + len(p.policy_string) + len(p.mx_host) + 7 * len(p.failures)
    return size + STRING_OVERHEAD * strings + KEY_OVERHEAD


@dataclass(frozen=True, slots=True)
class PolicyKey:
    """One applied policy on one UTC day, as the report will show it."""

    day: date
    domain: str  # the delivery (recipient) domain: whose _smtp._tls gets the report
    tlsrpt_record: str  # the record the MTA saw ("" when it passed none)
    policy_type: PolicyType
    policy_domain: str
    policy_string: tuple[str, ...]
    mx_host: tuple[str, ...]

    @property
    def policy_id(self) -> str:
        """A stable 64-hex id of everything but the day (the store's key column)."""
        ident = [
            self.domain,
            self.tlsrpt_record,
            self.policy_type.value,
            self.policy_domain,
            list(self.policy_string),
            list(self.mx_host),
        ]
        return hashlib.sha256(orjson.dumps(ident)).hexdigest()


FailureKey = FailureOutcome
"""A failure-details row's identity: all its fields but the count."""


def failure_id(key: FailureKey) -> str:
    """A stable 64-hex id of a failure key (the store's key column)."""
    ident = [
        key.result_type,
        key.sending_mta_ip,
        key.receiving_mx_hostname,
        key.receiving_mx_helo,
        key.receiving_ip,
        key.additional_information,
        key.failure_reason_code,
    ]
    return hashlib.sha256(orjson.dumps(ident)).hexdigest()


def policy_key(day: date, outcome: SessionOutcome, policy: PolicyOutcome) -> PolicyKey:
    """The counter key of one policy a session was checked against, on ``day``."""
    return PolicyKey(
        day,
        outcome.domain,
        outcome.tlsrpt_record,
        policy.policy_type,
        policy.policy_domain,
        policy.policy_string,
        policy.mx_host,
    )


@dataclass(slots=True)
class Counters:
    """Mutable counters; :meth:`drain` hands a snapshot to the store and starts afresh."""

    successes: Counter[PolicyKey] = field(default_factory=Counter)
    failures: Counter[PolicyKey] = field(default_factory=Counter)
    details: Counter[tuple[PolicyKey, FailureKey]] = field(default_factory=Counter)
    sessions: int = 0  # datagrams / sessions added since the last drain
    # outcome_weight() of the sessions that created new counters: an upper bound of the
    # memory the keys hold, which the collector bounds.
    weight: int = 0

    def add(self, day: date, outcome: SessionOutcome, size: int = 0, n: int = 1) -> None:
        """Count ``n`` identical sessions: each policy +n successes or +n failures, each
        failure +n. ``size`` (the datagram's bytes) is added to :attr:`weight` if it made
        new keys."""
        self.sessions += n
        ok, bad, details = self.successes, self.failures, self.details
        before = len(ok) + len(bad) + len(details)  # (the hot path: no property calls)
        for p in outcome.policies:
            key = policy_key(day, outcome, p)
            # libtlsrpt "f" is the final result of the policy; a success may still carry
            # failure details (doc/example.txt): they are counted, the session is not.
            if p.failed:
                bad[key] += n
            else:
                ok[key] += n
            for f in p.failures:
                details[key, f] += n
        if len(ok) + len(bad) + len(details) != before:
            self.weight += outcome_weight(outcome, size)

    @property
    def distinct(self) -> int:
        """An upper bound of the distinct counters (O(1), for the memory bound)."""
        return len(self.successes) + len(self.failures) + len(self.details)

    def iter_policy_keys(self) -> Iterator[PolicyKey]:
        """Every policy counted, once: those with sessions, then those with failure
        details only (without building a set of them all)."""
        ok, bad = self.successes, self.failures
        yield from ok
        yield from (k for k in bad if k not in ok)
        seen: set[PolicyKey] = set()  # only keys that have details but no session count
        for k, _ in self.details:
            if k not in ok and k not in bad and k not in seen:
                seen.add(k)
                yield k

    def known(self, day: date, outcome: SessionOutcome) -> bool:
        """Whether adding ``outcome`` would only increment existing counters."""
        for p in outcome.policies:
            key = policy_key(day, outcome, p)
            if key not in (self.failures if p.failed else self.successes):
                return False
            if any((key, f) not in self.details for f in p.failures):
                return False
        return True

    def merge(self, other: Counters) -> None:
        """Add ``other`` into these counters (a failed flush is put back this way)."""
        self.successes.update(other.successes)
        self.failures.update(other.failures)
        self.details.update(other.details)
        self.sessions += other.sessions
        self.weight += other.weight

    def drain(self) -> Counters:
        """Return the current counters and reset these to empty."""
        snap = Counters(self.successes, self.failures, self.details, self.sessions, self.weight)
        self.successes, self.failures, self.details = Counter(), Counter(), Counter()
        self.sessions = self.weight = 0
        return snap

    def policy_keys(self) -> set[PolicyKey]:
        """Every policy counted, as a set (:meth:`iter_policy_keys` builds none)."""
        return set(self.successes) | set(self.failures) | {k for k, _ in self.details}

    def __len__(self) -> int:
        """Number of distinct counters (upserts a flush will make), without a copy of the
        keys (it is called on hundreds of thousands of them after an outage)."""
        ok, bad = self.successes, self.failures
        n = len(ok) + sum(1 for k in bad if k not in ok) + len(self.details)
        return n + len({k for k, _ in self.details if k not in ok and k not in bad})

    def __bool__(self) -> bool:
        return bool(self.successes or self.failures or self.details)


# --- the spool: pending counters in a local file while the store is down -----------------
#
# JSON Lines, written and read one line at a time (a spool of 256 MiB of counters is never
# held twice in memory): a header line ({"format", "version", "sessions"}), one line per
# policy counter ({"id": its policy_id, the PolicyKey fields, "successful", "failed"}),
# then one line per failure counter ({"day" and "p": its policy's day and id, the
# FailureKey fields, "count"}).

SPOOL_FORMAT = "mtasts-tlsrpt-counters"
SPOOL_VERSION = 1
_FAILURE_FIELDS = (
    "result_type",
    "sending_mta_ip",
    "receiving_mx_hostname",
    "receiving_mx_helo",
    "receiving_ip",
    "additional_information",
    "failure_reason_code",
)


def spool_lines(counters: Counters) -> Iterator[bytes]:
    """``counters`` as spool lines (each ends with a newline)."""
    head = {"format": SPOOL_FORMAT, "version": SPOOL_VERSION, "sessions": counters.sessions}
    yield orjson.dumps(head) + b"\n"
    ok, bad = counters.successes, counters.failures
    for key in counters.iter_policy_keys():
        line = {
            "id": key.policy_id,
            "day": key.day.isoformat(),
            "domain": key.domain,
            "tlsrpt_record": key.tlsrpt_record,
            "policy_type": key.policy_type.value,
            "policy_domain": key.policy_domain,
            "policy_string": key.policy_string,
            "mx_host": key.mx_host,
            "successful": ok.get(key, 0),
            "failed": bad.get(key, 0),
        }
        yield orjson.dumps(line) + b"\n"
    for (key, f), n in counters.details.items():
        fline: dict[str, object] = {"day": key.day.isoformat(), "p": key.policy_id, "count": n}
        for name in _FAILURE_FIELDS:
            fline[name] = getattr(f, name)
        yield orjson.dumps(fline) + b"\n"


def _spool_error(where: str, message: str) -> TlsRptError:
    return TlsRptError(f"counter spool {where}: {message}", code="collect.spool-invalid")


def _text(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise _spool_error(where, f"{name!r} is not a string")
    return value


def _count_of(obj: dict[str, Any], name: str, where: str) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _spool_error(where, f"{name!r} is not a count")
    return value


def _texts(obj: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = obj.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _spool_error(where, f"{name!r} is not a list of strings")
    return tuple(value)


def read_spool(lines: Iterable[bytes], counters: Counters) -> int:
    """Add the counters of spool ``lines`` to ``counters``; return the sessions added.

    Raises TlsRptError (code ``collect.spool-invalid``) naming the line for anything that
    is not a spool this version wrote; ``counters`` may then hold part of it."""
    policies: dict[tuple[str, str], PolicyKey] = {}  # (day, policy_id) -> key
    sessions: Any = 0
    header = False
    for lineno, raw in enumerate(lines, 1):
        where = f"line {lineno}"
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _spool_error(where, "not JSON") from None
        if not isinstance(obj, dict):
            raise _spool_error(where, "not an object")
        if not header:
            if obj.get("format") != SPOOL_FORMAT or obj.get("version") != SPOOL_VERSION:
                raise _spool_error(where, f"not a {SPOOL_FORMAT} v{SPOOL_VERSION} file")
            header = True
            sessions = obj.get("sessions")
            if not isinstance(sessions, int) or isinstance(sessions, bool) or sessions < 0:
                raise _spool_error(where, "'sessions' is not a count")
            continue
        size = len(raw)
        if "id" in obj:
            try:
                day = date.fromisoformat(_text(obj, "day", where))
                ptype = PolicyType(_text(obj, "policy_type", where))
            except ValueError as exc:
                raise _spool_error(where, str(exc)) from None
            key = PolicyKey(
                day,
                _text(obj, "domain", where),
                _text(obj, "tlsrpt_record", where),
                ptype,
                _text(obj, "policy_domain", where),
                _texts(obj, "policy_string", where),
                _texts(obj, "mx_host", where),
            )
            if obj["id"] != key.policy_id:
                raise _spool_error(where, "'id' is not the policy's id")
            policies[obj["day"], key.policy_id] = key
            ok, bad = _count_of(obj, "successful", where), _count_of(obj, "failed", where)
            if ok:
                counters.successes[key] += ok
            if bad:
                counters.failures[key] += bad
        elif "p" in obj:
            p = (obj.get("day"), obj["p"])
            if p not in policies:
                raise _spool_error(where, "'day' and 'p' name no policy line before it")
            fkey = FailureKey(*(_text(obj, name, where) for name in _FAILURE_FIELDS))
            counters.details[policies[p], fkey] += _count_of(obj, "count", where)
        else:
            raise _spool_error(where, "neither a policy nor a failure line")
        counters.weight += size * 2 + KEY_OVERHEAD  # (its strings' text and headers)
    if not header:
        raise _spool_error("line 1", f"not a {SPOOL_FORMAT} v{SPOOL_VERSION} file")
    counters.sessions += int(sessions)
    return int(sessions)
