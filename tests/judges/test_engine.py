"""Judge metrics through the engine against the scripted server: per-video details and errors, prompt-only
work shared, the cache, the provenance, run-level configuration and the key."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aigve import evaluate
from aigve.data.dataset import Dataset
from aigve.types import Entry
from tests.conftest import smooth_clip, toy_dir_or_none
from tests.judges.chatserver import ChatServer, Seen, completion

# a made-up key (not a real one): no output may contain it
SENTINEL = "test-key-" + "engine-9d2b"


def toy_prompts(n: int) -> list[str]:
    """The toy dataset's first prompts (short literal ones when it is absent)."""
    d = toy_dir_or_none()
    if d is not None:
        rows = json.loads((d / "annotations" / "evaluate.json").read_text())["data_list"]
        got = list(dict.fromkeys(r["prompt_gt"] for r in rows))[:n]
        if len(got) == n:
            return got
    return [f"a red ball rolling on grass, take {i}" for i in range(n)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from aigve.video.encode import write_video

    d = tmp_path_factory.mktemp("judge-videos")
    return [write_video(d / f"v{i}.mp4", smooth_clip(t=8, h=32, w=32, seed=i), fps=8) for i in range(6)]


def dataset(videos: list[Path], prompts: list[str | None]) -> Dataset:
    entries = [Entry(id=f"v{i}", generated=videos[i], prompt=p) for i, p in enumerate(prompts)]
    return Dataset(name="judge-test", entries=entries)


def judge(server: ChatServer, **kw: object) -> dict:
    return {
        "backend": "endpoint",
        "model": "judge-model",
        "base_url": server.base_url,
        "api_key": SENTINEL,
        **kw,
    }


def by_prompt(p_yes: dict[str, float]):  # noqa: ANN201
    """A responder whose P("Yes") depends on the prompt named in the question."""

    def respond(seen: Seen) -> dict:
        p = next((v for k, v in p_yes.items() if k in seen.text), 0.5)
        return completion("Yes", logprobs={"Yes": float(np.log(p)), "No": float(np.log(1 - p))})

    return respond


def run(ds: Dataset, server: ChatServer, tmp: Path, name: str, **kw: object):  # noqa: ANN201
    opts: dict = {"bootstrap": 0, "cache_dir": tmp / "cache", "out_dir": tmp / name, "report": False}
    opts.update(kw)
    return evaluate(ds, "vqascore", judge=judge(server), **opts)


def test_vqascore_per_video_details_errors_and_rerun(
    server: ChatServer, videos: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    p = toy_prompts(2)
    long = ("a very long prompt " * 120).strip()  # 2,279 characters
    prompts = [p[0], p[0], p[1], None, "  ", long]
    server.responder = by_prompt({p[0]: 0.8, p[1]: 0.3, "a very long": 0.6})
    res = run(dataset(videos, prompts), server, tmp_path, "first")
    assert not server.invalid
    # 4 frames per video by default, one image per question, for the 4 videos with a usable prompt
    assert len(server.requests) == 16 and all(s.n_images == 1 for s in server.requests)
    asked = {s.text for s in server.requests}
    assert f'Does this figure show "{p[0]}"? Please answer yes or no.' in asked
    wide = res.wide()
    assert wide.loc["v0", "vqascore"] == pytest.approx(0.8) and wide.loc["v1", "vqascore"] == pytest.approx(
        0.8
    )
    assert wide.loc["v2", "vqascore"] == pytest.approx(0.3) and wide.loc["v5", "vqascore"] == pytest.approx(
        0.6
    )
    assert (
        wide.loc["v5", "vqascore.prompt_truncated"] == 1.0
        and wide.loc["v0", "vqascore.prompt_truncated"] == 0.0
    )
    assert any("2279 characters; truncated to" in r.getMessage() for r in caplog.records)
    long_q = next(s.text for s in server.requests if "a very long" in s.text)
    assert len(long_q) < 1100
    df = res.per_video
    errs = df[df["error"].notna()]
    assert set(errs["video_id"]) == {"v3", "v4"} and errs["error"].str.contains("no prompt").all()
    assert res.aggregates["vqascore"].outputs["vqascore"].value == pytest.approx((0.8 + 0.8 + 0.3 + 0.6) / 4)
    # the per-video file keeps each video's detail: the question and P("Yes") per frame
    csv = pd.read_csv(tmp_path / "first" / "per_video.csv")
    det = json.loads(csv[(csv.video_id == "v2") & (csv.output == "vqascore")]["details"].iloc[0])
    assert det["p_yes_per_frame"] == pytest.approx([0.3] * 4) and det["frames"] == 4
    assert det["judge"] == {
        "backend": "endpoint",
        "model": "judge-model",
        "host": server.base_url.split("/")[2],
    }
    assert det["usage"]["requests"] == 4
    # provenance: the judge and the run's requests and tokens
    prov = res.aggregates["vqascore"].provenance
    assert prov["judge"]["model"] == "judge-model" and prov["usage"]["judge"]["requests"] == 16
    assert prov["usage"]["judge"]["prompt_tokens"] == 1600

    # a rerun (new output dir, same cache): zero requests, identical numbers, the details again
    server.reset()
    again = run(dataset(videos, prompts), server, tmp_path, "second")
    assert server.attempts == 0
    pd.testing.assert_frame_equal(again.wide(), wide)
    assert (
        json.loads(again.per_video.query("video_id == 'v2' and output == 'vqascore'")["details"].iloc[0])
        == det
    )
    # only the response cache (no feature cache): still zero requests
    again = evaluate(
        dataset(videos, prompts),
        "vqascore",
        bootstrap=0,
        use_cache=False,
        report=False,
        judge=judge(server, cache=str(tmp_path / "cache" / "judges" / "responses.sqlite")),
    )
    assert server.attempts == 0
    pd.testing.assert_frame_equal(again.wide(), wide)
    # a changed prompt: new requests only for that video
    prompts2 = [p[0], p[0], p[1] + " at dusk", None, "  ", long]
    changed = run(dataset(videos, prompts2), server, tmp_path, "fourth")
    assert len(server.requests) == 4 and all((p[1] + " at dusk") in s.text for s in server.requests)
    assert changed.wide().loc["v0", "vqascore"] == pytest.approx(0.8)


def test_one_video_failing_keeps_the_others(server: ChatServer, videos: list[Path], tmp_path: Path) -> None:
    p = toy_prompts(3)

    def respond(seen: Seen) -> str | dict:
        if p[1] in seen.text:  # a server that gives no log-probabilities for this prompt
            return completion("Yes")
        return completion("Yes", logprobs={"Yes": float(np.log(0.9)), "No": float(np.log(0.1))})

    server.responder = respond
    res = run(dataset(videos[:3], [p[0], p[1], p[2]]), server, tmp_path, "out")
    wide = res.wide()
    assert wide.loc["v0", "vqascore"] == pytest.approx(0.9) and wide.loc["v2", "vqascore"] == pytest.approx(
        0.9
    )
    row = res.per_video.query("video_id == 'v1' and output == 'vqascore'").iloc[0]
    assert np.isnan(row["value"]) or row["value"] is None
    assert "log-probabilities" in row["error"] and "capability" in row["error"]
    assert json.loads(row["details"])["error_reason"] == "capability"
    assert res.exit_code == 3


def test_garbage_and_timeout_become_error_rows_with_the_raw_reply(
    server: ChatServer, videos: list[Path], tmp_path: Path
) -> None:
    server.responder = by_prompt({})
    server.push({"raw": "}}} not json {{{"})
    res = evaluate(
        dataset(videos[:1], ["a cat"]),
        "vqascore",
        bootstrap=0,
        use_cache=False,
        report=False,
        judge=judge(server, max_retries=0, concurrency=1),
        metric_options={"vqascore": {"num_frames": 1}},
    )
    row = res.per_video.query("output == 'vqascore'").iloc[0]
    assert "bad_response" in row["error"]
    det = json.loads(row["details"])
    assert det["raw_reply"] == "}}} not json {{{" and det["error_reason"] == "bad_response"
    server.reset()
    server.push({"sleep": 1.0})
    res = evaluate(
        dataset(videos[:2], ["a cat", "a dog"]),
        "vqascore",
        bootstrap=0,
        use_cache=False,
        report=False,
        judge=judge(server, max_retries=0, timeout=0.4, concurrency=1),
        metric_options={"vqascore": {"num_frames": 1}},
    )
    errs = res.per_video.query("output == 'vqascore'").set_index("video_id")["error"]
    assert errs.notna().sum() == 1 and errs.dropna().str.contains("timeout").all()
    assert res.wide()["vqascore"].notna().sum() == 1


def test_no_judge_configured_fails_the_metric_with_the_fix(
    videos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AIGVE_JUDGE", "AIGVE_JUDGE_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    res = evaluate(
        dataset(videos[:2], ["a cat", "a dog"]),
        ["vqascore", "flicker"],
        bootstrap=0,
        use_cache=False,
        report=False,
    )
    agg = res.aggregates["vqascore"]
    assert agg.error is not None and "--judge" in agg.error and "AIGVE_JUDGE_MODEL" in agg.error
    assert res.aggregates["flicker"].error is None and res.wide()["flicker"].notna().all()


def test_price_gives_a_cost_and_frames_flag_sets_num_frames(
    server: ChatServer, videos: list[Path], tmp_path: Path
) -> None:
    res = evaluate(
        dataset(videos[:1], ["a cat"]),
        "vqascore",
        bootstrap=0,
        use_cache=False,
        report=False,
        judge=judge(server, price="2.5,10", frames=2),
    )
    usage = res.aggregates["vqascore"].provenance["usage"]["judge"]
    assert usage["requests"] == 2 and len(server.requests) == 2
    assert usage["cost_usd"] == pytest.approx((200 * 2.5 + 2 * 10) / 1e6)
    assert res.aggregates["vqascore"].provenance["extractors"]["judge"]["sampler"].startswith("uniform")


def test_cli_flags_and_the_key_never_leaks(
    server: ChatServer,
    videos: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aigve.cli.main import main

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MY_JUDGE_KEY", SENTINEL)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"v0": "a cat", "v1": "a dog"}))
    vdir = tmp_path / "vids"
    vdir.mkdir()
    for v in videos[:2]:
        (vdir / v.name).write_bytes(v.read_bytes())
    server.push({"status": 401, "message": f"Incorrect API key provided: {SENTINEL}"})
    out = tmp_path / "out"
    code = main(
        [
            "run",
            str(vdir),
            "--prompts",
            str(prompts),
            "--metrics",
            "vqascore",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--bootstrap",
            "0",
            "--no-report",
            "--judge",
            "endpoint",
            "--judge-model",
            "judge-model",
            "--judge-base-url",
            server.base_url,
            "--judge-api-key-env",
            "MY_JUDGE_KEY",
            "--judge-concurrency",
            "1",
            "--judge-frames",
            "2",
            "--judge-max-retries",
            "0",
        ]
    )
    assert code == 3  # the 401 made one video's error
    assert all(s.authorization == f"Bearer {SENTINEL}" for s in server.requests)
    captured = capsys.readouterr()
    blobs = [captured.out, captured.err, caplog.text]
    for f in sorted(p for p in tmp_path.rglob("*") if p.is_file() and "vids" not in p.parts):
        blobs.append(f.read_bytes().decode("latin-1"))
    assert not [b for b in blobs if SENTINEL in b]
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["metrics"] == ["vqascore"]
    assert results["metrics"]["vqascore"]["provenance"]["judge"]["model"] == "judge-model"


def test_details_survive_load_run(server: ChatServer, videos: list[Path], tmp_path: Path) -> None:
    from aigve.results.load import load_run

    res = run(
        dataset(videos[:2], ["a cat", "a dog"]),
        server,
        tmp_path,
        "out",
        metric_options={"vqascore": {"num_frames": 1}},
    )
    loaded = load_run(tmp_path / "out")
    det = {r.video_id: r.details for r in loaded.records if r.details}
    assert set(det) == {"v0", "v1"} and json.loads(det["v0"])["question"].endswith(
        '"a cat"? Please answer yes or no.'
    )
    assert {r.video_id: r.details for r in res.records if r.details} == det
    assert "details" not in loaded.entries[0].extra


def test_question_template_option(server: ChatServer, videos: list[Path], tmp_path: Path) -> None:
    server.responder = by_prompt({})
    evaluate(
        dataset(videos[:1], ["a cat"]),
        "vqascore",
        bootstrap=0,
        use_cache=False,
        report=False,
        judge=judge(server),
        metric_options={"vqascore": {"num_frames": 1, "question": 'Does this image show "{}"?'}},
    )
    assert [s.text for s in server.requests] == ['Does this image show "a cat"?']


def test_batch_size_and_concurrency_do_not_change_values(server: ChatServer, videos: list[Path]) -> None:
    p = toy_prompts(3)
    server.responder = by_prompt({p[0]: 0.9, p[1]: 0.4, p[2]: 0.2})
    ds = dataset(videos[:4], [p[0], p[1], p[2], p[0]])
    outs = []
    for batch, conc in ((1, 1), (8, 4), (3, 2)):
        res = evaluate(
            ds,
            "vqascore",
            bootstrap=0,
            use_cache=False,
            report=False,
            batch_size=batch,
            judge=judge(server, concurrency=conc, cache="off"),
        )
        outs.append(res.wide())
    assert outs[0]["vqascore"].tolist() == pytest.approx([0.9, 0.4, 0.2, 0.9])
    for o in outs[1:]:
        pd.testing.assert_frame_equal(o, outs[0])
    assert len(server.requests) == 3 * 16  # cache off: every run asks again


def test_vqascore_on_tensors(server: ChatServer) -> None:
    from aigve.metrics import VQAScore

    server.responder = by_prompt({"a cat": 0.8, "a dog": 0.4})
    m = VQAScore(judge=judge(server, frames=2, cache="off"), bootstrap=0)
    videos = np.stack([smooth_clip(t=6, h=32, w=32, seed=s) for s in range(2)])
    m.update(videos, prompts=["a cat", "a dog"])
    assert m.compute().outputs["vqascore"].value == pytest.approx(0.6)
    assert len(server.requests) == 4 and all(s.n_images == 1 for s in server.requests)
