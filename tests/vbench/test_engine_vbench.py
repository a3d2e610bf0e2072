"""The VBench dimensions through the engine: one decode per video for every dimension, one CLIP forward pass
shared by ``clipsim`` and ``vbench_background_consistency``, a missing checkpoint fails one dimension only, and
the run's results carry the VBench totals."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from aigve.backbones.clip import ClipModel  # noqa: E402
from aigve.data.dataset import Dataset  # noqa: E402
from aigve.engine import Engine, RunConfig  # noqa: E402
from aigve.types import Entry  # noqa: E402
from aigve.video.sampling import Window  # noqa: E402
from tests.backbones.vl_tiny import make_tiny_clip  # noqa: E402
from tests.conftest import smooth_clip  # noqa: E402
from tests.vbench.test_dimensions import save_dino, tiny_timm_vit  # noqa: E402

DIMS = ["vbench_subject_consistency", "vbench_background_consistency", "vbench_temporal_flickering"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = tmp_path_factory.mktemp("vb")
    clip = make_tiny_clip(root / "clip", seed=0)
    dino = save_dino(tiny_timm_vit(1), root / "dino.pth")
    return clip, dino


@pytest.fixture
def dataset(make_video) -> Dataset:
    entries = []
    for i in range(3):
        p = make_video(f"gen{i}.mp4", smooth_clip(6 + 2 * i, seed=i))
        entries.append(Entry(id=f"v{i}", generated=p, prompt=f"a cat {i}"))
    return Dataset(name="vb", entries=entries)


def _run(ds: Dataset, tmp: Path, metrics: list[str], opts: dict) -> object:
    cfg = RunConfig(
        metrics=metrics, metric_options=opts, cache_dir=tmp / "cache", bootstrap=0, progress=False
    )
    return Engine(ds, cfg).run()


def test_one_decode_one_clip_forward_and_totals(
    dataset: Dataset, assets, tmp_path: Path, monkeypatch
) -> None:
    import aigve.video.decode as dec

    clip, dino = assets
    decoded: list[str] = []
    orig = dec.decode_video

    def counting(path, window=Window(), **kw):  # type: ignore[no-untyped-def]
        decoded.append(Path(path).name)
        return orig(path, window, **kw)

    monkeypatch.setattr(dec, "decode_video", counting)
    forwards: list[int] = []
    real_encode = ClipModel.encode_images
    monkeypatch.setattr(
        ClipModel, "encode_images", lambda self, fr: forwards.append(len(fr)) or real_encode(self, fr)
    )
    opts = {
        "clipsim": {"weights": str(clip), "num_frames": "all", "image_backend": "vbench"},
        "vbench_background_consistency": {"weights": str(clip)},
        "vbench_subject_consistency": {"weights": str(dino)},
    }
    res = _run(dataset, tmp_path, [*DIMS, "clipsim"], opts)
    assert res.exit_code == 0, res.errors
    assert sorted(decoded) == ["gen0.mp4", "gen1.mp4", "gen2.mp4"]  # one decode per video for all
    assert sum(forwards) == 6 + 8 + 10  # every frame through CLIP once, for both metrics
    d = res.to_dict()["vbench"]
    assert set(d["dimensions"]) == {x.removeprefix("vbench_") for x in DIMS}
    assert d["semantic_score"] is None and d["total_score"] is None and not d["complete"]
    # frame-weighted like VBench: sum of terms / count of terms
    per = res.wide()
    vals = per["vbench_subject_consistency"].to_numpy()
    w = per["vbench_subject_consistency.vbench_subject_consistency_frames"].to_numpy()
    assert d["dimensions"]["subject_consistency"]["raw"] == pytest.approx(float((vals * w).sum() / w.sum()))
    assert list(w) == [5.0, 7.0, 9.0]


def test_missing_checkpoint_fails_that_dimension_only(dataset: Dataset, assets, tmp_path: Path) -> None:
    clip, _ = assets
    opts = {"vbench_background_consistency": {"weights": str(clip)}}
    res = _run(dataset, tmp_path, DIMS, opts)
    agg = res.aggregates["vbench_subject_consistency"]
    msg = str(agg.error or "") + " ".join(str(r.error) for r in res.records if r.error)
    assert "dino_vitbase16_pretrain.pth" in msg or "dino_vitb16" in msg
    for m in ("vbench_background_consistency", "vbench_temporal_flickering"):
        assert res.aggregates[m].error is None and np.isfinite(res.value(m))
    vb = res.to_dict()["vbench"]
    assert "subject_consistency" in vb["missing"] and "temporal_flickering" in vb["dimensions"]
