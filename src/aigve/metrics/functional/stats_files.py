"""Reference statistics made by other tools, and ours written in their formats.

Formats read (``--real-stats FILE``; :func:`read_stats_file` tells them apart by content, not by name):

- ``aigve``: our ``.npz`` (:class:`~aigve.metrics.functional.gaussian.GaussianStats` sums plus a JSON record of
  every setting behind them, checked on load).
- ``mu-sigma``: an ``.npz`` with ``mu`` ``[D]`` and ``sigma`` ``[D, D]``: pytorch-fid's ``--save-stats`` files
  and clean-fid's FID statistics (``{name}_{mode}_{split}_{res}.npz``) share this layout. Both tools compute
  ``sigma`` with ``np.cov(..., rowvar=False)``: the **unbiased** covariance (ddof=1). The files do not say how
  many rows they came from, unless they hold an integer ``n`` (files written by ``aigve stats export`` do).
- ``feats``: clean-fid's KID statistics (``..._kid.npz``, one ``feats`` ``[N, D]`` row per image): the
  rows themselves, so the mean and covariance are recomputed exactly.
- ``cd-fvd``: content-debiased-fvd's ``FeatureStats.save`` pickle (a dict with ``num_items``, ``raw_mean`` =
  Σx, ``raw_cov`` = Σxxᵀ, optionally ``all_features``). It is read with a restricted unpickler that rebuilds
  numpy arrays and nothing else (no other global can be named, so no code runs); anything else in the file is
  refused with the conversion to use instead.

None of the foreign files records the network, layer, preprocessing or frame sampling behind it, so the user
declares the backbone (``--real-stats-backbone``), it is checked against the metric's, and the run's provenance
says the backbone is the user's claim, not something aigve verified.

Covariance conventions. FID uses the unbiased covariance (ddof=1, as pytorch-fid and clean-fid), FVD the
biased one (divided by ``n``, as StyleGAN-V and cd-fvd ``FeatureStats.get_mean_cov``). Sums (``aigve``,
``cd-fvd``, ``feats``) convert exactly either way. A ``mu-sigma`` file holds the ddof=1 covariance: FID uses
it as is; FVD needs ``n`` to convert it (``sigma * (n - 1) / n``) and refuses a file without one.

Export (``aigve stats export``, :func:`export_stats`) writes our statistics as ``mu`` (float64) and the ddof=1
``sigma``, the layout both pytorch-fid's ``calculate_frechet_distance`` inputs and clean-fid's loader expect,
plus ``n`` and ``aigve_meta`` (ignored by both tools; they let aigve read the file back exactly).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from aigve.errors import UsageError
from aigve.fsutil import as_if_opened
from aigve.metrics.functional.gaussian import FORMAT as AIGVE_FORMAT
from aigve.metrics.functional.gaussian import GaussianStats

StatsFormat = Literal["aigve", "mu-sigma", "feats", "cd-fvd"]
EXPORT_FORMATS: tuple[str, ...] = ("pytorch-fid", "clean-fid")

FORMAT_NAMES: dict[str, str] = {
    "aigve": "aigve statistics",
    "mu-sigma": "mu/sigma .npz (pytorch-fid / clean-fid FID statistics)",
    "feats": "clean-fid KID statistics (feature rows)",
    "cd-fvd": "cd-fvd FeatureStats pickle",
}

#: what a converted covariance means, per convention (stated in provenance)
DDOF_TEXT = {
    1: "unbiased (ddof=1, divided by n-1; pytorch-fid / clean-fid)",
    0: "biased (divided by n; StyleGAN-V / cd-fvd)",
}

_CONVERT_HINT = (
    "convert it to a plain .npz of arrays in a trusted Python session, e.g. "
    "`s = cdfvd.utils.metric_utils.FeatureStats.load(PKL); "
    "numpy.savez(OUT, mu=s.raw_mean / s.num_items, sigma=<ddof=1 covariance>, n=s.num_items)`, "
    "or recompute the statistics with `aigve stats compute`"
)


class MomentStats(GaussianStats):
    """A mean and covariance given as such (a ``mu``/``sigma`` file): not mergeable, ``n`` possibly unknown.

    ``ddof`` is the convention of the stored covariance. ``cov`` is always the unbiased one (as
    :class:`GaussianStats`); :meth:`biased_cov` the one divided by ``n``. Converting between the two needs
    ``n``: without it only the stored convention is available, and asking for the other is a ``UsageError``.
    """

    def __init__(self, mean: np.ndarray, cov: np.ndarray, ddof: int, n: int | None = None) -> None:
        mean = np.asarray(mean, dtype=np.float64)
        cov = np.asarray(cov, dtype=np.float64)
        super().__init__(int(mean.shape[0]))
        self._mean, self._cov, self.ddof = mean, cov, int(ddof)
        self.n_known = n is not None
        self.n = int(n) if n is not None else 0

    @property
    def mean(self) -> np.ndarray:
        return self._mean

    @property
    def cov(self) -> np.ndarray:
        if self.ddof == 1:
            return self._cov
        return self._cov * (self._need_n("an unbiased") / (self.n - 1))

    def biased_cov(self) -> np.ndarray:
        """Covariance divided by ``n``."""
        if self.ddof == 0:
            return self._cov
        n = self._need_n("a biased")
        return self._cov * ((n - 1) / n)

    def _need_n(self, what: str) -> int:
        if not self.n_known or self.n < 2:
            raise UsageError(
                f"these statistics hold the {DDOF_TEXT[self.ddof]} covariance without the number of rows it "
                f"came from, so {what} covariance cannot be derived from it exactly; give a file that records n "
                "(cd-fvd's FeatureStats pickle, clean-fid's KID feature file, `aigve stats export` output, or "
                "an .npz with an integer 'n'), or aigve's own statistics (`aigve stats compute`)"
            )
        return self.n

    def update(self, x: Any) -> GaussianStats:
        raise UsageError("statistics read from a mean/covariance file cannot take more rows")

    def merge(self, other: GaussianStats) -> GaussianStats:
        raise UsageError("statistics read from a mean/covariance file cannot be merged")

    def copy(self) -> MomentStats:
        return MomentStats(self._mean.copy(), self._cov.copy(), self.ddof, self.n if self.n_known else None)

    def __repr__(self) -> str:
        return f"MomentStats(dim={self.dim}, n={self.n if self.n_known else 'unknown'}, ddof={self.ddof})"


def biased_covariance(stats: GaussianStats) -> np.ndarray:
    """The covariance divided by ``n`` (StyleGAN-V / cd-fvd convention) of any statistics we hold."""
    if isinstance(stats, MomentStats):
        return stats.biased_cov()
    return stats.cov * ((stats.n - 1) / stats.n)


@dataclass
class StatsFile:
    """What a statistics file held, converted: ``stats`` and how it was read."""

    path: Path
    format: StatsFormat
    stats: GaussianStats
    meta: dict[str, Any] = field(default_factory=dict)  # aigve files: the recorded settings
    stored_ddof: int | None = None  # the covariance convention stored in the file (None: sums, exact)
    #: per-video feature arrays (aigve files written with ``--per-video-features``): what a set CI resamples
    features: list[np.ndarray] | None = None

    @property
    def n(self) -> int | None:
        if isinstance(self.stats, MomentStats) and not self.stats.n_known:
            return None
        return int(self.stats.n)


# -- reading ---------------------------------------------------------------------------------------------


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dtypes and numpy scalars; refuses every other global (so no code can run)."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")


def _restricted_load(path: Path) -> Any:
    data = path.read_bytes()
    return _ArrayOnlyUnpickler(io.BytesIO(data)).load()


def _check_arrays(obj: Any, path: Path) -> None:
    """No object arrays (their items could hold anything a pickle builds from builtins)."""
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list | tuple) else [obj]
    for v in items:
        if isinstance(v, np.ndarray) and v.dtype.hasobject:
            raise UsageError(
                f"{path}: the pickle holds an object array; aigve reads numeric arrays only — {_CONVERT_HINT}"
            )
        if isinstance(v, dict | list | tuple):
            _check_arrays(v, path)


def _read_cdfvd(path: Path) -> StatsFile:
    try:
        obj = _restricted_load(path)
    except pickle.UnpicklingError as exc:
        raise UsageError(
            f"{path}: not read — this pickle names something other than numpy arrays ({exc}), and aigve does not "
            f"run code from statistics files; {_CONVERT_HINT}"
        ) from exc
    except Exception as exc:
        raise UsageError(
            f"{path}: cannot read this pickle ({type(exc).__name__}: {exc}); {_CONVERT_HINT}"
        ) from exc
    if not isinstance(obj, dict) or "num_items" not in obj:
        raise UsageError(
            f"{path}: a pickle, but not cd-fvd's FeatureStats (a dict with num_items, raw_mean, raw_cov); "
            + _CONVERT_HINT
        )
    _check_arrays(obj, path)
    n = int(obj["num_items"])
    raw_mean, raw_cov = obj.get("raw_mean"), obj.get("raw_cov")
    if obj.get("capture_mean_cov") and raw_mean is not None and raw_cov is not None:
        s = np.asarray(raw_mean, dtype=np.float64)
        o = np.asarray(raw_cov, dtype=np.float64)
        if s.ndim != 1 or o.shape != (s.shape[0], s.shape[0]):
            raise UsageError(f"{path}: raw_mean/raw_cov shapes {s.shape}/{o.shape} do not match")
        stats = GaussianStats(s.shape[0])  # sums around 0: shift stays 0
        stats.sum, stats.outer, stats.n = s, o, n
    elif obj.get("all_features"):
        rows = np.concatenate([np.asarray(a, dtype=np.float64) for a in obj["all_features"]])
        stats = GaussianStats.from_features(rows)
    else:
        raise UsageError(
            f"{path}: this FeatureStats holds neither sums (capture_mean_cov) nor features (capture_all)"
        )
    if stats.n < 2:
        raise UsageError(f"{path}: statistics of {stats.n} rows (need at least 2)")
    return StatsFile(path, "cd-fvd", stats)


def _video_features(z: Any, stats: GaussianStats, path: Path) -> list[np.ndarray] | None:
    """The per-video arrays of an aigve file that has them; they must add up to the rows of its sums."""
    if "video_rows" not in z.files or "video_offsets" not in z.files:
        return None
    rows, off = np.asarray(z["video_rows"]), np.asarray(z["video_offsets"], dtype=np.int64)
    if off.ndim != 1 or len(off) < 2 or off[0] != 0 or off[-1] != len(rows) or np.any(np.diff(off) < 1):
        raise UsageError(
            f"{path}: video_offsets do not split video_rows into videos; recompute the statistics"
        )
    feats = [rows[a:b] for a, b in zip(off[:-1], off[1:], strict=True)]
    return feats


def read_stats_file(path: str | os.PathLike[str]) -> StatsFile:
    """Read a statistics file of any supported format (see the module docstring), without checking settings."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(
            f"reference statistics file {path} does not exist: compute it with `aigve stats compute`"
        )
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:1] == b"\x80":  # a pickle (protocol 2+)
        return _read_cdfvd(path)
    if head[:2] != b"PK":
        raise UsageError(
            f"{path}: not a statistics file aigve reads (an .npz of aigve, pytorch-fid or clean-fid, or a cd-fvd "
            "FeatureStats pickle)"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if "format" in keys and str(z["format"]) == AIGVE_FORMAT:
                stats, meta = GaussianStats.load_with_meta(path)
                return StatsFile(path, "aigve", stats, meta, features=_video_features(z, stats, path))
            if {"mu", "sigma"} <= keys:
                mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
                n = int(z["n"]) if "n" in keys and z["n"].ndim == 0 else None
                meta = json.loads(str(z["aigve_meta"])) if "aigve_meta" in keys else {}
                if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
                    raise UsageError(
                        f"{path}: mu {mu.shape} and sigma {sigma.shape} do not match ([D] and [D, D])"
                    )
                if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
                    raise UsageError(f"{path}: mu or sigma holds NaN or inf")
                return StatsFile(path, "mu-sigma", MomentStats(mu, sigma, ddof=1, n=n), meta, stored_ddof=1)
            if "feats" in keys:
                rows = np.asarray(z["feats"], np.float64)
                if rows.ndim != 2 or rows.shape[0] < 2:
                    raise UsageError(f"{path}: 'feats' must be [N >= 2, D], got {rows.shape}")
                return StatsFile(path, "feats", GaussianStats.from_features(rows))
    except UsageError:
        raise
    except ValueError as exc:  # an object array needs pickle: refused
        raise UsageError(
            f"{path}: cannot read without unpickling ({exc}); aigve reads numeric arrays only"
        ) from exc
    except Exception as exc:
        raise UsageError(f"cannot read reference statistics {path}: {type(exc).__name__}: {exc}") from exc
    raise UsageError(
        f"{path}: an .npz without the arrays of a known statistics format (keys: {sorted(keys)}); expected aigve's "
        "own, 'mu' and 'sigma' (pytorch-fid / clean-fid) or 'feats' (clean-fid KID)"
    )


def load_reference_stats(
    path: str | os.PathLike[str],
    *,
    metric: str,
    backbone: str,
    dim: int,
    expect_meta: dict[str, Any] | Callable[[], dict[str, Any]],
    claimed_backbone: str | None,
    ddof: int,
) -> tuple[GaussianStats, dict[str, Any], list[np.ndarray] | None]:
    """The real side of ``metric`` from ``path``, the provenance of that choice, and the per-video features
    the file holds (aigve files written with ``--per-video-features``; else ``None``).

    aigve files are checked against ``expect_meta`` (every setting); a file of another tool needs
    ``claimed_backbone`` (the user's word, checked against ``backbone``) and must have ``dim`` columns; ``expect_meta`` may be a callable (evaluated for aigve files only).
    ``ddof`` is the covariance convention the metric uses (1: FID, 0: FVD); files that cannot be converted to
    it exactly are refused.
    """
    if claimed_backbone is not None and claimed_backbone != backbone:
        raise UsageError(
            f"--real-stats-backbone {claimed_backbone}: {metric} here uses the {backbone} backbone; statistics made "
            "with another network are not comparable (choose the metric's backbone option to match, or other statistics)"
        )
    if Path(path).is_file():
        sf = read_stats_file(path)
    else:
        # aigve's own loader gives the established message for a missing file
        sf = StatsFile(Path(path), "aigve", *GaussianStats.load_with_meta(path))
    prov: dict[str, Any] = {
        "real_stats_format": sf.format,
        "real_stats_format_name": FORMAT_NAMES[sf.format],
        "real_stats_rows": sf.n,
        "real_stats_covariance": (
            f"file stores the {DDOF_TEXT[sf.stored_ddof]} covariance"
            if sf.stored_ddof is not None
            else "file stores sums (exact in either convention)"
        )
        + f"; {metric} uses the {DDOF_TEXT[ddof]} one",
    }
    if sf.format == "aigve":
        meta = expect_meta() if callable(expect_meta) else expect_meta
        GaussianStats.load(path, expect_meta=meta)  # the settings check and its message
        prov["real_stats_backbone"] = sf.meta.get("backbone", backbone)
        prov["real_stats_backbone_source"] = "recorded in the file and checked with every other setting"
        prov["real_stats_per_video_features"] = None if sf.features is None else len(sf.features)
        return sf.stats, prov, sf.features
    if claimed_backbone is None:
        raise UsageError(
            f"{path} is a {FORMAT_NAMES[sf.format]} file, which does not record the network that made it: declare "
            f"it with --real-stats-backbone {backbone} (Python: metric option real_stats_backbone) if it was made "
            f"with {metric}'s backbone {backbone}; the run records that this is your claim"
        )
    if sf.stats.dim != dim:
        raise UsageError(
            f"{path}: statistics of {sf.stats.dim}-d features, but {metric} on {backbone} uses {dim}-d features — "
            "they were not made with this backbone and layer"
        )
    if ddof == 0 and isinstance(sf.stats, MomentStats):
        sf.stats.biased_cov()  # UsageError now (not after the run) when n is unknown
    prov["real_stats_backbone"] = claimed_backbone
    prov["real_stats_backbone_source"] = (
        "the user's claim (--real-stats-backbone): the file does not record its network, layer, preprocessing "
        "or frame sampling, so aigve could not check them"
    )
    prov["real_stats_per_video_features"] = None
    return sf.stats, prov, None


# -- writing ---------------------------------------------------------------------------------------------


def _atomic_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    as_if_opened(fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def clean_fid_mode(meta: dict[str, Any]) -> str:
    """clean-fid's ``mode`` naming the preprocessing of our FID statistics: ``clean`` for our
    ``resize=clean`` (PIL bicubic, as clean-fid), ``legacy_pytorch`` for ``resize=pytorch-fid``."""
    resize = (meta.get("extractor_options") or {}).get("resize")
    return "clean" if resize == "clean" else "legacy_pytorch"


def export_stats(
    src: str | os.PathLike[str],
    fmt: str,
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    mode: str | None = None,
) -> Path:
    """Write the aigve statistics in ``src`` as ``fmt`` (``pytorch-fid`` or ``clean-fid``); returns the file.

    ``pytorch-fid``: ``out`` is the ``.npz`` to write. ``clean-fid``: ``out`` is a folder and the file is named
    as clean-fid's ``get_reference_statistics(name, res, mode, split="custom")`` looks it up
    (``{name}_{mode}_custom_na.npz``, lower case); ``mode`` defaults to :func:`clean_fid_mode` of the file's
    settings. Both get ``mu`` and the unbiased (ddof=1) ``sigma`` whatever metric made the file (an FVD tool
    that uses the biased covariance multiplies it by ``(n - 1) / n``; ``n`` is stored beside them).
    """
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    stats, meta = GaussianStats.load_with_meta(src)
    if stats.n < 2:
        raise UsageError(f"{src}: statistics of {stats.n} rows cannot give a covariance")
    arrays = {
        "mu": stats.mean,
        "sigma": stats.cov,
        "n": np.array(stats.n, dtype=np.int64),
        "aigve_meta": np.array(json.dumps({**meta, "covariance": DDOF_TEXT[1]}, sort_keys=True)),
    }
    out = Path(out)
    if fmt == "pytorch-fid":
        if out.suffix != ".npz":
            raise UsageError(f"pytorch-fid reads statistics from a file ending in .npz, got {out}")
        return _atomic_npz(out, arrays)
    if not name:
        raise UsageError(
            "--format clean-fid needs --name NAME (the dataset name clean-fid looks the file up by)"
        )
    mode = mode or clean_fid_mode(meta)
    if mode not in ("clean", "legacy_pytorch", "legacy_tensorflow"):
        raise UsageError(f"clean-fid mode must be clean, legacy_pytorch or legacy_tensorflow, got {mode!r}")
    if out.suffix == ".npz":
        raise UsageError(
            f"--format clean-fid writes into a folder (clean-fid names the file itself), got {out}"
        )
    return _atomic_npz(out / f"{name}_{mode}_custom_na.npz".lower(), arrays)
