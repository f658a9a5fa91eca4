"""The ACME manager's own view of a policy host certificate (``serve policy --acme``):
renewal time, failures in a row and the last error, read from its state directory.

The policy-host TLS checks see the certificate from outside (chain, name, expiry); this
adds what only the server knows: that renewal is failing before the expiry shows it.

Pure: the status record in, findings out.
"""

from __future__ import annotations

from collections.abc import Mapping

from mtasts.check.finding import EvidenceValue, Finding, Severity
from mtasts.rfc3339 import utc_text

ID = "policy-host.acme"


def _when(ts: object) -> str:
    if not isinstance(ts, int | float) or ts <= 0:
        return "-"
    return utc_text(ts) or "-"


def check_acme_status(name: str, status: Mapping[str, object]) -> list[Finding]:
    """One finding from the ``certs/<name>.json`` status the manager writes."""
    failures = status.get("failures")
    failures = failures if isinstance(failures, int) else 0
    error = str(status.get("last_error") or "")
    evidence: dict[str, EvidenceValue] = {
        "host": name,
        "state": str(status.get("state") or "missing"),
        "not_after": _when(status.get("not_after")),
        "renew_at": _when(status.get("renew_at")),
        "failures": failures,
        "next_try": _when(status.get("next_try")),
    }
    if failures:
        return [
            Finding(
                ID,
                Severity.WARNING,
                f"the certificate of {name} could not be obtained or renewed "
                f"{failures} time(s) in a row: {error}. Next try {evidence['next_try']}; "
                f"the current one expires {evidence['not_after']}.",
                tuple(evidence.items()),
            )
        ]
    if not status.get("not_after"):
        return [
            Finding(
                ID,
                Severity.WARNING,
                f"no certificate has been obtained for {name} yet",
                tuple(evidence.items()),
            )
        ]
    return [
        Finding(
            ID,
            Severity.OK,
            f"the certificate of {name} is managed by ACME: valid until "
            f"{evidence['not_after']}, renewed from {evidence['renew_at']}",
            tuple(evidence.items()),
        )
    ]
