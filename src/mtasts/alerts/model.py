"""Conditions and their transitions: what is wrong now, and what changed since last time.

Pure: values in, a :class:`Plan` out; no clock (times are arguments), no I/O.

A :class:`Condition` is one thing wrong with one domain, named by its ``key``
(``kind:domain[:subject]``). Each *source* (``rules``: the rules over the received
reports; ``monitor``: ``mtasts monitor``) reports the whole set of conditions it sees now
over a scope of domains; :func:`plan` compares that set with the conditions open in the
store and returns the transitions:

- a condition not open before is **raised** (one notification);
- a condition already open is **repeated**: its last-seen time, severity, summary and
  details are updated, and nobody is notified again;
- an open condition of the same source, inside the scope, that is no longer present is
  **resolved** (one "resolved" notification); conditions outside the scope, of another
  source, or named in ``keep`` (the source could not tell, e.g. a fetch timed out) stay
  as they are.

A key open under another source is repeated, never raised twice; only its own source
resolves it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from mtasts.errors import MtastsError

#: bounds on what a source may hand in (a condition is a notification, not a report)
MAX_SUMMARY = 300
MAX_DETAILS = 16 * 1024  # bytes of JSON
MAX_SOURCE = 64
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SUBJECT_MAX = 200


class AlertError(MtastsError):
    """A condition or a source name that cannot be stored or notified."""

    default_code = "alerts.invalid"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return ("info", "warning", "critical").index(self.value)


class Event(StrEnum):
    """What a notification announces."""

    RAISED = "raised"
    RESOLVED = "resolved"
    TEST = "test"


def check_source(source: str) -> str:
    if not _NAME.fullmatch(source):
        raise AlertError(
            f"source {source!r}: 1-64 characters a-z 0-9 . _ -, starting with a letter or digit"
        )
    return source


def is_domain(text: str) -> bool:
    """Whether ``text`` can be a condition's domain (see :class:`Condition`)."""
    try:
        _domain(text)
    except AlertError:
        return False
    return True


def _domain(text: str) -> str:
    name = text.strip().rstrip(".").lower()
    if len(name) > 253 or any(c.isspace() for c in name):
        raise AlertError(f"domain {text!r} is not a domain name")
    return name


@dataclass(frozen=True, slots=True)
class Condition:
    """One thing wrong with one domain ("" for the installation as a whole).

    ``kind`` names the rule or check (``failure-rate``, ``check.mx-certificate``);
    ``subject`` tells several conditions of one kind and domain apart (a result type, a
    reporting organisation). ``details`` is any JSON object (bounded), shown in the
    notification and kept in the store.
    """

    kind: str
    domain: str
    subject: str = ""
    severity: Severity = Severity.WARNING
    summary: str = ""
    details: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.kind):
            raise AlertError(
                f"condition kind {self.kind!r}: 1-64 characters a-z 0-9 . _ -, "
                "starting with a letter or digit"
            )
        object.__setattr__(self, "domain", _domain(self.domain))
        object.__setattr__(self, "severity", Severity(self.severity))
        if len(self.subject) > _SUBJECT_MAX or "\n" in self.subject:
            raise AlertError(f"condition subject {self.subject[:40]!r}...: one line, at most 200")
        summary = " ".join(self.summary.split())
        if len(summary) > MAX_SUMMARY:
            summary = summary[: MAX_SUMMARY - 1] + "…"
        object.__setattr__(self, "summary", summary or self.key)
        try:
            size = len(orjson.dumps(dict(self.details), option=orjson.OPT_NON_STR_KEYS))
        except TypeError as exc:
            raise AlertError(f"condition {self.key}: details are not JSON: {exc}") from None
        if size > MAX_DETAILS:
            raise AlertError(f"condition {self.key}: details are {size} bytes (at most 16 KiB)")

    @property
    def key(self) -> str:
        """``kind:domain`` or ``kind:domain:subject``: the identity across runs."""
        base = f"{self.kind}:{self.domain}"
        return f"{base}:{self.subject}" if self.subject else base

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "domain": self.domain,
            "subject": self.subject,
            "severity": str(self.severity),
            "summary": self.summary,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class OpenCondition:
    """A condition open in the store."""

    pk: int
    source: str
    condition: Condition
    first_seen: int  # Unix seconds
    last_seen: int

    @property
    def key(self) -> str:
        return self.condition.key

    def to_json(self) -> dict[str, Any]:
        return {
            **self.condition.to_json(),
            "source": self.source,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    raised: tuple[Condition, ...] = ()
    repeated: tuple[tuple[OpenCondition, Condition], ...] = ()
    resolved: tuple[OpenCondition, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.raised or self.repeated or self.resolved)


def dedupe(conditions: Iterable[Condition]) -> list[Condition]:
    """One condition per key: the most severe, the first among equals; order kept."""
    best: dict[str, Condition] = {}
    for c in conditions:
        old = best.get(c.key)
        if old is None or c.severity.rank > old.severity.rank:
            best[c.key] = c
    return list(best.values())


def plan(
    open_: Sequence[OpenCondition],
    current: Iterable[Condition],
    *,
    source: str,
    domains: Iterable[str] | None = None,
    keep: Iterable[str] = (),
    now: int = 0,
    hold: int = 0,
) -> Plan:
    """The transitions that take the store's ``open_`` conditions to what ``source``
    sees now (``current``), over ``domains`` (None: every domain). See the module doc.

    ``hold`` (seconds): a condition absent now is resolved only once it was last seen at
    least that long before ``now``, so one that comes and goes (a day's failure rate
    near the threshold as reports arrive) is not raised and resolved again and again."""
    check_source(source)
    scope = None if domains is None else {_domain(d) for d in domains}
    kept = set(keep)
    seen = dedupe(current)
    if scope is not None:
        outside = [c.key for c in seen if c.domain not in scope]
        if outside:
            raise AlertError(f"condition {outside[0]} is outside the domains evaluated")
    by_key = {o.key: o for o in open_}
    present = {c.key for c in seen}
    raised = tuple(c for c in seen if c.key not in by_key)
    repeated = tuple((by_key[c.key], c) for c in seen if c.key in by_key)
    resolved = tuple(
        o
        for o in open_
        if o.source == source
        and o.key not in present
        and o.key not in kept
        and (scope is None or o.condition.domain in scope)
        and (hold <= 0 or now - o.last_seen >= hold)
    )
    return Plan(raised, repeated, resolved)


def retry_at(
    attempts: int, created_at: int, now: int, *, give_up_after: int, base: int = 60, cap: int = 3600
) -> int | None:
    """When to try a notification again after its ``attempts``-th failure (1, 2, ...):
    ``base`` seconds doubling up to ``cap``; None once it is ``give_up_after`` seconds
    old (it is then marked failed, and ``alerts list`` shows it)."""
    if now - created_at >= give_up_after:
        return None
    return now + min(cap, base * (1 << max(0, min(attempts - 1, 20))))
