"""The [monitor] section in the settings tree: defaults, per-domain intervals, and one
clear error (file, line, key) per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtasts.errors import ConfigError
from mtasts.monitor.settings import MonitorSettings, Watched
from mtasts.settings.tree import load


def read(tmp_path: Path, text: str) -> MonitorSettings:
    path = tmp_path / "mtasts.toml"
    path.write_text(text, encoding="utf-8")
    return load(path, environ={}).section(MonitorSettings)


def test_defaults_and_values(tmp_path: Path) -> None:
    assert read(tmp_path, "") == MonitorSettings()
    s = read(
        tmp_path,
        """
[monitor]
domains = ["Example.COM.", "example.org"]
interval = 1800
intervals = { "example.org" = 600 }
jitter = 0
concurrency = 2
cert_days = [21, 7]
keep_days = 90
store = "sqlite:////tmp/x.db"
metrics = "127.0.0.1:9469"
""",
    )
    assert s.watched == (Watched("example.com", 1800), Watched("example.org", 600))
    assert (s.jitter, s.concurrency, s.cert_days, s.keep_days) == (0, 2, (21, 7), 90)
    assert (s.warning_days, s.critical_days) == (21, 7)
    assert s.metrics == ("127.0.0.1", 9469)


def test_environment(tmp_path: Path) -> None:
    path = tmp_path / "mtasts.toml"
    path.write_text("", encoding="utf-8")
    tree = load(path, environ={"MTASTS_MONITOR_STORE": "sqlite:////tmp/m.db"})
    assert tree.section(MonitorSettings).store == "sqlite:////tmp/m.db"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('domain = ["a.test"]', "domain"),  # defect: misspelt key
        ('domains = ["a.test", "A.test"]', "listed twice"),
        ('domains = ["-bad-.test"]', "domains"),  # defect: not a domain name
        ('domains = ["a.test"]\nintervals = { "b.test" = 600 }', "not one of the domains"),
        ('domains = ["a.test"]\nintervals = { "a.test" = 5 }', "at least 60"),
        ("interval = 10", "interval"),
        ("interval = true", "interval"),
        ("concurrency = 0", "concurrency"),
        ("cert_days = [7, 14]", "largest first"),
        ("cert_days = []", "largest first"),
        ("keep_days = 0", "keep_days"),
        ('metrics = "nowhere:x"', "metrics"),
    ],
)
def test_bad_settings(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        read(tmp_path, f"[monitor]\n{text}\n")
    assert fragment in str(err.value)
