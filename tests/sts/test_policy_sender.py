"""The sender's tolerant reading of a policy (issue 16, "fail safe, not fail open").

A sender that drops an enforce policy over a harmless deviation downgrades the domain to
opportunistic TLS. :func:`read_policy` accepts the deviations that peers accept and that
cannot widen what the policy allows, and returns each as a warning; :func:`lint_policy`
(``lint``, ``check``) keeps reporting them as errors. Pure tables and properties.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import PolicyError
from mtasts.names import MxPattern
from mtasts.postfix.mxpolicy import MxSet
from mtasts.postfix.socketmap import ReplyOptions, render
from mtasts.sts.lookup import LookupStatus, PolicyLookup, Source
from mtasts.sts.policy import (
    Mode,
    Policy,
    format_policy,
    lint_policy,
    parse_policy,
    policy_to_json,
    read_policy,
)

from .test_policy import ENFORCE, POLICYISH, crlf, policies

HEAD = "version: STSv1\nmode: enforce\n"
TAIL = "max_age: 604800\n"
STRICT = parse_policy(ENFORCE)  # mx.example.com, enforce, one week


def mx(*names: str) -> tuple[MxPattern, ...]:
    return tuple(MxPattern.parse(n) for n in names)


TOLERATED = [
    # (served text, repair codes in order, mx, unmatchable_mx)
    (ENFORCE + "\n", ["policy.blank-line"], mx("mx.example.com"), ()),  # E-27, trailing
    (ENFORCE + "\n\n\n", ["policy.blank-line"] * 3, mx("mx.example.com"), ()),
    (crlf(ENFORCE) + "\r\n\r\n", ["policy.blank-line"] * 2, mx("mx.example.com"), ()),
    (ENFORCE.replace("mode", "\nmode"), ["policy.blank-line"], mx("mx.example.com"), ()),
    (ENFORCE + " \t\n", ["policy.blank-line"], mx("mx.example.com"), ()),  # spaces only
    ("# our policy\n" + ENFORCE, ["policy.comment"], mx("mx.example.com"), ()),  # E-28
    (ENFORCE + "#mx: old.example.com\n", ["policy.comment"], mx("mx.example.com"), ()),
    # E-39: an all-digit last label is a valid RFC 5321 Domain that matches no MX name.
    (ENFORCE + "mx: 192.0.2.1\n", ["policy.mx.numeric"], mx("mx.example.com"), ("192.0.2.1",)),
    (HEAD + "mx: 192.0.2.1\n" + TAIL, ["policy.mx.numeric"], (), ("192.0.2.1",)),
    (HEAD + "mx: *.1.2.3.4\n" + TAIL, ["policy.mx.numeric"], (), ("*.1.2.3.4",)),
    (HEAD + "mx: mx.10\n" + TAIL, ["policy.mx.numeric"], (), ("mx.10",)),
    (HEAD + "mx: 192.0.2.1.\n" + TAIL, ["policy.mx.numeric"], (), ("192.0.2.1",)),
    # E-39: the root dot names the same host.
    (HEAD + "mx: mail.example.com.\n" + TAIL, ["policy.mx.trailing-dot"], mx("mail.example.com"),
     ()),
    (HEAD + "mx: *.Example.NET.\n" + TAIL, ["policy.mx.trailing-dot"], mx("*.example.net"), ()),
    (
        "# policy\n\n" + HEAD + "mx: a.example.com.\nmx: 198.51.100.7\n" + TAIL + "\n",
        ["policy.comment", "policy.blank-line", "policy.mx.trailing-dot", "policy.mx.numeric",
         "policy.blank-line"],
        mx("a.example.com"),
        ("198.51.100.7",),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "codes", "patterns", "unmatchable"), TOLERATED)
def test_sender_accepts_harmless_deviations_with_a_warning_each(
    text: str, codes: list[str], patterns: tuple[MxPattern, ...], unmatchable: tuple[str, ...]
) -> None:
    policy = read_policy(text)
    assert [r.code for r in policy.repairs] == codes
    assert all("accepted for sending" in r.message for r in policy.repairs)
    assert (policy.mode, policy.max_age) == (Mode.ENFORCE, 604800)
    assert policy.mx == patterns
    assert policy.unmatchable_mx == unmatchable
    linted = lint_policy(text, tolerant=True)
    assert linted.value == policy
    assert [w.code for w in linted.warnings][: len(codes)] == codes
    # lint and check (the strict reading) keep reporting each of them as an error.
    strict = lint_policy(text)
    assert strict.value is None
    assert strict.errors
    with pytest.raises(PolicyError):
        parse_policy(text)


def test_all_digit_mx_values_match_nothing_and_keep_enforce() -> None:
    """An enforce policy whose only mx is an IP-like name defers every MX (fail closed):
    it is neither dropped (fail open) nor a pattern that could match an address."""
    policy = read_policy(HEAD + "mx: 192.0.2.1\nmx: *.0.2.1\n" + TAIL)
    assert policy.mode is Mode.ENFORCE
    assert policy.mx == ()
    for host in ("192.0.2.1", "192.0.2.1.", "x.0.2.1", "[192.0.2.1]", "mx.example.com"):
        assert not policy.matches_mx(host)
    assert policy_to_json(policy)["unmatchable_mx"] == ["192.0.2.1", "*.0.2.1"]
    assert "unmatchable_mx" not in policy_to_json(STRICT)
    assert read_policy(format_policy(policy)) == policy  # the value survives a round trip


STILL_INVALID = [
    # Deviations no sender may guess at: the strict error, in both readings.
    ("\ufeff" + ENFORCE, "policy.bom"),  # E-29: peers refuse it too
    (" " + ENFORCE, "policy.syntax"),  # leading whitespace
    (ENFORCE.replace("mode:", "mode :"), "policy.syntax"),  # whitespace before ':'
    ("version: STSv1\rmode: none\rmax_age: 1\r", "policy.line-ending"),  # bare CR
    (ENFORCE.replace("enforce", "Enforce"), "policy.mode.invalid"),
    (ENFORCE.replace("604800", "+604800"), "policy.max_age.invalid"),
    (ENFORCE.replace("604800", "00000604800"), "policy.max_age.invalid"),
    (ENFORCE + "mx: \n", "policy.mx.invalid"),
    (ENFORCE + "mx: .\n", "policy.mx.invalid"),
    (ENFORCE + "mx: mx.example.com..\n", "policy.mx.invalid"),
    (ENFORCE + "mx: mx.example.com:25\n", "policy.mx.invalid"),
    (ENFORCE + "mx: [192.0.2.1]\n", "policy.mx.invalid"),
    (ENFORCE + "mx: 192.0.2.1:25\n", "policy.mx.invalid"),
    (ENFORCE + "mx: *.*.example.com\n", "policy.mx.invalid"),
    (ENFORCE + "mx: *.\n", "policy.mx.invalid"),
    (ENFORCE + "mx: mail.bücher.example\n", "policy.mx.invalid"),  # U-label (mox refuses)
    (ENFORCE + "mx: a.example.com b.example.com\n", "policy.mx.invalid"),  # injection
    (ENFORCE + "foo:\n", "policy.extension.invalid"),
    ("# only a comment\n", "policy.version.missing"),
    ("\n\n", "policy.empty"),
    (HEAD + TAIL, "policy.mx.missing"),
]


@pytest.mark.parametrize(("text", "code"), STILL_INVALID)
def test_sender_still_refuses_what_it_cannot_read_safely(text: str, code: str) -> None:
    with pytest.raises(PolicyError) as info:
        read_policy(text)
    assert info.value.code == code
    assert info.value.result_type == "sts-policy-invalid"
    assert code in [e.code for e in lint_policy(text).errors]


def test_the_constructor_keeps_requiring_some_mx_for_enforce() -> None:
    with pytest.raises(PolicyError) as info:
        Policy(Mode.ENFORCE, (), 1)
    assert info.value.code == "policy.mx.missing"
    assert Policy(Mode.ENFORCE, (), 1, unmatchable_mx=("192.0.2.1",)).mx == ()


@given(st.one_of(st.text(max_size=80), POLICYISH))
def test_tolerant_reading_extends_the_strict_one(text: str) -> None:
    """Every strictly valid policy reads the same, without repairs; a repaired one is
    strictly invalid; nothing raises but PolicyError."""
    strict = lint_policy(text)
    tolerant = lint_policy(text, tolerant=True)
    if strict.value is not None:
        assert tolerant.value == strict.value
        assert tolerant.value.repairs == ()
    elif tolerant.value is not None:
        assert tolerant.value.repairs
    assert (tolerant.value is None) == bool(tolerant.errors)
    try:
        assert read_policy(text) == tolerant.value
    except PolicyError:
        assert tolerant.value is None


NOISE = st.sampled_from(["", " ", "\t ", "# comment", "#mx: evil.example", "#"])
NUMERIC = st.lists(st.integers(0, 255), min_size=1, max_size=4).map(
    lambda parts: ".".join(map(str, parts))
)


@given(
    policies(),
    st.sampled_from(["\r\n", "\n"]),
    st.lists(st.tuples(st.integers(0, 20), NOISE), max_size=4),
    st.lists(NUMERIC, max_size=2),
    st.data(),
)
def test_repairs_never_change_or_widen_the_policy(
    policy: Policy,
    newline: str,
    noise: list[tuple[int, str]],
    numeric: list[str],
    data: st.DataObject,
) -> None:
    """Blank and comment lines anywhere, root dots on mx values and IP-like mx values
    give back the written policy: same mode, max_age, patterns; the IP-like values are
    kept apart and match nothing."""
    lines = format_policy(policy, newline="\n").split("\n")[:-1]  # not splitlines(): U+0085
    dotted = data.draw(st.sets(st.sampled_from(range(len(lines)))))
    dotted = {i for i in dotted if lines[i].startswith("mx: ")}
    lines = [line + "." if i in dotted else line for i, line in enumerate(lines)]
    lines += [f"mx: {name}" for name in numeric]
    for position, extra in noise:
        lines.insert(position % (len(lines) + 1), extra)
    text = newline.join(lines) + newline
    read = read_policy(text)
    assert read == dataclasses.replace(policy, unmatchable_mx=tuple(numeric))
    assert len(read.repairs) == len(noise) + len(numeric) + len(dotted)
    for name in numeric:
        assert not read.matches_mx(name)
    if read.repairs:
        assert lint_policy(text).value is None


@pytest.mark.parametrize(
    "options",
    [ReplyOptions(), ReplyOptions(match_patterns=True), ReplyOptions(tlsrpt=True)],
    ids=["exact names", "patterns (opt-in)", "tlsrpt"],
)
def test_ip_like_mx_values_never_reach_postfix_as_names(options: ReplyOptions) -> None:
    """What the daemon answers for a tolerated policy: an IP-like value is never a match=
    item or mx_host_pattern, and an enforce policy of only such values defers (TEMP)."""
    mixed = read_policy(ENFORCE + "mx: 192.0.2.1\n")
    only = read_policy(HEAD + "mx: 192.0.2.1\n" + TAIL)
    hosts = MxSet(("mx.example.com", "192.0.2.1"))
    for policy in (mixed, only):
        lookup = PolicyLookup("example.com", LookupStatus.STS, Source.FETCHED, policy=policy)
        reply = render(lookup, options, mx=hosts)
        attributes = reply.data.split(" ")
        names = [a for a in attributes if a.startswith(("match=", "mx_host_pattern="))]
        assert not any("192.0.2.1" in a for a in names), reply
        if policy is only:
            assert reply.status == "TEMP", reply
        else:
            assert reply.status == "OK", reply
