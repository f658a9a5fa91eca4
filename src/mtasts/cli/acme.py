"""``mtasts acme``: the certificates ``serve policy --acme`` keeps in its state directory.

``status`` reads the directory (run it as the service user); ``renew`` orders now, under
the same per-name lock as the servers, while a running ``serve policy --acme`` answers
the CA's challenge from the shared directory and picks the new file up by itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from rich.console import Console

from mtasts.acme.renewal import CertState, Lifetime, renew_at
from mtasts.acme.settings import AcmeSettings
from mtasts.acme.status import status_rows
from mtasts.acme.store import NameStatus, StateDir
from mtasts.cli.exitcodes import ExitCode
from mtasts.cli.render import fail, print_json, titled
from mtasts.clock import utc_now, wall
from mtasts.errors import MtastsError
from mtasts.settings.tree import current

_EXIT = {  # the monitoring-plugin convention, as `mtasts check`
    CertState.VALID: 0,
    CertState.RENEWAL_DUE: 1,
    CertState.MISSING: 1,
    CertState.EXPIRING: 2,
    CertState.EXPIRED: 2,
}


@click.group()
def acme() -> None:
    """Certificates of `serve policy --acme`: status, renew now, revoke."""


def _state(create: bool = False) -> tuple[AcmeSettings, StateDir]:
    settings = current().section(AcmeSettings)
    return settings, StateDir(settings.state_dir, create=create)


@acme.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of names.")
def status(as_json: bool) -> None:
    """Every name in the state directory: state, expiry, renewal time, failures.

    Exit codes: 0 all valid; 1 a renewal is due or a certificate is missing; 2 one is
    expiring without renewal or expired; 3 the state directory cannot be read.
    """
    try:
        settings, store = _state()
        now = utc_now()
        rows = status_rows(
            store, now, renew_fraction=settings.renew_fraction, alert_days=settings.alert_days
        )
    except (MtastsError, OSError, ValueError) as exc:
        fail(str(exc), code=ExitCode.UNKNOWN)  # as a monitoring plugin's errors
    if as_json:
        print_json(rows)
    else:
        table = titled(f"certificates in {store.root}")
        for column in ("name", "state", "not after", "renew at", "failures", "last error"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(*(str(r[k] if r[k] is not None else "-") for k in r))
        Console().print(table)
    worst = max((_EXIT[CertState(str(r["state"]))] for r in rows), default=0)
    sys.exit(worst)


@acme.command("renew")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--revoke",
    is_flag=True,
    help="Revoke the current certificate at the CA first (its key leaked).",
)
def renew(names: Sequence[str], revoke: bool) -> None:
    """Order a new certificate for each NAME (mta-sts.<domain>) now.

    A running `serve policy --acme` on the same state directory must answer the CA's
    challenge (it reads it from the directory) and serves the new certificate from its
    next handshake. No pre-checks: this is the operator's explicit request. Exit codes:
    0 every name renewed; 1 one failed (the others are still tried).
    """
    from mtasts.acme.client import AcmeClient, IssueError

    settings, store = _state(create=True)
    client = AcmeClient(settings, store)
    failed = False
    for name in names:
        try:
            with store.lock(name):
                pem = store.read_cert(name)
                if revoke:
                    if pem is None:
                        raise IssueError(f"no certificate for {name} to revoke")
                    client.revoke(pem)
                    click.echo(f"{name}: revoked", err=True)
                issued = client.issue(name)
                store.write_cert(name, issued.pem)
            store.write_status(
                NameStatus(
                    name,
                    last_attempt=wall(),
                    not_after=issued.not_after.timestamp(),
                    renew_at=(
                        issued.ari
                        or renew_at(
                            Lifetime(issued.not_before, issued.not_after), settings.renew_fraction
                        )
                    ).timestamp(),
                    state=CertState.VALID.value,
                )
            )
            click.echo(f"{name}: renewed, valid until {issued.not_after.isoformat()}")
        except (IssueError, MtastsError, OSError, ValueError) as exc:
            click.echo(f"{name}: {exc}", err=True)
            failed = True
    sys.exit(1 if failed else 0)
