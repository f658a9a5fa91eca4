"""The [monitor] table: defaults, per-domain intervals, and one clear error per bad key."""

from __future__ import annotations

from typing import Any

import pytest

from mtasts.errors import ConfigError
from mtasts.monitor.settings import MonitorSettings, Watched, monitor_settings


def test_defaults_and_values() -> None:
    assert monitor_settings({}) == MonitorSettings()
    s = monitor_settings(
        {
            "domains": ["Example.COM.", {"name": "example.org", "interval": 600}],
            "interval": 1800,
            "jitter": 0,
            "concurrency": 2,
            "cert_days": [21, 7],
            "keep_days": 90,
            "store": "sqlite:////tmp/x.db",
            "metrics": "127.0.0.1:9469",
        }
    )
    assert s.domains == (Watched("example.com", 1800), Watched("example.org", 600))
    assert (s.jitter, s.concurrency, s.cert_days, s.keep_days) == (0, 2, (21, 7), 90)
    assert (s.warning_days, s.critical_days) == (21, 7)
    assert s.metrics == ("127.0.0.1", 9469)


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"domain": ["a.test"]}, "unknown setting 'domain'"),  # defect: misspelt key
        ({"domains": "a.test"}, "a list"),  # defect: not a list
        ({"domains": ["a.test", "A.test"]}, "listed twice"),
        ({"domains": ["-bad-.test"]}, "domains"),  # defect: not a domain name
        ({"domains": [{"name": "a.test", "every": 5}]}, "interval = N"),  # defect: unknown key
        ({"domains": [{"name": "a.test", "interval": 5}]}, "at least 60"),
        ({"interval": 10}, "at least 60"),
        ({"interval": True}, "whole number"),
        ({"concurrency": 0}, "at least 1"),
        ({"cert_days": [7, 14]}, "largest first"),
        ({"cert_days": []}, "largest first"),
        ({"keep_days": 0}, "at least 1"),
        ({"store": ""}, "store URL"),
        ({"metrics": "nowhere"}, "host:port"),
    ],
)
def test_bad_settings(table: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        monitor_settings(table)
    assert fragment in str(err.value)
