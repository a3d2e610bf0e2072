"""Streaming Gaussian sufficient statistics (mean and covariance) of a feature set.

``GaussianStats`` keeps float64 sums, so memory is ``O(D²)`` whatever the number of videos, and two
instances (two batches, two workers) merge exactly: the order of updates and merges changes the
result only by float64 rounding.

Numerics. The covariance is computed from sums, ``(Σ yyᵀ - s sᵀ / n) / (n - 1)`` with ``y = x - shift``.
With ``shift = 0`` this is the textbook formula whose error grows with ``|mean|² / var``: for
ReLU-pooled features (mean ~0.5, D = 2048, 5000 rows) it is fine in float64 (max entry error ~7e-15
of the largest covariance entry against two-pass ``np.cov``), but a common offset costs digits: 2e-10 at
mean 100, 2e-6 at mean 1e4 (shifted: ~5e-15 in all three cases). We therefore subtract a fixed ``shift`` (the mean of the
first batch seen) before accumulating; merging re-expresses the other side's sums around our shift
with a rank-one correction (exact in exact arithmetic), so the state stays mergeable. ``sum`` and ``outer`` hold the sums of
the *shifted* rows; ``mean`` and ``cov`` undo the shift. The measurements behind these numbers are in
``benchmarks/results_frechet.md`` (section "Covariance from sums").
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigve.errors import UsageError
from aigve.fsutil import as_if_opened

FORMAT = "aigve.gaussian_stats"
FORMAT_VERSION = 1


def _normalise_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so tuples/lists and numpy scalars compare like the stored values."""
    try:
        return json.loads(json.dumps(meta, sort_keys=True, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"statistics metadata must be JSON-serialisable: {exc}") from exc


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


class GaussianStats:
    """Mergeable float64 sufficient statistics of a set of ``D``-dimensional feature rows.

    Attributes: ``dim``; ``n`` (rows seen); ``shift`` (``[D]``, fixed at the first non-empty update);
    ``sum`` = Σ(x - shift) ``[D]``; ``outer`` = Σ(x - shift)(x - shift)ᵀ ``[D, D]``; all float64 numpy.
    """

    def __init__(self, dim: int) -> None:
        if int(dim) < 1:
            raise UsageError(f"GaussianStats needs dim >= 1, got {dim}")
        self.dim = int(dim)
        self.n = 0
        self.shift = np.zeros(self.dim, dtype=np.float64)
        self.sum = np.zeros(self.dim, dtype=np.float64)
        self.outer = np.zeros((self.dim, self.dim), dtype=np.float64)

    # -- accumulation ---------------------------------------------------------------------
    def update(self, x: np.ndarray | torch.Tensor) -> GaussianStats:
        """Add the rows of ``x`` (``[N, D]``). Torch inputs are reduced on their own device in float64."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise UsageError(
                f"GaussianStats(dim={self.dim}).update expects [N, {self.dim}] features, got {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            return self
        if isinstance(x, torch.Tensor):
            xt = x.detach().to(torch.float64)
            if not bool(torch.isfinite(xt).all()):
                raise UsageError(
                    "GaussianStats.update: features contain NaN or inf (check the extractor's input)"
                )
            if self.n == 0:
                self.shift = xt.mean(dim=0).cpu().numpy()
            yt = xt - torch.as_tensor(self.shift, device=xt.device)
            s = yt.sum(dim=0).cpu().numpy()
            o = (yt.T @ yt).cpu().numpy()
        else:
            xn = np.asarray(x, dtype=np.float64)
            if not np.isfinite(xn).all():
                raise UsageError(
                    "GaussianStats.update: features contain NaN or inf (check the extractor's input)"
                )
            if self.n == 0:
                self.shift = xn.mean(axis=0)
            y = xn - self.shift
            s = y.sum(axis=0)
            o = y.T @ y
        self.sum += s
        self.outer += o
        self.n += int(x.shape[0])
        return self

    def merge(self, other: GaussianStats) -> GaussianStats:
        """Add ``other``'s rows to this set (in place; returns ``self``). ``other`` is unchanged."""
        if not isinstance(other, GaussianStats):
            raise UsageError(f"GaussianStats.merge expects GaussianStats, got {type(other).__name__}")
        if other.dim != self.dim:
            raise UsageError(f"cannot merge statistics of dim {other.dim} into dim {self.dim}")
        if other.n == 0:
            return self
        if self.n == 0:
            self.shift = other.shift.copy()
            self.sum = other.sum.copy()
            self.outer = other.outer.copy()
            self.n = other.n
            return self
        # other's rows around our shift: x - s_self = (x - s_other) + d,  d = s_other - s_self
        d = other.shift - self.shift
        s_o = other.sum
        self.outer += other.outer + np.outer(s_o, d) + np.outer(d, s_o) + other.n * np.outer(d, d)
        self.sum += s_o + other.n * d
        self.n += other.n
        return self

    @classmethod
    def from_features(cls, x: np.ndarray | torch.Tensor) -> GaussianStats:
        """Statistics of one ``[N, D]`` array."""
        return cls(int(x.shape[1])).update(x)

    # -- results ---------------------------------------------------------------------------
    @property
    def mean(self) -> np.ndarray:
        """Mean feature ``[D]`` (float64)."""
        if self.n < 1:
            raise UsageError("GaussianStats.mean: no features were added")
        return self.shift + self.sum / self.n

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance ``[D, D]`` (ddof=1, like ``np.cov`` and pytorch-fid); needs n >= 2."""
        if self.n < 2:
            raise UsageError(f"GaussianStats.cov needs at least 2 feature rows, got {self.n}")
        m = self.sum / self.n
        c = (self.outer - self.n * np.outer(m, m)) / (self.n - 1)
        return (c + c.T) / 2

    def copy(self) -> GaussianStats:
        out = GaussianStats(self.dim)
        return out.merge(self)

    def __repr__(self) -> str:
        return f"GaussianStats(dim={self.dim}, n={self.n})"

    # -- files -----------------------------------------------------------------------------
    def save(
        self,
        path: str | os.PathLike[str],
        meta: dict[str, Any] | None = None,
        features: list[np.ndarray] | None = None,
    ) -> Path:
        """Write an ``.npz`` with the sums and a JSON ``meta`` recording every setting behind them; with
        ``features`` (one ``[K, D']`` array per video, what the extractor gave) also those, as ``video_rows``
        (stacked) and ``video_offsets`` (``[N + 1]``): what a set-level bootstrap CI resamples."""
        path = Path(path)
        extra: dict[str, np.ndarray] = {}
        if features:
            lengths = [int(len(f)) for f in features]
            extra["video_rows"] = np.concatenate([np.asarray(f) for f in features])
            extra["video_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        meta_json = json.dumps(_normalise_meta(meta or {}), sort_keys=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
        as_if_opened(fd)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    format=np.array(FORMAT),
                    format_version=np.array(FORMAT_VERSION),
                    dim=np.array(self.dim, dtype=np.int64),
                    n=np.array(self.n, dtype=np.int64),
                    shift=self.shift,
                    sum=self.sum,
                    outer=self.outer,
                    meta=np.array(meta_json),
                    **extra,  # type: ignore[arg-type]
                )
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], expect_meta: dict[str, Any] | None = None) -> GaussianStats:
        """Read statistics written by ``save``.

        Every key of ``expect_meta`` must equal the stored value; otherwise ``UsageError`` lists all
        differing settings (a number computed with other settings is not comparable).
        """
        stats, meta = cls.load_with_meta(path)
        if expect_meta:
            expected = _normalise_meta(expect_meta)
            diffs = []
            for key in sorted(expected):
                if key not in meta:
                    diffs.append(f"{key}=<not recorded>, this run uses {key}={json.dumps(expected[key])}")
                elif meta[key] != expected[key]:
                    diffs.append(
                        f"{key}={json.dumps(meta[key])}, this run uses {key}={json.dumps(expected[key])}"
                    )
            if diffs:
                raise UsageError(
                    f"reference statistics {path} were computed with "
                    + "; ".join(diffs)
                    + " — recompute them with `aigve stats compute` using this run's settings"
                )
        return stats

    @classmethod
    def load_with_meta(cls, path: str | os.PathLike[str]) -> tuple[GaussianStats, dict[str, Any]]:
        """Read statistics and their stored metadata without checking it."""
        path = Path(path)
        if not path.is_file():
            raise UsageError(
                f"reference statistics file {path} does not exist: compute it with `aigve stats compute`"
            )
        try:
            with np.load(path, allow_pickle=False) as z:
                if "format" not in z.files or str(z["format"]) != FORMAT:
                    raise UsageError(
                        f"{path} is not an aigve statistics file (no '{FORMAT}' marker): "
                        "recompute it with `aigve stats compute`"
                    )
                version = int(z["format_version"])
                if version > FORMAT_VERSION:
                    raise UsageError(
                        f"{path} has statistics format {version}, this aigve reads up to {FORMAT_VERSION}: upgrade aigve"
                    )
                dim = int(z["dim"])
                stats = cls(dim)
                stats.n = int(z["n"])
                stats.shift = np.asarray(z["shift"], dtype=np.float64)
                stats.sum = np.asarray(z["sum"], dtype=np.float64)
                stats.outer = np.asarray(z["outer"], dtype=np.float64)
                meta = json.loads(str(z["meta"]))
        except UsageError:
            raise
        except Exception as exc:  # zip/npz/json corruption
            raise UsageError(
                f"cannot read reference statistics {path}: {exc}; recompute it with `aigve stats compute`"
            ) from exc
        if stats.shift.shape != (dim,) or stats.sum.shape != (dim,) or stats.outer.shape != (dim, dim):
            raise UsageError(
                f"{path}: array shapes do not match dim={dim}; recompute it with `aigve stats compute`"
            )
        return stats, meta
