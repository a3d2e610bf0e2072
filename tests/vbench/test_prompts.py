"""VBench's standard mode (prompt suite + ``{prompt}-{index}.mp4`` videos) and the per-dimension video sets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aigve.errors import DatasetError
from aigve.results.records import MetricAggregate, OutputValue, Results
from aigve.types import VideoRecord
from aigve.vbench import prompts, suite

# the shape of VBench_full_info.json (45e79ec): prompt_en, dimension, optional auxiliary_info per dimension
FULL_INFO = [
    {"prompt_en": "a toilet, frozen in time", "dimension": ["temporal_flickering"]},
    {
        "prompt_en": "a cat",
        "dimension": ["subject_consistency", "appearance_style"],
        "auxiliary_info": {"appearance_style": {"appearance_style": "oil painting"}},
    },
    {
        "prompt_en": "a cat",
        "dimension": ["object_class"],
        "auxiliary_info": {"object_class": {"object": "cat"}},
    },
]


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"\0")


def test_standard_pairs_videos_by_vbench_names(tmp_path: Path) -> None:
    _touch(tmp_path / "v", "a cat-0.mp4", "a cat-1.mp4", "a toilet, frozen in time-0.mp4", "other.mp4")
    entries, missing = prompts.standard_entries(FULL_INFO, tmp_path / "v")
    by = {e.id: e for e in entries}
    assert sorted(by) == ["a cat-0", "a cat-1", "a toilet, frozen in time-0"]
    cat = by["a cat-0"]
    assert cat.prompt == "a cat"
    assert cat.extra["vbench_dimensions"] == ["appearance_style", "object_class", "subject_consistency"]
    assert cat.extra["appearance_style"] == "oil painting" and cat.extra["object"] == "cat"
    assert by["a toilet, frozen in time-0"].extra["vbench_dimensions"] == ["temporal_flickering"]
    assert "a cat-2.mp4" in missing and len(missing) == 4 + 3 + 3  # per prompt record, as VBench warns
    only, _ = prompts.standard_entries(FULL_INFO, tmp_path / "v", ["temporal_flickering"])
    assert [e.id for e in only] == ["a toilet, frozen in time-0"]


def test_full_info_is_downloaded_and_sha256_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "VBench_full_info.json"
    src.write_text(json.dumps(FULL_INFO))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.delenv(prompts.ENV_FULL_INFO, raising=False)
    monkeypatch.setattr(prompts, "FULL_INFO_URL", src.as_uri())
    monkeypatch.setattr(prompts, "FULL_INFO_SHA256", sha)
    got = prompts.ensure_full_info(tmp_path / "cache")
    assert got.read_bytes() == src.read_bytes() and got.parent.name == "vbench"
    _touch(tmp_path / "v", "a cat-0.mp4")
    ds = prompts.load_standard(tmp_path / "v", cache_dir=tmp_path / "cache")
    assert [e.id for e in ds.entries] == ["a cat-0"] and ds.metainfo["missing_videos"] > 0
    monkeypatch.setattr(prompts, "FULL_INFO_SHA256", "0" * 64)
    with pytest.raises(DatasetError, match="sha256 mismatch"):
        prompts.ensure_full_info(tmp_path / "cache2")
    monkeypatch.setenv(prompts.ENV_FULL_INFO, str(src))
    with pytest.raises(DatasetError, match="is not that of"):
        prompts.ensure_full_info()


def test_pinned_hash_is_the_upstream_files() -> None:
    assert prompts.FULL_INFO_URL.endswith(f"{prompts.VBENCH_COMMIT}/vbench/VBench_full_info.json")
    assert len(prompts.FULL_INFO_SHA256) == 64 and len(prompts.VBENCH_COMMIT) == 40


def test_suite_counts_each_dimension_on_its_own_prompts_videos() -> None:
    from aigve.types import Entry

    sc, tf = "vbench_subject_consistency", "vbench_temporal_flickering"
    entries = [
        Entry(
            "cat-0", Path("cat-0.mp4"), prompt="a cat", extra={"vbench_dimensions": ["subject_consistency"]}
        ),
        Entry(
            "toilet-0",
            Path("toilet-0.mp4"),
            prompt="a toilet",
            extra={"vbench_dimensions": ["temporal_flickering"]},
        ),
    ]
    recs = [
        VideoRecord("cat-0", sc, sc, 0.9),
        VideoRecord("cat-0", sc, f"{sc}_frames", 4.0),
        VideoRecord("toilet-0", sc, sc, 0.1),
        VideoRecord("toilet-0", sc, f"{sc}_frames", 4.0),
        VideoRecord("cat-0", tf, tf, 0.5),
        VideoRecord("toilet-0", tf, tf, 0.99),
    ]
    aggs = {
        m: MetricAggregate(m, "multi_aspect", "video", "x", {m: OutputValue(0.0, 2, True)}, 2, 0)
        for m in (sc, tf)
    }
    res = Results(aggregates=aggs, records=recs, entries=entries, provenance={}, errors=[])
    assert suite.dimension_values(res) == {"subject_consistency": 0.9, "temporal_flickering": 0.99}


def test_load_dataset_vbench_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aigve.data.load import load_dataset

    src = tmp_path / "VBench_full_info.json"
    src.write_text(json.dumps(FULL_INFO))
    monkeypatch.setattr(prompts, "FULL_INFO_SHA256", hashlib.sha256(src.read_bytes()).hexdigest())
    monkeypatch.setenv(prompts.ENV_FULL_INFO, str(src))
    _touch(tmp_path / "v", "a cat-0.mp4", "a cat-3.mp4")
    ds = load_dataset(f"vbench:{tmp_path / 'v'}")
    assert ds.name == "vbench" and sorted(e.id for e in ds.entries) == ["a cat-0", "a cat-3"]
