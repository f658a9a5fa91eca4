"""Replies to Postfix: the incumbent's format where it is right, stricter where it is not."""

from __future__ import annotations

import pytest

from mtasts.errors import PolicyError
from mtasts.names import MxPattern
from mtasts.postfix.socketmap import (
    DaneLevel,
    Reply,
    ReplyOptions,
    Status,
    render,
    tlsrpt_attributes,
)
from mtasts.sts.lookup import LookupStatus, PolicyLookup, Source
from mtasts.sts.policy import Mode, Policy, parse_policy
from mtasts.tlsrpt.results import ResultType


def sts(domain: str, text: str) -> PolicyLookup:
    return PolicyLookup(domain, LookupStatus.STS, Source.FETCHED, policy=parse_policy(text))


def body(mode: str, *mx: str) -> str:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), "max_age: 86400"]
    return "\n".join(lines) + "\n"


ENFORCE = sts("example.com", body("enforce", "mx1.example.com"))
WILD = sts("wild.test", body("enforce", "*.wild.test", "mx1.wild.test"))

# (lookup, options, expected reply) -- the incumbent's format (postfix-mta-sts-resolver
# 1.5.1, research §2.2) where it is correct
TABLE = [
    (ENFORCE, ReplyOptions(), "OK secure match=mx1.example.com servername=hostname"),
    # Postfix < 3.4 has no servername attribute (pmsr require_sni: false)
    (ENFORCE, ReplyOptions(servername=False), "OK secure match=mx1.example.com"),
    # wildcard -> Postfix's ".suffix"; order kept (pmsr: set order, unstable)
    (WILD, ReplyOptions(), "OK secure match=.wild.test:mx1.wild.test servername=hostname"),
    # duplicates collapse
    (
        sts("d.test", body("enforce", "mx.d.test", "MX.d.test")),
        ReplyOptions(),
        "OK secure match=mx.d.test servername=hostname",
    ),
    # testing: report only (RFC 8461 §5) -> Postfix's own default
    (sts("t.test", body("testing", "mx.t.test")), ReplyOptions(), "NOTFOUND "),
    # ... unless the zone enforces testing on purpose (pmsr strict_testing)
    (
        sts("t.test", body("testing", "mx.t.test")),
        ReplyOptions(strict_testing=True),
        "OK secure match=mx.t.test servername=hostname",
    ),
    (sts("n.test", body("none")), ReplyOptions(), "NOTFOUND "),
    (PolicyLookup("x.test", LookupStatus.NO_POLICY, Source.FETCHED), ReplyOptions(), "NOTFOUND "),
    # record published but the policy could not be fetched, nothing cached: RFC 8461 §3.3
    # says deliver as if there were no policy
    (
        PolicyLookup(
            "f.test",
            LookupStatus.FAILED,
            Source.FETCHED,
            result_type=ResultType.STS_POLICY_FETCH_ERROR,
        ),
        ReplyOptions(),
        "NOTFOUND ",
    ),
    # nothing could be determined (DNS SERVFAIL, nothing cached): Postfix defers and retries
    (
        PolicyLookup("u.test", LookupStatus.UNDETERMINED, Source.FETCHED),
        ReplyOptions(),
        "TEMP MTA-STS policy could not be determined; try again later",
    ),
]


def wire(reply: Reply) -> str:
    return f"{reply.status} {reply.data}"


@pytest.mark.parametrize(("lookup", "options", "expected"), TABLE)
def test_reply_table(lookup: PolicyLookup, options: ReplyOptions, expected: str) -> None:
    assert wire(render(lookup, options)) == expected


def test_dane_answer_replaces_secure() -> None:
    """RFC 8461 §2: with DNSSEC-validated TLSA at the MX hosts, DANE governs, not STS."""
    assert wire(render(ENFORCE, dane=True)) == "OK dane-only"
    opts = ReplyOptions(dane_level=DaneLevel.DANE)
    assert wire(render(ENFORCE, opts, dane=True)) == "OK dane"


def test_dane_flag_does_not_upgrade_a_domain_without_enforce() -> None:
    assert render(sts("t.test", body("testing", "mx.t.test")), dane=True).status is Status.NOTFOUND


def test_tlsrpt_attributes_carry_the_raw_policy_lines() -> None:
    """Postfix 3.10: policy_type, policy_domain, mx_host_pattern, policy_string per line."""
    text = body("enforce", "*.wild.test", "mx1.wild.test").replace(
        "max_age: 86400", "max_age: 86400\nx-note: keep"
    )
    got = wire(render(sts("wild.test", text), ReplyOptions(tlsrpt=True)))
    assert got == (
        "OK secure match=.wild.test:mx1.wild.test servername=hostname"
        " policy_type=sts policy_domain=wild.test"
        " mx_host_pattern=*.wild.test mx_host_pattern=mx1.wild.test"
        " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
        " { policy_string = mx: *.wild.test } { policy_string = mx: mx1.wild.test }"
        " { policy_string = max_age: 86400 } { policy_string = x-note: keep }"
    )


def test_policy_lines_that_could_break_attribute_syntax_are_left_out() -> None:
    """A '}' would end Postfix's { name = value } early; control chars split the reply."""
    policy = Policy(
        Mode.ENFORCE,
        (MxPattern("mx.x.test"),),
        86400,
        raw_lines=("version: STSv1", "x-evil: } servername=evil.test {", "x-cr: a\rb", "  "),
    )
    attrs = tlsrpt_attributes("x.test", policy)
    assert attrs == [
        "policy_type=sts",
        "policy_domain=x.test",
        "mx_host_pattern=mx.x.test",
        "{ policy_string = version: STSv1 }",
    ]


def test_no_mx_value_can_inject_attributes() -> None:
    """pmsr passed `mx: a servername=b` through; our MxPattern cannot even hold it."""
    with pytest.raises(PolicyError, match="mx value"):
        MxPattern.parse("mx1.x.test servername=other.test")
    with pytest.raises(PolicyError, match="mx value"):
        MxPattern.parse("192.0.2.1")


def test_tlsrpt_reply_of_a_large_valid_policy_stays_within_postfix_reply_limit() -> None:
    """Postfix reads at most 100000 bytes of socketmap reply (dict_sockmap.c); a longer one
    is a lookup error and the mail is deferred. A valid policy under the 64 KiB fetch cap
    (here 900 mx lines, 32 KB) made a 120 KB reply with tlsrpt on. The policy_string
    items (report text only) go first, so the mx_host_pattern enforcement stays."""
    names = [f"mx{i:03d}.{'a' * 15}.big.test" for i in range(900)]
    text = body("enforce", *names)
    assert len(text.encode()) < 64 * 1024
    reply = render(sts("big.test", text), ReplyOptions(tlsrpt=True))
    assert reply.status is Status.OK
    assert len(f"{reply.status} {reply.data}".encode()) <= 100_000
    assert reply.data.startswith("secure match=" + ":".join(names))
    assert "policy_type=sts policy_domain=big.test" in reply.data
    assert reply.data.count("mx_host_pattern=") == 900
    assert "policy_string" not in reply.data


def test_every_reply_stays_within_postfix_reply_limit_even_without_tlsrpt_room() -> None:
    """When even match= plus mx_host_pattern= do not fit, the TLSRPT attributes go and the
    answer is Postfix < 3.10.5's (certificate matched against match=) rather than none."""
    names = [f"m{i:03d}.{'b' * 60}.big.test" for i in range(800)]
    text = body("enforce", *names)
    assert len(text.encode()) < 64 * 1024
    reply = render(sts("big.test", text), ReplyOptions(tlsrpt=True))
    assert reply.status is Status.OK
    assert len(f"{reply.status} {reply.data}".encode()) <= 100_000
    assert reply.data == "secure match=" + ":".join(names) + " servername=hostname"
