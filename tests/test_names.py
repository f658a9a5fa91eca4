"""Domain names in canonical form, and RFC 8461 mx patterns (parse, format, match)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import DomainNameError, PolicyError
from mtasts.names import MxPattern, normalize_domain

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda label: label[2:4] != "--"  # keep clear of xn-- and other reserved labels
)
DOMAIN = (
    st.lists(LABEL, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda name: not name.rsplit(".", 1)[-1].isdigit())
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", "example.com"),
        ("MAIL.Example.COM.", "mail.example.com"),  # DNS form: case folded, root dot dropped
        ("bücher.example", "xn--bcher-kva.example"),  # U-label converted (RFC 6125 §6.4.2)
        ("Bücher.example", "xn--bcher-kva.example"),  # upper-case U-label folded
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),  # A-label case folded
        ("bücher。example", "xn--bcher-kva.example"),  # ideographic full stop (UTS #46)
        ("r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com"),  # inner hyphens
        ("localhost", "localhost"),  # one label is still a Domain
        ("1.2.3.4", "1.2.3.4"),  # all-digit labels are a Domain (mx refuses them)
        ("a" * 63 + ".com", "a" * 63 + ".com"),  # 63 is the longest label
        (".".join(["a" * 63] * 3 + ["b" * 61]), ".".join(["a" * 63] * 3 + ["b" * 61])),  # 253
    ],
)
def test_normalize_domain_gives_lower_case_a_labels_without_root_dot(
    text: str, expected: str
) -> None:
    assert normalize_domain(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty
        ".",  # the root alone is no domain
        "example.com..",  # two trailing dots: an empty label
        "a..example.com",  # empty label in the middle
        ".example.com",  # leading dot
        "a" * 64 + ".com",  # label of 64 characters
        ".".join(["a" * 63] * 3 + ["b" * 62]),  # 254 characters
        "-mx.example.com",  # label starts with a hyphen
        "mx-.example.com",  # label ends with a hyphen
        "_mta-sts.example.com",  # underscore is not in RFC 5321 sub-domain
        "mx 1.example.com",  # space
        "mx1.example.com:25",  # port
        "[192.0.2.1]",  # address literal
        "*.example.com",  # wildcard is a pattern, not a name
        "xn--zz.example",  # invalid punycode
        "xn--abc-.example",  # A-label ends with a hyphen
        "ex\u00a0ample.com",  # NBSP: not allowed by IDNA
        "mx\tone.example",  # tab
    ],
)
def test_normalize_domain_rejects_invalid_names(text: str) -> None:
    with pytest.raises(DomainNameError) as info:
        normalize_domain(text)
    assert info.value.code == "name.invalid"
    assert "not a valid domain name" in info.value.message


@pytest.mark.parametrize(
    ("text", "domain", "wildcard"),
    [
        ("mail.example.com", "mail.example.com", False),  # RFC 8461 §3.2 example
        ("*.example.net", "example.net", True),  # RFC 8461 §3.2 example
        ("MX1.Example.COM", "mx1.example.com", False),  # upper case is valid, folded
        ("mail.xn--bcher-kva.example", "mail.xn--bcher-kva.example", False),  # A-label
        ("*.com", "com", True),  # valid syntax; lint warns (E-39)
        ("example", "example", False),  # single label Domain
    ],
)
def test_mx_pattern_parses_names_and_one_label_wildcards(
    text: str, domain: str, wildcard: bool
) -> None:
    pattern = MxPattern.parse(text)
    assert pattern == MxPattern(domain, wildcard)
    assert str(pattern) == text.lower()


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty value (pmsr passed it on and Postfix deferred mail)
        "*",  # wildcard with no suffix
        "*.",  # wildcard with an empty suffix
        "*example.com",  # '*' not a whole label
        "foo*.example.com",  # partial-label wildcard
        "*.*.example.com",  # two wildcard labels
        "a.*.example.com",  # wildcard not left-most
        "mail.example.com.",  # trailing dot: RFC 5321 Domain has none (E-39, strict)
        "mail.bücher.example",  # U-label: MUST be an A-label (RFC 8461 §3.2)
        "*.bücher.example",  # U-label after a wildcard
        "mail.example.com:25",  # port
        "_mx.example.com",  # underscore
        "mx-.example.com",  # label ends with a hyphen
        "192.0.2.1",  # an IP address: an all-digit top label is no host name
        "[192.0.2.1]",  # address literal
        "mx1.example.com servername=other.test",  # space: would inject Postfix attributes
        "a.example.com, b.example.com",  # two names in one value (STS-3.2-i)
        "a.example.com b.example.com",  # two names separated by a space
        " mx.example.com",  # leading space (the policy parser strips it; the pattern does not)
    ],
)
def test_mx_pattern_rejects_everything_but_name_or_star_dot_name(text: str) -> None:
    with pytest.raises(PolicyError) as info:
        MxPattern.parse(text)
    assert info.value.code == "policy.mx.invalid"
    assert repr(text) in info.value.message


def test_mx_pattern_suggests_the_a_label_for_a_u_label() -> None:
    with pytest.raises(PolicyError, match=r"xn--bcher-kva\.example"):
        MxPattern.parse("*.bücher.example")


@pytest.mark.parametrize(
    ("domain", "wildcard"),
    [
        ("Mail.example.com", False),  # not lower case
        ("mail.example.com.", False),  # trailing dot
        ("", True),  # empty
        ("192.0.2.1", False),  # IP address
    ],
)
def test_mx_pattern_constructor_accepts_only_canonical_domains(domain: str, wildcard: bool) -> None:
    with pytest.raises(PolicyError):
        MxPattern(domain, wildcard)


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        # RFC 8461 §5.2-style vectors and §4.1: '*' is exactly one left-most label.
        ("*.example.com", "mail.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", "mail.example.com.evil.test", False),
        ("*.example.com", "mailexample.com", False),
        ("*.example.net", "a.example.net", True),  # RFC 8461 §3.2 example policy
        ("*.example.net", "a.b.example.net", False),
        ("*.example.net", "example.net", False),
        ("mail.example.com", "mail.example.com", True),
        ("mail.example.com", "MAIL.Example.COM.", True),  # DNS form (E-43)
        ("*.example.com", "MAIL.EXAMPLE.COM.", True),
        ("mail.example.com", "mail.example.com..", False),  # not a domain name
        ("mail.example.com", "x.mail.example.com", False),  # literal is literal
        ("mail.example.com", "ail.example.com", False),
        ("mail.xn--bcher-kva.example", "mail.bücher.example", True),  # U-label host
        ("*.xn--bcher-kva.example", "MX.Bücher.example", True),
        ("*.com", "example.com", True),  # broad, but still one label
        ("*.com", "a.example.com", False),
        ("mx.example.com", "", False),  # no host
        ("mx.example.com", "*.example.com", False),  # a pattern is not a host
    ],
)
def test_mx_pattern_matches_rfc_8461_section_4_1(pattern: str, host: str, expected: bool) -> None:
    assert MxPattern.parse(pattern).matches(host) is expected


@given(DOMAIN, st.booleans())
def test_mx_pattern_round_trips_through_str(domain: str, wildcard: bool) -> None:
    pattern = MxPattern(domain, wildcard)
    assert MxPattern.parse(str(pattern)) == pattern


@given(DOMAIN, LABEL)
def test_wildcard_matches_any_one_label_and_never_two(domain: str, label: str) -> None:
    pattern = MxPattern(domain, True)
    assert pattern.matches(f"{label}.{domain}")
    assert pattern.matches(f"{label.upper()}.{domain}.")
    assert not pattern.matches(domain)
    assert not pattern.matches(f"{label}.{label}.{domain}")


@given(st.text(max_size=80))
def test_normalize_and_parse_raise_only_declared_errors(text: str) -> None:
    with contextlib.suppress(DomainNameError):
        normalize_domain(text)
    with contextlib.suppress(PolicyError):
        MxPattern.parse(text)
    MxPattern("example.com", True).matches(text)  # never raises


@given(st.text(alphabet=st.sampled_from("abxn019-.üßİς。Kǅ\u0301"), min_size=1, max_size=30))
def test_normalize_domain_is_idempotent(text: str) -> None:
    try:
        name = normalize_domain(text)
    except DomainNameError:
        return
    assert normalize_domain(name) == name
    assert name == name.lower()
    assert name.isascii()
    assert not name.endswith(".")
