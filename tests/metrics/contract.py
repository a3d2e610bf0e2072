"""The metric contract as reusable checks (``tests/metrics/test_contract.py`` runs them on every catalogue metric;
``tests/docs/test_adding_a_metric.py`` on the documentation's examples).

- :func:`check_spec`: the catalogue row (``MetricSpec``): output names, direction, range, family, extra,
  suites, weights rows;
- :func:`check_builds`: the metric builds with its default options and its provenance is JSON;
- :func:`check_backbones`: every requested backbone (and each scorer's upstream extractors) resolves through
  the backbone registry and builds without loading weights; the declared inputs are what they read;
- :func:`check_video_metric` / :func:`check_set_metric`: computed values, from synthetic backbone outputs of the
  right shape (:data:`SYNTHETIC`): only declared outputs, inside their declared range, moving the declared
  way when the backbone output gets "better"; set metrics: merging the states of two halves (or of any
  grouping) equals one pass, ``reset()`` gives a fresh state, two passes are equal; video metrics: scoring is
  free of hidden state (order and instance do not change a value).

A metric whose backbone is not in :data:`SYNTHETIC` still gets every check that needs no backbone output;
the synthetic-output checks then fail with a message saying which row to add.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aigve.backbones.base import Backbone, Scorer
from aigve.backbones.registry import get_backbone_class
from aigve.metrics.base import FAMILIES, FeatureRequest, Metric, MetricSpec, SetMetric, VideoMetric
from aigve.metrics.catalog import SUITES, get_metric_class
from aigve.types import Entry
from tests.conftest import REPO

#: keys a set metric's ``compute()`` may add beside its outputs (see ``SetMetric.compute``)
SET_RESULT_EXTRAS = {"warnings", "n_real", "n_generated", "protocol"}
LOW, HIGH = 0.2, 0.8  # "quality" of synthetic backbone outputs: HIGH is better in the backbone's own sense
N_VIDEOS = 4  # per side, for set metrics
T_FRAMES = 6  # frames per video when a sampler does not fix the number
#: relative slack at a declared range's bounds for rounding (a cosine of equal vectors can be 1 + 2e-16)
RANGE_SLACK = 1e-12


# ----------------------------------------------------------------------------- synthetic backbone outputs
@dataclass(frozen=True)
class Synthetic:
    """How to fake one backbone's output: ``rows`` per video (``"frames"``: one per sampled frame, ``"pairs"``:
    one per consecutive pair, ``"video"``: one), and ``make(backbone, rows, rng, quality)`` -> ``[rows, D]``.

    ``quality`` in [0, 1]: higher means better in the backbone's own terms (steadier frames, a closer match
    with the prompt, a distribution nearer the real one, a higher quality score); the real side of a set
    metric gets quality 1. ``graded=False``: quality means nothing for this backbone (no direction check)."""

    rows: str
    make: Callable[[Backbone, int, np.random.Generator, float], np.ndarray]
    graded: bool = True


def _similar_rows(width: int, k: int, rng: np.random.Generator, q: float, nonneg: bool) -> np.ndarray:
    """Rows that look more alike the higher ``q`` (consecutive-frame similarity metrics)."""
    base = rng.standard_normal(width)
    noise = rng.standard_normal((k, width))
    rows = base + 2.0 * (1.0 - q) * noise
    return np.abs(rows) if nonneg else rows


def _shifted(width: int, k: int, rng: np.random.Generator, q: float) -> np.ndarray:
    """Gaussian rows whose mean moves away from the real side's (quality 1) as ``q`` drops."""
    return rng.standard_normal((k, width)) + 0.5 * (1.0 - q)


def _fid_inception(b: Backbone, k: int, rng: np.random.Generator, q: float) -> np.ndarray:
    from aigve.backbones.fid_inception import LOGITS_SLICE, POOL_SLICE

    out = np.empty((k, b.dim))  # type: ignore[attr-defined]
    out[:, POOL_SLICE] = _shifted(POOL_SLICE.stop - POOL_SLICE.start, k, rng, q)
    n_classes = LOGITS_SLICE.stop - LOGITS_SLICE.start
    logits = rng.standard_normal((k, n_classes))
    logits[np.arange(k), rng.integers(0, n_classes, k)] += 12.0 * q  # confident, diverse classes
    out[:, LOGITS_SLICE] = logits
    return out


def _image_text(b: Backbone, k: int, rng: np.random.Generator, q: float) -> np.ndarray:
    """Per-frame image-text scorer output by column name (cosines, probabilities, the truncated flag)."""
    cos = np.clip(0.6 * q - 0.3 + 0.05 * rng.standard_normal(k), -1.0, 1.0)
    cols = {
        "cosine": cos,
        "itc_cosine": cos,
        "scaled_cosine": 100.0 * cos,
        "itm_probability": np.clip(q + 0.05 * rng.standard_normal(k), 0.0, 1.0),
        "truncated": np.zeros(k),
    }
    return np.stack([cols[c] for c in type(b).columns], axis=1)  # type: ignore[attr-defined]


def _dover(b: Backbone, k: int, rng: np.random.Generator, q: float) -> np.ndarray:
    from aigve.metrics.vqa import AES_MEAN, TECH_MEAN

    t = TECH_MEAN + 0.1 * (q - 0.5) + 0.002 * rng.standard_normal()
    a = AES_MEAN + 0.05 * (q - 0.5) + 0.001 * rng.standard_normal()
    return np.array([[t, a]])


def _judge(b: Backbone, k: int, rng: np.random.Generator, q: float) -> np.ndarray:
    """A judge scorer's one row per video: each value at ``q`` of its range (0-10 for VIEScore's, else 0-1),
    the prompt not truncated."""
    row = []
    for c in type(b).columns:  # type: ignore[attr-defined]
        top = 10.0 if c.startswith("viescore") else 1.0
        row.append(
            0.0 if c == "prompt_truncated" else float(np.clip(q + 0.01 * rng.standard_normal(), 0, 1)) * top
        )
    return np.asarray([row] * k)


#: backbone name -> how to fake its output (widths come from the backbone where it says them: ``dim``,
#: ``Scorer.columns``)
SYNTHETIC: dict[str, Synthetic] = {
    "frame_absdiff": Synthetic("pairs", lambda b, k, r, q: (1.0 - q) * r.uniform(20.0, 200.0, (k, 1))),
    "optical_flow": Synthetic(
        "pairs", lambda b, k, r, q: r.uniform(0.0, 5.0, (k, 1)) * np.array([[1.0, 1.0 / 90.5]]), graded=False
    ),
    "niqe_features": Synthetic(
        "frames", lambda b, k, r, q: 3.0 + 30.0 * (1.0 - q) * r.uniform(0.5, 1.0, (k, 1))
    ),
    "blur_effect_frames": Synthetic(
        "frames", lambda b, k, r, q: 0.2 + 0.6 * (1.0 - q) * r.uniform(0.5, 1.0, (k, 1))
    ),
    "efficientnet_lite0": Synthetic("frames", lambda b, k, r, q: _similar_rows(b.dim, k, r, q, nonneg=True)),  # type: ignore[attr-defined]
    "clip": Synthetic("frames", lambda b, k, r, q: _similar_rows(512, k, r, q, nonneg=False)),
    "dino_vitb16": Synthetic("frames", lambda b, k, r, q: _similar_rows(768, k, r, q, nonneg=False)),
    "clip_text": Synthetic("frames", _image_text),
    "blip_text": Synthetic("frames", _image_text),
    "vbench_clip_style": Synthetic("frames", _image_text),
    "vbench_raft_static": Synthetic(
        "frames",
        lambda b, k, r, q: np.stack([r.uniform(0.0, 3.0, k), np.full(k, 3.0), np.full(k, 1.0)], axis=1),
        graded=False,
    ),
    "vbench_raft": Synthetic(
        "frames",
        lambda b, k, r, q: np.stack([r.uniform(0.0, 12.0, k), np.full(k, 6.0), np.full(k, 2.0)], axis=1),
        graded=False,
    ),
    "vbench_aesthetic": Synthetic(
        "frames", lambda b, k, r, q: 0.3 + 0.5 * q + 0.02 * r.standard_normal((k, 1))
    ),
    "fid_inception": Synthetic("frames", _fid_inception),
    "i3d_kinetics400": Synthetic("video", lambda b, k, r, q: _shifted(b.dim, k, r, q)),  # type: ignore[attr-defined]
    "videomae_v2": Synthetic("video", lambda b, k, r, q: _shifted(b.dim, k, r, q)),  # type: ignore[attr-defined]
    "dover": Synthetic("video", _dover),
    "gstvqa": Synthetic("video", lambda b, k, r, q: 0.3 + 0.6 * q + 0.01 * r.standard_normal((k, 1))),
    "simplevqa_head": Synthetic("video", lambda b, k, r, q: 1.0 + 3.0 * q + 0.05 * r.standard_normal((k, 1))),
    "lightvqa_head": Synthetic("video", lambda b, k, r, q: 20.0 + 60.0 * q + 0.5 * r.standard_normal((k, 1))),
    "videoscore": Synthetic("video", lambda b, k, r, q: 1.0 + 3.0 * q + 0.05 * r.uniform(-1.0, 1.0, (k, 5))),
    # P(yes) for [semantic adherence, physical commonsense]
    "videophy": Synthetic(
        "video", lambda b, k, r, q: np.clip(q + 0.02 * r.standard_normal((k, 2)), 0.0, 1.0)
    ),
    "judge_vqascore": Synthetic("video", _judge),
    "judge_viescore": Synthetic("video", _judge),
    "judge_tifa": Synthetic("video", _judge),
    "judge_dsg": Synthetic("video", _judge),
    # VBench motion smoothness: mean |predicted - real| (0-255) per interpolated frame, smaller when smoother
    "amt_s": Synthetic("video", lambda b, k, r, q: (1.0 - q) * r.uniform(5.0, 60.0, (k, 1))),
    # VBench temporal_style / overall_consistency: one ViCLIP video-text cosine per video
    # VBench human_action: [hit, label_known] (the action is recognised when the video is good)
    "umt_k400_action": Synthetic("video", lambda b, k, r, q: np.array([[float(q > 0.5), 1.0]] * k)),
    "viclip": Synthetic("video", lambda b, k, r, q: 0.05 + 0.3 * q + 0.01 * r.uniform(-1.0, 1.0, (k, 1))),
}


def _build(req: FeatureRequest) -> Backbone:
    return get_backbone_class(req.extractor)(**dict(req.options))


def _n_rows(req: FeatureRequest, synth: Synthetic) -> int:
    frames = req.sampler.n or T_FRAMES
    return {"frames": frames, "pairs": frames - 1, "video": 1}[synth.rows]


def synthetic_feats(
    metric: Metric, side: str, seed: int, quality: float, backbones: dict[str, Backbone] | None = None
) -> dict[str, np.ndarray]:
    """Fake outputs of every backbone ``metric`` requests for one video's ``side``, by role."""
    feats: dict[str, np.ndarray] = {}
    for i, req in enumerate(r for r in metric.effective_requests() if r.side == side):
        if req.extractor not in SYNTHETIC:
            pytest.fail(
                f"{metric.name}: no synthetic output for backbone '{req.extractor}': add a row to SYNTHETIC in "
                f"{Path(__file__).relative_to(REPO)} (rows per video and how to make them)"
            )
        synth = SYNTHETIC[req.extractor]
        b = (backbones or {}).get(req.extractor) or _build(req)
        rng = np.random.default_rng([seed, i])
        feats[req.role] = np.asarray(synth.make(b, _n_rows(req, synth), rng, quality), dtype=np.float64)
    return feats


DEFAULT_PROMPT = "a red ball bouncing"
#: metrics that need a prompt of a particular form (the others get DEFAULT_PROMPT)
CONTRACT_PROMPTS: dict[str, str] = {
    "vbench_human_action": "A person is riding a bike",  # VBench's form, a Kinetics-400 class
}


def _entry(i: int, prompt: str = DEFAULT_PROMPT) -> Entry:
    return Entry(id=f"v{i}", generated=Path(f"gen{i}.mp4"), real=Path(f"real{i}.mp4"), prompt=prompt)


#: metrics whose direction one synthetic quality scale of their backbone cannot grade, and why (their own tests
#: check the direction on real inputs)
UNGRADED_METRICS: dict[str, str] = {
    "freeze": "frame differences near 0 are steady frames for flicker but frozen ones for freeze; "
    "tests/metrics/test_classic.py checks still vs moving video",
}


def _graded(metric: Metric) -> bool:
    if metric.name in UNGRADED_METRICS:
        return False
    return all(SYNTHETIC[r.extractor].graded for r in metric.effective_requests() if r.extractor in SYNTHETIC)


def check_values(spec: MetricSpec, values: Mapping[str, Any], where: str) -> None:
    declared = {o.name: o for o in spec.outputs}
    assert spec.primary.name in values, f"{where}: the primary output '{spec.primary.name}' is missing"
    for name, v in values.items():
        assert name in declared, f"{where}: output '{name}' is not declared in the spec ({sorted(declared)})"
        assert isinstance(v, (int, float)) and not isinstance(v, bool), (
            f"{where}: {name}={v!r} is not a number"
        )
        assert math.isfinite(v), f"{where}: {name}={v} is not finite"
        lo, hi = declared[name].range
        slack = RANGE_SLACK * max(1.0, abs(v))
        assert lo is None or v >= lo - slack, (
            f"{where}: {name}={v} below its declared range {declared[name].range}"
        )
        assert hi is None or v <= hi + slack, (
            f"{where}: {name}={v} above its declared range {declared[name].range}"
        )


def _check_direction(spec: MetricSpec, low: Mapping[str, Any], high: Mapping[str, Any]) -> None:
    """Better backbone outputs move every output with a direction the declared way."""
    for o in spec.outputs:
        if o.higher_is_better is None or o.name not in low:
            continue
        better, worse = (high[o.name], low[o.name]) if o.higher_is_better else (low[o.name], high[o.name])
        assert better > worse, (
            f"{spec.name}: {o.name} is declared {'higher' if o.higher_is_better else 'lower'}-is-better, but "
            f"better backbone outputs gave {high[o.name]} against {low[o.name]}"
        )


# ----------------------------------------------------------------------------- the catalogue row
def _extras() -> set[str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return set(data["project"]["optional-dependencies"])


def check_spec(spec: MetricSpec) -> None:
    """The catalogue row is well-formed and names existing extras, suites and weights rows."""
    from aigve.weights import weight_names

    names = [o.name for o in spec.outputs]
    assert len(names) == len(set(names)), f"{spec.name}: output names repeat: {names}"
    assert not set(names) & SET_RESULT_EXTRAS, f"{spec.name}: an output is named like a result field"
    for o in spec.outputs:
        assert o.higher_is_better in (True, False, None), (
            f"{spec.name}.{o.name}: direction must be a bool or None"
        )
        lo, hi = o.range
        for bound in (lo, hi):
            assert bound is None or (isinstance(bound, (int, float)) and math.isfinite(bound))
        assert lo is None or hi is None or lo <= hi, f"{spec.name}.{o.name}: range {o.range} is upside down"
    assert spec.family in FAMILIES
    assert spec.level in ("video", "set")
    assert set(spec.inputs) <= {"generated", "real", "prompt"} and "generated" in spec.inputs
    assert spec.extra is None or spec.extra in _extras(), (
        f"{spec.name}: extra '{spec.extra}' not in pyproject"
    )
    assert set(spec.suites) <= set(SUITES), f"{spec.name}: unknown suite in {spec.suites}"
    missing = set(spec.weights) - set(weight_names())
    assert not missing, f"{spec.name}: weights {sorted(missing)} are not rows of the weights registry"
    json.dumps(spec.to_dict())


def check_builds(spec: MetricSpec) -> None:
    """The metric builds with its default options; its provenance is JSON."""
    cls = get_metric_class(spec.name)
    assert cls.spec is spec
    metric = cls()
    assert isinstance(metric, SetMetric if spec.level == "set" else VideoMetric)
    assert metric.name == spec.name
    json.dumps(metric.provenance())  # strict: no default=str


def check_backbones(spec: MetricSpec) -> None:
    """Every requested backbone (and upstream) builds without loading weights; the declared inputs are what
    the backbones read; ``spec.backbone`` names backbones that run."""
    import aigve.weights.load as load
    import aigve.weights.resolve as resolve

    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError(f"{spec.name}: building a backbone must not resolve or load weights")

    with pytest.MonkeyPatch.context() as mp:
        for mod, fn in ((load, "load_into"), (load, "resolve_for_backbone"), (resolve, "resolve_weights")):
            mp.setattr(mod, fn, refuse)
        _check_backbones(spec)


def _check_backbones(spec: MetricSpec) -> None:
    metric = get_metric_class(spec.name)()
    reqs = metric.effective_requests()
    assert reqs, f"{spec.name} requests no backbone"
    built: set[str] = set()
    texts: set[str] = set()
    for req in reqs:
        b = _build(req)  # UsageError on an unknown name or option
        assert not b._loaded, f"{spec.name}: backbone '{req.extractor}' loaded itself on construction"
        built.add(req.extractor)
        if isinstance(b, Scorer):
            assert b.columns, f"scorer '{b.name}' declares no columns"
            texts.update(b.texts)
            for up_name, up_opts in b.upstreams().values():
                up = get_backbone_class(up_name)(**up_opts)
                assert not up._loaded
                built.add(up_name)
    sides = {r.side for r in reqs}
    assert ("real" in sides) == ("real" in spec.inputs), f"{spec.name}: inputs {spec.inputs}, sides {sides}"
    assert "generated" in sides
    assert ("prompt" in texts) == ("prompt" in spec.inputs), (
        f"{spec.name}: inputs {spec.inputs}, but its scorers read the texts {sorted(texts)}"
    )
    for name in spec.backbone.split("+"):  # the catalogue's backbone column names what actually runs
        assert name in built, (
            f"{spec.name}: spec.backbone names '{name}', which it never runs ({sorted(built)})"
        )


# ----------------------------------------------------------------------------- computed values
def check_video_metric(spec: MetricSpec) -> None:
    """Outputs declared, in range, in the declared direction; no hidden state between videos."""
    metric = get_metric_class(spec.name)()
    assert isinstance(metric, VideoMetric)
    backbones = {r.extractor: _build(r) for r in metric.effective_requests()}
    entries = [_entry(i, CONTRACT_PROMPTS.get(spec.name, DEFAULT_PROMPT)) for i in range(N_VIDEOS)]
    by_quality: dict[float, list[dict[str, float]]] = {}
    for q in (LOW, HIGH):
        feats = [synthetic_feats(metric, "generated", i, q, backbones) for i in range(len(entries))]
        values = [metric.score(e, f) for e, f in zip(entries, feats, strict=True)]
        for e, v in zip(entries, values, strict=True):
            check_values(spec, v, f"{spec.name}({e.id}, quality {q})")
        # no hidden state: reverse order on the same instance, and each video on a fresh instance
        backwards = [metric.score(e, f) for e, f in reversed(list(zip(entries, feats, strict=True)))][::-1]
        fresh = [get_metric_class(spec.name)().score(e, f) for e, f in zip(entries, feats, strict=True)]
        assert backwards == values and fresh == values
        by_quality[q] = values
    if _graded(metric):
        for lo, hi in zip(by_quality[LOW], by_quality[HIGH], strict=True):
            _check_direction(spec, lo, hi)


def _updates(spec: MetricSpec, quality: float) -> list[tuple[Entry, str, dict[str, np.ndarray]]]:
    """One update per video and side, in the engine's order (an entry's generated video, then its real one)."""
    metric = get_metric_class(spec.name)()
    sides = ["generated", "real"] if "real" in spec.inputs else ["generated"]
    out = []
    for i in range(N_VIDEOS):
        for side in sides:
            q = quality if side == "generated" else 1.0
            out.append((_entry(i), side, synthetic_feats(metric, side, 100 * i + len(side), q)))
    return out


def _run(metric: SetMetric, updates: Iterable[tuple[Entry, str, dict[str, np.ndarray]]]) -> SetMetric:
    for entry, side, feats in updates:
        metric.update(entry, side, feats)  # type: ignore[arg-type]
    return metric


def _values(spec: MetricSpec, result: Mapping[str, Any]) -> dict[str, float]:
    return {k: v for k, v in result.items() if k not in SET_RESULT_EXTRAS}


def _grouped(spec: MetricSpec, updates: list[Any], size: int) -> dict[str, Any]:
    """Each ``size`` consecutive updates on their own instance, merged into the first."""
    parts = [
        _run(get_metric_class(spec.name)(), updates[i : i + size])  # type: ignore[arg-type]
        for i in range(0, len(updates), size)
    ]
    for p in parts[1:]:
        parts[0].merge(p)
    return parts[0].compute()


def check_set_metric(spec: MetricSpec) -> None:
    """Outputs declared and in range; merge of any grouping = one pass; reset; determinism; direction."""
    cls = get_metric_class(spec.name)
    updates = _updates(spec, HIGH)
    metric = _run(cls(), updates)  # type: ignore[arg-type]
    one_pass = metric.compute()
    extra = set(one_pass) - {o.name for o in spec.outputs} - SET_RESULT_EXTRAS
    assert not extra, f"{spec.name}: compute() gives undeclared keys {sorted(extra)}"
    values = _values(spec, one_pass)
    check_values(spec, values, spec.name)
    assert isinstance(one_pass.get("warnings", []), list)
    json.dumps(one_pass)  # the protocol and warnings travel into result files

    # merging the states of two halves (and of other groupings) equals one pass
    half = len(updates) // 2
    for size in (half, 1):
        merged = _values(spec, _grouped(spec, updates, size))
        assert merged.keys() == values.keys()
        for k, v in values.items():
            assert merged[k] == pytest.approx(v, rel=1e-9, abs=1e-12), f"{spec.name}.{k}: groups of {size}"

    # reset gives the fresh state; a second pass is identical
    metric.reset()
    assert _values(spec, _run(metric, updates).compute()) == values
    assert _values(spec, _run(cls(), updates).compute()) == values  # type: ignore[arg-type]

    # a generated set further from the real one (or less confident, for IS) scores worse
    if _graded(metric):
        low = _values(spec, _run(cls(), _updates(spec, LOW)).compute())  # type: ignore[arg-type]
        _check_direction(spec, low, values)
