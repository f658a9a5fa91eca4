"""The one table from a TLS failure to its RFC 8460 §4.3 result type."""

from __future__ import annotations

import pytest

from mtasts.results import (
    DANE_RESULTS,
    FAILURES,
    LIBTLSRPT_CODES,
    NEGOTIATION_RESULTS,
    STS_RESULTS,
    ResultType,
    verify_code_result,
    verify_text_result,
)


def test_every_registered_result_type_has_one_row() -> None:
    assert sorted(f.result_type for f in FAILURES) == sorted(ResultType)


def test_the_three_groups_of_section_4_3_partition_the_registry() -> None:
    groups = (NEGOTIATION_RESULTS, DANE_RESULTS, STS_RESULTS)
    assert sum(len(g) for g in groups) == len(ResultType)
    assert frozenset().union(*groups) == frozenset(ResultType)


def test_libtlsrpt_codes_are_unique() -> None:
    assert len(LIBTLSRPT_CODES) == len(FAILURES)


def test_an_openssl_code_means_one_result_type() -> None:
    seen: dict[int, ResultType] = {}
    for row in FAILURES:
        for code, _ in row.openssl:
            assert seen.setdefault(code, row.result_type) is row.result_type


@pytest.mark.parametrize(
    ("row", "code", "text"), [(f, c, t) for f in FAILURES for c, t in f.openssl]
)
def test_code_and_text_of_one_openssl_error_agree(row: object, code: int, text: str) -> None:
    """Postfix logs ``num=<code>:<text>``; the checker has the code: both give one type."""
    assert verify_code_result(code) is verify_text_result(f"num={code}:{text}")
    assert verify_code_result(code) is row.result_type  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("code", "result"),
    [
        (10, ResultType.CERTIFICATE_EXPIRED),  # X509_V_ERR_CERT_HAS_EXPIRED
        (62, ResultType.CERTIFICATE_HOST_MISMATCH),  # X509_V_ERR_HOSTNAME_MISMATCH
        (20, ResultType.CERTIFICATE_NOT_TRUSTED),  # unable to get local issuer certificate
        (18, ResultType.CERTIFICATE_NOT_TRUSTED),  # self-signed leaf
        (9, ResultType.VALIDATION_FAILURE),  # not yet valid: no category of its own
        (26, ResultType.VALIDATION_FAILURE),  # unsuitable certificate purpose
        (0, ResultType.VALIDATION_FAILURE),  # no code at all
    ],
)
def test_verify_code_result(code: int, result: ResultType) -> None:
    assert verify_code_result(code) is result


@pytest.mark.parametrize(
    ("why", "result"),
    [
        ("self signed certificate in certificate chain", ResultType.CERTIFICATE_NOT_TRUSTED),
        ("Certificate Has Expired", ResultType.CERTIFICATE_EXPIRED),  # case folded
        ("num=9:certificate is not yet valid", ResultType.VALIDATION_FAILURE),
        ("", ResultType.VALIDATION_FAILURE),
    ],
)
def test_verify_text_result(why: str, result: ResultType) -> None:
    assert verify_text_result(why) is result
