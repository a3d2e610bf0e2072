"""Compare runs or models: paired/unpaired tests, leaderboards, and small table writers.

Sign convention used everywhere here: ``diff`` is *B minus A in the metric's direction sense*,
i.e. ``mean(b) - mean(a)`` for higher-is-better metrics and ``mean(a) - mean(b)`` for
lower-is-better ones, so **a positive ``diff`` always means B is better**. For metrics without a
direction (``higher_is_better=None``) ``diff`` is the plain ``mean(b) - mean(a)`` and ``better`` is
always ``None``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aigve.errors import UsageError
from aigve.results.summary import MIN_CI_N, ci_caveat_text
from aigve.results.stats import (
    CI,
    Method,
    bootstrap_ci,
    bootstrap_distribution,
    cell_rng,
    interval_from_distribution,
    mean_ci,
)

# exact sign-flip enumeration (2**n patterns) is used when it is no larger than this
_MAX_EXACT_PATTERNS = 1 << 12
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing A with B on one metric (see the module docstring for the sign)."""

    diff: float | None
    ci: CI
    p_value: float | None
    n_pairs: int
    better: str | None  # "a", "b" or None (not significant at alpha, or no direction)
    paired: bool
    test: str
    mean_a: float | None
    mean_b: float | None
    n_a: int
    n_b: int
    higher_is_better: bool | None
    alpha: float = 0.05
    metric: str | None = None
    min_p: float | None = None  # the smallest p-value the test can give at this n (None: no test)

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha

    def to_dict(self) -> dict[str, Any]:
        """Flat dict (CI bounds as ``ci_low``/``ci_high``) for one table row."""
        d = asdict(self)
        ci = d.pop("ci")
        d.update(ci_low=ci["low"], ci_high=ci["high"], ci_method=ci["method"], ci_level=ci["level"])
        d["significant"] = self.significant
        return d


def _opt_float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _sign(higher_is_better: bool | None) -> float:
    return -1.0 if higher_is_better is False else 1.0


def _clean(s: pd.Series, name: str) -> pd.Series:
    if not isinstance(s, pd.Series):
        raise UsageError(f"{name} must be a pandas Series indexed by prompt or video id")
    s = pd.to_numeric(s, errors="coerce").astype(np.float64)
    s = s[s.notna()]
    if not s.index.is_unique:  # several videos per prompt: compare the per-key means
        s = s.groupby(level=0, sort=False).mean()
    return s


def _better(diff: float | None, p: float | None, alpha: float, higher_is_better: bool | None) -> str | None:
    if higher_is_better is None or diff is None or p is None or p >= alpha or diff == 0:
        return None
    return "b" if diff > 0 else "a"


def min_attainable_p(
    paired: bool, n_pairs: int, n_a: int, n_b: int, n_permutations: int = 10000
) -> float | None:
    """The smallest p-value the permutation test can return at these sizes, whatever the data.

    Paired sign-flip: ``2 / 2**n`` (the two all-same-sign patterns), or ``1 / (1 + n_permutations)``
    when Monte Carlo gives a larger floor. Unpaired label permutation: ``2 / C(n_a + n_b, n_a)``
    (``1 / C`` for unequal groups) and the same Monte Carlo floor. When it is at least ``alpha``
    no outcome can be significant: the test has no power, and its "not significant" is no evidence.
    """
    mc = 1.0 / (1 + n_permutations)
    if paired:
        if n_pairs < 2:
            return None
        exact = 2.0 ** (1 - n_pairs)
        return exact if 2**n_pairs <= _MAX_EXACT_PATTERNS else max(exact, mc)
    if n_a < 2 or n_b < 2:
        return None
    arrangements = math.comb(n_a + n_b, n_a)
    return max((2.0 if n_a == n_b else 1.0) / arrangements, mc)


def sign_flip_pvalue(d: np.ndarray, n_permutations: int = 10000, rng: np.random.Generator | int = 0) -> float:
    """Two-sided paired permutation (sign-flip) p-value for ``mean(d) == 0``.

    Under H0 each difference is symmetric about 0, so its sign is exchangeable. Exact (all
    ``2**n`` sign patterns) when that is at most 4096 patterns, else Monte Carlo with
    ``n_permutations`` random patterns and the ``(1 + hits) / (1 + n_permutations)`` estimate,
    which is never 0.
    """
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    if n == 0:
        return float("nan")
    obs = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    if 2**n <= _MAX_EXACT_PATTERNS:
        signs = np.array(list(product((1.0, -1.0), repeat=n)))
        return float(np.mean(np.abs(signs @ d) / n >= obs - tol))
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    hits = 0
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_permutations, rows):
        k = min(rows, n_permutations - start)
        signs = gen.integers(0, 2, size=(k, n)) * 2.0 - 1.0
        hits += int(np.sum(np.abs(signs @ d) / n >= obs - tol))
    return (1 + hits) / (1 + n_permutations)


def label_permutation_pvalue(
    x: np.ndarray, y: np.ndarray, n_permutations: int = 10000, rng: np.random.Generator | int = 0
) -> float:
    """Two-sided permutation p-value for ``mean(y) - mean(x) == 0`` (group labels shuffled)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pooled = np.concatenate([x, y])
    n, nx = pooled.shape[0], x.shape[0]
    obs = abs(y.mean() - x.mean())
    tol = 1e-12 * max(1.0, float(np.abs(pooled).max()))
    total = pooled.sum()
    hits = 0
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_permutations, rows):
        k = min(rows, n_permutations - start)
        perm = gen.permuted(np.broadcast_to(pooled, (k, n)), axis=1)
        sx = perm[:, :nx].sum(axis=1)
        stat = np.abs((total - sx) / (n - nx) - sx / nx)
        hits += int(np.sum(stat >= obs - tol))
    return (1 + hits) / (1 + n_permutations)


def compare_paired(
    a: pd.Series,
    b: pd.Series,
    higher_is_better: bool | None = True,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    level: float = 0.95,
    n_permutations: int = 10000,
    method: Method = "percentile",
    metric: str | None = None,
) -> Comparison:
    """Paired comparison of A and B on the keys (prompts or video ids) they share.

    Values are aligned on the index; NaNs are dropped; duplicate keys are averaged first (e.g.
    several videos per prompt). ``diff`` = mean over pairs of ``b - a`` in the direction sense
    (positive = B better), with a bootstrap CI over pairs and a two-sided sign-flip permutation
    p-value. ``better`` is "a"/"b" when ``p < alpha`` and the metric has a direction.
    """
    sa, sb = _clean(a, "a"), _clean(b, "b")
    keys = sa.index.intersection(sb.index)
    sign = _sign(higher_is_better)
    d = sign * (sb.loc[keys].to_numpy() - sa.loc[keys].to_numpy())
    rng = np.random.default_rng(seed)
    ci = bootstrap_ci(d, np.mean, n_resamples=n_resamples, level=level, seed=rng, method=method)
    n = int(d.shape[0])
    p = sign_flip_pvalue(d, n_permutations, rng) if n >= 2 else None
    diff = float(d.mean()) if n else None
    return Comparison(
        diff=diff,
        ci=ci,
        p_value=p,
        n_pairs=n,
        better=_better(diff, p, alpha, higher_is_better),
        paired=True,
        test="paired sign-flip permutation",
        mean_a=float(sa.loc[keys].mean()) if n else None,
        mean_b=float(sb.loc[keys].mean()) if n else None,
        n_a=int(sa.shape[0]),
        n_b=int(sb.shape[0]),
        higher_is_better=higher_is_better,
        alpha=alpha,
        metric=metric,
        min_p=min_attainable_p(True, n, 0, 0, n_permutations),
    )


def compare_unpaired(
    a: pd.Series | np.ndarray,
    b: pd.Series | np.ndarray,
    higher_is_better: bool | None = True,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    level: float = 0.95,
    n_permutations: int = 10000,
    metric: str | None = None,
) -> Comparison:
    """Unpaired comparison (no shared keys): difference of means, same sign convention.

    CI: percentile bootstrap of ``mean(b) - mean(a)`` with each group resampled independently;
    p-value: two-sided label-permutation test. ``n_pairs`` is 0.
    """
    xa = np.asarray(pd.to_numeric(pd.Series(np.asarray(a)), errors="coerce"), dtype=np.float64)
    xb = np.asarray(pd.to_numeric(pd.Series(np.asarray(b)), errors="coerce"), dtype=np.float64)
    xa, xb = xa[~np.isnan(xa)], xb[~np.isnan(xb)]
    sign = _sign(higher_is_better)
    rng = np.random.default_rng(seed)
    common: dict[str, Any] = dict(
        n_pairs=0,
        paired=False,
        test="unpaired label permutation",
        n_a=int(xa.size),
        n_b=int(xb.size),
        higher_is_better=higher_is_better,
        alpha=alpha,
        metric=metric,
    )
    means: dict[str, Any] = dict(
        mean_a=float(xa.mean()) if xa.size else None, mean_b=float(xb.mean()) if xb.size else None
    )
    if xa.size < 2 or xb.size < 2:
        reason = f"need at least 2 values per side, got {xa.size}/{xb.size}"
        ci = CI(None, None, None, n=min(xa.size, xb.size), method="percentile", n_resamples=n_resamples,
                level=level, reason=reason)  # fmt: skip
        return Comparison(diff=None, ci=ci, p_value=None, better=None, **means, **common)
    diff = sign * float(xb.mean() - xa.mean())
    boot = sign * (
        bootstrap_distribution(xb, np.mean, n_resamples, rng)
        - bootstrap_distribution(xa, np.mean, n_resamples, rng)
    )
    low, high, used = interval_from_distribution(boot, diff, level, "percentile")
    ci = CI(low, high, diff, n=min(xa.size, xb.size), method=used, n_resamples=n_resamples, level=level,
            se=float(boot.std(ddof=1)))  # fmt: skip
    p = label_permutation_pvalue(xa, xb, n_permutations, rng)
    return Comparison(
        diff=diff, ci=ci, p_value=p, better=_better(diff, p, alpha, higher_is_better), **means, **common,
        min_p=min_attainable_p(False, 0, int(xa.size), int(xb.size), n_permutations),
    )  # fmt: skip


def compare(
    a: pd.Series,
    b: pd.Series,
    higher_is_better: bool | None = True,
    min_pairs: int = 2,
    **kwargs: Any,
) -> Comparison:
    """Paired comparison when A and B share at least ``min_pairs`` keys, else unpaired."""
    sa, sb = _clean(a, "a"), _clean(b, "b")
    if len(sa.index.intersection(sb.index)) >= min_pairs:
        return compare_paired(sa, sb, higher_is_better, **kwargs)
    kwargs.pop("method", None)
    return compare_unpaired(sa, sb, higher_is_better, **kwargs)


def holm(p_values: Iterable[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (``None``/NaN entries are kept and not counted)."""
    ps = list(p_values)
    valid = [(p, i) for i, p in enumerate(ps) if p is not None and not math.isnan(p)]
    m = len(valid)
    out: list[float | None] = [None] * len(ps)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(valid)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def apply_holm(table: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Holm-adjust the ``p_value`` column over the whole table and base the verdict on it.

    Adds ``p_holm``, ``significant_holm`` and ``min_p_holm`` (the smallest Holm-adjusted p the row
    could reach whatever the data: at least its own ``min_p``, and at least the number of tests
    times the smallest ``min_p`` in the table) and ``testable`` (``min_p_holm < alpha``); sets
    ``better`` from ``p_holm``, so a row is only called better when it survives the correction.
    ``significant`` stays the unadjusted test.
    """
    out = table.copy()
    if out.empty:
        return out
    p = [None if v is None or pd.isna(v) else float(v) for v in out["p_value"]]
    out["p_holm"] = holm(p)
    out["significant_holm"] = [q is not None and not pd.isna(q) and q < alpha for q in out["p_holm"]]
    mins = [
        None if v is None or pd.isna(v) or q is None else float(v)
        for v, q in zip(out.get("min_p", [None] * len(out)), p, strict=True)
    ]
    m = sum(q is not None for q in p)
    floor = min((v for v in mins if v is not None), default=None)
    out["min_p_holm"] = [None if v is None or floor is None else min(1.0, max(v, m * floor)) for v in mins]
    out["testable"] = [v is not None and v < alpha for v in out["min_p_holm"]]
    out["better"] = [
        _better(_opt_float(d), q, alpha, None if h is None or pd.isna(h) else bool(h))
        for d, q, h in zip(out["diff"], out["p_holm"], out["higher_is_better"], strict=True)
    ]
    return out


def compare_frames(
    df_a: pd.DataFrame,
    df_b: pd.DataFrame,
    directions: Mapping[str, bool | None],
    key: str = "video_id",
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    level: float = 0.95,
    n_permutations: int = 10000,
) -> pd.DataFrame:
    """Compare two runs metric by metric; each frame is long (columns ``metric``, ``value``, ``key``).

    ``key`` names the pairing column (``video_id`` for two runs of the same videos, ``prompt``
    for two generators on the same prompts); paired when keys are shared, else unpaired.
    ``directions`` maps metric -> higher_is_better (missing = no direction). One row per metric
    present in both, with the :meth:`Comparison.to_dict` columns plus ``p_holm`` (Holm-adjusted
    across the metrics in the table) and the columns of :func:`apply_holm`: ``better`` follows
    ``p_holm``. Each metric's random draws depend on ``seed`` and its name only.
    """
    for name, df in (("A", df_a), ("B", df_b)):
        missing = {"metric", "value", key} - set(df.columns)
        if missing:
            raise UsageError(
                f"run {name} table lacks columns {sorted(missing)}; expected metric, value, {key}"
            )
    rows = []
    in_b = set(df_b["metric"])
    metrics = [m for m in pd.unique(df_a["metric"]) if m in in_b]
    for m in metrics:
        sa = df_a.loc[df_a["metric"] == m].set_index(key)["value"]
        sb = df_b.loc[df_b["metric"] == m].set_index(key)["value"]
        c = compare(
            sa,
            sb,
            directions.get(m),
            n_resamples=n_resamples,
            seed=int(cell_rng(seed, m).integers(2**31)),
            alpha=alpha,
            level=level,
            n_permutations=n_permutations,
            metric=str(m),
        )
        rows.append(c.to_dict())
    return apply_holm(pd.DataFrame(rows), alpha)


def leaderboard(
    df_long: pd.DataFrame,
    directions: Mapping[str, bool | None],
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per metric and model: n, mean, bootstrap CI of the mean over videos, and rank.

    ``df_long`` has columns ``model``, ``metric``, ``value`` and optionally ``video_id``. Several
    rows per (model, metric) are per-video values; a single row is a set metric's value. The CI
    is taken from optional ``ci_low``/``ci_high`` columns when the rows carry one (a set metric's
    recorded CI, or the CI a run recorded for this very aggregate, so the leaderboard repeats the
    run's numbers); otherwise per-video values get :func:`aigve.results.stats.mean_ci` — the helper
    and seed derivation runs use — with the names from optional ``source_metric``/``output``
    columns (default: the ``metric`` label and ""), and a set value without one gets a
    ``ci_reason``. ``rank`` is 1 for the best model per metric, taking the
    direction from ``directions`` (ties share the best rank); metrics with no direction get no
    rank. A CI over fewer than ``MIN_CI_N`` videos (or one a run recorded with a caveat, column
    ``ci_caveat``) gets its ``ci_caveat``. Columns: model, metric, n, mean, ci_low, ci_high, ci_reason,
    ci_caveat, higher_is_better, rank.
    """
    missing = {"model", "metric", "value"} - set(df_long.columns)
    if missing:
        raise UsageError(f"leaderboard input lacks columns {sorted(missing)}; expected model, metric, value")
    rows = []
    for (model, metric), g in df_long.groupby(["model", "metric"], sort=True):
        vals = pd.to_numeric(g["value"], errors="coerce").to_numpy(dtype=np.float64)
        given_low = _opt_float(g["ci_low"].iloc[0]) if "ci_low" in g else None
        given_high = _opt_float(g["ci_high"].iloc[0]) if "ci_high" in g else None
        if len(g) == 1:  # a set metric: its CI (if any) comes with the row
            ci = bootstrap_ci(vals, n_resamples=n_resamples, level=level)  # n and estimate only
            low, high = given_low, given_high
            reason = None if low is not None and high is not None else "single (set-level) value, no CI given"
        elif given_low is not None and given_high is not None:  # the run's own CI for this aggregate
            ci = bootstrap_ci(vals, n_resamples=1, level=level)  # n and estimate only
            low, high, reason = given_low, given_high, None
        else:
            src = str(g["source_metric"].iloc[0]) if "source_metric" in g else str(metric)
            out = str(g["output"].iloc[0]) if "output" in g else ""
            ci = mean_ci(vals, n_resamples, seed, src, out, level)
            low, high, reason = ci.low, ci.high, ci.reason
        given_caveat = g["ci_caveat"].iloc[0] if "ci_caveat" in g else None
        caveat = None
        if low is not None and high is not None:  # a CI from too few videos is flagged where it is shown
            if isinstance(given_caveat, str) and given_caveat:
                caveat = given_caveat
            elif len(g) > 1 and ci.n < MIN_CI_N:
                caveat = ci_caveat_text(ci.n)
        rows.append(
            dict(
                model=model,
                metric=metric,
                n=ci.n,
                mean=ci.estimate,
                ci_low=low,
                ci_high=high,
                ci_reason=reason,
                ci_caveat=caveat,
                higher_is_better=directions.get(str(metric)),
            )
        )
    out = pd.DataFrame(rows, columns=["model", "metric", "n", "mean", "ci_low", "ci_high", "ci_reason",
                                      "ci_caveat", "higher_is_better"])  # fmt: skip
    ranks = pd.Series(np.nan, index=out.index)
    for metric, g in out.groupby("metric", sort=False):
        hib = directions.get(str(metric))
        if hib is None:
            continue
        ranks.loc[g.index] = g["mean"].astype(float).rank(ascending=not hib, method="min")
    out["rank"] = ranks.astype("Int64")
    return out.sort_values(["metric", "rank", "model"], na_position="last").reset_index(drop=True)


def leaderboard_caveat_note(lb: pd.DataFrame) -> str | None:
    """The note under a leaderboard with CIs marked ``⚠ n<5``: which cells and why, or None."""
    if "ci_caveat" not in lb or not lb["ci_caveat"].notna().any():
        return None
    cells = [f"{r['model']} / {r['metric']} (n = {r['n']})" for _, r in lb[lb["ci_caveat"].notna()].iterrows()]
    return (
        f"⚠ n<{MIN_CI_N}: the CIs of {', '.join(cells)} are resampled from fewer than {MIN_CI_N} videos; a "
        "bootstrap over so few values understates the uncertainty: do not report them as 95% intervals"
    )


def leaderboard_wide(lb: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Display form of :func:`leaderboard`: one row per model, one ``mean [low, high]`` cell per
    metric (arrow marks the direction), plus ``mean_rank`` over the metrics every model was ranked on
    (``ranked_on`` says how many; all ranked metrics when the models share none)."""
    cells = {}
    for _, r in lb.iterrows():
        if r["mean"] is None or pd.isna(r["mean"]):
            txt = ""
        elif pd.notna(r["ci_low"]) and pd.notna(r["ci_high"]):
            txt = f"{r['mean']:.{digits}f} [{r['ci_low']:.{digits}f}, {r['ci_high']:.{digits}f}]"
            if isinstance(r.get("ci_caveat"), str) and r["ci_caveat"]:
                txt += f" ⚠ n<{MIN_CI_N}"  # the leaderboard's note says why (``leaderboard_caveat_note``)
        else:
            txt = f"{r['mean']:.{digits}f}"
        cells[(r["model"], r["metric"])] = txt
    arrows = {True: " ↑", False: " ↓", None: ""}
    metrics = list(dict.fromkeys(lb["metric"]))
    hib = {m: lb.loc[lb["metric"] == m, "higher_is_better"].iloc[0] for m in metrics}
    models = sorted(dict.fromkeys(lb["model"]), key=str)
    wide = pd.DataFrame(
        {
            f"{m}{arrows[None if pd.isna(hib[m]) else bool(hib[m])]}": [
                cells.get((mo, m), "") for mo in models
            ]
            for m in metrics
        },  # fmt: skip
        index=pd.Index(models, name="model"),
    )
    ranked = lb.dropna(subset=["rank"])
    # rank only on metrics every model has: a model must not win on metrics the others were not run with
    per_metric = ranked.groupby("metric")["model"].nunique()
    common = [m for m in metrics if per_metric.get(m, 0) == len(models)]
    if common:
        ranked = ranked[ranked["metric"].isin(common)]
    mean_rank = ranked.groupby("model")["rank"].mean()
    wide["mean_rank"] = [round(float(mean_rank[m]), 2) if m in mean_rank.index else None for m in models]
    wide["ranked_on"] = len(common) if common else int(per_metric.size)
    return wide.sort_values("mean_rank", na_position="last").reset_index()


def _fmt_cell(v: Any, floatfmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, float | np.floating):
        return format(float(v), floatfmt)
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4g", index: bool = False) -> str:
    """A GitHub-flavoured markdown table of ``df`` (no ``tabulate`` needed); NaN/None -> empty cell,
    numbers right-aligned, ``|`` escaped."""
    frame = df.reset_index() if index else df
    header = [str(c) for c in frame.columns]
    body = [[_fmt_cell(v, floatfmt) for v in row] for row in frame.itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]  # fmt: skip
    # at least 3 wide: a separator cell needs 3 characters (a lone ":" or "-" is not a valid table)
    widths = [max([3, len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "| " + " | ".join(parts) + " |"

    sep = "| " + " | ".join(
        ("-" * (w - 1) + ":") if num else "-" * w for w, num in zip(widths, numeric, strict=True)
    )
    return "\n".join([line(header), sep + " |", *(line(r) for r in body)]) + "\n"


def to_json_records(df: pd.DataFrame) -> str:
    """JSON list of row objects; NaN/None -> null."""
    records = json.loads(df.to_json(orient="records", force_ascii=False, double_precision=15))
    return json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def write_table(df: pd.DataFrame, path: str | Path, floatfmt: str = ".4g") -> Path:
    """Write ``df`` as markdown (``.md``), CSV (``.csv``) or JSON records (``.json``) by suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".md":
        path.write_text(to_markdown(df, floatfmt), encoding="utf-8")
    elif suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".json":
        path.write_text(to_json_records(df), encoding="utf-8")
    else:
        raise UsageError(f"{path}: unknown table format {suffix!r}; use a .md, .csv or .json file name")
    return path
