"""The ``aigve_bench`` loader, on a small fabricated copy in the AIGVE-Bench layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from aigve.data import load_builtin, load_dataset
from aigve.data.bench import SCORE_FIELDS, load_bench
from aigve.errors import DatasetError

from .conftest import touch


def _entry(pid: int, model: str, **scores: float) -> dict:
    base = dict.fromkeys(SCORE_FIELDS, 3)
    base.update(scores)
    return {
        "id": pid,
        "prompt_gt": f"prompt {pid}",
        **base,
        "model": model,
        "subject": ["city", "street"],
        "dynamic_type": ["camera movement"],
        "detailed_dynamic": ["camera movement"],
        "category": "global",
        "video_path_pd": f"{model}_{pid}.mp4",
    }


ENTRIES = [
    _entry(0, "cogvideox", action_presentence=0, action_quality=0, overall=2),
    _entry(0, "hunyuan", overall=5),  # same prompt id, other generator
    _entry(3, "cogvideox", technical_quality=4.5),
]


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    root = tmp_path / "AIGVE-Bench"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.json").write_text(
        json.dumps({"metainfo": {"split": "train", "length": 3}, "data_list": ENTRIES}), encoding="utf-8"
    )
    touch(root / "videos", *(e["video_path_pd"] for e in ENTRIES))
    return root


def _check(ds) -> None:  # type: ignore[no-untyped-def]
    assert ds.ids == ["cogvideox_0", "hunyuan_0", "cogvideox_3"]
    e = ds.entries[0]
    assert e.prompt == "prompt 0" and e.real is None
    assert e.generated.parent.name == "videos" and e.generated.is_file()
    x = dict(e.extra)
    assert x["prompt_id"] == 0 and x["model"] == "cogvideox" and x["category"] == "global"
    assert x["subject"] == ["city", "street"] and x["dynamic_type"] == ["camera movement"]
    for k in SCORE_FIELDS:
        assert isinstance(x[k], float)
    assert x["action_quality"] == 0.0 and x["overall"] == 2.0  # 0 (not applicable) is kept as 0.0
    assert ds.entries[2].extra["technical_quality"] == 4.5
    assert ds.hints["group_by"] == "model"
    assert ds.metainfo["human_scores"] == list(SCORE_FIELDS)


def test_load_from_folder_env_and_builtin(bench_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(load_bench(bench_dir))
    monkeypatch.setenv("AIGVE_BENCH_DIR", str(bench_dir))
    _check(load_bench())
    _check(load_builtin("aigve_bench"))
    # an annotation file given directly is recognised as AIGVE-Bench by its fields
    _check(load_dataset(bench_dir / "annotations" / "train.json"))
    _check(load_dataset(bench_dir))


def test_cache_location(bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIGVE_BENCH_DIR", raising=False)
    cache = tmp_path / "cache"
    (cache / "datasets").mkdir(parents=True)
    bench_dir.rename(cache / "datasets" / "aigve_bench")
    _check(load_builtin("aigve_bench", cache))


def test_csv(bench_dir: Path) -> None:
    path = bench_dir / "bench.csv"
    cols = list(ENTRIES[0])
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for e in ENTRIES:
            w.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in e.items()})
    ds = load_bench(path, video_dir=bench_dir / "videos")
    _check(ds)
    assert load_dataset(path, video_dir=bench_dir / "videos").ids == ds.ids


def test_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIGVE_BENCH_DIR", raising=False)
    with pytest.raises(DatasetError) as exc:
        load_builtin("aigve_bench", tmp_path / "cache")
    msg = str(exc.value)
    assert "AIGVE-Bench not found" in msg and "AIGVE_BENCH_DIR" in msg
    assert str(tmp_path / "cache" / "datasets" / "aigve_bench") in msg
    monkeypatch.setenv("AIGVE_BENCH_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="nowhere: AIGVE-Bench not found"):
        load_bench()


def test_several_splits(bench_dir: Path) -> None:
    other = bench_dir / "annotations" / "test.json"
    other.write_text(json.dumps({"data_list": ENTRIES[:1]}), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"several annotation files \(test.json, train.json\)"):
        load_bench(bench_dir)
    assert len(load_bench(bench_dir, split="test")) == 1
    with pytest.raises(DatasetError, match="no split 'val'"):
        load_bench(bench_dir, split="val")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(7, "outside 0-5"), ("high", "expected a number 0-5"), (True, "expected a number")],
)
def test_bad_score(bench_dir: Path, value: object, fragment: str) -> None:
    bad = [dict(e) for e in ENTRIES]
    bad[2]["physics"] = value
    ann = bench_dir / "annotations" / "train.json"
    ann.write_text(json.dumps({"data_list": bad}), encoding="utf-8")
    with pytest.raises(DatasetError) as exc:
        load_bench(bench_dir)
    msg = str(exc.value)
    assert str(ann) in msg and "data_list[2]" in msg and "'physics'" in msg and fragment in msg
