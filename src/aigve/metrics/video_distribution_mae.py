"""``fvd_videomae``: Fréchet Video Distance on VideoMAE-v2 features (cd-fvd's content-debiased variant).

Same protocol as ``fvd`` (:mod:`aigve.metrics.video_distribution`, whose class this one extends), with
the feature network of cd-fvd 0.1.1's ``cdfvd(model="videomae")``:

- one clip per video, chosen deterministically: the first ``frames`` frames (16) taking every
  ``stride``-th frame (1), the last sampled frame repeated when the video is shorter (cd-fvd's folder
  loader picks a random clip instead);
- features: ``videomae_v2`` (:mod:`aigve.backbones.videomae`), ViT-g/14 from
  ``vit_g_hybrid_pt_1200e_ssv2_ft.pth``: frames scaled to ``[0, 1]`` (no mean/std), resized to
  ``resolution`` (224, the only size the network takes) with bilinear interpolation
  (``align_corners=False``, no antialias); the feature is ``fc_norm`` of the mean token (1408-d), the
  pre-head output cd-fvd's ``forward_features`` returns. Clips of other lengths than 16 use the
  time-resampled position table, as cd-fvd;
- statistics: mean and *biased* covariance (divided by ``n``) per set, streamed in float64, so values
  equal ``cdfvd.compute_fvd_from_stats`` on the same features; nothing is resampled with replacement.

``compute`` warns below 2048 videos per side and when a side has no more videos than the feature
dimension (1408: the covariance is then rank-deficient). Reference statistics (``real_stats`` option,
``save_real_stats`` / ``load_real_stats``) carry :meth:`FVDVideoMAE.real_stats_meta` and are refused
when any setting differs. Per-video diagnostic (not FVD): ``dist_to_real_mean``.

cd-fvd's ``resolution`` argument (``--cdfvd-resolution``) means something else: the size its folder
loader resizes (shorter side, antialiased) and centre-crops to *before* the model's own fixed resize
to 224. aigve decodes and resizes once, as cd-fvd's array API (``compute_fvd``) does, so ``resolution``
here is the network input size and anything but 224 is refused.

``config="tiny_test"`` (with an explicit ``weights`` file) selects a narrow 24-d network of the same
geometry; it exists for tests, its numbers mean nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.features.gaussian import GaussianStats
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, SetMetric
from aigve.metrics.catalog import register_metric
from aigve.metrics.video_distribution import FVD
from aigve.types import Side

MAE_EXTRACTOR = "videomae_v2"
MAE_WEIGHTS = "videomae_v2_g_ssv2"
MAE_EXTRACTOR_VERSION = (
    "1"  # aigve.backbones.videomae.VideoMAEv2Extractor.version (not imported: keep listing cheap)
)
DEFAULT_CONFIG = "vit_g_hybrid"
FEATURE_LAYER = "fc_norm(mean tokens)"
ROLE = "videomae"
# config -> (feature dim, network input size); equal to aigve.backbones.nets.videomae.CONFIGS (tested)
CONFIG_SIZES: dict[str, tuple[int, int]] = {"vit_g_hybrid": (1408, 224), "tiny_test": (24, 224)}
MIN_FRAMES = 2  # one tubelet


@register_metric
class FVDVideoMAE(FVD):
    """FVD on VideoMAE-v2 (ViT-g/14, SSv2 fine-tune) features; see the module docstring for the protocol."""

    spec = MetricSpec(
        name="fvd_videomae",
        family="distribution_based",
        description=(
            "Content-debiased FVD (cd-fvd): Fréchet distance between Gaussians fitted to VideoMAE-v2 "
            "ViT-g features of one 16-frame 224px clip per generated and real video"
        ),
        inputs=("generated", "real"),
        backbone=MAE_EXTRACTOR,
        outputs=(
            OutputSpec(
                "fvd_videomae",
                higher_is_better=False,
                range=(0.0, None),
                description="squared Fréchet distance of the VideoMAE-v2 feature distributions",
            ),
        ),
        level="set",
        citation=(
            "Ge et al. 2024, On the Content Bias in Fréchet Video Distance (CVPR); "
            "Wang et al. 2023, VideoMAE V2 (CVPR)"
        ),
        extra="distribution",
        weights=(MAE_WEIGHTS,),
        options={"frames": 16, "stride": 1, "resolution": 224, "real_stats": None, "config": DEFAULT_CONFIG},
    )
    real_stats_supported = True
    label = "FVD (VideoMAE-v2)"
    extractor = MAE_EXTRACTOR
    extractor_version = MAE_EXTRACTOR_VERSION
    weights_name = MAE_WEIGHTS
    feature_layer = FEATURE_LAYER
    preprocess = "x/255 in [0,1] (no mean/std), bilinear resize (align_corners=False, no antialias)"

    def __init__(self, **options: Any) -> None:
        # FVD.__init__ checks I3D's limits (>= 9 frames, >= 193 px): validate this network's instead
        SetMetric.__init__(self, **options)
        for key, low in (("frames", MIN_FRAMES), ("stride", 1)):
            v = self.options[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise UsageError(f"fvd_videomae: option {key} must be an integer >= {low}, got {v!r}")
        config = self.options["config"]
        if config not in CONFIG_SIZES:
            raise UsageError(f"fvd_videomae: unknown config {config!r}; known: {', '.join(CONFIG_SIZES)}")
        dim, size = CONFIG_SIZES[config]
        r = self.options["resolution"]
        if isinstance(r, bool) or not isinstance(r, int) or r != size:
            raise UsageError(
                f"fvd_videomae: option resolution must be {size} (the VideoMAE-v2 network's fixed input size; "
                f"cd-fvd also feeds it {size}x{size} — its --cdfvd-resolution is a loader pre-resize that aigve "
                f"does not reproduce), got {r!r}"
            )
        self.frames: int = self.options["frames"]
        self.stride: int = self.options["stride"]
        self.resolution: int = r
        self.config: str = config
        self.dim: int = dim
        self.gen = GaussianStats(dim)
        self.real = GaussianStats(dim)
        self.real_stats_path: str | None = None
        self._sha: str | None = None
        if self.options.get("real_stats"):  # loaded in bind() once the weights hash is known
            self.real_stats_path = str(self.options["real_stats"])

    # -- what we need ----------------------------------------------------------------------
    def requests(self) -> list[FeatureRequest]:
        opts = (("config", self.config), ("resolution", self.resolution))
        sides: tuple[Side, ...] = ("generated",) if self.real_stats_path else ("generated", "real")
        return [FeatureRequest(ROLE, MAE_EXTRACTOR, self.sampler, side, opts) for side in sides]

    def _features(self, feats: Mapping[str, np.ndarray]) -> np.ndarray:  # type: ignore[override]
        arr = np.asarray(feats[ROLE])
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise MetricInputError(
                f"fvd_videomae expects VideoMAE-v2 features of shape [K, {self.dim}], got {arr.shape} "
                f"(the {MAE_EXTRACTOR} backbone with config={self.config!r} provides them)"
            )
        return arr

    def merge(self, other: SetMetric) -> None:
        if not isinstance(other, FVDVideoMAE):
            raise UsageError(f"fvd_videomae can only merge another fvd_videomae, got {type(other).__name__}")
        mine = (self.frames, self.stride, self.resolution, self.config)
        if (other.frames, other.stride, other.resolution, other.config) != mine:
            raise UsageError("fvd_videomae: cannot merge states computed with different frames/stride/config")
        self.gen.merge(other.gen)
        if not self.real_stats_path:
            self.real.merge(other.real)

    # -- results ---------------------------------------------------------------------------
    def weights_sha256(self) -> str | None:
        """sha256 of the weights this run uses (from the extractor when bound; never downloads)."""
        if self._sha is None:
            from aigve.backbones.weights import resolve_weights

            explicit = self.options.get("weights")
            if self.config != DEFAULT_CONFIG and not explicit:
                raise WeightsError(f"fvd_videomae: config {self.config!r} needs an explicit weights=PATH")
            self._sha = resolve_weights(MAE_WEIGHTS, explicit_path=explicit, download=False).sha256
        return self._sha

    def _variant_meta(self) -> dict[str, Any]:
        return {"config": self.config}
