"""Every page in the real Chromium (Debian's, through Selenium), JavaScript on: the
numbers on the page equal the store's, the charts draw (a non-empty canvas with the
expected series), filters and date ranges change them, links keep them in the URL, and
no Content-Security-Policy violation or script error appears. One browser for the
module; a 1280x800 screenshot of each page goes to build/screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from mtasts.tlsrpt.receive.summary import Counted

from .conftest import Served, make_driver, quit_driver, screenshot
from .seed import TODAY

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = make_driver()
    try:
        yield driver
    finally:
        quit_driver(driver)


def _load(browser: Any, url: str) -> None:
    browser.get(url)
    _charts_drawn(browser)


def _charts_drawn(browser: Any) -> None:
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script(
            "return !!window.Chart && Array.from(document.querySelectorAll("
            "'canvas[data-chart], canvas[data-spark]')).every(c => !!Chart.getChart(c))"
        )
    )


def _canvas(browser: Any, selector: str) -> dict[str, Any]:
    """Series of the chart on the canvas, and whether any pixel was drawn."""
    return browser.execute_script(  # type: ignore[no-any-return]
        """
        const c = document.querySelector(arguments[0]);
        const chart = Chart.getChart(c);
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
        return {series: chart.data.datasets.map(d => d.label || ''),
                data: chart.data.datasets.map(d => d.data),
                labels: chart.data.labels, painted: painted, width: c.width};
        """,
        selector,
    )


def _text(browser: Any, css: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, css).text)


def _table(browser: Any, css: str) -> dict[str, str]:
    out = {}
    for tr in browser.find_elements(By.CSS_SELECTOR, f"{css} tbody tr"):
        cells = tr.find_elements(By.CSS_SELECTOR, "td")
        out[cells[0].text] = cells[-1].text
    return out


def _num(text: str) -> int:
    return int(text.replace(",", ""))


def _no_console_errors(browser: Any) -> None:
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def _sum(days: list[Any]) -> Counted:
    total = Counted()
    for d in days:
        total += d.sessions
    return total


def test_overview(browser: Any, open_server: Served) -> None:
    _load(browser, open_server.url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#overview tbody tr")
    assert [r.get_attribute("data-domain") for r in rows] == ["good.test", "other.test"]
    for row in rows:
        domain = row.get_attribute("data-domain")
        for w in (7, 30, 90):
            c = _sum(open_server.store_days(domain, TODAY - timedelta(days=w - 1), TODAY))
            cell = row.find_element(By.CSS_SELECTOR, f"td[data-window='{w}']").text
            assert cell == f"{100 * c.successful / (c.successful + c.failed):.1f} %"
        c30 = _sum(open_server.store_days(domain, TODAY - timedelta(days=29), TODAY))
        assert _num(row.find_element(By.CSS_SELECTOR, "td.failed").text) == c30.failed
    spark = _canvas(browser, "tr[data-domain='good.test'] canvas.sparkline")
    assert len(spark["series"]) == 1
    assert len(spark["data"][0]) == 30
    assert spark["painted"] > 50
    assert "starttls-not-supported" in _text(browser, "tr[data-domain='good.test'] td.worst")
    check = _text(browser, "tr[data-domain='good.test'] td.check")
    assert check == "WARNING 2026-11-20 06:30 UTC (1 open condition)"
    assert _text(browser, "tr[data-domain='other.test'] td.check") == "-"
    screenshot(browser, "overview")
    _no_console_errors(browser)


def test_domain_page(browser: Any, open_server: Served) -> None:
    _load(browser, open_server.url + "/")
    browser.find_element(By.LINK_TEXT, "good.test").click()  # htmx-boosted navigation
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith("/domain/good.test"))
    _charts_drawn(browser)
    store = open_server.store_days("good.test", TODAY - timedelta(days=29), TODAY)
    c = _sum(store)
    assert _num(_text(browser, "#total-successful")) == c.successful
    assert _num(_text(browser, "#total-failed")) == c.failed
    chart = _canvas(browser, "#sessions-chart")
    assert chart["series"] == ["successful", "failed"]
    assert chart["painted"] > 1000
    assert len(chart["labels"]) == 30
    assert sum(chart["data"][0]) == c.successful
    assert sum(chart["data"][1]) == c.failed
    by_type: dict[str, int] = {}
    for d in store:
        for k, n in d.failures_by_result_type.items():
            by_type[k] = by_type.get(k, 0) + n
    assert {k: _num(v) for k, v in _table(browser, "#by-result").items()} == by_type
    failures = _canvas(browser, "#failures-chart")  # one series per result type
    assert sorted(failures["series"]) == sorted(by_type)
    assert failures["painted"] > 500
    assert {k: sum(v) for k, v in zip(failures["series"], failures["data"], strict=True)} == by_type
    # the charts say what the per-day table says: it is folded away
    assert browser.find_element(By.CSS_SELECTOR, "details.nojs-table").get_attribute("open") is None
    assert "mx2.good.test (198.51.100.2)" in _table(browser, "#by-mx")
    published = _text(browser, "#published")
    assert "mode: enforce" in published
    assert "mx: mx1.good.test" in published
    differs = browser.find_elements(By.CSS_SELECTOR, "#reported-policies tr.differs")
    assert len(differs) == 1
    assert "differs: mode" in differs[0].text
    assert "Yahoo" in differs[0].text
    stopped = browser.find_elements(By.CSS_SELECTOR, "#reporter-table tr.stopped")
    assert len(stopped) == 1
    assert "Microsoft Corporation" in stopped[0].text
    screenshot(browser, "domain")
    _no_console_errors(browser)


def test_filters_and_date_ranges_change_the_chart(browser: Any, open_server: Served) -> None:
    _load(browser, open_server.url + "/domain/good.test")
    browser.find_element(By.CSS_SELECTOR, "#by-result a[href*='certificate-expired']").click()
    WebDriverWait(browser, 10).until(lambda d: "result=certificate-expired" in d.current_url)
    _charts_drawn(browser)
    chart = _canvas(browser, "#sessions-chart")
    assert chart["series"] == ["successful", "failed (matching filters)"]
    assert sum(chart["data"][1]) == 45  # 3 a day on 15 days
    assert _num(_text(browser, "#failed-matching")) == 45
    assert list(_table(browser, "#by-result")) == ["certificate-expired"]
    assert _canvas(browser, "#failures-chart")["series"] == ["certificate-expired"]
    screenshot(browser, "domain-filtered")
    browser.find_element(By.CSS_SELECTOR, ".quick a.range-7").click()
    WebDriverWait(browser, 10).until(lambda d: "days=7" in d.current_url)
    _charts_drawn(browser)
    chart = _canvas(browser, "#sessions-chart")
    assert len(chart["labels"]) == 7
    assert chart["labels"][-1] == TODAY.isoformat()
    assert "result=certificate-expired" in browser.current_url  # the filter stays
    # the date inputs: a range of 3 days
    since = browser.find_element(By.NAME, "since")
    browser.execute_script("arguments[0].value = arguments[1]", since, "2026-11-01")
    until = browser.find_element(By.NAME, "until")
    browser.execute_script("arguments[0].value = arguments[1]", until, "2026-11-03")
    browser.find_element(By.CSS_SELECTOR, "#filters button").click()
    WebDriverWait(browser, 10).until(lambda d: "until=2026-11-03" in d.current_url)
    _charts_drawn(browser)
    chart = _canvas(browser, "#sessions-chart")
    assert chart["labels"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    browser.back()  # history: the previous range again
    WebDriverWait(browser, 10).until(lambda d: "days=7" in d.current_url)
    _no_console_errors(browser)


def test_reports_and_one_report(browser: Any, open_server: Served) -> None:
    _load(browser, open_server.url + "/reports")
    assert _text(browser, "#report-count") == "90 reports"
    rows = browser.find_elements(By.CSS_SELECTOR, "#report-table tbody tr")
    assert len(rows) == 50
    screenshot(browser, "reports")
    select = browser.find_element(By.NAME, "domain")
    select.find_element(By.CSS_SELECTOR, "option[value='other.test']").click()
    browser.find_element(By.CSS_SELECTOR, "#report-filters button").click()
    WebDriverWait(browser, 10).until(lambda d: "domain=other.test" in d.current_url)
    assert _text(browser, "#report-count") == "30 reports"
    browser.find_element(By.CSS_SELECTOR, "#report-table tbody tr a").click()
    WebDriverWait(browser, 10).until(lambda d: "/reports/" in d.current_url)
    raw = _text(browser, "#raw-json")
    assert '"organization-name": "Google Inc."' in raw
    assert '"policy-domain": "other.test"' in raw
    assert "https" in _text(browser, "#arrivals")
    screenshot(browser, "report")
    _no_console_errors(browser)
