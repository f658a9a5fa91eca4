"""``mtasts policy generate``: write a policy file and print the DNS records to publish."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from mtasts.check import dnsq
from mtasts.check.evidence import Lookup
from mtasts.check.mxset import mx_hosts
from mtasts.cli.render import print_json
from mtasts.config import load_settings
from mtasts.errors import MtastsError
from mtasts.names import normalize_domain
from mtasts.net.dns import resolver_for
from mtasts.publish.generate import Publication, generate, rollout_steps
from mtasts.sts.policy import Mode


@click.group()
def policy() -> None:
    """Write MTA-STS policies and the DNS records that publish them."""


async def _live_mx(domain: str) -> tuple[str, ...]:
    settings = load_settings()
    resolver = resolver_for(settings.nameserver, settings.timeouts.dns)
    answer = await dnsq.mx(resolver, domain)
    if answer.outcome in (Lookup.TIMEOUT, Lookup.SERVFAIL, Lookup.NXDOMAIN):
        raise click.ClickException(
            f"cannot look up the MX records of {domain} ({answer.outcome.value}); "
            "give them with --mx"
        )
    return mx_hosts(answer, domain)


def _print(pub: Publication, out: Path | None) -> None:
    click.echo(f"# Policy file: serve at https://mta-sts.{pub.domain}/.well-known/mta-sts.txt")
    if out is not None:
        click.echo(f"# (written to {out})")
    click.echo(pub.policy_text.replace("\r\n", "\n"), nl=False)
    click.echo("\n# DNS records (zone-file syntax):")
    for record in pub.records:
        click.echo(record.zone_line())
    if pub.uncovered:
        click.echo(f"\n# WARNING: forced; not covered: {', '.join(pub.uncovered)}")
    click.echo("\n# Recommended path:")
    for step in rollout_steps(pub):
        click.echo(f"#  {step}")


@policy.command("generate")
@click.option("--domain", "-d", required=True, help="The Policy Domain, e.g. example.com.")
@click.option(
    "--mx",
    "mx",
    multiple=True,
    help="An mx pattern (host or *.suffix); repeat it. Default: the domain's live MX hosts.",
)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=Mode.TESTING.value,
    show_default=True,
    help="Start with testing; move to enforce once TLS reports are clean.",
)
@click.option(
    "--max-age",
    type=click.IntRange(0, 31557600),
    default=None,
    help="Seconds senders may cache the policy (default: 1 week testing, 2 weeks enforce, "
    "1 day none).",
)
@click.option("--rua", multiple=True, help="TLS-RPT report URI (mailto: or https:); repeat it.")
@click.option(
    "--force", is_flag=True, help="Write the policy even if it leaves a live MX uncovered."
)
@click.option(
    "--no-lookup", is_flag=True, help="Do not look up the live MX set (offline generation)."
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=True, path_type=Path),
    default=None,
    help="Write the policy here (a directory gets <domain>.txt, ready for `mtasts serve policy`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the policy and records as JSON.")
def generate_cmd(
    domain: str,
    mx: tuple[str, ...],
    mode: str,
    max_age: int | None,
    rua: tuple[str, ...],
    force: bool,
    no_lookup: bool,
    out: Path | None,
    as_json: bool,
) -> None:
    """Generate the policy file and the exact DNS records for DOMAIN.

    The _mta-sts id is derived from the policy text, so it changes exactly when the
    policy does. A policy that does not cover every live MX is refused unless --force.
    Exit codes: 0 written; 1 refused (policy would not cover the live MXs, or bad input).
    """
    try:
        name = normalize_domain(domain)
        if no_lookup and not mx:
            raise click.UsageError("--no-lookup needs the MX hosts given with --mx")
        live = () if no_lookup else asyncio.run(_live_mx(name))
        if not mx and not live:
            raise click.ClickException(f"{name} has no MX hosts; give them with --mx")
        pub = generate(name, mx, Mode(mode), max_age=max_age, rua=rua, live_mx=live, force=force)
    except MtastsError as exc:
        click.echo(f"mtasts policy generate: {exc}", err=True)
        sys.exit(1)
    path = out
    if out is not None:
        path = out / f"{pub.domain}.txt" if out.is_dir() else out
        path.write_bytes(pub.policy_text.encode("utf-8"))
    if as_json:
        print_json(
            {
                "domain": pub.domain,
                "policy": pub.policy_text,
                "id": pub.record_id,
                "file": str(path) if path else None,
                "records": [
                    {"name": r.name, "type": r.type, "ttl": r.ttl, "value": r.value}
                    for r in pub.records
                ],
                "uncovered": list(pub.uncovered),
                "steps": list(rollout_steps(pub)),
            }
        )
    else:
        _print(pub, path)
