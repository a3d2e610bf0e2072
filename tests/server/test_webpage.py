"""The web page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): enter the
token, upload two videos, pick a metric, run, see the results table and the report; a screenshot is
saved (``$AIGVE_SCREENSHOT_DIR`` or the test's tmp folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.server.conftest import ServerProc, reference_flicker, write_clip

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)
def test_upload_run_and_read_results(server: ServerProc, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    videos = [write_clip(tmp_path / n, 200 + i) for i, n in enumerate(["w1.mp4", "w1_synthetic.mp4"])]
    shot_dir = Path(os.environ.get("AIGVE_SCREENSHOT_DIR") or tmp_path)
    shot_dir.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.goto(server.url + "/")
            assert page.title().startswith("aigve")
            page.fill("#token", server.token or "")
            page.click("#save-token")
            page.wait_for_selector("input[name=metric][value=flicker]:not([disabled])", timeout=20_000)
            page.set_input_files("#videos", [str(v) for v in videos])
            page.check("input[name=metric][value=flicker]")
            page.click("details summary")  # sampling options
            page.fill("#max-len", "6")
            page.click("#run")
            page.wait_for_selector("#results-section:not([hidden])", timeout=60_000)
            assert page.inner_text("#job-status") == "succeeded"
            cells = page.locator("#results-table tbody tr").all_inner_texts()
            flicker_rows = [c for c in cells if "\tflicker\tflicker\t" in c]
            assert len(flicker_rows) == 1 and flicker_rows[0].startswith("w1_synthetic")
            shown = float(flicker_rows[0].split("\t")[3])
            assert shown == pytest.approx(
                reference_flicker(videos[1], max_len=6), abs=5e-5
            )  # 4 decimals shown
            page.click("#open-report")
            frame = page.frame_locator("#report-frame")
            frame.locator("table#aggregates").wait_for(timeout=20_000)
            assert "flicker" in frame.locator("table#aggregates").inner_text()
            page.screenshot(path=str(shot_dir / "webpage.png"), full_page=True)
        finally:
            browser.close()
    assert (shot_dir / "webpage.png").stat().st_size > 10_000
    assert not [e for e in console_errors if "401" not in e], console_errors
