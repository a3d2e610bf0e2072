"""No-reference video quality models: ``gstvqa``.

``gstvqa`` — GSTVQA (Chen et al., IEEE TCSVT 2021) with the authors' KoNViD-1k checkpoint
``training-all-data-GSTVQA-konvid-EXP0-best`` (registry ``gstvqa_konvid``; the original AIGVE flag
``--gstvqa-model`` is this metric's ``weights`` option) on the VGG16 five-stage mean ‖ std frame features it
was trained with (extractor ``vgg16_meanstd``, weights ``tv_vgg16``; option ``vgg_weights``).

How a video is scored (as the authors' ``cross_test.py`` does, commit 8463c9c3):

- every sampled frame gives one 2944-d feature row; ``mean_var`` is the per-channel population std over all
  rows of the 1472 mean features; the first ``max_len`` (500) rows go through the network;
- the network's output is on the training label scale ``MOS / max(MOS)``; the authors report
  ``max(MOS) * output``. ``gstvqa`` is that predicted KoNViD-1k MOS (``mos_scale`` = 4.64, the largest MOS of
  KoNViD-1k; MOS is on the 1-5 ACR scale, so 1-5 is the nominal range, though the regression is not
  bounded), ``gstvqa_raw`` the network output itself. Higher = better technical quality.

Short clips. The network's two 15-tap attention convolutions need at least 29 frames (generated videos are
often shorter: the AIGVE toy clips have 16). ``pad`` decides: ``"repeat_last"`` (default) repeats the last
frame's feature row up to 29 rows (the same as repeating the last frame: VGG features are per frame);
``"stretch"`` resamples the rows in time by nearest neighbour to 29 rows (each frame held ~29/T times, as a
higher frame rate would); ``"none"`` fails such videos with a ``MetricInputError``. ``mean_var`` is always
computed on the real frames, before padding. The original AIGVE port padded with black frames instead.

Design note: the VGG features are the expensive part and are cached by the engine (extractor
``vgg16_meanstd``); the 0.5 M-parameter temporal head runs inside the metric (on CPU by default, option
``device``), so a different ``weights`` file re-scores without recomputing features. The head is loaded on
first use; a missing checkpoint raises ``WeightsError`` (naming the file and where to put it) for every
video, and the run goes on.

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
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.gstvqa import load_gstvqa_net
from aigve.backbones.nets.gstvqa import FEATURE_DIM, INPUT_DIM, KONVID_SCALE, MAX_LEN, MIN_FRAMES, GSTVQANet
from aigve.device import resolve_device
from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.types import Entry
from aigve.video.sampling import ALL_FRAMES, Sampler

log = logging.getLogger(__name__)

GSTVQA_WEIGHTS = "gstvqa_konvid"
VGG_WEIGHTS = "tv_vgg16"
EXTRACTOR = "vgg16_meanstd"
GSTVQA_ROLE = "frames"
PadMode = Literal["repeat_last", "stretch", "none"]
PAD_MODES: tuple[str, ...] = ("repeat_last", "stretch", "none")


def prepare_sequence(
    features: np.ndarray, max_len: int = MAX_LEN, pad: PadMode = "repeat_last"
) -> tuple[np.ndarray, np.ndarray]:
    """``[T, 2944]`` frame features -> (network input ``[L, 2944]`` float32, ``mean_var`` ``[1472]`` float32).

    ``mean_var`` = population std over all ``T`` rows of the mean half (the authors' ``np.std(means, 0)``);
    the input keeps the first ``max_len`` rows, then is padded to 29 rows by ``pad`` when shorter.
    """
    f = np.asarray(features)
    if f.ndim != 2 or f.shape[1] != INPUT_DIM:
        raise ValueError(f"GSTVQA needs [T, {INPUT_DIM}] features (vgg16_meanstd), got shape {f.shape}")
    if f.shape[0] == 0:
        raise ValueError("GSTVQA needs at least one frame")
    if pad not in PAD_MODES:
        raise UsageError(f"gstvqa: pad must be one of {PAD_MODES}, got {pad!r}")
    if max_len < MIN_FRAMES:
        raise UsageError(f"gstvqa: max_len must be >= {MIN_FRAMES}, got {max_len}")
    mean_var = f[:, :FEATURE_DIM].astype(np.float64).std(axis=0).astype(np.float32)
    seq = f[:max_len].astype(np.float32)
    n = seq.shape[0]
    if n < MIN_FRAMES:
        if pad == "none":
            raise ValueError(f"GSTVQA needs at least {MIN_FRAMES} frames, got {n}")
        if pad == "repeat_last":
            rows = list(range(n)) + [n - 1] * (MIN_FRAMES - n)
        else:  # stretch
            rows = [int(i * n // MIN_FRAMES) for i in range(MIN_FRAMES)]
        seq = seq[rows]
    return np.ascontiguousarray(seq), mean_var


def gstvqa_raw_scores(
    net: GSTVQANet,
    sequences: Sequence[np.ndarray],
    *,
    max_len: int = MAX_LEN,
    pad: PadMode = "repeat_last",
    batch_size: int = 8,
    device: str | torch.device | None = "cpu",
) -> np.ndarray:
    """Network outputs (label scale ``MOS / max(MOS)``) for several videos' ``[T, 2944]`` features.

    Videos are zero-padded to a common length inside a batch; the GRU is causal, so the result does not
    depend on ``batch_size`` (up to float rounding).
    """
    dev = resolve_device(device)
    prepared = [prepare_sequence(s, max_len, pad) for s in sequences]
    out: list[np.ndarray] = []
    net = net.to(dev).eval()
    with torch.inference_mode():
        for i in range(0, len(prepared), max(1, int(batch_size))):
            group = prepared[i : i + max(1, int(batch_size))]
            longest = max(seq.shape[0] for seq, _ in group)
            x = torch.zeros(len(group), longest, INPUT_DIM, dtype=torch.float32)
            for j, (seq, _) in enumerate(group):
                x[j, : seq.shape[0]] = torch.from_numpy(seq)
            lengths = torch.tensor([seq.shape[0] for seq, _ in group])
            mv = torch.from_numpy(np.stack([m for _, m in group]))
            out.append(net(x.to(dev), lengths, mv.to(dev)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


@register_metric
class GSTVQA(VideoMetric):
    """GSTVQA no-reference quality: predicted KoNViD-1k MOS from VGG16 mean/std features + GRU + pyramid pooling."""

    spec: ClassVar[MetricSpec] = MetricSpec(
        name="gstvqa",
        family="nn_based_video",
        description=(
            "GSTVQA no-reference technical quality (KoNViD-1k checkpoint) on VGG16 five-stage mean/std "
            "frame features; predicted MOS"
        ),
        inputs=("generated",),
        backbone=EXTRACTOR,
        outputs=(
            OutputSpec(
                "gstvqa",
                True,
                (1.0, 5.0),
                "predicted KoNViD-1k MOS (1-5 ACR scale, nominal range; the regression is unbounded) = "
                "mos_scale x network output",
            ),
            OutputSpec(
                "gstvqa_raw",
                True,
                (None, None),
                "network output on its training label scale MOS / max(MOS) (about 0.26-1.0 on KoNViD-1k)",
            ),
        ),
        citation=(
            "Chen, Zhu, Li, Lu, Fan, Wang: Learning Generalized Spatial-Temporal Deep Feature Representation "
            "for No-Reference Video Quality Assessment, IEEE TCSVT 32(4), 2022 (github.com/Baoliang93/GSTVQA)"
        ),
        extra="nnvqa",
        weights=(GSTVQA_WEIGHTS, VGG_WEIGHTS),
        options={
            "vgg_weights": None,
            "protocol": "all",
            "n": None,
            "fps": None,
            "max_len": MAX_LEN,
            "pad": "repeat_last",
            "mos_scale": KONVID_SCALE,
            "tap": "relu",
            "resize": None,
            "device": "cpu",
        },
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        if o["pad"] not in PAD_MODES:
            raise UsageError(f"gstvqa: pad must be one of {PAD_MODES}, got {o['pad']!r}")
        if int(o["max_len"]) < MIN_FRAMES:
            raise UsageError(f"gstvqa: max_len must be >= {MIN_FRAMES}, got {o['max_len']}")
        self.sampler = Sampler(o["protocol"], n=o["n"], fps=o["fps"])  # UsageError on bad combinations
        self._net: GSTVQANet | None = None
        self._head: dict[str, Any] = {}
        self._error: str | None = None

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest(GSTVQA_ROLE, EXTRACTOR, self.sampler, "generated")]

    def extractor_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if self.options.get("vgg_weights"):
            opts["weights"] = str(self.options["vgg_weights"])
        if self.options.get("tap") not in (None, "relu"):
            opts["tap"] = self.options["tap"]
        if self.options.get("resize") is not None:
            opts["resize"] = int(self.options["resize"])
        return opts

    def set_network(self, net: GSTVQANet, sha256: str, path: str = "<in memory>") -> None:
        """Use an already built network (tests, or a checkpoint loaded by the caller)."""
        self._net = net.eval().to(resolve_device(self.options["device"]))
        self._head = {"weights": GSTVQA_WEIGHTS, "sha256": sha256, "file": path}
        self._error = None

    def _network(self) -> GSTVQANet:
        if self._net is None:
            if self._error is not None:  # do not retry a missing file (or a download) for every video
                raise WeightsError(self._error)
            try:
                net, sha, path = load_gstvqa_net(self.options.get("weights"))
            except WeightsError as exc:
                self._error = str(exc)
                raise
            self.set_network(net, sha, path)
        assert self._net is not None
        return self._net

    def provenance(self) -> dict[str, Any]:
        prov = super().provenance()
        prov["head"] = dict(self._head) or {"weights": GSTVQA_WEIGHTS, "loaded": False}
        prov["padding"] = self.options["pad"]
        return prov

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        f = np.asarray(feats[GSTVQA_ROLE])
        n = f.shape[0] if f.ndim == 2 else 0
        if n < MIN_FRAMES and self.options["pad"] == "none":
            raise MetricInputError(
                f"{entry.generated}: gstvqa needs at least {MIN_FRAMES} frames, got {n} — use "
                f"--metric-option gstvqa.pad=repeat_last (or stretch), or a longer video"
            )
        net = self._network()
        raw = float(
            gstvqa_raw_scores(
                net,
                [f],
                max_len=int(self.options["max_len"]),
                pad=self.options["pad"],
                device=self.options["device"],
            )[0]
        )
        return {"gstvqa": float(self.options["mos_scale"]) * raw, "gstvqa_raw": raw}


SPATIAL_ROLE = "spatial"
MOTION_ROLE = "motion"
SIMPLEVQA_WINDOW = 8


def pad_seconds(rows: np.ndarray, min_rows: int) -> np.ndarray:
    """Repeat the last row until there are ``min_rows`` rows (no-op when there are enough)."""
    rows = np.asarray(rows)
    if rows.shape[0] >= min_rows:
        return rows
    return np.concatenate([rows, np.repeat(rows[-1:], min_rows - rows.shape[0], axis=0)], axis=0)


def simplevqa_score(
    spatial: np.ndarray, motion: np.ndarray, head: torch.nn.Module, min_seconds: int = SIMPLEVQA_WINDOW
) -> float:
    """Mean over seconds of ``head(spatial_i, motion_i)`` after padding both to ``min_seconds`` rows.

    ``spatial`` ``[n, 7168]`` and ``motion`` ``[n, 2304]`` must have one row per second each; the head runs
    in its own dtype on CPU.
    """
    if spatial.shape[0] != motion.shape[0]:
        raise ValueError(f"spatial ({spatial.shape[0]}) and motion ({motion.shape[0]}) rows differ")
    s = pad_seconds(spatial, min_seconds)
    m = pad_seconds(motion, min_seconds)
    p = next(head.parameters())
    with torch.inference_mode():
        q = head(torch.from_numpy(s).to(p), torch.from_numpy(m).to(p))
    return float(q.double().mean())


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
        self._head: torch.nn.Module | None = None
        self._spatial_sha: str | None = None

    def requests(self) -> list[FeatureRequest]:
        sp = (("weights", str(self.options["weights"])),) if self.options.get("weights") else ()
        mo = (
            (("weights", str(self.options["slowfast_weights"])),)
            if self.options.get("slowfast_weights")
            else ()
        )
        return [
            FeatureRequest(SPATIAL_ROLE, "simplevqa_spatial", ALL_FRAMES, "generated", sp),
            FeatureRequest(MOTION_ROLE, "slowfast_r50", ALL_FRAMES, "generated", mo),
        ]

    def extractor_options(self) -> dict[str, Any]:
        # each request carries its own weights option (set in requests())
        return {}

    def bind(self, identities: Mapping[str, Mapping[str, Any]]) -> None:
        super().bind(identities)
        self._spatial_sha = identities.get(SPATIAL_ROLE, {}).get("weights_sha256")

    def head(self) -> torch.nn.Module:
        """The checkpoint's quality head (shared with the loaded spatial extractor when possible)."""
        if self._head is None:
            from aigve.backbones.simplevqa import simplevqa_head

            self._head, _ = simplevqa_head(self.options.get("weights"), self._spatial_sha)
        return self._head

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        s = np.asarray(feats[SPATIAL_ROLE], dtype=np.float32)
        m = np.asarray(feats[MOTION_ROLE], dtype=np.float32)
        if s.ndim != 2 or m.ndim != 2 or s.shape[0] < 1 or s.shape[0] != m.shape[0]:
            raise MetricInputError(
                f"{entry.generated}: simplevqa got {s.shape} spatial and {m.shape} motion features; they need "
                f"one row per second each — clear the feature cache (--cache-dir) if it holds stale entries"
            )
        return {"simplevqa": simplevqa_score(s, m, self.head(), int(self.options["min_seconds"]))}


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
