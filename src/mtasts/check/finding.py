"""Findings: what ``mtasts check`` says about one domain, and the status they add up to.

A finding has a stable ``id`` (``area.what``, never renamed once shipped: monitoring rules
and scripts key on it), a severity, a message written for the domain's mail administrator,
the evidence it rests on (raw record text, HTTP status, certificate facts ...) and the RFC
section that makes it a problem.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum

# An evidence value: text, a number, a flag, or a list of texts (e.g. the TXT records seen).
EvidenceValue = str | int | float | bool | None | tuple[str, ...]


class Severity(StrEnum):
    """How bad a finding is.

    ``unknown`` means "could not be determined" (DNS timeout, an MX that never answered):
    the monitoring-plugin convention keeps that apart from both OK and CRITICAL.
    """

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class Status(IntEnum):
    """A domain's overall status; the value is the monitoring-plugin exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def label(self) -> str:
        return self.name


# Which status a severity raises a domain to, and the order in which statuses win.
# CRITICAL beats UNKNOWN: a domain with a proven failure is CRITICAL even when some other
# part could not be checked; UNKNOWN beats WARNING because the unchecked part may be worse.
_STATUS_OF = {
    Severity.OK: Status.OK,
    Severity.WARNING: Status.WARNING,
    Severity.UNKNOWN: Status.UNKNOWN,
    Severity.CRITICAL: Status.CRITICAL,
}
_RANK = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation about a domain."""

    id: str
    severity: Severity
    message: str
    evidence: tuple[tuple[str, EvidenceValue], ...] = ()
    rfc: str = ""

    @classmethod
    def of(
        cls,
        id: str,
        severity: Severity,
        message: str,
        rfc: str = "",
        **evidence: EvidenceValue,
    ) -> Finding:
        """Build a finding with keyword evidence (``Finding.of("x", OK, "...", record=txt)``)."""
        return cls(id, severity, message, tuple(evidence.items()), rfc)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "id": self.id,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": {k: list(v) if isinstance(v, tuple) else v for k, v in self.evidence},
        }
        if self.rfc:
            out["rfc"] = self.rfc
        return out

    def get(self, key: str) -> EvidenceValue:
        """The evidence value for ``key`` (``None`` when absent)."""
        return dict(self.evidence).get(key)


def overall_status(findings: Iterable[Finding]) -> Status:
    """The status of a domain: the worst severity among its findings (OK when none)."""
    worst = Status.OK
    for finding in findings:
        status = _STATUS_OF[finding.severity]
        if _RANK[status] > _RANK[worst]:
            worst = status
    return worst


def worst_status(statuses: Iterable[Status]) -> Status:
    """The exit status for several domains: the worst of them."""
    worst = Status.OK
    for status in statuses:
        if _RANK[status] > _RANK[worst]:
            worst = status
    return worst


@dataclass(frozen=True, slots=True)
class DomainReport:
    """Everything ``mtasts check`` found about one domain."""

    domain: str
    findings: tuple[Finding, ...]

    @property
    def status(self) -> Status:
        return overall_status(self.findings)

    def to_json(self) -> dict[str, object]:
        return {
            "domain": self.domain,
            "status": self.status.name,
            "exit_code": int(self.status),
            "findings": [f.to_json() for f in self.findings],
        }

    def ids(self, *severities: Severity) -> tuple[str, ...]:
        """The ids of the findings with one of ``severities`` (all findings when none given)."""
        return tuple(f.id for f in self.findings if not severities or f.severity in severities)


def evidence_dict(finding: Finding) -> Mapping[str, EvidenceValue]:
    return dict(finding.evidence)
