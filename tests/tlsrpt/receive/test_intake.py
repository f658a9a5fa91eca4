"""The ingest API on SQLite and PostgreSQL: every real sample is stored once, whatever
the channel; bad input is refused with a stable code; every arrival is logged."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mtasts.store.received_schema import arrivals, raw_inputs, report_failures, reports
from mtasts.tlsrpt.receive.decide import (
    Channel,
    Disposition,
    OtherDomains,
    ReceiveSettings,
)
from mtasts.tlsrpt.receive.intake import Arrival, Receiver
from mtasts.tlsrpt.unpack import extract_from_mail

from .conftest import NOW, OpenReceiver


def _sample_files(samples: Path) -> list[Path]:
    return sorted(p for p in samples.rglob("*") if p.is_file() and p.name != "SOURCES.md")


def _arrival(channel: Channel = Channel.FILE, source: str = "test", **kw: Any) -> Arrival:
    return Arrival(channel, source, NOW, **kw)


async def _rows(r: Receiver, table: Any) -> list[dict[str, Any]]:
    return await r.store.db.fetch(select(table))


async def _count(r: Receiver, table: Any) -> int:
    rows = await r.store.db.fetch(select(func.count()).select_from(table))
    return int(next(iter(rows[0].values())))


async def test_every_real_sample_is_stored_once_and_rereading_them_is_idempotent(
    open_receiver: OpenReceiver, samples_dir: Path
) -> None:
    files = _sample_files(samples_dir)
    assert len(files) == 20
    r = await open_receiver()
    first = await asyncio.gather(
        *[r.ingest(f.read_bytes(), _arrival(source=str(f))) for f in files]
    )
    assert [o.disposition for o in first] == [Disposition.STORED] * 20, [
        (f.name, o.reason) for f, o in zip(files, first, strict=True)
    ]
    assert len({o.report_pk for o in first}) == 20
    again = [await r.ingest(f.read_bytes(), _arrival(source=str(f))) for f in files]
    assert [o.disposition for o in again] == [Disposition.DUPLICATE] * 20
    assert [o.report_pk for o in again] == [o.report_pk for o in first]
    assert await _count(r, reports) == 20
    assert await _count(r, arrivals) == 40
    assert await _count(r, raw_inputs) == 20
    # the tolerant reader's repairs are kept with the report (Microsoft's zone-less dates)
    rows = {row["pk"]: row for row in await _rows(r, reports)}
    ms = next(
        o
        for f, o in zip(files, first, strict=True)
        if f.parent.name == "mjl-+mox" and f.name == "microsoft.eml"
    )
    assert "report.date" in rows[ms.report_pk]["warnings"] or ms.warnings
    assert rows[ms.report_pk]["warnings"] != "[]"


async def test_the_same_report_by_https_and_by_mail_is_stored_once(
    open_receiver: OpenReceiver, samples_dir: Path
) -> None:
    mail = (samples_dir / "kravietz+tlsrpt-rs" / "google1.eml").read_bytes()
    body, is_gzip, _, _ = extract_from_mail(mail)
    assert is_gzip
    r = await open_receiver()
    by_https = await r.ingest_report(
        body, _arrival(Channel.HTTPS, "192.0.2.9", content_type="application/tlsrpt+gzip")
    )
    by_mail = await r.ingest_mail(mail, _arrival(Channel.LMTP, "192.0.2.10"))
    # gzip'd again (another mtime in the gzip header): other bytes, the same report
    plain = gzip.decompress(body)
    again = await r.ingest_report(
        gzip.compress(plain, mtime=12345),
        _arrival(Channel.HTTPS, "192.0.2.11", content_type="application/tlsrpt+gzip"),
    )
    as_json = await r.ingest_report(
        plain, _arrival(Channel.HTTPS, "192.0.2.12", content_type="application/tlsrpt+json")
    )
    assert by_https.disposition is Disposition.STORED
    assert [o.disposition for o in (by_mail, again, as_json)] == [Disposition.DUPLICATE] * 3
    assert {o.report_pk for o in (by_https, by_mail, again, as_json)} == {by_https.report_pk}
    assert await _count(r, reports) == 1
    logged = await _rows(r, arrivals)
    assert sorted(a["channel"] for a in logged) == ["https", "https", "https", "lmtp"]
    assert {a["report_pk"] for a in logged} == {by_https.report_pk}


async def test_twice_by_mail_is_stored_once_with_both_arrivals(
    open_receiver: OpenReceiver, samples_dir: Path
) -> None:
    mail = (samples_dir / "mjl-+mox" / "example.eml").read_bytes()
    r = await open_receiver()
    a = await r.ingest_mail(mail, _arrival(Channel.SMTP, "198.51.100.1"))
    # a resent copy with one more Received header: other bytes, the same report
    b = await r.ingest_mail(
        b"Received: from relay.example\r\n" + mail,
        _arrival(Channel.IMAP, "imaps://u@h/INBOX;UID=3"),
    )
    assert (a.disposition, b.disposition) == (Disposition.STORED, Disposition.DUPLICATE)
    assert a.report_pk == b.report_pk
    assert await _count(r, reports) == 1
    assert await _count(r, arrivals) == 2
    assert await _count(r, raw_inputs) == 2  # both copies archived for reprocess


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "not-a-report"),  # an empty POST
        (b"garbage \x00\xff", "not-a-report"),  # not JSON, gzip or mail
        (b'{"organization-name": 5', "not-a-report"),  # truncated JSON
        (b"\x1f\x8b\x08\x00garbage", "not-a-report"),  # corrupt gzip
        (gzip.compress(b" " * 3_000_000), "too-large"),  # inflates past the bound
        (b"[" * 100_000, "not-a-report"),  # nesting bomb
    ],
)
async def test_bad_input_is_refused_with_a_code_and_logged(
    open_receiver: OpenReceiver, body: bytes, code: str
) -> None:
    r = await open_receiver(ReceiveSettings(verify_dkim=False, max_bytes=2_000_000))
    out = await r.ingest_report(body, _arrival(Channel.HTTPS, "203.0.113.5"))
    assert out.disposition is Disposition.REFUSED
    assert out.reason_code == code
    assert out.reason
    assert "\n" not in out.reason
    (logged,) = await _rows(r, arrivals)
    assert (logged["disposition"], logged["reason_code"]) == ("refused", code)
    # an anonymous https poster's garbage is not archived
    assert logged["raw_sha256"] is None
    assert await _count(r, raw_inputs) == 0


async def test_an_input_above_the_size_bound_is_refused_unread(open_receiver: OpenReceiver) -> None:
    r = await open_receiver(ReceiveSettings(verify_dkim=False, max_bytes=1000))
    out = await r.ingest_report(b"{" + b" " * 2000 + b"}", _arrival(Channel.HTTPS, "x"))
    assert (out.disposition, out.reason_code) == (Disposition.REFUSED, "too-large")


async def test_an_e_mail_posted_over_https_is_refused(
    open_receiver: OpenReceiver, samples_dir: Path
) -> None:
    r = await open_receiver()
    mail = (samples_dir / "mjl-+mox" / "example.eml").read_bytes()
    out = await r.ingest_report(mail, _arrival(Channel.HTTPS, "x"))
    assert (out.disposition, out.reason_code) == (Disposition.REFUSED, "not-a-report")
    assert "RFC 8460 §5.4" in (out.reason or "")


async def test_refused_files_are_archived_for_reprocess(open_receiver: OpenReceiver) -> None:
    r = await open_receiver()
    out = await r.ingest(b'{"policies": "not a list"}', _arrival())
    assert out.disposition is Disposition.REFUSED
    (logged,) = await _rows(r, arrivals)
    assert logged["raw_sha256"] is not None
    assert await _count(r, raw_inputs) == 1


@pytest.mark.parametrize(
    ("other", "disposition"),
    [
        (OtherDomains.REFUSE, Disposition.REFUSED),
        (OtherDomains.QUARANTINE, Disposition.QUARANTINED),
        (OtherDomains.ACCEPT, Disposition.STORED),
    ],
)
async def test_reports_about_other_domains(
    open_receiver: OpenReceiver, samples_dir: Path, other: OtherDomains, disposition: Disposition
) -> None:
    settings = ReceiveSettings(
        verify_dkim=False, owned_domains=frozenset({"example.org"}), other_domains=other
    )
    r = await open_receiver(settings)
    raw = (
        samples_dir / "domainaware+parsedmarc" / "rfc8460.json"
    ).read_bytes()  # company-y.example
    out = await r.ingest(raw, _arrival())
    assert out.disposition is disposition
    if disposition is not Disposition.STORED:
        assert out.reason_code == "not-our-domain"


async def test_concurrent_copies_of_the_same_reports_are_stored_once(
    open_receiver: OpenReceiver, samples_dir: Path
) -> None:
    files = [p for p in _sample_files(samples_dir) if p.suffix == ".json"]
    r = await open_receiver()
    outs = await asyncio.gather(
        *[
            r.ingest(f.read_bytes() + b" " * i, _arrival(source=f"{f}#{i}"))
            for i in range(10)
            for f in files
        ]
    )
    stored = [o for o in outs if o.disposition is Disposition.STORED]
    assert len(stored) == len(files)
    assert all(o.disposition in (Disposition.STORED, Disposition.DUPLICATE) for o in outs)
    assert await _count(r, reports) == len(files)
    assert await _count(r, arrivals) == 10 * len(files)


async def test_failure_details_are_stored_with_absent_fields_as_null(
    open_receiver: OpenReceiver, samples_dir: Path
) -> None:
    r = await open_receiver()
    raw = (samples_dir / "domainaware+parsedmarc" / "mail.ru.json").read_bytes()
    out = await r.ingest(raw, _arrival())
    rows = [row for row in await _rows(r, report_failures) if row["report_pk"] == out.report_pk]
    assert len(rows) == 2
    assert {row["result_type"] for row in rows} == {"sts-policy-fetch-error"}
    assert all(row["sending_mta_ip"] is None and row["receiving_ip"] is None for row in rows)
    assert {row["policy_domain"] for row in rows} == {"example.com"}


async def test_a_store_that_cannot_be_written_raises_store_unavailable_then_recovers(
    tmp_path: Path, samples_dir: Path
) -> None:
    """The intake's 503 / 451: nothing stored for that call, the next one works."""
    from mtasts.tlsrpt.receive.intake import StoreUnavailable

    r = await Receiver.open(f"sqlite:///{tmp_path / 'r.db'}", ReceiveSettings(verify_dkim=False))
    try:
        raw = (samples_dir / "cry-inc+dmarc-report-viewer" / "google.json").read_bytes()
        good = r.store.db.path  # type: ignore[attr-defined]
        await r.store.db.reset()
        r.store.db.path = str(tmp_path / "missing-dir" / "r.db")  # type: ignore[attr-defined]
        with pytest.raises(StoreUnavailable, match="store could not be"):
            await r.ingest(raw, _arrival())
        r.store.db.path = good  # type: ignore[attr-defined]
        # reads work, the write fails (the group-commit writer's path)
        conn = await r.store.db._get()  # type: ignore[attr-defined]
        await conn.execute("PRAGMA query_only = ON")
        with pytest.raises(StoreUnavailable, match="store could not be written"):
            await r.ingest(raw, _arrival())
        # the writer reset the connection: a new one writes again
        out = await r.ingest(raw, _arrival())
        assert out.disposition is Disposition.STORED
        assert await _count(r, arrivals) == 1  # the failed calls left nothing behind
    finally:
        await r.close()


async def test_values_longer_than_their_columns_are_stored_cut_not_refused_by_postgresql(
    open_receiver: OpenReceiver,
) -> None:
    """PostgreSQL refuses a value longer than a VARCHAR: a hostile report must not fail
    the batch (and be retried forever by its sender)."""
    import json

    long_name = ("a" * 60 + ".") * 6 + "example"
    report = {
        "organization-name": "o",
        "date-range": {
            "start-datetime": "2026-11-20T00:00:00Z",
            "end-datetime": "2026-11-20T23:59:59Z",
        },
        "contact-info": "r@o.test",
        "report-id": "long",
        "policies": [
            {
                "policy": {"policy-type": "sts", "policy-domain": long_name},
                "summary": {
                    "total-successful-session-count": 1,
                    "total-failure-session-count": 1,
                },
                "failure-details": [
                    {
                        "result-type": "x" * 300,
                        "sending-mta-ip": "1" * 100,
                        "receiving-ip": "2" * 100,
                        "receiving-mx-hostname": long_name,
                        "failed-session-count": 1,
                    }
                ],
            }
        ],
    }
    r = await open_receiver()
    out = await r.ingest_report(
        json.dumps(report).encode(),
        _arrival(Channel.HTTPS, "x", content_type="c" * 5000, secret_domain=long_name),
    )
    assert out.disposition in (Disposition.STORED, Disposition.QUARANTINED)
    (row,) = await _rows(r, report_failures)
    assert len(row["result_type"]) == 64
    assert len(row["policy_domain"]) <= 253


async def test_nul_characters_in_a_report_do_not_fail_the_store(
    open_receiver: OpenReceiver,
) -> None:
    """PostgreSQL text cannot hold U+0000; a report carrying it is stored all the same."""
    raw = (
        b'{"organization-name":"o\\u0000rg","date-range":{"start-datetime":'
        b'"2026-11-20T00:00:00Z","end-datetime":"2026-11-20T23:59:59Z"},'
        b'"contact-info":"r@o.test","report-id":"n\\u0000ul","policies":[{"policy":'
        b'{"policy-type":"sts","policy-domain":"a.test","policy-string":["x\\u0000"]},'
        b'"summary":{"total-successful-session-count":1,"total-failure-session-count":1},'
        b'"failure-details":[{"result-type":"validation-failure","failed-session-count":1,'
        b'"failure-reason-code":"bad\\u0000code"}]}]}'
    )
    r = await open_receiver()
    out = await r.ingest(raw, _arrival(source="nul\x00.json"))
    assert out.disposition is Disposition.STORED
    (row,) = await _rows(r, reports)
    assert "\x00" not in row["organization"]


async def test_concurrent_posts_of_identical_bytes_store_one_report_and_share_look_ups(
    open_receiver: OpenReceiver, samples_dir: Path
) -> None:
    """60 https arrivals of the same body at once, then 60 more once it is stored: one
    report, every arrival logged, and the second burst's look-ups of already-seen bytes
    answered together (a handful of queries, not one per POST)."""
    body = (samples_dir / "domainaware+parsedmarc" / "mail.ru.json").read_bytes()
    r = await open_receiver()
    arrival = _arrival(Channel.HTTPS, "192.0.2.7", content_type="application/tlsrpt+json")
    first = await asyncio.gather(*(r.ingest_report(body, arrival) for _ in range(60)))
    assert sorted(o.disposition.value for o in first) == ["duplicate"] * 59 + ["stored"]
    assert len({o.report_pk for o in first}) == 1
    queries = 0
    real = r.store.known_raws

    async def counted(shas: Any) -> dict[str, int]:
        nonlocal queries
        queries += 1
        return await real(shas)

    r.store.known_raws = counted  # type: ignore[method-assign]
    second = await asyncio.gather(*(r.ingest_report(body, arrival) for _ in range(60)))
    assert {o.disposition for o in second} == {Disposition.DUPLICATE}
    assert {o.report_pk for o in second} == {first[0].report_pk}
    assert queries <= 3
    assert await _count(r, reports) == 1
    assert await _count(r, arrivals) == 120


async def test_a_look_up_that_fails_fails_every_waiting_ingest_then_recovers(
    open_receiver: OpenReceiver, samples_dir: Path
) -> None:
    from mtasts.tlsrpt.receive.intake import StoreUnavailable

    body = (samples_dir / "domainaware+parsedmarc" / "mail.ru.json").read_bytes()
    r = await open_receiver()
    arrival = _arrival(Channel.HTTPS, "192.0.2.7", content_type="application/tlsrpt+json")
    real = r.store.known_raws

    async def broken(shas: Any) -> dict[str, int]:
        raise OSError("disk gone")

    r.store.known_raws = broken  # type: ignore[method-assign]
    outs = await asyncio.gather(
        *(r.ingest_report(body, arrival) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, StoreUnavailable) for o in outs), outs
    r.store.known_raws = real  # type: ignore[method-assign]
    assert (await r.ingest_report(body, arrival)).disposition is Disposition.STORED
    assert await _count(r, arrivals) == 1  # nothing was logged for the failed ones
