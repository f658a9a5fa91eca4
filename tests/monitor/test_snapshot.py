"""Snapshots: the facts of one `mtasts check` report, read from its findings' evidence."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mtasts.check.finding import DomainReport, Finding, Severity, Status
from mtasts.monitor.snapshot import MxState, Snapshot, snapshot_of

OK, WARN, CRIT, UNKN = Severity.OK, Severity.WARNING, Severity.CRITICAL, Severity.UNKNOWN
AFTER = "2027-01-10T00:00:00+00:00"
POLICY = "version: STSv1\r\nmode: testing\r\nmx: mx1.d.test\r\nmx: mx2.d.test\r\nmax_age: 86400\r\n"


def f(fid: str, severity: Severity = OK, **evidence: object) -> Finding:
    return Finding.of(fid, severity, fid, **evidence)  # type: ignore[arg-type]


def test_facts_from_findings() -> None:
    report = DomainReport(
        "d.test",
        (
            f("sts-record.valid", record="v=STSv1; id=abc123"),
            f("policy-host.tls", host="mta-sts.d.test", not_after=AFTER, tls_version="TLSv1.3"),
            f("policy.valid", policy=POLICY),
            f("mx.covered", mx_hosts=("mx1.d.test", "mx2.d.test", "mx3.d.test")),
            f("mx.tls", host="mx1.d.test", not_after=AFTER, tls_version="TLSv1.3"),
            f(
                "mx.tls",
                host="mx1.d.test",
                not_after="2026-12-20T00:00:00+00:00",
                tls_version="TLSv1.2",
            ),
            f("mx.starttls", CRIT, host="mx2.d.test"),
            f("mx.cert-name", CRIT, host="mx3.d.test", not_after=AFTER),
            f("tlsrpt-record.missing", WARN),
        ),
    )
    snap = snapshot_of(report)
    assert snap.sts_id == "abc123"
    assert snap.policy is not None
    assert snap.mx_hosts == ("mx1.d.test", "mx2.d.test", "mx3.d.test")
    mx1, mx2, mx3 = snap.mx
    assert (mx1.starttls, mx1.tls12, mx1.cert_ok) == (True, True, True)
    assert mx1.not_after == datetime(2026, 12, 20, tzinfo=UTC)  # the soonest address
    assert (mx2.starttls, mx2.cert_ok, mx2.problems) == (False, None, ("mx.starttls",))
    assert (mx3.starttls, mx3.cert_ok) == (True, False)
    assert snap.policy_host_not_after == datetime(2027, 1, 10, tzinfo=UTC)
    assert snap.tlsrpt_absent
    assert not snap.sts_absent
    assert snap.status is Status.CRITICAL
    assert Snapshot.from_json(snap.to_json()) == snap


def test_old_tls_and_unchecked_domains() -> None:
    old = snapshot_of(
        DomainReport("d.test", (f("mx.tls-version", CRIT, host="mx.d.test", tls_version="TLSv1"),))
    )
    assert old.mx == (MxState("mx.d.test", True, False, None, None, ("mx.tls-version",)),)
    timeout = snapshot_of(DomainReport("d.test", (f("check.timeout", UNKN),)))
    assert (timeout.checked, timeout.mx_known, timeout.mx) == (False, False, ())
    gone = snapshot_of(
        DomainReport(
            "d.test",
            (
                f("sts-record.missing", CRIT),
                f("policy-host.dns", CRIT, host="mta-sts.d.test"),
                f("mx.dns-error", UNKN, domain="d.test"),
            ),
        )
    )
    assert gone.sts_absent
    assert gone.policy_host_down == ("policy-host.dns",)
    assert not gone.mx_known


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["mx.tls", "mx.starttls", "mx.cert-expired", "mx.tls-version", "mx.unreachable"]
            ),
            st.sampled_from(["a.d.test", "b.d.test"]),
            st.sampled_from(["TLSv1.2", "TLSv1.3", "TLSv1", ""]),
        ),
        max_size=8,
    )
)
def test_json_round_trip(items: list[tuple[str, str, str]]) -> None:
    report = DomainReport(
        "d.test",
        tuple(f(i, OK if i == "mx.tls" else CRIT, host=h, tls_version=v) for i, h, v in items),
    )
    snap = snapshot_of(report)
    assert Snapshot.from_json(snap.to_json()) == snap
    assert set(snap.mx_hosts) == {h for _, h, _ in items}
