"""The [alerts] section (registered in the settings tree): defaults, every key parsed,
one clear ConfigError per bad key, read from mtasts.toml and the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mtasts.alerts.api import configured_settings
from mtasts.alerts.settings import RULES, AlertSettings, alert_settings
from mtasts.errors import ConfigError
from mtasts.settings.tree import load

EMAIL = {"relay": "smtp.example.com:587", "sender": "m@example.com", "to": ["a@example.com"]}


def test_defaults() -> None:
    s = alert_settings({})
    assert s == AlertSettings()
    assert s.rules == frozenset(RULES)
    assert s.channels == ()
    assert s.daily_time == (6, 0)


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
    assert s.daily_time == (7, 5)
    assert s.rules == {"failure-rate", "no-reports"}
    assert s.channels == ("email", "webhook", "apprise")
    assert s.email.relay == ("smtp.example.com", 587)
    assert s.email.security == "tls"
    assert s.email.timeout == 5.0
    assert s.webhook.headers == {"A": "b"}
    assert alert_settings({"email": {**EMAIL, "relay": "[::1]:25"}}).email.relay == ("::1", 25)
    assert alert_settings({"email": {**EMAIL, "relay": "smtp.example.com"}}).email.relay.port == 25
    assert alert_settings({"rules": []}).rules == frozenset()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"colour": "red"}, "colour"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"failure_rate": True}, "failure_rate"),
        ({"failure_min_sessions": 0}, "failure_min_sessions"),
        ({"no_reports_days": "x"}, "no_reports_days"),
        ({"daily_at": "25:00"}, "HH:MM"),
        ({"poll": -1}, "poll"),
        ({"rules": ["failure-rates"]}, "'failure-rates' is not a rule"),
        ({"email": "smtp.example.com"}, "email"),
        ({"email": {"relay": "x:25", "to": ["a@x.example"]}}, "sender"),
        ({"email": {**EMAIL, "to": ["not an address"]}}, "not an e-mail address"),
        ({"email": {**EMAIL, "sender": "nobody"}}, "one e-mail address"),
        ({"email": {**EMAIL, "relay": "h:99999"}}, "relay"),
        ({"email": {**EMAIL, "security": "ssl"}}, "security"),
        ({"email": {**EMAIL, "password": "p"}}, "username and a password go together"),
        ({"email": {**EMAIL, "username": "u", "password": "p", "password_file": "f"}}, "not both"),
        ({"email": {**EMAIL, "port": 25}}, "port"),
        ({"webhook": {"url": "ftp://x"}}, "http:// or https://"),
        ({"webhook": {"url": "https://x", "headers": {"A": "b\nc"}}}, "line breaks"),
        ({"webhook": {"url": "https://x", "retries": 0}}, "retries"),
        ({"apprise": {"urls": ["slack"]}}, "scheme://"),
    ],
)
def test_bad_values_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        alert_settings(table)


def test_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "mtasts.toml"
    path.write_text(
        'ca_file = "/etc/ssl/ca.pem"\n[alerts]\nno_reports_days = 9\n'
        '[alerts.webhook]\nurl = "http://127.0.0.1:9/x"\n'
    )
    settings, ca = configured_settings(path)
    assert settings.no_reports_days == 9
    assert settings.channels == ("webhook",)
    assert ca == "/etc/ssl/ca.pem"
    tree = load(path, environ={"MTASTS_ALERTS_NO_REPORTS_DAYS": "4"})
    assert tree.section(AlertSettings).no_reports_days == 4


def test_a_mistake_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "mtasts.toml"
    path.write_text("[alerts]\npoll = 60\nfailure_rate = 2\n")
    with pytest.raises(ConfigError, match=r"mtasts.toml:3: alerts.failure_rate = 2"):
        load(path, environ={})
