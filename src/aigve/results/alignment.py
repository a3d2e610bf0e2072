"""How well metrics agree with human judgements (``aigve correlate``).

- :func:`load_human_scores` reads AIGVE-Bench annotations (JSON ``{"data_list": [...]}`` or a
  list, or CSV) or any CSV with an id column and score columns; :func:`human_scores_from_entries`
  takes the same scores from a dataset's ``extra`` fields, so no separate file is needed.
- :func:`correlate`: SRCC, PLCC (raw, and after the VQA-standard 4-parameter logistic fit) and
  KRCC per metric x aspect, each with a bootstrap CI over videos.
- :func:`random_baseline`: what a random metric would score against each aspect.
- :func:`fusion_srcc`: k-fold cross-validated ridge fusion of all metrics per aspect (SRCC of the
  out-of-fold predictions: the AIGVE-Bench paper's SRCC_reg).
- :func:`alignment_report` bundles the three; :class:`AlignmentReport` writes csv + markdown.

AIGVE-Bench scores are 0-5 where **0 means "not applicable"** (e.g. no action in the prompt):
on loading, a 0 in one of :data:`AIGVE_ASPECTS` becomes NaN and that video is left out of that
aspect only. Other score columns are taken as they are.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit

from aigve.errors import DatasetError, UsageError
from aigve.results.compare import to_markdown, write_table
from aigve.results.stats import cell_rng, interval_from_distribution, resample_indices
from aigve.types import Entry

AIGVE_ASPECTS: tuple[str, ...] = (
    "technical_quality",
    "dynamic",
    "consistency",
    "physics",
    "element_presentence",
    "element_quality",
    "action_presentence",
    "action_quality",
    "overall",
)
_CHUNK_ELEMENTS = 2_000_000


# ----------------------------------------------------------------------------------------- loading


ID_COLUMNS = ("id", "video_id", "video_path_pd")
"""Columns tried, in this order, to identify the videos of a human-score file without ``--id-column``."""


def _stem(p: Any) -> str:
    return Path(str(p)).stem


def human_scores_from_records(
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
    id_column: str | None = None,
    score_columns: Sequence[str] | None = None,
    source: str = "human scores",
) -> pd.DataFrame:
    """Human-score table (index ``id`` as str, one float column per aspect) from rows.

    Id: ``id_column`` if given (a ``video_path_*`` column gives the file stem), else ``id``, else
    ``video_id`` (aigve's own id column), else the stem of ``video_path_pd``. Score columns:
    ``score_columns`` if given, else the AIGVE-Bench aspects present, else every numeric column
    except the id columns. 0 -> NaN in AIGVE-Bench aspects. ``attrs`` of the result name the
    columns used (``score_columns``), the numeric ones left out (``left_out_columns``) and say both
    in one line (``note``), which ``aigve correlate`` prints.
    """
    df = pd.DataFrame(list(records)) if not isinstance(records, pd.DataFrame) else records.copy()
    if df.empty:
        raise DatasetError(
            f"{source}: no rows found; expected one row per video with an id and score columns"
        )
    if id_column is not None:
        if id_column not in df.columns:
            raise DatasetError(
                f"{source}: no column {id_column!r} (columns: {list(df.columns)}); pass an existing --id-column"
            )
        ids = df[id_column].map(_stem) if id_column.startswith("video_path") else df[id_column]
    elif "id" in df.columns:
        id_column, ids = "id", df["id"]
    elif "video_id" in df.columns:
        id_column, ids = "video_id", df["video_id"]
    elif "video_path_pd" in df.columns:
        id_column, ids = "video_path_pd", df["video_path_pd"].map(_stem)
    else:
        raise DatasetError(
            f"{source}: no 'id', 'video_id' or 'video_path_pd' field to identify videos; pass --id-column NAME "
            f"(columns: {list(df.columns)})"
        )
    ids = ids.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[:5].tolist()
        raise DatasetError(f"{source}: duplicate ids in column {id_column!r}, e.g. {dup}; ids must be unique")
    ids_like = {id_column, *ID_COLUMNS}
    if score_columns is not None:
        missing = [c for c in score_columns if c not in df.columns]
        if missing:
            raise DatasetError(f"{source}: score columns {missing} not found (columns: {list(df.columns)})")
        cols = list(score_columns)
    else:
        cols = [c for c in AIGVE_ASPECTS if c in df.columns]
        if not cols:
            num = df.drop(columns=[c for c in df.columns if c in ids_like]).apply(
                pd.to_numeric, errors="coerce"
            )
            cols = [c for c in num.columns if num[c].notna().any() and not str(c).startswith("video_path")]
    rest = [
        c for c in df.columns if c not in cols and c not in ids_like and not str(c).startswith("video_path")
    ]
    left_out = [c for c in rest if pd.to_numeric(df[c], errors="coerce").notna().any()]
    if not cols:
        raise DatasetError(f"{source}: no numeric score columns found besides the id {id_column!r}")
    out = df[cols].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    for c in cols:
        if c in AIGVE_ASPECTS:
            out[c] = out[c].mask(out[c] == 0)  # 0 = not applicable in AIGVE-Bench
    out.index = pd.Index(ids.to_numpy(), name="id")
    # which columns were taken and which numeric ones were not: for the printed report, not a warning
    how = "given" if score_columns is not None else (
        "the AIGVE-Bench aspects" if any(c in AIGVE_ASPECTS for c in cols) else "every numeric column")  # fmt: skip
    note = f"{source}: score columns used ({how}): {', '.join(map(str, cols))}"
    if left_out:
        note += f"; numeric columns left out: {', '.join(map(str, left_out))} (choose with --score-columns)"
    out.attrs.update(score_columns=list(cols), left_out_columns=list(left_out), note=note)
    return out


def load_human_scores(
    path: str | Path, id_column: str | None = None, score_columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read human scores from AIGVE-Bench JSON (``{"data_list": [...]}`` or a list) or a CSV.

    Returns a DataFrame indexed by video id (str) with one float column per aspect; see
    :func:`human_scores_from_records` for how the id and score columns are chosen. A 0 in an
    AIGVE-Bench aspect column means "not applicable" and becomes NaN.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: human-score file not found; pass an existing JSON or CSV file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}: not valid JSON ({e}); fix the file or export it as CSV") from e
        if isinstance(data, dict):
            if "data_list" not in data:
                raise DatasetError(
                    f"{path}: JSON object without 'data_list'; expected AIGVE-Bench annotations"
                )
            data = data["data_list"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DatasetError(f"{path}: expected a list of objects (one per video) in the JSON")
        return human_scores_from_records(data, id_column, score_columns, source=str(path))
    if suffix in (".csv", ".tsv"):
        try:
            df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise DatasetError(f"{path}: could not parse as CSV ({e})") from e
        return human_scores_from_records(df, id_column, score_columns, source=str(path))
    raise DatasetError(f"{path}: unknown human-score format {suffix!r}; use .json (AIGVE-Bench) or .csv")


def human_scores_from_entries(
    entries: Iterable[Entry], score_columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Human scores carried in the dataset entries' ``extra`` fields (no separate file needed).

    Uses ``score_columns`` if given, else the AIGVE-Bench aspects found in the extras. Index is
    ``Entry.id``. Raises :class:`DatasetError` when no entry carries any score.
    """
    rows = [{"id": e.id, **dict(e.extra)} for e in entries]
    if score_columns is None:
        present = {k for r in rows for k in r}
        score_columns = [c for c in AIGVE_ASPECTS if c in present]
        if not score_columns:
            raise DatasetError(
                "the dataset entries carry no human scores (none of " + ", ".join(AIGVE_ASPECTS) + "); "
                "pass a file with --human FILE"
            )
    df = pd.DataFrame(rows)
    for c in score_columns:
        if c not in df.columns:
            df[c] = np.nan
    return human_scores_from_records(df, "id", score_columns, source="dataset extra fields")


def metric_table(records: pd.DataFrame, key: str = "video_id") -> pd.DataFrame:
    """Per-video records (long: ``key``, ``metric``, [``output``], ``value``) -> wide table.

    Index: ``key`` as str; one column per metric output, named like ``Results.wide()``: the
    metric's name for its primary output (``output == metric``), ``metric.output`` otherwise.
    Missing values (errors) are NaN.
    """
    missing = {key, "metric", "value"} - set(records.columns)
    if missing:
        raise UsageError(f"per-video records lack columns {sorted(missing)}; expected {key}, metric, value")
    df = records.copy()
    if "output" in df.columns:
        m, o = df["metric"].astype(str), df["output"]
        df["label"] = np.where(o.isna() | (o.astype(str) == m), m, m + "." + o.astype(str))
    else:
        df["label"] = df["metric"].astype(str)
    df[key] = df[key].astype(str)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    wide = df.pivot_table(index=key, columns="label", values="value", aggfunc="mean", dropna=False)
    wide.columns.name = None
    return wide.astype(np.float64)


# ------------------------------------------------------------------------------------ correlations


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of 2-D arrays (NaN for a constant row)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    num = np.sum(xc * yc, axis=-1)
    den = np.sqrt(np.sum(xc * xc, axis=-1) * np.sum(yc * yc, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    return np.where(den > 0, np.clip(r, -1.0, 1.0), np.nan)


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair: Pearson of average ranks (ties handled as scipy does)."""
    return _pearson_rows(stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's linear correlation (PLCC) of two 1-D arrays."""
    return float(_pearson_rows(np.asarray(x, np.float64)[None], np.asarray(y, np.float64)[None])[0])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (SRCC) of two 1-D arrays."""
    return float(_spearman_rows(np.asarray(x, np.float64)[None], np.asarray(y, np.float64)[None])[0])


def kendall(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b (KRCC), via ``scipy.stats.kendalltau``; NaN for constant input."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.kendalltau(x, y).statistic)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The VQA 4-parameter logistic f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2."""
    return (b1 - b2) * expit((x - b3) / (abs(b4) + 1e-12)) + b2


@dataclass(frozen=True)
class LogisticFit:
    """A fitted logistic mapping from metric values to the human scale (``ok`` False = not fitted)."""

    params: tuple[float, float, float, float]  # b1..b4 on the original x scale
    ok: bool
    message: str = ""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return logistic4(np.asarray(x, dtype=np.float64), *self.params)


def fit_logistic(x: np.ndarray, y: np.ndarray) -> LogisticFit:
    """Least-squares fit of :func:`logistic4` (``scipy.optimize.curve_fit``).

    Fitted on standardised x for conditioning and from several starting points: b1/b2 at the
    max/min of y (swapped when the relation is decreasing), b3 at the median, b4 at 0.5/1/2 sd.
    The best fit by squared error is kept. ``ok`` is False (with the reason) if every start fails.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mu, sd = float(x.mean()), float(x.std())
    if not sd > 0 or np.ptp(y) == 0:
        return LogisticFit((math.nan,) * 4, False, "constant input")
    z = (x - mu) / sd
    hi, lo = float(y.max()), float(y.min())
    if spearman(x, y) < 0:
        hi, lo = lo, hi
    best: tuple[float, np.ndarray] | None = None
    last_err = ""
    for b4 in (1.0, 0.5, 2.0):
        p0 = [hi, lo, float(np.median(z)), b4]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, _ = optimize.curve_fit(logistic4, z, y, p0=p0, maxfev=20000)
        except (RuntimeError, ValueError, optimize.OptimizeWarning) as e:
            last_err = str(e)
            continue
        sse = float(np.sum((logistic4(z, *p) - y) ** 2))
        if np.all(np.isfinite(p)) and math.isfinite(sse) and (best is None or sse < best[0]):
            best = (sse, p)
    if best is None:
        return LogisticFit((math.nan,) * 4, False, f"logistic fit failed: {last_err}")
    b1, b2, b3, b4 = (float(v) for v in best[1])
    return LogisticFit((b1, b2, b3 * sd + mu, abs(b4) * sd), True)


def _boot_rows(
    fn: Any, x: np.ndarray, y: np.ndarray, idx: np.ndarray, idx_y: np.ndarray | None = None
) -> np.ndarray:
    """``fn(x[idx], y[idx_y])`` over blocks of resample rows (``idx_y`` defaults to ``idx``)."""
    idx_y = idx if idx_y is None else idx_y
    rows = max(1, _CHUNK_ELEMENTS // max(idx.shape[1], 1))
    return np.concatenate(
        [fn(x[idx[s : s + rows]], y[idx_y[s : s + rows]]) for s in range(0, idx.shape[0], rows)]
    )


def _dense_groups(v: np.ndarray) -> tuple[np.ndarray, int]:
    """Index of each value among the sorted distinct values, and how many there are."""
    uniq, inv = np.unique(v, return_inverse=True)
    return inv.ravel(), int(uniq.size)


def _midranks_of_resamples(groups: np.ndarray, n_groups: int, idx: np.ndarray) -> np.ndarray:
    """Average ranks (ties -> mean rank, like ``rankdata``) within each resample row of ``idx``.

    Sort-free: counts per distinct value give each value's mid-rank, ``cumsum(T) - (T - 1) / 2``.
    """
    cells = groups[idx]
    rows = idx.shape[0]
    counts = np.bincount((cells + (np.arange(rows) * n_groups)[:, None]).ravel(), minlength=rows * n_groups)
    counts = counts.reshape(rows, n_groups).astype(np.float64)
    mid = np.cumsum(counts, axis=1) - (counts - 1.0) / 2.0
    return np.take_along_axis(mid, cells, axis=1)


def _spearman_boot(
    x: np.ndarray, y: np.ndarray, idx: np.ndarray, idx_y: np.ndarray | None = None
) -> np.ndarray:
    """Spearman rho of each resample ``(x[idx[b]], y[idx_y[b]])`` (``idx_y`` defaults to ``idx``).

    O(B n) and equal to ranking each resampled row with ``rankdata`` (average ranks for ties).
    """
    idx_y = idx if idx_y is None else idx_y
    gx, nx = _dense_groups(x)
    gy, ny = _dense_groups(y)
    rows = max(1, _CHUNK_ELEMENTS // max(idx.shape[1], nx, ny, 1))
    out = [
        _pearson_rows(
            _midranks_of_resamples(gx, nx, idx[s : s + rows]),
            _midranks_of_resamples(gy, ny, idx_y[s : s + rows]),
        )
        for s in range(0, idx.shape[0], rows)
    ]
    return np.concatenate(out)


_MAX_KENDALL_LEVELS = 64


def _kendall_boot(
    x: np.ndarray, y: np.ndarray, idx: np.ndarray, idx_y: np.ndarray | None = None
) -> np.ndarray:
    """Kendall tau-b of each resample ``(x[idx[b]], y[idx_y[b]])`` (``idx_y`` defaults to ``idx``).

    When one variable has few distinct values (human scores on a 1-5 scale), the resample is
    summarised as a contingency table ``C[b, x-level, y-level]`` and
    ``S = sum_cells C * (#pairs below-left - #pairs below-right)`` with cumulative sums, O(B n G)
    and exact, ties included. Otherwise each resample goes through ``scipy.stats.kendalltau``.
    """
    idx_y = idx if idx_y is None else idx_y
    gx, nx = _dense_groups(x)
    gy, ny = _dense_groups(y)
    if ny > _MAX_KENDALL_LEVELS and nx > _MAX_KENDALL_LEVELS:
        return np.array([kendall(x[i], y[j]) for i, j in zip(idx, idx_y, strict=True)])
    if ny > nx:  # tau is symmetric: let y be the variable with fewer levels
        gx, nx, gy, ny, idx, idx_y = gy, ny, gx, nx, idx_y, idx
    n = idx.shape[1]
    k = nx * ny
    rows = max(1, _CHUNK_ELEMENTS // (4 * k))
    n0 = n * (n - 1) / 2.0
    out = []
    for s in range(0, idx.shape[0], rows):
        cells = gx[idx[s : s + rows]] * ny + gy[idx_y[s : s + rows]]
        r = cells.shape[0]
        flat = (cells + (np.arange(r) * k)[:, None]).ravel()
        c = np.bincount(flat, minlength=r * k).reshape(r, nx, ny)  # int64: exact counts
        before_x = np.cumsum(c, axis=1)
        before_x -= c  # per y-level: elements with a strictly smaller x-level
        upto_y = np.cumsum(before_x, axis=2)  # smaller x, y-level <= this one
        # concordant - discordant partners below in x: lower - higher = 2 * upto_y - before_x - total
        diff = 2 * upto_y - before_x - upto_y[:, :, -1:]
        s_stat = np.einsum("rij,rij->r", c, diff).astype(np.float64)
        tx = c.sum(axis=2)
        ty = c.sum(axis=1)
        n1 = np.sum(tx * (tx - 1), axis=1) / 2.0
        n2 = np.sum(ty * (ty - 1), axis=1) / 2.0
        den = np.sqrt((n0 - n1) * (n0 - n2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(den > 0, s_stat / den, np.nan))
    return np.concatenate(out)


def _interval(boot: np.ndarray, est: float, level: float) -> tuple[float, float]:
    fin = boot[np.isfinite(boot)]
    if fin.size < 2 or not math.isfinite(est):
        return math.nan, math.nan
    low, high, _ = interval_from_distribution(fin, est, level, "percentile")
    return low, high


def _align(metric_df: pd.DataFrame, human_df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = metric_df.copy()
    h = human_df.copy()
    m.index = m.index.map(str)
    h.index = h.index.map(str)
    common = m.index.intersection(h.index)
    if len(common) == 0:
        ms, hs = m.index.map(_stem), h.index.map(_stem)
        if ms.is_unique and hs.is_unique and len(ms.intersection(hs)):
            warnings.warn(
                "no ids in common; matched metric and human rows by file stem instead", stacklevel=3
            )
            m.index, h.index = ms, hs
            common = m.index.intersection(h.index)
        else:
            raise UsageError(
                f"no video ids in common between the metric results (e.g. {list(m.index[:3])}) and the human "
                f"scores (e.g. {list(h.index[:3])}); choose the human file's id field with --id-column"
            )
    return m.loc[common].apply(pd.to_numeric, errors="coerce"), h.loc[common].apply(
        pd.to_numeric, errors="coerce"
    )


def correlate(
    metric_df: pd.DataFrame,
    human_df: pd.DataFrame,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    directions: Mapping[str, bool | None] | None = None,
    min_n: int = 3,
    kendall_ci: bool = True,
) -> pd.DataFrame:
    """Correlation of every metric (columns of ``metric_df``) with every aspect (columns of
    ``human_df``), both indexed by video id, on the videos where both are present.

    Columns: metric, aspect, n, sign, srcc, srcc_low, srcc_high, plcc_raw, plcc_raw_low,
    plcc_raw_high, plcc_logistic, plcc_logistic_low, plcc_logistic_high, krcc, krcc_low, krcc_high,
    note. ``sign`` is -1 for metrics that ``directions`` marks lower-is-better: they are negated
    first, so a positive correlation always means agreement.

    CIs: percentile bootstrap over videos (pairs resampled together; the draws of one cell
    depend only on ``seed`` and its metric/aspect names). The logistic CI keeps the mapping
    fitted on all the data (its uncertainty is not re-fitted per resample, so that interval is a
    little narrow). If the logistic fit fails, ``plcc_logistic`` falls back to the raw PLCC with a
    warning and a ``note``. ``kendall_ci=False`` skips the (slowest) KRCC bootstrap.

    ``plcc_logistic`` is signed like the raw PLCC: the fitted logistic is monotone and, when it is
    decreasing (the metric disagrees with humans), the PLCC of its predictions is negated, so a
    negative relation reads negative in every column. Read it with care all the same: the fit may
    become a steep step, so on unrelated data its magnitude is inflated (its sign follows the fit).
    """
    if n_resamples < 1:
        raise UsageError(f"n_resamples must be >= 1, got {n_resamples}")
    m, h = _align(metric_df, human_df)
    directions = directions or {}
    rows = []
    for metric in m.columns:
        sign = -1.0 if directions.get(str(metric)) is False else 1.0
        for aspect in h.columns:
            x_all = sign * m[metric].to_numpy(dtype=np.float64)
            y_all = h[aspect].to_numpy(dtype=np.float64)
            ok = np.isfinite(x_all) & np.isfinite(y_all)
            x, y = x_all[ok], y_all[ok]
            n = int(ok.sum())
            row: dict[str, Any] = dict(metric=metric, aspect=aspect, n=n, sign=int(sign))
            nan_cols = ("srcc", "plcc_raw", "plcc_logistic", "krcc")
            if n < min_n or np.ptp(x) == 0 or np.ptp(y) == 0:
                row.update({f"{c}{s}": math.nan for c in nan_cols for s in ("", "_low", "_high")})
                row["note"] = f"too few videos ({n} < {min_n})" if n < min_n else "constant values"
                rows.append(row)
                continue
            note = ""
            srcc, plcc, krcc = spearman(x, y), pearson(x, y), kendall(x, y)
            fit = fit_logistic(x, y)
            if fit.ok:
                # signed like the raw PLCC: the logistic is monotone, and when the fit is decreasing
                # (humans score higher where the metric says worse) its PLCC is reported negative
                b1, b2 = fit.params[0], fit.params[1]
                fx = fit(x) if b1 >= b2 else -fit(x)
                plcc_log = pearson(fx, y)
                if not math.isfinite(plcc_log):
                    fit = LogisticFit(fit.params, False, "logistic fit is flat")
            if not fit.ok:
                warnings.warn(f"{metric} vs {aspect}: {fit.message}; reporting raw PLCC", stacklevel=2)
                note = f"{fit.message}; plcc_logistic = raw PLCC"
                fx, plcc_log = x, plcc
            idx = resample_indices(n, n_resamples, cell_rng(seed, str(metric), str(aspect)))
            boot = {
                "srcc": _spearman_boot(x, y, idx),
                "plcc_raw": _boot_rows(_pearson_rows, x, y, idx),
                "plcc_logistic": _boot_rows(_pearson_rows, fx, y, idx),
            }
            if kendall_ci:
                boot["krcc"] = _kendall_boot(x, y, idx)
            est = {"srcc": srcc, "plcc_raw": plcc, "plcc_logistic": plcc_log, "krcc": krcc}
            for c in nan_cols:
                row[c] = est[c]
                row[f"{c}_low"], row[f"{c}_high"] = _interval(boot[c], est[c], level) if c in boot else (
                    math.nan, math.nan)  # fmt: skip
            row["note"] = note
            rows.append(row)
    cols = ["metric", "aspect", "n", "sign"]
    for c in ("srcc", "plcc_raw", "plcc_logistic", "krcc"):
        cols += [c, f"{c}_low", f"{c}_high"]
    return pd.DataFrame(rows, columns=[*cols, "note"])


def random_baseline(
    human_df: pd.DataFrame,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    kendall_too: bool = True,
) -> pd.DataFrame:
    """Correlation of a random metric with each aspect: the chance level.

    For each aspect, ``n_resamples`` random tie-free rankings of the videos that have that aspect
    (a metric whose scores are a uniformly random permutation of 1..n);
    columns: aspect, n, and for srcc/plcc/krcc the mean and the central ``level`` band
    (``*_mean``, ``*_low``, ``*_high``). The band is what a metric with no information reaches by
    luck at this n; a metric's correlation inside it is not evidence of alignment.
    """
    rows = []
    for aspect in human_df.columns:
        y = pd.to_numeric(human_df[aspect], errors="coerce").to_numpy(dtype=np.float64)
        y = y[np.isfinite(y)]
        n = int(y.size)
        row: dict[str, Any] = dict(aspect=aspect, n=n)
        if n < 3 or np.ptp(y) == 0:
            row.update(
                {f"{c}_{s}": math.nan for c in ("srcc", "plcc", "krcc") for s in ("mean", "low", "high")}
            )
            rows.append(row)
            continue
        gen = cell_rng(seed, "random_baseline", str(aspect))
        ranks = np.arange(n, dtype=np.float64)
        same = np.broadcast_to(np.arange(n), (n_resamples, n))
        perm = gen.permuted(same, axis=1)  # random score ranks[i] paired with y[perm[b, i]]
        dist = {
            "srcc": _spearman_boot(ranks, y, same, perm),
            "plcc": _boot_rows(_pearson_rows, ranks, y, same, perm),
        }
        if kendall_too:
            dist["krcc"] = _kendall_boot(ranks, y, same, perm)
        alpha = (1 - level) / 2
        for c in ("srcc", "plcc", "krcc"):
            d = dist.get(c)
            if d is None:
                row.update({f"{c}_mean": math.nan, f"{c}_low": math.nan, f"{c}_high": math.nan})
                continue
            row[f"{c}_mean"] = float(np.mean(d))
            row[f"{c}_low"], row[f"{c}_high"] = (float(v) for v in np.quantile(d, [alpha, 1 - alpha]))
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ fusion


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-score with the training rows' mean/sd only; NaN (missing metric) -> 0 (the training mean)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(train, axis=0)
        sd = np.nanstd(train, axis=0)
    mu = np.where(np.isfinite(mu), mu, 0.0)
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    return np.nan_to_num((train - mu) / sd), np.nan_to_num((test - mu) / sd)


def _ridge_fit(z: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    ym = float(y.mean())
    if ridge > 0:
        w = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ (y - ym))
    else:
        w = np.linalg.lstsq(z, y - ym, rcond=None)[0]
    return w, ym


def cross_validated_predictions(
    x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int | np.random.Generator = 0, ridge: float = 1.0
) -> np.ndarray:
    """Out-of-fold predictions of a ridge regression of ``y`` on ``x`` (``[n, k]``, NaN allowed).

    Rows are shuffled (seeded) into ``folds`` folds; for each, standardisation and the ridge
    weights (intercept unpenalised) are fitted on the other folds only, then applied to the
    held-out fold, so no held-out value influences its own prediction.
    """
    n = x.shape[0]
    gen = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[gen.permutation(n)] = np.arange(n) % folds
    pred = np.empty(n, dtype=np.float64)
    for f in range(folds):
        test = fold_of == f
        ztr, zte = _standardise(x[~test], x[test])
        w, b = _ridge_fit(ztr, y[~test], ridge)
        pred[test] = zte @ w + b
    return pred


VIDEOS_PER_FEATURE = 10
"""A fusion on fewer videos than this many per metric gets a warning note."""
_DUPLICATE_R = 0.999


def drop_duplicate_outputs(metric_df: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str, float]]]:
    """Leave out derived outputs that repeat another output of the same metric.

    Columns are output labels (``metric`` for the primary output, ``metric.output`` otherwise). A
    column whose Pearson or Spearman correlation with an earlier kept column of the same metric
    (primaries first) is at least 0.999 in size (e.g. ``flicker.flicker_vbench``, a linear
    rescaling of ``flicker``) adds nothing to a fusion but a pair of opposite weights; it is
    dropped. Returns the kept table and ``(dropped, kept, r)`` for each dropped column.
    """
    order = sorted(metric_df.columns, key=lambda c: ("." in str(c), list(metric_df.columns).index(c)))
    kept: list[Any] = []
    dropped: list[tuple[str, str, float]] = []
    for c in order:
        x = metric_df[c].to_numpy(dtype=np.float64)
        dup = None
        for k in kept:
            if str(k).split(".")[0] != str(c).split(".")[0]:
                continue
            y = metric_df[k].to_numpy(dtype=np.float64)
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
                continue
            r = max((pearson(x[ok], y[ok]), spearman(x[ok], y[ok])), key=abs)
            if abs(r) >= _DUPLICATE_R:
                dup = (str(c), str(k), float(r))
                break
        if dup is None:
            kept.append(c)
        else:
            dropped.append(dup)
    return metric_df[[c for c in metric_df.columns if c in kept]], dropped


def fusion_srcc(
    metric_df: pd.DataFrame,
    human_df: pd.DataFrame,
    folds: int = 5,
    seed: int = 0,
    ridge: float = 1.0,
    n_resamples: int = 1000,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per aspect: k-fold cross-validated ridge fusion of all metrics (the paper's SRCC_reg).

    The aspect is regressed on the standardised metrics (standardisation and weights fitted on
    the training folds only; a missing metric value is imputed with the training mean); the
    SRCC/PLCC of the out-of-fold predictions with the human scores are reported with bootstrap
    CIs over videos. ``ridge`` is the L2 penalty on standardised features (0 = least squares).
    ``weights`` shows the coefficients of a fit on all the videos, for interpretation only.
    Derived outputs that duplicate another output of the same metric are left out first
    (:func:`drop_duplicate_outputs`; named in ``left_out``), and ``note`` warns when there are
    fewer than :data:`VIDEOS_PER_FEATURE` videos per metric.
    Columns: aspect, n, n_metrics, folds, left_out, note, srcc_reg, srcc_reg_low, srcc_reg_high,
    plcc_reg, plcc_reg_low, plcc_reg_high, weights.
    """
    if folds < 2:
        raise UsageError(f"folds must be >= 2, got {folds}")
    m, h = _align(metric_df, human_df)
    m, dropped = drop_duplicate_outputs(m)
    left_out = "; ".join(f"{c} (duplicates {k}, r = {r:+.3f})" for c, k, r in dropped)
    rows = []
    for aspect in h.columns:
        y_all = h[aspect].to_numpy(dtype=np.float64)
        x_all = m.to_numpy(dtype=np.float64)
        keep = np.isfinite(y_all) & np.isfinite(x_all).any(axis=1)
        x, y = x_all[keep], y_all[keep]
        usable = np.isfinite(x).any(axis=0)
        x, names = x[:, usable], [str(c) for c, u in zip(m.columns, usable, strict=True) if u]
        n = int(y.size)
        row: dict[str, Any] = dict(aspect=aspect, n=n, n_metrics=len(names), folds=folds, left_out=left_out)
        row["note"] = (
            f"{n} videos for {len(names)} metrics (fewer than {VIDEOS_PER_FEATURE} per metric): the fusion "
            "overfits easily and SRCC_reg is unstable"
            if names and n < VIDEOS_PER_FEATURE * len(names)
            else ""
        )
        if n < 2 * folds or not names or np.ptp(y) == 0:
            row.update({f"{c}{s}": math.nan for c in ("srcc_reg", "plcc_reg") for s in ("", "_low", "_high")})
            row["weights"] = ""
            rows.append(row)
            continue
        gen = cell_rng(seed, "fusion", str(aspect))
        pred = cross_validated_predictions(x, y, folds, gen, ridge)
        idx = resample_indices(n, n_resamples, gen)
        for c, fn in (("srcc_reg", _spearman_rows), ("plcc_reg", _pearson_rows)):
            est = float(fn(pred[None], y[None])[0])
            row[c] = est
            row[f"{c}_low"], row[f"{c}_high"] = _interval(_boot_rows(fn, pred, y, idx), est, level)
        z, _ = _standardise(x, x[:1])
        w, _ = _ridge_fit(z, y, ridge)
        row["weights"] = "; ".join(f"{nm}={wi:+.3g}" for nm, wi in zip(names, w, strict=True))
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ report


def _ci_text(values: Sequence[float], digits: int) -> str:
    est, low, high = (float(v) for v in values)
    if not math.isfinite(est):
        return ""
    if math.isfinite(low) and math.isfinite(high):
        return f"{est:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
    return f"{est:.{digits}f}"


@dataclass
class AlignmentReport:
    """The three tables of ``aigve correlate``; ``write`` saves csv + markdown."""

    correlations: pd.DataFrame
    baseline: pd.DataFrame
    fusion: pd.DataFrame
    level: float = 0.95
    notes: list[str] = field(default_factory=list)  # inputs used and left out, warnings: printed first

    def to_markdown(self, digits: int = 3) -> str:
        pct = f"{self.level:.0%}"
        c = self.correlations
        show = pd.DataFrame(
            {
                "metric": c["metric"],
                "aspect": c["aspect"],
                "n": c["n"],
                "SRCC": [_ci_text(r, digits) for r in c[["srcc", "srcc_low", "srcc_high"]].to_numpy()],
                "PLCC (logistic)": [
                    _ci_text(r, digits)
                    for r in c[["plcc_logistic", "plcc_logistic_low", "plcc_logistic_high"]].to_numpy()
                ],
                "PLCC (raw)": [
                    _ci_text(r, digits) for r in c[["plcc_raw", "plcc_raw_low", "plcc_raw_high"]].to_numpy()
                ],
                "KRCC": [_ci_text(r, digits) for r in c[["krcc", "krcc_low", "krcc_high"]].to_numpy()],
                "note": c["note"],
            }
        )
        b = self.baseline
        base = pd.DataFrame(
            {
                "aspect": b["aspect"],
                "n": b["n"],
                **{
                    f"{k.upper()} (random)": [
                        _ci_text(r, digits) for r in b[[f"{k}_mean", f"{k}_low", f"{k}_high"]].to_numpy()
                    ]
                    for k in ("srcc", "plcc", "krcc")
                },
            }
        )
        f = self.fusion
        fus = pd.DataFrame(
            {
                "aspect": f["aspect"],
                "n": f["n"],
                "metrics": f["n_metrics"],
                "SRCC_reg": [
                    _ci_text(r, digits) for r in f[["srcc_reg", "srcc_reg_low", "srcc_reg_high"]].to_numpy()
                ],
                "PLCC_reg": [
                    _ci_text(r, digits) for r in f[["plcc_reg", "plcc_reg_low", "plcc_reg_high"]].to_numpy()
                ],
                "weights (all data)": f["weights"],
            }
        )
        folds = int(f["folds"].iloc[0]) if len(f) else 0
        return (
            "# Alignment with human scores\n\n"
            f"Estimates with {pct} bootstrap confidence intervals over videos. Lower-is-better metrics are "
            "negated first, so positive = agrees with humans and negative = disagrees, in every column "
            "(PLCC (logistic) takes the sign of the fitted curve's direction).\n\n"
            + ("## Notes\n\n" + "".join(f"- {n}\n" for n in self.notes) + "\n" if self.notes else "")
            + "## Metric x aspect\n\n"
            + to_markdown(show)
            + "\n"
            f"## Random baseline (mean and {pct} band of a random score)\n\n" + to_markdown(base) + "\n"
            f"## Fusion of all metrics ({folds}-fold cross-validated ridge, out-of-fold SRCC_reg)\n\n"
            + to_markdown(fus)
        )

    def write(self, out_dir: str | Path, stem: str = "alignment") -> list[Path]:
        """Write ``<stem>.csv``, ``<stem>_baseline.csv``, ``<stem>_fusion.csv`` and ``<stem>.md``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [
            write_table(self.correlations, out / f"{stem}.csv"),
            write_table(self.baseline, out / f"{stem}_baseline.csv"),
            write_table(self.fusion, out / f"{stem}_fusion.csv"),
        ]
        md = out / f"{stem}.md"
        md.write_text(self.to_markdown(), encoding="utf-8")
        return [*paths, md]


def alignment_report(
    metric_df: pd.DataFrame,
    human_df: pd.DataFrame,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    folds: int = 5,
    directions: Mapping[str, bool | None] | None = None,
    kendall_ci: bool = True,
) -> AlignmentReport:
    """:func:`correlate` + :func:`random_baseline` + :func:`fusion_srcc` on the same videos."""
    m, h = _align(metric_df, human_df)
    fusion = fusion_srcc(m, h, folds, seed, n_resamples=n_resamples, level=level)
    notes = []
    if len(fusion) and fusion["left_out"].iloc[0]:
        notes.append(
            f"fusion leaves out outputs that repeat another of the same metric: {fusion['left_out'].iloc[0]}"
        )
    few = fusion[fusion["note"] != ""] if len(fusion) else fusion
    if len(few):
        cases = ", ".join(f"{r.aspect} ({r.n} videos)" for r in few.itertuples())
        notes.append(
            f"WARNING: fusion on fewer than {VIDEOS_PER_FEATURE} videos per metric ({int(few['n_metrics'].max())} "
            f"metrics): {cases}; the fit overfits easily and SRCC_reg is unstable"
        )
    return AlignmentReport(
        correlations=correlate(m, h, n_resamples, seed, level, directions, kendall_ci=kendall_ci),
        baseline=random_baseline(h, n_resamples, seed, level, kendall_too=kendall_ci),
        fusion=fusion,
        level=level,
        notes=notes,
    )
