"""A real browser for the console's tests: Debian's headless Chromium driven by Selenium.

    from browser import browser, screenshot, phone, wait_text, assert_clean

Nothing is downloaded: the driver is ``/usr/bin/chromedriver`` given explicitly and
``SE_OFFLINE=true`` keeps Selenium Manager off the network. Without Chromium the tests skip,
except under CI (``CI`` set), where a missing browser fails: CI must not skip them silently.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: Screenshots go here, at the repository's root (ignored by git).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
DESKTOP = (1280, 800)
PHONE = (390, 844)


def missing() -> str | None:
    """Why no browser can be started here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


def start_chromium(profile: Path) -> WebDriver:
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic",
                f"--user-data-dir={profile}", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for a test module, with a fresh profile."""
    reason = missing()
    if reason is not None:
        if "CI" in os.environ:
            pytest.fail(f"CI is set and the browser tests cannot run: {reason}")
        pytest.skip(reason)
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    driver = start_chromium(profile)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: WebDriver, name: str) -> Path:
    """A full-page PNG ``test-artifacts/console/<name>.png``: the window is stretched to the
    document's height for the shot, then given its size back."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = driver.get_window_size()
    try:
        for _ in range(4):  # the window's frame and bars take some height: measure, grow again
            height, inner = driver.execute_script(
                "return [Math.max(document.documentElement.scrollHeight,"
                " document.body.scrollHeight), document.documentElement.clientHeight];")
            if height <= inner:
                break
            current = driver.get_window_size()
            driver.set_window_size(size["width"], current["height"] + int(height) - int(inner))
        time.sleep(0.2)
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


@contextlib.contextmanager
def phone(driver: WebDriver) -> Iterator[WebDriver]:
    """The window at a phone's width and height (390x844) inside the block."""
    size = driver.get_window_size()
    driver.set_window_size(*PHONE)
    try:
        yield driver
    finally:
        driver.set_window_size(size["width"], size["height"])


def wait_text(driver: WebDriver, css: str, text: str, timeout: float = 10.0) -> Any:
    """The first element matching ``css`` whose text holds ``text``, waited for."""
    def found(d: WebDriver) -> Any:
        for element in d.find_elements(By.CSS_SELECTOR, css):
            with contextlib.suppress(Exception):
                if text in element.text:
                    return element
        return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(found)
    except Exception as exc:
        shown = [e.text[:200] for e in driver.find_elements(By.CSS_SELECTOR, css)]
        page = [e.text[:600] for e in driver.find_elements(By.TAG_NAME, "main")]
        raise AssertionError(f"no {css!r} with {text!r} within {timeout}s; found {shown!r} "
                             f"at {driver.current_url}; the page says {page!r}") from exc


def wait_for_page(driver: WebDriver, timeout: float = 30.0) -> None:
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def no_alert(driver: WebDriver) -> None:
    try:
        alert = driver.switch_to.alert
    except NoAlertPresentException:
        return
    text = alert.text
    alert.dismiss()
    raise AssertionError(f"a JavaScript alert is open: {text!r}")


def severe_logs(driver: WebDriver) -> list[str]:
    """The browser console's SEVERE entries since the last call (favicon 404s left out)."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry.get("level") == "SEVERE" and "favicon.ico" not in entry["message"]]


def expect_status(driver: WebDriver, status: int) -> None:
    """Chromium logs a page answered with an error status (a form sent back with its problems,
    400 or 401) as SEVERE: take those entries, and only those, out of the log."""
    unexpected = [m for m in severe_logs(driver)
                  if f"the server responded with a status of {status}" not in m]
    assert not unexpected, f"browser console errors at {driver.current_url}: {unexpected}"


def assert_clean(driver: WebDriver) -> None:
    """No alert open, nothing SEVERE in the browser console."""
    no_alert(driver)
    errors = severe_logs(driver)
    assert not errors, f"browser console errors at {driver.current_url}: {errors}"


__all__ = ["ARTIFACTS", "DESKTOP", "PHONE", "assert_clean", "browser", "expect_status",
           "missing", "no_alert", "phone", "screenshot", "severe_logs", "start_chromium",
           "wait_for_page", "wait_text"]
