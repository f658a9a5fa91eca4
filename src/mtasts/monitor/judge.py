"""The stages of ``mtasts advise``'s judgement, each on its own: every reported failure
group judged under the candidate (:func:`judge_failure`, rules 1-8 of
:mod:`mtasts.monitor.advise`), the live checks that must pass before the switch
(:func:`live_checks`, also :func:`enforce_blockers` for ``policy generate``), and whether
the evidence is enough (:func:`data_check`). :func:`mtasts.monitor.advise.advise`
assembles the verdict from them.

Pure: no I/O, no clock (``now`` is an argument).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from mtasts.monitor.evidence import Criteria, Evidence, FailureGroup
from mtasts.monitor.snapshot import MxState, Snapshot
from mtasts.results import DANE_RESULTS, STS_RESULTS
from mtasts.rfcnames import policy_host, policy_url, sts_record_name
from mtasts.sts.policy import Mode, Policy

_DAY = timedelta(days=1)


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
