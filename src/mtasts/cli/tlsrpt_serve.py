"""``mtasts tlsrpt receive``: take in TLS-RPT reports by https POST, SMTP and LMTP.

Settings come from the ``[receive]`` table of the configuration file
(:mod:`mtasts.tlsrpt.receive.netconfig` lists them), then from these options.

Exit status (docs/exit-codes.md): 0 stopped by SIGTERM or SIGINT; 2 usage error;
69 the [web] extra is missing; 75 a listener's address is in use or the store is
unreachable; 78 a bad setting, certificate, key or store URL.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mtasts.cli.options import config_option

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date

DEFAULT_STORE = "sqlite:////var/lib/mtasts/tlsrpt.db"
STORE_HELP = (
    "sqlite:////var/lib/mtasts/tlsrpt.db (default) or postgresql://user@host/db; "
    "else [receive] store, else [tlsrpt] store of mtasts.toml"
)


@click.command("receive")
@click.option("--store", envvar="MTASTS_TLSRPT_STORE", help=STORE_HELP)
@click.option(
    "--http",
    help="HOST:PORT of the https intake (RFC 8460 §5.4); '' turns it off.",
)
@click.option(
    "--lmtp",
    help="HOST:PORT or unix:/PATH of an LMTP listener for the rua mailbox.",
)
@click.option("--smtp", help="HOST:PORT of an SMTP listener.")
@click.option(
    "--metrics",
    help="HOST:PORT serving Prometheus metrics (default: /metrics on the http listener).",
)
@click.option(
    "--cert",
    type=click.Path(dir_okay=False, exists=True),
    help="PEM certificate chain: https, and STARTTLS on the mail listeners.",
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False, exists=True),
    help="PEM private key of --cert. Without both the http listener is plain (a proxy's).",
)
@click.option("--path", "url_path", help="URL path reports are POSTed to (default /tlsrpt).")
@config_option("Configuration file (default $MTASTS_CONFIG or /etc/mtasts/mtasts.toml).")
def receive(
    store: str | None,
    http: str | None,
    lmtp: str | None,
    smtp: str | None,
    metrics: str | None,
    cert: str | None,
    key: str | None,
    url_path: str | None,
    config_file: Path | None,
) -> None:
    """Receive TLS-RPT reports (https POST, SMTP, LMTP) into the store, until stopped.

    A report is acknowledged (2xx, 250) only once it is durably stored. Without any
    listener option or setting, https on 127.0.0.1:8460 is started.
    """
    from mtasts.cli.render import console
    from mtasts.errors import MissingDependency
    from mtasts.settings.tree import load
    from mtasts.tlsrpt.receive.netconfig import parse_netconfig
    from mtasts.tlsrpt.receive.settings import ReceiveSection
    from mtasts.tlsrpt.settings import TlsRptSettings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = {
        "http": http,
        "lmtp": lmtp,
        "smtp": smtp,
        "metrics": metrics,
        "cert": cert,
        "key": key,
        "path": url_path,
    }
    tree = load(  # [receive] < MTASTS_RECEIVE_* < these options
        config_file,
        overrides={f"receive.{k}": v for k, v in options.items()},
        option_names={f"receive.{k}": f"--{k}" for k in options},
    )
    section = tree.section(ReceiveSection)
    config = section.net
    if not any((config.http, config.lmtp, config.smtp)):
        config = parse_netconfig({"http": "127.0.0.1:8460"}, config)[0]
    if config.http is not None or config.metrics is not None:
        try:  # the https intake and the metrics listener: the [web] extra
            import starlette  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            raise MissingDependency(
                "the https intake of tlsrpt receive", "web", module="starlette, uvicorn"
            ) from None
    if config.cert:
        from mtasts.net.tls import server_context

        server_context(config.cert, config.key)  # a wrong file stops us now, not per client
    # --store (or $MTASTS_TLSRPT_STORE) > [receive] store > [tlsrpt] store > the default
    store_url = store or config.store or tree.section(TlsRptSettings).store or DEFAULT_STORE
    asyncio.run(_serve(store_url, config, section.decide))
    console(stderr=True).print("mtasts tlsrpt receive: stopped", highlight=False)


async def _serve(store_url: str, config: Any, decide: Any) -> None:
    from dataclasses import replace

    from mtasts.cli.render import console
    from mtasts.config import load_settings
    from mtasts.postfix.sockets import raise_open_files_limit
    from mtasts.redact import redacted
    from mtasts.tlsrpt.receive.intake import Receiver
    from mtasts.tlsrpt.receive.service import ReceiveService, run_until_signalled

    # The store side of [receive] (owned domains, DKIM, quarantine); DKIM keys are looked
    # up through the project's resolver settings (MTASTS_NAMESERVER in the lab).
    # Up to max_connections per listener: the usual soft limit of 1,024 open files is
    # below that; the hard limit is what the administrator allowed (LimitNOFILE=).
    raise_open_files_limit()
    base = load_settings()
    settings = replace(decide, nameserver=base.nameserver, dns_timeout=base.timeouts.dns)
    receiver = await Receiver.open(store_url, settings)
    retention = None
    try:
        service = ReceiveService(receiver, config)

        def ready(s: ReceiveService) -> None:
            nonlocal retention
            out = console(stderr=True)
            for line in s.describe():
                out.print(f"mtasts tlsrpt receive: {line}", highlight=False, soft_wrap=True)
            out.print(
                f"mtasts tlsrpt receive: store {redacted(store_url)}",
                highlight=False,
                soft_wrap=True,
            )
            if settings.keep_days is not None:
                retention = asyncio.create_task(prune_daily(receiver))

        await run_until_signalled(service, ready=ready)
    finally:
        if retention is not None:
            retention.cancel()
        await receiver.close()


async def prune_daily(
    receiver: Any, *, every: float = 86400.0, today: Callable[[], date] | None = None
) -> None:
    """``[receive] keep_days``: prune at start, then once a day, while the service runs.
    A failed prune is logged and tried again the next day; intake goes on. ``today``:
    the UTC day pruned back from (:func:`mtasts.clock.utc_today`)."""
    from mtasts.clock import utc_today
    from mtasts.errors import MtastsError

    day = today or utc_today

    log = logging.getLogger("mtasts.tlsrpt.receive")
    while True:
        try:
            removed = await receiver.prune(day())
            if any(removed.values()):
                log.info("retention: removed %s", removed)
        except (MtastsError, OSError) as exc:
            log.warning("retention: prune failed: %s (tried again tomorrow)", exc)
        except Exception:  # housekeeping must never stop the intake; the cause is logged
            log.exception("retention: prune failed (tried again tomorrow)")
        await asyncio.sleep(every)
