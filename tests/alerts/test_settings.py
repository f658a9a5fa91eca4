"""The [alerts] table: defaults, every key parsed, one clear ConfigError per bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mtasts.alerts.api import configured_settings
from mtasts.alerts.settings import RULES, AlertSettings, alert_settings
from mtasts.errors import ConfigError

EMAIL = {"relay": "smtp.example.com:587", "from": "m@example.com", "to": ["a@example.com"]}


def test_defaults() -> None:
    s = alert_settings({})
    assert s == AlertSettings()
    assert s.rules == frozenset(RULES)
    assert s.channels == ()


def test_every_key() -> None:
    s = alert_settings(
        {
            "domains": ["Example.COM.", "b.example"],
            "poll": 30,
            "daily_at": "7:05",
            "failure_rate": 0.1,
            "failure_min_sessions": 10,
            "failure_days": 1,
            "new_result_type_days": 3,
            "baseline_days": 20,
            "reporter_stopped_days": 2,
            "reporter_min_days": 4,
            "no_reports_days": 5,
            "rules": ["failure-rate", "no-reports"],
            "give_up_hours": 12,
            "email": {**EMAIL, "security": "tls", "username": "u", "password": "p", "timeout": 5},
            "webhook": {"url": "https://h.example/x", "headers": {"A": "b"}, "retries": 5},
            "apprise": {"urls": ["json://127.0.0.1:1/x"]},
        }
    )
    assert s.domains == {"example.com", "b.example"}
    assert s.daily_at == (7, 5)
    assert s.rules == {"failure-rate", "no-reports"}
    assert s.channels == ("email", "webhook", "apprise")
    assert s.email is not None
    assert s.email.relay == ("smtp.example.com", 587)
    assert s.email.security == "tls"
    assert s.email.timeout == 5.0
    assert s.webhook is not None
    assert s.webhook.headers == (("A", "b"),)
    assert alert_settings({"email": {**EMAIL, "relay": "[::1]:25"}}).email.relay == ("::1", 25)  # type: ignore[union-attr]
    assert alert_settings({"rules": []}).rules == frozenset()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"colour": "red"}, "unknown setting 'colour' in \\[alerts\\]"),
        ({"failure_rate": 1.5}, "failure_rate = 1.5: a fraction"),
        ({"failure_rate": True}, "failure_rate = True"),
        ({"failure_min_sessions": 0}, "at least 1"),
        ({"no_reports_days": "3"}, "no_reports_days = '3'"),
        ({"daily_at": "25:00"}, "HH:MM"),
        ({"poll": -1}, "positive"),
        ({"rules": ["failure-rates"]}, "'failure-rates': not a rule"),
        ({"domains": "example.com"}, "a list of strings"),
        ({"email": "smtp.example.com"}, "email must be a table"),
        ({"email": {"relay": "x:25", "from": "m@x"}}, "needs to"),
        ({"email": {**EMAIL, "to": []}}, "non-empty list"),
        ({"email": {**EMAIL, "to": ["not an address"]}}, "list of strings|e-mail addresses"),
        ({"email": {**EMAIL, "from": "nobody"}}, "one e-mail address"),
        ({"email": {**EMAIL, "relay": "h:99999"}}, "host:port"),
        ({"email": {**EMAIL, "security": "ssl"}}, "starttls, tls, none"),
        ({"email": {**EMAIL, "password": "p"}}, "username and a password go together"),
        ({"email": {**EMAIL, "username": "u", "password": "p", "password_file": "f"}}, "not both"),
        ({"email": {**EMAIL, "port": 25}}, "unknown setting 'port' in \\[alerts.email\\]"),
        ({"webhook": {"url": "ftp://x"}}, "http:// or https://"),
        ({"webhook": {"url": "https://x", "headers": {"A": 1}}}, "header names"),
        ({"webhook": {"url": "https://x", "retries": 0}}, "at least 1"),
        ({"apprise": {"urls": ["slack"]}}, "Apprise URLs"),
        ({"apprise": {"urls": []}}, "Apprise URLs"),
    ],
)
def test_bad_values_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        alert_settings(table)


def test_read_from_the_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "mtasts.toml"
    path.write_text(
        'ca_file = "/etc/ssl/ca.pem"\n[alerts]\nno_reports_days = 9\n'
        '[alerts.webhook]\nurl = "http://127.0.0.1:9/x"\n'
    )
    settings, ca = configured_settings(path)
    assert settings.no_reports_days == 9
    assert settings.channels == ("webhook",)
    assert ca == "/etc/ssl/ca.pem"
