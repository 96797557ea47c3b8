"""The app in a real browser: headless Debian chromium (driven by playwright) loads the page, asks a
question, waits for the answer, its evidence quote and its sources, and saves a screenshot.

`make test` installs both (playwright from the dev extra, `apt-get install chromium`); playwright's own
browser download is not used (no network for it here): the test launches /usr/bin/chromium.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_app import start_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    pytest.skip("playwright is not installed: `make test` installs it (pip install -e '.[dev]')", allow_module_level=True)
if not Path(CHROMIUM).is_file():
    pytest.skip("Debian chromium is not installed: `make test` installs it (apt-get install chromium)",
                allow_module_level=True)


@pytest.fixture
def app_url(home: Path, tiny_model_dir: Path, tmp_path: Path) -> Iterator[str]:
    yield from start_app(home, tiny_model_dir, tmp_path)


def test_the_page_answers_a_question_with_sources(app_url: str, tmp_path: Path) -> None:
    shot = tmp_path / "chat.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(app_url)
            page.locator("#question textarea").wait_for(timeout=60_000)  # the page is rendered
            strategy = page.locator("#strategy input")
            strategy.click()
            strategy.fill("rag")
            strategy.press("Enter")
            page.locator("#question textarea").fill("What was BETA's total revenue?")
            page.locator("#ask").click()
            expect(page.locator("#sources")).to_contain_text("reports-uploads:BETA_2022_10K", timeout=60_000,
                                                             use_inner_text=True)
            expect(page.locator("#notes")).to_contain_text("rag: requested", use_inner_text=True)
            expect(page.locator("#notes")).to_contain_text("Latency", use_inner_text=True)
            expect(page.locator("#chat")).to_contain_text("What was BETA's total revenue?", use_inner_text=True)
            # beside the answer, the evidence: the source's supporting sentence as a highlighted quote; the
            # same span marked in the source's snippet
            expect(page.locator("#evidence mark")).to_contain_text("BETA total revenue was $3.1 billion in 2022.",
                                                                   use_inner_text=True)
            expect(page.locator("#sources mark:visible").first).to_contain_text("BETA total revenue", use_inner_text=True)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    from PIL import Image

    assert shot.is_file() and shot.stat().st_size > 20_000
    with Image.open(shot) as img:
        assert img.width >= 1000 and img.height >= 800
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50  # a rendered page, not a blank
