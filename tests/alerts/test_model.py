"""The pure alert model: conditions validate themselves; plan() gives raise / repeat /
resolve exactly once per change, whatever the sequence of observations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.alerts.message import Message
from mtasts.alerts.model import (
    AlertError,
    Condition,
    Event,
    OpenCondition,
    Severity,
    dedupe,
    plan,
    retry_at,
)


def c(kind: str = "failure-rate", domain: str = "a.example", subject: str = "", **kw: object):
    return Condition(kind, domain, subject, **kw)  # type: ignore[arg-type]


def opened(cond: Condition, source: str = "rules", pk: int = 1) -> OpenCondition:
    return OpenCondition(pk, source, cond, 100, 200)


def test_key_names_kind_domain_and_subject() -> None:
    assert c().key == "failure-rate:a.example"
    assert c("new-result-type", "A.Example.", "certificate-expired").key == (
        "new-result-type:a.example:certificate-expired"
    )
    assert c(summary="").summary == "failure-rate:a.example"  # never an empty summary


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"kind": ""}, "kind"),
        ({"kind": "Failure Rate"}, "kind"),  # upper case and a space
        ({"kind": "x" * 65}, "kind"),  # too long
        ({"domain": "a example"}, "domain"),  # a space
        ({"domain": "a" * 254}, "domain"),  # longer than a domain name
        ({"subject": "two\nlines"}, "subject"),
        ({"details": {"x": object()}}, "details are not JSON"),
        ({"details": {"x": "y" * 20000}}, "16 KiB"),
    ],
)
def test_bad_conditions_are_refused_with_the_reason(kwargs: dict[str, object], why: str) -> None:
    args: dict[str, object] = {"kind": "k", "domain": "a.example", **kwargs}
    with pytest.raises(AlertError, match=why):
        Condition(**args)  # type: ignore[arg-type]


def test_a_long_summary_is_cut_to_one_bounded_line() -> None:
    cond = c(summary="word\n" * 200)
    assert "\n" not in cond.summary
    assert len(cond.summary) == 300


def test_dedupe_keeps_the_most_severe_per_key() -> None:
    low, high = c(severity=Severity.INFO), c(severity=Severity.CRITICAL)
    assert dedupe([low, high, low]) == [high]


def test_plan_raise_repeat_resolve() -> None:
    a, b = c(subject="a"), c(subject="b")
    first = plan([], [a, b], source="rules")
    assert first.raised == (a, b)
    assert first.repeated == first.resolved == ()
    again = plan([opened(a, pk=1), opened(b, pk=2)], [a], source="rules")
    assert again.raised == ()
    assert [o.key for o, _ in again.repeated] == [a.key]
    assert [o.key for o in again.resolved] == [b.key]


def test_another_sources_conditions_are_never_resolved_nor_raised_twice() -> None:
    mine, theirs = c(subject="mine"), c(subject="theirs")
    p = plan([opened(theirs, "monitor")], [mine], source="rules")
    assert p.raised == (mine,)
    assert p.resolved == ()
    # the same key reported by a second source repeats it: one notification in all
    p = plan([opened(theirs, "monitor")], [theirs], source="rules")
    assert p.raised == ()
    assert len(p.repeated) == 1


def test_domains_scope_and_keep_protect_conditions_not_evaluated() -> None:
    a, b = c(domain="a.example"), c(domain="b.example")
    state = [opened(a, pk=1), opened(b, pk=2)]
    assert plan(state, [], source="rules", domains=["a.example"]).resolved == (state[0],)
    assert plan(state, [], source="rules", keep=[a.key, b.key]).resolved == ()
    with pytest.raises(AlertError, match="outside the domains"):
        plan([], [b], source="rules", domains=["a.example"])


@pytest.mark.parametrize("source", ["", "Rules", "a b", "x" * 65, "-x"])
def test_bad_source_names(source: str) -> None:
    with pytest.raises(AlertError, match="source"):
        plan([], [], source=source)


KEYS = st.sampled_from(["a", "b", "c", "d"])


@given(st.lists(st.sets(KEYS), min_size=1, max_size=12))
def test_every_change_is_notified_exactly_once(observations: list[set[str]]) -> None:
    """Replaying plan() over a sequence of observations: a condition is raised exactly
    when it appears and resolved exactly when it disappears."""
    state: dict[str, OpenCondition] = {}
    raised: list[str] = []
    resolved: list[str] = []
    pk = 0
    previous: set[str] = set()
    for seen in observations:
        current = [c(subject=s) for s in sorted(seen)]
        p = plan(list(state.values()), current, source="rules")
        raised += [x.subject for x in p.raised]
        resolved += [o.condition.subject for o in p.resolved]
        assert {x.subject for x in p.raised} == seen - previous
        assert {o.condition.subject for o in p.resolved} == previous - seen
        for o in p.resolved:
            del state[o.key]
        for x in p.raised:
            pk += 1
            state[x.key] = opened(x, pk=pk)
        previous = seen
    # every raise is followed by at most one resolve, and vice versa
    for s in "abcd":
        assert 0 <= raised.count(s) - resolved.count(s) <= 1


def test_retry_back_off_doubles_to_a_cap_then_gives_up() -> None:
    at = [retry_at(n, 0, 1000, give_up_after=86400) for n in (1, 2, 3, 10, 100)]
    assert at == [1060, 1120, 1240, 1000 + 3600, 1000 + 3600]
    assert retry_at(1, 0, 86400, give_up_after=86400) is None


def test_messages_round_trip_through_the_outbox_and_say_what_happened() -> None:
    cond = c(severity=Severity.CRITICAL, summary="12% of sessions failed", details={"day": "x"})
    raised = Message.raised(cond, source="rules", now=1_800_000_000, pk=7)
    assert Message.loads(raised.dumps()) == raised
    assert raised.subject() == "[mtasts] CRITICAL a.example: 12% of sessions failed"
    assert "one more message when this condition clears" in raised.text()
    body = raised.to_json()
    assert body["event"] == "raised"
    assert body["first_seen"] == "2027-01-15T08:00:00Z"
    resolved = Message.resolved(OpenCondition(7, "rules", cond, 100, 200), now=300)
    assert resolved.event is Event.RESOLVED
    assert resolved.subject().startswith("[mtasts] RESOLVED a.example:")
    assert "Resolved:" in resolved.text()


def test_a_condition_absent_for_less_than_the_hold_stays_open() -> None:
    x = opened(c())  # last seen at 200
    assert plan([x], [], source="rules", now=3799, hold=3600).resolved == ()
    assert plan([x], [], source="rules", now=3800, hold=3600).resolved == (x,)
