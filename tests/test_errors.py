"""The exception tree: each error knows its code, RFC section and TLS-RPT result type."""

from __future__ import annotations

import pytest

from mtasts import errors
from mtasts.results import ResultType


@pytest.mark.parametrize(
    ("cls", "result_type"),
    [
        (errors.StsRecordError, None),  # RFC 8461 §3.1: a bad record is as if absent
        (errors.PolicyError, ResultType.STS_POLICY_INVALID),
        (errors.FetchError, ResultType.STS_POLICY_FETCH_ERROR),
        (errors.WebPkiError, ResultType.STS_WEBPKI_INVALID),
    ],
)
def test_each_error_knows_its_result_type(
    cls: type[errors.MtastsError], result_type: ResultType | None
) -> None:
    assert cls.result_type == result_type


def test_error_carries_code_message_and_rfc() -> None:
    err = errors.PolicyError("mode is missing", code="policy.mode.missing")
    assert err.notice() == errors.Notice("policy.mode.missing", "mode is missing", "RFC 8461 §3.2")
    assert str(err) == "mode is missing (RFC 8461 §3.2)"


def test_webpki_error_is_a_fetch_error() -> None:
    assert issubclass(errors.WebPkiError, errors.FetchError)


def test_linted_is_valid_only_with_a_value_and_no_errors() -> None:
    assert errors.Linted(value=1).valid
    assert not errors.Linted(value=None).valid
    assert not errors.Linted(value=None, errors=(errors.Notice("x", "y"),)).valid


def test_unregistered_result_type_parses_to_none() -> None:
    assert ResultType.parse("certificate-expired") is ResultType.CERTIFICATE_EXPIRED
    assert ResultType.parse("made-up-type") is None
