"""Output scripts and pipes can use: piped tables never cut a name, a path or a command; ``--json`` on
every command that prints a table; ``aigve run --jsonl`` streams one object per video; usage errors name
the closest valid choice before any progress bar; every option has a help text."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aigve.cli import main
from aigve.cli.common import PIPE_WIDTH, print_table, stdout_console
from aigve.cli.main import build_parser
from aigve.errors import did_you_mean
from tests.conftest import REPO, smooth_clip

LONG = "a_video_file_name_that_is_much_longer_than_eighty_columns_" + "x" * 60 + ".mp4"


def _aigve(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess:
    """``python -m aigve ARGS`` with stdout and stderr captured as pipes (not a terminal)."""
    e = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "80", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "aigve", *args],
        capture_output=True,
        text=True,
        env=e,
        timeout=timeout,
        cwd=REPO,
    )


def test_print_table_piped_keeps_cells_whole_and_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)  # not a terminal
    console = stdout_console()
    assert console.width == PIPE_WIDTH
    cmd = "pip install 'aigve[vlsim]'"
    print_table("t", ("name", "fix"), [(LONG, cmd), ("b", "put it at /a/very/long/" + "p" * 100)], console)
    lines = buf.getvalue().splitlines()
    assert any(LONG in line and cmd in line for line in lines)  # one row, one line, cells whole
    assert any("/a/very/long/" + "p" * 100 in line for line in lines)
    assert max(len(line) for line in lines) < 400  # as wide as the content, not padded to the console width


def test_did_you_mean() -> None:
    assert did_you_mean("clipsm", ["clipsim", "fid", "fvd"]) == " (did you mean `clipsim`?)"
    assert did_you_mean("FID", ["fid", "kid"]) == " (did you mean `fid`?)"
    assert did_you_mean("zzzz", ["fid", "kid"]) == ""


def test_list_metrics_piped_cuts_no_name(tmp_path: Path) -> None:
    r = _aigve("list-metrics")  # a real pipe, COLUMNS=80
    assert r.returncode == 0, r.stderr
    from aigve.metrics.catalog import all_specs

    rows = {line.split("│")[1].strip() for line in r.stdout.splitlines() if line.count("│") > 3}
    assert {s.name for s in all_specs()} <= rows  # each name whole in its own cell


def test_weights_list_piped_keeps_destination_paths_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "c" / ("deep_" * 12)
    monkeypatch.setenv("AIGVE_CACHE_DIR", str(deep))
    assert main(["weights", "list"]) == 0  # captured stdout: not a terminal
    out = capsys.readouterr().out
    from aigve.weights import list_weights

    for row in list_weights():
        line = next(line for line in out.splitlines() if f"│ {row['name']} " in line)
        if not row["present"]:
            where = (
                deep / "weights" / "hf" / f"{row['hf_repo']}@{row['revision']}"
                if row["hf_repo"] and row["revision"]
                else deep / "weights" / row["filename"]
            )
            assert f"put it at {where}" in line
        if row["urls"] and not row["hf_repo"]:
            assert row["urls"][0] in line


def test_check_piped_keeps_file_name_on_one_line(
    make_video,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],  # noqa: ANN001
) -> None:
    make_video(f"d/{LONG}", smooth_clip(6))
    assert main(["check", str(tmp_path / "d")]) == 0
    assert any(LONG in line for line in capsys.readouterr().out.splitlines())
    assert main(["check", str(tmp_path / "d"), "--json"]) == 0
    (rep,) = json.loads(capsys.readouterr().out)
    assert rep["path"].endswith(LONG) and rep["ok"]


def test_json_on_table_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["list-metrics", "--json"]) == 0
    assert {d["name"] for d in json.loads(capsys.readouterr().out)} >= {"fid", "clipsim"}
    assert main(["weights", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    fid = next(r for r in rows if r["name"] == "fid_inception")
    assert fid["urls"] and fid["urls"][0].startswith("https://")  # the download URL, not just "source"
    clip = next(r for r in rows if r["name"] == "clip_vit_b32")
    assert clip["hf_repo"] == "openai/clip-vit-base-patch32" and clip["revision"]
    assert main(["weights", "verify", "fid_inception", "--json"]) == 3  # not present here
    (v,) = json.loads(capsys.readouterr().out)
    assert v["status"] == "missing" and "put it at" in v["message"]
    assert main(["cache", "info", "--json", "--cache-dir", str(tmp_path / "fc")]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 0
    assert main(["datasets", "list", "--json"]) == 0
    names = [d["name"] for d in json.loads(capsys.readouterr().out)]
    assert names == ["demo", "toy", "aigve_bench_toy", "aigve_bench"]


def test_compare_and_correlate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.report.runs import small_dataset

    ds = small_dataset(tmp_path / "v")
    from aigve import evaluate

    for name in ("a", "b"):
        evaluate(ds, "flicker", out_dir=tmp_path / name, use_cache=False, bootstrap=0, report=False)
    capsys.readouterr()
    args = ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--bootstrap", "50", "--json"]
    assert main(args) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["groups"] == ["a", "b"] and obj["leaderboard"]
    assert main(["correlate", str(tmp_path / "a"), "--bootstrap", "20", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert {r["aspect"] for r in obj["correlations"]} == {"overall", "technical_quality"}


@pytest.mark.slow  # a subprocess run (a real pipe): about 5 s
def test_run_jsonl_streams_one_object_per_video(make_video, tmp_path: Path) -> None:  # noqa: ANN001
    for i in range(3):
        make_video(f"gen/v{i}.mp4", smooth_clip(8, seed=i))
    (tmp_path / "gen" / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    r = _aigve(
        "run", "--generated", str(tmp_path / "gen"), "--metrics", "flicker", "--out", str(out), "--jsonl"
    )
    assert r.returncode == 3, r.stderr  # one video failed
    lines = r.stdout.splitlines()
    recs = [json.loads(line) for line in lines]  # every stdout line is one JSON object
    assert sorted(x["video_id"] for x in recs) == ["broken", "v0", "v1", "v2"]
    good = [x for x in recs if x["video_id"] != "broken"]
    assert all(isinstance(x["values"]["flicker"], float) for x in good)
    bad = next(x for x in recs if x["video_id"] == "broken")
    assert bad["error"] and "broken.mp4" in bad["error"]
    assert "aigve results" in r.stderr and "results written to" in r.stderr  # summary on stderr
    import pandas as pd

    df = pd.read_csv(out / "per_video.csv")
    for x in good:
        (v,) = df[(df.video_id == x["video_id"]) & (df.output == "flicker")].value
        assert x["values"]["flicker"] == pytest.approx(v)


def test_usage_error_names_closest_choice_before_any_progress(
    make_video,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],  # noqa: ANN001
) -> None:
    make_video("gen/v0.mp4", smooth_clip(6))
    gen = str(tmp_path / "gen")
    r = _aigve("run", "--generated", gen, "--metrics", "clipsm", "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "did you mean `clipsim`?" in r.stderr
    assert "evaluating" not in r.stderr  # no (empty) progress bar before the error
    out = str(tmp_path / "o")
    cases = [
        (["run", "--generated", gen, "--suite", "ofline", "--out", out], "offline"),
        (["run", "--generated", gen, "--categories", "clasic", "--out", out], "classic"),
        (
            ["run", "--generated", gen, "--metrics", "fid", "--backbone-option", "fid_incepton.weights=/x"]
            + ["--out", out],
            "fid_inception",
        ),
        (["run", "aigve_bench_tyo", "--metrics", "flicker", "--out", out], "aigve_bench_toy"),
        (["weights", "fetch", "fid_incepton"], "fid_inception"),
        (["weights", "list", "--metrics", "clipsm"], "clipsim"),
        (["datasets", "fetch", "aigve_bnch"], "aigve_bench"),
    ]
    for argv, closest in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"did you mean `{closest}`?" in err, (argv, err)
        assert "evaluating" not in err
    argv = [
        "run",
        "--generated",
        gen,
        "--metrics",
        "flicker",
        "--metric-option",
        "flicker.bogus=1",
        "--out",
        out,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "bogus" in err and "evaluating" not in err


def test_every_option_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {a.option_strings or a.dest}"
        for name, sp in sub.choices.items()
        for a in sp._actions
        if not a.help and not isinstance(a, argparse._HelpAction)
    ]
    assert missing == []
    run = sub.choices["run"]
    helps = {o: a.help for a in run._actions for o in a.option_strings}
    assert "batch" in helps["--batch-size"].lower() or "forward pass" in helps["--batch-size"]
    assert helps["--seed"] and helps["--jsonl"]
    prep = sub.choices["prepare"]
    assert any("--generated-suffixes" in a.option_strings and a.help for a in prep._actions)


def test_run_jsonl_on_resume_emits_the_videos_finished_before(
    make_video,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],  # noqa: ANN001
) -> None:
    for i in range(2):
        make_video(f"gen/v{i}.mp4", smooth_clip(6, seed=i))
    argv = ["run", "--generated", str(tmp_path / "gen"), "--metrics", "flicker", "--out", str(tmp_path / "o")]
    assert main([*argv, "--quiet", "--no-report"]) == 0
    capsys.readouterr()
    assert main([*argv, "--resume", "--jsonl", "--no-report"]) == 0
    cap = capsys.readouterr()
    recs = [json.loads(line) for line in cap.out.splitlines()]
    assert sorted(r["video_id"] for r in recs) == ["v0", "v1"]
    assert "aigve results" in cap.err and "aigve results" not in cap.out
