"""One way to count a run's errors: the console, the HTML report and the server's report of a run with
a known set of failures say the same numbers in the same words."""

from __future__ import annotations

import io
import re
from html import unescape
from pathlib import Path

import pytest

from aigve.results.records import MetricAggregate, OutputValue, Results
from aigve.results.summary import error_counts
from aigve.types import Entry, VideoRecord

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

WEIGHTS_ERR = (
    "could not load the weights of setm: put them at /w/x.pth or pass --metric-option setm.weights=PATH"
)


def failing_run(tmp: Path) -> Results:
    """6 videos. v3 cannot be decoded (so every metric that reads it fails on it); m1 also fails on v1,
    m2 on v2; the real video r0 cannot be decoded (fidlike ran on the rest); setm could not run at all
    (its failure is copied onto every video's row, as the engine does)."""
    ids = [f"v{i}" for i in range(6)]
    entries = [Entry(id=v, generated=tmp / f"{v}.mp4", real=tmp / "r0.mp4") for v in ids]
    bad3 = f"{tmp / 'v3.mp4'}: cannot decode: moov atom not found"
    bad_real = f"{tmp / 'r0.mp4'}: cannot decode: moov atom not found"
    records = []
    for v in ids:
        e1 = bad3 if v == "v3" else ("m1 failed on v1.mp4: ValueError: NaN frames" if v == "v1" else None)
        e2 = bad3 if v == "v3" else ("m2 failed on v2.mp4: RuntimeError: too short" if v == "v2" else None)
        records.append(VideoRecord(v, "m1", "m1", None if e1 else 1.0, e1))
        records.append(VideoRecord(v, "m2", "m2", None if e2 else 2.0, e2))
        records.append(VideoRecord(v, "setm", "setm", None, WEIGHTS_ERR))
    records.append(VideoRecord("v3", "fidlike", "_input", None, bad3))
    records.append(
        VideoRecord("real:" + str((tmp / "r0.mp4").resolve()), "fidlike", "_input", None, bad_real)
    )
    errors = [
        {"video_id": "v3", "side": "generated", "path": str(tmp / "v3.mp4"), "error": bad3},
        {"video_id": None, "side": "real", "path": str(tmp / "r0.mp4"), "error": bad_real},
    ]

    def agg(name: str, level: str, n_ok: int, n_err: int, error: str | None = None) -> MetricAggregate:
        ov = OutputValue(
            None if error else 1.5, n_ok, False, ci_low=None if error else 1.0, ci_high=None if error else 2.0
        )
        return MetricAggregate(
            name, "classic", level, "b", {name: ov}, n_videos=6, n_errors=n_err, error=error
        )

    aggs = {
        "m1": agg("m1", "video", 4, 2),
        "m2": agg("m2", "video", 4, 2),
        "fidlike": agg("fidlike", "set", 5, 2),
        "setm": agg("setm", "set", 0, 6, WEIGHTS_ERR),
    }
    return Results(aggs, records, entries, provenance={}, errors=errors, dataset_name="failing")


HEADLINE = "3 of 6 videos with errors; 1 real video with errors; 1 metric could not run (setm)"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_counts_are_defined_once(tmp_path: Path) -> None:
    c = error_counts(failing_run(tmp_path))
    assert c.videos == {"v1", "v2", "v3"} and len(c.real_videos) == 1 and set(c.metrics_failed) == {"setm"}
    assert c.headline() == HEADLINE
    assert c.metric_text("m1") == "2 videos with errors"  # v1, v3
    assert c.metric_text("m2") == "2 videos with errors"  # v2, v3
    assert c.metric_text("fidlike") == "1 video with errors, 1 real video with errors"
    assert c.metric_text("setm") == "could not run"
    d = failing_run(tmp_path).to_dict()  # results.json states the same counts
    assert (d["n_failed_videos"], d["n_failed_real_videos"], d["metrics_failed"]) == (3, 1, ["setm"])


def test_the_report_page_counts_errors_one_way(tmp_path: Path) -> None:
    from aigve.report.html import ReportOptions, render_report

    res = failing_run(tmp_path)
    html = render_report([("failing", res)], options=ReportOptions(thumbnails=False, bootstrap=50))
    page = _text(html)
    header = _text(html.split("<nav>", 1)[0])
    summary = _text(html.split('<section id="summary">', 1)[1].split("</section>", 1)[0])
    assert HEADLINE in header
    assert summary.count(HEADLINE) == 1
    # every count on the page is in these words, and each agrees with the headline's definition
    for n, what in re.findall(r"(\d+) ((?:of \d+ )?(?:real )?videos?) with errors", page):
        assert (n, what) in {("3", "of 6 videos"), ("1", "real video"), ("2", "videos"), ("1", "video")}, (
            n,
            what,
        )
    assert "2 videos with errors" in summary and "1 video with errors, 1 real video with errors" in summary
    assert "could not run: " + WEIGHTS_ERR in summary
    for other in ("error(s)", " failed</", "6 failed", "with errors, 6", "4 with errors", "with errors."):
        assert other not in page, other
    assert not re.search(r"\b\d+ failed\b", page)


def test_console_and_server_report_use_the_same_words(tmp_path: Path) -> None:
    from rich.console import Console

    from aigve.results.summary import print_summary
    from aigve.server.report import render_report as server_report

    res = failing_run(tmp_path)
    buf = io.StringIO()
    print_summary(res, Console(file=buf, width=400, color_system=None))
    console = buf.getvalue()
    assert HEADLINE in console and "video(s) had errors" not in console
    rows = [r.to_dict() for r in res.records]
    page = _text(server_report("job1", res.to_dict(), rows))
    assert HEADLINE in page
    assert "could not run: " + WEIGHTS_ERR in page
    assert not re.search(r"\b\d+ with errors\.", page.replace(HEADLINE, ""))


def test_report_summary_shows_warnings_and_the_small_sample_ci_caveat(tmp_path: Path) -> None:
    from aigve.report.html import ReportOptions, render_report
    from aigve.server.report import render_report as server_report

    ov = OutputValue(60.56, 2, False, ci_low=60.37, ci_high=60.75, ci_method="bootstrap")
    agg = MetricAggregate("fid", "distribution_based", "set", "efficientnet_lite0", {"fid": ov}, 2, 0,
                          warnings=["fid computed on efficientnet_lite0 features, not the standard Inception-v3"])  # fmt: skip
    entries = [Entry(id=v, generated=tmp_path / f"{v}.mp4") for v in ("a", "b")]
    res = Results({"fid": agg}, [], entries, provenance={}, errors=[], dataset_name="two")
    html = render_report([("two", res)], options=ReportOptions(thumbnails=False))
    summary = _text(html.split('<section id="summary">', 1)[1].split("</section>", 1)[0])
    assert "not the standard Inception-v3" in summary
    assert "CI from only n = 2 video(s)" in summary and "do not report it as a 95% interval" in summary
    page = _text(server_report("j", res.to_dict(), []))
    assert "not the standard Inception-v3" in page and "] ⚠ n<5" in page and "CI from only n = 2" in page
