"""``aigve stats compute`` end to end: the file records the decode window, a run with another window refuses
it, the same window accepts it; missing weights are a failure (exit 3), not a usage error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigve.cli import main
from tests.conftest import smooth_clip

EFF = ["--metric-option", "fid.backbone=efficientnet_lite0", "--metric-option", "fid.frames=4"]


@pytest.fixture
def folders(make_video, tmp_path: Path) -> tuple[Path, Path]:
    for i in range(3):
        make_video(f"real/r{i}.mp4", smooth_clip(12, h=48, w=48, seed=i))
        make_video(f"gen/g{i}.mp4", smooth_clip(12, h=48, w=48, seed=10 + i))
    return tmp_path / "real", tmp_path / "gen"


def test_reference_stats_record_and_check_the_decode_window(
    folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real, gen = folders
    npz = tmp_path / "real.npz"
    assert (
        main(["stats", "compute", str(real), "--metric", "fid", *EFF, "--max-len", "6", "--out", str(npz)])
        == 0
    )
    run = [
        "run",
        "--generated",
        str(gen),
        "--metrics",
        "fid",
        *EFF,
        "--real-stats",
        str(npz),
        "--quiet",
        "--no-report",
    ]
    assert main([*run, "--out", str(tmp_path / "o1")]) == 2  # all frames vs the first 6: refused
    assert "decode_window" in capsys.readouterr().err.replace("\n", "")
    assert main([*run, "--max-len", "6", "--out", str(tmp_path / "o2")]) == 0


def test_missing_weights_is_a_failure_not_a_usage_error(
    folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    monkeypatch.delenv("AIGVE_WEIGHTS_DIR", raising=False)
    real, _ = folders
    assert main(["stats", "compute", str(real), "--metric", "fid", "--out", str(tmp_path / "x.npz")]) == 3


def test_export_to_pytorch_fid_and_back_gives_the_same_fid_with_the_claim_recorded(
    folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real, gen = folders
    npz = tmp_path / "real.npz"
    assert main(["stats", "compute", str(real), "--metric", "fid", *EFF, "--out", str(npz)]) == 0
    exported = tmp_path / "pf.npz"
    assert main(["stats", "export", str(npz), "--format", "pytorch-fid", "--out", str(exported)]) == 0
    assert "ddof=1" in capsys.readouterr().out
    again = tmp_path / "pf2.npz"
    assert main(["stats", "export", str(npz), "--format", "pytorch-fid", "--out", str(again), "--json"]) == 0
    line = json.loads(capsys.readouterr().out)  # one JSON object, nothing else on stdout
    assert line["path"] == str(again) and line["format"] == "pytorch-fid" and line["ddof"] == 1
    run = ["run", "--generated", str(gen), "--metrics", "fid", *EFF, "--quiet", "--no-report"]
    assert main([*run, "--real-stats", str(npz), "--out", str(tmp_path / "a")]) == 0
    assert main([*run, "--real-stats", str(exported), "--out", str(tmp_path / "b")]) == 2  # no claim: refused
    assert "--real-stats-backbone" in capsys.readouterr().err.replace("\n", " ")
    claim = ["--real-stats", str(exported), "--real-stats-backbone", "efficientnet_lite0"]
    assert main([*run, *claim, "--out", str(tmp_path / "c")]) == 0
    from aigve.results.load import load_run

    a = load_run(tmp_path / "a").aggregates["fid"]
    c = load_run(tmp_path / "c").aggregates["fid"]
    assert c.value == pytest.approx(a.value, rel=1e-9)
    assert a.provenance["real_stats_format"] == "aigve"
    assert "claim" in c.provenance["real_stats_backbone_source"]
    assert any("per-video features" in w for w in c.warnings)  # no set-level CI without the real videos


def test_per_video_features_give_the_set_ci_a_run_on_the_real_videos_gives(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    from aigve import evaluate
    from aigve.data.dataset import Dataset, list_videos
    from aigve.types import Entry

    real, gen = folders
    npz = tmp_path / "real_pv.npz"
    assert (
        main(
            [
                "stats",
                "compute",
                str(real),
                "--metric",
                "fid",
                *EFF,
                "--per-video-features",
                "--out",
                str(npz),
            ]
        )
        == 0
    )
    opts = {"fid": {"backbone": "efficientnet_lite0", "frames": 4}}
    kw = {"set_bootstrap": 30, "seed": 1, "cache_dir": tmp_path / "cache"}
    entries = [Entry(p.stem, p) for p in list_videos(gen)]
    with_reals = evaluate(
        Dataset("g", entries, extra_reals=list_videos(real)), "fid", metric_options=opts, **kw
    )
    on_stats = evaluate(Dataset("g", entries), "fid", metric_options=opts, real_stats=npz, **kw)
    a, b = with_reals.aggregates["fid"], on_stats.aggregates["fid"]
    assert b.value == pytest.approx(a.value, rel=1e-9)
    assert b.outputs["fid"].ci_low is not None
    assert [b.outputs["fid"].ci_low, b.outputs["fid"].ci_high] == pytest.approx(
        [a.outputs["fid"].ci_low, a.outputs["fid"].ci_high], rel=1e-9
    )
    assert b.provenance["real_stats_per_video_features"] == 3
