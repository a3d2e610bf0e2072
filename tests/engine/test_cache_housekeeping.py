"""Feature cache robustness and housekeeping: broken entries are recomputed, leftovers of killed writes are
swept, `aigve cache info|prune|clear` report and free space (and never touch the weights folder)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from aigve.cli import main
from aigve.engine.cache import TMP_PREFIX, FeatureCache


def test_empty_or_cut_entries_are_dropped_and_recomputed(tmp_path: Path) -> None:
    c = FeatureCache(tmp_path)
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    for key, damage in (
        ("a" * 64, lambda p: p.write_bytes(b"")),
        ("b" * 64, lambda p: p.write_bytes(p.read_bytes()[:40])),
    ):
        c.put(key, arr)
        np.testing.assert_array_equal(c.get(key), arr)
        damage(c._path(key))  # an empty file (write lost in a crash) / a cut one
        assert c.get(key) is None and not c._path(key).exists()  # a miss, then recomputed by the engine
        c.put(key, arr)
        np.testing.assert_array_equal(c.get(key), arr)


def test_engine_recovers_from_an_empty_cache_entry(make_video, tmp_path: Path) -> None:
    from aigve import evaluate
    from tests.conftest import smooth_clip

    for i in range(2):
        make_video(f"v/{i}.mp4", smooth_clip(8, seed=i))
    kw = {"cache_dir": tmp_path / "cache", "bootstrap": 0, "report": False}
    first = evaluate(tmp_path / "v", ["flicker"], **kw)
    for p in (tmp_path / "cache" / "features").rglob("*.npy"):
        p.write_bytes(b"")
    again = evaluate(tmp_path / "v", ["flicker"], **kw)
    assert again.exit_code == 0 and again.value("flicker") == first.value("flicker")


def test_cache_command_info_prune_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = FeatureCache(tmp_path / "c")
    for k in ("1" * 64, "2" * 64):
        c.put(k, np.zeros((2, 2)))
    old = c._path("1" * 64)
    os.utime(old, (time.time() - 10 * 86400,) * 2)
    leftover = c.dir / "ab" / f"{TMP_PREFIX}xyz.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"partial")
    os.utime(leftover, (time.time() - 7200,) * 2)
    weights = tmp_path / "c" / "weights" / "model.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"w")

    assert main(["cache", "info", "--cache-dir", str(tmp_path / "c"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries"] == 2 and info["stale_tmp_files"] == 1
    assert main(["cache", "prune", "--cache-dir", str(tmp_path / "c")]) == 2  # needs --older-than
    capsys.readouterr()
    assert main(["cache", "prune", "--older-than", "5", "--cache-dir", str(tmp_path / "c"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["removed_files"] == 2 and out["entries"] == 1 and not old.exists() and not leftover.exists()
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "0 entries" in capsys.readouterr().out
    assert weights.exists()  # model weights are not the feature cache's to delete
