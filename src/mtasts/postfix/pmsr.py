"""Read postfix-mta-sts-resolver's ``/etc/mta-sts-daemon.yml``: switch to mtasts in one step.

The mapping (pmsr 1.5.1 option -> ours) is :func:`from_pmsr`, pure and table-tested; only
:func:`load_pmsr_file` reads YAML, and it needs PyYAML, which mtasts does not depend on.

| pmsr                         | mtasts                                             |
|------------------------------|----------------------------------------------------|
| host, port / path, mode      | [daemon] listen, unix_mode                         |
| shutdown_timeout             | [daemon] shutdown_grace                            |
| zones.*.require_sni          | zone servername (unset: pmsr's default, not default_zone's) |
| zones.*.tlsrpt               | zone tlsrpt                                        |
| zones.*.strict_testing       | zone strict_testing                                |
| zones.*.timeout              | resolver fetch timeout (default zone's only)       |
| cache.type + options         | cache URL carrying every option (see :func:`_cache_url`) |
| cache_grace, reuse_port, proactive_policy_fetching | not needed: noted, ignored   |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from mtasts.errors import ConfigError
from mtasts.postfix.config import DaemonConfig, Listen
from mtasts.postfix.socketmap import ReplyOptions
from mtasts.settings.types import OctalMode

_KNOWN = {
    "host",
    "port",
    "path",
    "mode",
    "reuse_port",
    "cache_grace",
    "shutdown_timeout",
    "cache",
    "proactive_policy_fetching",
    "default_zone",
    "zones",
}
_ZONE_KEYS = {"strict_testing", "timeout", "require_sni", "tlsrpt"}


@dataclass(frozen=True, slots=True)
class PmsrImport:
    """What a pmsr configuration means for mtasts, plus notes for the operator."""

    daemon: DaemonConfig
    cache_url: str | None
    fetch_timeout: float | None
    notes: tuple[str, ...]


def _zone(data: Any, where: str, notes: list[str], base: ReplyOptions) -> ReplyOptions:
    if data is None:
        return base
    if not isinstance(data, Mapping):
        raise ConfigError(f"pmsr config: {where} must be a mapping")
    for key in sorted(set(data) - _ZONE_KEYS):
        notes.append(f"{where}.{key}: not a pmsr zone option; ignored")
    return ReplyOptions(
        servername=bool(data.get("require_sni", base.servername)),
        tlsrpt=bool(data.get("tlsrpt", base.tlsrpt)),
        strict_testing=bool(data.get("strict_testing", base.strict_testing)),
        dane_level=base.dane_level,
    )


# redis-py (>= 5) options that its URL parser reads from the query string, typed
_REDIS_URL_TYPED = frozenset(
    {
        "socket_timeout",
        "socket_connect_timeout",
        "socket_read_size",
        "socket_keepalive",
        "retry_on_timeout",
        "max_connections",
        "health_check_interval",
        "ssl_check_hostname",
        "ssl_min_version",
        "timeout",
        "protocol",
    }
)
# redis-py connection options whose value is a string: passed through the query as is
_REDIS_URL_STRINGS = frozenset(
    {
        "client_name",
        "ssl_keyfile",
        "ssl_certfile",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "encoding",
        "encoding_errors",
    }
)
# asyncpg pool / connection options that mtasts' PostgreSQL cache URL takes in its query
# (the same names as mtasts.sts.cache.postgres.POOL_OPTIONS; a test keeps them equal)
PG_POOL_OPTIONS = frozenset(
    {
        "min_size",
        "max_size",
        "max_queries",
        "max_inactive_connection_lifetime",
        "timeout",
        "command_timeout",
        "statement_cache_size",
        "max_cached_statement_lifetime",
        "max_cacheable_statement_size",
    }
)
# asyncpg.connect() keywords that are libpq DSN parameters of the same name
_PG_DSN_PARAMS = frozenset(
    {"passfile", "target_session_attrs", "krbsrvname", "gsslib", "service", "servicefile"}
)
_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


def _scalar(kind: str, key: str, value: Any) -> str:
    """An option value as URL text; a list or mapping cannot be carried (ConfigError)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ConfigError(
        f"pmsr config: cache.options.{key} of the {kind} cache is a "
        f"{type(value).__name__}; mtasts cannot carry it over: remove it or set the "
        "equivalent in [cache] url"
    )


def _refuse(kind: str, key: str, hint: str) -> ConfigError:
    return ConfigError(
        f"pmsr config: cache.options.{key} of the {kind} cache cannot be carried over to "
        f"mtasts ({hint}); remove it, or write [cache] url in mtasts.toml instead"
    )


def _with_query(url: str, params: list[tuple[str, str]]) -> str:
    if not params:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit(parts._replace(query=urlencode(query)))


def _with_login(url: str, user: Any, password: Any) -> str:
    """``url`` with the user and/or password of its netloc replaced (percent-encoded)."""
    if user is None and password is None:
        return url
    parts = urlsplit(url)
    name = quote(str(user), safe="") if user is not None else quote(parts.username or "", safe="")
    secret = password if password is not None else parts.password
    login = name + (":" + quote(str(secret), safe="") if secret is not None else "")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{login}@{host}"))


def _redis_url(options: Mapping[str, Any], notes: list[str]) -> str:
    """pmsr passes every option to ``redis.asyncio.from_url(url, **options)``; mtasts reads
    them from the URL (redis-py's own URL syntax), so each one goes into it."""
    url = options.get("url")
    if not url or not isinstance(url, str):
        raise ConfigError("pmsr config: redis cache needs options.url")
    url = _with_login(url, options.get("username"), options.get("password"))
    if "db" in options:
        db = options["db"]
        if isinstance(db, bool) or not isinstance(db, int) or db < 0:
            raise ConfigError(f"pmsr config: cache.options.db must be a number, not {db!r}")
        url = urlunsplit(urlsplit(url)._replace(path=f"/{db}"))
    query: list[tuple[str, str]] = []
    for key in sorted(set(options) - {"url", "username", "password", "db"}):
        value = options[key]
        if key in _REDIS_URL_TYPED:
            query.append((key, _scalar("redis", key, value)))
        elif key in _REDIS_URL_STRINGS and isinstance(value, str):
            query.append((key, value))
        elif key == "decode_responses":
            notes.append(
                "cache.options.decode_responses: not needed (mtasts reads its entries "
                "either way); ignored"
            )
        else:
            raise _refuse("redis", key, "not an option redis-py reads from a URL")
    return _with_query(url, query)


def _postgres_url(options: Mapping[str, Any]) -> str:
    """pmsr passes ``dsn`` and the rest to ``asyncpg.create_pool``; mtasts' PostgreSQL cache
    takes the same pool options in its URL's query, and connection options as DSN."""
    dsn = options.get("dsn")
    if not dsn or not isinstance(dsn, str):
        raise ConfigError("pmsr config: postgres cache needs options.dsn")
    url = _with_login(dsn, options.get("user"), options.get("password"))
    parts = urlsplit(url)
    if "host" in options or "port" in options:
        login, _, hostport = parts.netloc.rpartition("@")
        host = str(options.get("host", parts.hostname or ""))
        port = options.get("port", parts.port)
        hostport = host + (f":{int(port)}" if port is not None else "")
        parts = parts._replace(netloc=f"{login}@{hostport}" if login else hostport)
    if "database" in options:
        parts = parts._replace(path="/" + quote(str(options["database"]), safe=""))
    query: list[tuple[str, str]] = []
    for key in sorted(set(options) - {"dsn", "user", "password", "host", "port", "database"}):
        value = options[key]
        if key in PG_POOL_OPTIONS or key in _PG_DSN_PARAMS:
            query.append((key, _scalar("postgres", key, value)))
        elif key == "ssl":
            if isinstance(value, bool):
                query.append(("sslmode", "require" if value else "disable"))
            elif isinstance(value, str) and value in _SSLMODES:
                query.append(("sslmode", value))
            else:
                raise _refuse("postgres", key, "only true, false or a libpq sslmode name")
        elif key == "server_settings":
            if not isinstance(value, Mapping):
                raise ConfigError("pmsr config: cache.options.server_settings must be a mapping")
            query += [
                (str(k), _scalar("postgres", f"server_settings.{k}", v)) for k, v in value.items()
            ]
        else:
            raise _refuse("postgres", key, "not a connection or pool setting mtasts takes")
    return _with_query(urlunsplit(parts), query)


def _cache_url(cache: Any, notes: list[str]) -> str | None:
    """The cache URL carrying every pmsr cache option; ConfigError for one that cannot be.

    internal ``cache_size`` -> ``memory:?max_entries=N``; sqlite ``timeout`` ->
    ``sqlite:///...?timeout=S`` (``threads`` is not needed); redis: every option goes into
    the URL in redis-py's own syntax; postgres: host/port/user/password/database into the
    DSN, ``ssl`` as ``sslmode``, ``server_settings`` and libpq parameters as DSN query,
    pool options (``min_size``, ``timeout``, ...) as the cache URL's query. Anything else
    (a Python object, an option with no URL form) refuses to start, naming it.
    """
    if cache is None:
        return None
    if not isinstance(cache, Mapping):
        raise ConfigError("pmsr config: cache must be a mapping with 'type'")
    kind = cache.get("type", "internal")
    options = cache.get("options") or {}
    if not isinstance(options, Mapping):
        raise ConfigError("pmsr config: cache.options must be a mapping")
    if kind == "internal":
        for key in sorted(set(options) - {"cache_size"}):
            raise _refuse("internal", key, "the internal cache takes only cache_size")
        size = options.get("cache_size", 10000)  # pmsr's default
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"pmsr config: cache.options.cache_size must be >= 1, not {size!r}")
        return f"memory:?max_entries={size}"
    if kind == "sqlite":
        for key in sorted(set(options) - {"filename", "timeout", "threads"}):
            raise _refuse("sqlite", key, "the sqlite cache takes filename, threads, timeout")
        filename = options.get("filename")
        if not filename:
            raise ConfigError("pmsr config: sqlite cache needs options.filename")
        target = Path(filename).with_suffix(".mtasts.db")
        notes.append(
            f"sqlite cache {filename}: pmsr's layout is not ours; mtasts uses {target} "
            "beside it (policies are fetched again once)"
        )
        if "threads" in options:
            notes.append(
                "cache.options.threads: not needed (mtasts uses one SQLite connection on "
                "its own thread); ignored"
            )
        url = f"sqlite:///{target}"
        if "timeout" in options:
            url += "?timeout=" + _scalar("sqlite", "timeout", options["timeout"])
        return url
    if kind == "redis":
        return _redis_url(options, notes)
    if kind == "postgres":
        return _postgres_url(options)
    if kind == "redis_sentinel":
        raise ConfigError(
            "pmsr config: redis_sentinel caches are not supported; use a redis:// URL"
        )
    raise ConfigError(f"pmsr config: unknown cache type {kind!r}")


def from_pmsr(data: Mapping[str, Any]) -> PmsrImport:
    """Translate a parsed pmsr YAML document (defaults as in pmsr 1.5.1's defaults.py)."""
    if not isinstance(data, Mapping):
        raise ConfigError("pmsr config: the file must hold a YAML mapping")
    notes: list[str] = []
    for key in sorted(set(data) - _KNOWN):
        notes.append(f"{key}: not a pmsr option; ignored")
    if data.get("path"):
        listen = Listen(path=str(data["path"]))
        if not listen.path.startswith("/"):
            raise ConfigError("pmsr config: path must be absolute")
    else:
        listen = Listen(host=str(data.get("host", "127.0.0.1")), port=int(data.get("port", 8461)))
    mode = data.get("mode", 0o666)
    if isinstance(mode, str):  # quoted in YAML: "0666"
        mode = int(mode, 8)
    for key, why in (
        ("cache_grace", "mtasts re-checks the TXT id by its own refresh rules (RFC 8461 §5.1)"),
        ("reuse_port", "one listener per address"),
        ("proactive_policy_fetching", "mtasts refreshes cached policies on its own"),
    ):
        if key in data:
            notes.append(f"{key}: ignored ({why})")
    default_zone = _zone(data.get("default_zone"), "default_zone", notes, ReplyOptions())
    zones_data = data.get("zones") or {}
    if not isinstance(zones_data, Mapping):
        raise ConfigError("pmsr config: zones must be a mapping of name -> zone")
    # pmsr fills every zone, default_zone included, from its built-in defaults
    # (utils.populate_cfg_defaults): a named zone does not inherit default_zone's options
    zones = {
        str(name): _zone(z, f"zones.{name}", notes, ReplyOptions())
        for name, z in zones_data.items()
    }
    timeout = (data.get("default_zone") or {}).get("timeout")
    for name, z in zones_data.items():
        if isinstance(z, Mapping) and "timeout" in z and z["timeout"] != timeout:
            notes.append(
                f"zones.{name}.timeout: one fetch timeout for all zones; using the default"
            )
    daemon = replace(
        DaemonConfig(),
        listen=(listen,),
        unix_mode=OctalMode(int(mode)),
        shutdown_grace=float(data.get("shutdown_timeout", 20)),
        default_zone=default_zone,
        zones=zones,
    )
    return PmsrImport(
        daemon=daemon,
        cache_url=_cache_url(data.get("cache"), notes),
        fetch_timeout=float(timeout) if timeout is not None else None,
        notes=tuple(notes),
    )


def load_pmsr_file(path: str | Path) -> PmsrImport:
    """Read and translate a pmsr YAML file."""
    import yaml  # imported here: only the migration path needs it

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read pmsr config {path}: {exc}") from None
    return from_pmsr(data or {})
