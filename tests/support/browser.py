"""A real browser for the page tests: Debian's `chromium` package (installed here with
apt-get when missing, as tests/support/postgres.py does for PostgreSQL), headless, driven by
Playwright's async API. Playwright never downloads a browser of its own: it starts
/usr/bin/chromium.

    async with chromium() as browser:
        page = await (await browser.new_context()).new_page()
        ...
        keep_screenshot(await page.screenshot(full_page=True), tmp_path, "name")
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root in a sandboxed machine; the background-networking flags keep Chromium
# from calling out (its connections would be refused, many at a time, on a closed network).
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _install() -> None:
    """Debian's chromium, unless it is there already."""
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError("Chromium is not installed: `sudo apt-get install chromium`")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium, installed first if the machine has none."""
    _install()
    # Playwright's own browsers are never fetched (no internet here; we bring our own).
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def keep_screenshot(png: bytes, output: Path, name: str) -> Path:
    """Write `png` as `<output>/<name>.png` (the test's own folder); returns the path."""
    path = output / f"{name}.png"
    path.write_bytes(png)
    return path
