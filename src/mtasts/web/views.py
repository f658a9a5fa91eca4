"""What the pages and the API show, computed from the query rows.

Pure: rows in (from :mod:`mtasts.web.queries`), plain values out; no I/O, no clock (the
day is an argument). Sessions per report follow
:func:`mtasts.tlsrpt.receive.summary.summarize` (a report's ``sts`` and ``tlsa`` entries
describe the same sessions). Failure breakdowns add ``failed-session-count`` over the
failure details, which RFC 8460 §4.3 lets overlap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from mtasts.tlsrpt.receive.summary import Counted, mx_label

WINDOWS = (7, 30, 90)
SPARK_DAYS = 30


def day_list(since: date, until: date) -> list[str]:
    n = (until - since).days
    return [(since + timedelta(days=i)).isoformat() for i in range(n + 1)]


def rate(c: Counted) -> float | None:
    """Share of successful sessions, in percent; None without sessions."""
    total = c.successful + c.failed
    return None if total == 0 else 100.0 * c.successful / total


def _failure_rate(c: Counted) -> float | None:
    ok = rate(c)
    return None if ok is None else 100.0 - ok


def _by_day(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Counted]:
    """(domain, day) -> sessions, from rows of policy_domain, day, successful, failed."""
    return {
        (x["policy_domain"], x["day"]): Counted(int(x["successful"]), int(x["failed"]))
        for x in rows
    }


@dataclass(frozen=True, slots=True)
class DomainHealth:
    """One row of the overview."""

    domain: str
    windows: dict[int, Counted]  # days -> sessions
    spark: list[float | None]  # failure rate per day in percent, oldest first
    worst_result_type: str | None
    worst_failed: int
    last_report_day: str | None
    last_check: dict[str, Any] | None = None

    def rate(self, days: int) -> float | None:
        return rate(self.windows[days])

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "windows": {
                str(d): {**c.to_json(), "success_rate": rate(c)} for d, c in self.windows.items()
            },
            "spark_failure_rate": self.spark,
            "worst_result_type": self.worst_result_type,
            "worst_result_type_failed": self.worst_failed,
            "last_report_day": self.last_report_day,
            "last_check": self.last_check,
        }


def overview(
    today: date,
    last_days: Mapping[str, str],
    day_rows: Iterable[Mapping[str, Any]],
    result_rows: Iterable[Mapping[str, Any]],
    checks: Mapping[str, dict[str, Any]] | None = None,
) -> list[DomainHealth]:
    """Every domain in ``last_days``: sessions over the last 7/30/90 days up to ``today``
    (``day_rows``: policy_domain, day, successful, failed, as
    :func:`mtasts.web.queries.sessions_by_day` gives them),
    the daily failure rate of the last 30, the result type with the most failures over
    the last 30 (``result_rows``: policy_domain, result_type, failed)."""
    per_day = _by_day(day_rows)
    worst: dict[str, tuple[int, str]] = {}
    for x in result_rows:
        n, kind = int(x["failed"]), x["result_type"]
        best = worst.get(x["policy_domain"])
        if best is None or (n, kind) > best:
            worst[x["policy_domain"]] = (n, kind)
    spark_days = day_list(today - timedelta(days=SPARK_DAYS - 1), today)
    out = []
    for domain in sorted(last_days):
        windows = {}
        for w in WINDOWS:
            start = (today - timedelta(days=w - 1)).isoformat()
            total = Counted()
            for (d, day), c in per_day.items():
                if d == domain and start <= day <= today.isoformat():
                    total += c
            windows[w] = total
        spark = [_failure_rate(per_day.get((domain, day), Counted())) for day in spark_days]
        w_n, w_kind = worst.get(domain, (0, None))
        out.append(
            DomainHealth(
                domain=domain,
                windows=windows,
                spark=spark,
                worst_result_type=w_kind if w_n else None,
                worst_failed=w_n,
                last_report_day=last_days[domain],
                last_check=(checks or {}).get(domain),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Failures by one dimension, most first."""

    key: str  # the URL filter parameter this dimension sets
    title: str
    rows: list[tuple[str, str, int]]  # (label, filter value, failed sessions)

    def to_json(self) -> dict[str, int]:
        return {label: n for label, _, n in self.rows}


@dataclass(frozen=True, slots=True)
class DomainView:
    domain: str
    since: str
    until: str
    days: list[str]
    successful: list[int]
    failed: list[int]  # matching the filters when a failure filter is set
    totals: Counted
    failed_matching: int
    breakdowns: list[Breakdown]
    organizations: dict[str, Counted] = field(default_factory=dict)
    # result type -> reported failures per day (matching the filters), most first
    failures_per_day: dict[str, list[int]] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        return rate(self.totals)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "since": self.since,
            "until": self.until,
            "successful": self.totals.successful,
            "failed": self.totals.failed,
            "success_rate": self.success_rate,
            "failed_matching_filters": self.failed_matching,
            "days": [
                {"day": d, "successful": s, "failed": n}
                for d, s, n in zip(self.days, self.successful, self.failed, strict=True)
            ],
            "failures": {b.key: b.to_json() for b in self.breakdowns},
            "failures_per_day": self.failures_per_day,
            "organizations": {k: v.to_json() for k, v in self.organizations.items()},
        }


def _ordered(counts: Mapping[tuple[str, str], int]) -> list[tuple[str, str, int]]:
    return sorted(((k[0], k[1], n) for k, n in counts.items()), key=lambda t: (-t[2], t[0]))


def domain_view(
    domain: str,
    since: date,
    until: date,
    day_rows: Iterable[Mapping[str, Any]],
    org_rows: Iterable[Mapping[str, Any]],
    failures: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    failure_filtered: bool,
) -> DomainView:
    """The domain page: sessions per day (``day_rows``, from
    :func:`~mtasts.web.queries.sessions_by_day`) and per organisation (``org_rows``),
    and failures by result type, organisation, receiving MX, sending IP and per day and
    result type (``failures``, from :func:`~mtasts.web.queries.failure_breakdowns`).
    With ``failure_filtered`` (a result type, MX or sending IP filter), the failed series
    counts the matching failure details instead of the policies' failure totals."""
    days = day_list(since, until)
    index = {d: i for i, d in enumerate(days)}
    per_day = {d: c for (name, d), c in _by_day(day_rows).items() if name == domain}
    orgs = {x["organization"]: Counted(int(x["successful"]), int(x["failed"])) for x in org_rows}
    per_type: dict[str, list[int]] = {}
    matched = [0] * len(days)
    for x in failures.get("day_result", ()):
        i = index.get(x["day"])
        if i is not None:
            n = int(x["failed"])
            per_type.setdefault(x["result_type"], [0] * len(days))[i] += n
            matched[i] += n
    dims: dict[str, dict[tuple[str, str], int]] = {k: defaultdict(int) for k in _TITLES}
    for x in failures.get("result", ()):
        dims["result"][x["result_type"], x["result_type"]] += int(x["failed"])
    for x in failures.get("org", ()):
        dims["org"][x["organization"], x["organization"]] += int(x["failed"])
    for x in failures.get("mx", ()):
        host, ip = x["receiving_mx_hostname"], x["receiving_ip"]
        dims["mx"][mx_label(host, ip), host or "-"] += int(x["failed"])
    for x in failures.get("sender", ()):
        ip = x["sending_mta_ip"] or "-"
        dims["sender"][ip, ip] += int(x["failed"])
    successful = [per_day.get(d, Counted()).successful for d in days]
    policy_failed = [per_day.get(d, Counted()).failed for d in days]
    return DomainView(
        domain=domain,
        since=since.isoformat(),
        until=until.isoformat(),
        days=days,
        successful=successful,
        failed=matched if failure_filtered else policy_failed,
        totals=Counted(sum(successful), sum(policy_failed)),
        failed_matching=sum(matched),
        breakdowns=[Breakdown(k, t, _ordered(dims[k])) for k, t in _TITLES.items()],
        organizations=dict(sorted(orgs.items())),
        failures_per_day=dict(sorted(per_type.items(), key=lambda kv: (-sum(kv[1]), kv[0]))),
    )


_TITLES = {
    "result": "result type",
    "org": "reporting organization",
    "mx": "receiving MX (IP)",
    "sender": "sending MTA IP",
}


@dataclass(frozen=True, slots=True)
class Reporter:
    organization: str
    first_day: str
    last_day: str
    reports: int
    silent_days: int
    stopped: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "first_day": self.first_day,
            "last_day": self.last_day,
            "reports": self.reports,
            "silent_days": self.silent_days,
            "stopped": self.stopped,
        }


def reporter_list(
    rows: Iterable[Mapping[str, Any]], until: date, stopped_after_days: int
) -> list[Reporter]:
    """Reporters over a look-back window ending ``until``; one whose last report is more
    than ``stopped_after_days`` before ``until`` stopped reporting. Stopped ones first."""
    out = []
    for x in rows:
        silent = (until - date.fromisoformat(x["last_day"])).days
        out.append(
            Reporter(
                organization=x["organization"],
                first_day=x["first_day"],
                last_day=x["last_day"],
                reports=int(x["reports"]),
                silent_days=silent,
                stopped=silent > stopped_after_days,
            )
        )
    return sorted(out, key=lambda r: (not r.stopped, -r.silent_days, r.organization))


@dataclass(frozen=True, slots=True)
class ReportedPolicy:
    """One policy as senders reported it, and how it compares with the published one."""

    policy_type: str
    policy_string: list[str]
    mx_host: list[str]
    mode: str | None
    mx: list[str]
    max_age: str | None
    organizations: list[str]
    reports: int
    sessions: Counted
    first_day: str
    last_day: str
    differs: list[str]  # fields that differ from the published policy; [] when equal

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_type": self.policy_type,
            "policy_string": self.policy_string,
            "mx_host": self.mx_host,
            "mode": self.mode,
            "mx": self.mx,
            "max_age": self.max_age,
            "organizations": self.organizations,
            "reports": self.reports,
            **self.sessions.to_json(),
            "first_day": self.first_day,
            "last_day": self.last_day,
            "differs_from_published": self.differs,
        }


def policy_fields(lines: Sequence[str]) -> tuple[str | None, list[str], str | None]:
    """(mode, mx values, max_age) from a reported ``policy-string`` (RFC 8460 §4.4:
    the policy's lines); the first mode and max_age count, as RFC 8461 §3.2 says."""
    mode = max_age = None
    mx: list[str] = []
    for line in lines:
        key, sep, value = str(line).partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "mode" and mode is None:
            mode = value.lower()
        elif key == "max_age" and max_age is None:
            max_age = value
        elif key == "mx":
            mx.append(value.lower().rstrip("."))
    return mode, sorted(set(mx)), max_age


def compare(
    reported: tuple[str | None, list[str], str | None],
    published: tuple[str | None, list[str], str | None] | None,
) -> list[str]:
    if published is None:
        return []
    names = ("mode", "mx", "max_age")
    return [n for n, a, b in zip(names, reported, published, strict=True) if a != b]


def reported_policy_list(
    rows: Iterable[Mapping[str, Any]],
    published: tuple[str | None, list[str], str | None] | None,
    decode: Any,
) -> list[ReportedPolicy]:
    """Group the query rows (per org) into one entry per distinct reported policy; the
    published policy's (mode, mx, max_age) flags differences of ``sts`` entries.
    ``decode``: JSON text -> value."""
    grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
    for x in rows:
        key = (x["policy_type"], x["policy_string"], x["mx_host"])
        g = grouped.setdefault(
            key,
            {"orgs": set(), "reports": 0, "c": Counted(), "first": x["first_day"], "last": ""},
        )
        g["orgs"].add(x["organization"])
        g["reports"] += int(x["reports"])
        g["c"] += Counted(int(x["successful"]), int(x["failed"]))
        g["first"] = min(g["first"], x["first_day"])
        g["last"] = max(g["last"], x["last_day"])
    out = []
    for (kind, text, mx_host), g in grouped.items():
        lines = [str(v) for v in decode(text)]
        fields = policy_fields(lines)
        out.append(
            ReportedPolicy(
                policy_type=kind,
                policy_string=lines,
                mx_host=[str(v) for v in decode(mx_host)],
                mode=fields[0],
                mx=fields[1],
                max_age=fields[2],
                organizations=sorted(g["orgs"]),
                reports=g["reports"],
                sessions=g["c"],
                first_day=g["first"],
                last_day=g["last"],
                differs=compare(fields, published) if kind == "sts" else [],
            )
        )
    return sorted(out, key=lambda x: (x.last_day, x.reports), reverse=True)
