"""Staging (copy / symlink) and ``prepare``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aigve.data import load_dataset, prepare, read_annotation, scan_and_pair, stage_dataset
from aigve.errors import UsageError

from .conftest import touch


@pytest.fixture
def input_dir(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    touch(d, "1_synthetic.mp4", "1.mp4", "2-generated.webm", "2.mov", "3_synthetic.mp4", "4.mp4")
    return d


def _load_json(p: Path) -> dict:
    return json.loads(p.read_text(encoding="utf-8"))


def test_stage_copy(input_dir: Path, tmp_path: Path) -> None:
    dst = tmp_path / "stage"
    ds = stage_dataset(scan_and_pair(input_dir), dst)
    vdir = dst / "evaluate"
    assert sorted(p.name for p in vdir.iterdir()) == sorted(p.name for p in input_dir.iterdir())
    assert not any(p.is_symlink() for p in vdir.iterdir())
    assert (vdir / "2.mov").read_bytes() == (input_dir / "2.mov").read_bytes()
    raw = _load_json(dst / "annotations" / "evaluate.json")
    assert raw["data_list"] == [
        {"id": "1", "prompt_gt": None, "video_path_pd": "1_synthetic.mp4", "video_path_gt": "1.mp4"},
        {"id": "2", "prompt_gt": None, "video_path_pd": "2-generated.webm", "video_path_gt": "2.mov"},
        {"id": "3", "prompt_gt": None, "video_path_pd": "3_synthetic.mp4", "video_path_gt": None},
    ]
    assert raw["metainfo"]["extra_reals"] == ["4.mp4"]
    assert raw["metainfo"]["length"] == 3
    # the default reading rule finds evaluate/ next to annotations/
    back = read_annotation(dst / "annotations" / "evaluate.json")
    assert back.ids == ds.ids == ["1", "2", "3"]
    assert back.extra_reals == [vdir / "4.mp4"]
    assert back.missing_files() == []


def test_stage_link_and_prompts(input_dir: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps({"1": "one", "2-generated.webm": "two"}), encoding="utf-8")
    dst = tmp_path / "stage"
    ds = stage_dataset(scan_and_pair(input_dir), dst, link=True, prompts=prompts, include_unpaired=False)
    vdir = dst / "evaluate"
    assert all(p.is_symlink() for p in vdir.iterdir())
    assert os.readlink(vdir / "1.mp4") == str((input_dir / "1.mp4").resolve())
    assert sorted(p.name for p in vdir.iterdir()) == ["1.mp4", "1_synthetic.mp4", "2-generated.webm", "2.mov"]
    assert [(e.id, e.prompt) for e in ds.entries] == [("1", "one"), ("2", "two")]
    assert ds.extra_reals == []


def test_stage_refuses_nonempty_unless_overwrite(input_dir: Path, tmp_path: Path) -> None:
    dst = tmp_path / "stage"
    touch(dst, "keep.txt")
    report = scan_and_pair(input_dir)
    with pytest.raises(UsageError, match="not empty"):
        stage_dataset(report, dst)
    touch(dst / "evaluate", "stale.mp4")
    stage_dataset(report, dst, overwrite=True)
    assert not (dst / "evaluate" / "stale.mp4").exists()
    assert (dst / "keep.txt").exists()  # only what staging owns is replaced
    assert len(read_annotation(dst / "annotations" / "evaluate.json")) == 3


def test_prepare_stage_and_out_json(input_dir: Path, tmp_path: Path) -> None:
    dst = tmp_path / "stage"
    out_json = tmp_path / "elsewhere" / "ann.json"
    txt = tmp_path / "p.txt"
    txt.write_text("p1\np2\np3\n", encoding="utf-8")  # sorted generated names: 1_, 2-, 3_
    rep = prepare(input_dir, out_json=out_json, stage=dst, prompts=txt)
    assert rep.dataset is not None and [e.prompt for e in rep.dataset.entries] == ["p1", "p2", "p3"]
    assert rep.annotation_files == [dst / "annotations" / "evaluate.json", out_json]
    assert rep.dataset_spec() == dst / "annotations" / "evaluate.json"
    # out_json points at the staged copies, relative to its own folder
    other = read_annotation(out_json)
    assert [e.generated for e in other.entries] == [e.generated for e in rep.dataset.entries]
    assert _load_json(out_json)["data_list"][0]["video_path_pd"] == "../stage/evaluate/1_synthetic.mp4"
    s = rep.summary()
    assert (
        "pairs:                2" in s and "staged 3 entries and 1 extra real videos" in s and "(copies)" in s
    )
    with pytest.raises(UsageError, match="already exists"):
        prepare(input_dir, out_json=out_json)


def test_prepare_out_json_only_and_dry_run(input_dir: Path, tmp_path: Path) -> None:
    out_json = tmp_path / "ann.json"
    rep = prepare(input_dir, out_json=out_json, generated_suffixes=("synthetic", "generated"))
    ds = load_dataset(out_json)
    assert [e.generated for e in ds.entries] == [
        input_dir / "1_synthetic.mp4",
        input_dir / "2-generated.webm",
        input_dir / "3_synthetic.mp4",
    ]
    assert rep.stage_dir is None and rep.dataset_spec() == out_json
    dry = prepare(input_dir)
    assert dry.dataset is None and "dry run" in dry.summary()
    with pytest.raises(UsageError):
        dry.dataset_spec()


def test_prepare_without_generated(tmp_path: Path) -> None:
    touch(tmp_path / "in", "a.mp4")
    from aigve.errors import DatasetError

    with pytest.raises(DatasetError, match="no generated videos found"):
        prepare(tmp_path / "in", stage=tmp_path / "s")
