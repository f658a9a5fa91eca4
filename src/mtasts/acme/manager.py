"""Certificates for the policy host, one per name, chosen by SNI, obtained and renewed in
the background.

The server's TLS context carries no certificate of its own: its SNI callback swaps in the
context of the name asked for. A new or renewed certificate becomes a new context in the
table, so the next handshake gets it while open connections keep theirs (no restart, no
dropped connection). A tls-alpn-01 validation (a ClientHello offering ``acme-tls/1``) gets
the validation certificate from the state directory, whichever instance wrote it.

Issuance never runs on the handshake path: a handshake for a name without a certificate
fails at once with ``unrecognized_name`` and, in on-demand mode, queues the name; the
pre-checks and the order run in their own task (at most ``_PARALLEL`` at a time, each with
a deadline), so one customer whose DNS or CA validation hangs delays nobody else.

I/O module.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, replace

from cryptography import x509

from mtasts.acme.client import AcmeClient, Issued, IssueError
from mtasts.acme.hello import wants_acme_tls
from mtasts.acme.metrics import AcmeMetrics
from mtasts.acme.prechecks import Prechecks
from mtasts.acme.renewal import (
    CertState,
    IssuanceBudget,
    Lifetime,
    backoff,
    cert_state,
    renew_at,
)
from mtasts.acme.settings import AcmeSettings
from mtasts.acme.store import NameStatus, StateDir
from mtasts.alerts.model import Condition
from mtasts.alerts.model import Severity as AlertSeverity
from mtasts.clock import Clock, wall
from mtasts.errors import MtastsError
from mtasts.rfcnames import domain_of_policy_host

log = logging.getLogger("mtasts.acme")

_PARALLEL = 4  # issuances at once
_MAX_QUEUED = 256  # on-demand names waiting for a slot; more are refused until room
_TICK = 60.0  # the longest sleep between looks at every name
_CLOSE_WAIT = 10.0  # seconds close() waits for orders in worker threads
#: TLS alert for a name we have no certificate for (RFC 6066 §3: unrecognized_name)
UNRECOGNIZED_NAME = ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME


@dataclass(frozen=True, slots=True)
class _Cert:
    context: ssl.SSLContext
    life: Lifetime
    due: dt.datetime
    mtime: float


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _context(pem_path: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pem_path)  # the key is in the same file
    return context


def _lifetime(pem: bytes) -> Lifetime:
    cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----") :])
    return Lifetime(cert.not_valid_before_utc, cert.not_valid_after_utc)


class CertManager:
    """Holds, obtains and renews the certificates of ``names`` (``mta-sts.<domain>``)."""

    def __init__(
        self,
        settings: AcmeSettings,
        names: Iterable[str],
        *,
        store: StateDir | None = None,
        prechecks: Prechecks | None = None,
        client: AcmeClient | None = None,
        metrics: AcmeMetrics | None = None,
        clock: Clock = wall,
        tick: float = _TICK,
    ) -> None:
        self.settings = settings
        self.store = store or StateDir(settings.state_dir)
        self.prechecks = prechecks or Prechecks(settings, None)
        self.client = client or AcmeClient(settings, self.store)
        self.metrics = metrics or AcmeMetrics()
        self.clock = clock
        self.tick = tick
        self.names: frozenset[str] = frozenset(names)
        self.certs: dict[str, _Cert] = {}
        self.status: dict[str, NameStatus] = {}
        self.budget = IssuanceBudget(settings.max_issuance_per_hour)
        self._wanted: set[str] = set()  # on demand: names asked for at a handshake
        self._force: set[str] = set()  # renew now whatever the dates say (after a revocation)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._orders: set[asyncio.Future[Issued | None]] = set()  # in worker threads
        self._slots = asyncio.Semaphore(_PARALLEL)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._alerted: dict[str, CertState] = {}
        self._synced: frozenset[tuple[str, str]] | None = None  # the conditions last synced
        self.server_context = self._server_context()

    # --- the TLS side ---------------------------------------------------------------

    def _server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.sni_callback = self._sni
        return context

    def _sni(self, conn: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> int | None:
        """Pick the context for ``server_name``; never blocks on the network."""
        if server_name is None:
            self.metrics.handshakes.labels("no-sni").inc()
            return UNRECOGNIZED_NAME
        name = server_name.lower().rstrip(".")
        hello = getattr(conn, "client_hello", b"")
        if hello and wants_acme_tls(hello):
            challenge = self._challenge_context(name)
            if challenge is None:
                return UNRECOGNIZED_NAME
            conn.context = challenge
            self.metrics.handshakes.labels("tls-alpn-01").inc()
            return None
        cert = self.certs.get(name)
        if cert is None:
            self.metrics.handshakes.labels("no-certificate").inc()
            if self.settings.on_demand:
                self._ask(name)
            return UNRECOGNIZED_NAME
        conn.context = cert.context
        return None

    def _challenge_context(self, name: str) -> ssl.SSLContext | None:
        try:
            path = self.store.alpn_path(name)
        except ValueError:
            return None  # a server name that is no host name ("..", "/")
        if not path.is_file():
            log.warning("tls-alpn-01 validation for %s, but no challenge is pending", name)
            return None
        try:
            context = _context(str(path))
        except (OSError, ssl.SSLError) as exc:
            log.warning("cannot load the tls-alpn-01 certificate of %s: %s", name, exc)
            return None
        context.set_alpn_protocols(["acme-tls/1"])  # RFC 8737 §3: it must be negotiated
        return context

    def http01(self, token: str) -> bytes | None:
        """The key authorization for an http-01 ``token``, or None."""
        try:
            return self.store.http01_path(token).read_bytes()
        except (OSError, ValueError):
            return None

    # --- names ------------------------------------------------------------------------

    def set_names(self, names: Iterable[str]) -> None:
        """The served names changed (a reload): new ones are obtained, gone ones dropped."""
        self.names = frozenset(names)
        for gone in set(self.certs) - self.names:
            del self.certs[gone]
        self._wake.set()

    def _ask(self, name: str) -> None:
        """On demand: a handshake asked for ``name``; queue it if the rule may allow it."""
        if name not in self.names or name in self._running or name in self._wanted:
            return  # not a served policy host, or already on its way
        status = self.status.get(name)
        if status is not None and status.next_try > self.clock():
            return  # refused or failed recently: wait out its back-off
        if len(self._wanted) >= _MAX_QUEUED:
            self.metrics.issuance.labels("queue-full").inc()
            return
        self._wanted.add(name)
        self._wake.set()

    # --- loading from disk ------------------------------------------------------------

    def load(self, name: str) -> _Cert | None:
        """(Re)load ``name``'s certificate from disk when the file changed."""
        mtime = self.store.cert_mtime(name)
        current = self.certs.get(name)
        if mtime == 0.0 or (current is not None and current.mtime == mtime):
            return current
        pem = self.store.read_cert(name)
        if pem is None:
            return current
        try:
            life = _lifetime(pem)
            context = _context(str(self.store.cert_path(name)))
        except (OSError, ValueError, ssl.SSLError) as exc:
            log.error("cannot load the certificate of %s from %s: %s", name, self.store.root, exc)
            return current
        due = renew_at(life, self.settings.renew_fraction)
        status = self.status.get(name)
        if (
            status is not None
            and status.renew_at
            and status.not_after == life.not_after.timestamp()
        ):
            due = _utc(status.renew_at)  # the time the CA suggested (ARI) for this certificate
        cert = _Cert(context, life, due, mtime)
        self.certs[name] = cert
        self.metrics.not_after.labels(name).set(life.not_after.timestamp())
        return cert

    # --- the background loop ------------------------------------------------------------

    def start(self) -> None:
        for name in self.names:
            self.status[name] = self.store.read_status(name)
            self.load(name)
        self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        """Stop; an order already at the CA gets ``_CLOSE_WAIT`` seconds to finish (its
        worker thread cannot be interrupted) while the server still answers challenges."""
        orders = list(self._orders)
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if orders:
            await asyncio.wait(orders, timeout=_CLOSE_WAIT)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            sleep = self.review()
            if self.settings.alerts_store:
                await self._sync_alerts()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(sleep):
                    await self._wake.wait()

    def review(self) -> float:
        """Look at every name once: start what is due; returns seconds to sleep."""
        now = self.clock()
        sleep = self.tick
        for name in sorted(self.names):
            cert = self.load(name)
            status = self.status.get(name) or self.store.read_status(name)
            self.status[name] = status
            state = cert_state(
                _utc(now),
                cert.life if cert else None,
                cert.due if cert else None,
                self.settings.alert_days,
            )
            self._watch(name, state, status, cert)
            if cert is None and self.settings.on_demand and name not in self._wanted:
                continue  # on demand: only names a handshake asked for
            if state is CertState.VALID and cert is not None and name not in self._force:
                sleep = min(sleep, max(0.05, cert.due.timestamp() - now))
                continue
            if name in self._running:
                continue
            if status.next_try > now:
                sleep = min(sleep, status.next_try - now)
                continue
            self._wanted.discard(name)
            self._force.discard(name)
            self._running[name] = asyncio.get_running_loop().create_task(self._obtain(name, cert))
        return max(0.05, sleep)

    def conditions(self) -> list[Condition]:
        """One alert condition per served name that is expiring or expired unrenewed."""
        found = []
        for name in sorted(self.names):
            state = self._alerted.get(name)
            cert = self.certs.get(name)
            if state not in (CertState.EXPIRING, CertState.EXPIRED) or cert is None:
                continue
            status = self.status.get(name, NameStatus(name))
            when = cert.life.not_after.isoformat(timespec="seconds")
            found.append(
                Condition(
                    "acme.certificate",
                    domain_of_policy_host(name) or name,
                    subject=name,
                    severity=AlertSeverity.CRITICAL,
                    summary=(
                        f"the certificate of {name} "
                        f"{'expired on' if state is CertState.EXPIRED else 'expires on'} "
                        f"{when} and has not been renewed"
                    ),
                    details={
                        "state": state.value,
                        "not_after": when,
                        "failures": status.failures,
                        "last_error": status.last_error[:500],
                    },
                )
            )
        return found

    async def _sync_alerts(self) -> None:
        """Raise or resolve the conditions through mtasts.alerts when they change (a
        store that fails is tried again at the next look)."""
        from mtasts.alerts.api import AlertStoreUnavailable, sync

        current = self.conditions()
        seen = frozenset((c.key, c.summary) for c in current)
        if seen == self._synced:
            return
        domains = {domain_of_policy_host(name) or name for name in self.names}
        try:
            await sync(self.settings.alerts_store, "acme", current, domains=domains)
        except (AlertStoreUnavailable, MtastsError) as exc:
            log.warning("cannot raise or resolve certificate alerts: %s; trying again", exc)
            return
        self._synced = seen

    def _watch(self, name: str, state: CertState, status: NameStatus, cert: _Cert | None) -> None:
        """Metrics and the alert: an expiry near (or past) without renewal is an ERROR."""
        for each in CertState:
            self.metrics.state.labels(name, each.value).set(1 if each is state else 0)
        before = self._alerted.get(name)
        self._alerted[name] = state
        if state in (CertState.EXPIRING, CertState.EXPIRED) and before is not state:
            assert cert is not None
            log.error(
                "ALERT: the certificate of %s %s %s and has not been renewed%s",
                name,
                "expired on" if state is CertState.EXPIRED else "expires on",
                cert.life.not_after.isoformat(timespec="seconds"),
                f" (last error: {status.last_error})" if status.last_error else "",
            )
            self.metrics.alerts.labels(name, state.value).inc()
        elif before in (CertState.EXPIRING, CertState.EXPIRED) and state is CertState.VALID:
            log.info("the certificate of %s is renewed; alert cleared", name)

    async def _obtain(self, name: str, cert: _Cert | None) -> None:
        """Pre-checks, then an order at the CA; the outcome goes into ``status``."""
        try:
            async with self._slots:
                now = self.clock()
                status = self.status.get(name, NameStatus(name))
                if not self.prechecks.issuers:
                    # the CA's CAA identities, from its directory when not configured
                    found = await asyncio.to_thread(self.client.caa_identities)
                    self.prechecks.issuers = found
                verdict = await self.prechecks.check(name, on_demand=self.settings.on_demand)
                if not verdict.ok:
                    self.metrics.issuance.labels("precheck-failed").inc()
                    self._failed(name, f"not asking the CA: {verdict.reason}")
                    return
                if not self.budget.take(now):
                    self.metrics.issuance.labels("rate-limited").inc()
                    wait = self.budget.wait()
                    log.warning("issuance budget used up; %s waits %.0f s", name, wait)
                    self._set(replace(status, next_try=now + wait))
                    return
                what = "renewing" if cert is not None else "obtaining"
                log.info("%s the certificate of %s from %s", what, name, self.settings.directory)
                async with asyncio.timeout(self.settings.issue_timeout + 30):
                    seen = cert.mtime if cert is not None else 0.0
                    order = asyncio.get_running_loop().run_in_executor(
                        None, self._issue_locked, name, seen
                    )
                    self._orders.add(order)
                    order.add_done_callback(self._order_done)
                    issued = await asyncio.shield(order)  # a cancel leaves it to close()
                self._issued(name, issued)
        except IssueError as exc:
            self.metrics.issuance.labels("failed").inc()
            self._failed(name, str(exc))
        except TimeoutError:
            self.metrics.issuance.labels("failed").inc()
            self._failed(name, f"no answer from the CA within {self.settings.issue_timeout:.0f} s")
        except Exception as exc:
            # a bug or a library surprise must not stop this name's renewals for good:
            # logged with its traceback, then retried with back-off like any failure
            log.exception("unexpected error while obtaining the certificate of %s", name)
            self.metrics.issuance.labels("failed").inc()
            self._failed(name, f"unexpected error: {exc!r}")
        finally:
            self._running.pop(name, None)
            self._wake.set()

    def _order_done(self, order: asyncio.Future[Issued | None]) -> None:
        self._orders.discard(order)
        if not order.cancelled():
            order.exception()  # retrieved: an order abandoned at close() is not an error

    def _issue_locked(self, name: str, seen: float) -> Issued | None:
        """In a worker thread, under the name's lock. ``seen`` is the mtime of the file we
        decided to replace; when the file changed since and is not due, another instance
        has just renewed it: its file is used (None returned) and no order is placed."""
        with self.store.lock(name):
            pem = self.store.read_cert(name)
            if pem is not None and self.store.cert_mtime(name) != seen:
                fresh = renew_at(_lifetime(pem), self.settings.renew_fraction)
                if fresh > _utc(self.clock()):
                    return None
            issued = self.client.issue(name)
            self.store.write_cert(name, issued.pem)
            return issued

    def _issued(self, name: str, issued: Issued | None) -> None:
        cert = self.load(name)
        if cert is None:
            self._failed(name, "the new certificate could not be loaded")
            return
        if issued is not None and issued.ari is not None:
            self.certs[name] = replace(cert, due=issued.ari)
            cert = self.certs[name]
        self.metrics.issuance.labels("issued" if issued else "from-other-instance").inc()
        log.info(
            "certificate of %s %s, valid until %s, renewal from %s",
            name,
            "issued" if issued else "loaded (another instance obtained it)",
            cert.life.not_after.isoformat(timespec="seconds"),
            cert.due.isoformat(timespec="seconds"),
        )
        self._set(
            NameStatus(
                name,
                last_attempt=self.clock(),
                not_after=cert.life.not_after.timestamp(),
                renew_at=cert.due.timestamp(),
                state=CertState.VALID.value,
            )
        )

    def _failed(self, name: str, error: str) -> None:
        now = self.clock()
        old = self.status.get(name, NameStatus(name))
        failures = old.failures + 1
        wait = backoff(failures, self.settings.retry_min, self.settings.retry_max)
        cert = self.certs.get(name)
        log.warning("%s: %s; next try in %.0f s (failure %d)", name, error, wait, failures)
        self._set(
            replace(
                old,
                failures=failures,
                last_error=error,
                last_attempt=now,
                next_try=now + wait,
                not_after=cert.life.not_after.timestamp() if cert else 0.0,
                renew_at=cert.due.timestamp() if cert else 0.0,
                state=self._alerted.get(name, CertState.MISSING).value,
            )
        )

    def _set(self, status: NameStatus) -> None:
        self.status[status.name] = status
        try:
            self.store.write_status(status)
        except OSError as exc:
            log.warning("cannot write the status of %s: %s", status.name, exc)

    def renew_now(self, name: str) -> None:
        """Renew ``name`` at the next look, whatever its dates say."""
        self._force.add(name)
        self._set(replace(self.status.get(name, NameStatus(name)), next_try=0.0))
        self._wake.set()

    async def revoke(self, name: str) -> None:
        """Revoke ``name``'s certificate at the CA (a leaked key) and obtain a new one at
        once; the revoked one is served until the new one is there. Raises IssueError."""
        pem = self.store.read_cert(name)
        if pem is None:
            raise IssueError(f"no certificate for {name} in {self.store.root}")
        await asyncio.to_thread(self.client.revoke, pem)
        log.warning("the certificate of %s is revoked; obtaining a new one", name)
        self.renew_now(name)

    def state_of(self, name: str) -> CertState:
        cert = self.certs.get(name)
        return cert_state(
            _utc(self.clock()),
            cert.life if cert else None,
            cert.due if cert else None,
            self.settings.alert_days,
        )
