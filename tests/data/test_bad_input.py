"""Bad dataset input: odd folder entries, undecodable file names, BOMs, empty and repeated entries,
partial prompts files. Each either becomes a clear ``DatasetError`` naming the file, or is kept so the
run reports it per video."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from aigve.data import from_folders
from aigve.data.annotation import read_annotation, write_annotation
from aigve.data.dataset import Dataset, list_videos, text_name
from aigve.data.folders import apply_prompts
from aigve.data.load import load_dataset
from aigve.data.manifest import read_manifest
from aigve.data.pairing import scan_and_pair
from aigve.data.staging import prepare
from aigve.errors import DatasetError
from aigve.types import Entry

from .conftest import touch

needs_symlinks = pytest.mark.skipif(
    sys.platform == "win32", reason="symbolic links need privileges on Windows"
)


def _odd_entries(folder: Path) -> dict[str, Path]:
    """A directory, a broken link and a link loop, all named like videos, plus a hidden one."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dir.mp4").mkdir()
    os.symlink(folder / "gone.mp4", folder / "broken.mp4")
    os.symlink(folder / "loop_b.mp4", folder / "loop_a.mp4")
    os.symlink(folder / "loop_a.mp4", folder / "loop_b.mp4")
    os.symlink(folder / "gone.mp4", folder / ".hidden_broken.mp4")
    (folder / "subdir").mkdir()  # not named like a video: not an entry
    return {n: folder / n for n in ("dir.mp4", "broken.mp4", "loop_a.mp4", "loop_b.mp4")}


# ----------------------------------------------------------------------------- 1. odd folder entries
@needs_symlinks
def test_list_videos_keeps_non_regular_video_entries(tmp_path: Path) -> None:
    odd = _odd_entries(tmp_path)
    touch(tmp_path, "ok.mp4", ".hidden.mp4", "notes.txt")
    names = [p.name for p in list_videos(tmp_path)]
    assert names == sorted([*odd, "ok.mp4"])


@needs_symlinks
def test_from_folders_keeps_them_as_entries(tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    _odd_entries(gen)
    touch(gen, "ok.mp4")
    ds = load_dataset(gen)  # one real file exists, so check_files passes
    assert ds.ids == ["broken", "dir", "loop_a", "loop_b", "ok"]
    assert ds.missing_files() == [gen / "broken.mp4", gen / "dir.mp4", gen / "loop_a.mp4", gen / "loop_b.mp4"]


@needs_symlinks
def test_pairing_and_prepare_keep_them(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "k1_synthetic.mp4").mkdir()
    os.symlink(src / "gone.mp4", src / "k2_synthetic.mp4")
    (src / "subdir").mkdir()
    touch(src, "k1.mp4", "k2.mp4", "k3_synthetic.mp4")
    report = scan_and_pair(src)
    assert sorted(p.key for p in report.pairs) == ["k1", "k2"]
    assert [p.name for p in report.not_files] == ["k1_synthetic.mp4", "k2_synthetic.mp4"]
    text = report.summary()
    assert (
        "directory: k1_synthetic.mp4" in text and "broken or looping symbolic link: k2_synthetic.mp4" in text
    )
    assert report.ignored == []  # a sub-folder not named like a video is not reported
    # staging by copy does not crash: the odd entries are staged as links that show the same problem
    out = prepare(src, stage=tmp_path / "stage")
    ds = out.dataset
    assert ds is not None and sorted(ds.ids) == ["k1", "k2", "k3"]
    staged = {e.id: e.generated for e in ds.entries}
    assert staged["k1"].is_dir() and staged["k1"].is_symlink()
    assert staged["k2"].is_symlink() and not staged["k2"].exists()
    assert staged["k3"].is_file() and not staged["k3"].is_symlink()


# ----------------------------------------------------------------------------- 6. undecodable names
@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs a file system that stores raw bytes")
def test_undecodable_file_name_gives_text_id_and_keeps_real_path(tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    gen.mkdir()
    raw = os.path.join(os.fsencode(gen), b"bad\xffname.mp4")
    try:
        with open(raw, "wb") as fh:
            fh.write(b"video")
    except OSError:
        pytest.skip("the file system refuses non-UTF-8 names")
    touch(gen, "bad\\xffname_x.mp4")
    ds = from_folders(gen)
    e = next(x for x in ds.entries if x.generated.name.startswith("bad\udcff"))
    assert e.id == "bad\\xffname"  # visible escape, valid UTF-8
    e.id.encode("utf-8")
    assert e.generated.is_file()  # the real path still opens
    assert os.fsencode(e.generated).endswith(b"bad\xffname.mp4")
    # a written annotation round-trips the real path
    ann = write_annotation(ds, tmp_path / "ann.json", gen)
    json.loads(ann.read_text(encoding="utf-8"))
    back = read_annotation(ann, gen)
    assert [x.generated for x in back.entries] == [x.generated for x in ds.entries]
    assert back.ids == ds.ids
    # stems from an annotation are made text too (ids never carry surrogates)
    obj = {"data_list": [{"video_path_pd": os.fsdecode(b"bad\xffname.mp4")}]}
    (tmp_path / "s.json").write_text(json.dumps(obj), encoding="utf-8")
    assert read_annotation(tmp_path / "s.json", gen).ids == ["bad\\xffname"]


def test_text_name() -> None:
    assert text_name("plain ünïcode") == "plain ünïcode"
    assert text_name(os.fsdecode(b"a\xff\xfeb")) == "a\\xff\\xfeb"
    assert text_name("x\ud800y") == "x\\ud800y"  # a lone surrogate that is not a file-name escape
    ds = Dataset("n", [Entry(id="v\udcff", generated=Path("/v.mp4"))])
    assert ds.ids == ["v\\xff"]


# ----------------------------------------------------------------------------- 7. byte-order marks
def test_annotation_and_prompts_json_with_bom(tmp_path: Path) -> None:
    touch(tmp_path, "a.mp4", "b.mp4")
    obj = {
        "metainfo": {},
        "data_list": [{"video_path_pd": "a.mp4", "prompt_gt": "p"}, {"video_path_pd": "b.mp4"}],
    }
    ann = tmp_path / "bom.json"
    ann.write_bytes(b"\xef\xbb\xbf" + json.dumps(obj).encode("utf-8"))
    ds = read_annotation(ann)
    assert ds.ids == ["a", "b"] and ds.entries[0].prompt == "p"
    prompts = tmp_path / "prompts.json"
    prompts.write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": "x", "b": "y"}).encode("utf-8"))
    assert [e.prompt for e in apply_prompts(ds, prompts).entries] == ["x", "y"]
    man = tmp_path / "m.jsonl"
    man.write_bytes(b"\xef\xbb\xbf" + b'{"generated": "a.mp4"}\n')
    assert read_manifest(man).ids == ["a"]


# ----------------------------------------------------------------------------- 8. nothing to evaluate
def test_empty_data_list_is_an_error(tmp_path: Path) -> None:
    ann = tmp_path / "empty.json"
    ann.write_text(json.dumps({"metainfo": {"name": "x"}, "data_list": []}), encoding="utf-8")
    with pytest.raises(DatasetError) as exc:
        read_annotation(ann)
    msg = str(exc.value)
    assert str(ann) in msg and "no entries" in msg and "add entries" in msg
    with pytest.raises(DatasetError, match="no entries"):
        load_dataset(ann)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("m.csv", "generated,prompt\n", "no rows"),
        ("m.jsonl", "\n\n", "no rows"),
        ("m.jsonl", '{"generated": null, "real": "r.mp4"}\n', "no rows"),
    ],
)
def test_empty_manifest_is_an_error(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    m = tmp_path / name
    m.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match=fragment) as exc:
        load_dataset(m)
    assert str(m) in str(exc.value)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path / "gen", ".hidden.mp4", "notes.txt")
    with pytest.raises(DatasetError, match="no videos found") as exc:
        load_dataset(tmp_path / "gen")
    assert str(tmp_path / "gen") in str(exc.value)


# ----------------------------------------------------------------------------- 9. repeated videos
def test_same_video_twice_in_annotation(tmp_path: Path) -> None:
    touch(tmp_path, "x.mp4", "y.mp4")
    ann = tmp_path / "dup.json"
    rows = [{"video_path_pd": "x.mp4"}, {"video_path_pd": "y.mp4"}, {"video_path_pd": "./sub/../x.mp4"}]
    ann.write_text(json.dumps({"data_list": rows}), encoding="utf-8")
    with pytest.raises(DatasetError) as exc:
        read_annotation(ann)
    msg = str(exc.value)
    assert str(ann) in msg and "data_list[0]" in msg and "data_list[2]" in msg
    assert str(tmp_path / "x.mp4") in msg and "remove the repeated entry" in msg


def test_same_video_twice_in_manifest(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("generated,id\nx.mp4,a\ny.mp4,b\nx.mp4,\n", encoding="utf-8")
    with pytest.raises(DatasetError) as exc:
        read_manifest(m)
    msg = str(exc.value)
    assert str(m) in msg and "line 2" in msg and "line 4" in msg and str(tmp_path / "x.mp4") in msg


def test_same_video_twice_with_distinct_explicit_ids_is_deliberate(tmp_path: Path) -> None:
    # e.g. one video scored against two prompts: both rows name themselves, nothing is silent
    ann = tmp_path / "two_prompts.json"
    rows = [
        {"id": "p1", "video_path_pd": "x.mp4", "prompt_gt": "a cat"},
        {"id": "p2", "video_path_pd": "x.mp4", "prompt_gt": "a dog"},
    ]
    ann.write_text(json.dumps({"data_list": rows}), encoding="utf-8")
    assert read_annotation(ann).ids == ["p1", "p2"]
    # without the ids they are an error (the bench loader ignores 'id' fields, so it always checks)
    with pytest.raises(DatasetError, match=r"data_list\[0\] and data_list\[1\]"):
        read_annotation(ann, id_field=None)


def test_same_stem_in_different_folders_is_still_fine(tmp_path: Path) -> None:
    m = tmp_path / "m.jsonl"
    m.write_text('{"generated": "a/v.mp4"}\n{"generated": "b/v.mp4"}\n', encoding="utf-8")
    assert read_manifest(m).ids == ["v", "v__1"]


# ----------------------------------------------------------------------------- 10. partial prompts
def test_partial_prompts_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    touch(tmp_path / "gen", "a.mp4", "b.mp4", "c.mp4")
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps({"a": "a cat"}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="aigve.data.folders"):
        ds = load_dataset(tmp_path / "gen", prompts=prompts)
    assert [e.prompt for e in ds.entries] == ["a cat", None, None]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert str(prompts) in warned[0] and "2 of 3 videos have no prompt" in warned[0]
    caplog.clear()
    prompts.write_text(json.dumps({"a": "1", "b": "2", "c.mp4": "3"}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="aigve.data.folders"):
        load_dataset(tmp_path / "gen", prompts=prompts)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
