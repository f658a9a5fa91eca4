"""Replies to Postfix: the incumbent's format where it is right, stricter where it is not."""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import PolicyError
from mtasts.names import MxPattern
from mtasts.postfix.mxlookup import MxLookup
from mtasts.postfix.mxpolicy import (
    MIN_VERDICT_TTL,
    NO_MATCH,
    MxSet,
    TlsaResult,
    dane_verdict,
    exact_match_names,
    host_matches,
    tlsa_usable,
)
from mtasts.postfix.socketmap import (
    DaneLevel,
    Reply,
    ReplyOptions,
    Status,
    enforced,
    render,
    tlsrpt_attributes,
)
from mtasts.results import ResultType
from mtasts.sts.lookup import LookupStatus, PolicyLookup, Source
from mtasts.sts.policy import Mode, Policy, parse_policy
from mtasts.tlsrpt.collect.datagram import decode_datagram
from mtasts.tlsrpt.policyline import decode_policy_line, encode_policy_line


def sts(domain: str, text: str) -> PolicyLookup:
    return PolicyLookup(domain, LookupStatus.STS, Source.FETCHED, policy=parse_policy(text))


def body(mode: str, *mx: str) -> str:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), "max_age: 86400"]
    return "\n".join(lines) + "\n"


ENFORCE = sts("example.com", body("enforce", "mx1.example.com"))
WILD = sts("wild.test", body("enforce", "*.wild.test", "mx1.wild.test"))

# (lookup, options, expected reply) -- the incumbent's format (postfix-mta-sts-resolver
# 1.5.1, research §2.2) where it is correct
P12 = "protocols=>=TLSv1.2"
LEGACY = "protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1"

TABLE = [
    (ENFORCE, ReplyOptions(), f"OK secure match=mx1.example.com servername=hostname {P12}"),
    # Postfix < 3.4 has no servername attribute (pmsr require_sni: false), nor >= syntax
    (ENFORCE, ReplyOptions(servername=False), f"OK secure match=mx1.example.com {LEGACY}"),
    # Postfix 3.4 - 3.5: servername, but the old protocols syntax
    (
        ENFORCE,
        ReplyOptions(legacy_protocols=True),
        f"OK secure match=mx1.example.com servername=hostname {LEGACY}",
    ),
    # MX hosts unknown: a wildcard cannot be resolved to exact names, only exact names go
    (WILD, ReplyOptions(), f"OK secure match=mx1.wild.test servername=hostname {P12}"),
    # wildcard -> Postfix's ".suffix" only by explicit opt-in; order kept
    (
        WILD,
        ReplyOptions(match_patterns=True),
        f"OK secure match=.wild.test:mx1.wild.test servername=hostname {P12}",
    ),
    # duplicates collapse
    (
        sts("d.test", body("enforce", "mx.d.test", "MX.d.test")),
        ReplyOptions(),
        f"OK secure match=mx.d.test servername=hostname {P12}",
    ),
    # testing: report only (RFC 8461 §5) -> Postfix's own default
    (sts("t.test", body("testing", "mx.t.test")), ReplyOptions(), "NOTFOUND "),
    # ... unless the zone enforces testing on purpose (pmsr strict_testing)
    (
        sts("t.test", body("testing", "mx.t.test")),
        ReplyOptions(strict_testing=True),
        f"OK secure match=mx.t.test servername=hostname {P12}",
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


@pytest.mark.parametrize(("lookup", "options", "expected"), TABLE)
def test_enforced_is_exactly_the_secure_or_dane_answers(
    lookup: PolicyLookup, options: ReplyOptions, expected: str
) -> None:
    """The daemon asks ``enforced`` before probing DANE; it must agree with render."""
    assert enforced(lookup, options) is expected.startswith("OK ")


def test_dane_answer_replaces_secure_and_is_never_weaker() -> None:
    """RFC 8461 §2: with usable validated TLSA at an MX host, DANE governs, not STS; and
    always dane-only (Postfix's 'dane' falls back to opportunistic TLS), TLS >= 1.2."""
    assert wire(render(ENFORCE, dane=True)) == f"OK dane-only {P12}"
    assert wire(render(ENFORCE, ReplyOptions(servername=False), dane=True)) == (
        f"OK dane-only {LEGACY}"
    )
    assert [level.value for level in DaneLevel] == ["dane-only"]


# --- exact MX names (RFC 8461 §4.1 one-label wildcards under Postfix < 3.10.5) -----------

DEEP = sts("deep.test", body("enforce", "*.deep.test"))
MIXED = sts("m.test", body("enforce", "*.m.test", "backup.other.test"))

# (lookup, current MX set, expected match= list)
EXACT = [
    # one-label wildcard: the current MX host, exactly
    (DEEP, MxSet(("mx.deep.test",)), "mx.deep.test"),
    # two labels deep: no MX matches -> a name no certificate can hold (Postfix defers)
    (DEEP, MxSet(("a.b.deep.test",)), NO_MATCH),
    # the domain itself is not matched by *.deep.test
    (DEEP, MxSet(("deep.test",)), NO_MATCH),
    # a spoofed MX set naming only hosts outside the policy
    (MIXED, MxSet(("mx.evil.test", "mx2.evil.test")), NO_MATCH),
    # matched hosts in preference order, then the policy's exact names
    (
        MIXED,
        MxSet(("mx2.m.test", "x.y.m.test", "mx1.m.test")),
        "mx2.m.test:mx1.m.test:backup.other.test",
    ),
    # an exact policy name that is the current MX appears once
    (MIXED, MxSet(("backup.other.test",)), "backup.other.test"),
    # MX lookup failed: exact names only; wildcard-only policy: nothing can match
    (MIXED, MxSet(error="LifetimeTimeout"), "backup.other.test"),
    (DEEP, MxSet(error="LifetimeTimeout"), NO_MATCH),
    # null MX / no such domain: nothing to deliver to
    (DEEP, MxSet(()), NO_MATCH),
]  # fmt: skip


@pytest.mark.parametrize(("lookup", "mx", "expected"), EXACT)
def test_exact_mx_names_are_rendered(lookup: PolicyLookup, mx: MxSet, expected: str) -> None:
    assert wire(render(lookup, mx=mx)) == (f"OK secure match={expected} servername=hostname {P12}")


def test_no_match_name_is_under_invalid() -> None:
    """RFC 6761 §6.4: .invalid never resolves and no public CA issues for it."""
    assert NO_MATCH.endswith(".invalid")


def test_exact_names_explain_why_nothing_matches() -> None:
    names, why = exact_match_names(DEEP.policy.mx, MxSet(("a.b.deep.test",)))  # type: ignore[union-attr]
    assert names == (NO_MATCH,)
    assert "a.b.deep.test" in why
    assert "no current MX host" in why


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("*.d.test", "mx.d.test", True),
        ("*.d.test", "a.b.d.test", False),
        ("*.d.test", "d.test", False),
        ("*.d.test", "xd.test", False),
        ("mx.d.test", "mx.d.test", True),
        ("mx.d.test", "a.mx.d.test", False),
    ],
)
def test_one_label_wildcard(pattern: str, host: str, matches: bool) -> None:
    assert host_matches(MxPattern.parse(pattern), host) is matches


def test_tlsrpt_zone_keeps_patterns() -> None:
    """Postfix >= 3.10.5 checks the MX name itself from mx_host_pattern: patterns stay."""
    got = render(DEEP, ReplyOptions(tlsrpt=True), mx=MxSet(("a.b.deep.test",)))
    assert got.data.startswith(f"secure match=.deep.test servername=hostname {P12} ")


def test_current_mx_attached_by_the_source_is_used() -> None:
    """The daemon's source attaches the MX set to the lookup (mxlookup.MxLookup)."""
    attached = MxLookup(DEEP, MxSet(("mx.deep.test",)))
    assert wire(render(attached)) == f"OK secure match=mx.deep.test servername=hostname {P12}"


def test_dane_flag_does_not_upgrade_a_domain_without_enforce() -> None:
    assert render(sts("t.test", body("testing", "mx.t.test")), dane=True).status is Status.NOTFOUND


def test_tlsrpt_attributes_carry_the_raw_policy_lines() -> None:
    """Postfix 3.10: policy_type, policy_domain, mx_host_pattern, policy_string per line."""
    text = body("enforce", "*.wild.test", "mx1.wild.test").replace(
        "max_age: 86400", "max_age: 86400\nx-note: keep"
    )
    got = wire(render(sts("wild.test", text), ReplyOptions(tlsrpt=True)))
    assert got == (
        f"OK secure match=.wild.test:mx1.wild.test servername=hostname {P12}"
        " policy_type=sts policy_domain=wild.test"
        " mx_host_pattern=*.wild.test mx_host_pattern=mx1.wild.test"
        " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
        " { policy_string = mx: *.wild.test } { policy_string = mx: mx1.wild.test }"
        " { policy_string = max_age: 86400 } { policy_string = x-note: keep }"
    )


def test_every_policy_line_is_carried_and_none_can_add_an_attribute() -> None:
    """RFC 8460 §4.4: every line, tabs and braces included, encoded where Postfix would not
    carry it verbatim. Failed on the old code: such lines were dropped (a 'mode:<TAB>
    enforce' policy reported no mode)."""
    lines = (
        "version: STSv1",
        "mode:\tenforce",
        "mx: mx.x.test",
        "max_age: 86400",
        "x-evil: } servername=evil.test {",
        "x-cr: a\rb",
        "x-pct: 100% sure",
        "x-two:  spaces ",
    )
    policy = Policy(Mode.ENFORCE, (MxPattern("mx.x.test"),), 86400, raw_lines=(*lines, "  "))
    attrs = tlsrpt_attributes("x.test", policy)
    assert attrs[:3] == ["policy_type=sts", "policy_domain=x.test", "mx_host_pattern=mx.x.test"]
    values = [postfix_attribute(a) for a in attrs[3:]]
    assert [name for name, _ in values] == ["policy_string"] * len(lines)
    assert [decode_policy_line(v) for _, v in values] == list(lines)
    # ordinary lines go verbatim, so any TLS-RPT reporter shows them as they are
    assert values[0][1] == "version: STSv1"
    assert values[2][1] == "mx: mx.x.test"
    assert values[6][1] == "x-pct: 100% sure"
    assert values[1][1] == "%mode:%09enforce"


def postfix_attribute(token: str) -> tuple[str, str]:
    """What Postfix makes of one "{ name = value }" item (smtp_tls_policy.c: mystrtokq with
    balanced braces, extpar STRIP|NORMAL_WS, split_nameval); raises if it is not one."""
    assert token.startswith("{ "), token
    assert token.endswith(" }"), token
    inner = token[1:-1]
    assert "{" not in inner, token  # would nest the item
    assert "}" not in inner, token  # would end the item early
    assert not re.search(r"[\x00-\x1f\x7f]", inner), token  # line breaks split replies
    inner = " ".join(inner.split())  # NORMAL_WS + STRIP
    name, sep, value = inner.partition("=")
    assert sep, token
    return name.strip(), value.strip()


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_any_line_round_trips_as_one_attribute(line: str) -> None:
    encoded = encode_policy_line(line)
    name, value = postfix_attribute(f"{{ policy_string = {encoded} }}")
    assert name == "policy_string"
    assert decode_policy_line(value) == line


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
    assert reply.data == "secure match=" + ":".join(names) + f" servername=hostname {P12}"


def test_collector_restores_encoded_policy_lines() -> None:
    """What Postfix hands libtlsrpt (our encoded value) reaches the report as the line."""
    line = "mode:\tenforce"
    datagram = orjson.dumps(
        {
            "dpv": "1",
            "d": "x.test",
            "policies": [
                {
                    "policy-type": 2,
                    "policy-domain": "x.test",
                    "policy-string": ["version: STSv1", encode_policy_line(line)],
                    "t": 0,
                    "f": 0,
                }
            ],
        }
    )
    (policy,) = decode_datagram(datagram).policies
    assert policy.policy_string == ("version: STSv1", line)


# --- DANE decisions (RFC 7672) ---------------------------------------------------------------

SHA256 = bytes(32)


@pytest.mark.parametrize(
    ("usage", "selector", "mtype", "data", "usable"),
    [
        (3, 1, 1, SHA256, True),  # DANE-EE SPKI SHA2-256
        (2, 0, 1, SHA256, True),  # DANE-TA
        (3, 0, 2, bytes(64), True),  # SHA2-512
        (3, 1, 0, b"\x30\x82", True),  # full data
        (0, 0, 1, SHA256, False),  # PKIX-TA: unusable for SMTP (RFC 7672 §3.1.3)
        (1, 1, 1, SHA256, False),  # PKIX-EE
        (3, 2, 1, SHA256, False),  # unknown selector
        (3, 1, 9, SHA256, False),  # unknown matching type
        (3, 1, 1, bytes(20), False),  # SHA2-256 of the wrong length
        (3, 1, 0, b"", False),
    ],
)
def test_tlsa_usable(usage: int, selector: int, mtype: int, data: bytes, usable: bool) -> None:
    assert tlsa_usable(usage, selector, mtype, data) is usable


@pytest.mark.parametrize(
    ("mx_ttl", "results", "expected"),
    [
        # one usable host is enough (partial DANE -> dane-only)
        (300, [TlsaResult(False, 60), TlsaResult(True, 120)], (True, 60)),
        # "no TLSA" lives for the TLSA negative TTL, not the MX TTL (old main: 300)
        (300, [TlsaResult(False, 30)], (False, 30)),
        # the MX RRset's TTL bounds it too
        (20, [TlsaResult(True, 3600)], (True, 20)),
        # a failed TLSA lookup: DANE (Postfix decides and defers), re-checked soon
        (300, [TlsaResult(False, 300, failed=True)], (True, MIN_VERDICT_TTL)),
        # bounds
        (0, [TlsaResult(True, 0)], (True, MIN_VERDICT_TTL)),
        (86400, [TlsaResult(False, 86400)], (False, 3600)),
    ],
)
def test_dane_verdict(mx_ttl: int, results: list[TlsaResult], expected: tuple[bool, int]) -> None:
    assert dane_verdict(mx_ttl, results) == expected


def test_the_mx_wrapper_hides_nothing_of_the_lookup() -> None:
    """The daemon reads result_type, source, cause... from what the source returns."""
    inner = PolicyLookup(
        "x.test",
        LookupStatus.STS,
        Source.CACHE,
        policy=ENFORCE.policy,
        result_type=ResultType.STS_POLICY_FETCH_ERROR,
    )
    wrapped = MxLookup(inner, MxSet(("mx1.example.com",)))
    assert wrapped.result_type is ResultType.STS_POLICY_FETCH_ERROR
    assert wrapped.source is Source.CACHE
    assert wrapped.cause is inner.cause
