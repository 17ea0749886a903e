"""A real browser for the page tests: Debian's `chromium` package (installed here with
apt-get when missing, as `.ci/run` does), headless, driven by Playwright's async API.
Playwright never downloads a browser of its own: it starts /usr/bin/chromium.

    async with chromium() as browser:
        async with visit(browser, url) as seen:   # seen.page, seen.status, seen.requests
            ...
            keep_screenshot(await seen.page.screenshot(full_page=True), tmp_path, "name")
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

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
# Every test's screenshots are also copied here (ignored by git), one stable path each.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


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
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Visit:
    """A page as the browser loaded it: the document's status and every URL it asked for
    (the document's own first)."""

    page: Page
    status: int
    requests: list[str] = field(default_factory=list)


@asynccontextmanager
async def visit(browser: Browser, url: str) -> AsyncIterator[Visit]:
    """`url` opened in a fresh browser context (no cookies, no cache), closed afterwards."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        response = await page.goto(url)
        assert response is not None, f"no response for {url}"
        await page.wait_for_load_state("networkidle")
        yield Visit(page=page, status=response.status, requests=requests)
    finally:
        await context.close()


def keep_screenshot(png: bytes, output: Path, name: str) -> Path:
    """Write `png` as `<output>/<name>.png` (the test's own folder) and copy it to
    SCREENSHOTS, which outlives the test run; returns the test's copy."""
    path = output / f"{name}.png"
    path.write_bytes(png)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS / path.name)
    return path
