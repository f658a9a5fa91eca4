"""Obtaining a certificate from the CA with certbot's ``acme`` library.

``issue()`` is blocking (the library uses requests) and runs in a worker thread: account
(created once, kept in the state directory, re-created when the CA no longer knows it),
order, one challenge per authorization (tls-alpn-01 preferred, http-01 when allowed),
finalization with a fresh P-256 key, and the challenge files removed afterwards.

I/O module.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import jwa, jwk

from mtasts import __version__
from mtasts.acme.challenges import TLSALPN01
from mtasts.acme.settings import AcmeSettings
from mtasts.acme.store import StateDir, atomic_write

log = logging.getLogger("mtasts.acme")

_ACCOUNT_GONE = ("accountDoesNotExist", "unauthorized")


class IssueError(Exception):
    """Issuance failed; the message says where and why (the CA's problem document)."""


@dataclass(frozen=True, slots=True)
class Issued:
    pem: bytes  # private key + full chain
    not_before: dt.datetime
    not_after: dt.datetime
    ari: dt.datetime | None = None  # the CA's suggested renewal time (RFC 9773)


def _network(settings: AcmeSettings, key: jwk.JWK | None) -> client.ClientNetwork:
    alg = jwa.ES256 if isinstance(key, jwk.JWKEC) else jwa.RS256
    net = client.ClientNetwork(key, alg=alg, user_agent=f"mtasts/{__version__}", timeout=30)
    if settings.ca_file is not None:
        # requests takes a CA bundle path where the library passes verify=
        net.verify_ssl = str(settings.ca_file)  # type: ignore[assignment]
    return net


class AcmeClient:
    """One account at one CA, used from worker threads (one issuance per name at a time)."""

    def __init__(self, settings: AcmeSettings, store: StateDir) -> None:
        self.settings = settings
        self.store = store

    def _account_key(self) -> tuple[jwk.JWK, str | None]:
        data = self.store.read_account()
        if data is not None and data.get("directory") == self.settings.directory:
            return jwk.JWK.json_loads(data["key"]), data.get("uri")
        if data is not None and "key" in data:
            # a new directory (another CA or staging -> production): keep the key, new account
            return jwk.JWK.json_loads(data["key"]), None
        private = ec.generate_private_key(ec.SECP256R1())
        return jwk.JWKEC(key=private), None

    def _connect(self) -> client.ClientV2:
        """A client with a registered account (created when there is none)."""
        with self.store.lock("account"):
            key, uri = self._account_key()
            net = _network(self.settings, key)
            directory = client.ClientV2.get_directory(self.settings.directory, net)
            acme = client.ClientV2(directory, net)
            if uri is not None:
                net.account = messages.RegistrationResource(uri=uri, body=messages.Registration())
                return acme
            return self._register(acme, key)

    def _register(self, acme: client.ClientV2, key: jwk.JWK) -> client.ClientV2:
        eab = None
        if self.settings.eab_kid:
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=key.public_key(),
                kid=self.settings.eab_kid,
                hmac_key=self.settings.eab_hmac_key,
                directory=acme.directory,
            )
        registration = messages.NewRegistration.from_data(
            email=self.settings.email or None,
            terms_of_service_agreed=True,
            external_account_binding=eab,
        )
        try:
            regr = acme.new_account(registration)
        except errors.ConflictError as exc:  # the key is known already: use that account
            regr = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
            acme.net.account = regr
        self.store.write_account(
            {
                "directory": self.settings.directory,
                "uri": regr.uri,
                "key": key.json_dumps(),
            }
        )
        log.info("ACME account %s registered at %s", regr.uri, self.settings.directory)
        return acme

    def _forget_account(self) -> None:
        with self.store.lock("account"):
            data = self.store.read_account()
            if data is not None:
                data.pop("uri", None)
                self.store.write_account(data)

    def issue(self, name: str) -> Issued:
        """A new certificate for ``name`` (blocking). Raises :class:`IssueError`."""
        try:
            try:
                return self._issue(self._connect(), name)
            except messages.Error as exc:
                if exc.code not in _ACCOUNT_GONE:
                    raise
                # the CA lost or disabled our account (a test CA restarted): register anew
                log.warning("the CA does not know our account (%s); registering again", exc)
                self._forget_account()
                return self._issue(self._connect(), name)
        except messages.Error as exc:
            raise IssueError(f"the CA refused: {exc}") from exc
        except errors.TimeoutError as exc:
            raise IssueError(f"the CA did not validate or finalize in time: {exc}") from exc
        except errors.ValidationError as exc:
            raise IssueError(f"validation failed: {_validation_errors(exc)}") from exc
        except (errors.Error, requests.RequestException, OSError, ValueError) as exc:
            raise IssueError(f"cannot reach the CA at {self.settings.directory}: {exc}") from exc

    def _issue(self, acme: client.ClientV2, name: str) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        csr = crypto_util.make_csr(key_pem, [name])
        order = acme.new_order(csr)
        deadline = dt.datetime.now() + dt.timedelta(seconds=self.settings.issue_timeout)
        with self._answered(acme, order, name):
            order = acme.poll_and_finalize(order, deadline)
        if not order.fullchain_pem:
            raise IssueError("the CA finalized the order without a certificate")
        chain = order.fullchain_pem.encode("ascii")
        cert = x509.load_pem_x509_certificate(chain)
        ari: dt.datetime | None = None
        try:
            acme.directory["renewalInfo"]
        except KeyError:
            pass  # the CA offers no ARI (RFC 9773): we renew at renew_fraction
        else:
            try:
                ari = acme.renewal_time(chain)[0]
            except errors.ARIError as exc:
                log.info("no renewal information for %s: %s", name, exc)
        return Issued(key_pem + chain, cert.not_valid_before_utc, cert.not_valid_after_utc, ari)

    @contextmanager
    def _answered(
        self, acme: client.ClientV2, order: messages.OrderResource, name: str
    ) -> Iterator[None]:
        """Provision and answer one challenge per pending authorization; clean up after."""
        written = []
        account_key = acme.net.key
        assert account_key is not None  # _connect() made the network with it
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # the CA reuses a recent validation
                challb = self._pick(authz)
                chall = challb.chall
                if isinstance(chall, TLSALPN01):
                    path = self.store.alpn_path(name)
                    atomic_write(path, chall.validation(account_key, domain=name))
                elif isinstance(chall, challenges.HTTP01):
                    path = self.store.http01_path(chall.encode("token"))
                    atomic_write(path, chall.validation(account_key).encode("ascii"))
                else:  # pragma: no cover - _pick returns only these two
                    raise IssueError(f"unexpected challenge {chall.typ}")
                written.append(path)
                acme.answer_challenge(challb, chall.response(account_key))
            yield
        finally:
            for path in written:
                path.unlink(missing_ok=True)

    def _pick(self, authz: messages.AuthorizationResource) -> messages.ChallengeBody:
        offered = {c.chall.typ: c for c in authz.body.challenges}
        for kind in self.settings.challenges:
            if kind in offered:
                return offered[kind]
        raise IssueError(
            f"the CA offers {', '.join(sorted(offered))} for "
            f"{authz.body.identifier.value}; we answer {', '.join(self.settings.challenges)}"
        )

    def caa_identities(self) -> tuple[str, ...]:
        """The CA's CAA issuer domains from its directory (RFC 8555 §7.1.1), () if none."""
        try:
            directory = client.ClientV2.get_directory(
                self.settings.directory, _network(self.settings, None)
            )
            return tuple(directory.meta.caa_identities or ())
        except (errors.Error, requests.RequestException, OSError, ValueError) as exc:
            raise IssueError(
                f"cannot reach the CA: cannot read the directory {self.settings.directory}: {exc}"
            ) from exc

    def revoke(self, pem: bytes) -> None:
        """Revoke the certificate in ``pem`` (key + chain) with our account (blocking)."""
        cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----") :])
        try:
            self._connect().revoke(cert, 0)
        except (errors.Error, requests.RequestException) as exc:
            raise IssueError(f"revocation failed: {exc}") from exc


def _validation_errors(exc: errors.ValidationError) -> str:
    parts = []
    for authz in exc.failed_authzrs:
        for challb in authz.body.challenges:
            if challb.error is not None:
                parts.append(f"{authz.body.identifier.value} {challb.chall.typ}: {challb.error}")
    return "; ".join(parts) or str(exc)
