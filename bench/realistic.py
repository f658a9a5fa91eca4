"""The realistic sending-MTA workload: many recipient domains, a realistic MTA-STS mix,
Zipf-like popularity. Shared by bench/socketmap_realistic.py (daemons over the network)
and bench/socketmap_inprocess.py (the answer path in one process).

The mix (defaults; ``Mix``): 90 % of the domains publish no MTA-STS (no ``_mta-sts``
record: NXDOMAIN), 3 % a ``testing`` policy, 6 % ``enforce``, 1 % ``enforce`` on a
DNSSEC-signed domain whose MX host publishes a usable TLSA record (DANE applies). Most
domains use one of 50 shared mail providers' MX hosts (as most domains do: a handful of
providers host most mailboxes); half of the providers' policies name their MX hosts by
a wildcard, half exactly. DANE domains run their own MX host. Popularity: the domain of
rank r (a seeded random permutation, so the kinds are spread over the ranks) is asked
with weight 1/r (Zipf, s = 1).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from mtasts.lab.scenario import DomainSpec, HostSpec, Scenario

PROVIDERS = 50
SUFFIX = "rw.test"
#: a DANE-EE SPKI SHA2-256 record (usable per RFC 7672 §3.1.3; the lab does not check it)
TLSA = "3 1 1 " + "ab" * 32


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of the domains by kind (the rest publish no MTA-STS)."""

    testing: float = 0.03
    enforce: float = 0.06
    dane: float = 0.01


@dataclass(frozen=True, slots=True)
class Domain:
    name: str
    kind: str  # "none" | "testing" | "enforce" | "dane"
    mx: tuple[str, ...]
    record_id: str | None = None
    policy: str | None = None

    @property
    def dane(self) -> bool:
        return self.kind == "dane"


@dataclass(frozen=True, slots=True)
class Workload:
    domains: tuple[Domain, ...]
    #: domain names by popularity rank (most popular first)
    ranked: tuple[str, ...]

    def count(self, kind: str) -> int:
        return sum(1 for d in self.domains if d.kind == kind)


def _provider_mx(p: int) -> tuple[str, ...]:
    return (f"mx1.prov{p}.{SUFFIX}", f"mx2.prov{p}.{SUFFIX}")


def _policy(mode: str, mx: tuple[str, ...], wildcard: bool) -> str:
    if wildcard:
        parent = mx[0].partition(".")[2]
        lines = [f"mx: *.{parent}"]
    else:
        lines = [f"mx: {m}" for m in mx]
    return "version: STSv1\n" + f"mode: {mode}\n" + "\n".join(lines) + "\nmax_age: 604800\n"


def generate(n: int, mix: Mix = Mix(), seed: int = 0) -> Workload:
    """``n`` domains of the mix; deterministic for a seed. Fast: 100,000 in about a second."""
    rng = random.Random(seed)
    counts = {
        "dane": round(n * mix.dane),
        "enforce": round(n * mix.enforce),
        "testing": round(n * mix.testing),
    }
    kinds = list(itertools.chain.from_iterable(itertools.repeat(k, c) for k, c in counts.items()))
    kinds += ["none"] * (n - len(kinds))
    rng.shuffle(kinds)
    domains = []
    for i, kind in enumerate(kinds):
        name = f"d{i}.{SUFFIX}"
        provider = rng.randrange(PROVIDERS)
        mx = (f"mx.{name}",) if kind == "dane" else _provider_mx(provider)
        if kind == "none":
            domains.append(Domain(name, kind, mx))
            continue
        mode = "testing" if kind == "testing" else "enforce"
        policy = _policy(mode, mx, wildcard=kind != "dane" and provider % 2 == 0)
        domains.append(Domain(name, kind, mx, record_id=f"r{i}", policy=policy))
    ranked = [d.name for d in domains]
    rng.shuffle(ranked)
    return Workload(tuple(domains), tuple(ranked))


def scenario(workload: Workload) -> Scenario:
    """The lab for the workload: MX and ``_mta-sts`` records, one policy host per domain
    with a policy, TLSA and DNSSEC for the DANE domains. MX hosts have addresses only (no
    SMTP server: nothing here connects to them)."""
    specs = []
    hosts = {m for p in range(PROVIDERS) for m in _provider_mx(p)}
    for d in workload.domains:
        if d.kind == "none":
            specs.append(DomainSpec(name=d.name, mx=d.mx))
            continue
        if d.dane:
            hosts.update(d.mx)
        specs.append(
            DomainSpec(
                name=d.name,
                mx=d.mx,
                sts=((f"v=STSv1; id={d.record_id}",),),
                policy=d.policy,
                dnssec=d.dane,
                tlsa=(TLSA,) if d.dane else (),
            )
        )
    return Scenario(domains=tuple(specs), hosts=tuple(HostSpec(h) for h in sorted(hosts)))


def zipf_keys(workload: Workload, count: int, seed: int = 1, s: float = 1.0) -> list[str]:
    """``count`` recipient domains drawn with weight 1/rank**s."""
    rng = random.Random(seed)
    weights = [1.0 / (r + 1) ** s for r in range(len(workload.ranked))]
    cum = list(itertools.accumulate(weights))
    return rng.choices(workload.ranked, cum_weights=cum, k=count)


def zipf_requests(workload: Workload, count: int, seed: int = 1) -> list[bytes]:
    """The same, as the socketmap netstrings Postfix sends (``postfix <domain>``)."""
    out = []
    for key in zipf_keys(workload, count, seed):
        payload = f"postfix {key}".encode()
        out.append(b"%d:%s," % (len(payload), payload))
    return out
