"""What ``mtasts acme status`` and the dashboard show of the ACME state directory: one row
per name with its state, expiry, renewal time, failures and last error.

I/O module (reads the state directory).
"""

from __future__ import annotations

import datetime as dt

from mtasts.acme.renewal import Lifetime, cert_state, renew_at
from mtasts.acme.store import StateDir

BEGIN = b"-----BEGIN CERTIFICATE-----"


def status_names(store: StateDir) -> list[str]:
    """Every name with a certificate or a status file."""
    return sorted(set(store.names()) | {p.stem for p in (store.root / "certs").glob("*.json")})


def status_row(
    store: StateDir, name: str, now: dt.datetime, *, renew_fraction: float, alert_days: float
) -> dict[str, object]:
    from cryptography import x509

    status = store.read_status(name)
    pem = store.read_cert(name)
    life = None
    if pem is not None and BEGIN in pem:
        cert = x509.load_pem_x509_certificate(pem[pem.index(BEGIN) :])
        life = Lifetime(cert.not_valid_before_utc, cert.not_valid_after_utc)
    due = None
    if life is not None:
        due = renew_at(life, renew_fraction)
        if status.renew_at and status.not_after == life.not_after.timestamp():
            due = dt.datetime.fromtimestamp(status.renew_at, dt.UTC)
    state = cert_state(now, life, due, alert_days)
    return {
        "name": name,
        "state": state.value,
        "not_after": life.not_after.isoformat(timespec="seconds") if life else None,
        "renew_at": due.isoformat(timespec="seconds") if due else None,
        "failures": status.failures,
        "last_error": status.last_error or None,
    }


def status_rows(
    store: StateDir, now: dt.datetime, *, renew_fraction: float, alert_days: float
) -> list[dict[str, object]]:
    return [
        status_row(store, name, now, renew_fraction=renew_fraction, alert_days=alert_days)
        for name in status_names(store)
    ]
