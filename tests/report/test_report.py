"""The HTML report: self-contained, real frames as thumbnails, robust to missing videos, and it
works in headless Chromium (sortable table, no console errors; a screenshot is saved)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

from aigve.cli import main  # noqa: E402
from aigve.report.html import ReportOptions, build_report, write_run_report  # noqa: E402
from aigve.report.thumbs import strip_image, thumbnail_strip, uniform_rows  # noqa: E402
from aigve.results.load import load_run  # noqa: E402
from tests.report.runs import small_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    from aigve.api import evaluate

    root = tmp_path_factory.mktemp("report")
    ds = small_dataset(root / "videos", n=6)
    res = evaluate(ds, metrics=["flicker", "motion"], out_dir=root / "run", use_cache=False, bootstrap=100)
    return res, root / "run"


@pytest.fixture(scope="module")
def report(run: tuple[object, Path]) -> Path:
    res, run_dir = run
    return write_run_report(res, run_dir, ReportOptions(bootstrap=200))  # type: ignore[arg-type]


def _decode_uri(uri: str) -> np.ndarray:
    from PIL import Image

    data = base64.b64decode(uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_report_is_self_contained_with_all_sections(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert report.name == "report.html"
    # nothing is fetched from anywhere: every src/href is inline or an in-page anchor
    for attr in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert attr.startswith(("data:", "#")), attr
    assert "<link" not in html and "@import" not in html
    for section in (
        "summary",
        "distributions",
        "comparison",
        "alignment",
        "extremes",
        "per-video",
        "provenance",
    ):
        assert f'id="{section}"' in html, section
    assert html.count('<tr data-search="') == 6
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 4  # 2 distributions + 2 heatmaps
    assert "lower is better" in html and "frame_absdiff" in html and "aigve_version" in html


def test_thumbnails_are_real_frames(report: Path, run: tuple[object, Path]) -> None:
    from aigve.video.decode import decode_video

    res, _ = run
    html = report.read_text(encoding="utf-8")
    rows = re.findall(r'<tr data-search="[^"]*">.*?</tr>', html, flags=re.S)
    assert len(rows) == 6
    seen = []
    for row in rows:
        vid = re.search(r"<td>(m\d_\d)</td>", row).group(1)  # type: ignore[union-attr]
        uri = re.search(r'<img class="thumb" src="(data:image/jpeg;base64,[^"]+)"', row).group(1)  # type: ignore[union-attr]
        strip = _decode_uri(uri)
        entry = next(e for e in res.entries if e.id == vid)  # type: ignore[attr-defined]
        clip = decode_video(entry.generated)
        expect = strip_image(clip.frames[uniform_rows(clip.num_frames, 4)], 96)
        assert strip.shape == expect.shape == (96, 4 * 96, 3)
        # JPEG at quality 72 on 8 px texture blocks: mean abs error well under 10 grey levels
        err = np.abs(strip.astype(float) - expect.astype(float)).mean()
        assert err < 10, (vid, err)
        seen.append(strip.astype(float))
    # and each video's strip is its own: another video's frames are far away
    assert np.abs(seen[0] - seen[1]).mean() > 30


def test_missing_video_gets_a_placeholder(run: tuple[object, Path], tmp_path: Path) -> None:
    _, run_dir = run
    res = load_run(run_dir)
    gone = res.entries[0]
    object.__setattr__(gone, "generated", tmp_path / "deleted.mp4")  # the file is not there any more
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    object.__setattr__(res.entries[1], "generated", broken)
    out = build_report([("r", res)], tmp_path / "r.html", ReportOptions(bootstrap=50, k=2))
    html = out.read_text(encoding="utf-8")
    assert html.count("no preview") >= 2
    assert thumbnail_strip(tmp_path / "deleted.mp4") is None and thumbnail_strip(broken) is None


def test_row_cap_and_multi_run_cli(run: tuple[object, Path], tmp_path: Path) -> None:
    _, run_dir = run
    out = tmp_path / "two.html"
    assert (
        main(
            ["report", str(run_dir), str(run_dir), "--out", str(out), "--max-rows", "4", "--bootstrap", "50"]
        )
        == 0
    )
    html = out.read_text(encoding="utf-8")
    assert "Showing the first 4 of 12 videos" in html
    assert "Comparison of runs" in html  # runs labelled by their folders
    assert main(["report", str(tmp_path / "nothing"), "--out", str(out)]) == 2


def test_report_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    problems: list[str] = []
    shot = tmp_path / "report.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "request", lambda r: None if r.url.startswith(("file:", "data:")) else problems.append(r.url)
            )
            page.goto(report.as_uri())
            page.wait_for_load_state("load")

            def column(name: str) -> list[float]:
                return page.eval_on_selector_all(
                    f"#videos tbody tr td[data-v]:nth-child({index[name]})",
                    "cells => cells.map(c => parseFloat(c.getAttribute('data-v')))",
                )

            headers = page.eval_on_selector_all(
                "#videos thead th", "hs => hs.map(h => h.dataset.metric || '')"
            )
            index = {h: i + 1 for i, h in enumerate(headers) if h}
            page.click('#videos th[data-metric="flicker"]')
            asc = column("flicker")
            assert asc == sorted(asc) and len(asc) == 6
            page.click('#videos th[data-metric="flicker"]')
            assert column("flicker") == sorted(asc, reverse=True)
            assert page.get_attribute('#videos th[data-metric="flicker"]', "aria-sort") == "descending"
            # every thumbnail and plot decoded to a real image
            sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
            assert sizes and all(ok and w > 0 for ok, w in sizes)
            page.fill("#video-filter", "m2_")
            assert page.eval_on_selector_all("#videos tbody tr:not([hidden])", "r => r.length") == 3
            page.fill("#video-filter", "")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = Path(os.environ.get("AIGVE_TEST_ARTIFACTS", REPO / "results" / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, artifacts / "report.png")


def test_report_names_videos_scored_despite_a_decoding_problem(
    run: tuple[object, Path], tmp_path: Path
) -> None:
    _, run_dir = run
    res = load_run(run_dir)
    res.video_warnings = [
        {
            "video_id": res.entries[0].id,
            "side": "generated",
            "path": "x.mp4",
            "warning": "x.mp4: truncated: <b>",
        }
    ]
    html = build_report([("r", res)], tmp_path / "w.html", ReportOptions(bootstrap=0)).read_text(
        encoding="utf-8"
    )
    assert "1 video(s) scored despite a decoding problem; x.mp4: truncated: &lt;b&gt;" in html


def test_server_report_shows_metric_and_video_warnings() -> None:
    from aigve.server.report import render_report

    results = {
        "dataset": "d",
        "n_videos": 1,
        "metrics": {
            "fid": {
                "backbone": "efficientnet_lite0",
                "warnings": ["fid computed on efficientnet_lite0 features, not comparable"],
                "outputs": {"fid": {"value": 3.0, "n": 1, "higher_is_better": False}},
            }
        },
        "video_warnings": [{"video_id": "v", "warning": "v.mp4: truncated: decoding stopped after 2 frames"}],
    }
    rows = [
        {
            "video_id": "v",
            "metric": "flicker",
            "output": "flicker",
            "value": 1.0,
            "warning": "v.mp4: truncated",
        }
    ]
    html = render_report("job1", results, rows)
    assert "not comparable" in html and "backbone: efficientnet_lite0" in html
    assert html.count("truncated") == 2 and "<th>warning</th>" in html
