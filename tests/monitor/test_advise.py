"""The enforce-readiness decision (mtasts.monitor.advise): tables of evidence and live
set-ups with the verdict each must give, and properties that hold for any evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.check.finding import Status
from mtasts.errors import PolicyError
from mtasts.monitor.advise import Advice, ExitCode, Verdict, advise, candidate_policy
from mtasts.monitor.evidence import (
    Criteria,
    Evidence,
    FailureGroup,
    Reporter,
    evidence_from_rows,
    with_misreporters,
)
from mtasts.monitor.judge import Impact, Outcome
from mtasts.monitor.snapshot import MxState, Snapshot
from mtasts.publish.generate import policy_id
from mtasts.sts.policy import Mode, parse_policy

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
UNTIL = NOW.date()
SINCE = UNTIL - timedelta(days=13)
FAR = NOW + timedelta(days=80)
TESTING = (
    "version: STSv1\r\nmode: testing\r\nmx: mx1.d.test\r\nmx: mx2.d.test\r\nmax_age: 604800\r\n"
)


def mx(host: str, **changes: object) -> MxState:
    base = MxState(host, starttls=True, tls12=True, cert_ok=True, not_after=FAR)
    return replace(base, **changes)  # type: ignore[arg-type]


def live(**changes: object) -> Snapshot:
    base = Snapshot(
        domain="d.test",
        status=Status.OK,
        mx=(mx("mx1.d.test"), mx("mx2.d.test")),
        sts_record="v=STSv1; id=20261101",
        policy_text=TESTING,
        policy_host_not_after=FAR,
        tlsrpt_record="v=TLSRPTv1; rua=mailto:r@d.test",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def days(n: int) -> tuple[str, ...]:
    return tuple((UNTIL - timedelta(days=i)).isoformat() for i in range(n))


GOOGLE = Reporter("Google Inc.", 12, 900, 900, 0, days(12), ("testing",))
MICROSOFT = Reporter("Microsoft Corporation", 10, 400, 400, 0, days(10), ("testing",))


def fail(
    kind: str,
    n: int,
    host: str | None = "mx2.d.test",
    org: str = "Google Inc.",
    last: int = 0,
    first: int = 5,
    ptype: str = "sts",
) -> FailureGroup:
    return FailureGroup(
        org,
        kind,
        host,
        ptype,
        n,
        (UNTIL - timedelta(days=first)).isoformat(),
        (UNTIL - timedelta(days=last)).isoformat(),
    )


def evidence(
    *failures: FailureGroup, reporters: tuple[Reporter, ...] = (GOOGLE, MICROSOFT)
) -> Evidence:
    return Evidence("d.test", SINCE, UNTIL, reporters, failures)


def run(ev: Evidence, snap: Snapshot | None = None, **candidate: object) -> Advice:
    snap = snap or live()
    pol = candidate_policy(snap.policy, **candidate)  # type: ignore[arg-type]
    return advise(ev, snap, pol, now=NOW)


# (name, evidence, live set-up, verdict, exit code, impacts of the failures in order)
CASES = [
    ("clean: two reporters, two weeks, no failure", evidence(), live(), Verdict.READY, 0, []),
    (
        "no reports at all: never safe",
        evidence(reporters=()),
        live(),
        Verdict.CANNOT_TELL,
        3,
        [],
    ),
    (
        "only no-policy-found sessions: nothing was validated",
        evidence(reporters=(replace(GOOGLE, sts_sessions=0, modes=()),)),
        live(),
        Verdict.CANNOT_TELL,
        3,
        [],
    ),
    (
        "too few sessions",
        evidence(reporters=(replace(GOOGLE, sessions=20, sts_sessions=20),)),
        live(),
        Verdict.CANNOT_TELL,
        3,
        [],
    ),
    (
        "reports on too few days",
        evidence(reporters=(replace(GOOGLE, days=days(3)),)),
        live(),
        Verdict.CANNOT_TELL,
        3,
        [],
    ),
    (
        "certificate name failures at a listed MX block",
        evidence(fail("certificate-host-mismatch", 40)),
        live(),
        Verdict.NOT_READY,
        2,
        [Impact.BLOCKING],
    ),
    (
        "STARTTLS not offered at a listed MX blocks",
        evidence(fail("starttls-not-supported", 7, org="Microsoft Corporation")),
        live(),
        Verdict.NOT_READY,
        2,
        [Impact.BLOCKING],
    ),
    (
        "blocking failures make NOT READY even with little data",
        evidence(fail("certificate-expired", 5), reporters=(replace(GOOGLE, sts_sessions=10),)),
        live(),
        Verdict.NOT_READY,
        2,
        [Impact.BLOCKING],
    ),
    (
        "noisy but safe: one session, a host DNS does not list, Microsoft fetch errors",
        evidence(
            fail("certificate-not-trusted", 1),
            fail("starttls-not-supported", 30, host="old-mx.d.test"),
            fail("sts-policy-fetch-error", 12, host=None, org="Microsoft Corporation"),
            fail("tlsa-invalid", 3, ptype="tlsa"),
        ),
        live(),
        Verdict.READY,
        1,
        [Impact.NOISE, Impact.NOISE, Impact.NOT_AFFECTED, Impact.NOT_AFFECTED],
    ),
    (
        "old failures at an MX that passes now: fixed",
        evidence(fail("certificate-expired", 50, last=9, first=13)),
        live(),
        Verdict.READY,
        1,
        [Impact.FIXED],
    ),
    (
        "old failures at an MX that still fails: blocking",
        evidence(fail("certificate-expired", 50, last=9, first=13)),
        live(mx=(mx("mx1.d.test"), mx("mx2.d.test", cert_ok=False))),
        Verdict.NOT_READY,
        2,
        [Impact.BLOCKING],
    ),
    (
        "a failure the reporter tied to no MX is blocking (cautious)",
        evidence(fail("certificate-host-mismatch", 4, host=None)),
        live(),
        Verdict.NOT_READY,
        2,
        [Impact.BLOCKING],
    ),
    (
        "live: a certificate expiring in 5 days",
        evidence(),
        live(mx=(mx("mx1.d.test"), mx("mx2.d.test", not_after=NOW + timedelta(days=5)))),
        Verdict.NOT_READY,
        2,
        [],
    ),
    (
        "live: an MX without STARTTLS",
        evidence(),
        live(mx=(mx("mx1.d.test"), mx("mx2.d.test", starttls=False, tls12=None, cert_ok=None))),
        Verdict.NOT_READY,
        2,
        [],
    ),
    (
        "live: an MX the policy does not cover",
        evidence(),
        live(mx=(mx("mx1.d.test"), mx("mx2.d.test"), mx("mx3.d.test"))),
        Verdict.NOT_READY,
        2,
        [],
    ),
    (
        "live: an MX that could not be reached",
        evidence(),
        live(mx=(mx("mx1.d.test"), mx("mx2.d.test", starttls=None, tls12=None, cert_ok=None))),
        Verdict.CANNOT_TELL,
        3,
        [],
    ),
    (
        "live: the check itself failed",
        evidence(),
        live(checked=False, mx_known=False, problems=("check.timeout",)),
        Verdict.CANNOT_TELL,
        3,
        [],
    ),
]


@pytest.mark.parametrize(
    ("ev", "snap", "verdict", "code", "impacts"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_verdicts(
    ev: Evidence, snap: Snapshot, verdict: Verdict, code: int, impacts: list[Impact]
) -> None:
    advice = run(ev, snap)
    assert advice.verdict is verdict, advice.reasons
    assert int(advice.exit_code) == code
    assert [j.impact for j in advice.judged] == impacts


def test_policy_host_down_is_not_ready_for_an_explicit_candidate() -> None:
    snap = live(policy_host_down=("policy-host.status",), policy_text=None)
    advice = run(evidence(), snap, mx=("mx1.d.test", "mx2.d.test"))
    assert advice.verdict is Verdict.NOT_READY
    failing = [c.id for c in advice.live if c.outcome is Outcome.FAIL]
    assert failing == ["policy-host"]


def test_blocking_sessions_by_reporter_and_mx() -> None:
    advice = advise(
        evidence(
            fail("certificate-host-mismatch", 40),
            fail("certificate-host-mismatch", 9, org="Microsoft Corporation"),
            fail("starttls-not-supported", 3, host="mx1.d.test"),
        ),
        live(),
        candidate_policy(live().policy),
        now=NOW,
    )
    assert advice.blocked_by_organization() == {"Google Inc.": 43, "Microsoft Corporation": 9}
    assert advice.blocked_by_mx() == {"mx2.d.test": 49, "mx1.d.test": 3}
    assert any(s.startswith("Fix first: mx2.d.test") for s in advice.steps)
    out = advice.to_json()
    assert out["verdict"] == "NOT READY"
    assert out["exit_code"] == 2


def test_validation_failure_against_candidate_patterns() -> None:
    """An MX outside the published policy: blocking under the published patterns, fixed by
    a candidate that covers it, blocking again when the candidate does not."""
    snap = live(
        mx=(mx("mx1.d.test"), mx("mx2.d.test"), mx("mx3.d.test")),
    )
    ev = evidence(fail("validation-failure", 25, host="mx3.d.test"))
    as_published = run(ev, snap)
    assert as_published.verdict is Verdict.NOT_READY
    assert as_published.judged[0].impact is Impact.BLOCKING
    widened = run(ev, snap, mx=("mx1.d.test", "mx2.d.test", "mx3.d.test"))
    assert widened.judged[0].impact is Impact.NOT_AFFECTED
    assert widened.verdict is Verdict.READY
    wildcard = run(ev, snap, mx=("*.d.test",))
    assert wildcard.verdict is Verdict.READY


def test_candidate_defaults_and_overrides() -> None:
    published = parse_policy(TESTING)
    cand = candidate_policy(published)
    assert cand.mode is Mode.ENFORCE
    assert cand.mx == published.mx
    assert cand.max_age == 604800
    cand = candidate_policy(published, mode=Mode.TESTING, max_age=86400, mx=("*.d.test",))
    assert (cand.mode, cand.max_age, [str(p) for p in cand.mx]) == (
        Mode.TESTING,
        86400,
        ["*.d.test"],
    )
    with pytest.raises(PolicyError) as err:
        candidate_policy(None)
    assert err.value.code == "advise.no-policy"
    assert candidate_policy(None, mx=("mx.d.test",)).max_age == 1209600


def test_steps_give_the_policy_a_new_id_and_the_exposure() -> None:
    advice = run(evidence())
    text = advice.policy_text
    assert "mode: enforce" in text
    assert advice.new_id == policy_id(text) != advice.current_id
    assert any(f"id={advice.new_id}" in s for s in advice.steps)
    assert "7 day(s)" in advice.exposure
    # the published record already carries the candidate's id: the id still changes
    same = live(sts_record=f"v=STSv1; id={policy_id(text)}")
    assert run(evidence(), same).new_id != policy_id(text)


def test_noise_reporter_named_by_the_administrator() -> None:
    ev = evidence(fail("certificate-not-trusted", 30, org="Odd Mailer"))
    snap = live()
    pol = candidate_policy(snap.policy)
    assert advise(ev, snap, pol, now=NOW).verdict is Verdict.NOT_READY
    crit = with_misreporters(Criteria(), ["odd mailer"])
    advice = advise(ev, snap, pol, criteria=crit, now=NOW)
    assert advice.verdict is Verdict.READY
    assert advice.judged[0].impact is Impact.NOISE


def test_criteria_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="min_days"):
        Criteria(days=5, min_days=7)
    with pytest.raises(ValueError, match="min_sessions"):
        Criteria(min_sessions=0)


def test_evidence_from_rows_counts_sessions_like_the_summary() -> None:
    """sts and tlsa entries of one report overlap (Microsoft): the larger counts; the
    mode is read from the policy string; failures are grouped over days."""
    policy_rows: list[dict[str, object]] = [
        {
            "report_pk": 1,
            "organization": "Microsoft",
            "day": "2026-12-01",
            "policy_type": "sts",
            "policy_string": ["version: STSv1", "mode: testing"],
            "successful": 90,
            "failed": 10,
        },
        {
            "report_pk": 1,
            "organization": "Microsoft",
            "day": "2026-12-01",
            "policy_type": "tlsa",
            "policy_string": ["3 1 1 ab"],
            "successful": 95,
            "failed": 5,
        },
        {
            "report_pk": 2,
            "organization": "Google",
            "day": "2026-12-02",
            "policy_type": "no-policy-found",
            "policy_string": [],
            "successful": 7,
            "failed": 0,
        },
    ]
    failure_rows: list[dict[str, object]] = [
        {
            "organization": "Microsoft",
            "day": "2026-12-01",
            "policy_type": "sts",
            "result_type": "certificate-expired",
            "receiving_mx_hostname": "MX2.D.TEST.",
            "failure_reason_code": "X509 expired",
            "failed": 6,
        },
        {
            "organization": "Microsoft",
            "day": "2026-12-02",
            "policy_type": "sts",
            "result_type": "certificate-expired",
            "receiving_mx_hostname": "mx2.d.test",
            "failure_reason_code": None,
            "failed": 4,
        },
    ]
    ev = evidence_from_rows("D.TEST", SINCE, UNTIL, policy_rows, failure_rows)
    ms = next(r for r in ev.reporters if r.organization == "Microsoft")
    assert (ms.sessions, ms.sts_sessions, ms.failed, ms.modes) == (100, 100, 10, ("testing",))
    assert ev.sts_sessions == 100
    assert ev.reports == 2
    assert ev.days == ("2026-12-01", "2026-12-02")
    (g,) = ev.failures
    assert (g.mx_host, g.sessions, g.first_day, g.last_day) == (
        "mx2.d.test",
        10,
        "2026-12-01",
        "2026-12-02",
    )
    assert g.reason_codes == ("X509 expired",)


# --- properties ---------------------------------------------------------------------------

RESULTS = st.sampled_from(
    [
        "starttls-not-supported",
        "certificate-host-mismatch",
        "certificate-expired",
        "certificate-not-trusted",
        "validation-failure",
        "sts-policy-fetch-error",
        "tlsa-invalid",
        "something-new",
    ]
)
HOSTS = st.sampled_from(["mx1.d.test", "mx2.d.test", "old.d.test", None])
ORGS = st.sampled_from(["Google Inc.", "Microsoft Corporation", "Mail.ru", "Small MTA"])
GROUPS = st.builds(
    lambda org, kind, host, n, last: fail(kind, n, host=host, org=org, last=last, first=last),
    ORGS,
    RESULTS,
    HOSTS,
    st.integers(1, 500),
    st.integers(0, 13),
)
REPORTERS = st.lists(
    st.builds(
        lambda org, n, sts, d: Reporter(org, d, n, min(sts, n), 0, days(d), ("testing",)),
        ORGS,
        st.integers(0, 5000),
        st.integers(0, 5000),
        st.integers(1, 14),
    ),
    max_size=4,
    unique_by=lambda r: r.organization,
)
LIVE = st.builds(
    lambda ok2, days_left, starttls: live(
        mx=(
            mx("mx1.d.test"),
            mx(
                "mx2.d.test",
                cert_ok=ok2,
                starttls=starttls,
                not_after=NOW + timedelta(days=days_left),
            ),
        )
    ),
    st.sampled_from([True, False, None]),
    st.integers(-3, 400),
    st.sampled_from([True, False, None]),
)


@given(st.lists(GROUPS, max_size=6), REPORTERS, LIVE)
def test_ready_only_with_evidence_and_no_blocker(
    groups: list[FailureGroup], reporters: list[Reporter], snap: Snapshot
) -> None:
    advice = run(evidence(*groups, reporters=tuple(reporters)), snap)
    ready = advice.verdict is Verdict.READY
    if ready:
        assert advice.data.enough
        assert all(c.outcome is Outcome.PASS for c in advice.live)
        assert not advice.blocking()
    if not reporters or all(r.sts_sessions == 0 for r in reporters):
        assert not ready
    if advice.blocking():
        assert advice.verdict is Verdict.NOT_READY
    assert int(advice.exit_code) in (0, 1, 2, 3)
    assert advice.to_json()["verdict"] == advice.verdict.value


@given(
    st.lists(GROUPS, max_size=6), st.integers(2, 500), st.sampled_from(["mx1.d.test", "mx2.d.test"])
)
def test_a_recent_certificate_failure_at_a_listed_mx_always_blocks(
    groups: list[FailureGroup], n: int, host: str
) -> None:
    broken = fail("certificate-host-mismatch", n, host=host, org="Small MTA", last=0)
    advice = run(evidence(*groups, broken))
    assert advice.verdict is Verdict.NOT_READY
    assert advice.exit_code is ExitCode.NOT_READY


def test_the_table_shows_reporters_names_as_text_and_stays_bounded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Reporters choose their organisation and MX names: markup in them is printed as text
    (rich would otherwise fail on an unmatched closing tag), and the table stops at 50
    failure groups with the blocking ones first."""
    from mtasts.cli.advise import render

    hostile = [
        fail("certificate-not-trusted", 1, org="[/evil] Mailer", host=f"x{i}.old.test")
        for i in range(60)
    ]
    blocking = fail("certificate-expired", 2, org="[bold]Loud[/bold]")
    advice = run(evidence(*hostile, blocking))
    render(advice)
    out = capsys.readouterr().out
    assert "[/evil]" in out
    assert "[bold]Loud[/bold]" in out
    assert "and 11 more failure group(s)" in out
    assert out.index("blocking") < out.index("noise")


def test_a_truncated_read_is_said() -> None:
    ev = replace(evidence(fail("certificate-not-trusted", 1)), truncated=True)
    advice = run(ev)
    assert advice.verdict is Verdict.READY
    assert any("largest failure groups" in n for n in advice.notes)
    assert advice.exit_code is ExitCode.READY_WITH_NOTES


def test_an_enforce_policy_already_published_needs_no_new_id() -> None:
    enforced = live(policy_text=TESTING.replace("testing", "enforce"))
    advice = run(evidence(), enforced)
    assert advice.verdict is Verdict.READY
    assert advice.new_id == advice.current_id == "20261101"
    assert any("nothing to publish" in s for s in advice.steps)
    assert not any("change the TXT record" in s for s in advice.steps)


def test_no_starttls_is_one_failure_not_three_unknowns() -> None:
    snap = live(mx=(mx("mx1.d.test"), mx("mx2.d.test", starttls=False, tls12=None, cert_ok=None)))
    outcomes = {c.id: c.outcome for c in run(evidence(), snap).live}
    assert outcomes["mx-starttls"] is Outcome.FAIL
    assert outcomes["mx-tls12"] is Outcome.PASS
    assert outcomes["mx-cert"] is Outcome.PASS
