"""The socketmap daemon as a service: build it from its settings, serve until a stop signal.

``mtasts daemon`` (:mod:`mtasts.cli.daemon`) reads the settings tree and calls
:func:`run_daemon`; everything the running daemon is made of is assembled here: the
policy resolver, the MX-host cache and DANE probe, the socketmap server, its control
endpoint (``/metrics``, ``/cache``) and the policy-failure counts for TLS-RPT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from mtasts.config import Settings
from mtasts.postfix.answers import ServerSettings
from mtasts.postfix.config import DaemonConfig, metrics_listen
from mtasts.postfix.server import SocketmapServer, raise_open_files_limit, sd_notify
from mtasts.runtime import stop_event
from mtasts.sts.cache.base import redacted

log = logging.getLogger("mtasts.daemon")


async def run_daemon(
    cfg: DaemonConfig,
    settings: Settings,
    tlsrpt_store: str | None = None,
    tlsrpt_spool: Path | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; tell systemd when ready and when stopping.

    ``tlsrpt_store``: count policy failures there (RFC 8461 §6), as ``tlsrpt collect``
    counts libtlsrpt's sessions; ``tlsrpt_spool``: where they go if it is down at exit.
    """
    from mtasts.postfix.admin import Admin
    from mtasts.postfix.dane import DaneProbe, warn_unless_validating
    from mtasts.postfix.failures import PolicyFailures
    from mtasts.postfix.mxlookup import MxAwareSource, MxCache
    from mtasts.sts.resolver import Resolver
    from mtasts.tlsrpt.store import TlsRptStore

    soft, hard = raise_open_files_limit()
    failures = (
        PolicyFailures(TlsRptStore.open(tlsrpt_store), spool=tlsrpt_spool) if tlsrpt_store else None
    )
    resolver = await Resolver.open(settings)
    resolver.start()
    # the MX hosts (exact match= names) and DANE detection: the policy resolver's settings
    mx = MxCache.for_nameserver(settings.nameserver, settings.timeouts.dns)
    dane = DaneProbe(mx=mx) if cfg.dane else None
    server = SocketmapServer(
        MxAwareSource(resolver, mx),
        ServerSettings(
            zones=cfg.zones,
            default_zone=cfg.default_zone,
            lookup_timeout=cfg.lookup_timeout,
            idle_timeout=cfg.idle_timeout,
            answer_ttl=cfg.answer_ttl,
            shutdown_grace=cfg.shutdown_grace,
            max_connections=cfg.max_connections,
        ),
        dane=dane,
        failures=failures,
    )
    admin = Admin(server, resolver, dane.forget if dane is not None else mx.forget)
    checks: set[asyncio.Task[None]] = set()
    if failures is not None:
        failures.start()
    # The stop signals stay ours until the cleanup is done: a second SIGTERM or Ctrl-C
    # while requests in flight finish (shutdown_grace) and the failure counts are written
    # must not kill the process (the default action once the handler is removed).
    signals = contextlib.ExitStack()
    try:
        stop = signals.enter_context(stop_event())
        bound: list[str] = []
        for listen in cfg.listen:
            if listen.path:
                bound.append("unix:" + await server.listen_unix(listen.path, cfg.unix_mode))
            else:
                host, port = await server.listen_tcp(listen.host, listen.port)
                bound.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        if cfg.metrics:
            m = metrics_listen(cfg.metrics, "metrics")
            host, port = await admin.listen(m.host, m.port)
            bound.append(f"metrics http://{host}:{port}/")
        sd_notify("READY=1")
        if dane is not None:  # say once, at start, if the resolver cannot show DNSSEC
            ns = settings.nameserver
            where = f"{ns[0]}:{ns[1]}" if ns else "from resolv.conf"
            checks.add(asyncio.create_task(warn_unless_validating(mx.resolver, where)))
        log.info(
            "ready: socketmap on %s; nameserver=%s cache=%s dane=%s tlsrpt_store=%s "
            "open_files=%d (hard %d)",
            ", ".join(bound),
            settings.nameserver or "resolv.conf",
            redacted(resolver.cache.url),
            cfg.dane,
            redacted(tlsrpt_store) if tlsrpt_store else "none (policy failures not counted)",
            soft,
            hard,
        )
        await stop.wait()
        log.info("stopping")
        sd_notify("STOPPING=1")
    finally:
        for task in checks:
            task.cancel()
        await server.close()
        await admin.close()
        if failures is not None:
            await failures.close()
        await resolver.aclose()
        signals.close()
