"""What ``mtasts monitor`` raises about a domain: conditions derived from the latest
check, the previous one, and the policy first seen with the current TXT ``id``.

A condition is active while its cause lasts; the monitor hands the whole active set to
the alerts (which notify once per raise and once per clear), and :func:`transitions`
says what changed since the previous check for logs and ``--json``.

Conditions (key: severity, active while ...); docs/monitor.md has the same table:

- ``mx.drift``: critical under enforce, else warning; an MX that DNS lists matches no
  ``mx`` line of the published policy.
- ``policy.id-unchanged``: critical under enforce, else warning; the policy served
  differs from the one first seen with the same TXT ``id``, so senders that cached the
  old one keep it for up to its max_age (RFC 8461 §3.1, §5.1).
- ``sts-record.gone``: critical; no usable ``_mta-sts`` TXT record (missing, several,
  invalid).
- ``policy-host.gone``: critical; the policy host serves no valid policy (no answer, TLS
  or certificate failure, bad status or Content-Type, a policy that does not parse).
- ``tlsrpt-record.gone``: warning; no ``_smtp._tls`` TXT record.
- ``cert.expiry:<host>``: warning below ``cert_days[0]`` days left, critical below
  ``cert_days[-1]`` or once expired; the policy host's and every MX's certificate.
- ``mx.starttls:<host>``, ``mx.tls12:<host>``, ``mx.cert:<host>``: critical; an MX does
  not offer STARTTLS, does not speak TLS 1.2+, or has an untrusted, expired or
  wrong-name certificate.
- ``check.incomplete``: warning; the check did not finish (timeout, DNS failure). The
  previous check's conditions are kept meanwhile: nothing clears for want of an answer.

Pure: no I/O, no clock (``now`` is an argument).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mtasts.monitor.snapshot import Snapshot
from mtasts.rfcnames import policy_host, policy_url, sts_record_name, tlsrpt_record_name
from mtasts.sts.policy import Mode, Policy

WARNING = "warning"
CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Condition:
    """One active problem of one domain; ``key`` is stable (alert rules key on it)."""

    key: str
    domain: str
    severity: str  # "warning" | "critical"
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "domain": self.domain,
            "severity": self.severity,
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Condition:
        return cls(
            str(data["key"]), str(data["domain"]), str(data["severity"]), str(data["summary"])
        )


def _by_mode(policy: Policy | None) -> str:
    return CRITICAL if policy is not None and policy.mode is Mode.ENFORCE else WARNING


def _same_policy(a: str, b: str) -> bool:
    """Equal as policies (line ends and trailing blanks aside)."""

    def norm(text: str) -> list[str]:
        return [line.rstrip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]

    return norm(a) == norm(b)


def days_left(not_after: datetime, now: datetime) -> int:
    return math.floor((not_after - now) / timedelta(days=1))


def _certs(snap: Snapshot) -> list[tuple[str, datetime]]:
    out = [(m.host, m.not_after) for m in snap.mx if m.not_after is not None]
    if snap.policy_host_not_after is not None:
        out.append((policy_host(snap.domain), snap.policy_host_not_after))
    return [(h, t) for h, t in out if t is not None]


def conditions(
    current: Snapshot,
    previous: Snapshot | None = None,
    *,
    previous_conditions: Sequence[Condition] = (),
    first_policy_for_id: str | None = None,
    cert_days: Sequence[int] = (30, 14, 7),
    now: datetime,
) -> tuple[Condition, ...]:
    """The conditions active after the check that gave ``current``."""
    d = current.domain
    if not current.checked or not current.mx_known:
        why = ", ".join(current.problems) or "no answer"
        kept = tuple(c for c in previous_conditions if c.key != "check.incomplete")
        return (
            *kept,
            Condition(
                "check.incomplete",
                d,
                WARNING,
                f"the check of {d} did not finish ({why}); the previous conditions are kept",
            ),
        )
    out: list[Condition] = []
    policy = current.policy
    if policy is not None:
        uncovered = [h for h in current.mx_hosts if not policy.matches_mx(h)]
        if uncovered:
            change = ""
            was, now_set = sorted(previous.mx_hosts) if previous else [], sorted(current.mx_hosts)
            if previous is not None and previous.mx_known and was != now_set:
                change = (
                    f"; the MX set changed from {', '.join(was) or '(none)'} to "
                    f"{', '.join(now_set) or '(none)'}"
                )
            out.append(
                Condition(
                    "mx.drift",
                    d,
                    _by_mode(policy),
                    f"MX {', '.join(uncovered)} of {d} matches no mx line of the policy (mode "
                    f"{policy.mode.value}){change}: add it to the policy and change the id",
                )
            )
    if (
        current.policy_text is not None
        and first_policy_for_id is not None
        and not _same_policy(current.policy_text, first_policy_for_id)
    ):
        age = policy.max_age if policy is not None else 0
        out.append(
            Condition(
                "policy.id-unchanged",
                d,
                _by_mode(policy),
                f"the policy of {d} changed but the _mta-sts id is still {current.sts_id}: "
                f"senders that cached the old policy keep it for up to {age} s. Publish a "
                "new id.",
            )
        )
    if current.sts_absent or (current.sts_id is None and not current.sts_unknown):
        had = previous is not None and previous.sts_record is not None
        if current.sts_absent:
            what = "disappeared" if had else "is missing"
        else:
            bad = [p for p in current.problems if p.startswith("sts-record.")]
            what = f"is unusable ({', '.join(bad) or 'invalid'})"
        out.append(
            Condition(
                "sts-record.gone",
                d,
                CRITICAL,
                f"the {sts_record_name(d)} TXT record {what}: senders stop fetching the policy "
                "once their cached copy expires",
            )
        )
    if current.policy_host_down and not current.sts_absent:
        out.append(
            Condition(
                "policy-host.gone",
                d,
                CRITICAL,
                f"{policy_url(d)} serves no valid policy ({', '.join(current.policy_host_down)})",
            )
        )
    if current.tlsrpt_absent:
        had = previous is not None and previous.tlsrpt_record is not None
        out.append(
            Condition(
                "tlsrpt-record.gone",
                d,
                WARNING,
                f"the {tlsrpt_record_name(d)} TXT record {'disappeared' if had else 'is missing'}: "
                "no TLS reports arrive",
            )
        )
    warn_days, crit_days = cert_days[0], cert_days[-1]
    for host, not_after in sorted(_certs(current)):
        left = days_left(not_after, now)
        if left >= warn_days:
            continue
        severity = CRITICAL if left < crit_days or left < 0 else WARNING
        when = "expired" if left < 0 else f"expires in {left} day(s)"
        threshold = next((t for t in reversed(cert_days) if left < t), warn_days)
        out.append(
            Condition(
                f"cert.expiry:{host}",
                d,
                severity,
                f"the certificate of {host} {when} ({not_after:%Y-%m-%d}; threshold "
                f"{threshold} days): renew it",
            )
        )
    for m in current.mx:
        if m.starttls is False:
            before = previous.mx_state(m.host) if previous is not None else None
            offered = before is not None and before.starttls
            stopped = " stopped offering" if offered else " does not offer"
            out.append(
                Condition(f"mx.starttls:{m.host}", d, CRITICAL, f"MX {m.host}{stopped} STARTTLS")
            )
        if m.tls12 is False:
            out.append(
                Condition(f"mx.tls12:{m.host}", d, CRITICAL, f"MX {m.host} does not speak TLS 1.2+")
            )
        if m.cert_ok is False:
            out.append(
                Condition(
                    f"mx.cert:{m.host}",
                    d,
                    CRITICAL,
                    f"the certificate of MX {m.host} is untrusted, expired or for another "
                    f"name ({', '.join(m.problems)})",
                )
            )
    return tuple(out)


def transitions(
    before: Iterable[Condition], after: Iterable[Condition]
) -> tuple[tuple[Condition, ...], tuple[Condition, ...]]:
    """(raised, cleared): conditions whose key appeared, and those whose key went away.
    A change of severity under the same key counts as raised again."""
    old = {c.key: c for c in before}
    new = {c.key: c for c in after}
    raised = tuple(c for k, c in new.items() if k not in old or old[k].severity != c.severity)
    cleared = tuple(c for k, c in old.items() if k not in new)
    return raised, cleared
