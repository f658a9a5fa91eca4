"""Lab scenarios: what the simulated mail internet contains, read from TOML or built in code.

A scenario is a frozen tree of values. The TOML keys (see ``examples/scenarios/demo.toml``)::

    [[domain]]                 # a mail domain: MX, _mta-sts, policy host, _smtp._tls
    name, mx, sts, policy, policy_host = {...}, tlsrpt, dnssec, tlsa
    [[host]]                   # a host with an address; an MX when it has `smtp`
    name, smtp = {...}, attacker, address
    [[dns]]                    # any name: extra records and faults
    name, fault, txt, a, aaaa, cname, mx, tlsa, dnssec
    [tlsrpt_https]             # the lab's TLS-RPT https receiver
    statuses = [500, 200]

An unknown key is a :class:`~mtasts.errors.ConfigError` naming the key and its line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, cast, get_args

from mtasts.errors import ConfigError
from mtasts.rfcnames import policy_host

# "cn-only": issued by the lab CA for the right name, but only in the subject CN (no
# subjectAltName), which RFC 6125 / RFC 8461 §3.3 clients must refuse.
CertKind = Literal["valid", "expired", "wrong-name", "self-signed", "untrusted", "cn-only"]
TlsVersionName = Literal["", "1.0", "1.1", "1.2", "1.3"]
DnsFault = Literal["nxdomain", "servfail", "timeout"]
AttackerKind = Literal["strip-starttls", "own-cert"]

CERT_KINDS: tuple[str, ...] = get_args(CertKind)
TLS_VERSIONS: tuple[str, ...] = get_args(TlsVersionName)
DNS_FAULTS: tuple[str, ...] = get_args(DnsFault)
ATTACKERS: tuple[str, ...] = get_args(AttackerKind)


@dataclass(frozen=True, slots=True)
class PolicyHostSpec:
    """How ``mta-sts.<domain>`` behaves. The defaults are a healthy host.

    ``content_type=""`` sends no Content-Type header. ``redirect_to`` sends a Location
    header (with status 301 unless ``status`` says otherwise). ``body_extra`` is appended
    to the policy; ``oversize`` pads the body with ``#`` lines up to that many bytes;
    ``slow_ms`` drips the body ``drip_bytes`` at a time; ``endless`` never ends the body;
    ``delay_ms`` waits before the status line; ``listen=false`` keeps the DNS name but
    opens no port. ``content_encoding`` is sent as the Content-Encoding header and the
    body (after ``body_extra`` and ``oversize``) is encoded with each listed coding the
    lab knows (``gzip``, ``deflate``, ``identity``) in the order listed (RFC 9110 §8.4);
    a coding it does not know (``br``, ``bogus``) is named in the header only.
    """

    status: int = 200
    content_type: str = "text/plain"
    cert: CertKind = "valid"
    redirect_to: str = ""
    delay_ms: int = 0
    body_extra: str = ""
    oversize: int = 0
    slow_ms: int = 0
    drip_bytes: int = 1
    endless: bool = False
    tls_min_version: TlsVersionName = ""
    tls_max_version: TlsVersionName = ""
    listen: bool = True
    content_encoding: str = ""


@dataclass(frozen=True, slots=True)
class SmtpSpec:
    """The SMTP server of a host: STARTTLS on or off, certificate variant, TLS versions."""

    starttls: bool = True
    cert: CertKind = "valid"
    tls_min_version: TlsVersionName = ""
    tls_max_version: TlsVersionName = ""
    listen: bool = True


@dataclass(frozen=True, slots=True)
class HostSpec:
    """A lab host. With ``smtp`` it is an MX; with ``attacker`` a man in the middle sits
    at its address in front of the real server (which moves to a hidden address)."""

    name: str
    smtp: SmtpSpec | None = None
    attacker: AttackerKind | None = None
    address: str = ""


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """A mail domain. ``sts``/``tlsrpt``: TXT records, each a tuple of strings.

    ``policy`` is served byte for byte (``bytes`` allows invalid UTF-8). A policy host
    exists when ``policy`` is given or ``has_policy_host`` is set.
    """

    name: str
    mx: tuple[str, ...] = ()
    sts: tuple[tuple[str, ...], ...] | None = None
    policy: str | bytes | None = None
    policy_host: PolicyHostSpec = field(default_factory=PolicyHostSpec)
    has_policy_host: bool = False
    tlsrpt: tuple[tuple[str, ...], ...] | None = None
    dnssec: bool = False
    tlsa: tuple[str, ...] = ()

    @property
    def policy_host_name(self) -> str:
        return policy_host(self.name)

    @property
    def serves_policy(self) -> bool:
        return self.policy is not None or self.has_policy_host


@dataclass(frozen=True, slots=True)
class DnsSpec:
    """Extra records and faults for one DNS name (records are zone-file rdata text)."""

    name: str
    fault: DnsFault | None = None
    txt: tuple[tuple[str, ...], ...] = ()
    a: tuple[str, ...] = ()
    aaaa: tuple[str, ...] = ()
    cname: str = ""
    mx: tuple[str, ...] = ()
    tlsa: tuple[str, ...] = ()
    dnssec: bool = False


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything one lab contains."""

    domains: tuple[DomainSpec, ...] = ()
    hosts: tuple[HostSpec, ...] = ()
    dns: tuple[DnsSpec, ...] = ()
    tlsrpt_https_statuses: tuple[int, ...] = (200,)

    def __add__(self, other: Scenario) -> Scenario:
        return Scenario(
            self.domains + other.domains,
            self.hosts + other.hosts,
            self.dns + other.dns,
            other.tlsrpt_https_statuses
            if other.tlsrpt_https_statuses != (200,)
            else self.tlsrpt_https_statuses,
        )

    def domain(self, name: str) -> DomainSpec:
        name = normalize(name)
        for d in self.domains:
            if d.name == name:
                return d
        raise KeyError(name)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read scenario file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8"
            ) from exc
        return cls.from_toml(text, source=str(path))

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<scenario>") -> Scenario:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
        return _Reader(text, source).scenario(data)


def normalize(name: str) -> str:
    """Lower case, no trailing dot: the one spelling the lab uses for names."""
    return name.strip().rstrip(".").lower()


class _Reader:
    """Turns parsed TOML into a Scenario, pointing every error at a key and line."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def line_of(self, key: str, table: str = "", index: int = 0) -> int:
        """1-based line of ``key`` inside the ``index``-th ``[[table]]`` (or the top level)."""
        start = 0
        if table:
            header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?")
            seen = -1
            for n, line in enumerate(self.lines):
                if header.match(line):
                    seen += 1
                    if seen == index:
                        start = n
                        break
        k = re.escape(key)
        # `key = ...` (also inside an inline table) or a table header `[key]` / `[[key]]`
        pattern = re.compile(rf'(?<![\w"-])"?{k}"?\s*=|^\s*\[\[?\s*{k}\s*[\].]')
        for n in range(start, len(self.lines)):
            if pattern.search(self.lines[n]):
                return n + 1
        return start + 1

    def fail(self, what: str, key: str, table: str = "", index: int = 0) -> ConfigError:
        line = self.line_of(key, table, index)
        return ConfigError(f"{self.source}, line {line}: {what}", code="lab.scenario")

    def check_keys(
        self, data: dict[str, Any], allowed: set[str], where: str, table: str, index: int
    ) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"unknown key {key!r} in {where}; known keys: {', '.join(sorted(allowed))}",
                    key,
                    table,
                    index,
                )

    def scenario(self, data: dict[str, Any]) -> Scenario:
        self.check_keys(data, {"domain", "host", "dns", "tlsrpt_https"}, "the scenario", "", 0)
        statuses: tuple[int, ...] = (200,)
        if "tlsrpt_https" in data:
            rx = self.table(data["tlsrpt_https"], "tlsrpt_https", "", 0)
            self.check_keys(rx, {"statuses"}, "[tlsrpt_https]", "tlsrpt_https", 0)
            raw = rx.get("statuses", [200])
            if not isinstance(raw, list) or not raw or not all(_is_int(s) for s in raw):
                raise self.fail(
                    "statuses must be a non-empty list of HTTP status codes",
                    "statuses",
                    "tlsrpt_https",
                )
            statuses = tuple(raw)
        domains = tuple(self.domain(d, i) for i, d in enumerate(self.array(data, "domain")))
        hosts = tuple(self.host(h, i) for i, h in enumerate(self.array(data, "host")))
        self.unique([d.name for d in domains], "domain")
        self.unique([h.name for h in hosts], "host")
        return Scenario(
            domains=domains,
            hosts=hosts,
            dns=tuple(self.dns(d, i) for i, d in enumerate(self.array(data, "dns"))),
            tlsrpt_https_statuses=statuses,
        )

    def unique(self, names: list[str], table: str) -> None:
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.fail(f"[[{table}]] {name!r} is described twice", "name", table, i)

    def array(self, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(f"{key} must be written as [[{key}]] tables", key)
        return cast(list[dict[str, Any]], value)

    def table(self, value: Any, key: str, table: str, index: int) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{key} must be a table, e.g. {key} = {{ ... }}", key, table, index)
        return cast(dict[str, Any], value)

    def name(self, data: dict[str, Any], table: str, index: int) -> str:
        if not isinstance(data.get("name"), str) or not data["name"].strip():
            raise self.fail(f'every [[{table}]] needs a name = "..."', table, "", 0)
        return normalize(data["name"])

    def strings(self, value: Any, key: str, table: str, index: int) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise self.fail(f"{key} must be a string or a list of strings", key, table, index)

    def txt(self, value: Any, key: str, table: str, index: int) -> tuple[tuple[str, ...], ...]:
        """A string = one record; a list of strings = one record in several strings;
        a list of lists = several records."""
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            return tuple(self.strings(v, key, table, index) for v in value)
        return (self.strings(value, key, table, index),)

    def spec(self, cls: type[Any], value: Any, key: str, table: str, index: int) -> Any:
        """Builds a flat spec dataclass from an inline table, type-checking each field."""
        data = self.table(value, key, table, index)
        known = {f.name: f for f in fields(cls)}
        self.check_keys(data, set(known), f"{key} of [[{table}]] #{index + 1}", table, index)
        defaults = cls()
        for k, v in data.items():
            want = type(getattr(defaults, k))
            ok = (
                (want is bool and isinstance(v, bool))
                or (want is int and _is_int(v))
                or (want is str and isinstance(v, str))
            )
            if not ok:
                raise self.fail(f"{key}.{k} must be a {want.__name__}", k, table, index)
        spec = cls(**data)
        self.check_choice(spec, "cert", CERT_KINDS, table, index)
        self.check_choice(spec, "tls_min_version", TLS_VERSIONS, table, index)
        self.check_choice(spec, "tls_max_version", TLS_VERSIONS, table, index)
        return spec

    def check_choice(
        self, spec: Any, key: str, choices: tuple[str, ...], table: str, index: int
    ) -> None:
        value = getattr(spec, key, None)
        if value is not None and value not in choices:
            shown = ", ".join(repr(c) for c in choices)
            raise self.fail(f"{key} = {value!r} is not one of {shown}", key, table, index)

    def domain(self, data: dict[str, Any], i: int) -> DomainSpec:
        allowed = {"name", "mx", "sts", "policy", "policy_host", "tlsrpt", "dnssec", "tlsa"}
        self.check_keys(data, allowed, f"[[domain]] #{i + 1}", "domain", i)
        policy = data.get("policy")
        if policy is not None and not isinstance(policy, str):
            raise self.fail("policy must be a string (the policy file text)", "policy", "domain", i)
        if not isinstance(data.get("dnssec", False), bool):
            raise self.fail("dnssec must be true or false", "dnssec", "domain", i)
        has_host = "policy_host" in data
        return DomainSpec(
            name=self.name(data, "domain", i),
            mx=tuple(normalize(m) for m in self.strings(data.get("mx", []), "mx", "domain", i)),
            sts=self.txt(data["sts"], "sts", "domain", i) if "sts" in data else None,
            policy=policy,
            policy_host=self.spec(PolicyHostSpec, data["policy_host"], "policy_host", "domain", i)
            if has_host
            else PolicyHostSpec(),
            has_policy_host=has_host,
            tlsrpt=self.txt(data["tlsrpt"], "tlsrpt", "domain", i) if "tlsrpt" in data else None,
            dnssec=data.get("dnssec", False),
            tlsa=self.strings(data.get("tlsa", []), "tlsa", "domain", i),
        )

    def host(self, data: dict[str, Any], i: int) -> HostSpec:
        self.check_keys(
            data, {"name", "smtp", "attacker", "address"}, f"[[host]] #{i + 1}", "host", i
        )
        attacker = data.get("attacker")
        if attacker is not None and attacker not in ATTACKERS:
            shown = ", ".join(repr(a) for a in ATTACKERS)
            raise self.fail(f"attacker = {attacker!r} is not one of {shown}", "attacker", "host", i)
        smtp = self.spec(SmtpSpec, data["smtp"], "smtp", "host", i) if "smtp" in data else None
        if attacker and smtp is None:
            raise self.fail(
                "an attacker needs an smtp server to sit in front of", "attacker", "host", i
            )
        address = data.get("address", "")
        if not isinstance(address, str) or (address and not address.startswith("127.")):
            raise self.fail("address must be a 127.x.y.z loopback address", "address", "host", i)
        return HostSpec(self.name(data, "host", i), smtp, attacker, address)

    def dns(self, data: dict[str, Any], i: int) -> DnsSpec:
        allowed = {f.name for f in fields(DnsSpec)}
        self.check_keys(data, allowed, f"[[dns]] #{i + 1}", "dns", i)
        fault = data.get("fault")
        if fault is not None and fault not in DNS_FAULTS:
            shown = ", ".join(repr(f) for f in DNS_FAULTS)
            raise self.fail(f"fault = {fault!r} is not one of {shown}", "fault", "dns", i)
        cname = data.get("cname", "")
        if not isinstance(cname, str):
            raise self.fail("cname must be a string", "cname", "dns", i)
        if not isinstance(data.get("dnssec", False), bool):
            raise self.fail("dnssec must be true or false", "dnssec", "dns", i)

        def s(k: str) -> tuple[str, ...]:
            return self.strings(data.get(k, []), k, "dns", i)

        return DnsSpec(
            name=self.name(data, "dns", i),
            fault=fault,
            txt=self.txt(data["txt"], "txt", "dns", i) if "txt" in data else (),
            a=s("a"),
            aaaa=s("aaaa"),
            cname=normalize(cname) if cname else "",
            mx=s("mx"),
            tlsa=s("tlsa"),
            dnssec=data.get("dnssec", False),
        )


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
