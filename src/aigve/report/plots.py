"""The report's figures, drawn with matplotlib (Agg backend) and returned as PNG bytes.

Every function is pure: data in, PNG out; nothing is shown or kept open. Importing this module
needs the ``report`` extra (matplotlib).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from aigve.errors import MissingDependencyError

try:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
except ModuleNotFoundError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("the HTML report's plots", "report", "matplotlib") from exc

# matplotlib 3.10 replaced boxplot's ``vert`` with ``orientation``
_HORIZONTAL: dict[str, Any] = (
    {"orientation": "horizontal"}
    if tuple(int(x) for x in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    else {"vert": False}
)
ARROWS = {True: "↑ higher is better", False: "↓ lower is better", None: "no direction"}
_DPI = 110


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def distribution_png(
    groups: Mapping[str, Sequence[float] | np.ndarray],
    title: str,
    higher_is_better: bool | None = None,
    value_range: tuple[float | None, float | None] = (None, None),
) -> bytes:
    """Distribution of one metric's per-video values.

    One group: a histogram with the mean (solid) and median (dashed). Several groups (runs or
    models): one horizontal box per group with every video as a jittered dot, mean marked.
    The x-axis shows the metric's declared range when the data fit in it and cover at least 30 % of
    it (else the data's own extent, so a narrow spread stays readable).
    """
    data = {k: np.asarray(v, dtype=np.float64) for k, v in groups.items()}
    data = {k: v[np.isfinite(v)] for k, v in data.items() if np.isfinite(v).any()}
    if len(data) <= 1:
        fig, ax = plt.subplots(figsize=(5.0, 2.5))
        vals = next(iter(data.values())) if data else np.array([])
        if vals.size:
            bins = min(30, max(5, int(math.sqrt(vals.size)) + 1))
            ax.hist(vals, bins=bins, color="#4c78a8", alpha=0.85, edgecolor="white")
            ax.axvline(float(vals.mean()), color="#e45756", lw=2, label=f"mean {vals.mean():.4g}")
            ax.axvline(
                float(np.median(vals)),
                color="#333333",
                lw=1.2,
                ls="--",
                label=f"median {np.median(vals):.4g}",
            )
            ax.legend(fontsize=7, frameon=False, loc="best")
        ax.set_ylabel("videos", fontsize=8)
    else:
        names = list(data)
        fig, ax = plt.subplots(figsize=(5.0, 0.5 + 0.42 * len(names)))
        ax.boxplot([data[n] for n in names], **_HORIZONTAL, widths=0.55, showfliers=False,
                   medianprops={"color": "#333333"}, boxprops={"color": "#4c78a8"})  # fmt: skip
        rng = np.random.default_rng(0)
        for i, n in enumerate(names, start=1):
            v = data[n]
            ax.scatter(v, i + rng.uniform(-0.15, 0.15, v.size), s=9, alpha=0.55, color="#4c78a8", lw=0)
            ax.scatter([v.mean()], [i], marker="D", s=28, color="#e45756", zorder=3)
        ax.set_yticks(
            range(1, len(names) + 1), [n if len(n) <= 22 else n[:21] + "…" for n in names], fontsize=7
        )
        ax.invert_yaxis()
    lo, hi = value_range
    allv = np.concatenate(list(data.values())) if data else np.array([])
    span = float(np.ptp(allv)) if allv.size else 0.0
    if (
        allv.size
        and lo is not None
        and hi is not None
        and lo <= allv.min()
        and allv.max() <= hi
        and span >= 0.3 * (hi - lo)
    ):
        pad = 0.02 * (hi - lo)
        ax.set_xlim(lo - pad, hi + pad)
    ax.set_title(f"{title}  ({ARROWS.get(higher_is_better, '')})", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _png(fig)


def _heatmap(
    values: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    text: Sequence[Sequence[str]],
    title: str,
    cmap: str,
    vmin: float,
    vmax: float,
    cbar_label: str,
) -> bytes:
    h = 0.9 + 0.38 * len(rows)
    w = 1.8 + 0.75 * len(cols)
    fig, ax = plt.subplots(figsize=(min(max(w, 4.0), 14.0), min(max(h, 2.0), 14.0)))
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    norm = plt.Normalize(vmin, vmax)
    cm = plt.get_cmap(cmap)
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = values[i, j]
            if not text[i][j]:
                continue
            lum = 1.0 if not np.isfinite(v) else float(np.dot(cm(norm(v))[:3], [0.299, 0.587, 0.114]))
            ax.text(
                j,
                i,
                text[i][j],
                ha="center",
                va="center",
                fontsize=6.5,
                color="black" if lum > 0.55 else "white",
            )
    cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cb.set_label(cbar_label, fontsize=7)
    cb.ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=9)
    return _png(fig)


def correlation_heatmap_png(
    correlations: pd.DataFrame, fusion: pd.DataFrame | None = None, stat: str = "srcc"
) -> bytes:
    """Metric x aspect heatmap of a correlation (default SRCC), values printed in the cells.

    A ``*`` marks cells whose CI excludes 0. With ``fusion``, a last row shows the cross-validated
    fusion of all metrics (SRCC_reg).
    """
    c = correlations
    metrics = list(dict.fromkeys(c["metric"].astype(str)))
    aspects = list(dict.fromkeys(c["aspect"].astype(str)))
    vals = np.full((len(metrics), len(aspects)), np.nan)
    text = [["" for _ in aspects] for _ in metrics]
    for _, r in c.iterrows():
        i, j = metrics.index(str(r["metric"])), aspects.index(str(r["aspect"]))
        v = float(r[stat]) if pd.notna(r[stat]) else np.nan
        vals[i, j] = v
        if np.isfinite(v):
            lo, hi = r.get(f"{stat}_low"), r.get(f"{stat}_high")
            sig = pd.notna(lo) and pd.notna(hi) and (float(lo) > 0 or float(hi) < 0)
            text[i][j] = f"{v:.2f}{'*' if sig else ''}"
    rows = metrics
    if fusion is not None and len(fusion) and "srcc_reg" in fusion:
        fz = np.full((1, len(aspects)), np.nan)
        ftxt = [""] * len(aspects)
        for _, r in fusion.iterrows():
            a = str(r["aspect"])
            if a in aspects and pd.notna(r["srcc_reg"]):
                fz[0, aspects.index(a)] = float(r["srcc_reg"])
                ftxt[aspects.index(a)] = f"{float(r['srcc_reg']):.2f}"
        vals = np.vstack([vals, fz])
        text.append(ftxt)
        rows = [*metrics, "fusion (SRCC_reg)"]
    label = {"srcc": "SRCC", "plcc_logistic": "PLCC (logistic)", "plcc_raw": "PLCC", "krcc": "KRCC"}.get(
        stat, stat
    )
    return _heatmap(vals, rows, aspects, text, f"{label} with human scores (* = CI excludes 0)", "RdBu_r", -1.0, 1.0,
                    label)  # fmt: skip


def leaderboard_heatmap_png(lb: pd.DataFrame) -> bytes:
    """Model x metric heatmap of a leaderboard (long form): colour = rank (1 = best, green), text = mean.

    Metrics without a direction are shown in grey (no rank)."""
    models = sorted(dict.fromkeys(lb["model"].astype(str)), key=str)
    metrics = list(dict.fromkeys(lb["metric"].astype(str)))
    vals = np.full((len(models), len(metrics)), np.nan)
    text = [["" for _ in metrics] for _ in models]
    n = max(len(models), 2)
    for _, r in lb.iterrows():
        i, j = models.index(str(r["model"])), metrics.index(str(r["metric"]))
        if pd.notna(r["rank"]):
            vals[i, j] = (float(r["rank"]) - 1) / (n - 1)
        if pd.notna(r["mean"]):
            text[i][j] = f"{float(r['mean']):.3g}" + (f" (#{int(r['rank'])})" if pd.notna(r["rank"]) else "")
    arrows: dict[bool | None, str] = {True: " ↑", False: " ↓"}
    hib = {str(m): lb.loc[lb["metric"] == m, "higher_is_better"].iloc[0] for m in lb["metric"].unique()}
    cols = [f"{m}{arrows.get(None if pd.isna(hib[m]) else bool(hib[m]), '')}" for m in metrics]
    return _heatmap(vals, models, cols, text, "Mean per model (colour: rank, green = best)", "RdYlGn_r", 0.0, 1.0,
                    "relative rank (0 = best)")  # fmt: skip
