"""Wiring ``mtasts serve policy --acme``: the certificate manager for the served names,
the http-01 listener (port 80) and the metrics listener.

I/O module.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from mtasts.acme.manager import CertManager
from mtasts.acme.prechecks import Prechecks
from mtasts.acme.settings import AcmeSettings
from mtasts.publish.server import PolicyServer, ServerLimits
from mtasts.publish.site import Site
from mtasts.rfcnames import policy_host

log = logging.getLogger("mtasts.acme")


def policy_hosts(site: Site) -> list[str]:
    """``mta-sts.<domain>`` of every served Policy Domain."""
    return [policy_host(domain) for domain in site.policies]


def acme_manager(
    settings: AcmeSettings, site: Site, nameserver: tuple[str, int] | None
) -> CertManager:
    """The manager of ``site``'s policy hosts (not started: bind the server first)."""
    return CertManager(settings, policy_hosts(site), prechecks=Prechecks(settings, nameserver))


async def start_acme(manager: CertManager, limits: ServerLimits) -> list[PolicyServer]:
    """Start the http-01 and metrics listeners, then the manager (inside the event loop)."""
    settings = manager.settings
    servers = [server for server, _ in await start_acme_listeners(manager, limits)]
    if settings.metrics is not None:
        host, port = settings.metrics
        start_http_server(port, host, registry=manager.metrics.registry)
        log.info("ACME metrics on http://%s:%d/metrics", host, port)
    manager.start()
    return servers


async def start_acme_listeners(
    manager: CertManager, limits: ServerLimits
) -> list[tuple[PolicyServer, tuple[str, int]]]:
    """The plain-HTTP listener answering http-01 (every other request gets 404), with the
    address it is bound to."""
    settings = manager.settings
    if "http-01" not in settings.challenges or settings.http_listen is None:
        return []
    host, port = settings.http_listen
    server = PolicyServer(Site({}), None, limits, acme_http=manager.http01)
    bound = await server.start(host, port)
    log.info("answering ACME http-01 challenges on http://%s:%d", *bound)
    return [(server, bound)]
