"""Vision-language understanding: does the video show what the prompt asks for? Scored by a *judge*, a
vision-language model that reads the sampled frames and the prompt: an OpenAI-compatible endpoint
(``--judge endpoint --judge-model MODEL``, server from ``--judge-base-url``/``OPENAI_BASE_URL``, key from
``OPENAI_API_KEY``) or a local Qwen2-VL / Qwen2.5-VL (``--judge local --judge-model NAME|DIR``). Without a
judge these metrics fail with that fix; other metrics of the run are unaffected.

- ``vqascore`` (Lin et al. 2024, t2v_metrics): P("Yes") of the first answer token to ``Does this figure show
  "{prompt}"? Please answer yes or no.``, per sampled frame (one image per question), averaged over the
  frames. 0-1, higher is better. Needs token probabilities: any local judge; endpoints that return
  ``logprobs`` (OpenAI, vLLM, SGLang), where P("Yes") is read from the top-20 first tokens (0 when "Yes" is
  not among them).

Every judge metric samples ``num_frames`` frames uniformly (``--judge-frames`` sets it for all of them), runs
the judge's questions that depend only on the prompt once per distinct prompt, keeps each video's detail
(questions, answers, raw replies, requests and tokens) in the per-video results, and records the judge
(backend, model, endpoint host) and the run's requests and tokens (and cost with ``--judge-price``) in the
provenance. Replies are cached (``<cache>/judges/responses.sqlite``): a rerun makes no request. A prompt
longer than ``max_prompt_chars`` (1000) is cut there (``prompt_truncated`` = 1, with a warning); a missing or
empty prompt, or a judge that fails (timeout, unparseable reply, refusal), is that video's error record,
with the reason and the raw reply in its details.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from aigve.backbones.base import column
from aigve.errors import MetricInputError
from aigve.metrics.base import FeatureRequest, MetricSpec, OutputSpec, VideoMetric
from aigve.metrics.catalog import register_metric
from aigve.metrics.vl_similarity import frame_sampler
from aigve.types import Entry

JUDGE_ROLE = "judge"
DEFAULT_JUDGE_FRAMES = 4
JUDGE_TRUNCATED = OutputSpec(
    "prompt_truncated",
    None,
    (0.0, 1.0),
    "1 if the prompt was longer than max_prompt_chars and was cut for the judge, else 0",
)
JUDGE_NOTE = "needs a judge: --judge endpoint|local --judge-model M (or AIGVE_JUDGE_MODEL)"


class JudgeMetric(VideoMetric):
    """A metric read from one judge scorer's row (its values and ``prompt_truncated``)."""

    scorer: ClassVar[str]
    values: ClassVar[tuple[str, ...]]

    def requests(self) -> list[FeatureRequest]:
        return [
            FeatureRequest(
                JUDGE_ROLE, self.scorer, frame_sampler(self.options.get("num_frames")), "generated"
            )
        ]

    def extractor_options(self) -> dict[str, Any]:
        opts = {k: v for k, v in self.options.items() if k != "num_frames"}
        return opts

    def score(self, entry: Entry, feats: Mapping[str, np.ndarray]) -> dict[str, float]:
        out = np.asarray(feats[JUDGE_ROLE], dtype=np.float64)
        cols = (*self.values, "prompt_truncated")
        if out.ndim != 2 or out.shape[0] < 1 or out.shape[1] != len(cols):
            raise MetricInputError(f"{entry.generated}: {self.name}: judge output of shape {out.shape}")
        return {c: float(column(out, cols, c)[0]) for c in cols}


@register_metric
class VqaScore(JudgeMetric):
    """VQAScore: mean over sampled frames of the judge's P("Yes") that the frame shows the prompt."""

    scorer: ClassVar[str] = "judge_vqascore"
    values: ClassVar[tuple[str, ...]] = ("vqascore",)
    spec: ClassVar[MetricSpec] = MetricSpec(
        name="vqascore",
        family="vl_understanding",
        description=(
            'P("Yes") of a VLM judge to \'Does this figure show "{prompt}"? Please answer yes or no.\', '
            f"per sampled frame, averaged over the frames (4 by default); 0-1; {JUDGE_NOTE}, with token logprobs"
        ),
        inputs=("generated", "prompt"),
        backbone="judge_vqascore",
        outputs=(
            OutputSpec(
                "vqascore",
                True,
                (0.0, 1.0),
                'mean over the sampled frames of P("Yes") as the first answer token',
            ),
            JUDGE_TRUNCATED,
        ),
        citation=(
            "Lin et al., Evaluating Text-to-Visual Generation with Image-to-Text Generation (VQAScore), "
            "ECCV 2024; linzhiqiu/t2v_metrics"
        ),
        extra="judges",
        options={"num_frames": DEFAULT_JUDGE_FRAMES, "max_prompt_chars": 1000, "question": None},
    )


def _outputs(method: str) -> tuple[OutputSpec, ...]:
    from aigve.judges.methods import METHODS

    return tuple(
        OutputSpec(o.name, o.higher_is_better, (o.low, o.high), o.description)
        for o in METHODS[method].outputs
    )


@register_metric
class VieScore(JudgeMetric):
    """VIEScore (text-to-video): semantic consistency and perceptual quality, 0-10, per sampled frame."""

    scorer: ClassVar[str] = "judge_viescore"
    values: ClassVar[tuple[str, ...]] = ("viescore", "viescore_sc", "viescore_pq")
    spec: ClassVar[MetricSpec] = MetricSpec(
        name="viescore",
        family="vl_understanding",
        description=(
            "VIEScore t2v: a VLM judge rates semantic consistency (SC) and perceptual quality (PQ: naturalness, "
            "artifacts) of each sampled frame (4 by default) with the upstream prompts; overall "
            f"sqrt(min SC * min PQ), mean over frames; scale 0-10; {JUDGE_NOTE}"
        ),
        inputs=("generated", "prompt"),
        backbone="judge_viescore",
        outputs=(*_outputs("viescore"), JUDGE_TRUNCATED),
        citation=(
            "Ku et al., VIEScore: Towards Explainable Metrics for Conditional Image Synthesis Evaluation, ACL 2024; "
            "TIGER-AI-Lab/VIEScore@2cbea4e"
        ),
        extra="judges",
        options={
            "num_frames": DEFAULT_JUDGE_FRAMES,
            "max_prompt_chars": 1000,
            "mode": "per_frame",
            "json_mode": False,
        },
    )


@register_metric
class Tifa(JudgeMetric):
    """TIFA: accuracy of the judge's answers to questions generated from the prompt."""

    scorer: ClassVar[str] = "judge_tifa"
    values: ClassVar[tuple[str, ...]] = ("tifa",)
    spec: ClassVar[MetricSpec] = MetricSpec(
        name="tifa",
        family="vl_understanding",
        description=(
            "TIFA: questions generated from the prompt by the judge (once per distinct prompt, upstream in-context "
            "examples), each answered on each sampled frame (4 by default), free-form answers mapped to the "
            f"choices with all-MiniLM-L6-v2; accuracy 0-1; {JUDGE_NOTE}"
        ),
        inputs=("generated", "prompt"),
        backbone="judge_tifa",
        outputs=(*_outputs("tifa"), JUDGE_TRUNCATED),
        citation=(
            "Hu et al., TIFA: Accurate and Interpretable Text-to-Image Faithfulness Evaluation with Question "
            "Answering, ICCV 2023; Yushi-Hu/tifa@8e37050"
        ),
        extra="judges",
        requires=("sentence_transformers",),
        options={
            "num_frames": DEFAULT_JUDGE_FRAMES,
            "max_prompt_chars": 1000,
            "vqa_format": "multiple_choice",
            "unifiedqa": None,
        },
    )


@register_metric
class Dsg(JudgeMetric):
    """DSG: yes-rate of the judge on the prompt's Davidsonian scene-graph questions, with dependencies."""

    scorer: ClassVar[str] = "judge_dsg"
    values: ClassVar[tuple[str, ...]] = ("dsg", "dsg_no_dep")
    spec: ClassVar[MetricSpec] = MetricSpec(
        name="dsg",
        family="vl_understanding",
        description=(
            "DSG: tuples, dependencies and yes/no questions generated from the prompt (3 judge requests per "
            "distinct prompt), each answered on each sampled frame (4 by default); exact 'yes' = 1, children of a "
            f"'no' parent 0; mean 0-1; {JUDGE_NOTE}"
        ),
        inputs=("generated", "prompt"),
        backbone="judge_dsg",
        outputs=(*_outputs("dsg"), JUDGE_TRUNCATED),
        citation=(
            "Cho et al., Davidsonian Scene Graph: Improving Reliability in Fine-grained Evaluation for "
            "Text-to-Image Generation, ICLR 2024; j-min/DSG@7330119"
        ),
        extra="judges",
        options={"num_frames": DEFAULT_JUDGE_FRAMES, "max_prompt_chars": 1000},
    )
