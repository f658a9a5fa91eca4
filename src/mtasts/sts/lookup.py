"""The answer to "what MTA-STS policy applies to this domain?": a :class:`PolicyLookup` value.

Pure: no I/O. The resolver turns every outcome, failures included, into one of these
values, because a failure is ordinary data for the cache, for delivery and for TLS-RPT.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mtasts.errors import Notice
from mtasts.results import PolicyType, ResultType
from mtasts.rfc3339 import utc_text
from mtasts.sts.policy import Mode, Policy


class LookupStatus(StrEnum):
    """What the lookup determined about the domain."""

    #: A valid, unexpired policy applies (fetched now or from the cache); see ``policy.mode``.
    STS = "sts"
    #: Determined: the domain publishes no usable ``_mta-sts`` record (RFC 8461 §3.1).
    NO_POLICY = "no-policy"
    #: The domain publishes a record but its policy could not be fetched or is invalid,
    #: and no cached policy is left: deliver as if it had none (RFC 8461 §3.3) and report
    #: ``result_type`` (RFC 8461 §6).
    FAILED = "failed"
    #: Nothing could be determined (DNS failure with nothing cached): try again later.
    UNDETERMINED = "undetermined"


class Source(StrEnum):
    """Where the answer came from."""

    FETCHED = "fetched"
    CACHE = "cache"


@dataclass(frozen=True, slots=True)
class PolicyLookup:
    """One domain's MTA-STS state as seen by a sender at one moment.

    ``result_type`` is set only when a policy exists but could not be used (status
    ``FAILED``). ``refresh_error`` is set when a cached policy is still applied although
    the last attempt to refresh it failed (RFC 8461 §6 asks senders to report that too,
    unless the cached mode is ``none``). ``cause`` keeps the failure in words.
    Times are POSIX seconds.
    """

    domain: str
    status: LookupStatus
    source: Source
    policy: Policy | None = None
    record_id: str | None = None
    raw_text: str | None = None
    result_type: ResultType | None = None
    refresh_error: ResultType | None = None
    detail: str = ""
    cause: Notice | None = None
    fetched_at: float | None = None
    expires_at: float | None = None

    @property
    def determined(self) -> bool:
        """Whether the sender can act on this answer (everything except UNDETERMINED)."""
        return self.status is not LookupStatus.UNDETERMINED

    @property
    def policy_type(self) -> PolicyType:
        """The TLS-RPT ``policy-type`` (RFC 8460 §4.4) for sessions under this lookup."""
        if self.status in (LookupStatus.STS, LookupStatus.FAILED):
            return PolicyType.STS
        return PolicyType.NO_POLICY_FOUND

    @property
    def mode(self) -> Mode | None:
        return self.policy.mode if self.policy is not None else None

    def to_json(self) -> dict[str, Any]:
        """The ``mtasts query --json`` object (snake_case keys; see docs/coverage/resolver.md)."""
        policy = self.policy
        return {
            "domain": self.domain,
            "status": str(self.status),
            "policy_type": str(self.policy_type),
            "mode": str(policy.mode) if policy is not None else None,
            "id": self.record_id,
            "mx": [str(p) for p in policy.mx] if policy is not None else [],
            "unmatchable_mx": list(policy.unmatchable_mx) if policy is not None else [],
            "max_age": policy.max_age if policy is not None else None,
            "result_type": str(self.result_type) if self.result_type is not None else None,
            "refresh_error": (str(self.refresh_error) if self.refresh_error is not None else None),
            "detail": self.detail,
            "cause": self.cause.to_json() if self.cause is not None else None,
            "source": str(self.source),
            "fetched_at": utc_text(self.fetched_at),
            "expires_at": utc_text(self.expires_at),
            "policy_text": self.raw_text,
            # What the sender's reading tolerated in the policy (issue 16): it applies,
            # but deviates from RFC 8461 §3.2; `mtasts lint` reports these as errors.
            "warnings": [n.to_json() for n in policy.repairs] if policy is not None else [],
        }
