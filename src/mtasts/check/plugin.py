"""``mtasts check`` as a monitoring plugin (Nagios, Icinga, Sensu): certificate-expiry
thresholds, one status line, performance data.

The status line follows the Nagios plugin guidelines: ``SERVICE STATUS - text | perfdata``
on the first line, one line per problem after it (the "long output"). Performance data:
days until the certificate of the policy host and of each MX host expires (with the
warning and critical thresholds as ranges, ``14:`` meaning "alert below 14"), and the
number of MX hosts checked.

Everything is computed from the findings' evidence (``host``, ``not_after``), so the
JSON output, the table and the status line always agree.

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mtasts.check.finding import DomainReport, Finding, Severity, Status, worst_status

SERVICE = "MTA-STS"
_AREAS = ("policy-host", "mx")
_DAY = timedelta(days=1)
MAX_LONG_LINES = 20  # problems listed after the status line


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Certificate expiry: WARNING when fewer than ``warning_days`` whole days are left,
    CRITICAL when fewer than ``critical_days`` (0: only once expired, which is always
    critical)."""

    warning_days: int = 14
    critical_days: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.critical_days <= self.warning_days:
            raise ValueError(
                f"--critical-days {self.critical_days} must be between 0 and "
                f"--warning-days {self.warning_days}"
            )


@dataclass(frozen=True, slots=True)
class CertDays:
    """Whole days until a certificate expires (negative once it has)."""

    area: str  # "policy-host" or "mx"
    host: str
    days: int


def _area(finding: Finding) -> str | None:
    area = finding.id.partition(".")[0]
    return area if area in _AREAS else None


def _not_after(finding: Finding) -> datetime | None:
    value = finding.get("not_after")
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _days(not_after: datetime, now: datetime) -> int:
    return math.floor((not_after - now) / _DAY)


def certificate_days(report: DomainReport, now: datetime) -> tuple[CertDays, ...]:
    """Per (area, host), the days left of its certificate: the soonest over its addresses."""
    soonest: dict[tuple[str, str], int] = {}
    for finding in report.findings:
        area, not_after, host = _area(finding), _not_after(finding), finding.get("host")
        if area is None or not_after is None or not isinstance(host, str):
            continue
        days = _days(not_after, now)
        key = (area, host)
        soonest[key] = min(days, soonest.get(key, days))
    return tuple(CertDays(area, host, days) for (area, host), days in soonest.items())


def mx_count(report: DomainReport) -> int | None:
    """How many MX hosts were checked (0 for a null MX), or None when the MX set is unknown."""
    unchecked = ("domain.not-found", "domain.invalid", "check.timeout", "check.error")
    if any(f.id in unchecked for f in report.findings):
        return None
    if any(f.id == "mx.dns-error" and f.get("host") is None for f in report.findings):
        return None
    hosts = {f.get("host") for f in report.findings if f.id.startswith("mx.")} - {None}
    return len(hosts)


def _regrade(finding: Finding, now: datetime, limits: Thresholds) -> Finding:
    area = _area(finding)
    not_after = _not_after(finding)
    expiry_id = f"{area}.cert-expiry"
    if area is None or not_after is None or finding.id not in (f"{area}.tls", expiry_id):
        return finding
    days = _days(not_after, now)
    if days < 0:  # expired after the handshake: the certificate checks already said so
        return finding
    if finding.severity is Severity.CRITICAL:  # the checker's own rule (enforce) stands
        return finding
    host = finding.get("host")
    when = f"{days} day(s), on {not_after:%Y-%m-%d}"
    if days < limits.critical_days:
        severity, rule = Severity.CRITICAL, f"--critical-days {limits.critical_days}"
    elif days < limits.warning_days:
        severity, rule = Severity.WARNING, f"--warning-days {limits.warning_days}"
    elif finding.id == expiry_id:
        message = (
            f"the certificate of {host} expires in {when}, not within "
            f"--warning-days {limits.warning_days}"
        )
        return Finding(expiry_id, Severity.OK, message, finding.evidence, finding.rfc)
    else:
        return finding
    message = (
        f"the certificate of {host} expires in {when} (fewer days left than {rule}). Check "
        "that its renewal works."
    )
    return Finding(expiry_id, severity, message, finding.evidence, finding.rfc)


def apply_thresholds(report: DomainReport, now: datetime, limits: Thresholds) -> DomainReport:
    """The report with certificate expiry graded by ``limits`` instead of the checker's
    fixed 14-day warning (the defaults give the same result)."""
    return DomainReport(report.domain, tuple(_regrade(f, now, limits) for f in report.findings))


def _label(text: str) -> str:
    return "'" + text.replace("'", "") + "'"


def perfdata(report: DomainReport, now: datetime, limits: Thresholds) -> list[str]:
    out: list[str] = []
    warn, crit = f"{limits.warning_days}:", f"{limits.critical_days}:"
    for cert in sorted(
        certificate_days(report, now), key=lambda c: (c.area != "policy-host", c.host)
    ):
        what = "policy host" if cert.area == "policy-host" else "mx"
        out.append(f"{_label(f'{cert.host} {what} cert days')}={cert.days};{warn};{crit}")
    count = mx_count(report)
    if count is not None:
        out.append(f"{_label(f'{report.domain} mx count')}={count};;;0")
    return out


def _problems(report: DomainReport) -> list[Finding]:
    return [f for f in report.findings if f.severity is not Severity.OK]


def _summary(report: DomainReport, now: datetime) -> str:
    problems = _problems(report)
    if problems:
        ids = list(dict.fromkeys(f.id for f in problems))
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        return f"{report.domain} {report.status.name} ({shown})"
    certs = certificate_days(report, now)
    soonest = min((c.days for c in certs), default=None)
    expiry = f", certificates valid {soonest}+ days" if soonest is not None else ""
    count = mx_count(report)
    mx = f", {count} MX" if count is not None else ""
    return f"{report.domain} OK{mx}{expiry}"


def status_lines(reports: Sequence[DomainReport], now: datetime, limits: Thresholds) -> list[str]:
    """The plugin output: the status line with performance data, then one line per problem."""
    status: Status = worst_status(r.status for r in reports)
    text = "; ".join(_summary(r, now) for r in reports)
    perf = [item for r in reports for item in perfdata(r, now, limits)]
    first = f"{SERVICE} {status.name} - {text}".replace("|", "/")
    lines = [f"{first} | {' '.join(perf)}" if perf else first]
    long = [
        f"{f.severity.name} {r.domain} {f.id}: {f.message}".replace("|", "/")
        for r in reports
        for f in _problems(r)
    ]
    if len(long) > MAX_LONG_LINES:
        long = [*long[:MAX_LONG_LINES], f"... and {len(long) - MAX_LONG_LINES} more"]
    return lines + long


def regrade_all(
    reports: Iterable[DomainReport], now: datetime, limits: Thresholds
) -> list[DomainReport]:
    return [apply_thresholds(r, now, limits) for r in reports]
