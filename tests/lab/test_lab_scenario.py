"""Scenario TOML: the documented keys work; every mistake names the key and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtasts.errors import ConfigError
from mtasts.lab import DomainSpec, PolicyHostSpec, Scenario, SmtpSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def test_issue_example_reads_as_written() -> None:
    """The scenario in the issue text is valid and means what it says."""
    s = Scenario.load(EXAMPLES / "issue-example.toml")
    (d,) = s.domains
    assert d == DomainSpec(
        name="good.test",
        mx=("mx1.good.test",),
        sts=(("v=STSv1; id=1",),),
        policy="version: STSv1\nmode: enforce\nmx: mx1.good.test\nmax_age: 86400\n",
        policy_host=PolicyHostSpec(),
        has_policy_host=True,
        tlsrpt=(("v=TLSRPTv1; rua=mailto:tls@good.test",),),
    )
    assert s.hosts[0].smtp == SmtpSpec(starttls=True, cert="valid")


@pytest.mark.parametrize(
    ("sts", "records"),
    [
        ('"v=STSv1; id=1"', (("v=STSv1; id=1",),)),  # a string: one record
        ('["v=STSv1; ", "id=1"]', (("v=STSv1; ", "id=1"),)),  # one record, two strings
        ('[["v=STSv1; id=1"], ["v=STSv1; id=2"]]', (("v=STSv1; id=1",), ("v=STSv1; id=2",))),
    ],
)
def test_txt_shapes(sts: str, records: tuple[tuple[str, ...], ...]) -> None:
    """sts/tlsrpt: string, list of strings, list of lists map to records of strings."""
    s = Scenario.from_toml(f'[[domain]]\nname = "a.test"\nsts = {sts}\n')
    assert s.domains[0].sts == records


def test_names_are_normalised() -> None:
    """Names are lower case without a trailing dot, however they are written."""
    s = Scenario.from_toml('[[domain]]\nname = "Good.TEST."\nmx = ["MX1.Good.Test."]\n')
    assert s.domains[0].name == "good.test"
    assert s.domains[0].mx == ("mx1.good.test",)


def test_bundled_scenarios_load() -> None:
    """Every scenario shipped in examples/scenarios is valid."""
    files = sorted(EXAMPLES.glob("*.toml"))
    assert any(f.name == "demo.toml" for f in files)
    for f in files:
        assert Scenario.load(f).domains


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        # a misspelt top-level table
        ('[[domain]]\nname = "a.test"\n\n[[domians]]\nname = "b.test"\n', "domians", 4),
        # a misspelt domain key in the second domain
        ('[[domain]]\nname = "a.test"\n[[domain]]\nname = "b.test"\nmxs = ["x"]\n', "mxs", 5),
        # a misspelt key inside the policy_host inline table
        ('[[domain]]\nname = "a.test"\n\npolicy_host = { statuss = 404 }\n', "statuss", 4),
        # a misspelt smtp key on a host
        ('[[host]]\nname = "mx.a.test"\nsmtp = { starttls = true, certs = "valid" }\n', "certs", 3),
        # a cert variant that does not exist
        ('[[host]]\nname = "mx.a.test"\nsmtp = { cert = "revoked" }\n', "cert", 3),
        # a status that is not a number
        ('[[domain]]\nname = "a.test"\npolicy_host = { status = "404" }\n', "status", 3),
        # a DNS fault that does not exist
        ('[[dns]]\nname = "a.test"\nfault = "refused"\n', "fault", 3),
        # an unknown attacker
        ('[[host]]\nname = "m.test"\nsmtp = {}\nattacker = "dos"\n', "attacker", 4),
        # an attacker with nothing to attack
        ('[[host]]\nname = "m.test"\nattacker = "own-cert"\n', "attacker", 3),
        # TLS version that does not exist
        ('[[host]]\nname = "m.test"\nsmtp = { tls_max_version = "0.9" }\n', "tls_max_version", 3),
        # mx given as a number
        ('[[domain]]\nname = "a.test"\nmx = 10\n', "mx", 3),
        # the same domain twice: the second one is reported
        ('[[domain]]\nname = "a.test"\n[[domain]]\nname = "A.test."\n', "a.test", 4),
        # an address outside loopback
        ('[[host]]\nname = "m.test"\naddress = "10.0.0.1"\n', "address", 3),
    ],
)
def test_errors_name_key_and_line(text: str, key: str, line: int) -> None:
    """A mistake is a ConfigError whose message has the key and the line number."""
    with pytest.raises(ConfigError) as info:
        Scenario.from_toml(text, source="s.toml")
    message = str(info.value)
    assert key in message
    assert f"s.toml, line {line}:" in message


def test_invalid_toml_is_a_config_error() -> None:
    """TOML syntax errors come out as ConfigError with tomllib's position."""
    with pytest.raises(ConfigError, match=r"line 2"):
        Scenario.from_toml('[[domain]]\nname = "a.test\n', source="x.toml")


def test_missing_name_is_an_error() -> None:
    """A [[domain]] without a name says so."""
    with pytest.raises(ConfigError, match=r"needs a name"):
        Scenario.from_toml('[[domain]]\nmx = ["m.test"]\n')


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A scenario path that cannot be read is a ConfigError naming the path."""
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        Scenario.load(tmp_path / "nope.toml")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    """A scenario saved in another encoding is named as such, not a traceback."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[[domain]]\nname = "caf\xe9.test"\n')  # defect: Latin-1, not UTF-8
    with pytest.raises(ConfigError, match="UTF-8"):
        Scenario.load(path)


def test_tlsrpt_https_statuses() -> None:
    """[tlsrpt_https] statuses sets the receiver's answer sequence; it must be numbers."""
    s = Scenario.from_toml("[tlsrpt_https]\nstatuses = [500, 200]\n")
    assert s.tlsrpt_https_statuses == (500, 200)
    with pytest.raises(ConfigError, match=r"line 2: statuses"):
        Scenario.from_toml('[tlsrpt_https]\nstatuses = ["500"]\n')


def test_scenarios_add_up() -> None:
    """Scenario + Scenario concatenates domains, hosts and DNS entries."""
    a = Scenario.from_toml('[[domain]]\nname = "a.test"\n')
    b = Scenario.from_toml('[[domain]]\nname = "b.test"\n[tlsrpt_https]\nstatuses = [503]\n')
    both = a + b
    assert [d.name for d in both.domains] == ["a.test", "b.test"]
    assert both.tlsrpt_https_statuses == (503,)
    assert both.domain("B.test.").name == "b.test"
