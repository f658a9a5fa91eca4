"""The fixed names and limits of RFC 8461 and RFC 8460, spelled as on the wire."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.rfcnames import (
    MAX_POLICY_BYTES,
    WELL_KNOWN_PATH,
    domain_of_policy_host,
    policy_host,
    policy_url,
    sts_record_name,
    tlsrpt_record_name,
)

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
DOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join)


def test_names_of_one_domain_as_the_rfcs_spell_them() -> None:
    assert sts_record_name("example.com") == "_mta-sts.example.com"  # RFC 8461 §3.1
    assert policy_host("example.com") == "mta-sts.example.com"  # RFC 8461 §3.2
    assert WELL_KNOWN_PATH == "/.well-known/mta-sts.txt"  # RFC 8461 §3.2
    assert policy_url("example.com") == "https://mta-sts.example.com/.well-known/mta-sts.txt"
    assert tlsrpt_record_name("example.com") == "_smtp._tls.example.com"  # RFC 8460 §3
    assert MAX_POLICY_BYTES == 65536  # RFC 8461 §3.3: 64 KB


@pytest.mark.parametrize(
    ("name", "domain"),
    [
        ("mta-sts.example.com", "example.com"),
        ("mta-sts.mta-sts.example", "mta-sts.example"),  # only the first label is stripped
        ("mta-sts.", None),  # no domain after the prefix
        ("mta-sts", None),
        ("example.com", None),
        ("_mta-sts.example.com", None),  # the TXT record name is not the policy host
        ("xmta-sts.example.com", None),
    ],
)
def test_domain_of_policy_host(name: str, domain: str | None) -> None:
    assert domain_of_policy_host(name) == domain


@given(DOMAIN)
def test_domain_of_policy_host_inverts_policy_host(domain: str) -> None:
    assert domain_of_policy_host(policy_host(domain)) == domain
