"""``load_dataset`` dispatch: files, folders, generated=/real=, prompts and video_dir overrides, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigve.data import Dataset, builtin_names, load_builtin, load_dataset
from aigve.data import dataset as dataset_module
from aigve.errors import DatasetError, UsageError

from .conftest import touch


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    touch(tmp_path / "gen", "a.mp4", "b.mp4")
    touch(tmp_path / "real", "a.mp4", "z.mp4")
    ann = {"data_list": [{"video_path_pd": "a.mp4", "prompt_gt": "pa"}, {"video_path_pd": "b.mp4"}]}
    (tmp_path / "ann.json").write_text(json.dumps(ann), encoding="utf-8")
    (tmp_path / "m.csv").write_text("generated,real\ngen/a.mp4,real/a.mp4\n", encoding="utf-8")
    (tmp_path / "m.jsonl").write_text('{"generated": "gen/b.mp4"}\n', encoding="utf-8")
    return tmp_path


def test_annotation_json_with_video_dir(tree: Path) -> None:
    ds = load_dataset(tree / "ann.json", video_dir=tree / "gen")
    assert ds.ids == ["a", "b"] and ds.entries[0].generated == tree / "gen" / "a.mp4"
    with pytest.raises(DatasetError, match="--video-dir"):
        load_dataset(tree / "ann.json")  # relative to tree/, where no video exists


def test_manifests(tree: Path) -> None:
    assert load_dataset(tree / "m.csv").entries[0].real == tree / "real" / "a.mp4"
    assert load_dataset(tree / "m.jsonl").ids == ["b"]


def test_folders(tree: Path) -> None:
    ds = load_dataset(tree / "gen", real=tree / "real")
    assert ds.entries[0].real == tree / "real" / "a.mp4" and ds.extra_reals == [tree / "real" / "z.mp4"]
    ds2 = load_dataset(generated=tree / "gen", real=tree / "real")
    assert ds2.ids == ds.ids and ds2.extra_reals == ds.extra_reals
    # the CLI passes the folder both as spec and as generated=
    assert load_dataset(tree / "gen", generated=tree / "gen").ids == ["a", "b"]
    with pytest.raises(UsageError, match="not both"):
        load_dataset(tree / "ann.json", generated=tree / "gen")


def test_folder_with_annotations(tree: Path) -> None:
    root = tree / "set"
    touch(root / "evaluate", "v.mp4")
    (root / "annotations").mkdir()
    (root / "annotations" / "evaluate.json").write_text(
        json.dumps({"data_list": [{"video_path_pd": "v.mp4"}]})
    )
    assert load_dataset(root).entries[0].generated == root / "evaluate" / "v.mp4"
    (root / "annotations" / "other.json").write_text(json.dumps({"data_list": []}))
    assert load_dataset(root).ids == ["v"]  # evaluate.json preferred among several
    (root / "annotations" / "evaluate.json").unlink()
    (root / "annotations" / "third.json").write_text(json.dumps({"data_list": []}))
    with pytest.raises(UsageError, match="several annotation files"):
        load_dataset(root)


def test_prompts_override(tree: Path) -> None:
    p = tree / "p.json"
    p.write_text(json.dumps({"a": "new a", "b": "new b"}), encoding="utf-8")
    ds = load_dataset(tree / "ann.json", video_dir=tree / "gen", prompts=p)
    assert [e.prompt for e in ds.entries] == ["new a", "new b"]
    assert [e.prompt for e in load_dataset(generated=tree / "gen", prompts=p).entries] == ["new a", "new b"]


def test_usage_errors(tree: Path) -> None:
    with pytest.raises(UsageError, match="no dataset given"):
        load_dataset()
    with pytest.raises(UsageError, match="not an existing file or folder") as exc:
        load_dataset(tree / "nope")
    assert "demo, toy, aigve_bench" in str(exc.value)
    (tree / "x.yaml").write_text("a: 1")
    with pytest.raises(UsageError, match="unsupported dataset file type"):
        load_dataset(tree / "x.yaml")
    with pytest.raises(UsageError, match="real= applies to folders"):
        load_dataset(tree / "ann.json", real=tree / "real")
    with pytest.raises(UsageError, match="takes no real="):
        load_dataset("demo", real=tree / "real")
    with pytest.raises(UsageError, match="unknown built-in"):
        load_builtin("nope")
    (tree / "odd.csv").write_text("x,y\n1,2\n")
    with pytest.raises(DatasetError, match="'generated' column"):
        load_dataset(tree / "odd.csv")


def test_alias_and_names(tree: Path) -> None:
    assert builtin_names() == ("demo", "toy", "aigve_bench_toy", "aigve_bench")
    ds = dataset_module.load_dataset(tree / "m.jsonl")
    assert isinstance(ds, Dataset) and ds.ids == ["b"]


def test_dataset_helpers(tree: Path) -> None:
    ds = load_dataset(tree / "gen", real=tree / "real")
    assert ds["a"].generated.name == "a.mp4" and ds[1].id == "b"
    with pytest.raises(KeyError):
        ds["zz"]
    sub = ds.subset(["b"])
    assert sub.ids == ["b"] and sub.extra_reals == ds.extra_reals
    with pytest.raises(DatasetError, match="unknown entry id"):
        ds.subset(["zz"])
    assert ds.real_paths() == [tree / "real" / "a.mp4", tree / "real" / "z.mp4"]
    assert "2 generated, 1 paired real, 1 extra real" in ds.describe()
    (tree / "real" / "z.mp4").unlink()
    assert ds.missing_files() == [tree / "real" / "z.mp4"]
    ds.check_files()  # some generated videos exist: fine
    with pytest.raises(DatasetError, match="1 referenced video file"):
        ds.check_files(require_all=True)
