"""Lab side of the real-Postfix test: run inside the test's network namespace.

Usage: python postfix_rig.py STATE_DIR
Reads STATE_DIR/scenario.toml, starts the lab on the standard ports (DNS 53, SMTP 25,
HTTPS 443: the netns is ours, so root may bind them), applies per-name TTLs from
STATE_DIR/ttls.json and an MX change from STATE_DIR/mx_change.json when it appears
(renamed to mx_change.done once applied), publishes a TLSA record "3 1 1
<SHA-256 of the public key>" for each host named in STATE_DIR/dane.json (host -> the kind
of certificate it presents), signs the root zone's NS RRset (so Postfix's and the
daemon's "does the resolver validate?" probes see the AD bit), writes
STATE_DIR/state.json (nameserver, CA file, host addresses) and keeps
STATE_DIR/received.json up to date with what each lab MX accepted, until SIGTERM.

MX hosts named in STATE_DIR/legacy_tls.json speak only TLS 1.0/1.1 with an RSA key and
RSA key transport (no ServerKeyExchange signature). Postfix raises OpenSSL's security
level to 1 for verified sessions (tls_client.c), which refuses the SHA-1 signatures of
an ECDHE handshake below TLS 1.2 whatever the configuration says; RSA key transport has
none, so such an MX is reachable at TLS 1.0/1.1 by a verifying Postfix whose OpenSSL
allows those versions, and only the policy's ``protocols=`` keeps it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import sys
import warnings
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from mtasts.lab import Lab, Scenario
from mtasts.lab.certs import IssuedKind


def dane_ee(lab: Lab, host: str, kind: IssuedKind) -> str:
    """RFC 7671 §5.1 DANE-EE(3) SPKI(1) SHA2-256(1) for the certificate ``host`` presents."""
    chain, _ = lab.pki.pem(host, kind)
    leaf = x509.load_pem_x509_certificates(chain)[0]
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return "3 1 1 " + digest.finalize().hex()


def legacy_rsa_context(lab: Lab, host: str, directory: Path) -> ssl.SSLContext:
    """TLS 1.0/1.1 only, an RSA certificate from the lab CA, RSA key transport only."""
    leaf = lab.pki.ca.issue_cert(host, key_type=trustme.KeyType.RSA)
    pem = directory / f"{host}.rsa.pem"
    pem.write_bytes(
        leaf.private_key_pem.bytes() + b"".join(b.bytes() for b in leaf.cert_chain_pems)
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("AES256-SHA:AES128-SHA:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old TLS is the point here
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.load_cert_chain(pem)
    return ctx


def write_atomic(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


async def main(state_dir: Path) -> None:
    scenario = Scenario.from_toml((state_dir / "scenario.toml").read_text())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with Lab(scenario, https_port=443, smtp_port=25, dns_port=53) as lab:
        dane_path = state_dir / "dane.json"
        for host, kind in (json.loads(dane_path.read_text()) if dane_path.exists() else {}).items():
            lab.set_records(f"_25._tcp.{host}", "TLSA", [dane_ee(lab, host, kind)])
            lab.set_dnssec(f"_25._tcp.{host}", True)
        lab.set_records(".", "NS", ["ns.lab.test."])
        lab.set_dnssec(".", True)
        legacy_path = state_dir / "legacy_tls.json"
        for host in json.loads(legacy_path.read_text()) if legacy_path.exists() else []:
            lab.mx(host).tls_context = legacy_rsa_context(lab, host, state_dir)
        ttls_path = state_dir / "ttls.json"
        lab.zone.ttls.update(json.loads(ttls_path.read_text()) if ttls_path.exists() else {})
        write_atomic(
            state_dir / "state.json",
            {
                "nameserver": lab.nameserver[0],
                "ca_file": str(lab.ca_file),
                "addresses": lab.addresses,
            },
        )
        seen = -1
        while not stop.is_set():
            received = {
                name: [
                    {"rcpt": list(r.rcpt_tos), "tls": r.tls, "sni": r.sni, "data": r.data.decode()}
                    for r in lab.mx(name).received
                ]
                for name in sorted(lab.mx_hosts)
            }
            change = state_dir / "mx_change.json"
            if change.exists():  # the test changes one MX RRset while everything runs
                name, records = json.loads(change.read_text())
                lab.set_records(name, "MX", records)
                os.replace(change, state_dir / "mx_change.done")
            count = sum(len(v) for v in received.values())
            if count != seen:
                write_atomic(state_dir / "received.json", received)
                seen = count
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
