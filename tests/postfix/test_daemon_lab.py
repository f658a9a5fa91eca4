"""The daemon with the real resolver, answering from the lab's DNS and policy hosts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mtasts.config import CacheSettings, Settings
from mtasts.lab import Lab
from mtasts.lab.testing import running_lab
from mtasts.postfix.answers import ServerSettings
from mtasts.postfix.dane import DaneProbe, resolver_validates, warn_unless_validating
from mtasts.postfix.deferrals import DeferralLog
from mtasts.postfix.mxlookup import MxAwareSource, MxCache, validating_resolver
from mtasts.postfix.mxpolicy import NO_MATCH
from mtasts.postfix.netstring import NetstringDecoder, encode
from mtasts.postfix.server import SocketmapServer
from mtasts.postfix.socketmap import ReplyOptions, render
from mtasts.sts.cache.tier import MemoryTier
from mtasts.sts.resolver import Resolver

SCENARIO = '''
[[domain]]
name = "good.test"
mx = ["mx1.good.test"]
sts = "v=STSv1; id=1"
policy = """version: STSv1
mode: enforce
mx: mx1.good.test
mx: *.mx.good.test
max_age: 86400
"""

[[domain]]
name = "try.test"
mx = ["mx.try.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: testing\\nmx: mx.try.test\\nmax_age: 86400\\n"

[[domain]]
name = "plain.test"
mx = ["mx.plain.test"]

[[domain]]
name = "missing.test"
mx = ["mx.missing.test"]
sts = "v=STSv1; id=1"
policy_host = { status = 404 }

[[domain]]
name = "signed.test"
mx = ["mx.signed.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.signed.test\\nmax_age: 86400\\n"
dnssec = true

[[dns]]
name = "_25._tcp.mx.signed.test"
tlsa = ["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]
dnssec = true

[[domain]]
name = "wild.test"
mx = ["mx.wild.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: *.wild.test\\nmax_age: 86400\\n"

[[domain]]
name = "deep.test"
mx = ["a.b.deep.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: *.deep.test\\nmax_age: 86400\\n"

[[domain]]
name = "tab.test"
mx = ["mx.tab.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode:\\tenforce\\nmx: mx.tab.test\\nmax_age: 86400\\n"

# partial DANE: mx1 has no TLSA, mx2 has a usable one
[[domain]]
name = "partial.test"
mx = ["mx1.partial.test", "mx2.partial.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: *.partial.test\\nmax_age: 86400\\n"
dnssec = true

[[dns]]
name = "_25._tcp.mx2.partial.test"
tlsa = ["2 0 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]
dnssec = true

# only unusable TLSA records: PKIX-TA and PKIX-EE (RFC 7672 §3.1.3), an unknown
# matching type, an unknown selector
[[domain]]
name = "unusable.test"
mx = ["mx.unusable.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.unusable.test\\nmax_age: 86400\\n"
dnssec = true

[[dns]]
name = "_25._tcp.mx.unusable.test"
tlsa = ["0 0 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "1 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "3 1 9 abcd", "3 2 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]
dnssec = true

# signed, no TLSA yet
[[domain]]
name = "later.test"
mx = ["mx.later.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.later.test\\nmax_age: 86400\\n"
dnssec = true
'''

P12 = "protocols=>=TLSv1.2"


@dataclass
class Daemon:
    lab: Lab
    server: SocketmapServer
    tcp: tuple[str, int]
    unix: str


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_lab(SCENARIO) as lab:
        settings = Settings(
            nameserver=lab.nameserver, ca_file=lab.ca_file, https_port=lab.https_port
        )
        async with await Resolver.open(settings) as resolver:
            mx = MxCache.for_nameserver(lab.nameserver, 5.0)
            server = SocketmapServer(
                MxAwareSource(resolver, mx),
                ServerSettings(
                    zones={"dane": ReplyOptions(), "rpt": ReplyOptions(tlsrpt=True)},
                    answer_ttl=0,
                    lookup_timeout=20,
                ),
            )
            tcp = await server.listen_tcp("127.0.0.1", 0)
            unix = await server.listen_unix(str(tmp_path / "policy.sock"))
            try:
                yield Daemon(lab, server, tcp, unix)
            finally:
                await server.close()


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: str) -> str:
    writer.write(encode(req.encode()))
    await writer.drain()
    dec = NetstringDecoder(100_000)
    while True:
        got = dec.feed(await asyncio.wait_for(reader.read(65536), 20))
        if got:
            return got[0].decode()


CASES = [
    # (request, reply) on one connection, in this order
    ("postfix good.test", f"OK secure match=mx1.good.test servername=hostname {P12}"),
    ("postfix GOOD.Test", f"OK secure match=mx1.good.test servername=hostname {P12}"),
    ("postfix .good.test", "NOTFOUND "),
    ("postfix try.test", "NOTFOUND "),  # testing mode: Postfix's default applies
    ("postfix plain.test", "NOTFOUND "),  # no MTA-STS
    ("postfix missing.test", "NOTFOUND "),  # policy 404, nothing cached: as if none
    ("postfix [mx1.good.test]", "NOTFOUND "),
    # RFC 8461 §4.1: the current MX host, exactly; one label deeper matches nothing
    ("postfix wild.test", f"OK secure match=mx.wild.test servername=hostname {P12}"),
    ("postfix deep.test", f"OK secure match={NO_MATCH} servername=hostname {P12}"),
]


async def test_tcp_answers_from_the_lab(daemon: Daemon) -> None:
    reader, writer = await asyncio.open_connection(*daemon.tcp)
    for request, reply in CASES:
        assert await ask(reader, writer, request) == reply, request
    writer.close()


async def test_unix_socket_answers_from_the_lab(daemon: Daemon) -> None:
    reader, writer = await asyncio.open_unix_connection(daemon.unix)
    for request, reply in CASES[:3]:
        assert await ask(reader, writer, request) == reply, request
    writer.close()


async def test_tlsrpt_zone_sends_postfix_310_attributes(daemon: Daemon) -> None:
    reader, writer = await asyncio.open_connection(*daemon.tcp)
    got = await ask(reader, writer, "rpt good.test")
    assert got == (
        f"OK secure match=mx1.good.test:.mx.good.test servername=hostname {P12}"
        " policy_type=sts policy_domain=good.test"
        " mx_host_pattern=mx1.good.test mx_host_pattern=*.mx.good.test"
        " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
        " { policy_string = mx: mx1.good.test } { policy_string = mx: *.mx.good.test }"
        " { policy_string = max_age: 86400 }"
    )
    writer.close()


async def test_policy_line_with_a_tab_reaches_postfix_encoded(daemon: Daemon) -> None:
    """'mode:<TAB>enforce' is a valid policy line (RFC 8461 §3.2 *WSP); it was dropped."""
    reader, writer = await asyncio.open_connection(*daemon.tcp)
    got = await ask(reader, writer, "rpt tab.test")
    assert "{ policy_string = %mode:%09enforce }" in got
    writer.close()


async def test_dane_wins_only_with_usable_tlsa(daemon: Daemon) -> None:
    """RFC 8461 §2 / RFC 7672: dane-only where an MX host has usable validated TLSA
    (partial DANE too); only unusable records -> the MTA-STS answer (old main: dane-only)."""
    mx = MxCache.for_nameserver(daemon.lab.nameserver, 5.0)
    probe = DaneProbe(mx=mx)
    srv = SocketmapServer(MxAwareSource(daemon.server.source.source, mx), dane=probe)
    host, port = await srv.listen_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(host, port)
    assert await ask(reader, writer, "postfix signed.test") == f"OK dane-only {P12}"
    assert await ask(reader, writer, "postfix partial.test") == f"OK dane-only {P12}"
    assert await ask(reader, writer, "postfix unusable.test") == (
        f"OK secure match=mx.unusable.test servername=hostname {P12}"
    )
    assert await ask(reader, writer, "postfix good.test") == (
        f"OK secure match=mx1.good.test servername=hostname {P12}"
    )
    writer.close()
    await srv.close()


async def test_no_dane_verdict_lives_for_the_tlsa_negative_ttl(daemon: Daemon) -> None:
    """A TLSA published after a 'no DANE' verdict counts once the negative answer's TTL
    (SOA minimum, 30 s here) is over, not the MX TTL (300 s; what old main used)."""
    lab = daemon.lab
    lab.zone.negative_ttl = 30
    now = [1000.0]
    mx = MxCache(validating_resolver(lab.nameserver, 5.0), clock=lambda: now[0])
    probe = DaneProbe(mx=mx, clock=lambda: now[0])
    lookup = await daemon.server.source.lookup("later.test")
    assert await probe("later.test", lookup) is False
    lab.set_records("_25._tcp.mx.later.test", "TLSA", ["3 1 1 " + "ab" * 32])
    lab.set_dnssec("_25._tcp.mx.later.test", True)
    now[0] += 20
    assert await probe("later.test", lookup) is False  # still within the negative TTL
    now[0] += 11
    assert await probe("later.test", lookup) is True


async def test_mx_set_is_cached_for_its_ttl_and_a_change_recovers_by_itself(
    daemon: Daemon,
) -> None:
    """A new MX host Postfix sees before we do is refused (fail closed) until the cached MX
    set expires (its TTL, 300 s in the lab), then accepted with no intervention; a cached
    hit asks DNS nothing, and concurrent misses share one query."""
    lab = daemon.lab
    now = [1000.0]
    mx = MxCache(validating_resolver(lab.nameserver, 5.0), clock=lambda: now[0])
    source = MxAwareSource(daemon.server.source.source, mx)

    def mx_queries() -> int:
        return sum(1 for q in lab.dns_queries if q.rdtype == "MX" and q.name == "wild.test")

    before = mx_queries()
    lookups = await asyncio.gather(*(source.lookup("wild.test") for _ in range(5)))
    assert mx_queries() == before + 1  # single flight
    assert {render(lk).data for lk in lookups} == {
        f"secure match=mx.wild.test servername=hostname {P12}"
    }
    lab.set_records("wild.test", "MX", ["10 mx2.wild.test."])
    now[0] += 299
    stale = await source.lookup("wild.test")
    assert mx_queries() == before + 1  # cached hit: no DNS
    assert render(stale).data.startswith("secure match=mx.wild.test ")  # mx2 refused
    now[0] += 2
    fresh = await source.lookup("wild.test")
    assert render(fresh).data.startswith("secure match=mx2.wild.test ")
    assert mx_queries() == before + 2


async def test_a_resolver_without_ad_bit_is_named_once_at_start(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    """DANE detection needs a validating resolver: the daemon says so when it has none."""
    lab = daemon.lab
    resolver = validating_resolver(lab.nameserver, 5.0)
    assert await resolver_validates(resolver) is False  # the lab has no signed root
    with caplog.at_level(logging.WARNING, logger="mtasts.daemon"):
        await warn_unless_validating(resolver, "127.0.0.1:53")
    assert "does not set the AD bit" in caplog.text
    lab.set_records(".", "NS", ["ns.lab.test."])
    lab.set_dnssec(".", True)
    assert await resolver_validates(resolver) is True


async def test_mx_answers_of_every_kind(daemon: Daemon) -> None:
    """Preference order; no MX RRset -> the domain itself (RFC 5321 §5.1); null MX and
    NXDOMAIN -> no host; SERVFAIL -> an error, retried soon; the DNSSEC status kept."""
    lab = daemon.lab
    lab.set_records("order.test", "MX", ["20 b.order.test.", "10 A.order.test."])
    lab.set_records("implicit.test", "A", ["127.0.0.9"])
    lab.set_records("null.test", "MX", ["0 ."])
    lab.set_records("broken.test", "A", ["127.0.0.9"])
    lab.set_dns_fault("broken.test", "servfail")
    mx = MxCache.for_nameserver(lab.nameserver, 5.0)
    assert (await mx.get("order.test")).hosts == ("a.order.test", "b.order.test")
    assert (await mx.get("implicit.test")).hosts == ("implicit.test",)
    assert (await mx.get("null.test")).hosts == ()
    assert (await mx.get("nosuch.test")).hosts == ()
    broken, ttl = await mx.get_with_ttl("broken.test")
    assert broken.error
    assert ttl <= 10
    assert (await mx.get("signed.test")).validated is True
    assert (await mx.get("good.test")).validated is False


async def test_cached_answers_come_from_memory_and_follow_a_new_policy(daemon: Daemon) -> None:
    """A cached domain is answered inside data_received (no task, no DNS), and the reply
    rendered from memory changes as soon as the resolver stores a new policy id."""
    lab, server = daemon.lab, daemon.server
    reader, writer = await asyncio.open_connection(*daemon.tcp)
    first = f"OK secure match=mx1.good.test servername=hostname {P12}"
    assert await ask(reader, writer, "postfix good.test") == first  # fetched
    queries = len(lab.dns_queries)
    for _ in range(3):
        assert await ask(reader, writer, "postfix good.test") == first
    assert server.answer_now(b"postfix good.test") == encode(first.encode())
    assert len(lab.dns_queries) == queries  # policy, MX set: all from memory
    assert server.metrics.memory_answers["OK"] == 4
    lab.set_txt("_mta-sts.good.test", ["v=STSv1; id=2"])
    lab.set_policy(
        "good.test",
        "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmx: mx2.good.test\nmax_age: 86400\n",
    )
    await server.source.source.refresh("good.test")  # the TXT re-check saw id 2
    newer = f"OK secure match=mx1.good.test:mx2.good.test servername=hostname {P12}"
    assert await ask(reader, writer, "postfix good.test") == newer
    assert 'kind="ok"} 6.0' in server.metrics.render().decode()  # folded at scrape
    writer.close()


async def test_answers_that_defer_mail_are_logged_once_per_domain_per_minute(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    """issue 10: an enforce policy naming none of the current MX hosts defers mail; the
    operator sees one info line per domain and minute, with the count left out."""
    now = [0.0]
    daemon.server.deferrals = DeferralLog(clock=lambda: now[0])
    reader, writer = await asyncio.open_connection(*daemon.tcp)
    with caplog.at_level(logging.INFO, logger="mtasts.daemon"):
        for _ in range(5):
            assert NO_MATCH in await ask(reader, writer, "postfix deep.test")
        assert await ask(reader, writer, "postfix good.test")  # delivers: not logged
        lines = [r.getMessage() for r in caplog.records if "deferring" in r.getMessage()]
        assert lines == [
            "deferring mail to domain=deep.test: the enforce policy names none of the "
            f"current MX hosts (match={NO_MATCH}); Postfix defers until they agree"
        ]
        now[0] = 61.0
        await ask(reader, writer, "postfix deep.test")
    lines = [r.getMessage() for r in caplog.records if "deferring" in r.getMessage()]
    assert len(lines) == 2
    assert lines[1].endswith("(4 more such answers in the last 61 s not logged)")
    assert all(r.levelno == logging.INFO for r in caplog.records if "deferring" in r.getMessage())
    writer.close()


async def test_a_shared_cache_gets_a_memory_tier_and_answers_without_reading_it(
    tmp_path: Path,
) -> None:
    """Resolver.open puts the memory tier in front of sqlite: once read, a domain is
    answered without I/O (peek) until the tier's rules end the copy."""
    async with running_lab(SCENARIO) as lab:
        settings = Settings(
            nameserver=lab.nameserver,
            ca_file=lab.ca_file,
            https_port=lab.https_port,
            cache=CacheSettings(url=f"sqlite:///{tmp_path}/cache.db"),
        )
        async with await Resolver.open(settings) as resolver:
            assert isinstance(resolver.cache, MemoryTier)
            assert resolver.peek("good.test") is None
            fetched = await resolver.lookup("good.test")
            hit = resolver.peek("good.test")
            assert hit is not None
            assert hit.record_id == fetched.record_id == "1"
            assert resolver.peek("good.test") is hit  # the same answer object, reused
            assert (await resolver.cache.backend.get("good.test")) is not None  # written


async def test_a_kept_answer_ends_with_the_mx_set_and_a_purge(daemon: Daemon) -> None:
    """The reply kept for a request (the hot path's snapshot) holds only while its MX set
    is fresh and the resolver still holds the same cache entry."""
    lab = daemon.lab
    now = [1000.0]
    resolver = daemon.server.source.source
    mx = MxCache(validating_resolver(lab.nameserver, 5.0), clock=lambda: now[0])
    srv = SocketmapServer(
        MxAwareSource(resolver, mx), ServerSettings(answer_ttl=0), clock=lambda: now[0]
    )
    request = encode(b"postfix wild.test")
    old = f"OK secure match=mx.wild.test servername=hostname {P12}"
    assert await srv.answer(b"postfix wild.test") == encode(old.encode())  # fetched
    assert srv.answer_now(b"postfix wild.test") == encode(old.encode())  # kept now
    assert srv.snapshot(request) == encode(old.encode())
    lab.set_records("wild.test", "MX", ["10 mx2.wild.test."])
    now[0] += 299
    assert srv.snapshot(request) == encode(old.encode())  # MX TTL 300 s: still
    now[0] += 2
    assert srv.snapshot(request) is None  # the MX set ended: not kept any more
    assert srv.answer_now(b"postfix wild.test") is None  # and needs DNS: the task path
    new = f"OK secure match=mx2.wild.test servername=hostname {P12}"
    assert await srv.answer(b"postfix wild.test") == encode(new.encode())
    assert srv.answer_now(b"postfix wild.test") == encode(new.encode())
    assert srv.snapshot(request) == encode(new.encode())
    await resolver.cache.delete("wild.test")  # a purge
    assert srv.snapshot(request) is None
    await srv.close()


class CountingSink:
    def __init__(self) -> None:
        self.counted: list[tuple[str, str]] = []

    def count(self, who: int, domain: str, result_type: str, reason_code: str = "") -> bool:
        self.counted.append((domain, result_type))
        return True


async def test_every_answer_under_a_failed_policy_reaches_the_failure_counter(
    daemon: Daemon,
) -> None:
    """RFC 8461 §6: answers from memory too; such answers are never kept as snapshots."""
    sink = CountingSink()
    resolver = daemon.server.source.source
    mx = MxCache.for_nameserver(daemon.lab.nameserver, 5.0)
    srv = SocketmapServer(MxAwareSource(resolver, mx), ServerSettings(answer_ttl=0), failures=sink)
    host, port = await srv.listen_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(host, port)
    for _ in range(4):
        assert await ask(reader, writer, "postfix missing.test") == "NOTFOUND "
    assert sink.counted == [("missing.test", "sts-policy-fetch-error")] * 4
    assert not srv.snapshots
    writer.close()
    await srv.close()
