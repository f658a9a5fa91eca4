"""A real Postfix 3.x delivering through ``mtasts daemon``, in a network namespace.

Everything runs inside netns ``mtastspfx``: the lab (DNS on :53, MX hosts on :25, policy
hosts on :443, an attacker), the daemon on 127.0.0.1:8461 and Postfix, whose own MX and
TLSA lookups go to the lab DNS through a bind-mounted /etc/resolv.conf. Postfix runs as
its own instance: ``postfix -c DIR`` with main.cf, master.cf, queue and data directories
under a temporary directory, so the system's Postfix (/etc/postfix, /var/spool/postfix)
is never read for its settings nor written. Mail is submitted over SMTP to that
instance's smtpd inside the netns, judged from its log and from what each lab MX
received. Postfix's OpenSSL is configured to allow TLS 1.0 (SECLEVEL=0), so only the
daemon's ``protocols=`` keeps an enforced domain off TLS 1.0/1.1. Needs root, postfix
and iproute2; skipped with a reason elsewhere, failed under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NS = "mtastspfx"
HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"

SCENARIO = """
[[domain]]
name = "good.test"
mx = ["mx1.good.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx1.good.test\\nmax_age: 86400\\n"
[[host]]
name = "mx1.good.test"
smtp = { cert = "valid" }

[[domain]]
name = "badcert.test"
mx = ["mx.badcert.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.badcert.test\\nmax_age: 86400\\n"
[[host]]
name = "mx.badcert.test"
smtp = { cert = "wrong-name" }

[[domain]]
name = "notls.test"
mx = ["mx.notls.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.notls.test\\nmax_age: 86400\\n"
[[host]]
name = "mx.notls.test"
smtp = { starttls = false }

[[domain]]
name = "stripped.test"
mx = ["mx.stripped.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.stripped.test\\nmax_age: 86400\\n"
[[host]]
name = "mx.stripped.test"
smtp = { cert = "valid" }
attacker = "strip-starttls"

[[domain]]
name = "notnamed.test"
mx = ["mx.notnamed.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.elsewhere.test\\nmax_age: 86400\\n"
[[host]]
name = "mx.notnamed.test"
smtp = { cert = "valid" }

[[domain]]
name = "wild.test"
mx = ["mx.wild.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: *.wild.test\\nmax_age: 86400\\n"
[[host]]
name = "mx.wild.test"
smtp = { cert = "valid" }

[[domain]]
name = "deep.test"
mx = ["a.b.deep.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: *.deep.test\\nmax_age: 86400\\n"
[[host]]
name = "a.b.deep.test"
smtp = { cert = "valid" }

[[domain]]
name = "try.test"
mx = ["mx.try.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: testing\\nmx: mx.try.test\\nmax_age: 86400\\n"
[[host]]
name = "mx.try.test"
smtp = { cert = "wrong-name" }

[[domain]]
name = "selfsigned.test"
mx = ["mx.selfsigned.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.selfsigned.test\\nmax_age: 86400\\n"
[[host]]
name = "mx.selfsigned.test"
smtp = { cert = "self-signed" }

[[domain]]
name = "backup.test"
mx = ["mx1.backup.test", "mx2.backup.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: *.backup.test\\nmax_age: 86400\\n"
[[host]]
name = "mx1.backup.test"
smtp = { cert = "wrong-name" }
[[host]]
name = "mx2.backup.test"
smtp = { cert = "valid" }

[[domain]]
name = "plain.test"
mx = ["mx.plain.test"]
[[host]]
name = "mx.plain.test"
smtp = { cert = "wrong-name" }

[[domain]]
name = "expired.test"
mx = ["mx.expired.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.expired.test\\nmax_age: 86400\\n"
[[host]]
name = "mx.expired.test"
smtp = { cert = "expired" }

# the attacker's MX set: DNS names only a host outside the policy (with a valid
# certificate for its own name)
[[domain]]
name = "spoofed.test"
mx = ["mx.evil.test"]
sts = "v=STSv1; id=1"
policy = '''version: STSv1
mode: enforce
mx: mx.spoofed.test
mx: *.spoofed.test
max_age: 86400
'''
[[host]]
name = "mx.evil.test"
smtp = { cert = "valid" }

# an MX that speaks only TLS 1.0/1.1 (with a valid certificate)
[[domain]]
name = "oldtls.test"
mx = ["mx.oldtls.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.oldtls.test\\nmax_age: 86400\\n"
[[host]]
name = "mx.oldtls.test"
smtp = { cert = "valid", tls_max_version = "1.1" }

# the same kind of MX for a domain without MTA-STS: shows that OpenSSL on both sides
# really allows TLS 1.0/1.1 here, so the refusal above is the daemon's protocols=
[[domain]]
name = "oldtls-plain.test"
mx = ["mx.oldtls-plain.test"]
[[host]]
name = "mx.oldtls-plain.test"
smtp = { cert = "valid", tls_max_version = "1.1" }

# DANE (RFC 8461 §2). TLSA records naming the MX's own key are added by postfix_rig.py
# from dane.json once the lab has issued the certificates.
# A PKIX-valid certificate that fails DANE: deferred (old main: dane off, delivered)
[[domain]]
name = "danefail.test"
mx = ["mx.danefail.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.danefail.test\\nmax_age: 86400\\n"
dnssec = true
tlsa = ["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]
[[host]]
name = "mx.danefail.test"
smtp = { cert = "valid" }

# partial DANE: mx1 (first) has no TLSA and sits behind a STARTTLS-stripping attacker;
# mx2 has usable TLSA for a certificate no CA we trust signed. dane-only: mx1 is
# skipped, mx2 authenticated by DANE alone
[[domain]]
name = "partial.test"
mx = ["mx1.partial.test", "mx2.partial.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: *.partial.test\\nmax_age: 86400\\n"
dnssec = true
[[host]]
name = "mx1.partial.test"
smtp = { cert = "valid" }
attacker = "strip-starttls"
[[host]]
name = "mx2.partial.test"
smtp = { cert = "untrusted" }

# only unusable TLSA (PKIX-TA, RFC 7672 §3.1.3): DANE does not apply, the MTA-STS
# answer does, and the foreign certificate is refused
[[domain]]
name = "unusable.test"
mx = ["mx.unusable.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx.unusable.test\\nmax_age: 86400\\n"
dnssec = true
tlsa = ["0 0 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]
[[host]]
name = "mx.unusable.test"
smtp = { cert = "untrusted" }

# an MX set that changes while the daemon holds the old one (MX TTL 20 s, see TTLS)
[[domain]]
name = "moving.test"
mx = ["mx1.moving.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: *.moving.test\\nmax_age: 86400\\n"
[[host]]
name = "mx2.moving.test"
smtp = { cert = "valid" }
"""

# per-name DNS TTLs (seconds) in the lab zone
TTLS = {"moving.test": 20}

# TLSA "3 1 1 <SHA-256 of the public key>" of these hosts' certificates (kind), added by
# the rig once the lab runs
DANE = {"mx2.partial.test": "untrusted"}
# these MX hosts get an RSA certificate and RSA key transport at TLS 1.0/1.1 (see the rig)
LEGACY_TLS = ["mx.oldtls.test", "mx.oldtls-plain.test"]

MAIN_CF = """\
# our own instance (postfix -c {etc}); nothing of /etc/postfix or /var/spool/postfix is used
config_directory = {etc}
queue_directory = {run}/spool
data_directory = {run}/data
meta_directory = {etc}
compatibility_level = 3.6
myhostname = sender.localtest
mydomain = localtest
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery disabled in the mtasts test
alias_maps =
alias_database =
relayhost =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
biff = no
smtputf8_enable = no
smtp_host_lookup = dns
# as docs/postfix.md recommends: DANE where published (the lab signs some zones; Postfix
# trusts the AD bit, resolv.conf has options trust-ad), else opportunistic TLS
smtp_dns_support_level = dnssec
smtp_connect_timeout = 5s
smtp_tls_security_level = dane
smtp_tls_CAfile = {ca}
# OpenSSL allows TLS 1.0/1.1 here (SECLEVEL=0, MinProtocol TLSv1), as does Postfix's own
# default (smtp_tls_mandatory_protocols = >=TLSv1): only the daemon's protocols= refuses
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE
    POSTLOG_HOSTNAME OPENSSL_CONF={run}/openssl.cnf
tls_medium_cipherlist = DEFAULT:@SECLEVEL=0
tls_high_cipherlist = DEFAULT:@SECLEVEL=0
smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix
smtp_tls_loglevel = 1
maillog_file = {run}/maillog
maillog_file_prefixes = /var, /dev/stdout, {run}
queue_run_delay = 1h
minimal_backoff_time = 1h
maximal_backoff_time = 2h
maximal_queue_lifetime = 1d
bounce_queue_lifetime = 1d
"""

OPENSSL_CNF = """\
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1
CipherString = DEFAULT:@SECLEVEL=0
"""

# (case, recipient domain, expected status, MX that must hold it or None, log evidence)
CASES = [
    ("good", "good.test", "sent", "mx1.good.test",
     r"Verified TLS connection established to mx1\.good\.test"),
    ("mixed-case", "GOOD.Test", "sent", "mx1.good.test",
     r"Verified TLS connection established to mx1\.good\.test"),
    ("wrong-name cert", "badcert.test", "deferred", None,
     r"server certificate verification failed for mx\.badcert\.test"),
    ("no STARTTLS", "notls.test", "deferred", None,
     r"TLS is required, but was not offered by host mx\.notls\.test"),
    ("STARTTLS stripped", "stripped.test", "deferred", None,
     r"TLS is required, but was not offered by host mx\.stripped\.test"),
    ("MX not in policy", "notnamed.test", "deferred", None,
     r"server certificate verification failed for mx\.notnamed\.test"),
    # STS-4.2-b: the MX certificate must chain to a trusted root
    ("self-signed cert", "selfsigned.test", "deferred", None,
     r"certificate verification failed for mx\.selfsigned\.test\S*: self-signed certificate"),
    # STS-5.1-b / STS-8.4-a: the first MX fails validation, the next one in preference
    # order is tried (no two-pass pre-filtering of candidates)
    ("first MX invalid, second used", "backup.test", "sent", "mx2.backup.test",
     r"Verified TLS connection established to mx2\.backup\.test"),
    ("wildcard one label", "wild.test", "sent", "mx.wild.test",
     r"Verified TLS connection established to mx\.wild\.test"),
    # RFC 8461 §4.1: *.deep.test matches one label; the daemon renders exact MX names, so
    # a.b.deep.test (a valid certificate for its own name) is refused. On old main
    # (match=.deep.test, any depth under Postfix 3.7) this mail was delivered.
    ("wildcard two labels deferred", "deep.test", "deferred", None,
     r"server certificate verification failed for a\.b\.deep\.test"),
    ("testing mode", "try.test", "sent", "mx.try.test",
     r"(Trusted|Untrusted) TLS connection established to mx\.try\.test"),
    ("no MTA-STS", "plain.test", "sent", "mx.plain.test",
     r"(Trusted|Untrusted) TLS connection established to mx\.plain\.test"),
    ("expired cert", "expired.test", "deferred", None,
     r"certificate verification failed for mx\.expired\.test\S*: certificate has expired"),
    # the daemon sees the same spoofed MX set and names no host Postfix could accept
    ("spoofed MX set", "spoofed.test", "deferred", None,
     r"server certificate verification failed for mx\.evil\.test"),
    # STS-7.2-a: protocols=>=TLSv1.2; on old main (no attribute) this was delivered over
    # TLS 1.1 ("Verified ... TLSv1.1 with cipher AES256-SHA", checked by answering
    # protocols=>=TLSv1); the next case shows both sides speak TLS 1.1 here
    ("TLS 1.0/1.1 only MX", "oldtls.test", "deferred", None,
     r"SSL_connect error to mx\.oldtls\.test"),
    ("TLS 1.0/1.1 only MX, no MTA-STS", "oldtls-plain.test", "sent", "mx.oldtls-plain.test",
     r"TLS connection established to mx\.oldtls-plain\.test\S*: TLSv1(\.1)? with"),
    # RFC 8461 §2: DANE wins; old main (DANE off by default) answered secure and Postfix
    # delivered to a PKIX-valid certificate that the TLSA record does not match
    ("DANE fails, PKIX valid", "danefail.test", "deferred", None,
     r"verification failed for mx\.danefail\.test\S*: num=65:no matching DANE TLSA records"),
    # partial DANE -> dane-only: never the stripped MX without TLSA, mail via DANE to mx2
    ("partial DANE", "partial.test", "sent", "mx2.partial.test",
     r"(?s)partial\.test/mx1\.partial\.test: no TLSA records found"
     r".*Verified TLS connection established to mx2\.partial\.test"),
    # only unusable TLSA: the MTA-STS answer applies and the foreign certificate is refused
    ("unusable TLSA only", "unusable.test", "deferred", None,
     r"certificate verification failed for mx\.unusable\.test\S*: untrusted issuer"),
]  # fmt: skip


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespace, Postfix)"
    for tool in ("postfix", "postconf", "postsuper", "postmap", "ip"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return (
                f"{tool} not found: apt-get install postfix iproute2 "
                "(preseed postfix/main_mailer_type 'No configuration')"
            )
    return None


def _sh(*args: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)  # type: ignore[call-overload,no-any-return]


def _nsx(*args: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *args]


def _wait(pred: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def _spawn(argv: list[str], out: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with out.open("wb") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def _snapshot(*roots: str) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under ``roots``: what the run must leave as it was."""
    out = {}
    for root in roots:
        for path in Path(root).rglob("*") if Path(root).exists() else ():
            if path.is_file() and not path.is_symlink():
                st = path.stat()
                out[str(path)] = (st.st_size, st.st_mtime_ns)
    return out


SYSTEM = ("/etc/postfix", "/var/spool/postfix/etc", "/var/spool/postfix/pid")


@dataclass
class Rig:
    run: Path
    etc: Path
    procs: list[subprocess.Popen[bytes]]
    system_before: dict[str, tuple[int, int]]

    def maillog(self) -> str:
        path = self.run / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def received(self) -> dict[str, list[dict[str, object]]]:
        path = self.run / "received.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def master_stopped(self) -> bool:
        daemon_dir = _sh("postconf", "-c", str(self.etc), "-h", "daemon_directory").stdout
        test = [f"{daemon_dir.strip()}/master", "-c", str(self.etc), "-t"]
        return subprocess.run(test, capture_output=True).returncode == 0


def _postfix_instance(run: Path, ca_file: str) -> Path:
    """main.cf and master.cf of our own instance under ``run``; returns its config dir."""
    etc = run / "etc"
    etc.mkdir()
    for name in ("spool", "data"):
        (run / name).mkdir(mode=0o755)
    shutil.chown(run / "data", "postfix", "postfix")
    (etc / "main.cf").write_text(MAIN_CF.format(ca=ca_file, run=run, etc=etc))
    (run / "openssl.cnf").write_text(OPENSSL_CNF)
    # the package's pristine master.cf (never the machine's own, which its operator may
    # have changed), then no chroot: a chrooted smtp(8) would not see the bind-mounted
    # resolv.conf
    shutil.copy(_pristine("master.cf"), etc / "master.cf")
    # post-install and postfix check read these package files from meta_directory
    for name in ("postfix-files", "dynamicmaps.cf"):
        if _pristine(name).exists():
            shutil.copy(_pristine(name), etc / name)
    for sub in ("postfix-files.d", "dynamicmaps.cf.d"):
        if _stock_file(sub).is_dir():
            shutil.copytree(_stock_file(sub), etc / sub)
    _sh("postconf", "-c", str(etc), "-F", "*/*/chroot = n")
    old = time.time() - 10  # a fresh main.cf makes Postfix wait to "cool down"
    for f in ("main.cf", "master.cf"):
        os.utime(etc / f, (old, old))
    return etc


def _stock_file(name: str) -> Path:
    meta = _sh("postconf", "-dh", "meta_directory").stdout.strip() or "/etc/postfix"
    return Path(meta) / name


def _pristine(name: str) -> Path:
    """The package's own copy (Debian keeps master.cf.dist and dynamicmaps.cf under
    /usr/share/postfix) when there is one, else the file in meta_directory (read only)."""
    for shipped in (Path("/usr/share/postfix") / f"{name}.dist", Path("/usr/share/postfix") / name):
        if shipped.is_file():
            return shipped
    return _stock_file(name)


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    reason = _missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"real-Postfix test cannot run under CI: {reason}")
        pytest.skip(reason)
    if subprocess.run(["ip", "netns", "add", NS], capture_output=True).returncode != 0:
        _sh("ip", "netns", "del", NS, check=False)
        _sh("ip", "netns", "add", NS)
    run = Path(tempfile.mkdtemp(prefix="mtasts-pfx-"))
    run.chmod(0o755)  # postsuper and postlogd run as user postfix
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    rig = Rig(run, run / "etc", procs, _snapshot(*SYSTEM))
    started = False
    try:
        _sh(*_nsx("ip", "link", "set", "lo", "up"))
        (run / "scenario.toml").write_text(SCENARIO)
        (run / "dane.json").write_text(json.dumps(DANE))
        (run / "legacy_tls.json").write_text(json.dumps(LEGACY_TLS))
        (run / "ttls.json").write_text(json.dumps(TTLS))
        procs.append(
            _spawn(
                _nsx(sys.executable, str(HERE / "postfix_rig.py"), str(run)), run / "rig.out", env
            )
        )
        _wait(lambda: (run / "state.json").exists() or procs[0].poll() is not None, 20, "the lab")
        assert procs[0].poll() is None, (run / "rig.out").read_text()
        state = json.loads((run / "state.json").read_text())
        # Postfix trusts the AD bit only with trust-ad (glibc >= 2.31)
        (run / "resolv.conf").write_text(f"nameserver {state['nameserver']}\noptions trust-ad\n")
        daemon = _nsx(
            sys.executable, "-c", "from mtasts.cli.main import main; main()", "daemon",
            "--listen", "127.0.0.1:8461", "--nameserver", f"{state['nameserver']}:53",
            "--ca-file", state["ca_file"], "--answer-ttl", "0", "--log-level", "debug",
        )  # fmt: skip
        procs.append(_spawn(daemon, run / "daemon.out", env))
        _wait(
            lambda: "ready" in (run / "daemon.out").read_text() or procs[1].poll() is not None,
            20,
            "the daemon",
        )
        assert procs[1].poll() is None, (run / "daemon.out").read_text()
        Path(state["ca_file"]).parent.chmod(0o755)
        etc = _postfix_instance(run, state["ca_file"])
        _sh(
            "install", "-m", "0644", "-o", "postfix", "-g", "postfix",
            "/dev/null", str(run / "maillog"),
        )  # fmt: skip
        start = f"mount --bind {run}/resolv.conf /etc/resolv.conf && exec postfix -c {etc} start"
        done = _sh(*_nsx("sh", "-c", start), check=False)
        started = True
        assert done.returncode == 0, done.stdout + done.stderr + rig.maillog()
        _wait(lambda: "daemon started" in rig.maillog(), 20, "Postfix")
        yield rig
    finally:
        if started:
            _sh("postsuper", "-c", str(rig.etc), "-d", "ALL", check=False)
            _sh("postfix", "-c", str(rig.etc), "stop", check=False)
            _wait(rig.master_stopped, 15, "Postfix to stop")
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _sh("ip", "netns", "del", NS, check=False)
        if os.environ.get("MTASTS_KEEP_RIG") != "1":
            shutil.rmtree(run, ignore_errors=True)


_SUBMIT = """
import json, smtplib, sys
with smtplib.SMTP("127.0.0.1", 25, local_hostname="submit.localtest", timeout=20) as smtp:
    for rcpt, text in json.loads(sys.stdin.read()):
        smtp.sendmail("tester@sender.localtest", [rcpt], text.encode())
"""


def _submit(messages: list[tuple[str, str]]) -> None:
    """(domain, token) pairs, submitted to our instance's smtpd inside the netns."""
    batch = [
        (
            f"user@{domain}",
            f"From: tester@sender.localtest\nTo: user@{domain}\nSubject: {token}\n"
            f"Message-ID: <{token}@sender.localtest>\n\nmtasts real-Postfix test {token}\n",
        )
        for domain, token in messages
    ]
    _sh(*_nsx(sys.executable, "-c", _SUBMIT), input=json.dumps(batch))


def _smtp_context(log: str, qid: str) -> str:
    """What the smtp process that delivered ``qid`` logged since its previous delivery."""
    buffers: dict[str, list[str]] = {}
    for line in log.splitlines():
        m = re.search(r"postfix/smtp\[(\d+)\]", line)
        if not m:
            continue
        buf = buffers.setdefault(m.group(1), [])
        buf.append(line)
        if f"{qid}: to=" in line:
            return "\n".join(buf)
        if " status=" in line:
            buf.clear()
    return ""


def test_postfix_enforces_what_the_daemon_answers(rig: Rig) -> None:
    """Enforce domains are never delivered to a bad MX; the rest go out."""
    run_id = uuid.uuid4().hex[:12]
    # fixed width: no token may be a prefix of another (case 1 vs case 11)
    tokens = {case: f"mtasts-{run_id}-{i:03d}" for i, (case, *_) in enumerate(CASES)}
    _submit([(domain, tokens[case]) for case, domain, *_ in CASES])
    failures = []
    for case, domain, status, mx, evidence in CASES:
        token = tokens[case]

        def status_line(token: str = token, domain: str = domain) -> str | None:
            log = rig.maillog()
            m = re.search(rf"(\w+): message-id=<{token}@sender\.localtest>", log)
            if not m:
                return None
            s = re.search(rf"{m.group(1)}: to=<user@{re.escape(domain)}>.* status=(\w+).*", log)
            return f"{m.group(1)} {s.group(1)} {s.group(0)}" if s else None

        _wait(lambda f=status_line: f() is not None, 20, f"Postfix's verdict on {case}")
        qid, got, line = status_line().split(" ", 2)  # type: ignore[union-attr]
        context = _smtp_context(rig.maillog(), qid)
        if got == "sent":  # the rig publishes what its MX hosts got every 50 ms
            _wait(lambda t=token: t in json.dumps(rig.received()), 5, f"{case} at the MX")
        received = rig.received()
        holders = [h for h, msgs in received.items() if any(token in str(m["data"]) for m in msgs)]
        if got != status:
            failures.append(f"{case}: expected {status}, got {line}")
        elif not re.search(evidence, context):
            failures.append(f"{case}: no /{evidence}/ in:\n{context}")
        elif holders != ([mx] if mx else []):
            failures.append(f"{case}: expected at {mx}, found at {holders}")
        elif mx:
            (msg,) = [m for m in received[mx] if token in str(m["data"])]
            if not msg["tls"]:
                failures.append(f"{case}: delivered in clear")
    assert not failures, (
        "\n".join(failures) + "\n--- daemon log:\n" + (rig.run / "daemon.out").read_text()[-4000:]
    )


def test_enforced_mail_is_sent_with_sni_of_the_mx(rig: Rig) -> None:
    """servername=hostname: Postfix sends the MX name as SNI for an enforce domain."""
    msgs = rig.received().get("mx1.good.test", [])
    assert msgs, "run after test_postfix_enforces_what_the_daemon_answers"
    assert {m["sni"] for m in msgs} == {"mx1.good.test"}


def test_daemon_answers_postmap_in_the_namespace(rig: Rig) -> None:
    """postmap -q sees the same answers Postfix's smtp(8) gets."""
    pm = ("postmap", "-c", str(rig.etc), "-q")
    q = _sh(*_nsx(*pm, "Good.Test", "socketmap:inet:127.0.0.1:8461:postfix"))
    assert q.stdout.strip() == "secure match=mx1.good.test servername=hostname protocols=>=TLSv1.2"
    nf = _sh(*_nsx(*pm, ".good.test", "socketmap:inet:127.0.0.1:8461:postfix"), check=False)
    assert (nf.returncode, nf.stdout) == (1, "")


def test_answers_for_the_new_cases(rig: Rig) -> None:
    """What Postfix was told: exact MX names, a .invalid name when no MX is named, DANE
    only where usable TLSA is published, TLS 1.2+ everywhere."""
    pm = ("postmap", "-c", str(rig.etc), "-q")
    p12 = "protocols=>=TLSv1.2"
    expected = {
        "wild.test": f"secure match=mx.wild.test servername=hostname {p12}",
        "deep.test": f"secure match=mx-not-in-mta-sts-policy.invalid servername=hostname {p12}",
        "spoofed.test": (
            f"secure match=mx-not-in-mta-sts-policy.invalid servername=hostname {p12}"
        ),
        "danefail.test": f"dane-only {p12}",
        "partial.test": f"dane-only {p12}",
        "unusable.test": f"secure match=mx.unusable.test servername=hostname {p12}",
    }
    got = {
        domain: _sh(*_nsx(*pm, domain, "socketmap:inet:127.0.0.1:8461:postfix")).stdout.strip()
        for domain in expected
    }
    assert got == expected


def test_the_system_postfix_is_untouched(rig: Rig) -> None:
    """The instance lives under its own config_directory and queue: /etc/postfix and the
    system queue's files are as they were (old main rewrote /etc/postfix/main.cf)."""
    assert _snapshot(*SYSTEM) == rig.system_before
    assert not Path("/etc/postfix/main.cf").exists() or "mtasts" not in Path(
        "/etc/postfix/main.cf"
    ).read_text(errors="replace")


def _verdict(rig: Rig, token: str, domain: str, timeout: float = 20) -> tuple[str, str]:
    """(queue id, status word) of the message carrying ``token``, once logged."""

    def line() -> re.Match[str] | None:
        log = rig.maillog()
        m = re.search(rf"(\w+): message-id=<{token}@sender\.localtest>", log)
        if not m:
            return None
        return re.search(rf"{m.group(1)}: to=<user@{re.escape(domain)}>.* status=(\w+)", log)

    _wait(lambda: line() is not None, timeout, f"Postfix's verdict on {token}")
    found = line()
    assert found is not None
    return found.group(0).split(":")[0], found.group(1)


def test_mx_set_change_fails_closed_and_recovers_by_itself(rig: Rig) -> None:
    """Postfix sees a new MX host before the daemon's cached MX set (20 s TTL) expires:
    the mail is deferred (the new host is not in match=), and the next attempt after the
    TTL is delivered to it with no intervention but the retry."""
    run_id = uuid.uuid4().hex[:12]
    first, second = f"mtasts-{run_id}-mv1", f"mtasts-{run_id}-mv2"
    started = time.monotonic()
    _submit([("moving.test", first)])
    assert _verdict(rig, first, "moving.test")[1] == "sent"
    (rig.run / "mx_change.tmp").write_text(json.dumps(["moving.test", ["10 mx2.moving.test."]]))
    os.replace(rig.run / "mx_change.tmp", rig.run / "mx_change.json")
    _wait(lambda: (rig.run / "mx_change.done").exists(), 10, "the rig to change the MX set")
    _submit([("moving.test", second)])
    qid, status = _verdict(rig, second, "moving.test")
    assert time.monotonic() - started < 20, "too slow to see the stale window; rerun"
    assert status == "deferred"
    assert re.search(r"server certificate verification failed for mx2\.moving\.test", rig.maillog())
    time.sleep(max(0.0, started + 21 - time.monotonic()))  # the daemon's MX TTL runs out
    _sh("postqueue", "-c", str(rig.etc), "-i", qid)
    _wait(
        lambda: re.search(rf"{qid}: to=<user@moving\.test>.* status=sent", rig.maillog()),
        20,
        "the retry",
    )
    _wait(lambda: second in json.dumps(rig.received()), 5, "the mail at mx2")
    assert any(second in str(m["data"]) for m in rig.received().get("mx2.moving.test", []))
