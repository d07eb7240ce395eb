"""A real browser for the portal's acceptance test: Debian's Chromium driven by Playwright,
axe-core for accessibility, screenshots at a phone's and a laptop's width.

Not a test module: ``tests/portal/test_browser.py`` uses it. Chromium is ``/usr/bin/chromium``
(Playwright's own download is never used), headless, without any of its background traffic.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Browser, Page, async_playwright

__all__ = ["CHROMIUM", "Recorder", "artifacts_dir", "chromium", "free_port", "leaks"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WIDTHS = ((360, 800), (1280, 900))  # a small phone, a laptop
BLOCKING = ("serious", "critical")  # axe impacts the pages may not have
REPO = Path(__file__).resolve().parents[2]
# read when the tests are collected: the suite's autouse fixture clears WEARABLES_* before each test
ARTIFACTS = os.environ.get("WEARABLES_TEST_ARTIFACTS")


def free_port() -> int:
    """A loopback port nobody listens on now (the portal's callback URL must be known before it starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def artifacts_dir(language: str) -> Path:
    """``$WEARABLES_TEST_ARTIFACTS/<language>``, else ``<repo>/var/test-artifacts/portal/<language>``; emptied."""
    root = Path(ARTIFACTS) if ARTIFACTS else REPO / "var" / "test-artifacts" / "portal"
    directory = root / language
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.png"):
        old.unlink()
    return directory


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium from Debian, closed afterwards."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Recorder:
    """Every page the browser visits: two screenshots, no sideways scrolling on a phone, axe's
    verdict, and (for our own pages) the HTML, for the leak scan."""

    directory: Path
    axe: Axe = field(default_factory=Axe)
    shots: list[Path] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)  # name → HTML (our pages only)
    problems: list[str] = field(default_factory=list)
    minor: list[str] = field(default_factory=list)  # axe's moderate and minor findings: reported, not failed
    visits: int = 0

    async def visit(self, page: Page, name: str, *, ours: bool = True) -> None:
        self.visits += 1
        number = self.visits
        for width, height in WIDTHS:
            await page.set_viewport_size({"width": width, "height": height})
            if width == WIDTHS[0][0]:
                fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                if not fits:
                    wide = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                    self.problems.append(f"{name}: scrolls sideways at {width} px (scrollWidth, innerWidth = {wide})")
            shot = self.directory / f"{number:02d}-{name}-{width}.png"
            await page.screenshot(path=str(shot), full_page=True)
            self.shots.append(shot)
        results = await self.axe.run(page)
        for violation in results.response["violations"]:
            targets = [node.get("target") for node in violation.get("nodes", [])]
            line = f"{name}: axe {violation['id']} ({violation['impact']}): {violation.get('help', '')} at {targets}"
            (self.problems if violation.get("impact") in BLOCKING else self.minor).append(line)
        if ours:
            self.pages[name] = await page.content()


def leaks(secrets: Iterable[str], places: Mapping[str, str | bytes]) -> list[str]:
    """``"<secret> in <place>"`` for every secret found in a place, as a whole word (an id inside
    a longer token of letters and digits is not it)."""
    found = []
    for secret in sorted(set(s for s in secrets if s)):
        pattern = re.compile(rb"(?<![0-9A-Za-z_-])" + re.escape(secret.encode()) + rb"(?![0-9A-Za-z_-])")
        for place, text in places.items():
            data = text.encode() if isinstance(text, str) else text
            if pattern.search(data):
                found.append(f"{secret!r} in {place}")
    return found
