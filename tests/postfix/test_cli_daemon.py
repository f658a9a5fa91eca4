"""``mtasts daemon`` as a process: settings precedence, systemd readiness, SIGTERM, cache ops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner
from tests.pg import PG_URL, require_pg

from mtasts.cli.daemon import read_config
from mtasts.cli.main import cli
from mtasts.config import Settings
from mtasts.lab.scenario import PolicyHostSpec, Scenario
from mtasts.lab.testing import healthy_domain, running_lab
from mtasts.postfix.config import DaemonConfig
from mtasts.postfix.netstring import NetstringDecoder, encode
from mtasts.tlsrpt.store import TlsRptStore

SRC = Path(__file__).resolve().parents[2] / "src"


def test_file_then_environment_then_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "mtasts.toml"
    cfg.write_text(
        'nameserver = "127.0.0.9:5300"\n[cache]\nurl = "memory:"\n'
        '[daemon]\nlisten = ["127.0.0.1:18461"]\n[daemon.default_zone]\ntlsrpt = true\n'
    )
    monkeypatch.delenv("MTASTS_CONFIG", raising=False)
    monkeypatch.setenv("MTASTS_CACHE", "sqlite:///x.db")
    # as click passes them: options not given are None and must not mask the environment
    options = {
        "nameserver": ("--nameserver", "127.0.0.8:53"),
        "ca_file": ("--ca-file", None),
        "cache.url": ("--cache", None),
        "daemon.idle_timeout": ("--idle-timeout", 30.0),
        "daemon.listen": ("--listen", None),
    }
    tree = read_config(cfg, options)
    settings, daemon = tree.section(Settings), tree.section(DaemonConfig)
    assert settings.nameserver == ("127.0.0.8", 53)  # option beats file
    assert settings.cache.url == "sqlite:///x.db"  # environment beats file
    assert str(daemon.listen[0]) == "127.0.0.1:18461"
    assert daemon.default_zone.tlsrpt
    assert daemon.idle_timeout == 30.0
    assert str(tree.origin(("daemon", "idle_timeout"))) == "option --idle-timeout"
    assert str(tree.origin(("nameserver",))) == "option --nameserver"
    assert str(tree.origin(("daemon", "listen"))) == f"{cfg}:5"


def test_zone_options_set_every_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zone option (--tlsrpt) is typed by the zone's field, goes into the tree for
    the default zone, and sets every named zone too, even one whose table says otherwise."""
    cfg = tmp_path / "mtasts.toml"
    cfg.write_text("[daemon.zones.old]\ntlsrpt = false\nservername = false\n[daemon.zones.plain]\n")
    monkeypatch.delenv("MTASTS_CONFIG", raising=False)
    options = {"daemon.default_zone.tlsrpt": ("--tlsrpt", True)}
    tree = read_config(cfg, options)
    daemon = tree.section(DaemonConfig).zone_keys_everywhere(["tlsrpt"])
    assert str(tree.origin(("daemon", "default_zone", "tlsrpt"))) == "option --tlsrpt"
    assert daemon.default_zone.tlsrpt
    assert daemon.zones["plain"].tlsrpt
    assert daemon.zones["old"].tlsrpt
    assert daemon.zones["old"].servername is False  # what no option set stays the zone's


@pytest.mark.parametrize(
    "args",
    [
        # the unauthenticated control endpoint on "unix:" bound every interface, random port
        ["--metrics", "unix:/tmp/mtasts-metrics"],
        ["--idle-timeout", "0"],  # closed every client connection at once
        ["--lookup-timeout", "0"],  # answered TIMEOUT to every lookup not in the cache
        ["--lookup-timeout", "-5"],  # negative seconds
    ],
)
def test_bad_options_are_refused_before_listening(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MTASTS_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["daemon", "--listen", "127.0.0.1:1", *args])
    assert result.exit_code == 78, result.output  # a configuration error
    assert result.stderr.startswith("mtasts: error: ")


def test_listen_address_in_use_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An operator who starts a second daemon (or leaves pmsr running) is told which
    address is taken, with exit status 75 (busy: try again) and no Python traceback."""
    monkeypatch.delenv("MTASTS_CONFIG", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["daemon", "--listen", f"127.0.0.1:{port}", "--no-uvloop"])
    assert result.exit_code == 75, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, OSError)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ask(port: int, request: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode(request.encode()))
    await writer.drain()
    dec = NetstringDecoder(100_000)
    while not (got := dec.feed(data := await asyncio.wait_for(reader.read(4096), 20))):
        if not data:
            raise ConnectionResetError(
                f"the daemon closed the connection before answering {request}"
            )
    writer.close()
    return got[0].decode()


async def test_daemon_process_ready_answers_purges_and_stops(tmp_path: Path) -> None:
    """READY=1 on NOTIFY_SOCKET, answers from the lab, cache purge via /cache, exit 0 on SIGTERM."""
    notify = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.setblocking(False)
    port, admin = _free_port(), _free_port()
    async with running_lab(healthy_domain("good.test")) as lab:
        env = {**os.environ, **lab.env, "NOTIFY_SOCKET": str(notify), "PYTHONPATH": str(SRC)}
        env.pop("MTASTS_CONFIG", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from mtasts.cli.main import main; main()", "daemon",
            "--listen", f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{admin}",
            env=env, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            loop = asyncio.get_running_loop()
            ready = await asyncio.wait_for(loop.sock_recv(sock, 100), 20)
            assert ready == b"READY=1"
            expected = "OK secure match=mx1.good.test servername=hostname protocols=>=TLSv1.2"
            assert await _ask(port, "postfix good.test") == expected
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{admin}") as http:
                shown = (await http.get("/cache/good.test")).json()
                assert shown["domain"] == "good.test"
                assert (await http.delete("/cache/good.test")).json()["purged"] is True
                assert (await http.get("/cache/good.test")).status_code == 404
                refreshed = (await http.post("/cache/good.test/refresh")).json()
                assert refreshed["mode"] == "enforce"
                metrics = (await http.get("/metrics")).text
                assert 'mtasts_socketmap_answers_total{kind="ok"} 1.0' in metrics
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
            assert await asyncio.wait_for(loop.sock_recv(sock, 100), 5) == b"STOPPING=1"
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            sock.close()


def _file_limit(soft: int, hard: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_daemon_under_a_low_open_files_limit_keeps_answering(tmp_path: Path) -> None:
    """defect: with a low RLIMIT_NOFILE, idle connections used up every descriptor and new
    lookups failed silently (uvloop closed them) until the idle timeout. Now the daemon
    raises the soft limit to the hard one, fits its connection cap under it, and closes
    the oldest idle connection to admit a new one; no traceback."""
    port = _free_port()
    async with running_lab(healthy_domain("good.test")) as lab:
        env = {**lab.env, "PYTHONPATH": str(SRC)}
        env = {**os.environ, **env}
        env.pop("MTASTS_CONFIG", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from mtasts.cli.main import main; main()", "daemon",
            "--listen", f"127.0.0.1:{port}", "--idle-timeout", "600",
            env=env, stderr=asyncio.subprocess.PIPE,
            preexec_fn=lambda: _file_limit(128, 256),
        )  # fmt: skip
        assert proc.stderr is not None
        idle: list[asyncio.StreamWriter] = []
        try:
            expected = "OK secure match=mx1.good.test servername=hostname protocols=>=TLSv1.2"
            for _ in range(100):
                try:
                    assert await _ask(port, "postfix good.test") == expected
                    break
                except OSError:
                    await asyncio.sleep(0.2)
            for _ in range(400):  # more than the 256 descriptors the daemon may hold
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                idle.append(writer)
            for _ in range(3):
                assert await _ask(port, "postfix good.test") == expected
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            stderr = (await proc.stderr.read()).decode()
        finally:
            for writer in idle:
                writer.close()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert "open_files=256 (hard 256)" in stderr
    assert stderr.count("max_connections lowered from 1000 to 192") == 1
    assert "Traceback" not in stderr


@pytest.mark.parametrize("how", ["--cache", "--pmsr-config"])
async def test_daemon_keeps_its_policies_in_postgresql(tmp_path: Path, how: str) -> None:
    """defect: `--cache postgresql://` (documented) ended in a traceback, and a pmsr file
    naming a postgres (or redis, sqlite) cache silently ran on memory: instead."""
    require_pg()
    import asyncpg

    schema = f"d_{os.getpid()}_{how.strip('-').replace('-', '_')}"
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    port = _free_port()
    if how == "--cache":
        args = ["--listen", f"127.0.0.1:{port}", "--cache", f"{PG_URL}?search_path={schema}"]
    else:
        pmsr = tmp_path / "mta-sts-daemon.yml"
        pmsr.write_text(
            f"host: 127.0.0.1\nport: {port}\ncache:\n  type: postgres\n  options:\n"
            f"    dsn: {PG_URL}\n    server_settings:\n      search_path: {schema}\n"
        )
        args = ["--pmsr-config", str(pmsr)]
    try:
        async with running_lab(healthy_domain("good.test")) as lab:
            env = {**os.environ, **lab.env, "PYTHONPATH": str(SRC)}
            env.pop("MTASTS_CONFIG", None)
            env.pop("MTASTS_CACHE", None)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from mtasts.cli.main import main; main()", "daemon",
                *args, env=env, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert proc.stderr is not None
            try:
                expected = "OK secure match=mx1.good.test servername=hostname protocols=>=TLSv1.2"
                for _ in range(100):
                    try:
                        assert await _ask(port, "postfix good.test") == expected
                        break
                    except OSError:
                        if proc.returncode is not None:
                            break
                        await asyncio.sleep(0.2)
                proc.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(proc.wait(), 30) == 0
                stderr = (await proc.stderr.read()).decode()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        assert "Traceback" not in stderr
        assert "cache=postgresql://" in stderr, stderr
        rows = await admin.fetch(f"SELECT domain FROM {schema}.mtasts_sts_policy_cache")
        assert [r["domain"] for r in rows] == ["good.test"]
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


def _failing_lab() -> Scenario:
    """good.test is healthy; the others publish a record but their policy is unusable."""
    fetch = healthy_domain("fetch.test", policy_host=PolicyHostSpec(status=500))
    webpki = healthy_domain("webpki.test", policy_host=PolicyHostSpec(cert="self-signed"))
    invalid = healthy_domain("invalid.test")
    (spec,) = invalid.domains
    invalid = replace(
        invalid,
        domains=(replace(spec, policy="version: STSv1\r\nmode: bogus\r\nmax_age: 86400\r\n"),),
    )
    none = healthy_domain("none.test", mode="none")
    return healthy_domain("good.test") + fetch + webpki + invalid + none


async def test_policy_failures_show_in_tlsrpt_reports(tmp_path: Path) -> None:
    """defect: the daemon reported nothing when a policy could not be used (RFC 8461 §6);
    now each such lookup is a failure session in the TLS-RPT store, with the right type."""
    store = f"sqlite:///{tmp_path / 'tlsrpt.db'}"
    port = _free_port()
    async with running_lab(_failing_lab()) as lab:
        env = {**os.environ, **lab.env, "PYTHONPATH": str(SRC), "MTASTS_TLSRPT_STORE": store}
        env.pop("MTASTS_CONFIG", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from mtasts.cli.main import main; main()", "daemon",
            "--listen", f"127.0.0.1:{port}", env=env, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stderr is not None
        try:
            for _ in range(100):
                try:
                    assert await _ask(port, "postfix good.test") == (
                        "OK secure match=mx1.good.test servername=hostname protocols=>=TLSv1.2"
                    )
                    break
                except OSError:
                    await asyncio.sleep(0.2)
            # each _ask is its own connection: Postfix delivery attempts, not one retried
            for domain, times in (("fetch.test", 3), ("webpki.test", 2), ("invalid.test", 1)):
                for _ in range(times):
                    assert await _ask(port, f"postfix {domain}") == "NOTFOUND "
            assert await _ask(port, "postfix none.test") == "NOTFOUND "
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            stderr = (await proc.stderr.read()).decode()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert "Traceback" not in stderr
    day = datetime.now(UTC).date().isoformat()
    reports = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from mtasts.cli.main import main; main()",
        "tlsrpt", "reports", "--day", day, "--store", store, "--json",
        "--organization", "Example", "--contact", "tlsrpt@sender.example",
        env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(reports.communicate(), 60)
    assert reports.returncode == 0
    seen = {}
    for report in orjson.loads(out):
        for p in report["policies"]:
            details = {d["result-type"]: d["failed-session-count"] for d in p["failure-details"]}
            seen[p["policy"]["policy-domain"]] = (
                p["policy"]["policy-type"],
                p["summary"]["total-successful-session-count"],
                p["summary"]["total-failure-session-count"],
                details,
            )
    assert seen == {
        "fetch.test": ("sts", 0, 3, {"sts-policy-fetch-error": 3}),
        "webpki.test": ("sts", 0, 2, {"sts-webpki-invalid": 2}),
        "invalid.test": ("sts", 0, 1, {"sts-policy-invalid": 1}),
    }


async def _run_daemon(
    lab_env: dict[str, str], port: int, extra: list[str], asks: list[tuple[str, str]]
) -> str:
    """Start the daemon, wait until it answers, ask ``asks`` (each on its own connection,
    each answered within 10 s), stop it with SIGTERM (exit 0); its stderr."""
    env = {**os.environ, **lab_env, "PYTHONPATH": str(SRC)}
    for name in ("MTASTS_CONFIG", "MTASTS_TLSRPT_STORE", "MTASTS_DAEMON_TLSRPT_SPOOL"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from mtasts.cli.main import main; main()", "daemon",
        "--listen", f"127.0.0.1:{port}", *extra, env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        good = "OK secure match=mx1.good.test servername=hostname protocols=>=TLSv1.2"
        for _ in range(100):
            try:
                assert await _ask(port, "postfix good.test") == good
                break
            except OSError:
                await asyncio.sleep(0.2)
        for request, answer in asks:
            started = asyncio.get_running_loop().time()
            assert await _ask(port, request) == answer
            assert asyncio.get_running_loop().time() - started < 10
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        return (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_tlsrpt_store_that_is_down_costs_no_lookup(tmp_path: Path) -> None:
    """The store is written in the background: with it unreachable, failed and healthy
    domains are answered as before, the daemon logs the outage without a traceback, and
    it still stops cleanly, saying how many sessions it could not write. With a spool
    they are kept there and the next start writes them to the store."""
    down = f"postgresql://postgres@127.0.0.1:{_free_port()}/test"
    good = "OK secure match=mx1.good.test servername=hostname protocols=>=TLSv1.2"
    asks = [("postfix fetch.test", "NOTFOUND "), ("postfix good.test", good)] * 3
    spool = tmp_path / "daemon.spool"
    async with running_lab(_failing_lab()) as lab:
        stderr = await _run_daemon(lab.env, _free_port(), ["--tlsrpt-store", down], asks)
        assert "Traceback" not in stderr
        assert "TLS-RPT store unavailable" in stderr
        assert "3 policy-failure sessions could not be written before exit" in stderr
        spooled = ["--tlsrpt-store", down, "--tlsrpt-spool", str(spool)]
        stderr = await _run_daemon(lab.env, _free_port(), spooled, asks)
        assert "3 policy-failure sessions written to the spool" in stderr
        assert spool.exists()
        store = f"sqlite:///{tmp_path / 'tlsrpt.db'}"
        replay = ["--tlsrpt-store", store, "--tlsrpt-spool", str(spool)]
        stderr = await _run_daemon(lab.env, _free_port(), replay, asks[:1])
        assert "Traceback" not in stderr
    assert not spool.exists()
    reader = TlsRptStore.open(store)
    try:
        got = await reader.load_day(datetime.now(UTC).date())
    finally:
        await reader.close()
    assert sum(got.failures.values()) == 3 + 1


async def test_a_second_stop_signal_does_not_cut_the_shutdown_short(tmp_path: Path) -> None:
    """SIGTERM, then SIGTERM and Ctrl-C again while a lookup is in flight: the daemon
    still waits out its shutdown grace for that request and exits 0. The signal handlers
    must outlive the wait for the first signal: without them the default action kills
    the process mid-shutdown (requests cut, failure counts neither stored nor spooled)."""
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a nameserver that never answers
    mute.bind(("127.0.0.1", 0))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "MTASTS_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from mtasts.cli.main import main; main()", "daemon",
        "--listen", f"127.0.0.1:{port}", "--metrics", "", "--no-dane",
        "--nameserver", f"127.0.0.1:{mute.getsockname()[1]}", "--shutdown-grace", "2",
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        while b"ready: socketmap" not in await asyncio.wait_for(proc.stderr.readline(), 20):
            pass
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(encode(b"postfix example.com"))
        await asyncio.sleep(0.5)  # the lookup waits for the mute nameserver
        proc.send_signal(signal.SIGTERM)
        while b"stopping" not in await asyncio.wait_for(proc.stderr.readline(), 20):
            pass
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        with contextlib.suppress(ConnectionError):  # cut at the end of the grace
            await reader.read()
        writer.close()
    finally:
        mute.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
