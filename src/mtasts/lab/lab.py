"""The running lab: builds the zone, certificates and servers of a scenario and owns them.

Every host gets its own 127.x.y.z address; each protocol uses one shared high port on
all of them (the first free one found, retried if another address has it in use), so
``https://mta-sts.good.test:<https_port>/`` reaches that host and only that host.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from mtasts.lab.attacker import Attacker
from mtasts.lab.certs import LabPki
from mtasts.lab.dns_server import DnsQuery, Zone, start_dns
from mtasts.lab.https_host import HttpRequest, PolicyHost, TlsRptHttps
from mtasts.lab.network import Handler, Listeners, address_for, raise_file_limit
from mtasts.lab.scenario import DnsSpec, HostSpec, PolicyHostSpec, Scenario, SmtpSpec, normalize
from mtasts.lab.smtp_host import MxHost
from mtasts.rfcnames import policy_host, sts_record_name, tlsrpt_record_name

NS_NAME = "ns.lab.test"
REPORTS_NAME = "reports.lab.test"  # the https TLS-RPT receiver
MAILBOX_DOMAIN = "lab.test"
MAILBOX_NAME = "mail.lab.test"  # the TLS-RPT mailbox, MX of lab.test
_PORT_TRIES = 20

Binder = Callable[[str, int], Awaitable[list[Any]]]


@dataclass(frozen=True, slots=True)
class _Bind:
    address: str
    start: Binder


def _memory_dir() -> str | None:
    """The memory file system when there is one: the lab writes a certificate file per
    host it contacts (``SSLContext.load_cert_chain`` reads only files), 20x faster there.
    ``mkdtemp`` makes a private (0700) directory inside it."""
    shm = Path("/dev/shm")  # noqa: S108 (only the parent of a private mkdtemp directory)
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


class Lab:
    """A running scenario. ``async with Lab(scenario) as lab:`` or ``await Lab.start(s)``."""

    def __init__(
        self, scenario: Scenario, *, https_port: int = 0, smtp_port: int = 0, dns_port: int = 0
    ) -> None:
        self.scenario = scenario
        self._ports = {"https": https_port, "smtp": smtp_port, "dns": dns_port}
        self._dir = Path(tempfile.mkdtemp(prefix="mtasts-lab-", dir=_memory_dir()))
        self.pki = LabPki(self._dir)
        self.zone = Zone()
        self._listeners = Listeners()
        self._addresses: dict[str, str] = {}
        self.policy_hosts: dict[str, PolicyHost] = {}
        self.mx_hosts: dict[str, MxHost] = {}
        self.attackers: dict[str, Attacker] = {}
        self.tlsrpt_https = TlsRptHttps(REPORTS_NAME, scenario.tlsrpt_https_statuses)
        self.tlsrpt_mailbox = MxHost(MAILBOX_NAME, None)
        self.https_port = 0
        self.smtp_port = 0
        self.dns_port = 0
        self.running = False

    # --- life cycle ---------------------------------------------------------------

    @classmethod
    async def start(cls, scenario: Scenario, **ports: int) -> Lab:
        lab = cls(scenario, **ports)
        await lab._start()
        return lab

    async def __aenter__(self) -> Lab:
        await self._start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _start(self) -> None:
        try:
            raise_file_limit()
            hosts = self._hosts()
            self._assign_addresses(hosts)
            self._build_zone(hosts)
            dns_binds = [_Bind(self._addresses[NS_NAME], self._start_dns)]
            self.dns_port = await self._bind_all("dns", dns_binds)
            self.https_port = await self._bind_all("https", self._https_binds())
            self.smtp_port = await self._bind_all("smtp", self._smtp_binds(hosts))
            self.tlsrpt_https.url = f"https://{REPORTS_NAME}:{self.https_port}/tlsrpt"
            self.running = True
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Closes every listener and connection and removes the lab's files."""
        self.running = False
        for mx in [*self.mx_hosts.values(), self.tlsrpt_mailbox]:
            mx.close_sessions()
        await self._listeners.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    # --- building -----------------------------------------------------------------

    def _hosts(self) -> dict[str, HostSpec]:
        hosts = {h.name: h for h in self.scenario.hosts}
        for domain in self.scenario.domains:
            for mx in domain.mx:  # an MX named but not described is a healthy one
                hosts.setdefault(mx, HostSpec(mx, SmtpSpec()))
        return hosts

    def _assign_addresses(self, hosts: dict[str, HostSpec]) -> None:
        taken: set[str] = set()
        for host in hosts.values():
            if host.address:
                self._addresses[host.name] = host.address
                taken.add(host.address)
        names = [NS_NAME, REPORTS_NAME, MAILBOX_NAME, *sorted(hosts)]
        names += sorted(d.policy_host_name for d in self.scenario.domains if d.serves_policy)
        names += sorted(f"backend.{h.name}" for h in hosts.values() if h.attacker)
        for name in names:
            if name not in self._addresses:
                self._addresses[name] = address_for(name, taken)

    def _build_zone(self, hosts: dict[str, HostSpec]) -> None:
        zone = self.zone
        for name, address in self._addresses.items():
            if not name.startswith("backend."):
                zone.set(name, "A", [address])
        zone.set(MAILBOX_DOMAIN, "MX", [f"10 {MAILBOX_NAME}."])
        for d in self.scenario.domains:
            if d.mx:
                zone.set(d.name, "MX", [f"{10 * (i + 1)} {mx}." for i, mx in enumerate(d.mx)])
            if d.sts is not None:
                zone.set_txt(sts_record_name(d.name), list(d.sts))
            if d.tlsrpt is not None:
                zone.set_txt(tlsrpt_record_name(d.name), list(d.tlsrpt))
            if d.dnssec:
                zone.signed.add(d.name)
            for mx in d.mx if d.tlsa else ():
                zone.add(f"_25._tcp.{mx}", "TLSA", list(d.tlsa))
        for spec in self.scenario.dns:
            self._apply_dns(spec)

    def _apply_dns(self, spec: DnsSpec) -> None:
        zone = self.zone
        for rdtype, values in (("A", spec.a), ("AAAA", spec.aaaa), ("MX", spec.mx)):
            if values:
                zone.set(spec.name, rdtype, list(values))
        if spec.tlsa:
            zone.set(spec.name, "TLSA", list(spec.tlsa))
        if spec.txt:
            zone.set_txt(spec.name, list(spec.txt))
        if spec.cname:
            zone.set(spec.name, "CNAME", [spec.cname + "."])
        if spec.dnssec:
            zone.signed.add(spec.name)
        zone.set_fault(spec.name, spec.fault)

    async def _start_dns(self, address: str, port: int) -> list[Any]:
        return await start_dns(self.zone, address, port)

    def _stream(self, handler: Handler, ctx: ssl.SSLContext | None) -> Binder:
        async def start(address: str, port: int) -> list[Any]:
            server = await asyncio.start_server(
                self._listeners.track(handler), address, port, ssl=ctx
            )
            return [server]

        return start

    def _https_binds(self) -> list[_Bind]:
        binds = [
            _Bind(
                self._addresses[REPORTS_NAME],
                self._stream(
                    self.tlsrpt_https.handle, self.pki.server_context(REPORTS_NAME, "valid")
                ),
            )
        ]
        for d in self.scenario.domains:
            if not d.serves_policy:
                continue
            host = PolicyHost(d.name, d.policy, d.policy_host)
            self.policy_hosts[d.name] = host
            if d.policy_host.listen:
                ctx = self._policy_context(host, d.policy_host)
                binds.append(
                    _Bind(self._addresses[d.policy_host_name], self._stream(host.handle, ctx))
                )
        return binds

    def _policy_context(self, host: PolicyHost, spec: PolicyHostSpec) -> ssl.SSLContext:
        # Certificate changes made while the lab runs apply to the next handshake.
        return self.pki.lazy_server_context(
            policy_host(host.domain),
            lambda: host.spec.cert,
            min_version=spec.tls_min_version,
            max_version=spec.tls_max_version,
        )

    def _smtp_binds(self, hosts: dict[str, HostSpec]) -> list[_Bind]:
        mailbox_ctx = self.pki.server_context(MAILBOX_NAME, "valid")
        self.tlsrpt_mailbox.tls_context = mailbox_ctx
        binds = [_Bind(self._addresses[MAILBOX_NAME], self._smtp(self.tlsrpt_mailbox))]
        for host in hosts.values():
            smtp = host.smtp
            if smtp is None:
                continue
            ctx = None
            if smtp.starttls:
                ctx = self.pki.lazy_server_context(
                    host.name,
                    smtp.cert,
                    min_version=smtp.tls_min_version,
                    max_version=smtp.tls_max_version,
                )
            mx = MxHost(host.name, ctx)
            self.mx_hosts[host.name] = mx
            address = self._addresses[host.name]
            if host.attacker:
                address = self._addresses[f"backend.{host.name}"]
                attacker = Attacker(
                    host.attacker,
                    host.name,
                    (address, 0),  # the port is filled in once chosen
                    self.pki.server_context(host.name, "attacker"),
                )
                self.attackers[host.name] = attacker
                binds.append(_Bind(self._addresses[host.name], self._attacker(attacker)))
            mx.address = address
            if smtp.listen:
                binds.append(_Bind(address, self._smtp(mx)))
        return binds

    def _smtp(self, mx: MxHost) -> Binder:
        async def start(address: str, port: int) -> list[Any]:
            return [await mx.listen(address, port)]

        return start

    def _attacker(self, attacker: Attacker) -> Binder:
        async def start(address: str, port: int) -> list[Any]:
            attacker.backend = (attacker.backend[0], port)
            return [
                await asyncio.start_server(self._listeners.track(attacker.handle), address, port)
            ]

        return start

    async def _bind_all(self, protocol: str, binds: list[_Bind]) -> int:
        """Binds every listener of ``protocol`` to one shared port; retries if taken."""
        fixed = self._ports[protocol]
        for _ in range(_PORT_TRIES):
            port, started = fixed, Listeners()
            try:
                for bind in binds:
                    items = await bind.start(bind.address, port)
                    if port == 0:
                        port = items[0].sockets[0].getsockname()[1]
                    started.add(*items)
            except OSError as exc:
                await started.close()
                if exc.errno != errno.EADDRINUSE or fixed:
                    raise
                continue
            for server in started.servers:
                self._listeners.add(server)
            for transport in started.transports:
                self._listeners.add(transport)
            return port
        raise OSError(errno.EADDRINUSE, f"no free {protocol} port shared by all lab addresses")

    # --- what tests and commands use ---------------------------------------------

    @property
    def nameserver(self) -> tuple[str, int]:
        return self._addresses[NS_NAME], self.dns_port

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_file

    @property
    def env(self) -> dict[str, str]:
        """The environment that points mtasts commands at this lab."""
        host, port = self.nameserver
        return {
            "MTASTS_NAMESERVER": f"{host}:{port}",
            "MTASTS_CA_FILE": str(self.ca_file),
            "MTASTS_HTTPS_PORT": str(self.https_port),
            "MTASTS_SMTP_PORT": str(self.smtp_port),
            "MTASTS_LAB_REPORT_URL": self.tlsrpt_https.url,
            "MTASTS_LAB_REPORT_MAILTO": f"tls-reports@{MAILBOX_DOMAIN}",
        }

    def address(self, name: str) -> str:
        return self._addresses[normalize(name)]

    @property
    def addresses(self) -> dict[str, str]:
        return {k: v for k, v in self._addresses.items() if not k.startswith("backend.")}

    def mx(self, name: str) -> MxHost:
        return self.mx_hosts[normalize(name)]

    def attacker(self, name: str) -> Attacker:
        return self.attackers[normalize(name)]

    def policy_requests(self, domain: str) -> list[HttpRequest]:
        return self.policy_hosts[normalize(domain)].requests

    @property
    def dns_queries(self) -> list[DnsQuery]:
        return self.zone.queries

    def set_records(self, name: str, rdtype: str, values: list[str]) -> None:
        """Replaces one RRset (zone-file rdata text); an empty list deletes it."""
        self.zone.set(name, rdtype, values)

    def set_txt(self, name: str, records: list[tuple[str, ...]] | list[str]) -> None:
        self.zone.set_txt(name, records)

    def set_dns_fault(self, name: str, fault: str | None) -> None:
        if fault not in (None, "nxdomain", "servfail", "timeout"):
            raise ValueError(f"unknown DNS fault {fault!r}")
        self.zone.set_fault(name, fault)

    def set_dnssec(self, name: str, signed: bool) -> None:
        (self.zone.signed.add if signed else self.zone.signed.discard)(normalize(name))

    def set_policy(self, domain: str, policy: str | bytes | None) -> None:
        self.policy_hosts[normalize(domain)].policy = policy

    def set_policy_host(self, domain: str, **changes: Any) -> None:
        """Changes how a policy host behaves from the next request on (status, delay_ms,
        cert, ...). TLS versions and ``listen`` are fixed when the lab starts."""
        fixed = {"tls_min_version", "tls_max_version", "listen"} & set(changes)
        if fixed:
            raise ValueError(f"{', '.join(sorted(fixed))} cannot change while the lab runs")
        self.policy_hosts[normalize(domain)].update(**changes)

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, address, what runs there) for every lab host, for people reading it."""
        rows = [
            (NS_NAME, self.nameserver[0], f"DNS udp+tcp :{self.dns_port}"),
            (REPORTS_NAME, self.address(REPORTS_NAME), f"TLS-RPT https :{self.https_port}"),
            (MAILBOX_NAME, self.address(MAILBOX_NAME), f"TLS-RPT mailbox smtp :{self.smtp_port}"),
        ]
        for domain, host in sorted(self.policy_hosts.items()):
            s = host.spec
            what = f"policy host https :{self.https_port} status={s.status} cert={s.cert}"
            what += "" if s.listen else " (not listening)"
            rows.append((policy_host(domain), self.address(policy_host(domain)), what))
        for name, mx in sorted(self.mx_hosts.items()):
            tls = "STARTTLS" if mx.tls_context is not None else "no STARTTLS"
            what = f"MX smtp :{self.smtp_port} {tls}"
            if name in self.attackers:
                what += f", behind attacker {self.attackers[name].kind}"
            rows.append((name, self.address(name), what))
        return rows
