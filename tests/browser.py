"""Headless Debian Chromium for the browser tests and the UI benchmark (never a downloaded browser)."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Off-network flags: without them Chromium keeps trying hosts this machine cannot reach.
ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--window-size=1280,900",
)  # fmt: skip


def start_chromium(profile: Path, *, performance_log: bool = False, extension: Path | None = None) -> webdriver.Chrome:
    """A fresh browser with its own profile directory (its own storage and identity); with
    ``extension``, that unpacked extension loaded (the new headless mode runs extensions)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    loads = [f"--load-extension={extension}", f"--disable-extensions-except={extension}"] if extension else []
    for arg in (*ARGS, f"--user-data-dir={profile}", *loads):
        options.add_argument(arg)
    if performance_log:  # lets a benchmark read WebSocket frames from the DevTools log
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    return driver
