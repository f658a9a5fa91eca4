"""Policy and DNS record generation (no I/O): content-derived id, coverage refusal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import PolicyError, TlsRptRecordError
from mtasts.publish.generate import generate, patterns_for, policy_id, rollout_steps
from mtasts.sts.policy import Mode, parse_policy
from mtasts.sts.record import parse_sts_record
from mtasts.tlsrpt.record import parse_tlsrpt_record


def test_generates_a_valid_policy_and_its_records() -> None:
    pub = generate(
        "Example.COM",
        ["mx1.example.com.", "*.mail.example.com"],
        Mode.TESTING,
        rua=["mailto:tls@example.com"],
        live_mx=["mx1.example.com", "a.mail.example.com"],
    )
    assert pub.domain == "example.com"
    policy = parse_policy(pub.policy_text)
    assert policy == pub.policy
    assert policy.max_age == 604800  # one week while testing
    assert [str(p) for p in policy.mx] == ["mx1.example.com", "*.mail.example.com"]
    names = [(r.name, r.type) for r in pub.records]
    assert names == [
        ("_smtp._tls.example.com.", "TXT"),  # reports first
        ("_mta-sts.example.com.", "TXT"),
        ("mta-sts.example.com.", "CNAME"),
    ]
    sts = parse_sts_record(pub.records[1].value)
    assert sts is not None
    assert sts.id == pub.record_id == policy_id(pub.policy_text)
    tlsrpt = parse_tlsrpt_record(pub.records[0].value)
    assert tlsrpt is not None
    assert tlsrpt.rua == ("mailto:tls@example.com",)
    assert pub.records[1].zone_line().startswith('_mta-sts.example.com. 300 IN TXT "v=STSv1; id=')


def test_mx_defaults_to_the_live_mx_set() -> None:
    pub = generate("example.com", [], Mode.ENFORCE, live_mx=["mx2.example.com", "mx1.example.com"])
    assert [str(p) for p in pub.policy.mx] == ["mx2.example.com", "mx1.example.com"]
    assert pub.policy.max_age == 1209600


def test_refuses_a_policy_that_leaves_a_live_mx_uncovered() -> None:
    with pytest.raises(PolicyError) as info:
        generate(
            "example.com",
            ["mx1.example.com"],
            Mode.ENFORCE,
            live_mx=["mx1.example.com", "mx2.example.net"],
        )
    assert info.value.code == "publish.mx-not-covered"
    assert "mx2.example.net" in info.value.message
    forced = generate(
        "example.com",
        ["mx1.example.com"],
        Mode.ENFORCE,
        live_mx=["mx1.example.com", "mx2.example.net"],
        force=True,
    )
    assert forced.uncovered == ("mx2.example.net",)


@pytest.mark.parametrize(
    "bad",
    [
        "*.*.example.com",  # defect: wildcard of two labels
        "mail.bücher.example",  # defect: U-label in a policy
        "192.0.2.1",  # defect: an IP address
        "mx1.example.com:25",  # defect: a port
    ],
)
def test_rejects_bad_mx_values(bad: str) -> None:
    with pytest.raises(PolicyError):
        generate("example.com", [bad], Mode.TESTING)


def test_rejects_unusable_rua() -> None:
    with pytest.raises(TlsRptRecordError):
        generate("example.com", ["mx1.example.com"], Mode.TESTING, rua=["http://x.example/"])


_label = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)


@given(
    hosts=st.lists(
        st.tuples(_label, _label).map(lambda t: f"{t[0]}.{t[1]}.example"), min_size=1, max_size=5
    ),
    mode=st.sampled_from(list(Mode)),
    max_age=st.integers(0, 31557600),
)
def test_id_changes_exactly_when_the_policy_does(
    hosts: list[str], mode: Mode, max_age: int
) -> None:
    pub = generate("example.com", hosts, mode, max_age=max_age)
    assert parse_policy(pub.policy_text) == pub.policy  # the written policy parses back
    again = generate("example.com", list(hosts), mode, max_age=max_age)
    assert again.record_id == pub.record_id
    other = generate("example.com", hosts, mode, max_age=(max_age + 1) % 31557601)
    assert other.record_id != pub.record_id
    assert 1 <= len(pub.record_id) <= 32
    assert pub.record_id.isalnum()


def test_patterns_drop_duplicates_and_root_dots() -> None:
    assert [str(p) for p in patterns_for(["MX1.example.com.", "mx1.example.com"])] == [
        "mx1.example.com"
    ]


def test_rollout_path_goes_policy_first_then_record() -> None:
    steps = " ".join(rollout_steps(generate("example.com", ["mx1.example.com"], Mode.TESTING)))
    assert steps.index("Serve the policy") < steps.index("publish the _mta-sts TXT")
    assert "--mode enforce" in steps


@pytest.mark.parametrize(
    ("given", "uris", "notes"),
    [
        (["mailto:tls@example.com"], ("mailto:tls@example.com",), 0),
        # several mailboxes of one mailto (RFC 6068): the commas become %2C (RFC 8460 §3)
        (["mailto:a@example.com,b@example.com"], ("mailto:a@example.com%2Cb@example.com",), 1),
        # two URIs in one value: split, not glued into one address list
        (
            ["mailto:a@example.com, https://r.example.com/t"],
            ("mailto:a@example.com", "https://r.example.com/t"),
            1,
        ),
        (["https://r.example.com/a;b!c"], ("https://r.example.com/a%3Bb%21c",), 1),
        (
            ["mailto:a@example.com", "MAILTO:b@example.com"],
            ("mailto:a@example.com", "MAILTO:b@example.com"),
            0,
        ),
        (["mailto:a@example.com", "mailto:a@example.com"], ("mailto:a@example.com",), 0),
    ],
)
def test_rua_values_are_encoded_or_split(
    given: list[str], uris: tuple[str, ...], notes: int
) -> None:
    pub = generate("example.com", ["mx1.example.com"], Mode.TESTING, rua=given)
    assert pub.rua == uris
    record = parse_tlsrpt_record(pub.records[0].value)
    assert record is not None
    assert record.rua == uris  # the record reads back as exactly these URIs
    assert len(pub.notes) == notes


@pytest.mark.parametrize(
    "bad", ["mailto:a@example.com!10m", "example.com", "http://r.example.com/", "mailto:"]
)
def test_unusable_rua_is_refused(bad: str) -> None:
    with pytest.raises(TlsRptRecordError):
        generate("example.com", ["mx1.example.com"], Mode.TESTING, rua=[bad])


def test_mode_none_needs_no_mx() -> None:
    pub = generate("example.com", [], Mode.NONE)
    assert pub.policy_text == "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n"


def test_next_steps_fit_the_mode() -> None:
    def steps(mode: Mode, rua: tuple[str, ...] = ("mailto:t@example.com",)) -> str:
        mx = [] if mode is Mode.NONE else ["mx1.example.com"]
        return " ".join(rollout_steps(generate("example.com", mx, mode, rua=rua)))

    testing = steps(Mode.TESTING)
    assert "--mode enforce" in testing
    assert "No --rua" not in testing
    assert "No --rua given" in steps(Mode.TESTING, ())
    enforce = steps(Mode.ENFORCE)
    assert "Stay in mode testing" not in enforce
    assert "--mode enforce" not in enforce
    assert enforce.index("read the TLS reports") < enforce.index("Serve the policy")
    none = steps(Mode.NONE)
    assert "RFC 8461 §8.3" in none
    assert "enforce" not in none
    assert none.index("Serve the policy") < none.index("publish the _mta-sts TXT")
    served = " ".join(
        rollout_steps(generate("example.com", ["mx.example.com"], Mode.TESTING), "SERVED HERE")
    )
    assert "SERVED HERE" in served
