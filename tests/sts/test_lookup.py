"""The PolicyLookup value: TLS-RPT policy type, determination, and the --json shape."""

from __future__ import annotations

import pytest

from mtasts.errors import Notice
from mtasts.results import PolicyType, ResultType
from mtasts.sts.lookup import LookupStatus, PolicyLookup, Source
from mtasts.sts.policy import parse_policy

TEXT = (
    "version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmx: *.example.net\r\n"
    "max_age: 600\r\n"
)
JSON_KEYS = {
    "domain",
    "policy_type",
    "mode",
    "id",
    "mx",
    "max_age",
    "result_type",
    "detail",
    "source",
}


def lookup(status: LookupStatus, **fields: object) -> PolicyLookup:
    return PolicyLookup(domain="example.com", status=status, source=Source.FETCHED, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "policy_type", "determined"),
    [
        (LookupStatus.STS, PolicyType.STS, True),
        # A published record whose policy failed is still an "sts" policy for TLS-RPT.
        (LookupStatus.FAILED, PolicyType.STS, True),
        (LookupStatus.NO_POLICY, PolicyType.NO_POLICY_FOUND, True),
        (LookupStatus.UNDETERMINED, PolicyType.NO_POLICY_FOUND, False),
    ],
)
def test_policy_type_and_determination(
    status: LookupStatus, policy_type: PolicyType, determined: bool
) -> None:
    result = lookup(status)
    assert result.policy_type is policy_type
    assert result.determined is determined


def test_json_of_a_policy() -> None:
    """The documented keys, mx patterns as strings, snake_case, raw text kept."""
    result = lookup(LookupStatus.STS, policy=parse_policy(TEXT), record_id="abc", raw_text=TEXT)
    data = result.to_json()
    assert set(data) >= JSON_KEYS
    assert data["policy_type"] == "sts"
    assert data["mode"] == "testing"
    assert data["mx"] == ["mx1.example.com", "*.example.net"]
    assert data["max_age"] == 600
    assert data["id"] == "abc"
    assert data["source"] == "fetched"
    assert data["policy_text"] == TEXT
    assert data["result_type"] is None


def test_json_of_a_failure() -> None:
    """A failed policy: mode null, result_type and cause kept for the report."""
    cause = Notice("fetch.webpki", "certificate has expired", "RFC 8461 §3.3")
    result = lookup(
        LookupStatus.FAILED,
        record_id="1",
        result_type=ResultType.STS_WEBPKI_INVALID,
        cause=cause,
        detail="certificate has expired",
    )
    data = result.to_json()
    assert data["mode"] is None
    assert data["mx"] == []
    assert data["result_type"] == "sts-webpki-invalid"
    assert data["cause"] == {"code": "fetch.webpki", "message": "certificate has expired",
                             "rfc": "RFC 8461 §3.3"}  # fmt: skip
