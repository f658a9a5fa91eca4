"""Layers: default < file < environment < option, key by key, with the origin of each;
unknown keys and bad values are one ConfigError naming origin, key and expectation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import ConfigError
from mtasts.settings.build import (
    DEFAULT,
    Layers,
    Origin,
    assemble,
    collect,
    collect_environment,
    fixed,
)
from mtasts.settings.registry import section_classes
from mtasts.settings.schema import env_name, setting, static_keys


@dataclass(frozen=True, slots=True)
class Zone:
    strict: bool = False
    tlsrpt: bool = False


@dataclass(frozen=True, slots=True)
class Inner:
    seconds: float = setting(5.0, above=0)
    token: str = setting("", secret=True)


@dataclass(frozen=True, slots=True)
class Sample:
    """A section for these tests."""

    port: int = setting(25, minimum=1, maximum=65535, env=("MTASTS_OLD_PORT",))
    names: tuple[str, ...] = ()
    inner: Inner = setting(default_factory=Inner)
    default_zone: Zone = setting(default_factory=Zone)
    zones: Mapping[str, Zone] = setting(default_factory=dict, inherit="default_zone")

    def __post_init__(self) -> None:
        if "bad" in self.names:
            raise ValueError("names must not hold 'bad'")


FILE = Origin("file", "t.toml:1")
PREFIX = ("sample",)


def build(
    file: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    option: Mapping[str, Any] | None = None,
) -> tuple[Sample, Layers]:
    layers = Layers()
    if file:
        collect(Sample, file, PREFIX, fixed(FILE), layers)
    collect_environment(Sample, PREFIX, env or {}, layers)
    if option:
        collect(Sample, option, PREFIX, fixed(Origin("option", "--x")), layers, text=True)
    value = assemble(Sample, layers, PREFIX)
    assert isinstance(value, Sample)
    return value, layers


def test_defaults_without_any_layer() -> None:
    value, layers = build()
    assert value == Sample()
    assert layers.values == {}


@given(
    file=st.none() | st.integers(1, 65535),
    env=st.none() | st.integers(1, 65535),
    option=st.none() | st.integers(1, 65535),
)
def test_the_last_layer_that_sets_a_key_wins(
    file: int | None, env: int | None, option: int | None
) -> None:
    value, layers = build(
        {"port": file} if file is not None else None,
        {"MTASTS_SAMPLE_PORT": str(env)} if env is not None else None,
        {"port": str(option)} if option is not None else None,
    )
    if option is not None:
        assert (value.port, layers.values[("sample", "port")][1].kind) == (option, "option")
    elif env is not None:
        assert (value.port, layers.values[("sample", "port")][1].kind) == (env, "environment")
    elif file is not None:
        assert (value.port, layers.values[("sample", "port")][1]) == (file, FILE)
    else:
        assert value.port == 25
        assert ("sample", "port") not in layers.values


def test_environment_rule_alias_and_which_wins() -> None:
    assert build(env={"MTASTS_OLD_PORT": "26"})[0].port == 26
    both = {"MTASTS_OLD_PORT": "26", "MTASTS_SAMPLE_PORT": "27"}
    assert build(env=both)[0].port == 27  # the rule's name wins over the alias
    assert build(env={"MTASTS_SAMPLE_PORT": ""})[0].port == 25  # empty = not set
    value, layers = build(env={"MTASTS_SAMPLE_INNER_SECONDS": "2.5"})
    assert value.inner.seconds == 2.5
    assert layers.values[("sample", "inner", "seconds")][1] == Origin(
        "environment", "MTASTS_SAMPLE_INNER_SECONDS"
    )


def test_named_tables_start_from_the_table_they_inherit() -> None:
    value, _ = build({"default_zone": {"tlsrpt": True}, "zones": {"a": {"strict": True}, "b": {}}})
    assert value.zones == {"a": Zone(strict=True, tlsrpt=True), "b": Zone(tlsrpt=True)}
    # the environment sets the named tables as a TOML inline table, merged with the file's
    value, _ = build({"zones": {"a": {}}}, env={"MTASTS_SAMPLE_ZONES": "{ c = { strict = true } }"})
    assert value.zones == {"a": Zone(), "c": Zone(strict=True)}


BAD: list[tuple[dict[str, Any], dict[str, str], str]] = [
    # (file table, environment, words the error must hold)
    ({"prot": 1}, {}, "t.toml:1: unknown setting 'prot' in [sample]; known: port"),  # typo
    ({"inner": {"secs": 1}}, {}, "unknown setting 'secs' in [sample.inner]"),  # nested typo
    ({"port": 0}, {}, "t.toml:1: sample.port = 0: expected a whole number >= 1"),  # bound
    ({"inner": 5}, {}, "sample.inner = 5: expected a table"),  # a value for a table
    ({"zones": {"a": 1}}, {}, "sample.zones.a = 1: expected a table"),  # an entry not a table
    ({"zones": {"a": {"x": 1}}}, {}, "unknown setting 'x' in [sample.zones.a]"),  # entry typo
    ({}, {"MTASTS_SAMPLE_PORT": "smtp"}, "environment MTASTS_SAMPLE_PORT: sample.port = 'smtp'"),
    ({}, {"MTASTS_SAMPLE_ZONES": "{ a = "}, "expected a table of tables"),  # broken TOML
    ({"names": ["bad"]}, {}, "t.toml:1: [sample]: names must not hold 'bad'"),  # __post_init__
    # a secret is never repeated in an error
    ({"inner": {"token": 5}}, {}, "sample.inner.token = '***': expected a string"),
]


@pytest.mark.parametrize(("file", "env", "words"), BAD)
def test_mistakes_are_one_config_error(
    file: dict[str, Any], env: dict[str, str], words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build(file, env)
    assert words in str(caught.value)


def test_origins_print_where_the_value_came_from() -> None:
    assert str(FILE) == "t.toml:1"
    assert str(Origin("environment", "MTASTS_X")) == "environment MTASTS_X"
    assert str(Origin("option", "--relay")) == "option --relay"
    assert str(DEFAULT) == "default"


def test_every_key_of_every_section_has_its_own_variable() -> None:
    """Two keys must never map to one MTASTS_* name (e.g. [a] b_c and [a.b] c)."""
    seen: dict[str, tuple[str, ...]] = {}
    for name, cls in section_classes().items():
        for key, f in static_keys(cls, (name,) if name else ()):
            for var in (env_name(key), *f.meta.env):
                assert var not in seen, f"{var}: {seen.get(var)} and {key}"
                seen[var] = key
    # the names documented before the rule still work
    for var in (
        "MTASTS_CACHE",
        "MTASTS_TIMEOUT_DNS",
        "MTASTS_TLSRPT_STORE",
        "MTASTS_TLSRPT_FROM",
        "MTASTS_TLSRPT_SOCKET",
        "MTASTS_TLSRPT_DKIM_KEY",
        "MTASTS_SERVE_LISTEN",
        "MTASTS_DAEMON_TLSRPT_SPOOL",
        "MTASTS_NAMESERVER",
    ):
        assert var in seen


def test_every_registered_section_is_a_frozen_dataclass_with_defaults() -> None:
    for cls in section_classes().values():
        instance = cls()
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert instance == cls()
