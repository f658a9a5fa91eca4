"""The lab's authoritative DNS server (UDP and TCP), built on dnspython's message layer.

Answers every name of the zone with the records it has, NODATA for a name that exists
without the asked type, NXDOMAIN otherwise; per-name faults (nxdomain, servfail, timeout =
no answer at all), CNAME chains inside the zone, and the AD bit for names marked signed.
"""

from __future__ import annotations

import asyncio
import functools
import struct
from dataclasses import dataclass, field
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A

from mtasts.lab.scenario import normalize

TTL = 300


@dataclass(frozen=True, slots=True)
class DnsQuery:
    """One question the lab DNS received."""

    name: str
    rdtype: str
    transport: str  # "udp" | "tcp"


@dataclass(slots=True)
class Zone:
    """The lab's records, mutable while the lab runs (tests change them live).

    Every lookup is a dict access (a 10,000-domain lab answers as fast as a small one):
    ``records`` is keyed by (name, type), and ``_below`` counts the RRsets at or under
    each name, so that a name with no records of its own still exists when a descendant
    has some (an empty non-terminal, RFC 8020). Change records through the methods.
    """

    records: dict[tuple[str, int], list[dns.rdata.Rdata]] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)
    signed: set[str] = field(default_factory=set)
    queries: list[DnsQuery] = field(default_factory=list)
    #: per-name TTL of every RRset at that name (default: ``default_ttl``)
    ttls: dict[str, int] = field(default_factory=dict)
    #: the TTL of RRsets without their own in ``ttls``
    default_ttl: int = TTL
    #: when set, NXDOMAIN and NODATA answers carry an SOA with this TTL and MINIMUM
    #: (the negative TTL, RFC 2308 §5); None: no SOA (resolvers then use their default)
    negative_ttl: int | None = None
    _below: dict[str, int] = field(default_factory=dict)

    def _put(self, key: tuple[str, int], rdatas: list[dns.rdata.Rdata]) -> None:
        if not rdatas:
            if self.records.pop(key, None) is not None:
                self._count(key[0], -1)
            return
        if key not in self.records:
            self._count(key[0], +1)
        self.records[key] = rdatas

    def _count(self, name: str, step: int) -> None:
        labels = name.split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            left = self._below.get(suffix, 0) + step
            if left:
                self._below[suffix] = left
            else:
                self._below.pop(suffix, None)

    def set(self, name: str, rdtype: str, values: list[str]) -> None:
        """Replaces the RRset of ``name``/``rdtype`` with zone-file rdata texts."""
        t = dns.rdatatype.from_text(rdtype)
        self._put((normalize(name), t), [_rdata(t, v) for v in values])

    def add(self, name: str, rdtype: str, values: list[str]) -> None:
        key = (normalize(name), dns.rdatatype.from_text(rdtype))
        old = [r.to_text() for r in self.records.get(key, [])]
        self.set(name, rdtype, old + [v for v in values if v not in old])

    def set_txt(self, name: str, records: list[tuple[str, ...]] | list[str]) -> None:
        """Each record is a string or a tuple of strings (one record, several strings).

        Strings longer than 255 bytes are split, as zone tools do (RFC 1035 §3.3.14).
        """
        rdatas: list[dns.rdata.Rdata] = []
        for record in records:
            parts = (record,) if isinstance(record, str) else record
            chunks: list[bytes] = []
            for part in parts:
                raw = part.encode()
                chunks.extend([raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""])
            rdatas.append(TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks))
        self._put((normalize(name), dns.rdatatype.TXT), rdatas)

    def set_fault(self, name: str, fault: str | None) -> None:
        if fault is None:
            self.faults.pop(normalize(name), None)
        else:
            self.faults[normalize(name)] = fault

    def exists(self, name: str) -> bool:
        """A name exists if it or a descendant has records (empty non-terminals exist)."""
        return name in self._below

    def is_signed(self, name: str) -> bool:
        labels = name.split(".")
        return any(".".join(labels[i:]) in self.signed for i in range(len(labels)))

    def answer(self, query: dns.message.Message, transport: str) -> dns.message.Message | None:
        """The response to ``query``, or None to stay silent (a timeout)."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        q = query.question[0]
        qname = normalize(q.name.to_text())
        self.queries.append(DnsQuery(qname, dns.rdatatype.to_text(q.rdtype), transport))
        name, signed, seen = qname, False, {qname}
        for _ in range(8):  # follow in-zone CNAMEs, at most 8 links
            fault = self.faults.get(name)
            if fault == "timeout":
                return None
            if fault == "servfail":
                response.set_rcode(dns.rcode.SERVFAIL)
                return response
            signed = signed or self.is_signed(name)
            cname = self.records.get((name, dns.rdatatype.CNAME))
            if fault != "nxdomain" and cname and q.rdtype != dns.rdatatype.CNAME:
                response.answer.append(_rrset(name, dns.rdatatype.CNAME, cname))
                name = normalize(cname[0].to_text())
                if name in seen:
                    # A CNAME loop: RFC 1034 §3.6.2 has resolvers signal it as an error;
                    # an authoritative server (BIND, NSD) answers NOERROR with the chain,
                    # each CNAME once, and nothing else. We do the same and let the
                    # client decide.
                    break
                seen.add(name)
                continue
            found = self.records.get((name, q.rdtype))
            if fault == "nxdomain" or not self.exists(name):
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif found:
                response.answer.append(
                    _rrset(name, q.rdtype, found, self.ttls.get(name, self.default_ttl))
                )
            if not found and self.negative_ttl is not None:
                response.authority.append(_soa(self.negative_ttl))
            break
        if signed:
            response.flags |= dns.flags.AD
        return response


@functools.lru_cache(maxsize=65536)
def _rdata(rdtype: dns.rdatatype.RdataType, text: str) -> dns.rdata.Rdata:
    """One parsed rdata per distinct text: dnspython's rdata are immutable, so a zone of
    100,000 domains that share 50 providers' MX hosts parses 100 MX texts, not 100,000
    (parsing is ~60 µs each: 6 s of a large lab's start)."""
    if rdtype == dns.rdatatype.A:  # the lab's most common record, built without a tokenizer
        return A(dns.rdataclass.IN, rdtype, text.strip())  # type: ignore[no-untyped-call]
    return dns.rdata.from_text(
        dns.rdataclass.IN, rdtype, text, origin=dns.name.root, relativize=False
    )


def _rrset(
    name: str, rdtype: dns.rdatatype.RdataType, rdatas: list[dns.rdata.Rdata], ttl: int = TTL
) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(dns.name.from_text(name), dns.rdataclass.IN, rdtype)
    for r in rdatas:
        rrset.add(r, ttl)
    return rrset


def _soa(negative_ttl: int) -> dns.rrset.RRset:
    """The lab's SOA for negative answers: TTL and MINIMUM both ``negative_ttl``."""
    text = f"ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 {negative_ttl}"
    soa = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SOA, text)
    return _rrset("test", dns.rdatatype.SOA, [soa], negative_ttl)


def _wire(response: dns.message.Message, limit: int) -> bytes:
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer.clear()
        response.flags |= dns.flags.TC
        return response.to_wire()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return  # not DNS: ignore, as real servers do
        response = self.zone.answer(query, "udp")
        if response is not None and self.transport is not None:
            limit = max(512, query.payload if query.edns >= 0 else 512)
            self.transport.sendto(_wire(response, limit), addr)


async def _serve_tcp(
    zone: Zone, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            query = dns.message.from_wire(await reader.readexactly(length))
            response = zone.answer(query, "tcp")
            if response is not None:
                wire = _wire(response, 65535)
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, dns.exception.DNSException):
        pass
    finally:
        writer.close()


async def start_dns(
    zone: Zone, host: str, port: int
) -> list[asyncio.AbstractServer | asyncio.BaseTransport]:
    """Listens on ``host:port`` over UDP and TCP; raises OSError if the port is taken."""
    loop = asyncio.get_running_loop()
    tcp = await asyncio.start_server(lambda r, w: _serve_tcp(zone, r, w), host, port)
    port = port or tcp.sockets[0].getsockname()[1]  # UDP on the port TCP got
    try:
        udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(zone), local_addr=(host, port))
    except OSError:
        tcp.close()
        raise
    return [tcp, udp]
