"""CSV / JSONL manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigve.data import read_manifest
from aigve.errors import DatasetError

from .conftest import touch


def test_csv_manifest(tmp_path: Path) -> None:
    touch(tmp_path / "v", "g1.mp4", "r1.mp4", "g2.mp4", "extra.mp4")
    m = tmp_path / "m.csv"
    m.write_text(
        "generated,real,prompt,id,model,score\n"
        'v/g1.mp4,v/r1.mp4,"a dog, running",first,modelA,4.5\n'
        "v/g2.mp4,,,,modelB,\n"
        ",v/extra.mp4,,,,\n",
        encoding="utf-8",
    )
    ds = read_manifest(m)
    assert ds.ids == ["first", "g2"]
    e1, e2 = ds.entries
    assert e1.generated == tmp_path / "v" / "g1.mp4" and e1.real == tmp_path / "v" / "r1.mp4"
    assert e1.prompt == "a dog, running"
    assert dict(e1.extra) == {"model": "modelA", "score": "4.5"}  # CSV values stay strings
    assert e2.real is None and e2.prompt is None and dict(e2.extra) == {"model": "modelB"}
    assert ds.extra_reals == [tmp_path / "v" / "extra.mp4"]
    assert ds.missing_files() == []


def test_jsonl_manifest_and_video_dir(tmp_path: Path) -> None:
    m = tmp_path / "sub" / "m.jsonl"
    m.parent.mkdir()
    rows = [
        {"generated": "a.mp4", "real": "ra.mp4", "prompt": "p", "scores": {"x": 1}},
        {"generated": "/abs/b.mp4", "id": 3},
        {"generated": "dir2/a.mp4"},
    ]
    m.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    ds = read_manifest(m)
    assert ds.ids == ["a", "3", "a__2"]
    assert ds.entries[0].generated == m.parent / "a.mp4"
    assert ds.entries[0].extra == {"scores": {"x": 1}}  # JSON types are kept
    assert ds.entries[1].generated == Path("/abs/b.mp4")
    assert read_manifest(m, video_dir=tmp_path).entries[0].generated == tmp_path / "a.mp4"


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("m.csv", "video,prompt\na.mp4,x\n", "needs a 'generated' column"),
        ("m.csv", "generated,prompt\n,x\n", "line 2 field 'generated': missing or empty"),
        ("m.csv", "generated\na.mp4,extra\n", "line 2 has more cells"),
        ("m.csv", "generated,id\na.mp4,k\nb.mp4,k\n", "duplicate entry ids"),
        ("m.jsonl", '{"generated": "a.mp4"}\n{"generated": "b.mp4",\n', "line 2 column"),
        ("m.jsonl", '["a.mp4"]\n', "line 1: expected a JSON object"),
        ("m.jsonl", '{"generated": 5}\n', "line 1 field 'generated': expected a string"),
        ("m.jsonl", '{"generated": "a.mp4", "id": 1.5}\n', "field 'id'"),
        ("m.jsonl", "\n", "no rows"),
        ("m.tsv", "generated\n", "unknown manifest type"),
    ],
)
def test_manifest_errors(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    m = tmp_path / name
    m.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError) as exc:
        read_manifest(m)
    assert fragment in str(exc.value) and str(m) in str(exc.value)
