"""``tlsrpt collect --postfix-log``: Postfix < 3.10 users get reports from the log, under
the policies of the daemon's cache (issue 10). The real Postfix 3.7 harness log, a real
SQLite cache and store, the real CLI."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from mtasts.cli.main import cli
from mtasts.sts.cache.sqlite import SqliteCache
from mtasts.sts.policy import parse_policy
from mtasts.sts.refresh import CacheEntry
from mtasts.tlsrpt.collect.postfix_log import line_day

MAILLOG = Path(__file__).parent / "data" / "postfix-3.7.11-harness.maillog"
POLICY = "version: STSv1\nmode: enforce\nmx: *.{d}\nmax_age: 86400\n"


def _cache(path: Path, *domains: str) -> str:
    url = f"sqlite:///{path}"

    async def put() -> None:
        cache = await SqliteCache.open(url)
        try:
            now = time.time()
            for d in domains:
                text = POLICY.format(d=d)
                await cache.set(
                    CacheEntry(
                        domain=d,
                        checked_at=now,
                        recheck_at=now + 3600,
                        txt_id="1",
                        record_id="1",
                        policy=parse_policy(text),
                        raw_text=text,
                        fetched_at=now,
                    )
                )
        finally:
            await cache.aclose()

    asyncio.run(put())
    return url


def _policies(reports: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    out = {}
    for rep in reports:
        for pol in rep["policies"]:  # type: ignore[attr-defined]
            out[pol["policy"]["policy-domain"]] = pol
    return out


@pytest.mark.parametrize("from_stdin", [False, True])
def test_the_harness_log_becomes_reports_under_the_cached_policies(
    tmp_path: Path, from_stdin: bool
) -> None:
    cache = _cache(tmp_path / "cache.db", "example.test", "badcert.test")
    store = f"sqlite:///{tmp_path / 'tlsrpt.db'}"
    env = {"MTASTS_CACHE": cache, "MTASTS_CONFIG": "", "MTASTS_TLSRPT_STORE": store}
    source = "-" if from_stdin else str(MAILLOG)
    done = CliRunner().invoke(
        cli,
        ["tlsrpt", "collect", "--postfix-log", source],
        env=env,
        input=MAILLOG.read_text() if from_stdin else None,
    )
    assert done.exit_code == 0, done.output
    assert "6 TLS sessions counted" in done.stderr
    day = line_day(MAILLOG.read_text(), datetime.now(UTC).date()).isoformat()
    args = ["--day", day, "--organization", "o", "--contact", "c@o.test", "--json"]
    shown = CliRunner().invoke(cli, ["tlsrpt", "reports", *args], env=env)
    assert shown.exit_code == 0, shown.output
    policies = _policies(json.loads(shown.stdout))
    ok = policies["example.test"]
    assert ok["policy"]["policy-type"] == "sts"  # from the cache
    assert ok["policy"]["mx-host"] == ["*.example.test"]
    assert ok["summary"]["total-successful-session-count"] == 2
    bad = policies["badcert.test"]
    assert bad["policy"]["policy-type"] == "sts"
    assert [f["result-type"] for f in bad["failure-details"]] == ["certificate-host-mismatch"]
    # no cached policy: counted, under no-policy-found
    assert policies["notls.test"]["policy"]["policy-type"] == "no-policy-found"
    assert policies["nopolicy.test"]["summary"]["total-successful-session-count"] == 1


def test_a_memory_cache_needs_the_daemons_address(tmp_path: Path) -> None:
    env = {"MTASTS_CACHE": "memory:", "MTASTS_CONFIG": ""}
    store = f"sqlite:///{tmp_path / 'tlsrpt.db'}"
    done = CliRunner().invoke(
        cli, ["tlsrpt", "collect", "--postfix-log", str(MAILLOG), "--store", store], env=env
    )
    assert done.exit_code == 78
    assert "--daemon" in done.stderr


@pytest.mark.parametrize(
    ("line", "day"),
    [
        ("Nov 23 11:28:42 sender postfix/smtp[1]: x", date(2026, 11, 23)),
        ("Dec  3 00:00:01 sender postfix/smtp[1]: x", date(2025, 12, 3)),  # no year: last
        ("2026-12-01T23:30:00.123456+01:00 sender postfix/smtp[1]: x", date(2026, 12, 1)),
        ("2026-12-01T23:30:00.123456-01:00 sender postfix/smtp[1]: x", date(2026, 12, 2)),
        ("2026-12-01T23:30:00Z sender postfix/smtp[1]: x", date(2026, 12, 1)),
        ("postfix/smtp[1]: no stamp", date(2026, 12, 2)),  # today
    ],
)
def test_the_day_of_a_log_line_is_its_utc_day(line: str, day: date) -> None:
    assert line_day(line, date(2026, 12, 2)) == day
