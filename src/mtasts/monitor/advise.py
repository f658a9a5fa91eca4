"""``mtasts advise``: would a candidate policy (usually: today's policy with ``mode: enforce``)
have stopped anyone's mail? The decision, as data.

Inputs: what the received TLS-RPT reports of the last days say (:class:`Evidence`, built
by :func:`~mtasts.monitor.evidence.evidence_from_rows` from the rows
:mod:`mtasts.monitor.reported` reads), the live set-up
(:class:`~mtasts.monitor.snapshot.Snapshot` of one ``mtasts check``), the
candidate :class:`~mtasts.sts.policy.Policy` and the :class:`Criteria`. Output: an
:class:`Advice` with the verdict READY / NOT READY / CANNOT TELL, each reported failure
judged, the live checks that must pass, and the steps. The evidence and criteria live in
:mod:`mtasts.monitor.evidence`, each stage of the judgement in :mod:`mtasts.monitor.judge`;
this module assembles the verdict.

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
5. A reporter on :data:`~mtasts.monitor.evidence.KNOWN_MISREPORTERS` for this result type: *noise*.
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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from mtasts.errors import PolicyError
from mtasts.monitor.evidence import Criteria, Evidence
from mtasts.monitor.judge import (
    DataCheck,
    Impact,
    Judged,
    LiveCheck,
    Outcome,
    data_check,
    judge_failure,
    live_checks,
)
from mtasts.monitor.snapshot import Snapshot
from mtasts.publish.generate import DEFAULT_MAX_AGE, patterns_for, policy_id
from mtasts.rfcnames import policy_url, sts_record_name
from mtasts.sts.policy import Mode, Policy, format_policy


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


# --- the verdict ----------------------------------------------------------------------


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
