"""``mtasts lint``: verdicts, exit codes and JSON shape, on the RFC edge cases.

The edge cases are those of shared/research/sending-anchors.md §2.5, where the incumbent
postfix-mta-sts-resolver gets the RFC wrong; ``mtasts lint`` must agree with the RFC.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from mtasts.cli.main import cli

GOOD_POLICY = "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmax_age: 86400\n"


def run_lint(kind: str, data: bytes, *extra: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["lint", kind, "-", "--json", *extra], input=data)
    return result.exit_code, orjson.loads(result.output) if result.output else None


@pytest.mark.parametrize(
    ("record", "valid"),
    [
        ("v=STSv1; id=20160831085700Z;", True),  # RFC 8461 §3.1 example
        ("v=STSv1; id=20160831085700Z", True),  # trailing ';' is optional
        ("v=STSv1; foo=bar; id=1", True),  # extensions in any position after v
        ("v=STSv1; id=" + "a" * 32, True),  # 32 characters is the maximum
        ("v=STSv1; id=" + "a" * 33, False),  # id longer than 32
        ("v=STSv1; id=", False),  # empty id
        ("v=STSv1; id=bad-id!", False),  # id with non-alphanumerics
        ("v=STSv1;", False),  # id missing
        ("id=1; v=STSv1", False),  # version not first
        ("v=STSv10; id=1", False),  # not an STSv1 record at all
        ("v=stsv1; id=1", False),  # version is case-sensitive
        ("v=STSv1; id=1; x=\u00e9", False),  # record is US-ASCII only
    ],
)
def test_sts_record_verdicts(record: str, valid: bool) -> None:
    code, out = run_lint("sts-record", (record + "\n").encode())
    assert out["valid"] is valid, out
    assert code == (0 if valid else 1)
    if valid:
        assert out["value"]["id"]
        assert out["errors"] == []
    else:
        assert out["value"] is None
        assert out["errors"]
        assert all({"code", "message"} <= set(e) for e in out["errors"])


@pytest.mark.parametrize(
    ("policy", "valid"),
    [
        (GOOD_POLICY, True),
        (GOOD_POLICY.replace("\n", "\r\n"), True),  # CRLF line ends are valid
        ("version: STSv1\nmode: none\nmax_age: 86400\n", True),  # mode none needs no mx
        ("version: STSv1\nmode: enforce\nmax_age: 86400\n", False),  # enforce without mx
        ("version: STSv1\nmode: enforce\nmode: none\nmx: a.test\nmax_age: 86400\n", True),
        ("version: STSv1\nmode: enforce\nmx: mx1.good.test\n", False),  # max_age missing
        ("mode: enforce\nmx: mx1.good.test\nmax_age: 86400\n", False),  # version missing
        (GOOD_POLICY.replace("86400", "+86400"), False),  # sign is not a DIGIT
        (GOOD_POLICY.replace("86400", "86_400"), False),  # underscore is not a DIGIT
        (GOOD_POLICY.replace("86400", "12345678901"), False),  # 11 digits
        (GOOD_POLICY.replace("enforce", "Enforce"), False),  # mode is case-sensitive
        (GOOD_POLICY.replace("mx1.good.test", ""), False),  # empty mx value
        (GOOD_POLICY.replace("mx1.good.test", "mx1.x.test servername=other.test"), False),
        (GOOD_POLICY.replace("mx1.good.test", "*.*.x.test"), False),  # two wildcards
        (GOOD_POLICY.replace("mx1.good.test", "192.0.2.1"), False),  # IP, not a domain
        (GOOD_POLICY.replace("mx1.good.test", "m\u00f8x.x.test"), False),  # U-label
        (GOOD_POLICY.replace("\n", "\r"), False),  # bare CR is no line end
    ],
)
def test_policy_verdicts(policy: str, valid: bool) -> None:
    code, out = run_lint("policy", policy.encode())
    assert out["valid"] is valid, out
    assert code == (0 if valid else 1)


def test_policy_first_duplicate_wins() -> None:
    """RFC 8461 §3.2: for every key but mx only the first occurrence counts."""
    text = "version: STSv1\nmode: none\nmode: enforce\nmx: a.test\nmax_age: 86400\n"
    _, out = run_lint("policy", text.encode())
    assert out["value"]["mode"] == "none"


def test_policy_value_is_normalised() -> None:
    _, out = run_lint("policy", GOOD_POLICY.replace("mx1.good.test", "MX1.Good.Test").encode())
    value = out["value"]
    assert value["version"] == "STSv1"
    assert value["mode"] == "enforce"
    assert value["mx"] == ["mx1.good.test"]
    assert value["max_age"] == 86400
    assert value["extensions"] == {}


def test_policy_max_age_above_maximum_is_capped_with_a_warning() -> None:
    """RFC 8461 §3.2 caps max_age at 31557600; we clamp and warn rather than reject."""
    code, out = run_lint("policy", GOOD_POLICY.replace("86400", "31557601").encode())
    assert code == 0
    assert out["value"]["max_age"] == 31557600
    assert out["warnings"]


def test_policy_that_is_not_utf8_is_a_clear_error() -> None:
    code, out = run_lint("policy", GOOD_POLICY.encode() + b"\xff\xfe\n")
    assert code == 1
    assert out["errors"][0]["code"] == "policy.encoding"


def test_oversized_input_is_rejected_without_parsing() -> None:
    code, out = run_lint("policy", b"x" * (64 * 1024 + 1))
    assert code == 1
    assert out["errors"][0]["code"] == "policy.too-large"


@pytest.mark.parametrize(
    ("record", "rua"),
    [
        ("v=TLSRPTv1; rua=mailto:tlsrpt@example.com", ["mailto:tlsrpt@example.com"]),
        (
            "v=TLSRPTv1; rua=mailto:a@example.com, https://r.example.com/v1",
            ["mailto:a@example.com", "https://r.example.com/v1"],
        ),
    ],
)
def test_tlsrpt_record_value(record: str, rua: list[str]) -> None:
    code, out = run_lint("tlsrpt-record", record.encode() + b"\n")
    assert code == 0
    assert out["value"]["rua"] == rua


@pytest.mark.parametrize(
    "record",
    [
        "v=TLSRPTv1;",  # rua missing
        "v=TLSRPTv1; rua=ftp://example.com/x",  # unusable scheme
        "v=TLSRPTv2; rua=mailto:a@example.com",  # not a TLSRPTv1 record
    ],
)
def test_tlsrpt_record_invalid(record: str) -> None:
    code, out = run_lint("tlsrpt-record", record.encode())
    assert code == 1
    assert out["errors"]


def test_report_samples_are_read_from_json_gzip_and_mail(samples_dir: Path) -> None:
    """Every real sample is readable; repairs show up as warnings, not errors."""
    files = sorted(p for p in samples_dir.rglob("*") if p.suffix in {".json", ".gz", ".eml"})
    assert len(files) >= 15
    for path in files:
        code, out = run_lint("report", path.read_bytes())
        assert code == 0, (path, out["errors"])
        assert out["value"]["policies"], path


def test_report_written_back_in_rfc_wire_form(samples_dir: Path) -> None:
    data = (samples_dir / "domainaware+parsedmarc" / "rfc8460.json").read_bytes()
    code, out = run_lint("report", gzip.compress(data))
    assert code == 0
    value = out["value"]
    assert {"organization-name", "date-range", "contact-info", "report-id", "policies"} <= set(
        value
    )
    assert value["date-range"]["start-datetime"].endswith("Z")


def test_report_that_is_garbage_is_invalid() -> None:
    code, out = run_lint("report", b"\x00garbage")
    assert code == 1
    assert out["errors"]


def test_human_output_names_the_error_code() -> None:
    result = CliRunner().invoke(cli, ["lint", "sts-record", "-"], input=b"v=STSv1; id=\n")
    assert result.exit_code == 1
    assert "invalid" in result.output
    assert "sts-record." in result.output


def test_unknown_kind_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["lint", "nonsense", "-"], input=b"")
    assert result.exit_code == 2
