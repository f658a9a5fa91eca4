"""The receiver's pure decisions: dedup keys, ownership, quarantine, retention."""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.results import PolicyType
from mtasts.tlsrpt.model import PolicyResult, Report
from mtasts.tlsrpt.reader import read_report
from mtasts.tlsrpt.receive.decide import (
    NO_DKIM,
    Disposition,
    DkimResult,
    DkimVerdict,
    OtherDomains,
    ReceiveSettings,
    content_hash,
    decide,
    dedup_key,
    is_ours,
    promotes,
    report_day,
    retention_cutoff,
)


def _report(*domains: str, report_id: str = "r1", org: str = "Google LLC") -> Report:
    return Report(
        organization_name=org,
        date_range_start=datetime(2026, 11, 22, tzinfo=UTC),
        date_range_end=datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC),
        contact_info="tls@google.com",
        report_id=report_id,
        policies=tuple(PolicyResult(PolicyType.STS, (), d, (), 1, 0, ()) for d in domains),
    )


def test_the_same_report_from_json_gzip_and_mail_has_one_key_and_hash(samples_dir: Path) -> None:
    raw = (samples_dir / "cry-inc+dmarc-report-viewer" / "google.json").read_bytes()
    a = read_report(raw).value
    b = read_report(gzip.compress(raw, mtime=1)).value
    c = read_report(b"  " + raw.replace(b"\n", b"\r\n")).value
    assert a is not None
    assert b is not None
    assert c is not None
    assert dedup_key(a) == dedup_key(b) == dedup_key(c)
    assert content_hash(a) == content_hash(b) == content_hash(c)


def test_one_report_id_for_several_domains_is_several_reports() -> None:
    """Halon reuses one report-id for every domain of a run: never merge them."""
    assert dedup_key(_report("a.test")) != dedup_key(_report("b.test"))


def test_organisation_case_and_spacing_do_not_split_a_report() -> None:
    assert dedup_key(_report("a.test", org="Google LLC")) == dedup_key(
        _report("a.test", org=" google  llc ")
    )


@given(st.text(max_size=30), st.text(max_size=30))
def test_different_report_ids_never_share_a_key(a: str, b: str) -> None:
    if a.strip() != b.strip():
        assert dedup_key(_report("a.test", report_id=a)) != dedup_key(
            _report("a.test", report_id=b)
        )


@pytest.mark.parametrize(
    ("domain", "ours"),
    [
        ("example.com", True),
        ("EXAMPLE.com.", True),
        ("mx1.example.com", True),  # DANE reports name the MX host
        ("badexample.com", False),  # a suffix, not a parent
        ("example.org", False),
        ("", False),  # Postfix's missing policy-domain
    ],
)
def test_is_ours(domain: str, ours: bool) -> None:
    assert is_ours(domain, frozenset({"example.com"})) is ours


OWNED = ReceiveSettings(owned_domains=frozenset({"Example.COM."}))
PASS = DkimVerdict(DkimResult.PASS, "google.com", "s1", None, True)
UNALIGNED = DkimVerdict(DkimResult.PASS, "evil.test", "s1", None, False)


@pytest.mark.parametrize(
    ("report", "settings", "kw", "disposition", "code"),
    [
        # ours, no requirement
        (_report("example.com"), OWNED, {}, Disposition.STORED, None),
        # one of several domains ours: stored whole
        (_report("other.test", "example.com"), OWNED, {}, Disposition.STORED, None),
        # none ours: refused, or quarantined, as configured
        (_report("other.test"), OWNED, {}, Disposition.REFUSED, "not-our-domain"),
        (
            _report("other.test"),
            replace(OWNED, other_domains=OtherDomains.QUARANTINE),
            {},
            Disposition.QUARANTINED,
            "not-our-domain",
        ),
        # no owned domains configured: everything is taken
        (_report("other.test"), ReceiveSettings(), {}, Disposition.STORED, None),
        # DKIM required: unsigned, unaligned, failed mail quarantined; pass stored
        (
            _report("example.com"),
            replace(OWNED, require_dkim=True),
            {"is_mail": True},
            Disposition.QUARANTINED,
            "dkim-required",
        ),
        (
            _report("example.com"),
            replace(OWNED, require_dkim=True),
            {"is_mail": True, "dkim": UNALIGNED},
            Disposition.QUARANTINED,
            "dkim-required",
        ),
        (
            _report("example.com"),
            replace(OWNED, require_dkim=True),
            {"is_mail": True, "dkim": PASS},
            Disposition.STORED,
            None,
        ),
        # ... but files the operator imports are not mail
        (_report("example.com"), replace(OWNED, require_dkim=True), {}, Disposition.STORED, None),
        # not ours beats unsigned: refused, not quarantined
        (
            _report("x.test"),
            replace(OWNED, require_dkim=True),
            {"is_mail": True},
            Disposition.REFUSED,
            "not-our-domain",
        ),
        # https secret paths
        (
            _report("example.com"),
            replace(OWNED, require_https_secret=True),
            {"https": True},
            Disposition.QUARANTINED,
            "https-secret-required",
        ),
        (
            _report("mx.example.com"),
            replace(OWNED, require_https_secret=True),
            {"https": True, "secret_domain": "example.com"},
            Disposition.STORED,
            None,
        ),
        (
            _report("example.com"),
            OWNED,
            {"https": True, "secret_domain": "other.example.com"},
            Disposition.QUARANTINED,
            "secret-domain-mismatch",
        ),
    ],
)
def test_decide(
    report: Report,
    settings: ReceiveSettings,
    kw: dict[str, object],
    disposition: Disposition,
    code: str | None,
) -> None:
    args: dict[str, object] = {
        "is_mail": False,
        "https": False,
        "dkim": NO_DKIM,
        "secret_domain": None,
    }
    args.update(kw)
    verdict = decide(report, settings, **args)  # type: ignore[arg-type]
    assert (verdict.disposition, verdict.reason_code) == (disposition, code)
    assert (verdict.reason is None) is (code is None)


def test_promotion_only_from_quarantine_to_stored() -> None:
    assert promotes("quarantined", Disposition.STORED)
    assert not promotes("quarantined", Disposition.QUARANTINED)
    assert not promotes("stored", Disposition.STORED)


def test_retention_cutoff_and_report_day() -> None:
    assert retention_cutoff(date(2026, 11, 23), None) is None
    assert retention_cutoff(date(2026, 11, 23), 30) == date(2026, 10, 24)
    # Mail.ru and Stalwart end at the next midnight: counted on the start day
    r = replace(_report("a.test"), date_range_end=datetime(2026, 11, 23, tzinfo=UTC))
    assert report_day(r) == date(2026, 11, 22)


def test_settings_normalise_domains_and_check_bounds() -> None:
    assert OWNED.owned_domains == frozenset({"example.com"})
    with pytest.raises(ValueError, match="keep_days"):
        ReceiveSettings(keep_days=0)


@pytest.mark.parametrize(
    ("domain", "why"),
    [
        ("", "names no policy-domain"),
        ("not a domain", "may only hold letters, digits and hyphens"),
        ("<script>.example", "may only hold letters, digits and hyphens"),
        ("a..example", "empty label"),
        ("x" * 64 + ".example", "longer than 63"),
        ("xn--zz.example", "A-label"),
    ],
)
def test_a_policy_domain_that_is_no_domain_name_is_quarantined(domain: str, why: str) -> None:
    """RFC 8460 §4.4: it cannot be counted for any domain; kept, not counted, not lost."""
    settings = ReceiveSettings()
    verdict = decide(
        _report("example.com", domain),
        settings,
        is_mail=False,
        https=False,
        dkim=NO_DKIM,
        secret_domain=None,
    )
    assert verdict.disposition is Disposition.QUARANTINED
    assert verdict.reason_code == "policy-domain-invalid"
    assert verdict.reason is not None
    assert why in verdict.reason


@pytest.mark.parametrize("domain", ["example.com", "mail.example.co.uk", "xn--bcher-kva.example"])
def test_a_policy_domain_that_is_a_domain_name_is_stored(domain: str) -> None:
    verdict = decide(
        _report(domain),
        ReceiveSettings(),
        is_mail=False,
        https=False,
        dkim=NO_DKIM,
        secret_domain=None,
    )
    assert verdict.disposition is Disposition.STORED
