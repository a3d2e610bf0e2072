"""The ``videophy`` metric through the engine, on the tiny checkpoint (tests/backbones/videophy_tiny.py).

The network, prompts, tokenisation and reading are checked against the authors' code in
tests/backbones/test_videophy.py; here: the metric's spec, the engine's frames (32 at segment centres, also for
a video shorter than 32 frames), the two outputs equal to the scorer on the same frames, a missing prompt,
determinism across runs and batch sizes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentencepiece")

from aigve.backbones.base import ScorerInput  # noqa: E402
from aigve.backbones.videophy import VideophyScorer  # noqa: E402
from aigve.data.dataset import Dataset  # noqa: E402
from aigve.engine import Engine, RunConfig  # noqa: E402
from aigve.errors import UsageError  # noqa: E402
from aigve.metrics.catalog import get_metric_class  # noqa: E402
from aigve.types import Entry  # noqa: E402
from aigve.video.decode import decode_video  # noqa: E402
from aigve.video.sampling import Sampler  # noqa: E402
from tests.backbones.videophy_tiny import write_tiny_snapshot  # noqa: E402
from tests.conftest import smooth_clip  # noqa: E402


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_snapshot(tmp_path_factory.mktemp("videophy-metric") / "snapshot")


def test_spec_and_options() -> None:
    cls = get_metric_class("videophy")
    spec = cls.spec
    assert spec.family == "multi_aspect" and spec.inputs == ("generated", "prompt")
    assert [(o.name, o.higher_is_better, o.range) for o in spec.outputs] == [
        ("videophy_sa", True, (0.0, 1.0)),
        ("videophy_pc", True, (0.0, 1.0)),
    ]
    assert spec.weights == ("videocon_physics",)
    (req,) = cls().effective_requests()
    assert req.sampler == Sampler("segments", n=32) and req.extractor == "videophy"
    for bad in ({"num_frames": 0}, {"max_length": 12}, {"dtype": "int8"}, {"colour": 1}):
        with pytest.raises(UsageError):
            cls(**bad)


def test_engine_run_missing_prompt_short_video_and_determinism(
    snapshot: Path, tmp_path: Path, make_video
) -> None:  # noqa: ANN001
    short = make_video("short.mp4", smooth_clip(7, 48, 64, seed=1))  # 7 frames < 32: frames repeat
    long = make_video("long.mp4", smooth_clip(40, 64, 48, seed=2))
    noprompt = make_video("noprompt.mp4", smooth_clip(12, seed=3))
    ds = Dataset(
        "t",
        [
            Entry(id="short", generated=short, prompt="A ball rolls to the right."),
            Entry(id="long", generated=long, prompt="Leaves drift across a lawn."),
            Entry(id="noprompt", generated=noprompt, prompt=None),
        ],
    )

    def run(out: str, batch_size: int):  # noqa: ANN202
        cfg = RunConfig(
            metrics=["videophy"],
            metric_options={"videophy": {"weights": str(snapshot)}},
            cache_dir=None,
            bootstrap=0,
            batch_size=batch_size,
        )
        return Engine(ds, cfg).run()

    a = run("a", 1)
    df = a.per_video
    bad = df[df.video_id == "noprompt"]
    assert set(bad.output) == {"videophy_sa", "videophy_pc"}  # both outputs get the error record
    assert bad.value.isna().all() and bad.error.str.contains("no prompt").all()
    good = df[df.video_id != "noprompt"]
    assert good.error.isna().all() and good.value.between(0.0, 1.0).all() and len(good) == 4

    # the values are the scorer's on the engine's frames: 32 rows at the segment centres of the decoded clip
    sc = VideophyScorer(weights=str(snapshot))
    for e in ds.entries[:2]:
        clip = decode_video(e.generated).frames
        rows = Sampler("segments", n=32).select(len(clip))
        assert len(rows) == 32
        out = sc.score([ScorerInput(e.id, clip[rows], None, {"prompt": str(e.prompt)})])[0][0]
        got = good[good.video_id == e.id].set_index("output").value
        assert got["videophy_sa"] == pytest.approx(out[0], abs=1e-6)
        assert got["videophy_pc"] == pytest.approx(out[1], abs=1e-6)

    b = run("b", 3)  # another batch size, another run: the same numbers
    va = a.per_video.sort_values(["video_id", "output"]).value.to_numpy()
    vb = b.per_video.sort_values(["video_id", "output"]).value.to_numpy()
    assert np.allclose(va, vb, atol=1e-6, equal_nan=True)
