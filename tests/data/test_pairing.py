"""The name-based pairing rule of ``aigve prepare``."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigve.data import scan_and_pair
from aigve.data.pairing import split_generated
from aigve.errors import UsageError

from .conftest import touch


@pytest.mark.parametrize(
    ("stem", "key"),
    [
        ("4056_synthetic", "4056"),
        ("4056-synthetic", "4056"),
        ("4056synthetic", "4056"),
        ("4056-Generated", "4056"),
        ("CLIP_A_SYNTHETIC", "CLIP_A"),
        ("a_b-generated", "a_b"),
        ("4056", None),
        ("synthetic", None),  # nothing left for the real name: treated as a real video
        ("_synthetic", None),
        ("synthetic_4056", None),  # the token must end the stem
    ],
)
def test_split_generated(stem: str, key: str | None) -> None:
    assert split_generated(stem) == key


def test_separators_case_and_extensions(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "4056_synthetic.mp4", "4056.mp4",
        "77-Generated.webm", "77.MOV",
        "9synthetic.mp4", "9.gif",
        "Mixed_SYNTHETIC.mkv", "mixed.avi",
    )  # fmt: skip
    r = scan_and_pair(tmp_path)
    got = {(p.key, p.generated.name, p.real.name) for p in r.pairs}
    assert got == {
        ("4056", "4056_synthetic.mp4", "4056.mp4"),
        ("77", "77-Generated.webm", "77.MOV"),
        ("9", "9synthetic.mp4", "9.gif"),
        ("Mixed", "Mixed_SYNTHETIC.mkv", "mixed.avi"),
    }
    assert r.no_gt == [] and r.no_gen == [] and r.duplicates == []


def test_real_extension_priority(tmp_path: Path) -> None:
    touch(tmp_path, "5_synthetic.mp4", "5.gif", "5.webm", "5.mov", "6-generated.mp4", "6.m4v", "6.avi")
    r = scan_and_pair(tmp_path)
    assert {p.key: p.real.name for p in r.pairs} == {"5": "5.mov", "6": "6.avi"}
    dups = {(d.side, d.key): (d.chosen.name, [o.name for o in d.others]) for d in r.duplicates}
    assert dups == {("real", "5"): ("5.mov", ["5.webm", "5.gif"]), ("real", "6"): ("6.avi", ["6.m4v"])}
    touch(tmp_path, "5.mp4")
    assert {p.key: p.real.name for p in scan_and_pair(tmp_path).pairs}["5"] == "5.mp4"


def test_generated_duplicates(tmp_path: Path) -> None:
    touch(tmp_path, "1_synthetic.webm", "1-generated.mp4", "1synthetic.mp4", "1.mp4")
    r = scan_and_pair(tmp_path)
    assert [(p.generated.name, p.real.name) for p in r.pairs] == [("1-generated.mp4", "1.mp4")]
    (d,) = r.duplicates
    assert d.side == "generated" and d.chosen.name == "1-generated.mp4"
    assert [o.name for o in d.others] == ["1synthetic.mp4", "1_synthetic.webm"]  # .mp4 before .webm
    assert "duplicate generated '1'" in r.summary()


def test_unpaired_both_ways_and_ignored(tmp_path: Path) -> None:
    touch(
        tmp_path, "a_synthetic.mp4", "b.mp4", "c_generated.mp4", "c.mp4", "notes.txt", ".hidden_synthetic.mp4"
    )
    r = scan_and_pair(tmp_path)
    assert [p.key for p in r.pairs] == ["c"]
    assert [p.name for p in r.no_gt] == ["a_synthetic.mp4"]
    assert [p.name for p in r.no_gen] == ["b.mp4"]
    assert [p.name for p in r.ignored] == ["notes.txt"]
    assert [(k, g.name, rr) for k, g, rr in r.generated] == [
        ("a", "a_synthetic.mp4", None),
        ("c", "c_generated.mp4", tmp_path / "c.mp4"),
    ]
    s = r.summary()
    assert "no_gt:  a_synthetic.mp4" in s and "no_gen: b.mp4" in s and "pairs:                1" in s


def test_custom_suffixes(tmp_path: Path) -> None:
    touch(tmp_path, "x_fake.mp4", "x.mp4", "y_synthetic.mp4", "y.mp4")
    r = scan_and_pair(tmp_path, ["fake"])
    assert [(p.key, p.generated.name) for p in r.pairs] == [("x", "x_fake.mp4")]
    # with only 'fake' as a token, y_synthetic.mp4 is a real video with no generated partner
    assert sorted(p.name for p in r.no_gen) == ["y.mp4", "y_synthetic.mp4"]
    with pytest.raises(UsageError):
        scan_and_pair(tmp_path, [])
    with pytest.raises(UsageError, match="not a folder"):
        scan_and_pair(tmp_path / "missing")
