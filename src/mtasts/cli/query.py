"""``mtasts query DOMAIN``: the MTA-STS policy a sender applies to a domain, right now."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import click

from mtasts.cli.options import (
    config_option,
    given,
    names,
    resolver_options,
    setting_option,
    values,
)
from mtasts.cli.render import print_json
from mtasts.config import Settings
from mtasts.errors import DomainNameError
from mtasts.names import normalize_domain
from mtasts.settings.tree import load
from mtasts.sts.lookup import LookupStatus, PolicyLookup
from mtasts.sts.resolver import Resolver

#: Exit status per lookup status (documented in the command's help).
EXIT_CODES = {
    LookupStatus.STS: 0,
    LookupStatus.NO_POLICY: 0,
    # Issue 4: a policy that exists but cannot be used is still a determination (the
    # sender delivers as if there were none and reports result_type), so it exits 0.
    LookupStatus.FAILED: 0,
    LookupStatus.UNDETERMINED: 3,
}


@click.command()
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@resolver_options
@setting_option(
    "timeouts.total",
    "--timeout",
    type=float,
    help="Seconds allowed for the whole policy fetch (default 60). Env: MTASTS_TIMEOUT_TOTAL.",
)
@config_option(
    "TOML settings file (default: /etc/mtasts/mtasts.toml if present). Env: MTASTS_CONFIG."
)
def query(
    domain: str,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Discover, fetch and validate DOMAIN's MTA-STS policy as a sending MTA does.

    \b
    Exit codes:
      0  determined: a usable policy, no MTA-STS policy, or a published
         policy that cannot be used (result_type says why; senders
         deliver as if there were none);
      2  bad command line;
      3  could not be determined (DNS failure): try again later;
      78 a bad setting (docs/exit-codes.md lists every code).
    """
    try:
        name = normalize_domain(domain)
    except DomainNameError as exc:
        raise click.BadParameter(exc.message, param_hint="DOMAIN") from exc
    options = given()
    tree = load(config_file, overrides=values(options), option_names=names(options))
    result = asyncio.run(_lookup(tree.section(Settings), name))
    if as_json:
        print_json(result.to_json())
    else:
        click.echo(describe(result))
    raise SystemExit(EXIT_CODES[result.status])


async def _lookup(settings: Settings, name: str) -> PolicyLookup:
    async with await Resolver.open(settings) as resolver:
        result = await resolver.lookup(name)
        await resolver.wait_idle()  # let a background re-check update the cache
        return result


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(result: PolicyLookup) -> str:
    """A short summary for a person."""
    lines: list[str] = []
    policy = result.policy
    if result.status is LookupStatus.STS and policy is not None:
        lines.append(
            f"{result.domain}: MTA-STS policy, mode {policy.mode} "
            f"(id {result.record_id}, {result.source})"
        )
        if policy.mx:
            lines.append("  mx:       " + ", ".join(str(p) for p in policy.mx))
        if policy.unmatchable_mx:
            lines.append("  unusable: " + ", ".join(policy.unmatchable_mx) + " (match no MX)")
        lines.append(f"  max_age:  {policy.max_age} s, until {_when(result.expires_at)}")
        lines.append(f"  fetched:  {_when(result.fetched_at)}")
        if result.refresh_error is not None:
            lines.append(f"  warning:  last refresh failed ({result.refresh_error})")
        lines.extend(f"  warning:  {n.message} ({n.code})" for n in policy.repairs)
    elif result.status is LookupStatus.NO_POLICY:
        lines.append(f"{result.domain}: no MTA-STS policy")
    elif result.status is LookupStatus.FAILED:
        lines.append(
            f"{result.domain}: MTA-STS record id {result.record_id} but the policy cannot "
            f"be used ({result.result_type})"
        )
    else:
        lines.append(f"{result.domain}: could not be determined")
    if result.detail:
        lines.append(f"  detail:   {result.detail}")
    return "\n".join(lines)
