"""The lab DNS server, seen by dnspython as an independent client (UDP and TCP)."""

from __future__ import annotations

import time

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

SCENARIO = """
[[domain]]
name = "good.test"
mx = ["mx1.good.test", "mx2.good.test"]
sts = ["v=STSv1; ", "id=1"]
policy = "version: STSv1\\nmode: enforce\\nmx: mx1.good.test\\nmax_age: 86400\\n"
tlsrpt = [["v=TLSRPTv1; rua=mailto:a@good.test"], ["v=TLSRPTv1; rua=mailto:b@good.test"]]
dnssec = true
tlsa = ["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]

[[domain]]
name = "plain.test"
mx = ["mx.plain.test"]

[[dns]]
name = "_mta-sts.gone.test"
fault = "nxdomain"

[[dns]]
name = "_mta-sts.broken.test"
fault = "servfail"

[[dns]]
name = "_mta-sts.slow.test"
fault = "timeout"

[[dns]]
name = "_mta-sts.alias.test"
cname = "_mta-sts.good.test"

[[dns]]
name = "v6.test"
aaaa = ["::1"]
txt = "hello"
"""


async def ask(lab, name: str, rdtype: str, *, tcp: bool = False, wait: float = 2.0):
    host, port = lab.nameserver
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(query, host, port=port, timeout=wait)
    return await dns.asyncquery.udp(query, host, port=port, timeout=wait)


def txt_strings(response) -> list[tuple[bytes, ...]]:
    return sorted(tuple(r.strings) for rrset in response.answer for r in rrset)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_records_from_the_scenario(lab_factory, tcp: bool) -> None:
    """MX in preference order, A for hosts and policy host, TXT with several strings."""
    lab = await lab_factory(SCENARIO)
    mx = await ask(lab, "good.test", "MX", tcp=tcp)
    assert sorted((r.preference, r.exchange.to_text()) for r in mx.answer[0]) == [
        (10, "mx1.good.test."),
        (20, "mx2.good.test."),
    ]
    a = await ask(lab, "mta-sts.good.test", "A", tcp=tcp)
    assert [r.address for r in a.answer[0]] == [lab.address("mta-sts.good.test")]
    a = await ask(lab, "mx2.good.test", "A", tcp=tcp)
    assert [r.address for r in a.answer[0]] == [lab.address("mx2.good.test")]
    sts = await ask(lab, "_mta-sts.good.test", "TXT", tcp=tcp)
    assert txt_strings(sts) == [(b"v=STSv1; ", b"id=1")]  # one record, two strings


async def test_several_records(lab_factory) -> None:
    """A list of lists is an RRset of several TXT records."""
    lab = await lab_factory(SCENARIO)
    r = await ask(lab, "_smtp._tls.good.test", "TXT")
    assert txt_strings(r) == [
        (b"v=TLSRPTv1; rua=mailto:a@good.test",),
        (b"v=TLSRPTv1; rua=mailto:b@good.test",),
    ]


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "answers"),
    [
        ("_mta-sts.plain.test", "TXT", dns.rcode.NXDOMAIN, 0),  # no record: name absent
        ("nowhere.test", "A", dns.rcode.NXDOMAIN, 0),  # unknown name
        ("_mta-sts.gone.test", "TXT", dns.rcode.NXDOMAIN, 0),  # forced NXDOMAIN
        ("_mta-sts.broken.test", "TXT", dns.rcode.SERVFAIL, 0),  # forced SERVFAIL
        ("mx1.good.test", "TXT", dns.rcode.NOERROR, 0),  # NODATA: name exists, type does not
        ("_tls.good.test", "TXT", dns.rcode.NOERROR, 0),  # empty non-terminal: NODATA
        ("v6.test", "AAAA", dns.rcode.NOERROR, 1),
    ],
)
async def test_rcodes(lab_factory, name: str, rdtype: str, rcode: int, answers: int) -> None:
    """NXDOMAIN, SERVFAIL and NODATA are told apart as a real authoritative server does."""
    lab = await lab_factory(SCENARIO)
    r = await ask(lab, name, rdtype)
    assert r.rcode() == rcode
    assert len(r.answer) == answers


async def test_timeout_fault_never_answers(lab_factory) -> None:
    """A name with fault=timeout gets no answer over UDP or TCP; the client times out."""
    lab = await lab_factory(SCENARIO)
    with pytest.raises(dns.exception.Timeout):
        await ask(lab, "_mta-sts.slow.test", "TXT", wait=0.2)
    with pytest.raises(dns.exception.Timeout):
        await ask(lab, "_mta-sts.slow.test", "TXT", tcp=True, wait=0.2)
    assert [q.name for q in lab.dns_queries] == ["_mta-sts.slow.test"] * 2


async def test_cname_is_followed_in_zone(lab_factory) -> None:
    """A CNAME answer carries the target's records too."""
    lab = await lab_factory(SCENARIO)
    r = await ask(lab, "_mta-sts.alias.test", "TXT")
    assert [rrset.rdtype for rrset in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.TXT]


async def test_ad_bit_only_for_signed_names(lab_factory) -> None:
    """dnssec = true sets AD on answers for the domain and names below it, not others."""
    lab = await lab_factory(SCENARIO)
    assert (await ask(lab, "_mta-sts.good.test", "TXT")).flags & dns.flags.AD
    assert (await ask(lab, "mx1.good.test", "A")).flags & dns.flags.AD
    assert not (await ask(lab, "mx.plain.test", "A")).flags & dns.flags.AD
    lab.set_dnssec("plain.test", True)
    assert (await ask(lab, "mx.plain.test", "A")).flags & dns.flags.AD


async def test_tlsa_records_for_each_mx(lab_factory) -> None:
    """A domain's tlsa records are published at _25._tcp.<mx> for each of its MX."""
    lab = await lab_factory(SCENARIO)
    r = await ask(lab, "_25._tcp.mx2.good.test", "TLSA")
    (tlsa,) = r.answer[0]
    assert (tlsa.usage, tlsa.selector, tlsa.mtype) == (3, 1, 1)


async def test_live_changes(lab_factory) -> None:
    """set_txt and set_dns_fault take effect on the next query."""
    lab = await lab_factory(SCENARIO)
    lab.set_txt("_mta-sts.good.test", ["v=STSv1; id=2"])
    assert txt_strings(await ask(lab, "_mta-sts.good.test", "TXT")) == [(b"v=STSv1; id=2",)]
    lab.set_dns_fault("_mta-sts.good.test", "servfail")
    assert (await ask(lab, "_mta-sts.good.test", "TXT")).rcode() == dns.rcode.SERVFAIL
    lab.set_dns_fault("_mta-sts.good.test", None)
    lab.set_txt("_mta-sts.good.test", [])
    assert (await ask(lab, "_mta-sts.good.test", "TXT")).rcode() == dns.rcode.NXDOMAIN
    lab.set_records("new.test", "A", ["127.9.9.9"])
    assert (await ask(lab, "new.test", "A")).answer[0][0].address == "127.9.9.9"


async def test_long_txt_is_split_into_255_byte_strings(lab_factory) -> None:
    """A TXT string over 255 bytes becomes several strings (and a large answer goes by TCP)."""
    lab = await lab_factory(SCENARIO)
    lab.set_txt("big.test", ["x" * 600])
    r = await ask(lab, "big.test", "TXT", tcp=True)
    assert [len(s) for s in r.answer[0][0].strings] == [255, 255, 90]


async def test_queries_are_recorded(lab_factory) -> None:
    """lab.dns_queries lists name, type and transport of every question."""
    lab = await lab_factory(SCENARIO)
    await ask(lab, "good.test", "MX")
    await ask(lab, "good.test", "MX", tcp=True)
    assert [(q.name, q.rdtype, q.transport) for q in lab.dns_queries] == [
        ("good.test", "MX", "udp"),
        ("good.test", "MX", "tcp"),
    ]


async def test_cname_loop_is_answered_like_an_authoritative_server(lab_factory) -> None:
    """A CNAME loop: NOERROR with each CNAME of the chain once and no TXT (BIND, NSD);
    whether that is an error is the client's call (RFC 1034 §3.6.2)."""
    lab = await lab_factory(SCENARIO)
    lab.set_records("_mta-sts.loop.test", "CNAME", ["_mta-sts.loop2.test."])
    lab.set_records("_mta-sts.loop2.test", "CNAME", ["_mta-sts.loop.test."])
    lab.set_records("_mta-sts.self.test", "CNAME", ["_mta-sts.self.test."])
    r = await ask(lab, "_mta-sts.loop.test", "TXT")
    assert r.rcode() == dns.rcode.NOERROR
    assert [(s.name.to_text(), s.rdtype) for s in r.answer] == [
        ("_mta-sts.loop.test.", dns.rdatatype.CNAME),
        ("_mta-sts.loop2.test.", dns.rdatatype.CNAME),
    ]
    r = await ask(lab, "_mta-sts.self.test", "TXT")
    assert r.rcode() == dns.rcode.NOERROR
    assert [s.rdtype for s in r.answer] == [dns.rdatatype.CNAME]


async def test_names_exist_while_records_at_or_below_them_do(lab_factory) -> None:
    """Empty non-terminals come and go with the records below them; a name that only
    ends in the same letters ("od.test" of "good.test") is no ancestor."""
    lab = await lab_factory(SCENARIO)
    lab.set_records("a.b.new.test", "A", ["127.9.9.9"])
    lab.set_txt("c.b.new.test", ["x"])
    assert (await ask(lab, "b.new.test", "A")).rcode() == dns.rcode.NOERROR  # ENT
    assert (await ask(lab, "od.test", "A")).rcode() == dns.rcode.NXDOMAIN
    lab.set_records("a.b.new.test", "A", [])
    assert (await ask(lab, "a.b.new.test", "A")).rcode() == dns.rcode.NXDOMAIN
    assert (await ask(lab, "new.test", "A")).rcode() == dns.rcode.NOERROR  # c.b still there
    lab.set_txt("c.b.new.test", [])
    assert (await ask(lab, "new.test", "A")).rcode() == dns.rcode.NXDOMAIN


async def test_a_lab_of_thousands_of_domains_starts_fast(lab_factory) -> None:
    """3,000 policy hosts (each its own address and listener) start in seconds and each
    answers by name: records are indexed and certificates issued at first use."""
    from mtasts.lab import DomainSpec, HostSpec, Scenario
    from mtasts.lab.testing import policy_text

    names = [f"d{i}.many.test" for i in range(3000)]
    scenario = Scenario(
        domains=tuple(
            DomainSpec(n, mx=(f"mx.{n}",), sts=(("v=STSv1; id=1",),), policy=policy_text(("x",)))
            for n in names
        ),
        hosts=tuple(HostSpec(f"mx.{n}") for n in names),
    )
    started = time.perf_counter()
    lab = await lab_factory(scenario)
    assert time.perf_counter() - started < 30  # about 1 s on a 2-core machine
    last = await ask(lab, "mta-sts.d2999.many.test", "A")
    assert [r.address for r in last.answer[0]] == [lab.address("mta-sts.d2999.many.test")]
    assert len({lab.address(f"mta-sts.{n}") for n in names}) == 3000
    # no policy host contacted, so none of their certificates was issued
    assert not [name for name, _ in lab.pki._cache if name.startswith("mta-sts.")]


async def test_domains_sharing_mx_hosts_share_parsed_records(lab_factory) -> None:
    """A zone of many domains on a few providers' MX hosts parses each distinct MX text
    once (the realistic benchmark's 100,000 domains: 100 texts), and every domain still
    gets its own answer."""
    from mtasts.lab import DomainSpec, Scenario

    names = [f"d{i}.shared.test" for i in range(2000)]
    scenario = Scenario(
        domains=tuple(
            DomainSpec(n, mx=(f"mx1.prov{i % 2}.test", f"mx2.prov{i % 2}.test"))
            for i, n in enumerate(names)
        )
    )
    lab = await lab_factory(scenario)
    lab.zone.default_ttl = 3600  # the realistic benchmark's records live an hour
    lab.zone.ttls["d0.shared.test"] = 60
    rdatas = {id(r) for n in names for r in lab.zone.records[(n, dns.rdatatype.MX)]}
    assert len(rdatas) == 4  # 2 providers x 2 MX hosts, shared by 2,000 domains
    answer = await ask(lab, "d1999.shared.test", "MX")
    assert answer.answer[0].ttl == 3600
    assert (await ask(lab, "d0.shared.test", "MX")).answer[0].ttl == 60  # its own
    assert sorted(r.to_text() for r in answer.answer[0]) == [
        "10 mx1.prov1.test.",
        "20 mx2.prov1.test.",
    ]
    lab.set_records("d1999.shared.test", "MX", ["10 mx9.prov9.test."])  # live change: its own
    assert [r.to_text() for r in (await ask(lab, "d1999.shared.test", "MX")).answer[0]] == [
        "10 mx9.prov9.test."
    ]
    other = await ask(lab, "d1997.shared.test", "MX")
    assert sorted(r.to_text() for r in other.answer[0])[0] == "10 mx1.prov1.test."
