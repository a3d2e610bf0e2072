"""VBench's 16 dimensions as a suite: names, min-max normalisation, Quality / Semantic / Total.

Restated from Vchitect/VBench at commit 45e79ec (``scripts/constant.py`` and ``scripts/cal_final_score.py``):

- normalised_d = (raw_d - Min_d) / (Max_d - Min_d) * DIM_WEIGHT_d, no clipping;
- Quality = sum of normalised_d over the quality dimensions / sum of their DIM_WEIGHT (likewise Semantic);
- Total = (QUALITY_WEIGHT * Quality + SEMANTIC_WEIGHT * Semantic) / (QUALITY_WEIGHT + SEMANTIC_WEIGHT), 4 and 1;
- DIM_WEIGHT is 1 for every dimension except dynamic_degree (0.5).

One deliberate difference: ``cal_final_score.py`` sets a dimension missing from the submission to a raw 0 (its
normalised value can then be negative, e.g. subject consistency -0.17) and still prints a "total score". Here a
group score is taken over the dimensions that were computed (their weights in the denominator), the missing ones
are named, and a Total that does not cover all 16 dimensions is labelled as a subset (:attr:`SuiteScores.label`).
With all 16 present the numbers are exactly ``cal_final_score``'s.

Dimension metrics are named ``vbench_<dimension>`` with a per-video output of the same name, wherever they are
registered; :func:`dimension_values` reads a run's values by those names. VBench's dimension score is the mean over
videos for most dimensions, but a frame-weighted mean (sum over every frame term / number of terms) for the
consistency dimensions; metrics of those dimensions add an output ``vbench_<dimension>_frames`` (the number of
frame terms of the video), and the suite weights the per-video values by it, as VBench does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigve.results.records import Results

SOURCE_COMMIT = "45e79ec"  # Vchitect/VBench, scripts/constant.py + scripts/cal_final_score.py

#: the 16 dimensions, in VBench's TASK_INFO order
DIMENSIONS: tuple[str, ...] = (
    "subject_consistency",
    "background_consistency",
    "temporal_flickering",
    "motion_smoothness",
    "dynamic_degree",
    "aesthetic_quality",
    "imaging_quality",
    "object_class",
    "multiple_objects",
    "human_action",
    "color",
    "spatial_relationship",
    "scene",
    "appearance_style",
    "temporal_style",
    "overall_consistency",
)
QUALITY: tuple[str, ...] = (
    "subject_consistency",
    "background_consistency",
    "temporal_flickering",
    "motion_smoothness",
    "aesthetic_quality",
    "imaging_quality",
    "dynamic_degree",
)
SEMANTIC: tuple[str, ...] = (
    "object_class",
    "multiple_objects",
    "human_action",
    "color",
    "spatial_relationship",
    "scene",
    "appearance_style",
    "temporal_style",
    "overall_consistency",
)
#: (Min, Max) of NORMALIZE_DIC
NORMALIZE: dict[str, tuple[float, float]] = {
    "subject_consistency": (0.1462, 1.0),
    "background_consistency": (0.2615, 1.0),
    "temporal_flickering": (0.6293, 1.0),
    "motion_smoothness": (0.706, 0.9975),
    "dynamic_degree": (0.0, 1.0),
    "aesthetic_quality": (0.0, 1.0),
    "imaging_quality": (0.0, 1.0),
    "object_class": (0.0, 1.0),
    "multiple_objects": (0.0, 1.0),
    "human_action": (0.0, 1.0),
    "color": (0.0, 1.0),
    "spatial_relationship": (0.0, 1.0),
    "scene": (0.0, 0.8222),
    "appearance_style": (0.0009, 0.2855),
    "temporal_style": (0.0, 0.364),
    "overall_consistency": (0.0, 0.364),
}
DIM_WEIGHT: dict[str, float] = {d: (0.5 if d == "dynamic_degree" else 1.0) for d in DIMENSIONS}
QUALITY_WEIGHT = 4.0
SEMANTIC_WEIGHT = 1.0

DIMENSIONS_FIELD = "vbench_dimensions"  # entry field of the standard prompt suite (aigve.vbench.prompts)

#: dimensions whose VBench score is a frame-weighted mean over all videos' frame terms (sum / count in
#: ``vbench/<dimension>.py``; for spatial_relationship the mean over all frames' scores); a metric of one of these
#: that gives ``vbench_<dimension>_frames`` per video is weighted by it, else its videos count equally
FRAME_WEIGHTED: frozenset[str] = frozenset(
    {
        "subject_consistency",
        "background_consistency",
        "appearance_style",
        "object_class",
        "multiple_objects",
        "spatial_relationship",
        "scene",
    }
)

#: what each dimension reads from VBench_full_info.json beyond the prompt (custom mode must supply it)
AUXILIARY: dict[str, str] = {
    "object_class": "object (the class name to detect)",
    "multiple_objects": "object (two names joined by ' and ')",
    "color": "color (the colour word) ",
    "spatial_relationship": "spatial_relationship (object_a, object_b, relationship)",
    "scene": "scene (the scene key)",
    "appearance_style": "appearance_style (the style text the frames are compared with)",
    "human_action": "the action label (VBench parses it from the prompt of its suite)",
}


def metric_name(dimension: str) -> str:
    """``vbench_<dimension>``: the catalogue name of a dimension's metric (and its per-video output)."""
    return f"vbench_{dimension}"


def frames_output(dimension: str) -> str:
    """Name of the per-video output holding a frame-weighted dimension's number of frame terms."""
    return f"{metric_name(dimension)}_frames"


def normalized(dimension: str, raw: float) -> float:
    """(raw - Min) / (Max - Min) * DIM_WEIGHT, as ``get_nomalized_score`` (no clipping)."""
    lo, hi = NORMALIZE[dimension]
    return (float(raw) - lo) / (hi - lo) * DIM_WEIGHT[dimension]


def _group(norm: Mapping[str, float], dims: tuple[str, ...]) -> float | None:
    have = [d for d in dims if d in norm]
    if not have:
        return None
    return sum(norm[d] for d in have) / sum(DIM_WEIGHT[d] for d in have)


@dataclass(frozen=True)
class SuiteScores:
    """A run's VBench scores. ``normalized`` holds the weighted normalised value of each computed dimension."""

    raw: dict[str, float]
    normalized: dict[str, float]
    quality: float | None
    semantic: float | None
    total: float | None
    missing: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def label(self) -> str:
        """``"Total"`` when all 16 dimensions were computed, else says over which ones."""
        if self.complete:
            return "VBench Total (16/16 dimensions)"
        n = len(DIMENSIONS) - len(self.missing)
        return f"VBench Total over a subset ({n}/16 dimensions; missing: {', '.join(self.missing)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "quality_score": self.quality,
            "semantic_score": self.semantic,
            "total_score": self.total,
            "complete": self.complete,
            "label": self.label,
            "dimensions": {d: {"raw": self.raw[d], "normalized": self.normalized[d]} for d in self.raw},
            "missing": list(self.missing),
            "missing_quality": [d for d in QUALITY if d in self.missing],
            "missing_semantic": [d for d in SEMANTIC if d in self.missing],
            "weights": {"quality": QUALITY_WEIGHT, "semantic": SEMANTIC_WEIGHT, "dimension": DIM_WEIGHT},
            "source": f"Vchitect/VBench@{SOURCE_COMMIT} scripts/cal_final_score.py",
        }


def suite_scores(raw: Mapping[str, float]) -> SuiteScores:
    """Quality, Semantic and Total from raw dimension scores (keys: dimension names, with or without
    ``vbench_``). A group without any computed dimension has no score, and then there is no Total."""
    clean: dict[str, float] = {}
    for k, v in raw.items():
        d = k.removeprefix("vbench_")
        if d not in NORMALIZE:
            raise KeyError(f"unknown VBench dimension '{k}'; known: {', '.join(DIMENSIONS)}")
        if v is not None and math.isfinite(float(v)):
            clean[d] = float(v)
    norm = {d: normalized(d, v) for d, v in clean.items()}
    q, s = _group(norm, QUALITY), _group(norm, SEMANTIC)
    total = None
    if q is not None and s is not None:
        total = (q * QUALITY_WEIGHT + s * SEMANTIC_WEIGHT) / (QUALITY_WEIGHT + SEMANTIC_WEIGHT)
    missing = tuple(d for d in DIMENSIONS if d not in clean)
    ordered = {d: clean[d] for d in DIMENSIONS if d in clean}
    return SuiteScores(ordered, {d: norm[d] for d in ordered}, q, s, total, missing)


def dimension_values(results: Results) -> dict[str, float]:
    """Each computed dimension's VBench score from a run: metrics named ``vbench_<dimension>``.

    The per-video values are averaged over the videos scored; frame-weighted dimensions whose metric gives
    ``vbench_<dimension>_frames`` are weighted by it (VBench's sum of frame terms / number of terms). Entries with
    a ``vbench_dimensions`` field (VBench's standard prompt suite) count only for the dimensions it lists, as in
    VBench, where each dimension is scored on its own prompts' videos; a ``<name>_static`` output of 0 (VBench's
    static filter, temporal flickering) leaves the video out. Without per-video records the metric's aggregate is
    used."""
    listed = {e.id: set(e.extra[DIMENSIONS_FIELD]) for e in results.entries if DIMENSIONS_FIELD in e.extra}
    out: dict[str, float] = {}
    for d in DIMENSIONS:
        name = metric_name(d)
        agg = results.aggregates.get(name)
        if agg is None or agg.error or name not in agg.outputs:
            continue
        vals: dict[str, float] = {}
        counts: dict[str, float] = {}
        dropped: set[str] = set()  # temporal flickering: videos VBench's static filter rejects
        for r in results.records:
            if r.metric != name or r.error or r.value is None or not math.isfinite(float(r.value)):
                continue
            if r.video_id in listed and d not in listed[r.video_id]:
                continue
            if r.output == name:
                vals[r.video_id] = float(r.value)
            elif r.output == frames_output(d):
                counts[r.video_id] = float(r.value)
            elif r.output == f"{name}_static" and float(r.value) == 0.0:
                dropped.add(r.video_id)
        vals = {k: v for k, v in vals.items() if k not in dropped}
        value: float | None
        if not vals:
            value = None if listed else agg.outputs[name].value
        elif d in FRAME_WEIGHTED and frames_output(d) in agg.outputs:
            keys = [k for k in vals if k in counts]
            den = sum(counts[k] for k in keys)
            value = sum(vals[k] * counts[k] for k in keys) / den if den > 0 else None
        else:
            value = sum(vals.values()) / len(vals)
        if value is not None and math.isfinite(value):
            out[d] = float(value)
    return out


def results_suite_scores(results: Results) -> SuiteScores | None:
    """The run's VBench scores, or None when no ``vbench_*`` dimension metric ran."""
    if not any(metric_name(d) in results.aggregates for d in DIMENSIONS):
        return None
    return suite_scores(dimension_values(results))


def summary_lines(scores: SuiteScores) -> list[str]:
    """The lines the console summary prints under the table."""

    def f(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.2f}%"

    lines = [
        f"{scores.label}: Total {f(scores.total)}, Quality {f(scores.quality)}, Semantic {f(scores.semantic)}"
        " (VBench's min-max normalisation; Total = (4·Quality + Semantic)/5, dynamic_degree weight 0.5)"
    ]
    if scores.raw:
        lines.append(
            "  normalised: " + ", ".join(f"{d} {100 * scores.normalized[d]:.2f}%" for d in scores.raw)
        )
    return lines
