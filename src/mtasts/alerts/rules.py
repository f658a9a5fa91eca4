"""The alert rules over the received TLS-RPT reports: observations in, conditions out.

Pure: :class:`Observations` (read by :mod:`mtasts.alerts.queries`, the published
policies fetched by :mod:`mtasts.alerts.evaluate`) and :class:`AlertSettings` in, a list
of :class:`~mtasts.alerts.model.Condition` out; ``today`` is an argument, never the
clock. Days are UTC ``YYYY-MM-DD`` strings, the day a report's range starts (a sender
reports day D during D+1, so "yesterday" is the newest complete day).

RFC 8460 leaves open what a receiver should alert on; the choices made here:

- ``failure-rate`` (critical): on one of the last ``failure_days`` days the failed
  sessions exceed ``failure_rate`` of at least ``failure_min_sessions`` sessions.
  One condition per domain; it clears when no day in the window exceeds.
- ``new-result-type`` (warning): a failure result type seen on one of the last
  ``new_result_type_days`` days and on none of the ``baseline_days`` before them. It
  clears when it leaves that window (it is then part of the domain's history; a
  persisting failure keeps ``failure-rate`` open).
- ``reporter-stopped`` (warning): an organisation that reported on at least
  ``reporter_min_days`` of the last ``baseline_days`` days has sent nothing for the last
  ``reporter_stopped_days`` complete days. Clears when it reports again (or drops out of
  the baseline). Senders report only days on which they sent mail to the domain.
- ``policy-mismatch`` (warning): the newest ``policy-string`` a reporter sent (type sts,
  within the last ``failure_days`` days) names another mode or MX set than the policy
  published now. ``max_age`` is not compared, and senders may keep a policy they cached
  before a change for its ``max_age``, so a mismatch right after a change is expected.
  When the published policy cannot be fetched, the open condition is kept as it is.
- ``no-reports`` (warning): no report at all for the domain on the last
  ``no_reports_days`` complete days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from mtasts.alerts.model import Condition, Severity
from mtasts.alerts.settings import AlertSettings
from mtasts.errors import MtastsError
from mtasts.sts.policy import Policy, read_policy
from mtasts.tlsrpt.receive.summary import DaySummary

_TOP = 5  # breakdown entries shown in a condition's details


@dataclass(frozen=True, slots=True)
class Published:
    """A domain's policy as published now: ``status`` is ``sts`` (``policy`` set),
    ``none`` (the domain publishes no policy) or ``unknown`` (could not tell)."""

    status: str
    policy: Policy | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Observations:
    today: date
    domains: tuple[str, ...]  # the domains evaluated
    #: day summaries of the last ``failure_days`` days
    summaries: tuple[DaySummary, ...] = ()
    #: domain -> failure result type -> days it was reported (baseline + recent window)
    type_days: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    #: domain -> organisation -> days it reported (the baseline window, up to today)
    reporter_days: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    #: domain -> the newest day with a report (any time); absent: never
    last_day: Mapping[str, str] = field(default_factory=dict)
    #: domain -> organisation -> (day, policy-string lines) of its newest sts policy
    reported_policies: Mapping[str, Mapping[str, tuple[str, tuple[str, ...]]]] = field(
        default_factory=dict
    )
    #: domain -> published policy (absent: not fetched, the rule is skipped)
    published: Mapping[str, Published] = field(default_factory=dict)


def _day(today: date, back: int) -> str:
    return (today - timedelta(days=back)).isoformat()


# What senders write (organisation names, MX names, policy strings) is cut to bounded
# lengths and counts here, so that a condition's details always fit its 16 KiB bound:
# one hostile report must not make the evaluation of every domain fail.
_NAME = 200  # characters of one name
_LISTED = 20  # reporters listed in one condition


def _subject(text: str) -> str:
    return " ".join(text.split())[:_NAME]


def _short(text: str) -> str:
    """A name as a one-line summary quotes it."""
    name = _subject(text)
    return name if len(name) <= 60 else name[:59] + "…"


def _top(counts: Mapping[str, int]) -> dict[str, int]:
    return {
        _subject(k): v for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP]
    }


def failure_rate(obs: Observations, s: AlertSettings) -> list[Condition]:
    first = _day(obs.today, s.failure_days - 1)
    worst: dict[str, tuple[float, DaySummary]] = {}
    for d in obs.summaries:
        total = d.sessions.successful + d.sessions.failed
        if d.day < first or d.domain not in obs.domains or total < s.failure_min_sessions:
            continue
        rate = d.sessions.failed / total
        if rate > s.failure_rate and (d.domain not in worst or rate > worst[d.domain][0]):
            worst[d.domain] = (rate, d)
    out = []
    for domain, (rate, d) in sorted(worst.items()):
        total = d.sessions.successful + d.sessions.failed
        types = ", ".join(f"{k} {v}" for k, v in _top(d.failures_by_result_type).items())
        out.append(
            Condition(
                "failure-rate",
                domain,
                severity=Severity.CRITICAL,
                summary=f"{rate:.1%} of {total} sessions failed on {d.day}"
                + (f" ({types})" if types else ""),
                details={
                    "day": d.day,
                    "sessions": total,
                    "failed": d.sessions.failed,
                    "rate": round(rate, 4),
                    "threshold": s.failure_rate,
                    "by_result_type": _top(d.failures_by_result_type),
                    "by_organization": _top(d.failures_by_organization),
                    "by_receiving_mx": _top(d.failures_by_receiving_mx),
                },
            )
        )
    return out


def new_result_type(obs: Observations, s: AlertSettings) -> list[Condition]:
    recent = _day(obs.today, s.new_result_type_days - 1)
    base_first = _day(obs.today, s.new_result_type_days + s.baseline_days - 1)
    out = []
    for domain in obs.domains:
        for rtype, days in sorted(obs.type_days.get(domain, {}).items()):
            seen = sorted(d for d in days if d >= recent)
            before = [d for d in days if base_first <= d < recent]
            if seen and not before:
                out.append(
                    Condition(
                        "new-result-type",
                        domain,
                        _subject(rtype),
                        severity=Severity.WARNING,
                        summary=f"new failure type {rtype} reported on {seen[0]} "
                        f"(not seen in the {s.baseline_days} days before)",
                        details={"result_type": rtype, "days": seen},
                    )
                )
    return out


def reporter_stopped(obs: Observations, s: AlertSettings) -> list[Condition]:
    newest_expected = _day(obs.today, 1)
    silent_since = _day(obs.today, s.reporter_stopped_days)  # last day it may have reported
    base_first = _day(obs.today, s.baseline_days)
    out = []
    for domain in obs.domains:
        for org, days in sorted(obs.reporter_days.get(domain, {}).items()):
            base = [d for d in days if base_first <= d <= newest_expected]
            last = max(days, default="")
            if len(set(base)) >= s.reporter_min_days and last < silent_since:
                out.append(
                    Condition(
                        "reporter-stopped",
                        domain,
                        _subject(org),
                        severity=Severity.WARNING,
                        summary=f"{_short(org)} stopped reporting: last report for {last}, "
                        f"after {len(set(base))} days in the last {s.baseline_days}",
                        details={
                            "organization": _subject(org),
                            "last_day": last,
                            "days": len(set(base)),
                        },
                    )
                )
    return out


def no_reports(obs: Observations, s: AlertSettings) -> list[Condition]:
    limit = _day(obs.today, s.no_reports_days)  # a report for this day or later is enough
    out = []
    for domain in obs.domains:
        last = obs.last_day.get(domain)
        if last is None or last < limit:
            since = f"since {last}" if last else "ever"
            out.append(
                Condition(
                    "no-reports",
                    domain,
                    severity=Severity.WARNING,
                    summary=f"no TLS-RPT report for {domain} {since} "
                    f"(expected within {s.no_reports_days} days)",
                    details={"last_day": last, "no_reports_days": s.no_reports_days},
                )
            )
    return out


def _shape(policy: Policy) -> tuple[str, tuple[str, ...]]:
    return str(policy.mode), tuple(sorted(str(p) for p in policy.mx))


def _describe(shape: tuple[str, tuple[str, ...]]) -> str:
    return f"mode {shape[0]}, mx {' '.join(shape[1]) or '(none)'}"


def policy_mismatch(obs: Observations, s: AlertSettings) -> tuple[list[Condition], list[str]]:
    """(conditions, keys to keep): a domain whose published policy is unknown keeps its
    open condition."""
    recent = _day(obs.today, s.failure_days - 1)
    out: list[Condition] = []
    keep: list[str] = []
    for domain in obs.domains:
        published = obs.published.get(domain)
        reported = {
            org: lines
            for org, (day, lines) in obs.reported_policies.get(domain, {}).items()
            if day >= recent
        }
        if published is None or not reported:
            continue
        key = f"policy-mismatch:{domain}"
        if published.status == "unknown":
            keep.append(key)
            continue
        want = _shape(published.policy) if published.policy is not None else None
        differ: dict[str, str] = {}
        for org, lines in sorted(reported.items()):
            try:
                got = _describe(_shape(read_policy("\r\n".join(lines) + "\r\n")))
            except MtastsError:
                got = "an unreadable policy: " + " | ".join(lines)[:200]
            if want is None or got != _describe(want):
                differ[_subject(org)] = got[:300]
        if differ:
            now = _describe(want)[:300] if want is not None else "no policy"
            names = sorted(differ)
            orgs = ", ".join(_short(n) for n in names[:3])
            orgs += f" and {len(names) - 3} more" if len(names) > 3 else ""
            differ = {k: differ[k] for k in names[:_LISTED]}
            out.append(
                Condition(
                    "policy-mismatch",
                    domain,
                    severity=Severity.WARNING,
                    summary=f"{orgs} report{'s' if len(names) == 1 else ''} another policy "
                    f"than the one published now ({now})",
                    details={"published": now, "reported": differ},
                )
            )
    return out, keep


def evaluate(obs: Observations, s: AlertSettings) -> tuple[list[Condition], list[str]]:
    """Every enabled rule: (conditions, keys to keep as they are)."""
    out: list[Condition] = []
    keep: list[str] = []
    simple = {
        "failure-rate": failure_rate,
        "new-result-type": new_result_type,
        "reporter-stopped": reporter_stopped,
        "no-reports": no_reports,
    }
    for name, rule in simple.items():
        if name in s.rules:
            out += rule(obs, s)
    if "policy-mismatch" in s.rules:
        found, kept = policy_mismatch(obs, s)
        out += found
        keep += kept
    return out, keep


def latest_policies(
    rows: Sequence[Mapping[str, object]],
) -> dict[str, dict[str, tuple[str, tuple[str, ...]]]]:
    """domain -> organisation -> its newest (day, policy-string lines), from rows of
    policy_domain, organization, day, policy_string (a list of lines)."""
    out: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {}
    for r in rows:
        domain, org, day = str(r["policy_domain"]), str(r["organization"]), str(r["day"])
        raw = r["policy_string"]
        lines = tuple(str(x) for x in raw) if isinstance(raw, list | tuple) else ()
        by_org = out.setdefault(domain, {})
        if org not in by_org or day > by_org[org][0]:
            by_org[org] = (day, lines)
    return out
