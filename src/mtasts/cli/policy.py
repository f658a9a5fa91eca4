"""``mtasts policy generate``: write a policy file and print the DNS records to publish."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

import click

from mtasts.check import dnsq
from mtasts.check.evidence import Lookup
from mtasts.check.mxset import mx_hosts
from mtasts.cli.exitcodes import print_warning
from mtasts.cli.options import at_least, choice_of, json_option
from mtasts.cli.render import print_json
from mtasts.config import load_settings
from mtasts.errors import ConfigError, DomainNameError, ServiceUnavailable
from mtasts.names import normalize_domain
from mtasts.net.dns import resolver_for
from mtasts.publish.generate import Layout, Publication, generate, policy_path, rollout_steps
from mtasts.rfcnames import policy_host, policy_url
from mtasts.sts.policy import Mode, Policy


@click.group()
def policy() -> None:
    """Write MTA-STS policies and the DNS records that publish them."""


async def _live_mx(domain: str) -> tuple[str, ...]:
    settings = load_settings()
    resolver = resolver_for(settings.nameserver, settings.timeouts.dns)
    answer = await dnsq.mx(resolver, domain)
    if answer.outcome in (Lookup.TIMEOUT, Lookup.SERVFAIL):
        raise ServiceUnavailable(
            f"cannot look up the MX records of {domain} ({answer.outcome.value}): try again "
            "later, or give them with --mx",
            code="dns.unreachable",
        )
    if answer.outcome is Lookup.NXDOMAIN:
        raise click.ClickException(
            f"{domain} does not exist in DNS (NXDOMAIN): check the name, or give the MX "
            "hosts with --mx"
        )
    return mx_hosts(answer, domain)


async def _enforce_warnings(domain: str, policy: Policy) -> tuple[str, ...]:
    """One live check of ``domain``: what would make ``policy`` in mode enforce refuse
    mail (an MX without STARTTLS or TLS 1.2, a bad or soon expiring certificate)."""
    from mtasts.check.runner import check_domain
    from mtasts.check.tlsinfo import now
    from mtasts.cli.check import _target as check_target
    from mtasts.monitor.judge import enforce_blockers
    from mtasts.monitor.snapshot import snapshot_of

    when = now()
    live = snapshot_of(await check_domain(domain, check_target(None), now=when))
    return enforce_blockers(live, policy, when)


def _target(out: str, layout: Layout, domain: str) -> Path:
    """Where ``--out`` puts the policy file.

    ``--out`` names a directory (created when missing) that gets the layout's file, unless
    it is an existing file or a new name ending in ``.txt`` (serve layout only): then that
    file. A missing path without ``.txt``, or one ending in ``/``, is always a directory,
    so a file is never written where a directory was meant.
    """
    path = Path(out)
    names_file = path.is_file() or (
        not path.exists() and path.suffix == ".txt" and not out.endswith(("/", os.sep))
    )
    if names_file:
        if layout is Layout.STATIC:
            raise click.UsageError(
                f"--out {out} is a file; --layout static needs a directory (it writes "
                f"DIR/{policy_path(layout, domain)})"
            )
        return path
    return path / policy_path(layout, domain)


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a server reading it never sees half a file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)  # world-readable: a web server serves it
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or exc}: choose an --out directory you may "
            "write to",
            code="config.out",
        ) from None


def _serving(path: Path, out: str, layout: Layout, domain: str) -> str:
    if layout is Layout.STATIC:
        root = Path(out) / domain
        return f"make {root} the document root of {policy_host(domain)} (the file is {path})"
    if path.name == f"{domain}.txt":
        return f"`mtasts serve policy --dir {path.parent}` serves it"
    return f"the file is {path}"


def _print(pub: Publication, out: Path | None, serving: str | None) -> None:
    click.echo(f"# Policy file: serve at {policy_url(pub.domain)}")
    if out is not None:
        click.echo(f"# (written to {out})")
    click.echo(pub.policy_text.replace("\r\n", "\n"), nl=False)
    click.echo("\n# DNS records (zone-file syntax):")
    for record in pub.records:
        click.echo(record.zone_line())
    for note in pub.notes:
        click.echo(f"# note: {note}")
    if pub.uncovered:
        click.echo(f"\n# WARNING: forced; not covered: {', '.join(pub.uncovered)}")
    click.echo("\n# Next steps:")
    for step in rollout_steps(pub, serving):
        click.echo(f"#  {step}")


@policy.command("generate")
@click.option("--domain", "-d", required=True, help="The Policy Domain, e.g. example.com.")
@click.option(
    "--mx",
    "mx",
    multiple=True,
    help="An mx pattern (host or *.suffix); repeat it. Given, the MX set is not looked up "
    "(see --check-live-mx). Default: the domain's live MX hosts.",
)
@choice_of(
    "--mode",
    Mode,
    default=Mode.TESTING,
    help="Start with testing; move to enforce once TLS reports are clean; none retires "
    "MTA-STS (needs no --mx).",
)
@at_least(
    "--max-age",
    0,
    maximum=31557600,
    help="Seconds senders may cache the policy (default: 1 week testing, 2 weeks enforce, "
    "1 day none).",
)
@click.option(
    "--rua",
    multiple=True,
    help="TLS-RPT report URI (mailto: or https:); repeat it. ',' ';' '!' inside a URI are "
    "percent-encoded for you (RFC 8460 §3).",
)
@click.option(
    "--check-live-mx",
    is_flag=True,
    help="With --mx: also look up the live MX set and refuse a policy that leaves one uncovered.",
)
@click.option(
    "--force", is_flag=True, help="Write the policy even if it leaves a live MX uncovered."
)
@click.option(
    "--no-lookup", is_flag=True, help="Never look up the MX set (needs --mx, or --mode none)."
)
@click.option(
    "--out",
    "-o",
    default=None,
    metavar="DIR",
    help="Write the policy file into DIR (created if missing): DIR/<domain>.txt for "
    "`mtasts serve policy --dir DIR`, or see --layout. A name ending in .txt is a file.",
)
@choice_of(
    "--layout",
    Layout,
    default=Layout.SERVE,
    help="serve: DIR/<domain>.txt; static: DIR/<domain>/.well-known/mta-sts.txt, a web "
    "server's document root for mta-sts.<domain>.",
)
@json_option("Print the policy and records as JSON.")
def generate_cmd(
    domain: str,
    mx: tuple[str, ...],
    mode: str,
    max_age: int | None,
    rua: tuple[str, ...],
    check_live_mx: bool,
    force: bool,
    no_lookup: bool,
    out: str | None,
    layout: str,
    as_json: bool,
) -> None:
    """Generate the policy file and the exact DNS records for DOMAIN.

    The _mta-sts id is derived from the policy text, so it changes exactly when the
    policy does. Without --mx the policy lists the live MX hosts; with --mx nothing is
    looked up, unless --check-live-mx, which refuses a policy that leaves a live MX
    uncovered (--force writes it anyway). With --mode enforce and a lookup, the live MXs
    are also probed and a WARNING printed for each MX whose STARTTLS, TLS version or
    certificate (valid for less than 14 more days) would make senders refuse mail (run
    `mtasts advise DOMAIN` for the full judgement). The next steps printed fit the mode.
    Exit codes: 0 written; 1 refused (policy would not cover the live MXs, or bad input);
    2 usage error; 75 DNS did not answer (give --mx); 78 the file cannot be written.
    """
    chosen = Layout(layout)
    policy_mode = Mode(mode)
    try:
        name = normalize_domain(domain)
    except DomainNameError as exc:
        raise click.BadParameter(exc.message, param_hint="--domain") from exc
    # --mx names the MX set: no lookup unless asked for. Mode none restricts nothing,
    # so it never needs the MX set.
    if policy_mode is Mode.NONE:
        lookup = False
    elif mx:
        lookup = check_live_mx and not no_lookup
    else:
        if no_lookup:
            raise click.UsageError("--no-lookup needs the MX hosts given with --mx")
        lookup = True
    live = asyncio.run(_live_mx(name)) if lookup else ()
    if policy_mode is not Mode.NONE and not mx and not live:
        raise click.ClickException(f"{name} has no MX hosts; give them with --mx")
    # A policy that would not cover the live MXs, an --rua that cannot be published: the
    # `mtasts` group's handler words it (exit 1, docs/exit-codes.md).
    pub = generate(name, mx, policy_mode, max_age=max_age, rua=rua, live_mx=live, force=force)
    warnings: tuple[str, ...] = ()
    if policy_mode is Mode.ENFORCE and lookup:
        warnings = asyncio.run(_enforce_warnings(name, pub.policy))
    for warning in warnings:
        print_warning(warning)
    path = None
    serving = None
    if out is not None:
        path = _target(out, chosen, pub.domain)
        _write(path, pub.policy_text.encode("utf-8"))
        serving = _serving(path, out, chosen, pub.domain)
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
                "rua": list(pub.rua),
                "notes": list(pub.notes),
                "uncovered": list(pub.uncovered),
                "warnings": list(warnings),
                "steps": list(rollout_steps(pub, serving)),
            }
        )
    else:
        _print(pub, path, serving)
