"""What the engine records beside a number: a set compared with itself, CIs from too few videos, a set
metric that fails with no per-video error (and that the console summary shows each of them)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aigve.data.dataset import Dataset
from aigve.engine import Engine, RunConfig
from aigve.errors import AigveError
from aigve.metrics.catalog import register_metric, unregister_metric
from aigve.types import Entry
from tests.conftest import smooth_clip
from tests.engine.test_engine import Brightness, SetMean


@pytest.fixture(autouse=True, scope="module")
def _metrics():  # noqa: ANN202
    for cls in (Brightness, SetMean):
        register_metric(cls)
    yield
    for cls in (Brightness, SetMean):
        unregister_metric(cls.spec.name)


def _clips(make_video, n: int, prefix: str = "gen") -> list[Path]:  # noqa: ANN001
    """``n`` distinct clips; another ``prefix`` gives other content (real videos that are not the generated ones)."""
    off = 0 if prefix == "gen" else 100
    return [
        make_video(
            f"{prefix}{i}.mp4",
            np.clip(smooth_clip(8, seed=i + off).astype(int) + 15 * i, 0, 255).astype(np.uint8),
        )
        for i in range(n)
    ]


def _run(ds: Dataset, tmp: Path, metrics: list[str], **kw: Any):  # noqa: ANN202
    kw.setdefault("bootstrap", 0)
    return Engine(ds, RunConfig(metrics=metrics, cache_dir=tmp / "cache", **kw)).run()


def _console_text(results: Any) -> str:
    from rich.console import Console

    from aigve.results.summary import print_summary

    buf = io.StringIO()
    print_summary(results, Console(file=buf, width=400, color_system=None))
    return buf.getvalue()


def test_real_set_that_is_the_generated_set_warns_and_the_console_shows_it(
    make_video, tmp_path: Path
) -> None:
    gen = _clips(make_video, 4)
    ds = Dataset("same", [Entry(id=f"v{i}", generated=p, real=p) for i, p in enumerate(gen)])
    res = _run(ds, tmp_path, ["test_setmean"])
    agg = res.aggregates["test_setmean"]
    assert agg.value == pytest.approx(0.0)
    same = [w for w in agg.warnings if "0 by construction" in w]
    assert len(same) == 1 and "same 4 video(s)" in same[0]
    assert same[0] in res.to_dict()["metrics"]["test_setmean"]["warnings"]
    assert same[0] in _console_text(res)


def test_identical_content_under_other_names_is_the_same_set(make_video, tmp_path: Path) -> None:
    gen = _clips(make_video, 3)
    copies = []
    for p in gen:
        c = p.with_name("copy_" + p.name)
        shutil.copyfile(p, c)
        copies.append(c)
    ds = Dataset(
        "copies",
        [Entry(id=f"v{i}", generated=g, real=r) for i, (g, r) in enumerate(zip(gen, copies, strict=True))],
    )
    agg = _run(ds, tmp_path, ["test_setmean"]).aggregates["test_setmean"]
    assert any("0 by construction" in w and "sha256" in w for w in agg.warnings)


def test_partly_shared_sets_say_how_many_and_distinct_sets_say_nothing(make_video, tmp_path: Path) -> None:
    gen = _clips(make_video, 3)
    other = _clips(make_video, 3, prefix="real")
    ds = Dataset("part", [Entry(id="v0", generated=gen[0], real=gen[0])] + [
        Entry(id=f"v{i}", generated=gen[i], real=other[i]) for i in (1, 2)
    ])  # fmt: skip
    agg = _run(ds, tmp_path, ["test_setmean"]).aggregates["test_setmean"]
    assert any("1 of the 3 generated video(s) are also in the real set" in w for w in agg.warnings)
    ds = Dataset("apart", [Entry(id=f"v{i}", generated=gen[i], real=other[i]) for i in range(3)])
    agg = _run(ds, tmp_path / "b", ["test_setmean"]).aggregates["test_setmean"]
    assert not any("real set" in w or "by construction" in w for w in agg.warnings)


def test_ci_from_fewer_than_5_videos_carries_a_caveat_in_json_and_console(make_video, tmp_path: Path) -> None:
    from aigve.results.load import load_run
    from aigve.results.writers import write_results

    gen = _clips(make_video, 6)
    small = _run(Dataset("two", [Entry(id=f"v{i}", generated=gen[i]) for i in range(2)]), tmp_path / "a",
                 ["test_brightness"], bootstrap=200)  # fmt: skip
    ov = small.aggregates["test_brightness"].outputs["test_brightness"]
    assert ov.ci_low is not None and ov.ci_caveat and "n = 2" in ov.ci_caveat
    assert "ci_caveat" in small.to_dict()["metrics"]["test_brightness"]["outputs"]["test_brightness"]
    text = _console_text(small)
    assert "] ⚠ n<5" in text and "do not report it as a 95% interval" in text
    write_results(small, tmp_path / "out")
    assert (
        load_run(tmp_path / "out").aggregates["test_brightness"].outputs["test_brightness"].ci_caveat
        == ov.ci_caveat
    )
    six = _run(Dataset("six", [Entry(id=f"v{i}", generated=p) for i, p in enumerate(gen)]), tmp_path / "b",
               ["test_brightness"], bootstrap=200)  # fmt: skip
    ov6 = six.aggregates["test_brightness"].outputs["test_brightness"]
    assert ov6.ci_low is not None and ov6.ci_caveat is None
    assert "<5" not in _console_text(six)


def test_set_ci_from_a_small_side_carries_a_caveat(
    make_video, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SetMean, "value_from_features", lambda self, r, g: float(abs(g.mean() - r.mean())))
    gen = _clips(make_video, 6)
    reals = _clips(make_video, 3, prefix="real")
    ds = Dataset("set", [Entry(id=f"v{i}", generated=p, real=reals[i % 3]) for i, p in enumerate(gen)])
    ov = (
        _run(ds, tmp_path, ["test_setmean"], set_bootstrap=30)
        .aggregates["test_setmean"]
        .outputs["test_setmean"]
    )
    assert ov.ci_low is not None and ov.ci_caveat and "n = 3" in ov.ci_caveat


def test_a_set_metric_that_fails_without_a_video_error_shows_why_in_the_table(
    make_video, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Any) -> dict[str, Any]:
        raise AigveError("test_setmean needs at least 2 real videos, got 1: add real videos")

    monkeypatch.setattr(SetMean, "compute", refuse)
    gen = _clips(make_video, 3)
    real = _clips(make_video, 1, prefix="real")[0]
    ds = Dataset("f", [Entry(id=f"v{i}", generated=p, real=real) for i, p in enumerate(gen)])
    res = _run(ds, tmp_path, ["test_setmean", "test_brightness"])
    agg = res.aggregates["test_setmean"]
    assert agg.error and agg.n_errors == 0
    text = _console_text(res)
    row = next(line for line in text.splitlines() if line.strip("│┃ ").startswith("test_setmean"))
    assert "error" in row and "[1]" in row  # the row points at its reason, printed under the table
    assert (
        "[1] test_setmean could not run: test_setmean needs at least 2 real videos, got 1: add real videos"
        in text
    )
    assert "0 of 3 videos with errors; 1 metric could not run (test_setmean)" in text
