"""Questions over the received reports (the Python API and `tlsrpt received`), import
from files, directories, Maildir and mbox, reprocess and retention — on SQLite and
PostgreSQL where a store is involved."""

from __future__ import annotations

import dataclasses
import gzip
import json
import mailbox
import shutil
from datetime import date
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from mtasts.cli.main import cli
from mtasts.store.received_schema import arrivals, reports
from mtasts.tlsrpt.receive.decide import Channel, Disposition, ReceiveSettings
from mtasts.tlsrpt.receive.importer import import_sources
from mtasts.tlsrpt.receive.intake import Arrival
from mtasts.tlsrpt.receive.received_query import day_summaries, report_list
from mtasts.tlsrpt.receive.summary import Counted, summarize

from .conftest import NOW, OpenReceiver


def _report(
    domain: str,
    rid: str,
    day: str,
    ok: int,
    failures: list[dict[str, object]],
    org: str = "Google Inc.",
    kind: str = "sts",
) -> bytes:
    failed = sum(int(f["failed-session-count"]) for f in failures)  # type: ignore[call-overload]
    return json.dumps(
        {
            "organization-name": org,
            "date-range": {
                "start-datetime": f"{day}T00:00:00Z",
                "end-datetime": f"{day}T23:59:59Z",
            },
            "contact-info": "smtp-tls-reporting@google.com",
            "report-id": rid,
            "policies": [
                {
                    "policy": {
                        "policy-type": kind,
                        "policy-string": ["version: STSv1", "mode: enforce"],
                        "policy-domain": domain,
                        "mx-host": ["mx.example.com"],
                    },
                    "summary": {
                        "total-successful-session-count": ok,
                        "total-failure-session-count": failed,
                    },
                    "failure-details": failures,
                }
            ],
        }
    ).encode()


def _fail(
    kind: str, n: int, ip: str = "192.0.2.1", mx: str = "mx.example.com", rip: str = "198.51.100.7"
) -> dict[str, object]:
    return {
        "result-type": kind,
        "sending-mta-ip": ip,
        "receiving-mx-hostname": mx,
        "receiving-ip": rip,
        "failed-session-count": n,
    }


async def test_received_per_domain_and_day(open_receiver: OpenReceiver) -> None:
    r = await open_receiver()
    inputs = [
        _report("example.com", "g1", "2026-11-20", 100, [_fail("certificate-expired", 3)]),
        _report(
            "example.com",
            "m1",
            "2026-11-20",
            40,
            [
                _fail(
                    "validation-failure",
                    2,
                    ip="203.0.113.9",
                    mx="mx2.example.com",
                    rip="198.51.100.8",
                )
            ],
            org="Microsoft",
        ),
        _report("example.com", "g2", "2026-11-21", 90, []),
        _report("other.org", "g3", "2026-11-20", 7, []),
        _report("example.com", "g0", "2026-10-01", 5, []),  # outside the period
    ]
    for raw in inputs:
        assert (
            await r.ingest(raw, Arrival(Channel.FILE, "t", NOW))
        ).disposition is Disposition.STORED
    days = await day_summaries(
        r.store.db, domain="example.com", since=date(2026, 11, 1), until=date(2026, 11, 30)
    )
    assert [(d.day, d.domain) for d in days] == [
        ("2026-11-20", "example.com"),
        ("2026-11-21", "example.com"),
    ]
    d20 = days[0]
    assert d20.sessions == Counted(140, 5)
    assert d20.reports == 2
    assert d20.by_organization == {"Google Inc.": Counted(100, 3), "Microsoft": Counted(40, 2)}
    assert d20.failures_by_result_type == {"certificate-expired": 3, "validation-failure": 2}
    assert d20.failures_by_organization == {"Google Inc.": 3, "Microsoft": 2}
    assert d20.failures_by_receiving_mx == {
        "mx.example.com (198.51.100.7)": 3,
        "mx2.example.com (198.51.100.8)": 2,
    }
    assert d20.failures_by_sending_ip == {"192.0.2.1": 3, "203.0.113.9": 2}
    assert days[1].sessions == Counted(90, 0)
    everything = await day_summaries(r.store.db)
    assert {(d.day, d.domain) for d in everything} == {
        ("2026-10-01", "example.com"),
        ("2026-11-20", "example.com"),
        ("2026-11-21", "example.com"),
        ("2026-11-20", "other.org"),
    }
    listed = await report_list(
        r.store.db, domain="example.com", since=date(2026, 11, 20), until=date(2026, 11, 20)
    )
    assert [x.report_id for x in listed] == ["g1", "m1"]
    assert listed[0].arrivals[0]["channel"] == "file"
    assert listed[0].policies[0]["mx_host"] == ["mx.example.com"]
    assert listed[0].dkim["result"] == "none"


async def test_query_uses_the_domain_day_index(open_receiver: OpenReceiver) -> None:
    """A domain's month is an index range, never a scan: the plan names the index
    (PostgreSQL: with sequential scans priced out, as on a large table)."""
    r = await open_receiver()
    conn = await r.store.db._get()  # type: ignore[attr-defined]
    if r.store.db.dialect.name == "postgresql":
        await conn.execute("SET enable_seqscan = off")
        for table in ("tlsrpt_rcv_policies", "tlsrpt_rcv_failures"):
            rows = await conn.fetch(
                f"EXPLAIN SELECT * FROM {table} "
                "WHERE policy_domain = $1 AND day >= $2 AND day <= $3",
                "example.com",
                "2026-11-01",
                "2026-11-30",
            )
            plan = " ".join(row[0] for row in rows)
            assert f"ix_{table}_domain_day" in plan, plan
            assert "Seq Scan" not in plan, plan
        return
    for table in ("tlsrpt_rcv_policies", "tlsrpt_rcv_failures"):
        async with conn.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM {table} "
            "WHERE policy_domain = ? AND day >= ? AND day <= ?",
            ("example.com", "2026-11-01", "2026-11-30"),
        ) as cur:
            plan = " ".join(str(row[-1]) for row in await cur.fetchall())
        assert f"USING INDEX ix_{table}_domain_day" in plan, plan


def test_sts_and_tlsa_entries_for_the_same_sessions_are_not_added() -> None:
    rows = [
        {
            "policy_domain": "a.test",
            "day": "2026-11-20",
            "report_pk": 1,
            "organization": "Microsoft",
            "policy_type": "sts",
            "successful": 10,
            "failed": 1,
        },
        {
            "policy_domain": "a.test",
            "day": "2026-11-20",
            "report_pk": 1,
            "organization": "Microsoft",
            "policy_type": "tlsa",
            "successful": 10,
            "failed": 1,
        },
        {
            "policy_domain": "a.test",
            "day": "2026-11-20",
            "report_pk": 2,
            "organization": "Google",
            "policy_type": "sts",
            "successful": 5,
            "failed": 0,
        },
    ]
    (day,) = summarize(rows, [])
    assert day.sessions == Counted(15, 1)
    assert day.reports == 2


async def test_quarantined_reports_are_not_counted_but_listed(open_receiver: OpenReceiver) -> None:
    r = await open_receiver(ReceiveSettings(verify_dkim=False, require_https_secret=True))
    out = await r.ingest_report(
        _report("example.com", "q1", "2026-11-20", 10, []),
        Arrival(Channel.HTTPS, "203.0.113.1", NOW),
    )
    assert out.disposition is Disposition.QUARANTINED
    assert await day_summaries(r.store.db) == []
    (q,) = await report_list(r.store.db, quarantined=True)
    assert q.status == "quarantined"
    assert "secret" in (q.status_reason or "")


async def test_import_files_directories_maildir_and_mbox_idempotently(
    open_receiver: OpenReceiver, samples_dir: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "in"
    shutil.copytree(samples_dir / "kravietz+tlsrpt-rs", tree / "files")
    md = mailbox.Maildir(tree / "Maildir", create=True)
    md.add((samples_dir / "mjl-+mox" / "example.eml").read_bytes())
    mb = mailbox.mbox(tmp_path / "reports.mbox", create=True)
    mb.add((samples_dir / "isseis+tlsrpt-digest" / "tlsrpt_failure.eml").read_bytes())
    mb.add((samples_dir / "marcbradshaw+mail-tls-rpt" / "email.eml").read_bytes())
    mb.close()
    single = tmp_path / "one.json.gz"
    single.write_bytes(
        gzip.compress((samples_dir / "cry-inc+dmarc-report-viewer" / "google.json").read_bytes())
    )
    r = await open_receiver()
    sources = [str(tree), str(tmp_path / "reports.mbox"), str(single)]
    first = await import_sources(r, sources)
    assert first.counts == {"stored": 8}
    again = await import_sources(r, sources)
    assert again.counts == {"skipped": 8}
    logged = await r.store.db.fetch(
        select(arrivals.c.channel, func.count().label("n")).group_by(arrivals.c.channel)
    )
    assert {x["channel"]: x["n"] for x in logged} == {"file": 5, "maildir": 1, "mbox": 2}


async def test_import_of_a_missing_source_or_unknown_scheme_is_a_config_error(
    open_receiver: OpenReceiver, tmp_path: Path
) -> None:
    from mtasts.errors import ConfigError

    r = await open_receiver()
    with pytest.raises(ConfigError, match="no such file"):
        await import_sources(r, [str(tmp_path / "nope")])
    with pytest.raises(ConfigError, match="cannot import from pop3://"):
        await import_sources(r, ["pop3://u@h/"])


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_reprocess_rebuilds_every_report_from_the_archive(
    open_receiver: OpenReceiver, samples_dir: Path
) -> None:
    r = await open_receiver()
    files = _all_files(samples_dir)
    outs = [await r.ingest(f.read_bytes(), Arrival(Channel.FILE, str(f), NOW)) for f in files]
    assert sum(o.disposition is Disposition.STORED for o in outs) == 20  # SOURCES.md refused
    await r.ingest(files[0].read_bytes(), Arrival(Channel.LMTP, "again", NOW))  # a duplicate
    # a reader "bug" lost the counts of every report; reprocess reads the archive again
    await r.store.db.execute(update(reports).values(successful=0, failed=0))
    before = await r.store.db.fetch(select(func.count()).select_from(arrivals))
    counts = await r.reprocess()
    assert counts == {"stored": 20, "refused": 1, "duplicate": 1}
    after = await r.store.db.fetch(select(func.count()).select_from(arrivals))
    assert before == after
    rows = await r.store.db.fetch(select(reports.c.successful))
    assert sum(x["successful"] for x in rows) > 0
    # the days answer as before
    assert len(await day_summaries(r.store.db)) >= 19


async def test_prune_keeps_keep_days(open_receiver: OpenReceiver) -> None:
    r = await open_receiver(ReceiveSettings(verify_dkim=False, keep_days=30))
    old = await r.ingest(
        _report("example.com", "old", "2026-09-01", 1, []),
        Arrival(Channel.FILE, "o", NOW.replace(month=9)),
    )
    new = await r.ingest(
        _report("example.com", "new", "2026-11-20", 1, []), Arrival(Channel.FILE, "n", NOW)
    )
    counts = await r.prune(date(2026, 11, 23))
    assert counts["reports"] == 1
    assert counts["raw"] == 1
    left = await r.store.db.fetch(select(reports.c.pk))
    assert [x["pk"] for x in left] == [new.report_pk]
    assert old.report_pk not in [
        x["report_pk"] for x in await r.store.db.fetch(select(arrivals.c.report_pk))
    ]


def test_cli_import_received_json_reports_reprocess_prune(
    tmp_path: Path, samples_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    config = tmp_path / "mtasts.toml"
    config.write_text('[receive]\nverify_dkim = false\nother_domains = "accept"\n')
    env = {"MTASTS_CONFIG": str(config), "MTASTS_TLSRPT_STORE": ""}
    run = CliRunner().invoke
    res = run(
        cli,
        ["tlsrpt", "import", "--store", url, "--no-verify-dkim", "--json", str(samples_dir)],
        env=env,
    )
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output)["counts"] == {"refused": 1, "stored": 20}
    res = run(
        cli,
        [
            "tlsrpt",
            "received",
            "--store",
            url,
            "--domain",
            "example.com",
            "--since",
            "2024-01-01",
            "--until",
            "2024-12-31",
            "--json",
        ],
        env=env,
    )
    assert res.exit_code == 0, res.output
    days = orjson.loads(res.output)
    assert [d["day"] for d in days] == ["2024-01-09", "2024-02-22"]
    assert days[0]["failures"]["by_result_type"] == {"validation-failure": 3}
    res = run(
        cli,
        [
            "tlsrpt",
            "received",
            "--store",
            url,
            "--since",
            "2024-09-13",
            "--until",
            "2024-09-13",
            "--reports",
        ],
        env=env,
    )
    assert res.exit_code == 0, res.output
    assert "Microsoft" in res.output
    assert "tlsa" in res.output
    res = run(cli, ["tlsrpt", "reprocess", "--store", url, "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output) == {"refused": 1, "stored": 20}
    res = run(cli, ["tlsrpt", "prune", "--store", url], env=env)
    assert res.exit_code == 2
    res = run(cli, ["tlsrpt", "import", "--store", url, str(tmp_path / "missing")], env=env)
    assert res.exit_code == 2
    assert "no such file" in res.output


async def test_import_skips_what_is_no_regular_file_and_names_an_unreadable_one(
    open_receiver: OpenReceiver, samples_dir: Path, tmp_path: Path
) -> None:
    import os

    from mtasts.errors import ConfigError

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "google.json").write_bytes(
        (samples_dir / "cry-inc+dmarc-report-viewer" / "google.json").read_bytes()
    )
    os.mkfifo(tree / "a-fifo")  # would block a reader forever
    r = await open_receiver()
    assert (await import_sources(r, [str(tree)])).counts == {"stored": 1}
    locked = tree / "locked.json"
    locked.write_bytes(b"{}")
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything
        return
    with pytest.raises(ConfigError, match="cannot be read"):
        await import_sources(r, [str(tree)])


async def test_a_quarantined_report_released_by_hand_counts_and_stays_released(
    open_receiver: OpenReceiver, tmp_path: Path
) -> None:
    """`tlsrpt release`: a quarantined report is stored and counted; the quarantine's
    reason is kept with the release; a reprocess (which rebuilds every report and would
    quarantine it again) releases it again; retention forgets releases of pruned reports."""
    from mtasts.store.received_schema import releases

    r = await open_receiver(ReceiveSettings(verify_dkim=False, require_https_secret=True))
    held = await r.ingest_report(
        _report("example.com", "q1", "2026-11-20", 10, []), Arrival(Channel.HTTPS, "x", NOW)
    )
    kept = await r.ingest_report(
        _report("example.com", "q2", "2026-11-21", 5, []), Arrival(Channel.HTTPS, "x", NOW)
    )
    assert held.report_pk is not None
    assert kept.report_pk is not None
    assert await r.release([held.report_pk, 999_999], note="our own test sender") == {
        held.report_pk: "released",
        999_999: "no-such-report",
    }
    assert await r.release([held.report_pk]) == {held.report_pk: "not-quarantined"}
    (day,) = await day_summaries(r.store.db)
    assert (day.day, day.sessions) == ("2026-11-20", Counted(10, 0))
    (row,) = await r.store.db.fetch(select(releases))
    assert row["status_code"] == "https-secret-required"
    assert row["note"] == "our own test sender"
    counts = await r.reprocess()
    assert counts == {"quarantined": 2, "released": 1}
    assert [d.day for d in await day_summaries(r.store.db)] == ["2026-11-20"]
    (q,) = await report_list(r.store.db, quarantined=True)
    assert q.report_id == "q2"  # the other one is still held
    r.settings = dataclasses.replace(r.settings, keep_days=30)
    await r.prune(date(2027, 6, 1))
    assert await r.store.db.fetch(select(releases)) == []


def test_cli_release_lists_and_releases_by_id(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    config = tmp_path / "mtasts.toml"
    config.write_text('[receive]\nverify_dkim = false\nother_domains = "quarantine"\n')
    config.write_text(config.read_text() + 'owned_domains = ["example.net"]\nkeep_days = 30\n')
    report = tmp_path / "r.json"
    report.write_bytes(_report("example.com", "cli-1", "2026-11-20", 7, []))
    env = {"MTASTS_CONFIG": str(config), "MTASTS_TLSRPT_STORE": ""}
    run = CliRunner().invoke
    res = run(cli, ["tlsrpt", "import", "--store", url, "--json", str(report)], env=env)
    assert orjson.loads(res.output)["counts"] == {"quarantined": 1}, res.output
    listed = ["tlsrpt", "received", "--store", url, "--since", "2026-11-01", "--quarantined"]
    res = run(cli, listed, env=env)
    assert res.exit_code == 0, res.output
    assert "mtasts tlsrpt release 1" in res.output
    res = run(cli, ["tlsrpt", "release", "--store", url, "--json", "1"], env=env)
    assert (res.exit_code, orjson.loads(res.output)) == (0, {"1": "released"}), res.output
    res = run(cli, [*listed, "--json"], env=env)
    assert orjson.loads(res.output) == []
    res = run(cli, ["tlsrpt", "release", "--store", url, "1", "2"], env=env)
    assert res.exit_code == 1
    assert "1: not quarantined" in res.output
    assert "2: no such report" in res.output


@pytest.mark.parametrize("org", ["[/x] Evil [bold]Corp", "[link=https://x.example]Mal[/link]"])
def test_cli_shows_hostile_report_text_as_it_is(tmp_path: Path, org: str) -> None:
    """Organization names, report ids and repairs come from the sender: rich must not read
    them as markup (a `[/x]` in an organization name made `--reports` crash)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    config = tmp_path / "mtasts.toml"
    config.write_text('[receive]\nverify_dkim = false\nother_domains = "accept"\n')
    env = {"MTASTS_CONFIG": str(config), "MTASTS_TLSRPT_STORE": "", "COLUMNS": "400"}
    source = tmp_path / "r.json"
    source.write_bytes(_report("example.com", "[red]id[/red]", "2024-03-01", 1, [], org=org))
    run = CliRunner().invoke
    res = run(cli, ["tlsrpt", "import", "--store", url, "--no-verify-dkim", str(source)], env=env)
    assert res.exit_code == 0, res.output
    res = run(
        cli,
        ["tlsrpt", "received", "--store", url, "--since", "2024-03-01", "--reports"],
        env=env,
    )
    assert res.exit_code == 0, res.output
    assert org in res.output
    assert "[red]id[/red]" in res.output
