"""Headless Chromium for the page tests: Debian's `chromium` and `chromium-driver`, driven by
Selenium with no download (the driver's path is given, so Selenium's own manager stays offline)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--no-first-run",
    # the machine has no network: these keep Chromium from trying, at every start
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install '.[test]')"
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            return f"{program} is not installed (Debian: apt-get install chromium chromium-driver; .ci/run does)"
    return None


def start_chromium(width: int = 1600, height: int = 1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium never looks for a driver online
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}", f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def open_page(driver, path: Path, timeout: float = 20.0) -> None:
    driver.get(Path(path).resolve().as_uri())
    wait_for(driver, lambda: driver.execute_script("return document.body.dataset.ready") == "1", timeout)


def wait_for(driver, condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not get there in {timeout} s; its console: {browser_log(driver)}")
        time.sleep(0.05)


def browser_log(driver) -> list:
    try:
        return driver.get_log("browser")
    except Exception:  # noqa: BLE001 - not every driver keeps a log
        return []


def drawn_position(driver) -> int | None:
    value = driver.execute_script("return document.body.dataset.drawn")
    return None if value is None else int(value)


def wait_until_drawn(driver, position: int) -> None:
    wait_for(driver, lambda: drawn_position(driver) == position)


def canvas_pixels(driver, canvas) -> np.ndarray:
    """A canvas's own pixels (not the zoomed screen), read back losslessly as PNG."""
    uri = driver.execute_script("return arguments[0].toDataURL('image/png')", canvas)
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
        return np.asarray(image.convert("RGB"))
