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
from dataclasses import dataclass, field
from datetime import date

import orjson

from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome
from mtasts.tlsrpt.results import PolicyType

# Memory of one new key beyond its datagram's bytes: measured ~1,260-1,300 bytes
# (tracemalloc) per new STS key of a 270-360 byte datagram, with or without a failure.
KEY_OVERHEAD = 1024


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
    # Bytes of the datagrams that created new counters (+ KEY_OVERHEAD each): an
    # estimate of the memory the keys hold, which the collector bounds.
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
            self.weight += size + KEY_OVERHEAD

    @property
    def distinct(self) -> int:
        """An upper bound of the distinct counters (O(1), for the memory bound)."""
        return len(self.successes) + len(self.failures) + len(self.details)

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
        return set(self.successes) | set(self.failures) | {k for k, _ in self.details}

    def __len__(self) -> int:
        """Number of distinct counters (upserts a flush will make)."""
        return len(self.policy_keys()) + len(self.details)

    def __bool__(self) -> bool:
        return bool(self.successes or self.failures or self.details)
