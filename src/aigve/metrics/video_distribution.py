"""Video distribution metrics: ``fvd`` (Fréchet Video Distance on Kinetics-400 I3D logits).

Protocol (StyleGAN-V / content-debiased-FVD, cd-fvd 0.1.1 with its I3D model):

- one clip per video, chosen deterministically: the first ``frames`` frames (16) taking every
  ``stride``-th frame (1); a video shorter than that is padded by repeating its last sampled frame
  (cd-fvd's folder loader instead picks a *random* clip per video, so its numbers move between runs);
- features: ``i3d_kinetics400`` logits (400-d) of the clip resized to ``resolution`` (224) px with
  bilinear interpolation (``align_corners=False``, no antialias) and scaled to ``[-1, 1]``;
- statistics: mean and covariance per set, streamed as float64 sums (:class:`GaussianStats`); the
  covariance is the *biased* one (divided by ``n``), as StyleGAN-V's and cd-fvd's ``FeatureStats``
  compute it, so values equal ``cdfvd.compute_fvd_from_stats`` on the same features;
- FVD = squared Fréchet distance between the two Gaussians
  (:func:`aigve.metrics.functional.frechet.frechet_distance`, no ``sqrtm`` of a non-symmetric product).

Every video counts once: nothing is resampled with replacement (cd-fvd's default ``n_fake=2048``
cycles through a smaller set until 2048 features are collected, which duplicates videos). The number
is known to be biased upward and unstable for small sets: ``compute`` warns below 2048 videos per side
and when a side has no more videos than the feature dimension (rank-deficient covariance).

Reference statistics: ``load_real_stats(path)`` reads a ``GaussianStats`` file whose metadata must equal
:meth:`FVD.real_stats_meta` (backbone, extractor version, weights sha256, layer, frames, stride,
resolution, clip sampler); any difference is refused with the list of differing settings.
``real_stats()`` / ``save_real_stats(path)`` give the statistics of the real videos of a run
(what ``aigve stats compute`` writes).

Per-video diagnostic (not FVD): ``dist_to_real_mean``, the Euclidean distance from a generated
video's I3D logits to the real set's mean logits — large values point at outlying videos.

``fvd_videomae``: Fréchet Video Distance on VideoMAE-v2 features (cd-fvd's content-debiased variant).

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
here is the network input size and anything but 224 is refused (the original flags are mapped, with a
note for ``--cdfvd-resolution``, by :mod:`aigve.cli.legacy`).

``config="tiny_test"`` (with an explicit ``weights`` file) selects a narrow 24-d network of the same
geometry; it exists for tests, its numbers mean nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, ReferenceStats, SetMetric
from aigve.metrics.catalog import register_metric
from aigve.metrics.functional.frechet import frechet_distance
from aigve.metrics.functional.gaussian import GaussianStats
from aigve.types import Entry, Side
from aigve.video.sampling import Sampler

I3D_EXTRACTOR = "i3d_kinetics400"
I3D_WEIGHTS = "i3d_tats"
I3D_EXTRACTOR_VERSION = "1"  # aigve.backbones.i3d.I3DExtractor.version (not imported: keep listing cheap)
FEATURE_LAYER = "logits"
FEATURE_DIM = 400
RELIABLE_N = 2048
ROLE = "i3d"


def biased_cov(stats: GaussianStats) -> np.ndarray:
    """Covariance divided by ``n`` (StyleGAN-V / cd-fvd ``FeatureStats.get_mean_cov``); statistics read from a
    mean/covariance file are converted with their recorded ``n``."""
    from aigve.metrics.functional.stats_files import biased_covariance

    return biased_covariance(stats)


def fvd_from_stats(gen: GaussianStats, real: GaussianStats, name: str = "fvd") -> float:
    """FVD of two feature sets' statistics (biased covariances, as StyleGAN-V and cd-fvd)."""
    for side, s in (("generated", gen), ("real", real)):
        if s.n < 2:
            raise MetricInputError(
                f"{name} needs features of at least 2 {side} videos, got {s.n}: add videos "
                "(and at least 2048 per side for a comparable number)"
            )
    return frechet_distance(gen.mean, biased_cov(gen), real.mean, biased_cov(real))


@register_metric
class FVD(SetMetric, ReferenceStats):
    """Fréchet Video Distance on I3D (Kinetics-400) logits; see the module docstring for the protocol."""

    spec = MetricSpec(
        name="fvd",
        family="distribution_based",
        description=(
            "Fréchet Video Distance: Fréchet distance between Gaussians fitted to I3D (Kinetics-400) "
            "logits of one 16-frame 224px clip per generated and real video (StyleGAN-V/cd-fvd protocol)"
        ),
        inputs=("generated", "real"),
        backbone=I3D_EXTRACTOR,
        outputs=(
            OutputSpec(
                "fvd",
                higher_is_better=False,
                range=(0.0, None),
                description="squared Fréchet distance of the I3D logit distributions",
            ),
        ),
        level="set",
        citation=(
            "Unterthiner et al. 2018, Towards Accurate Generative Models of Video; "
            "Skorokhodov et al. 2022 (StyleGAN-V); Ge et al. 2024 (content-debiased FVD)"
        ),
        extra="distribution",
        weights=(I3D_WEIGHTS,),
        options={
            "frames": 16,
            "stride": 1,
            "resolution": 224,
            "real_stats": None,
            "real_stats_backbone": None,
        },
    )
    # what tells the FVD variants apart (FVDVideoMAE overrides these, the rest is shared)
    label: ClassVar[str] = "FVD"
    extractor: ClassVar[str] = I3D_EXTRACTOR
    extractor_version: ClassVar[str] = I3D_EXTRACTOR_VERSION
    weights_name: ClassVar[str] = I3D_WEIGHTS
    feature_layer: ClassVar[str] = FEATURE_LAYER
    preprocess: ClassVar[str] = "bilinear resize (align_corners=False, no antialias), 2*x/255-1"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key, low in (("frames", 9), ("stride", 1)):
            v = self.options[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise UsageError(f"fvd: option {key} must be an integer >= {low}, got {v!r}")
        r = self.options["resolution"]
        if isinstance(r, bool) or not isinstance(r, int) or r < 193:
            raise UsageError(f"fvd: option resolution must be an integer >= 193 (protocol: 224), got {r!r}")
        self.frames: int = self.options["frames"]
        self.stride: int = self.options["stride"]
        self.resolution: int = self.options["resolution"]
        self.dim: int = FEATURE_DIM
        self.gen = GaussianStats(FEATURE_DIM)
        self.real = GaussianStats(FEATURE_DIM)
        self.real_stats_path: str | None = None
        self.real_stats_provenance: dict[str, Any] = {}
        self.real_features: list[np.ndarray] | None = None  # per-video, when the statistics file has them
        self._sha: str | None = None
        if self.options.get("real_stats"):  # loaded in bind() once the weights hash is known
            self.real_stats_path = str(self.options["real_stats"])

    # -- what we need ----------------------------------------------------------------------
    @property
    def sampler(self) -> Sampler:
        """First ``frames`` frames (every ``stride``-th), last frame repeated when the video is short."""
        if self.stride == 1:
            return Sampler("first", n=self.frames, pad="repeat_last")
        return Sampler("stride", n=self.frames, stride=self.stride, pad="repeat_last")

    def requests(self) -> list[FeatureRequest]:
        opts = (("resolution", self.resolution),)
        sides: tuple[Side, ...] = ("generated",) if self.real_stats_path else ("generated", "real")
        return [FeatureRequest(ROLE, I3D_EXTRACTOR, self.sampler, side, opts) for side in sides]

    def bind(self, identities: Mapping[str, Mapping[str, Any]]) -> None:
        """Record the extractor identity (weights sha256); load ``real_stats`` (option) if given."""
        super().bind(identities)
        sha = next((i.get("weights_sha256") for i in identities.values() if i.get("weights_sha256")), None)
        if sha:
            self._sha = str(sha)
        if self.options.get("real_stats") and self.real.n == 0:
            self.load_real_stats(self.options["real_stats"])

    # -- accumulation ----------------------------------------------------------------------
    @staticmethod
    def _features(feats: Mapping[str, np.ndarray]) -> np.ndarray:
        arr = np.asarray(feats[ROLE])
        if arr.ndim != 2 or arr.shape[1] != FEATURE_DIM:
            raise MetricInputError(
                f"fvd expects I3D logits of shape [K, {FEATURE_DIM}], got {arr.shape} "
                f"(the {I3D_EXTRACTOR} backbone with layer='logits' provides them)"
            )
        return arr

    def update(self, entry: Entry, side: Side, feats: Mapping[str, np.ndarray]) -> None:
        arr = self._features(feats)
        if side == "real":
            if self.real_stats_path:
                raise UsageError(
                    f"fvd: real statistics were loaded from {self.real_stats_path}; real videos are not added"
                )
            self.real.update(arr)
        else:
            self.gen.update(arr)

    bootstrap_method = "centered"  # like FID, biased upward under resampling: centre on the estimate

    def value_from_features(self, real: np.ndarray, generated: np.ndarray) -> float | None:
        """FVD of raw feature rows (for the set-level bootstrap CI), same convention as ``compute``."""
        if (self.real_stats_path and self.real_features is None) or len(real) < 2 or len(generated) < 2:
            return None
        return fvd_from_stats(GaussianStats.from_features(generated), GaussianStats.from_features(real))

    def bootstrap_resampler(
        self, real: Sequence[np.ndarray], generated: Sequence[np.ndarray]
    ) -> Callable[[np.ndarray, np.ndarray], float] | None:
        """``value_from_features`` of resampled videos without restacking them (the set bootstrap's hot
        loop): ``(real video indices, generated video indices) -> FVD``, equal up to float64 rounding
        (:class:`~aigve.metrics.functional.frechet.FrechetResampler` with biased covariances, ddof=0)."""
        from aigve.metrics.functional.frechet import FrechetResampler

        if self.real_stats_path and self.real_features is None:
            return None
        resampler = FrechetResampler(generated, real, ddof=0)  # generated first, as fvd_from_stats
        return lambda idx_real, idx_gen: resampler(idx_gen, idx_real)

    def merge(self, other: SetMetric) -> None:
        if not isinstance(other, FVD):
            raise UsageError(f"fvd can only merge another fvd, got {type(other).__name__}")
        if (other.frames, other.stride, other.resolution) != (self.frames, self.stride, self.resolution):
            raise UsageError("fvd: cannot merge states computed with different frames/stride/resolution")
        self.gen.merge(other.gen)
        if not self.real_stats_path:
            self.real.merge(other.real)

    # -- results ---------------------------------------------------------------------------
    def weights_sha256(self) -> str | None:
        """sha256 of the I3D weights this run uses: the bound extractor's (the engine loaded it), else resolved
        like the extractor would (cached digest; never downloads)."""
        if self._sha is None:
            self._sha = self._bound_sha()
        if self._sha is None:
            from aigve.weights import resolve_weights

            explicit = self.options.get("weights")
            self._sha = resolve_weights(I3D_WEIGHTS, explicit_path=explicit, download=False).sha256
        return self._sha

    def _bound_sha(self) -> str | None:
        """The weights sha256 of the extractor the engine bound to this metric (None before ``bind``)."""
        for ident in getattr(self, "identities", {}).values():
            if ident.get("weights_sha256"):
                return str(ident["weights_sha256"])
        return None

    def _variant_meta(self) -> dict[str, Any]:
        """Settings of a variant that change its features (VideoMAE: the network config)."""
        return {}

    def protocol(self) -> dict[str, Any]:
        """The manifest recorded with each score."""
        try:
            sha: str | None = self.weights_sha256()
        except WeightsError:
            sha = None
        return {
            "backbone": self.extractor,
            "weights": self.weights_name,
            "weights_sha256": sha,
            **self._variant_meta(),
            "feature_layer": self.feature_layer,
            "feature_dim": self.dim,
            "frames": self.frames,
            "stride": self.stride,
            "resolution": self.resolution,
            "clip": (
                f"deterministic: first {self.frames} frames taking every {self.stride}-th, "
                "last frame repeated when the video is shorter; one clip per video"
            ),
            "sampler": self.sampler.id,
            "preprocess": self.preprocess,
            "covariance": "biased (divided by n), as StyleGAN-V / cd-fvd",
            "resampling": "none (each video counted once)",
            "n_real": self.real.n,
            "n_generated": self.gen.n,
            "real_stats": self.real_stats_path,
            **self.real_stats_provenance,
        }

    def warnings(self) -> list[str]:
        out = []
        sizes = (("n_generated", self.gen.n), ("n_real", self.real.n))
        small = [f"{s}={n}" for s, n in sizes if n < RELIABLE_N]
        if small:
            out.append(
                f"{self.label} from fewer than {RELIABLE_N} videos per set ({', '.join(small)}) is biased "
                "upward and not comparable to published numbers; compare models only at equal set sizes"
            )
        few = [f"{s}={n}" for s, n in sizes if n <= self.dim]
        if few:
            out.append(
                f"few samples relative to the feature dimension ({', '.join(few)} <= {self.dim}): the "
                f"covariance is rank-deficient and the {self.label} is unreliable"
            )
        return out

    def compute(self) -> dict[str, Any]:
        return {
            self.spec.name: fvd_from_stats(self.gen, self.real, self.spec.name),
            "n_real": self.real.n,
            "n_generated": self.gen.n,
            "warnings": self.warnings(),
            "protocol": self.protocol(),
        }

    def per_video(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        """``dist_to_real_mean``: L2 distance of the video's I3D logits to the real set's mean (not FVD)."""
        if self.real.n < 1:
            return {}
        arr = self._features(feats).astype(np.float64)
        return {"dist_to_real_mean": float(np.linalg.norm(arr - self.real.mean, axis=1).mean())}

    # -- reference statistics --------------------------------------------------------------
    def real_stats_meta(self) -> dict[str, Any]:
        """Every setting that changes the real statistics (stored with them, checked on load)."""
        return {
            "metric": self.spec.name,
            "backbone": self.extractor,
            "extractor_version": self.extractor_version,
            "weights": self.weights_name,
            "weights_sha256": self.weights_sha256(),
            **self._variant_meta(),
            "feature_layer": self.feature_layer,
            "feature_dim": self.dim,
            "frames": self.frames,
            "stride": self.stride,
            "resolution": self.resolution,
            "sampler": self.sampler.id,
            "decode_window": self.run_window,
        }

    def real_stats(self) -> GaussianStats:
        """The accumulated statistics of the real videos (a copy)."""
        return self.real.copy()

    def save_real_stats(self, path: str | os.PathLike[str], features: list[np.ndarray] | None = None) -> Path:
        """Write the real set's statistics with :meth:`real_stats_meta` (for ``aigve stats compute``), with
        the per-video features behind them when given (``--per-video-features``)."""
        name = self.spec.name
        if self.real.n < 2:
            raise UsageError(
                f"{name}: cannot save reference statistics of {self.real.n} real videos (need >= 2)"
            )
        if features is not None and sum(len(f) for f in features) != self.real.n:
            raise MetricInputError(f"{name}: the per-video features hold other rows than the statistics")
        return self.real.save(path, meta={**self.real_stats_meta(), "n": self.real.n}, features=features)

    def reference_features(self) -> list[np.ndarray] | None:
        return self.real_features

    def load_real_stats(self, path: str | os.PathLike[str]) -> None:
        """Use reference statistics instead of real videos: aigve's own (refused when made with other settings),
        or cd-fvd / pytorch-fid / clean-fid files with the backbone declared in the ``real_stats_backbone``
        option (:mod:`~aigve.metrics.functional.stats_files`; a mu/sigma file needs its ``n`` to give the
        biased covariance FVD uses)."""
        from aigve.metrics.functional.stats_files import load_reference_stats

        stats, self.real_stats_provenance, self.real_features = load_reference_stats(
            path,
            metric=self.spec.name,
            backbone=self.extractor,
            dim=self.dim,
            expect_meta=self.real_stats_meta,
            claimed_backbone=self.options.get("real_stats_backbone"),
            ddof=0,
        )
        if stats.dim != self.dim:
            raise UsageError(f"{path}: statistics of dim {stats.dim}, {self.spec.name} needs {self.dim}")
        self.real = stats
        self.real_stats_path = str(path)

    def reset(self) -> None:
        path = self.real_stats_path
        real, prov, feats = self.real, self.real_stats_provenance, self.real_features
        super().reset()
        if path:  # loaded reference statistics survive a reset
            self.real, self.real_stats_path = real, path
            self.real_stats_provenance, self.real_features = prov, feats


MAE_EXTRACTOR = "videomae_v2"
MAE_WEIGHTS = "videomae_v2_g_ssv2"
MAE_EXTRACTOR_VERSION = (
    "1"  # aigve.backbones.videomae.VideoMAEv2Extractor.version (not imported: keep listing cheap)
)
DEFAULT_CONFIG = "vit_g_hybrid"
MAE_FEATURE_LAYER = "fc_norm(mean tokens)"
MAE_ROLE = "videomae"
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
        options={
            "frames": 16,
            "stride": 1,
            "resolution": 224,
            "real_stats": None,
            "real_stats_backbone": None,
            "config": DEFAULT_CONFIG,
        },
    )
    label = "FVD (VideoMAE-v2)"
    extractor = MAE_EXTRACTOR
    extractor_version = MAE_EXTRACTOR_VERSION
    weights_name = MAE_WEIGHTS
    feature_layer = MAE_FEATURE_LAYER
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
        self.real_stats_provenance: dict[str, Any] = {}
        self.real_features: list[np.ndarray] | None = None  # per-video, when the statistics file has them
        self._sha: str | None = None
        if self.options.get("real_stats"):  # loaded in bind() once the weights hash is known
            self.real_stats_path = str(self.options["real_stats"])

    # -- what we need ----------------------------------------------------------------------
    def requests(self) -> list[FeatureRequest]:
        opts = (("config", self.config), ("resolution", self.resolution))
        sides: tuple[Side, ...] = ("generated",) if self.real_stats_path else ("generated", "real")
        return [FeatureRequest(MAE_ROLE, MAE_EXTRACTOR, self.sampler, side, opts) for side in sides]

    def _features(self, feats: Mapping[str, np.ndarray]) -> np.ndarray:  # type: ignore[override]
        arr = np.asarray(feats[MAE_ROLE])
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
            self._sha = self._bound_sha()
        if self._sha is None:
            from aigve.weights import resolve_weights

            explicit = self.options.get("weights")
            if self.config != DEFAULT_CONFIG and not explicit:
                raise WeightsError(f"fvd_videomae: config {self.config!r} needs an explicit weights=PATH")
            self._sha = resolve_weights(MAE_WEIGHTS, explicit_path=explicit, download=False).sha256
        return self._sha

    def _variant_meta(self) -> dict[str, Any]:
        return {"config": self.config}
