"""The daemon with the real resolver, answering from the lab's DNS and policy hosts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mtasts.config import Settings
from mtasts.lab import Lab
from mtasts.lab.testing import running_lab
from mtasts.postfix.dane import DaneProbe
from mtasts.postfix.netstring import NetstringDecoder, encode
from mtasts.postfix.server import ServerSettings, SocketmapServer
from mtasts.postfix.socketmap import ReplyOptions
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
'''


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
            server = SocketmapServer(
                resolver,
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
    ("postfix good.test", "OK secure match=mx1.good.test:.mx.good.test servername=hostname"),
    ("postfix GOOD.Test", "OK secure match=mx1.good.test:.mx.good.test servername=hostname"),
    ("postfix .good.test", "NOTFOUND "),
    ("postfix try.test", "NOTFOUND "),  # testing mode: Postfix's default applies
    ("postfix plain.test", "NOTFOUND "),  # no MTA-STS
    ("postfix missing.test", "NOTFOUND "),  # policy 404, nothing cached: as if none
    ("postfix [mx1.good.test]", "NOTFOUND "),
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
        "OK secure match=mx1.good.test:.mx.good.test servername=hostname"
        " policy_type=sts policy_domain=good.test"
        " mx_host_pattern=mx1.good.test mx_host_pattern=*.mx.good.test"
        " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
        " { policy_string = mx: mx1.good.test } { policy_string = mx: *.mx.good.test }"
        " { policy_string = max_age: 86400 }"
    )
    writer.close()


async def test_dane_wins_where_tlsa_is_dnssec_validated(daemon: Daemon) -> None:
    """RFC 8461 §2: signed.test's MX has validated TLSA: DANE, not STS; good.test stays STS."""
    probe = DaneProbe(daemon.lab.nameserver)
    srv = SocketmapServer(daemon.server.source, dane=probe)
    host, port = await srv.listen_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(host, port)
    assert await ask(reader, writer, "postfix signed.test") == "OK dane-only"
    assert await ask(reader, writer, "postfix good.test") == (
        "OK secure match=mx1.good.test:.mx.good.test servername=hostname"
    )
    writer.close()
    await srv.close()
