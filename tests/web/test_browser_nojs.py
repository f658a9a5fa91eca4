"""The real Chromium with JavaScript disabled, against the multi-tenant server: the
tables, filters, date ranges and paging work as plain links and forms, and Basic
authentication decides which domains a person sees. One browser for the module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from .conftest import PASSWORD, Served, make_driver, quit_driver, screenshot

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = make_driver(javascript=False)
    try:
        yield driver
    finally:
        quit_driver(driver)


def _as(served: Served, user: str, path: str, password: str = PASSWORD) -> str:
    host = served.url.removeprefix("http://")
    return f"http://{user}:{quote(password, safe='')}@{host}{path}"


def _wait_url(browser: Any, part: str) -> None:
    WebDriverWait(browser, 15).until(
        lambda d: (
            part in d.current_url and d.execute_script("return document.readyState") == "complete"
        )
    )


def _rows(browser: Any, css: str) -> list[str]:
    return [r.text for r in browser.find_elements(By.CSS_SELECTOR, f"{css} tbody tr")]


def test_without_credentials_nothing_is_shown(browser: Any, tenant_server: Served) -> None:
    browser.get(tenant_server.url + "/domain/good.test")
    assert "good.test" not in browser.page_source
    browser.get(_as(tenant_server, "alice", "/", password="wrong"))
    assert "good.test" not in browser.page_source  # the 401 (Chromium's own prompt)


def test_a_tenant_sees_only_its_domains(browser: Any, tenant_server: Served) -> None:
    browser.get(_as(tenant_server, "alice", "/"))
    # the page's scripts really did not run (the driver's own injection still works)
    assert browser.execute_script("return typeof window.htmx + typeof window.Chart") == (
        "undefinedundefined"
    )
    assert [r.split()[0] for r in _rows(browser, "#overview")] == ["good.test"]
    # the sparkline's fallback: the worst day's failure rate (0.7 %: 9 of 1,259 sessions)
    spark = browser.find_element(By.CSS_SELECTOR, "td.spark").text
    assert spark == "at most 0.7 % a day"
    assert "alice" in browser.find_element(By.CSS_SELECTOR, ".who").text
    screenshot(browser, "overview-nojs-alice")
    browser.get(_as(tenant_server, "alice", "/domain/other.test"))
    assert "no reports for other.test" in browser.find_element(By.ID, "error").text
    browser.get(_as(tenant_server, "alice", "/reports"))
    assert browser.find_element(By.ID, "report-count").text == "60 reports"
    assert all("other.test" not in r for r in _rows(browser, "#report-table"))


def test_tables_filters_and_paging_without_javascript(browser: Any, tenant_server: Served) -> None:
    browser.get(_as(tenant_server, "admin", "/domain/good.test"))
    assert len(_rows(browser, "#by-result")) == 3
    # no chart without scripts: the per-day table is open instead
    assert browser.find_element(By.CSS_SELECTOR, "details.nojs-table").get_attribute("open")
    assert not browser.find_element(By.ID, "sessions-chart").is_displayed()
    assert len(_rows(browser, "#days")) == 30
    browser.find_element(By.CSS_SELECTOR, "#by-org a[href*='Yahoo']").click()
    _wait_url(browser, "org=Yahoo")
    assert browser.find_element(By.ID, "total-successful").text == "500"
    assert [r.split()[0] for r in _rows(browser, "#by-result")] == ["validation-failure"]
    since = browser.find_element(By.NAME, "since")
    since.clear()
    since.send_keys("11012026")  # the date input's own keyboard entry (mm/dd/yyyy)
    browser.find_element(By.CSS_SELECTOR, "#filters button").click()
    _wait_url(browser, "since=2026-11-01")
    assert "org=Yahoo" in browser.current_url
    assert len(_rows(browser, "#days")) == 20
    screenshot(browser, "domain-nojs")
    browser.get(_as(tenant_server, "admin", "/reports"))
    first = _rows(browser, "#report-table")
    browser.find_element(By.CSS_SELECTOR, ".pager a[rel=next]").click()
    _wait_url(browser, "page=2")
    second = _rows(browser, "#report-table")
    assert len(first) == 50
    assert len(second) == 40
    assert not set(first) & set(second)
