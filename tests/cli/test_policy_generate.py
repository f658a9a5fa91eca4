"""``mtasts policy generate`` through the real CLI (issue 10): --mx means no MX lookup,
--out DIR is a directory (created), the static-hosting layout, --mode none without --mx,
rua encoding, and next steps that fit the mode. DNS points at a closed port with a short
timeout: any lookup these cases must not do fails the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mtasts.cli.main import cli

NO_DNS = {"MTASTS_NAMESERVER": "127.0.0.1:9", "MTASTS_TIMEOUT_DNS": "0.5", "MTASTS_CONFIG": ""}


def generate(*args: str) -> Result:
    return CliRunner().invoke(cli, ["policy", "generate", *args], env=NO_DNS, prog_name="mtasts")


def as_json(result: Result) -> dict[str, object]:
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert isinstance(out, dict)
    return out


def test_mx_given_means_no_lookup() -> None:
    """Old code looked the MX set up anyway and failed when DNS did not answer."""
    out = as_json(generate("-d", "new.example", "--mx", "mx1.new.example", "--json"))
    assert "mx: mx1.new.example" in str(out["policy"])


def test_check_live_mx_asks_dns() -> None:
    result = generate("-d", "new.example", "--mx", "mx1.new.example", "--check-live-mx")
    assert result.exit_code == 75  # DNS did not answer: try again later (docs/exit-codes.md)
    assert "cannot look up the MX records of new.example" in result.output


def test_without_mx_the_live_set_is_looked_up() -> None:
    result = generate("-d", "new.example")
    assert result.exit_code == 75
    assert "give them with --mx" in result.output
    result = generate("-d", "new.example", "--no-lookup")
    assert result.exit_code == 2
    assert "--no-lookup needs the MX hosts" in result.output


def test_mode_none_needs_no_mx_and_no_lookup() -> None:
    out = as_json(generate("-d", "old.example", "--mode", "none", "--json"))
    assert out["policy"] == "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n"
    steps = " ".join(str(s) for s in out["steps"])  # type: ignore[attr-defined]
    assert "RFC 8461 §8.3" in steps
    assert "--mode enforce" not in steps


@pytest.mark.parametrize("form", ["{d}/new", "{d}/new/", "{d}/a/b/c"])
def test_out_dir_is_created(tmp_path: Path, form: str) -> None:
    out = form.format(d=tmp_path)
    result = generate("-d", "example.com", "--mx", "mx.example.com", "--out", out, "--json")
    written = Path(out.rstrip("/")) / "example.com.txt"
    assert as_json(result)["file"] == str(written)
    assert written.read_text().startswith("version: STSv1")
    assert Path(out.rstrip("/")).is_dir()  # old code wrote a file named like the directory


def test_out_existing_file_or_txt_name_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "policy.txt"
    result = generate("-d", "example.com", "--mx", "mx.example.com", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert target.is_file()
    other = tmp_path / "existing"
    other.write_text("old")
    result = generate("-d", "example.com", "--mx", "mx.example.com", "-o", str(other))
    assert result.exit_code == 0, result.output
    assert other.read_text().startswith("version: STSv1")


def test_static_layout(tmp_path: Path) -> None:
    result = generate(
        "-d", "example.com", "--mx", "mx.example.com", "--out", str(tmp_path / "www"),
        "--layout", "static",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = tmp_path / "www/example.com/.well-known/mta-sts.txt"
    assert written.read_text().startswith("version: STSv1")
    assert f"make {tmp_path / 'www/example.com'} the document root" in result.output
    (tmp_path / "f").write_text("x")
    result = generate(
        "-d", "example.com", "--mx", "mx.example.com", "-o", str(tmp_path / "f"),
        "--layout", "static",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "needs a directory" in result.output


def test_out_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = generate("-d", "example.com", "--mx", "mx.example.com", "-o", f"{tmp_path}/file/sub")
    assert result.exit_code == 78  # the configuration (here: --out) names an unusable path
    assert "cannot write" in result.output
    assert "Traceback" not in result.output


def test_rua_commas_are_encoded_and_noted() -> None:
    out = as_json(
        generate(
            "-d", "example.com", "--mx", "mx.example.com", "--json",
            "--rua", "mailto:a@example.com,b@example.com",
        )
    )  # fmt: skip
    assert out["rua"] == ["mailto:a@example.com%2Cb@example.com"]
    assert out["notes"]
    records = {r["name"]: r["value"] for r in out["records"]}  # type: ignore[attr-defined]
    assert records["_smtp._tls.example.com."] == (
        "v=TLSRPTv1; rua=mailto:a@example.com%2Cb@example.com"
    )


def test_rua_size_limit_is_refused_in_one_line() -> None:
    result = generate(
        "-d", "example.com", "--mx", "mx.example.com", "--rua", "mailto:a@x.example!10m"
    )
    assert result.exit_code == 1
    assert "no DMARC-style size limit" in result.output
    assert "Traceback" not in result.output
