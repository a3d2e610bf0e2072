"""AIGVE annotation JSON: reading, defaults, id rules, round-trip, and malformed-input messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigve.data import Dataset, default_video_dir, read_annotation, write_annotation
from aigve.errors import DatasetError
from aigve.types import Entry

from .conftest import touch


def _write(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")
    return path


def test_read_basic_fields_and_extra(tmp_path: Path) -> None:
    touch(tmp_path, "a.mp4", "a_real.mp4", "b.mp4")
    ann = _write(
        tmp_path / "ann.json",
        {
            "metainfo": {"source": "unit", "length": 2},
            "data_list": [
                {
                    "prompt_gt": "a cat",
                    "video_path_pd": "a.mp4",
                    "video_path_gt": "a_real.mp4",
                    "model": "m1",
                    "score": 3,
                },
                {"video_path_pd": "b.mp4", "video_path_gt": None, "category": ["x", "y"]},
            ],
        },
    )
    ds = read_annotation(ann)
    assert ds.ids == ["a", "b"]
    a, b = ds.entries
    assert a.generated == tmp_path / "a.mp4" and a.real == tmp_path / "a_real.mp4"
    assert a.prompt == "a cat" and dict(a.extra) == {"model": "m1", "score": 3}
    assert b.real is None and b.prompt is None and dict(b.extra) == {"category": ["x", "y"]}
    assert ds.metainfo == {"source": "unit", "length": 2}
    assert ds.root == tmp_path and ds.source == f"annotation:{ann}"
    assert ds.missing_files() == []


def test_default_video_dir_prefers_sibling_evaluate(tmp_path: Path) -> None:
    root = tmp_path / "set"
    ann = _write(root / "annotations" / "x.json", {"data_list": [{"video_path_pd": "v.mp4"}]})
    # no evaluate/ yet: relative to the JSON's folder
    assert default_video_dir(ann) == root / "annotations"
    assert read_annotation(ann).entries[0].generated == root / "annotations" / "v.mp4"
    (root / "evaluate").mkdir()
    assert default_video_dir(ann) == root / "evaluate"
    ds = read_annotation(ann)
    assert ds.entries[0].generated == root / "evaluate" / "v.mp4"
    assert ds.name == "set"
    # an explicit video_dir wins
    assert read_annotation(ann, video_dir=tmp_path).entries[0].generated == tmp_path / "v.mp4"


def test_ids_explicit_stem_and_deduplicated(tmp_path: Path) -> None:
    ann = _write(
        tmp_path / "a.json",
        {
            "data_list": [
                {"video_path_pd": "x/clip.mp4"},
                {"video_path_pd": "y/clip.mp4"},
                {"video_path_pd": "z.mp4", "id": 7},
                {"video_path_pd": "w.mp4", "id": "clip"},  # explicit id takes the stem's name
            ]
        },
    )
    ds = read_annotation(ann)
    # explicit ids are reserved first; stem-derived ids that collide get __<index>
    assert ds.ids == ["clip__0", "clip__1", "7", "clip"]
    assert "id" not in ds.entries[2].extra
    # id_field=None: ids from stems, the id field stays an extra field
    ds2 = read_annotation(ann, id_field=None)
    assert ds2.ids == ["clip", "clip__1", "z", "w"]
    assert ds2.entries[2].extra["id"] == 7


def test_duplicate_explicit_ids_are_an_error(tmp_path: Path) -> None:
    ann = _write(
        tmp_path / "dup.json",
        {
            "data_list": [
                {"video_path_pd": "a.mp4", "id": "k"},
                {"video_path_pd": "b.mp4"},
                {"video_path_pd": "c.mp4", "id": "k"},
            ]
        },
    )
    with pytest.raises(DatasetError) as exc:
        read_annotation(ann)
    msg = str(exc.value)
    assert str(ann) in msg and "'k'" in msg and "[0, 2]" in msg


def test_dataset_rejects_duplicate_ids() -> None:
    e = Entry("same", Path("/a.mp4"))
    with pytest.raises(DatasetError, match="duplicated: 'same'"):
        Dataset("d", [e, Entry("same", Path("/b.mp4"))])


def test_round_trip(tmp_path: Path) -> None:
    vdir = tmp_path / "videos"
    touch(vdir, "g1.mp4", "r1.mp4", "sub/g2.webm", "extra_real.mov")
    ds = Dataset(
        name="rt",
        entries=[
            Entry(
                "first",
                vdir / "g1.mp4",
                vdir / "r1.mp4",
                "a prompt, with ünïcode",
                {"model": "m", "scores": [1.5, 2]},
            ),
            Entry("second", vdir / "sub" / "g2.webm", None, None, {"nested": {"k": 1}}),
            Entry("3", vdir / "g1.mp4", None, "same file, other id"),
        ],
        metainfo={"length": 3, "note": "x"},
        extra_reals=[vdir / "extra_real.mov"],
    )
    out = write_annotation(ds, tmp_path / "annotations" / "rt.json", vdir)
    raw = json.loads(out.read_text(encoding="utf-8"))
    assert raw["data_list"][1]["video_path_pd"] == "sub/g2.webm"  # relative, POSIX separators
    assert raw["data_list"][1]["video_path_gt"] is None
    assert raw["metainfo"]["extra_reals"] == ["extra_real.mov"]
    back = read_annotation(out, vdir)
    for a, b in zip(ds.entries, back.entries, strict=True):
        assert (a.id, a.generated, a.real, a.prompt, dict(a.extra)) == (
            b.id,
            b.generated,
            b.real,
            b.prompt,
            dict(b.extra),
        )
    assert back.metainfo == ds.metainfo and back.extra_reals == ds.extra_reals
    # writing what was read gives the same bytes
    out2 = write_annotation(back, tmp_path / "again.json", vdir)
    assert out2.read_bytes() == out.read_bytes()


def test_write_rejects_extra_fields_that_clash(tmp_path: Path) -> None:
    ds = Dataset("c", [Entry("a", tmp_path / "a.mp4", extra={"video_path_gt": "x"})])
    with pytest.raises(DatasetError, match="video_path_gt"):
        write_annotation(ds, tmp_path / "c.json", tmp_path)


def test_toy_annotation_reads(toy_dir: Path) -> None:
    ds = read_annotation(toy_dir / "annotations" / "evaluate.json")
    assert len(ds) == 11
    assert all(e.real == e.generated for e in ds.entries)  # the toy set pairs every video with itself
    assert ds.missing_files() == []


MALFORMED = [
    # (file text, expected fragments besides the file name)
    ('{\n  "data_list": [\n    {"video_path_pd": "a.mp4",}\n  ]\n}', ["invalid JSON", "line 3", "column"]),
    ('{"metainfo": {}}', ["missing 'data_list'"]),
    ('[{"video_path_pd": "a.mp4"}]', ["expected a JSON object", "data_list"]),
    ('{"data_list": {"video_path_pd": "a.mp4"}}', ["'data_list' must be a list"]),
    ('{"data_list": [{"video_path_pd": "a.mp4"}, "b.mp4"]}', ["data_list[1]", "expected an object"]),
    ('{"data_list": [{"video_path_gt": "a.mp4"}]}', ["data_list[0]", "'video_path_pd'", "missing"]),
    (
        '{"data_list": [{"video_path_pd": "a.mp4"}, {"video_path_pd": "  "}]}',
        ["data_list[1]", "'video_path_pd'", "empty"],
    ),
    ('{"data_list": [{"video_path_pd": 5}]}', ["data_list[0]", "'video_path_pd'", "expected a string"]),
    ('{"data_list": [{"video_path_pd": "a.mp4", "prompt_gt": 12}]}', ["data_list[0]", "'prompt_gt'", "int"]),
    (
        '{"data_list": [{"video_path_pd": "a.mp4"}, {"video_path_pd": "b.mp4", "video_path_gt": ["r.mp4"]}]}',
        ["data_list[1]", "'video_path_gt'", "list"],
    ),
    ('{"data_list": [{"video_path_pd": "a.mp4", "id": [1]}]}', ["data_list[0]", "'id'", "string or integer"]),
    ('{"metainfo": [], "data_list": []}', ["'metainfo' must be an object"]),
]


@pytest.mark.parametrize(("text", "fragments"), MALFORMED)
def test_malformed_messages_name_file_entry_and_field(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    ann = tmp_path / "bad.json"
    ann.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError) as exc:
        read_annotation(ann)
    msg = str(exc.value)
    assert str(ann) in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)
    assert "—" in msg  # every message carries a fix after the dash


def test_missing_file_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        read_annotation(tmp_path / "nope.json")
