"""Certificate DNS-ID matching as RFC 8461 §3.3 / §4.2 narrow RFC 6125 §6.4."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.sts.match import certificate_matches

CASES = [
    # (host, SAN dNSNames, matches?)
    ("mx1.example.com", ["mx1.example.com"], True),
    ("mx1.example.com", ["Mx1.Example.Com"], True),  # case-insensitive (IMP-6125-a)
    ("MX1.EXAMPLE.COM.", ["mx1.example.com"], True),  # host in DNS form (E-43)
    ("mx1.example.com", ["mx1.example.com."], True),  # trailing dot on the SAN
    ("mx1.example.com", ["www.example.com", "mx1.example.com"], True),  # any SAN may match
    ("mx1.example.com", ["*.example.com"], True),  # one-label wildcard
    ("mta-sts.example.com", ["*.example.com"], True),  # policy host (STS-3.3-e)
    ("MX1.Example.com.", ["*.EXAMPLE.com"], True),
    ("mx.xn--bcher-kva.example", ["mx.bücher.example"], False),  # SAN must be IA5 (A-label)
    ("mx.bücher.example", ["mx.xn--bcher-kva.example"], True),  # U-label host (IMP-6125-b)
    ("mx.bücher.example", ["*.xn--bcher-kva.example"], True),
    ("example.com", ["*.example.com"], False),  # wildcard needs one label (E-42)
    ("a.b.example.com", ["*.example.com"], False),  # and only one (IMP-6125-c)
    ("a.b.example.com", ["*.*.example.com"], False),  # two wildcards
    ("mx1.example.com", ["*.*.example.com"], False),
    ("mx1.example.com", ["m*.example.com"], False),  # partial wildcard (E-49, IMP-6125-d)
    ("mx1.example.com", ["*x1.example.com"], False),  # partial wildcard
    ("mx1.example.com", ["mx*.example.com"], False),
    ("mx1.example.com", ["mx1.*.com"], False),  # wildcard not left-most
    ("mx1.example.com", ["*"], False),  # bare star
    ("example.com", ["*.com"], False),  # wildcard over a TLD (STS-3.3-e)
    ("mx1.example.com", ["mx.other.example"], False),  # another host (STS-4.2-c)
    ("mx1.example.com", ["example.com"], False),  # the parent is not the host
    ("mx1.example.com", ["x.mx1.example.com"], False),  # a child is not the host
    ("mx1.example.com", [], False),  # no SAN at all: no CN fallback (IMP-6125-e)
    ("mx1.example.com", [""], False),  # empty SAN
    ("mx1.example.com", ["mx1.example.com\x00.evil.test"], False),  # NUL trick
    ("mx1.example.com", ["192.0.2.1"], False),
    ("", ["*.example.com"], False),  # no host
    ("a..example.com", ["a..example.com"], False),  # invalid host matches nothing
    ("*.example.com", ["*.example.com"], False),  # a pattern is not a host
]


@pytest.mark.parametrize(("host", "dns_names", "expected"), CASES)
def test_certificate_matches(host: str, dns_names: list[str], expected: bool) -> None:
    assert certificate_matches(host, dns_names) is expected


LABEL = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True).filter(
    lambda label: label[2:4] != "--"
)


@given(st.lists(LABEL, min_size=2, max_size=4), LABEL)
def test_wildcard_covers_exactly_one_label(suffix: list[str], label: str) -> None:
    domain = ".".join(suffix)
    assert certificate_matches(f"{label}.{domain}", [f"*.{domain}"])
    assert certificate_matches(f"{label}.{domain}".upper() + ".", [f"*.{domain}"])
    assert not certificate_matches(domain, [f"*.{domain}"])
    assert not certificate_matches(f"{label}.{label}.{domain}", [f"*.{domain}"])


@given(st.text(max_size=40), st.lists(st.text(max_size=40), max_size=3))
def test_certificate_matches_never_raises(host: str, dns_names: list[str]) -> None:
    assert certificate_matches(host, dns_names) in (True, False)
