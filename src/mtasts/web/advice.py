"""What the dashboard's advise page knows of a domain without probing it: the policy and
record id it publishes now (:class:`~mtasts.web.livepolicy.Published`, fetched and cached
for the domain page) as a :class:`~mtasts.monitor.snapshot.Snapshot` whose live check did
not run. :func:`mtasts.monitor.advise.advise` then judges the received reports against
the candidate (the published policy with mode enforce) and reports the live checks as
unknown: the dashboard never opens SMTP connections to a domain's MX hosts; ``mtasts
advise DOMAIN`` does.

Pure module.
"""

from __future__ import annotations

from mtasts.check.finding import Status
from mtasts.monitor.snapshot import Snapshot

NOT_RUN = "not run by the dashboard: run `mtasts advise {domain}` for the live checks"


def snapshot_from(domain: str, status: str, record_id: str | None, text: str | None) -> Snapshot:
    """The snapshot for :func:`~mtasts.monitor.advise.advise` from what ``Published``
    says (status ``sts``, ``none`` or ``error``): the published policy (if any), the
    record id, and a live check that did not run."""
    return Snapshot(
        domain=domain,
        status=Status.UNKNOWN,
        checked=False,
        mx_known=False,
        sts_record=f"v=STSv1; id={record_id}" if record_id else None,
        sts_absent=status == "none",
        sts_unknown=status == "error",
        policy_text=text if status == "sts" else None,
        problems=(NOT_RUN.format(domain=domain),),
    )
