"""``mtasts advise``: would a candidate policy (usually: today's policy with ``mode: enforce``)
have stopped anyone's mail? The decision, as data.

Inputs: what the received TLS-RPT reports of the last days say (:class:`Evidence`, built
by :func:`evidence_from_rows` from the rows :mod:`mtasts.monitor.reported` reads), the
live set-up (:class:`~mtasts.monitor.snapshot.Snapshot` of one ``mtasts check``), the
candidate :class:`~mtasts.sts.policy.Policy` and the :class:`Criteria`. Output: an
:class:`Advice` with the verdict READY / NOT READY / CANNOT TELL, each reported failure
judged, the live checks that must pass, and the steps.

How a reported failure is judged (first rule that applies; docs/monitor.md has the
table and the reasons):

1. DANE results (``tlsa-invalid``, ``dnssec-invalid``, ``dane-required``, or a ``tlsa``
   policy): *not affected*, the MTA-STS mode changes nothing for them.
2. Policy fetch results (``sts-policy-fetch-error``, ``sts-policy-invalid``,
   ``sts-webpki-invalid``): *not affected*: a sender that cannot fetch a policy delivers
   as without one (RFC 8461 §3.3, STS-3.3-m), one with a cached policy keeps using it
   (STS-3.3-n). They are listed, because the policy host needs fixing, but block nothing.
3. The failure names an MX host that DNS does not list today: *noise* (an old MX, or a
   name a man in the middle made up; neither receives your mail under the candidate).
4. ``validation-failure`` at a listed MX that the published policy did not cover but the
   candidate does: *not affected* (the candidate's patterns fix it); one the candidate
   does not cover either: *blocking* (an MX outside the candidate patterns).
5. A reporter on :data:`KNOWN_MISREPORTERS` for this result type: *noise*.
6. At most ``Criteria.noise_sessions`` sessions over the whole window: *noise*.
7. The MX passes every live check now and no failure was reported in the last
   ``Criteria.recent_days`` days: *fixed*.
8. Everything else (certificate name, chain or expiry failures, STARTTLS not offered,
   other validation failures at an MX that DNS lists): *blocking*: under the candidate
   a sender would refuse that MX (RFC 8461 §5.1: it tries the next MX; the mail is
   deferred when none passes).

Pure: no I/O, no clock (``now`` is an argument).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from mtasts.errors import DomainNameError, PolicyError
from mtasts.monitor.snapshot import MxState, Snapshot
from mtasts.names import normalize_domain
from mtasts.publish.generate import DEFAULT_MAX_AGE, patterns_for, policy_id
from mtasts.rfcnames import policy_host, policy_url, sts_record_name
from mtasts.sts.policy import Mode, Policy, format_policy
from mtasts.tlsrpt.results import DANE_RESULTS, NEGOTIATION_RESULTS, STS_RESULTS

_DAY = timedelta(days=1)


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


class Verdict(StrEnum):
    READY = "READY"
    NOT_READY = "NOT READY"
    CANNOT_TELL = "CANNOT TELL"


class ExitCode(IntEnum):
    """Monitoring-plugin exit codes of ``mtasts advise`` (docs/monitor.md)."""

    READY = 0
    READY_WITH_NOTES = 1  # READY, but something to read first (fetch errors, noise)
    NOT_READY = 2
    CANNOT_TELL = 3  # also: bad arguments, store or configuration errors


class Impact(StrEnum):
    BLOCKING = "blocking"
    NOISE = "noise"
    FIXED = "fixed"
    NOT_AFFECTED = "not-affected"


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 (a check outcome, not a password)
    FAIL = "fail"
    UNKNOWN = "unknown"


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


# --- the candidate ----------------------------------------------------------------------


def candidate_policy(
    published: Policy | None,
    *,
    mode: Mode | None = None,
    mx: Sequence[str] = (),
    max_age: int | None = None,
) -> Policy:
    """The policy to judge: the published one with ``mode`` (enforce unless given), ``mx``
    patterns and ``max_age`` replaced where given. Raises PolicyError when nothing is
    published and no ``mx`` is given, or a value is invalid."""
    chosen = mode or Mode.ENFORCE
    if published is None and not mx:
        raise PolicyError(
            "no valid policy is published to start from: give the candidate's MX patterns "
            "with --mx (e.g. --mx mx1.example.com --mx '*.mail.example.com')",
            code="advise.no-policy",
        )
    patterns = patterns_for(mx) if mx else (published.mx if published else ())
    if max_age is not None:
        age = max_age
    elif published is not None and published.mode is not Mode.NONE:
        age = published.max_age
    else:
        age = DEFAULT_MAX_AGE[chosen]
    return Policy(mode=chosen, mx=patterns, max_age=age)


# --- the judgement ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Judged:
    failure: FailureGroup
    impact: Impact
    why: str


@dataclass(frozen=True, slots=True)
class LiveCheck:
    id: str
    outcome: Outcome
    message: str


@dataclass(frozen=True, slots=True)
class DataCheck:
    enough: bool
    reports: int
    reporters: int
    sts_sessions: int
    days: int
    why: str


@dataclass(frozen=True, slots=True)
class Advice:
    domain: str
    verdict: Verdict
    reasons: tuple[str, ...]
    candidate: Policy
    policy_text: str
    new_id: str
    current_id: str | None
    judged: tuple[Judged, ...]
    live: tuple[LiveCheck, ...]
    data: DataCheck
    steps: tuple[str, ...]
    exposure: str
    notes: tuple[str, ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        if self.verdict is Verdict.NOT_READY:
            return ExitCode.NOT_READY
        if self.verdict is Verdict.CANNOT_TELL:
            return ExitCode.CANNOT_TELL
        return ExitCode.READY_WITH_NOTES if self.notes else ExitCode.READY

    def blocking(self) -> tuple[Judged, ...]:
        return tuple(j for j in self.judged if j.impact is Impact.BLOCKING)

    def blocked_by_organization(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for j in self.blocking():
            out[j.failure.organization] += j.failure.sessions
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def blocked_by_mx(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for j in self.blocking():
            out[j.failure.mx_host or "-"] += j.failure.sessions
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "verdict": self.verdict.value,
            "exit_code": int(self.exit_code),
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "candidate": {
                "mode": self.candidate.mode.value,
                "mx": [str(p) for p in self.candidate.mx],
                "max_age": self.candidate.max_age,
                "policy_text": self.policy_text,
                "new_id": self.new_id,
                "current_id": self.current_id,
            },
            "data": {
                "enough": self.data.enough,
                "reports": self.data.reports,
                "reporters": self.data.reporters,
                "sts_sessions": self.data.sts_sessions,
                "days": self.data.days,
                "why": self.data.why,
            },
            "blocked_sessions": {
                "by_organization": self.blocked_by_organization(),
                "by_mx": self.blocked_by_mx(),
            },
            "failures": [
                {
                    "organization": j.failure.organization,
                    "result_type": j.failure.result_type,
                    "mx_host": j.failure.mx_host,
                    "policy_type": j.failure.policy_type,
                    "sessions": j.failure.sessions,
                    "first_day": j.failure.first_day,
                    "last_day": j.failure.last_day,
                    "reason_codes": list(j.failure.reason_codes),
                    "impact": j.impact.value,
                    "why": j.why,
                }
                for j in self.judged
            ],
            "live_checks": [
                {"id": c.id, "outcome": c.outcome.value, "message": c.message} for c in self.live
            ],
            "steps": list(self.steps),
            "exposure": self.exposure,
        }


def _passes_now(state: MxState | None) -> bool:
    return state is not None and bool(state.starttls and state.tls12 and state.cert_ok)


def judge_failure(
    g: FailureGroup,
    *,
    live: Snapshot,
    published: Policy | None,
    candidate: Policy,
    criteria: Criteria,
    until: date,
) -> Judged:
    """One failure group's impact under the candidate (rules 1-8 of the module docstring)."""
    if g.result_type in DANE_RESULTS or g.policy_type == "tlsa":
        return Judged(g, Impact.NOT_AFFECTED, "a DANE result: the MTA-STS mode changes nothing")
    if g.result_type in STS_RESULTS:
        known = next(
            (m for m in criteria.misreporters if m.matches(g.organization, g.result_type)), None
        )
        why = (
            "the policy could not be fetched or read: senders without a cached policy "
            "deliver as without MTA-STS, so no mail is refused; fix the policy host anyway"
        )
        return Judged(
            g, Impact.NOT_AFFECTED, why + (f" (known misreport: {known.why})" if known else "")
        )
    listed = live.mx_known and live.checked
    if g.mx_host is not None and listed and g.mx_host not in live.mx_hosts:
        return Judged(
            g,
            Impact.NOISE,
            f"{g.mx_host} is not an MX that DNS lists today (an old MX, or a name a man in "
            "the middle gave): the candidate sends no mail there",
        )
    if g.result_type == "validation-failure" and g.mx_host is not None:
        if not candidate.matches_mx(g.mx_host):
            return Judged(
                g,
                Impact.BLOCKING,
                f"{g.mx_host} is outside the candidate's mx patterns: senders would refuse it",
            )
        if published is not None and not published.matches_mx(g.mx_host):
            return Judged(
                g,
                Impact.NOT_AFFECTED,
                f"the published policy did not cover {g.mx_host}; the candidate does",
            )
    known = next(
        (m for m in criteria.misreporters if m.matches(g.organization, g.result_type)), None
    )
    if known is not None:
        return Judged(g, Impact.NOISE, f"known misreport: {known.why}")
    if g.sessions <= criteria.noise_sessions:
        return Judged(
            g,
            Impact.NOISE,
            f"{g.sessions} session(s) in {criteria.days} days "
            f"(at most {criteria.noise_sessions} counts as noise)",
        )
    recent = until - timedelta(days=criteria.recent_days)
    state = live.mx_state(g.mx_host) if g.mx_host else None
    if _passes_now(state) and date.fromisoformat(g.last_day) < recent:
        return Judged(
            g,
            Impact.FIXED,
            f"none since {g.last_day}, and {g.mx_host} passes every live check now",
        )
    where = f"at {g.mx_host}" if g.mx_host else "(the reporter named no MX)"
    return Judged(
        g,
        Impact.BLOCKING,
        f"{g.sessions} session(s) {where} would have been refused under mode "
        f"{candidate.mode.value} (delivered only if another MX passed)",
    )


def _hosts_with(states: Iterable[MxState], test: Any) -> list[str]:
    return [m.host for m in states if test(m)]


def live_checks(
    live: Snapshot, candidate: Policy, criteria: Criteria, now: datetime
) -> tuple[LiveCheck, ...]:
    """What must pass before the switch: MX covered, STARTTLS, TLS 1.2+, certificates
    valid with ``criteria.cert_days`` to spare, the policy host and the TXT record."""
    out: list[LiveCheck] = []
    if not live.checked or not live.mx_known:
        why = ", ".join(live.problems) or "the check did not finish"
        return (
            LiveCheck("check", Outcome.UNKNOWN, f"the live check of {live.domain} failed: {why}"),
        )
    mx = live.mx
    if not mx:
        out.append(LiveCheck("mx-covered", Outcome.FAIL, f"{live.domain} lists no MX host"))
    else:
        uncovered = [m.host for m in mx if not candidate.matches_mx(m.host)]
        out.append(
            LiveCheck(
                "mx-covered",
                Outcome.FAIL if uncovered else Outcome.PASS,
                f"MX outside the candidate's patterns: {', '.join(uncovered)}"
                if uncovered
                else f"every MX is covered: {', '.join(live.mx_hosts)}",
            )
        )
    for cid, attr, good, bad in (
        ("mx-starttls", "starttls", "every MX offers STARTTLS", "no STARTTLS at"),
        ("mx-tls12", "tls12", "every MX speaks TLS 1.2 or later", "no TLS 1.2+ at"),
        (
            "mx-cert",
            "cert_ok",
            "every MX has a trusted certificate for its name",
            "certificate not trusted, expired or for another name at",
        ),
    ):
        # TLS version and certificate are not asked of an MX without STARTTLS
        asked = mx if attr == "starttls" else tuple(m for m in mx if m.starttls is not False)
        failing = _hosts_with(asked, lambda m, a=attr: getattr(m, a) is False)
        unknown = _hosts_with(asked, lambda m, a=attr: getattr(m, a) is None)
        if failing:
            out.append(LiveCheck(cid, Outcome.FAIL, f"{bad} {', '.join(failing)}"))
        elif unknown:
            out.append(
                LiveCheck(cid, Outcome.UNKNOWN, f"could not be checked at {', '.join(unknown)}")
            )
        elif asked:
            note = " (of those offering STARTTLS)" if len(asked) < len(mx) else ""
            out.append(LiveCheck(cid, Outcome.PASS, good + note))
    short: list[str] = []
    unknown_expiry: list[str] = []
    certs = [(m.host, m.not_after) for m in mx if m.cert_ok]
    if live.policy_text is not None:
        certs.append((policy_host(live.domain), live.policy_host_not_after))
    for host, not_after in certs:
        if not_after is None:
            unknown_expiry.append(host)
        elif not_after - now < criteria.cert_days * _DAY:
            short.append(f"{host} ({(not_after - now) // _DAY} days left)")
    if short:
        out.append(
            LiveCheck(
                "cert-time",
                Outcome.FAIL,
                f"certificates expiring within {criteria.cert_days} days: {', '.join(short)}; "
                "renew them first",
            )
        )
    elif unknown_expiry:
        out.append(
            LiveCheck(
                "cert-time", Outcome.UNKNOWN, f"expiry unknown for {', '.join(unknown_expiry)}"
            )
        )
    elif certs:
        out.append(
            LiveCheck(
                "cert-time",
                Outcome.PASS,
                f"every certificate stays valid for {criteria.cert_days} days or more",
            )
        )
    if live.policy_text is None or live.policy_host_down:
        down = ", ".join(live.policy_host_down) or "no valid policy served"
        out.append(
            LiveCheck(
                "policy-host",
                Outcome.FAIL,
                f"{policy_url(live.domain)} serves no valid policy "
                f"({down}): senders could not fetch the candidate",
            )
        )
    else:
        out.append(LiveCheck("policy-host", Outcome.PASS, "the policy host serves a valid policy"))
    if live.sts_unknown:
        out.append(LiveCheck("sts-record", Outcome.UNKNOWN, "the _mta-sts TXT lookup failed"))
    elif live.sts_id is None:
        out.append(
            LiveCheck(
                "sts-record", Outcome.FAIL, f"no valid {sts_record_name(live.domain)} TXT record"
            )
        )
    else:
        out.append(LiveCheck("sts-record", Outcome.PASS, f"_mta-sts record id={live.sts_id}"))
    return tuple(out)


#: The live checks whose failure makes an enforce policy refuse mail (``policy generate``).
ENFORCE_CHECKS = ("mx-covered", "mx-starttls", "mx-tls12", "mx-cert", "cert-time")


def enforce_blockers(
    live: Snapshot, policy: Policy, now: datetime, *, cert_days: int = 14
) -> tuple[str, ...]:
    """Why publishing ``policy`` in mode enforce now would make senders refuse mail: the
    failing live checks among :data:`ENFORCE_CHECKS` (empty when none fails)."""
    checks = live_checks(
        live, replace(policy, mode=Mode.ENFORCE), Criteria(cert_days=cert_days), now
    )
    return tuple(
        f"{c.message} (under enforce, senders refuse to deliver there)"
        for c in checks
        if c.id in ENFORCE_CHECKS and c.outcome is Outcome.FAIL
    )


def data_check(evidence: Evidence, criteria: Criteria) -> DataCheck:
    reporters = sum(1 for r in evidence.reporters if r.sts_sessions > 0)
    days = len(evidence.days)
    base = {
        "reports": evidence.reports,
        "reporters": reporters,
        "sts_sessions": evidence.sts_sessions,
        "days": days,
    }
    window = f"{evidence.since} to {evidence.until}"
    if evidence.reports == 0:
        why = (
            f"no TLS-RPT reports for {evidence.domain} from {window}: without reports "
            "nothing shows enforce is safe. Publish a _smtp._tls record, run mode testing "
            "and receive reports (mtasts tlsrpt receive)"
        )
        return DataCheck(False, why=why, **base)
    if evidence.sts_sessions == 0:
        why = (
            f"the {evidence.reports} report(s) from {window} count no session under an "
            "MTA-STS policy (only no-policy-found or tlsa): senders did not validate MX "
            "names or certificates, so they prove nothing. Publish the policy in mode "
            "testing first"
        )
        return DataCheck(False, why=why, **base)
    short = []
    if evidence.sts_sessions < criteria.min_sessions:
        short.append(f"{evidence.sts_sessions} sessions (need {criteria.min_sessions})")
    if days < criteria.min_days:
        short.append(f"reports on {days} day(s) (need {criteria.min_days})")
    if reporters < criteria.min_reporters:
        short.append(f"{reporters} reporter(s) (need {criteria.min_reporters})")
    if short:
        return DataCheck(False, why="not enough evidence yet: " + ", ".join(short), **base)
    return DataCheck(
        True,
        why=f"{evidence.sts_sessions} sessions from {reporters} reporter(s) on {days} days",
        **base,
    )


def _duration(seconds: int) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:g} day(s)"
    if seconds >= 3600:
        return f"{seconds / 3600:g} hour(s)"
    return f"{seconds} s"


def _steps(
    domain: str,
    verdict: Verdict,
    candidate: Policy,
    text: str,
    new_id: str,
    blockers: Sequence[str],
    published: bool = False,
) -> tuple[str, ...]:
    url = policy_url(domain)
    steps = [f"Fix first: {b}" for b in blockers]
    if verdict is Verdict.CANNOT_TELL:
        steps.append("Wait for more reports, then run mtasts advise again.")
    if published:
        steps.append(
            f"{url} already serves this policy (id={new_id}): nothing to publish; keep "
            f"mtasts monitor watching {domain}."
        )
        return tuple(steps)
    steps += [
        f"Serve this policy at {url} (status 200, text/plain):\n{text.rstrip()}",
        f'Then change the TXT record: {sts_record_name(domain)}. TXT "v=STSv1; id={new_id}" '
        "(policy first, record second: RFC 8461 §8.1).",
        f"Run mtasts check {domain} until it says OK, and keep mtasts monitor watching it.",
    ]
    if candidate.mode is Mode.ENFORCE and candidate.max_age > 86400:
        steps.append(
            "Consider max_age 86400 for the first days of enforce, then raise it (to "
            "1209600 or more) with a new id once reports stay clean."
        )
    return tuple(steps)


def exposure(candidate: Policy) -> str:
    """How long a mistake in the candidate hurts (RFC 8461 §5.1, §10.2)."""
    age = _duration(candidate.max_age)
    if candidate.mode is not Mode.ENFORCE:
        return (
            f"mode {candidate.mode.value}: senders deliver as before; they cache the policy "
            f"for {age} (max_age {candidate.max_age})."
        )
    return (
        f"Senders that fetch this policy keep it for up to {age} (max_age "
        f"{candidate.max_age}) and refuse, for that long, any MX it does not cover or whose "
        "TLS fails. A fix reaches them only through a new policy with a new id, at their "
        "next delivery; if the policy host is down they keep the bad policy until max_age "
        "runs out."
    )


def advise(
    evidence: Evidence,
    live: Snapshot,
    candidate: Policy,
    *,
    criteria: Criteria | None = None,
    now: datetime,
) -> Advice:
    """The verdict (see the module docstring)."""
    criteria = criteria or Criteria()
    published = live.policy
    judged = tuple(
        judge_failure(
            g,
            live=live,
            published=published,
            candidate=candidate,
            criteria=criteria,
            until=evidence.until,
        )
        for g in evidence.failures
    )
    checks = live_checks(live, candidate, criteria, now)
    data = data_check(evidence, criteria)
    reasons: list[str] = []
    blockers: list[str] = []
    blocking = [j for j in judged if j.impact is Impact.BLOCKING]
    for j in blocking:
        f = j.failure
        text = f"{f.organization}: {f.result_type} {j.why}"
        reasons.append(text)
    by_mx: dict[str, list[str]] = defaultdict(list)
    for j in blocking:
        by_mx[j.failure.mx_host or "-"].append(j.failure.result_type)
    for host, kinds in by_mx.items():
        blockers.append(f"{host}: {', '.join(sorted(set(kinds)))} reported")
    failed = [c for c in checks if c.outcome is Outcome.FAIL]
    unknown = [c for c in checks if c.outcome is Outcome.UNKNOWN]
    for c in failed:
        reasons.append(f"live check {c.id} fails: {c.message}")
        blockers.append(c.message)
    if blocking or failed:
        verdict = Verdict.NOT_READY
    elif not data.enough or unknown:
        verdict = Verdict.CANNOT_TELL
    else:
        verdict = Verdict.READY
    if not data.enough:
        reasons.append(data.why)
    for c in unknown:
        reasons.append(f"live check {c.id} unknown: {c.message}")
    if verdict is Verdict.READY:
        reasons.append(
            f"no reported failure would have blocked mail; {data.why}; every live check passes"
        )
    notes = tuple(
        f"{j.failure.organization}: {j.failure.sessions} x {j.failure.result_type}"
        f"{' at ' + j.failure.mx_host if j.failure.mx_host else ''}: {j.why}"
        for j in judged
        if j.impact is not Impact.BLOCKING
    )
    if evidence.truncated:
        notes = (
            *notes,
            f"only the {len(evidence.failures)} largest failure groups were read; smaller "
            "ones were left out",
        )
    text = format_policy(candidate)
    new_id = policy_id(text)
    current = live.sts_id
    published_already = published is not None and published == candidate
    if published_already and current is not None:
        new_id = current  # nothing to publish: the id stays
    elif current == new_id:
        new_id = policy_id(text + current)  # the id must change for senders to refetch
    return Advice(
        domain=evidence.domain,
        verdict=verdict,
        reasons=tuple(reasons),
        candidate=candidate,
        policy_text=text,
        new_id=new_id,
        current_id=current,
        judged=judged,
        live=checks,
        data=data,
        steps=_steps(
            evidence.domain, verdict, candidate, text, new_id, blockers, bool(published_already)
        ),
        exposure=exposure(candidate),
        notes=notes,
    )


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
