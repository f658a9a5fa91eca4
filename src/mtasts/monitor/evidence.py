"""What the received TLS-RPT reports of the last days say about a domain, for ``mtasts
advise``: the reporters, the failure groups (:func:`evidence_from_rows` builds them from
the rows :mod:`mtasts.monitor.reported` reads), and the :class:`Criteria` that say when
that is enough and what counts as noise (with the reporters known to misreport).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from mtasts.errors import DomainNameError
from mtasts.names import normalize_domain
from mtasts.results import NEGOTIATION_RESULTS


@dataclass(frozen=True, slots=True)
class Misreporter:
    """A reporting organisation whose reports of ``result_types`` are known to be wrong."""

    organization: str  # matched case-insensitively as a substring of organization-name
    result_types: frozenset[str]
    why: str

    def matches(self, organization: str, result_type: str) -> bool:
        return (
            self.organization.lower() in organization.lower() and result_type in self.result_types
        )


#: Reporters known to misreport, and why (docs/monitor.md lists the sources). Only
#: documented cases are here: a wrong entry would hide real failures.
KNOWN_MISREPORTERS: tuple[Misreporter, ...] = (
    Misreporter(
        "Microsoft",
        frozenset({"sts-policy-fetch-error"}),
        "Microsoft reports sts-policy-fetch-error for policies other senders fetch fine "
        "(serverfault question 1167610; samples without IP or MX, dmarc-report-viewer #57)",
    ),
    Misreporter(
        "Mail.ru",
        frozenset({"sts-policy-fetch-error"}),
        "Mail.ru's failure details overcount its own summary and carry no IP or MX "
        "(parsedmarc sample mail.ru.json: 1 failed session, details adding up to 2)",
    ),
)


@dataclass(frozen=True, slots=True)
class Criteria:
    """When the evidence is enough, and what counts as noise (``mtasts advise`` options)."""

    days: int = 14  # the window of reports read
    min_sessions: int = 100  # sessions under an sts policy, all reporters together
    min_days: int = 7  # distinct days with reports
    min_reporters: int = 1
    noise_sessions: int = 1  # a failure seen this often or less over the window is noise
    recent_days: int = 3  # failures older than this at an MX that passes now: fixed
    cert_days: int = 14  # every certificate must stay valid at least this long
    misreporters: tuple[Misreporter, ...] = KNOWN_MISREPORTERS

    def __post_init__(self) -> None:
        for name in ("days", "min_sessions", "min_days", "min_reporters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("noise_sessions", "recent_days", "cert_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.min_days > self.days:
            raise ValueError(f"min_days {self.min_days} is more than the {self.days} days read")


@dataclass(frozen=True, slots=True)
class Reporter:
    """One reporting organisation over the window."""

    organization: str
    reports: int
    sessions: int  # per report the largest policy-type sum (sts and tlsa overlap)
    sts_sessions: int  # sessions reported under an sts policy
    failed: int
    days: tuple[str, ...]
    modes: tuple[str, ...]  # the policy modes its sts policy strings named


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Reported failures of one organisation, result type and MX over the window."""

    organization: str
    result_type: str
    mx_host: str | None  # receiving-mx-hostname, normalised; None when not reported
    policy_type: str
    sessions: int
    first_day: str
    last_day: str
    reason_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the reports for ``domain`` between ``since`` and ``until`` say."""

    domain: str
    since: date
    until: date
    reporters: tuple[Reporter, ...] = ()
    failures: tuple[FailureGroup, ...] = ()
    truncated: bool = False  # more failure rows existed than were read (the largest kept)

    @property
    def reports(self) -> int:
        return sum(r.reports for r in self.reporters)

    @property
    def sts_sessions(self) -> int:
        return sum(r.sts_sessions for r in self.reporters)

    @property
    def days(self) -> tuple[str, ...]:
        return tuple(sorted({d for r in self.reporters for d in r.days}))


def _host(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return normalize_domain(value.strip())
    except DomainNameError:  # a reporter's garbage is kept as written, lower case
        return value.strip().rstrip(".").lower()[:253]


def _mode(policy_strings: Sequence[str]) -> str | None:
    for line in policy_strings:
        key, _, value = str(line).partition(":")
        if key.strip().lower() == "mode":
            return value.strip().lower() or None
    return None


def evidence_from_rows(
    domain: str,
    since: date,
    until: date,
    policy_rows: Iterable[Mapping[str, Any]],
    failure_rows: Iterable[Mapping[str, Any]],
) -> Evidence:
    """Evidence from store rows.

    ``policy_rows``: report_pk, organization, day, policy_type, policy_string (a list),
    successful, failed. ``failure_rows``: organization, day, policy_type, result_type,
    receiving_mx_hostname, failure_reason_code, failed (a sum).
    """
    per_report: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    info: dict[int, tuple[str, str]] = {}
    modes: dict[str, set[str]] = defaultdict(set)
    for row in policy_rows:
        pk = int(row["report_pk"])
        kind = str(row["policy_type"])
        counts = per_report[pk][kind]
        counts[0] += int(row["successful"])
        counts[1] += int(row["failed"])
        info[pk] = (str(row["organization"]), str(row["day"]))
        mode = _mode(list(row.get("policy_string") or ()))
        if kind == "sts" and mode is not None:
            modes[str(row["organization"])].add(mode)
    by_org: dict[str, dict[str, Any]] = {}
    for pk, kinds in per_report.items():
        org, day = info[pk]
        best = max(kinds.values(), key=lambda c: (c[0] + c[1], c[1]))
        sts = kinds.get("sts", [0, 0])
        acc = by_org.setdefault(org, {"reports": 0, "sessions": 0, "sts": 0, "failed": 0})
        acc["reports"] += 1
        acc["sessions"] += best[0] + best[1]
        acc["sts"] += sts[0] + sts[1]
        acc["failed"] += best[1]
        acc.setdefault("days", set()).add(day)
    reporters = tuple(
        Reporter(
            organization=org,
            reports=acc["reports"],
            sessions=acc["sessions"],
            sts_sessions=acc["sts"],
            failed=acc["failed"],
            days=tuple(sorted(acc["days"])),
            modes=tuple(sorted(modes.get(org, ()))),
        )
        for org, acc in sorted(by_org.items())
    )
    groups: dict[tuple[str, str, str | None, str], dict[str, Any]] = {}
    for row in failure_rows:
        key = (
            str(row["organization"]),
            str(row["result_type"]),
            _host(row.get("receiving_mx_hostname")),
            str(row.get("policy_type") or "sts"),
        )
        g = groups.setdefault(key, {"n": 0, "days": set(), "codes": set()})
        g["n"] += int(row["failed"])
        g["days"].add(str(row["day"]))
        code = row.get("failure_reason_code")
        if code:
            g["codes"].add(str(code)[:200])
    failures = tuple(
        FailureGroup(
            organization=org,
            result_type=kind,
            mx_host=host,
            policy_type=ptype,
            sessions=g["n"],
            first_day=min(g["days"]),
            last_day=max(g["days"]),
            reason_codes=tuple(sorted(g["codes"]))[:5],
        )
        for (org, kind, host, ptype), g in sorted(
            groups.items(), key=lambda kv: (-kv[1]["n"], kv[0][0], kv[0][1], kv[0][2] or "")
        )
        if g["n"] > 0
    )
    return Evidence(normalize_domain(domain), since, until, reporters, failures)


def with_misreporters(criteria: Criteria, organizations: Sequence[str]) -> Criteria:
    """``criteria`` with the administrator's own list of reporters to treat as noise for
    every negotiation result (``--noise-reporter``)."""
    extra = tuple(
        Misreporter(
            org,
            NEGOTIATION_RESULTS,
            "named by the administrator with --noise-reporter",
        )
        for org in organizations
    )
    return replace(criteria, misreporters=criteria.misreporters + extra)
