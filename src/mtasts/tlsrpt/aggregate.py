"""Counters of one UTC day -> one RFC 8460 report per policy domain (pure: no I/O, no clock).

The "policy domain" a report goes to is the domain whose ``_smtp._tls`` record the MTA
looked up (libtlsrpt's ``d``): the recipient domain for MTA-STS (RFC 8460 §1.1). Each
applied policy (type, policy-domain, policy-string lines, mx-host patterns) is one
``policies`` entry with its summary counts and its failure details.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from mtasts.errors import ConfigError
from mtasts.names import normalize_domain
from mtasts.results import PolicyType, ResultType
from mtasts.tlsrpt.collect.counters import Counters, FailureKey, PolicyKey
from mtasts.tlsrpt.model import FailureDetail, PolicyResult, Report, canonical_ip
from mtasts.tlsrpt.report import report_filename

# (policy type, policy domain, policy-string lines, mx-host patterns)
_PolicyIdent = tuple[str, str, tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """Who reports (RFC 8460 §4.4 organization-name, contact-info)."""

    organization_name: str
    contact_info: str

    @property
    def submitter(self) -> str:
        """The domain of contact-info: the TLS-Report-Submitter (RFC 8460 §5.3 MUST)."""
        local, at, domain = self.contact_info.rpartition("@")
        if not at or not local or not domain:
            raise ConfigError(
                f"contact-info {self.contact_info!r} is not an e-mail address: set it to "
                "e.g. tlsrpt@mail.example.com (RFC 8460 §4.4)",
                code="config.tlsrpt.contact",
            )
        return normalize_domain(domain)


@dataclass(frozen=True, slots=True)
class BuiltReport:
    """A report with what delivery needs to send it."""

    domain: str  # whose _smtp._tls rua receives it (= TLS-Report-Domain)
    tlsrpt_record: str  # the record the MTA saw for most sessions; "" when none was passed
    submitter: str
    filename: str  # RFC 8460 §5.1, .json.gz
    report: Report


def day_range(day: date) -> tuple[datetime, datetime]:
    """RFC 8460 §4.1: one UTC day. The RFC's prose says 00:00-24:00 and its Appendix B
    example ends at 23:59:59Z; we write 00:00:00Z..23:59:59Z as the Appendix B example,
    Google, mox and tlsrpt-reporter do, so the end is still inside the day."""
    start = datetime.combine(day, time(0, 0, 0), UTC)
    return start, datetime.combine(day, time(23, 59, 59), UTC)


def report_id(day: date, domain: str, submitter: str) -> str:
    """Unique per (day, policy domain, submitter) and a valid msg-id ``id-left@id-right``
    (RFC 5322 §3.6.4), so the Subject's ``Report-ID: <...>`` (RFC 8460 §5.3) needs no
    re-encoding (tlsrpt-reporter's ':' is not allowed there)."""
    return f"{day:%Y%m%d}.{domain}@{submitter}"


def _detail(key: FailureKey, count: int) -> FailureDetail:
    # RFC 8460 §4.4 ip-address only: text the MTA passed that is no IP address is dropped.
    return FailureDetail(
        result_type=key.result_type,
        sending_mta_ip=canonical_ip(key.sending_mta_ip) if key.sending_mta_ip else None,
        receiving_mx_hostname=key.receiving_mx_hostname or None,
        receiving_mx_helo=key.receiving_mx_helo or None,
        receiving_ip=canonical_ip(key.receiving_ip) if key.receiving_ip else None,
        failed_session_count=count,
        additional_information=key.additional_information or None,
        failure_reason_code=key.failure_reason_code or None,
    )


def _detail_order(item: tuple[FailureKey, int]) -> tuple[int, tuple[str, ...]]:
    fk, n = item  # most frequent first, then by the fields, for a stable report
    return -n, (
        fk.result_type,
        fk.receiving_mx_hostname,
        fk.receiving_ip,
        fk.sending_mta_ip,
        fk.receiving_mx_helo,
        fk.failure_reason_code,
        fk.additional_information,
    )


#: The failure-details row for failed sessions the MTA reported without any detail.
UNDETAILED_REASON = "failure-reported-without-details"


def _failure_details(failed: int, counted: Counter[FailureKey]) -> tuple[FailureDetail, ...]:
    """The failure-details of one policy, whose counts sum to its total-failure-session-count.

    RFC 8460 §4.4 counts connections: a session libtlsrpt marks successful may carry the
    failure of an earlier MX (libtlsrpt doc/example.txt), and a failed one may carry
    several. So the failure total is the sum of the details; failed sessions the MTA
    reported without a detail (``failed`` above that sum) get one ``validation-failure``
    row (§4.3.1's catch-all) so the summary and the details never disagree.
    """
    rows = [_detail(fk, n) for fk, n in sorted(counted.items(), key=_detail_order)]
    missing = failed - sum(counted.values())
    if missing > 0:
        rows.append(
            FailureDetail(
                result_type=ResultType.VALIDATION_FAILURE.value,
                sending_mta_ip=None,
                receiving_mx_hostname=None,
                receiving_mx_helo=None,
                receiving_ip=None,
                failed_session_count=missing,
                additional_information=None,
                failure_reason_code=UNDETAILED_REASON,
            )
        )
    return tuple(rows)


def report_domain(report: Report, domain: str) -> str:
    """The Policy Domain a report is about (RFC 8460 §5.1 file name, §5.3 TLS-Report-Domain
    and Subject): ``domain`` when one of its policies names it, else the ``policy-domain``
    of its policies (the one with the most sessions, then the first by name).

    It differs from ``domain`` (whose ``_smtp._tls`` record receives the report) for DANE:
    Postfix names the TLSA base domain, the MX host, as the policy domain. RFC 8460 has one
    Policy Domain per report; a report about several MX hosts' DANE policies cannot be
    split, as the journal keeps one report per (day, domain), so it names the busiest.
    """
    sessions: Counter[str] = Counter()
    for p in report.policies:
        sessions[p.policy_domain] += (
            p.total_successful_session_count + p.total_failure_session_count
        )
    if domain in sessions or not sessions:
        return domain
    return min(sessions, key=lambda name: (-sessions[name], name))


def _ident(key: PolicyKey) -> _PolicyIdent:
    return (key.policy_type.value, key.policy_domain, key.policy_string, key.mx_host)


def build_reports(counters: Counters, day: date, settings: ReportSettings) -> list[BuiltReport]:
    """The reports for ``day``, one per policy domain, sorted by domain."""
    submitter = settings.submitter
    by_domain: dict[str, set[PolicyKey]] = defaultdict(set)
    for key in counters.policy_keys():
        if key.day == day:
            by_domain[key.domain].add(key)
    details: dict[PolicyKey, list[tuple[FailureKey, int]]] = defaultdict(list)
    for (key, fkey), n in counters.details.items():
        if key.day == day:
            details[key].append((fkey, n))
    start, end = day_range(day)
    out = []
    for domain in sorted(by_domain):
        keys = by_domain[domain]
        # Policies that differ only in the TLSRPT record the MTA saw are one policy.
        ok: Counter[_PolicyIdent] = Counter()
        bad: Counter[_PolicyIdent] = Counter()
        fails: dict[_PolicyIdent, Counter[FailureKey]] = defaultdict(Counter)
        records: Counter[str] = Counter()
        policy_type: dict[_PolicyIdent, PolicyType] = {}
        for key in keys:
            ident = _ident(key)
            policy_type[ident] = key.policy_type
            ok[ident] += counters.successes.get(key, 0)
            bad[ident] += counters.failures.get(key, 0)
            records[key.tlsrpt_record] += counters.successes.get(key, 0) + counters.failures.get(
                key, 0
            )
            for fkey, n in details[key]:
                fails[ident][fkey] += n
        policies = tuple(
            PolicyResult(
                policy_type=policy_type[ident],
                policy_string=ident[2],
                policy_domain=ident[1],
                mx_host=ident[3],
                total_successful_session_count=ok[ident],
                total_failure_session_count=max(bad[ident], sum(fails[ident].values())),
                failure_details=_failure_details(bad[ident], fails[ident]),
            )
            for ident in sorted(policy_type)
        )
        report = Report(
            organization_name=settings.organization_name,
            date_range_start=start,
            date_range_end=end,
            contact_info=settings.contact_info,
            report_id=report_id(day, domain, submitter),
            policies=policies,
        )
        seen = [r for r, _ in records.most_common() if r]
        out.append(
            BuiltReport(
                domain=domain,
                tlsrpt_record=seen[0] if seen else "",
                submitter=submitter,
                filename=report_filename(
                    report,
                    submitter=submitter,
                    policy_domain=report_domain(report, domain),
                    unique_id="",
                ),
                report=report,
            )
        )
    return out
