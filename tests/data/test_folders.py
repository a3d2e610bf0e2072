"""Folder datasets and prompts files (JSON dict/list, CSV, TXT)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aigve.data import from_folders, read_prompts
from aigve.errors import DatasetError

from .conftest import touch


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    gen, real = tmp_path / "gen", tmp_path / "real"
    touch(gen, "a.mp4", "B.MOV", "c_synthetic.webm", "d-Generated.mkv", "e.gif", "notes.txt", ".hidden.mp4")
    touch(real, "a.mp4", "b.mp4", "C.avi", "d.m4v", "lonely.mp4", "readme.md")
    return gen, real


def test_from_folders_pairs_by_stem_and_suffix(folders: tuple[Path, Path]) -> None:
    gen, real = folders
    ds = from_folders(gen, real)
    by = {e.id: e for e in ds.entries}
    assert sorted(by) == ["B", "a", "c_synthetic", "d-Generated", "e"]
    assert by["a"].real == real / "a.mp4"
    assert by["B"].real == real / "b.mp4"  # identical stem, case-insensitive, other extension
    assert by["c_synthetic"].real == real / "C.avi"  # suffix rule
    assert by["c_synthetic"].extra == {"pair_key": "c"}
    assert by["d-Generated"].real == real / "d.m4v"
    assert by["e"].real is None
    assert ds.extra_reals == [real / "lonely.mp4"]
    assert ds.real_paths()[-1] == real / "lonely.mp4"
    assert ds.root == gen and ds.name == "gen"


def test_from_folders_generated_only_and_stem_clash(tmp_path: Path) -> None:
    touch(tmp_path, "x.mp4", "x.webm", "y.mp4")
    ds = from_folders(tmp_path)
    assert ds.ids == ["x.mp4", "x.webm", "y"]
    assert not ds.has_reals


def test_from_folders_same_folder_uses_pairing_rule(tmp_path: Path) -> None:
    touch(tmp_path, "1_synthetic.mp4", "1.mp4", "2-generated.mp4", "3.mp4")
    ds = from_folders(tmp_path, tmp_path)
    assert [(e.id, e.real.name if e.real else None) for e in ds.entries] == [
        ("1_synthetic", "1.mp4"),
        ("2-generated", None),
    ]
    assert [p.name for p in ds.extra_reals] == ["3.mp4"]


def test_from_folders_real_videos(make_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With real encoded videos (the loader does not decode, but the files must be found)."""
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    make_video("g/one.mp4", frames)
    make_video("r/one.mp4", frames)
    ds = from_folders(tmp_path / "g", tmp_path / "r")
    assert ds.entries[0].real == tmp_path / "r" / "one.mp4"
    ds.check_files(require_all=True)


def test_from_folders_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        from_folders(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no videos found"):
        from_folders(tmp_path / "empty")
    touch(tmp_path / "g", "a.mp4")
    with pytest.raises(DatasetError, match="real-videos folder not found"):
        from_folders(tmp_path / "g", tmp_path / "nope")


def _gen(tmp_path: Path) -> Path:
    g = tmp_path / "gen"
    touch(g, "b.mp4", "a.mp4", "c_synthetic.mp4")
    return g


def test_prompts_json_dict(tmp_path: Path) -> None:
    p = tmp_path / "p.json"
    # keys may be the id/stem, the file name (case-insensitively), or the pairing key ("c" for c_synthetic)
    p.write_text(json.dumps({"a": "pa", "B.MP4": "pb", "c": "pc", "unused": "x"}), encoding="utf-8")
    ds = from_folders(_gen(tmp_path), prompts=p)
    assert {e.id: e.prompt for e in ds.entries} == {"a": "pa", "b": "pb", "c_synthetic": "pc"}
    p.write_text(json.dumps({"a": "pa"}), encoding="utf-8")
    assert [e.prompt for e in from_folders(_gen(tmp_path), prompts=p).entries] == ["pa", None, None]


def test_prompts_json_list(tmp_path: Path) -> None:
    p = tmp_path / "p.json"
    p.write_text(
        json.dumps(
            [
                {"id": "a", "prompt": "pa"},
                {"video": "b.mp4", "text": "pb"},
                {"id": "c_synthetic", "prompt": "pc"},
            ]
        ),
        encoding="utf-8",
    )
    ds = from_folders(_gen(tmp_path), prompts=p)
    assert {e.id: e.prompt for e in ds.entries} == {"a": "pa", "b": "pb", "c_synthetic": "pc"}
    assert read_prompts(p) == {"a": "pa", "b.mp4": "pb", "c_synthetic": "pc"}


@pytest.mark.parametrize(
    "text",
    ['id,prompt\na,pa\nb,"pb, with comma"\n', 'video,text\na.mp4,pa\nb.mp4,"pb, with comma"\n'],
)
def test_prompts_csv(tmp_path: Path, text: str) -> None:
    p = tmp_path / "p.csv"
    p.write_text(text, encoding="utf-8")
    ds = from_folders(_gen(tmp_path), prompts=p)
    assert {e.id: e.prompt for e in ds.entries} == {"a": "pa", "b": "pb, with comma", "c_synthetic": None}


def test_prompts_txt_follow_sorted_file_names(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("first\nsecond\nthird\n\n", encoding="utf-8")  # trailing blank lines are ignored
    ds = from_folders(_gen(tmp_path), prompts=p)
    # sorted file names: a.mp4, b.mp4, c_synthetic.mp4
    assert {e.id: e.prompt for e in ds.entries} == {"a": "first", "b": "second", "c_synthetic": "third"}


def test_prompts_txt_count_mismatch(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"2 prompt line\(s\) for 3 video\(s\)") as exc:
        from_folders(_gen(tmp_path), prompts=p)
    assert str(p) in str(exc.value)


def test_prompts_txt_blank_line_inside(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("one\n\nthree\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2 is empty"):
        read_prompts(p)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("p.json", json.dumps({"zzz": "x"}), "none of its 1 keys"),
        ("p.json", json.dumps({"a": 3}), "must be a string"),
        ("p.json", json.dumps([{"prompt": "x"}]), "item [0]"),
        ("p.json", "{bad", "invalid JSON at line 1"),
        ("p.csv", "name,prompt\na,x\n", "'id' or 'video' column"),
        ("p.csv", "id,prompt\na,x\na,y\n", "line 3: key 'a' appears twice"),
        ("p.yaml", "a: x", "unknown prompts file type"),
    ],
)
def test_prompts_errors(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError) as exc:
        from_folders(_gen(tmp_path), prompts=p)
    assert fragment in str(exc.value) and str(p) in str(exc.value)
