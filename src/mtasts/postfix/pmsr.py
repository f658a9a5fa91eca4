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
| cache.type + options         | cache URL (memory:, sqlite:///, redis://, postgresql://) |
| cache_grace, reuse_port, proactive_policy_fetching | not needed: noted, ignored   |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mtasts.errors import ConfigError
from mtasts.postfix.config import DaemonConfig, Listen
from mtasts.postfix.socketmap import ReplyOptions

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


def _cache_url(cache: Any, notes: list[str]) -> str | None:
    if cache is None:
        return None
    if not isinstance(cache, Mapping):
        raise ConfigError("pmsr config: cache must be a mapping with 'type'")
    kind = cache.get("type", "internal")
    options = cache.get("options") or {}
    if not isinstance(options, Mapping):
        raise ConfigError("pmsr config: cache.options must be a mapping")
    used = {"internal": set(), "sqlite": {"filename"}, "redis": {"url"}, "postgres": {"dsn"}}
    for key in sorted(set(options) - used.get(kind, set(options))):
        hint = {
            "redis": "put credentials and the database in the URL "
            "(redis://:PASSWORD@HOST:6379/0); set [timeouts] for the rest",
            "postgres": "put connection parameters in the DSN",
        }.get(kind, "mtasts sizes and tunes its cache itself")
        notes.append(f"cache.options.{key}: not carried over; {hint}")
    if kind == "internal":
        return "memory:"
    if kind == "sqlite":
        filename = options.get("filename")
        if not filename:
            raise ConfigError("pmsr config: sqlite cache needs options.filename")
        target = Path(filename).with_suffix(".mtasts.db")
        notes.append(
            f"sqlite cache {filename}: pmsr's layout is not ours; mtasts uses {target} "
            "beside it (policies are fetched again once)"
        )
        return f"sqlite:///{target}"
    if kind == "redis":
        url = options.get("url")
        if not url:
            raise ConfigError("pmsr config: redis cache needs options.url")
        return str(url)
    if kind == "postgres":
        dsn = options.get("dsn")
        if not dsn:
            raise ConfigError("pmsr config: postgres cache needs options.dsn")
        return str(dsn)
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
        unix_mode=int(mode),
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
