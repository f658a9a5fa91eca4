"""A domain's live set-up as facts, read from one ``mtasts check`` report.

``mtasts check`` says what is wrong; ``monitor`` and ``advise`` also need what *is*: the
MX hosts DNS lists, the TXT ``id``, the policy text, which MX offers STARTTLS and TLS 1.2,
when each certificate expires. All of it is already in the findings' evidence (the same
evidence ``--json`` prints), so a :class:`Snapshot` is derived from a
:class:`~mtasts.check.finding.DomainReport` and never needs a second probe. It is what
the monitor keeps as history (:meth:`Snapshot.to_json` / :meth:`Snapshot.from_json`).

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mtasts.check.finding import DomainReport, Finding, Status
from mtasts.errors import MtastsError
from mtasts.rfc3339 import utc_text
from mtasts.sts.policy import Policy, parse_policy
from mtasts.sts.record import parse_sts_record

_TLS12 = ("TLSv1.2", "TLSv1.3")
# Findings after which nothing about the domain is known.
UNCHECKED = frozenset({"domain.not-found", "domain.invalid", "check.timeout", "check.error"})
_STS_ABSENT = frozenset(
    {"sts-record.missing", "sts-record.wrong-name", "sts-record.dangling-cname"}
)
_CERT_BAD = frozenset({"cert-expired", "cert-untrusted", "cert-name", "tls-handshake"})


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _soonest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


@dataclass(frozen=True, slots=True)
class MxState:
    """One MX host as probed (over all its probed addresses: the worst answer wins).

    ``starttls`` and ``tls12`` are ``None`` when no address could be asked (unreachable,
    no address); ``cert_ok`` means a trusted certificate for the MX name at every address
    that did TLS; ``not_after`` is the soonest expiry seen.
    """

    host: str
    starttls: bool | None = None
    tls12: bool | None = None
    cert_ok: bool | None = None
    not_after: datetime | None = None
    problems: tuple[str, ...] = ()  # ids of its findings that are not OK

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "starttls": self.starttls,
            "tls12": self.tls12,
            "cert_ok": self.cert_ok,
            "not_after": utc_text(self.not_after),
            "problems": list(self.problems),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MxState:
        return cls(
            host=str(data["host"]),
            starttls=data.get("starttls"),
            tls12=data.get("tls12"),
            cert_ok=data.get("cert_ok"),
            not_after=_when(data.get("not_after")),
            problems=tuple(data.get("problems") or ()),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one check saw of a domain.

    ``None`` for a record or the policy means "not seen"; the ``*_absent`` flags say the
    check proved it absent (a DNS timeout is neither: ``*_unknown``).
    """

    domain: str
    status: Status
    checked: bool = True  # False: the check itself failed (timeout, bad name, NXDOMAIN)
    mx_known: bool = True
    mx: tuple[MxState, ...] = ()
    sts_record: str | None = None
    sts_absent: bool = False
    sts_unknown: bool = False
    policy_text: str | None = None
    # why senders get no valid policy (critical policy-host.* and policy.* finding ids)
    policy_host_down: tuple[str, ...] = ()
    policy_host_not_after: datetime | None = None
    tlsrpt_record: str | None = None
    tlsrpt_absent: bool = False
    tlsrpt_unknown: bool = False
    problems: tuple[str, ...] = ()  # ids of every finding that is not OK

    @property
    def sts_id(self) -> str | None:
        record = parse_sts_record(self.sts_record) if self.sts_record else None
        return record.id if record is not None else None

    @property
    def policy(self) -> Policy | None:
        if self.policy_text is None:
            return None
        try:
            return parse_policy(self.policy_text)
        except MtastsError:
            return None

    @property
    def mx_hosts(self) -> tuple[str, ...]:
        return tuple(m.host for m in self.mx)

    def mx_state(self, host: str) -> MxState | None:
        return next((m for m in self.mx if m.host == host), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "status": self.status.name,
            "checked": self.checked,
            "mx_known": self.mx_known,
            "mx": [m.to_json() for m in self.mx],
            "sts_record": self.sts_record,
            "sts_id": self.sts_id,
            "sts_absent": self.sts_absent,
            "sts_unknown": self.sts_unknown,
            "policy_text": self.policy_text,
            "policy_host_down": list(self.policy_host_down),
            "policy_host_not_after": utc_text(self.policy_host_not_after),
            "tlsrpt_record": self.tlsrpt_record,
            "tlsrpt_absent": self.tlsrpt_absent,
            "tlsrpt_unknown": self.tlsrpt_unknown,
            "problems": list(self.problems),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        return cls(
            domain=str(data["domain"]),
            status=Status[str(data["status"])],
            checked=bool(data.get("checked", True)),
            mx_known=bool(data.get("mx_known", True)),
            mx=tuple(MxState.from_json(m) for m in data.get("mx") or ()),
            sts_record=data.get("sts_record"),
            sts_absent=bool(data.get("sts_absent")),
            sts_unknown=bool(data.get("sts_unknown")),
            policy_text=data.get("policy_text"),
            policy_host_down=tuple(data.get("policy_host_down") or ()),
            policy_host_not_after=_when(data.get("policy_host_not_after")),
            tlsrpt_record=data.get("tlsrpt_record"),
            tlsrpt_absent=bool(data.get("tlsrpt_absent")),
            tlsrpt_unknown=bool(data.get("tlsrpt_unknown")),
            problems=tuple(data.get("problems") or ()),
        )


def _mx_hosts(findings: tuple[Finding, ...]) -> list[str]:
    hosts: list[str] = []
    for f in findings:
        if f.id == "mx.covered":
            listed = f.get("mx_hosts")
            hosts += list(listed) if isinstance(listed, tuple) else []
        elif f.id.startswith("mx.") and isinstance(f.get("host"), str):
            hosts.append(str(f.get("host")))
    return list(dict.fromkeys(hosts))


def _mx_state(host: str, findings: list[Finding]) -> MxState:
    starttls: bool | None = None
    tls12: bool | None = None
    cert_ok: bool | None = None
    not_after: datetime | None = None
    problems: list[str] = []
    for f in findings:
        what = f.id.partition(".")[2]
        if f.severity.value != "ok":
            problems.append(f.id)
        if what == "starttls":
            starttls = False
            continue
        if what not in _CERT_BAD | {"tls", "tls-version", "cert-expiry"}:
            continue  # not-covered, unreachable, dns ...: nothing about TLS
        starttls = starttls if starttls is False else True
        version = f.get("tls_version")
        if what == "tls-version":
            tls12 = False
        elif isinstance(version, str) and version and tls12 is not False:
            tls12 = version in _TLS12
        elif what != "tls-handshake" and tls12 is None:
            tls12 = True  # a verified handshake: the probe only offers TLS 1.2+
        if what in _CERT_BAD:
            cert_ok = False
        elif cert_ok is None and what in ("tls", "cert-expiry"):
            cert_ok = True
        not_after = _soonest(not_after, _when(f.get("not_after")))
    return MxState(host, starttls, tls12, cert_ok, not_after, tuple(dict.fromkeys(problems)))


def _why_no_policy(findings: tuple[Finding, ...]) -> tuple[str, ...]:
    """The critical findings that keep senders from a valid policy (DNS, connect, TLS
    and certificate, status, Content-Type, size, syntax). The checker reads a policy
    behind a wrong-name certificate; senders do not."""
    return tuple(
        sorted(
            {
                f.id
                for f in findings
                if f.id.startswith(("policy-host.", "policy.")) and f.severity.value == "critical"
            }
        )
    )


def snapshot_of(report: DomainReport) -> Snapshot:
    """The facts of one check report (see the module docstring)."""
    findings = report.findings
    ids = {f.id for f in findings}
    problems = tuple(dict.fromkeys(f.id for f in findings if f.severity.value != "ok"))
    if ids & UNCHECKED:
        return Snapshot(
            report.domain, report.status, checked=False, mx_known=False, problems=problems
        )
    mx_known = not any(f.id == "mx.dns-error" and f.get("host") is None for f in findings)
    by_host: dict[str, list[Finding]] = {}
    for f in findings:
        host = f.get("host")
        if f.id.startswith("mx.") and isinstance(host, str):
            by_host.setdefault(host, []).append(f)
    mx = tuple(_mx_state(h, by_host.get(h, [])) for h in _mx_hosts(findings))

    def evidence(fid: str, key: str) -> str | None:
        for f in findings:
            value = f.get(key)
            if f.id == fid and isinstance(value, str):
                return value
        return None

    host_after: datetime | None = None
    for f in findings:
        if f.id.startswith("policy-host."):
            host_after = _soonest(host_after, _when(f.get("not_after")))
    return Snapshot(
        domain=report.domain,
        status=report.status,
        mx_known=mx_known,
        mx=mx,
        sts_record=evidence("sts-record.valid", "record"),
        sts_absent=bool(ids & _STS_ABSENT),
        sts_unknown="sts-record.dns-error" in ids,
        policy_text=evidence("policy.valid", "policy"),
        policy_host_down=_why_no_policy(findings),
        policy_host_not_after=host_after,
        tlsrpt_record=evidence("tlsrpt-record.valid", "record"),
        tlsrpt_absent="tlsrpt-record.missing" in ids or "tlsrpt-record.wrong-name" in ids,
        tlsrpt_unknown="tlsrpt-record.dns-error" in ids,
        problems=problems,
    )
