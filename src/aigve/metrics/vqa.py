"""No-reference video quality models: ``gstvqa``, ``simplevqa``, ``dover``, ``lightvqa``.

``lightvqa`` — Light-VQA (Dong et al., ACM MM 2023; wenzhouyidu/Light-VQA, code commit eecf49d1), the
published predecessor of Light-VQA+ (whose model code is unpublished: ``lightvqa_plus`` stays unavailable
and says so). Eight slots per video, each pairing a key frame (Swin-S of the Light-VQA checkpoint at
512x960, hand-crafted brightness and noise features) with that second's SlowFast motion feature and a
brightness-consistency feature; the MLP head scores each slot in [0, 100] and the metric is their mean (as
the authors' ``test.py``). Key frames, padding and the feature details: :mod:`aigve.backbones.lightvqa`.
Weights: the Light-VQA checkpoint (registry ``lightvqa``, Google Drive only: option ``weights``) and
``SLOWFAST_8x8_R50.pyth`` (``slowfast_r50``, option ``slowfast_weights``).

``gstvqa`` — GSTVQA (Chen et al., IEEE TCSVT 2021) with one of the authors' released checkpoints
``training-all-data-GSTVQA-<checkpoint>-EXP0-best`` (option ``checkpoint``: ``konvid`` (default, KoNViD-1k,
registry ``gstvqa_konvid``), ``cvd14`` (CVD2014), ``liveq`` (LIVE-Qualcomm) or ``livev`` (LIVE-VQC); the
original AIGVE flag ``--gstvqa-model`` is this metric's ``weights`` option, an explicit path of the chosen
checkpoint) on the VGG16 five-stage mean ‖ std frame features it was trained with (extractor
``vgg16_meanstd``, weights ``tv_vgg16``; option ``vgg_weights``).

How a video is scored (as the authors' ``cross_test.py`` does, commit 8463c9c3):

- every sampled frame gives one 2944-d feature row; ``mean_var`` is the per-channel population std over all
  rows of the 1472 mean features; the first ``max_len`` (500) rows go through the network;
- the network's output is on the training label scale ``MOS / max(MOS)``; the authors report
  ``max(MOS) * output`` with the training set's largest MOS. ``gstvqa`` is that predicted MOS of the
  checkpoint's training set: ``mos_scale`` (default ``None`` = the checkpoint's: KoNViD-1k 4.64, CVD2014
  93.38, LIVE-Qualcomm 73.643, LIVE-VQC 94.287; an explicit ``weights`` path keeps the chosen checkpoint's
  scale; a number overrides it). The nominal range follows the checkpoint: 1-5 for KoNViD-1k (ACR scale),
  0-100 for the other three (the catalogue row documents the default; the regression is not bounded);
  provenance records ``checkpoint``, the ``mos_scale`` used and that range. ``gstvqa_raw`` is the network
  output itself. Higher = better technical quality.

Short clips. The network's two 15-tap attention convolutions need at least 29 frames (generated videos are
often shorter: the AIGVE toy clips have 16). ``pad`` decides: ``"repeat_last"`` (default) repeats the last
frame's feature row up to 29 rows (the same as repeating the last frame: VGG features are per frame);
``"stretch"`` resamples the rows in time by nearest neighbour to 29 rows (each frame held ~29/T times, as a
higher frame rate would); ``"none"`` fails such videos with a ``MetricInputError``. ``mean_var`` is always
computed on the real frames, before padding. The original AIGVE port padded with black frames instead.

Design note: the VGG features are the expensive part and are cached by the engine (extractor
``vgg16_meanstd``); the 0.5 M-parameter temporal network is the ``gstvqa`` scorer
(:mod:`aigve.backbones.gstvqa`), which reads those features and whose output is cached too, so a different
``weights`` file re-scores without recomputing features. It runs on the run's ``--device``. A missing
checkpoint is a ``WeightsError`` (naming the file and where to put it) recorded for every video; the run
goes on.

No-reference neural video quality: ``simplevqa``.

``simplevqa`` (Sun et al., "A Deep Learning based No-reference Quality Assessment Model for UGC Videos",
ACM MM 2022; code sunwei925/SimpleVQA @ 017edda, checkpoint ``UGC_BVQA_model.pth`` trained on LSVQ):
per whole second of the video, the SimpleVQA ResNet-50 mean/std features of the key frame
(``simplevqa_spatial``) and the SlowFast R50 motion features of the 32-frame clip starting there
(``slowfast_r50``) go through the checkpoint's linear head; the score is the mean over seconds.

Padding policy (the model's window is 8 seconds): a video with fewer than ``min_seconds`` (default 8)
seconds has its last second's features repeated up to 8 rows before averaging, which is what the authors'
training data preparation did for both branches (``extract_frame_LSVQ.py`` repeats the last key frame,
``VideoDataset_NR_LSVQ_SlowFast_feature`` the last clip); their ``test_demo.py`` pads only the motion
branch and then fails on the size mismatch. Longer videos use every second, as ``test_demo.py`` does.
So for a 2-second clip the score is ``(q0 + 7 q1) / 8``. ``min_seconds=1`` turns the padding off.
A video shorter than one second counts as one second (its key frame is frame 0).

Scale: LSVQ MOS / 20, i.e. about 0-5, higher is better; the head is linear, so values outside are
possible and are not clipped.

Weights (none can be downloaded on a machine without Google Drive access): ``weights`` = path of
``UGC_BVQA_model.pth`` (the original AIGVE flag ``--simplevqa-model``), ``slowfast_weights`` = path of
``SLOWFAST_8x8_R50.pyth``; otherwise the weights registry's ``simplevqa_ugc`` / ``slowfast_r50``. A
missing file fails the metric with a ``WeightsError`` naming it and where to put it; the run goes on.

``dover``: DOVER (Wu et al., ICCV 2023), technical and aesthetic quality of a video and their fusion.

The ``dover`` backbone (:mod:`aigve.backbones.dover`) samples DOVER's fragment (technical) and resized
(aesthetic) views of the generated video — seeded, so a score is repeatable — and returns the raw branch
scores ``t`` and ``a`` (means of the two heads' score maps). This module rescales them exactly as the
authors' released ``evaluate_a_set_of_videos.py`` does (VQAssessment/DOVER, f1ddc96):

- ``zt = (t - 0.1107) / 0.07355``, ``za = (a + 0.08285) / 0.03774`` (standardised against the authors'
  reference predictions);
- ``dover_technical = sigmoid(zt)``, ``dover_aesthetic = sigmoid(za)``;
- ``dover = sigmoid(0.6104 * zt + 0.3896 * za)``, the fused "overall" score (also what
  ``evaluate_one_video.py -f`` prints).

All three lie in (0, 1), higher is better (the authors' CSV multiplies them by 100). Weights: ``DOVER.pth``
(registry ``dover``), which must be obtained from the authors' release; without it every video gets an
error record naming the file and where to put it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from aigve.backbones.gstvqa import (
    EXTRACTOR,
    GSTVQA_WEIGHTS,
    PAD_MODES,
    VGG_WEIGHTS,
    checkpoint_weights_name,
)
from aigve.backbones.lightvqa import KEY_FRAME_MODES
from aigve.backbones.nets.gstvqa import (
    CHECKPOINT_DATASETS,
    CHECKPOINT_RANGES,
    CHECKPOINT_SCALES,
    DEFAULT_CHECKPOINT,
    MAX_LEN,
    MIN_FRAMES,
)
from aigve.backbones.simplevqa import SIMPLEVQA_WINDOW
from aigve.errors import MetricInputError, UsageError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.types import Entry
from aigve.video.sampling import ALL_FRAMES, Sampler

log = logging.getLogger(__name__)

SCORER = "gstvqa"  # the GSTVQA temporal network (aigve.backbones.gstvqa) on vgg16_meanstd features
GSTVQA_ROLE = "frames"


@register_metric
class GSTVQA(VideoMetric):
    """GSTVQA no-reference quality: predicted MOS (KoNViD-1k by default) from VGG16 mean/std features + GRU +
    pyramid pooling."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="gstvqa",
        family="nn_based_video",
        description=(
            "GSTVQA no-reference technical quality (KoNViD-1k checkpoint by default; option checkpoint) on "
            "VGG16 five-stage mean/std frame features; predicted MOS"
        ),
        inputs=("generated",),
        backbone=EXTRACTOR,
        outputs=(
            OutputSpec(
                "gstvqa",
                True,
                (1.0, 5.0),
                "predicted MOS = mos_scale x network output; default checkpoint konvid: KoNViD-1k MOS "
                "(1-5 ACR scale, nominal range; the regression is unbounded); the range follows checkpoint "
                "(cvd14, liveq, livev: 0-100 MOS scales)",
            ),
            OutputSpec(
                "gstvqa_raw",
                True,
                (None, None),
                "network output on its training label scale MOS / max(MOS) (about 0.26-1.0 for konvid)",
            ),
        ),
        citation=(
            "Chen, Zhu, Li, Lu, Fan, Wang: Learning Generalized Spatial-Temporal Deep Feature Representation "
            "for No-Reference Video Quality Assessment, IEEE TCSVT 32(4), 2022 (github.com/Baoliang93/GSTVQA)"
        ),
        extra="nnvqa",
        weights=(GSTVQA_WEIGHTS, VGG_WEIGHTS),
        options={
            "checkpoint": DEFAULT_CHECKPOINT,
            "vgg_weights": None,
            "protocol": "all",
            "n": None,
            "fps": None,
            "max_len": MAX_LEN,
            "pad": "repeat_last",
            "mos_scale": None,
            "tap": "relu",
            "resize": None,
        },
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        if o["pad"] not in PAD_MODES:
            raise UsageError(f"gstvqa: pad must be one of {PAD_MODES}, got {o['pad']!r}")
        if int(o["max_len"]) < MIN_FRAMES:
            raise UsageError(f"gstvqa: max_len must be >= {MIN_FRAMES}, got {o['max_len']}")
        checkpoint_weights_name(o["checkpoint"])  # UsageError unless one of CHECKPOINTS
        if o["mos_scale"] is not None:
            try:
                scale = float(o["mos_scale"])
            except (TypeError, ValueError):
                scale = math.nan
            if not (math.isfinite(scale) and scale > 0):
                raise UsageError(
                    f"gstvqa: mos_scale must be a positive number or null, got {o['mos_scale']!r}"
                )
        self.sampler = Sampler(o["protocol"], n=o["n"], fps=o["fps"])  # UsageError on bad combinations

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(GSTVQA_ROLE, SCORER, self.sampler, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        """The ``gstvqa`` scorer's options: its checkpoint and sequence policy, and the VGG extractor's."""
        opts: dict[str, Any] = {"max_len": int(self.options["max_len"]), "pad": self.options["pad"]}
        if self.options["checkpoint"] != DEFAULT_CHECKPOINT:  # absent = konvid (keeps default cache keys)
            opts["checkpoint"] = self.options["checkpoint"]
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        if self.options.get("vgg_weights"):
            opts["vgg_weights"] = str(self.options["vgg_weights"])
        if self.options.get("tap") not in (None, "relu"):
            opts["tap"] = self.options["tap"]
        if self.options.get("resize") is not None:
            opts["resize"] = int(self.options["resize"])
        return opts

    @property
    def mos_scale(self) -> float:
        """The scale ``gstvqa`` = scale x raw uses: ``mos_scale`` when set, else the checkpoint's max MOS."""
        if self.options["mos_scale"] is not None:
            return float(self.options["mos_scale"])
        return CHECKPOINT_SCALES[self.options["checkpoint"]]

    def provenance(self) -> dict[str, Any]:
        prov = super().provenance()
        ck = self.options["checkpoint"]
        prov["padding"] = self.options["pad"]
        prov["checkpoint"] = ck
        prov["training_set"] = CHECKPOINT_DATASETS[ck]
        prov["mos_scale"] = self.mos_scale
        prov["gstvqa_nominal_range"] = list(CHECKPOINT_RANGES[ck])
        return prov

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        raw = float(np.asarray(feats[GSTVQA_ROLE]).reshape(-1)[0])
        return {"gstvqa": self.mos_scale * raw, "gstvqa_raw": raw}


SIMPLEVQA_ROLE = "quality"


@register_metric
class SimpleVQA(VideoMetric):
    """SimpleVQA technical quality of a generated video (no reference)."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="simplevqa",
        family="nn_based_video",
        description=(
            "SimpleVQA no-reference quality: ResNet-50 key-frame features + SlowFast motion features per "
            "second, linear head trained on LSVQ, mean over seconds"
        ),
        inputs=("generated",),
        backbone="simplevqa_spatial+slowfast_r50",
        outputs=(
            OutputSpec(
                "simplevqa",
                True,
                (None, None),
                "predicted quality on LSVQ's MOS/20 scale (about 0-5; linear head, not clipped)",
            ),
        ),
        citation=(
            "Sun, Min, Lu, Zhai, Zhai, A Deep Learning based No-reference Quality Assessment Model for UGC "
            "Videos, ACM MM 2022"
        ),
        extra="nnvqa",
        requires=(),
        weights=("simplevqa_ugc", "slowfast_r50"),
        options={"weights": None, "slowfast_weights": None, "min_seconds": SIMPLEVQA_WINDOW},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        ms = self.options["min_seconds"]
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 1:
            raise UsageError(f"simplevqa: min_seconds must be an integer >= 1, got {ms!r}")

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(SIMPLEVQA_ROLE, "simplevqa_head", ALL_FRAMES, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        """The ``simplevqa_head`` scorer's options (its two upstream extractors' weights and the padding)."""
        opts: dict[str, Any] = {"min_seconds": self.options["min_seconds"]}
        for k in ("weights", "slowfast_weights"):
            if self.options.get(k):
                opts[k] = str(self.options[k])
        return opts

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {"simplevqa": float(np.asarray(feats[SIMPLEVQA_ROLE]).reshape(-1)[0])}


DOVER_ROLE = "dover"
TECH_MEAN, TECH_STD = 0.1107, 0.07355
AES_MEAN, AES_STD = -0.08285, 0.03774
TECH_WEIGHT, AES_WEIGHT = 0.6104, 0.3896
_VIEW_OPTIONS = (
    "num_clips",
    "clip_len",
    "frame_interval",
    "fragments",
    "fragment_size",
    "resize",
    "antialias",
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def dover_scores(technical: float, aesthetic: float) -> dict[str, float]:
    """Raw branch scores -> ``{"dover", "dover_technical", "dover_aesthetic"}`` in (0, 1), the authors'
    rescaling (``fuse_results`` of ``evaluate_a_set_of_videos.py``)."""
    zt = (float(technical) - TECH_MEAN) / TECH_STD
    za = (float(aesthetic) - AES_MEAN) / AES_STD
    return {
        "dover": _sigmoid(TECH_WEIGHT * zt + AES_WEIGHT * za),
        "dover_technical": _sigmoid(zt),
        "dover_aesthetic": _sigmoid(za),
    }


@register_metric
class Dover(VideoMetric):
    """DOVER technical, aesthetic and fused quality (no reference)."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="dover",
        family="nn_based_video",
        description=(
            "DOVER: technical quality (Swin-T 3-D on 7x7 fragments) and aesthetic quality (ConvNeXt-T 3-D on "
            "224x224 frames), fused; seeded view sampling"
        ),
        inputs=("generated",),
        backbone="dover",
        outputs=(
            OutputSpec(
                "dover",
                True,
                (0.0, 1.0),
                "fused overall quality: sigmoid(0.6104 * zt + 0.3896 * za) (authors' rescaling)",
            ),
            OutputSpec(
                "dover_technical",
                True,
                (0.0, 1.0),
                "technical quality: sigmoid((t - 0.1107) / 0.07355) of the technical branch's raw score t",
            ),
            OutputSpec(
                "dover_aesthetic",
                True,
                (0.0, 1.0),
                "aesthetic quality: sigmoid((a + 0.08285) / 0.03774) of the aesthetic branch's raw score a",
            ),
        ),
        citation=(
            "Wu et al., Exploring Video Quality Assessment on User Generated Contents from Aesthetic and "
            "Technical Perspectives, ICCV 2023"
        ),
        extra="nnvqa",
        weights=("dover",),
        options={
            "seed": 0,
            "sampling": "random",
            "num_clips": 3,
            "clip_len": 32,
            "frame_interval": 2,
            "fragments": 7,
            "fragment_size": 32,
            "resize": 224,
            "antialias": False,
        },
    )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(DOVER_ROLE, "dover", ALL_FRAMES, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {k: self.options[k] for k in ("seed", "sampling", *_VIEW_OPTIONS)}
        if self.options.get("weights"):
            opts["weights"] = self.options["weights"]
        return opts

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        f = np.asarray(feats[DOVER_ROLE], dtype=np.float64)
        if f.shape != (1, 2) or not np.all(np.isfinite(f)):
            raise MetricInputError(
                f"{entry.generated}: dover expected one finite [technical, aesthetic] row, got {f.shape} — "
                "clear the feature cache and run again"
            )
        return dover_scores(f[0, 0], f[0, 1])


LIGHTVQA_ROLE = "quality"


@register_metric
class LightVQA(VideoMetric):
    """Light-VQA quality of a (low-light enhanced) video, no reference."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="lightvqa",
        family="nn_based_video",
        description=(
            "Light-VQA no-reference quality: Swin-S semantic, brightness and noise features of 8 key frames "
            "+ SlowFast motion and brightness consistency per slot, MLP head trained on LLVE-QA, mean of 8 "
            "slot scores"
        ),
        inputs=("generated",),
        backbone="lightvqa_spatial+slowfast_r50+lightvqa_brightness",
        outputs=(
            OutputSpec(
                "lightvqa",
                True,
                (0.0, 100.0),
                "predicted LLVE-QA MOS (0-100; each slot's score is clamped to [0, 100], then averaged)",
            ),
        ),
        citation=(
            "Dong, Liu, Gao, Zhou, Tan, Zhai: Light-VQA: A Multi-Dimensional Quality Assessment Model for "
            "Low-Light Video Enhancement, ACM MM 2023 (github.com/wenzhouyidu/Light-VQA)"
        ),
        extra="nnvqa",
        weights=("lightvqa", "slowfast_r50"),
        options={"weights": None, "slowfast_weights": None, "key_frames": "first8"},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.options["key_frames"] not in KEY_FRAME_MODES:
            raise UsageError(
                f"lightvqa: key_frames must be one of {KEY_FRAME_MODES}, got {self.options['key_frames']!r}"
            )

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(LIGHTVQA_ROLE, "lightvqa_head", ALL_FRAMES, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        """The ``lightvqa_head`` scorer's options (its upstream extractors' weights and key-frame rule)."""
        opts: dict[str, Any] = {}
        if self.options["key_frames"] != "first8":
            opts["key_frames"] = self.options["key_frames"]
        for k in ("weights", "slowfast_weights"):
            if self.options.get(k):
                opts[k] = str(self.options[k])
        return opts

    def provenance(self) -> dict[str, Any]:
        prov = super().provenance()
        prov["key_frames"] = self.options["key_frames"]
        prov["padding"] = (
            "fewer than 8 frames: last frame repeated; fewer than 8 seconds: last second's SlowFast row "
            "repeated; brightness-consistency slots of < 2 frames (T < 16): 0"
        )
        return prov

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        return {"lightvqa": float(np.asarray(feats[LIGHTVQA_ROLE]).reshape(-1)[0])}
