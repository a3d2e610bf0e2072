"""Judge methods (VIEScore, TIFA, DSG): upstream prompts, reply parsing and scoring, backend-agnostic.

Each method module has the two-phase API of :mod:`aigve.judges.protocol`:

- ``viescore.prepare(judge, prompt)`` / ``viescore.score_video(judge, plan, frames, *, mode="per_frame",
  json_mode=False)``
- ``tifa.prepare(judge, prompt, *, qa=None)`` / ``tifa.score_video(judge, plan, frames, *, embed=None,
  vqa_format="multiple_choice")``
- ``dsg.prepare(judge, prompt)`` / ``dsg.score_video(judge, plan, frames)``

:data:`METHODS` describes each one for the catalogue and the benchmark: its outputs (range, direction), the
upstream commit it follows, and how many judge requests it makes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from aigve.judges.methods import dsg, tifa, viescore


@dataclass(frozen=True)
class MethodOutput:
    """One named value of ``JudgeOutcome.values``."""

    name: str
    low: float
    high: float
    higher_is_better: bool
    description: str


@dataclass(frozen=True)
class MethodInfo:
    """What a judge method computes and what it costs.

    ``prepare_calls``: judge requests made by ``prepare`` (once per distinct prompt, shared by every video with
    that prompt). ``video_calls(n_frames, n_questions)``: requests made by ``score_video`` for one video
    (``n_questions`` is ignored by methods without questions; TIFA's and DSG's count is the plan's number of
    questions, known after ``prepare``). ``needs_images``: whether ``score_video`` sends frames.
    """

    name: str
    module: ModuleType
    upstream: str
    outputs: tuple[MethodOutput, ...]
    prepare_calls: int
    video_calls: Callable[[int, int], int]
    needs_images: bool = True
    notes: str = ""
    defaults: dict[str, object] = field(default_factory=dict)

    def calls(self, n_frames: int, n_questions: int = 0, *, n_videos_per_prompt: int = 1) -> float:
        """Average judge requests per video, question generation shared by ``n_videos_per_prompt`` videos."""
        return self.video_calls(n_frames, n_questions) + self.prepare_calls / max(n_videos_per_prompt, 1)


METHODS: dict[str, MethodInfo] = {
    "viescore": MethodInfo(
        name="viescore",
        module=viescore,
        upstream=viescore.UPSTREAM,
        outputs=(
            MethodOutput(
                "viescore", 0.0, 10.0, True, "overall O = sqrt(min(SC) * min(PQ)), mean over frames"
            ),
            MethodOutput("viescore_sc", 0.0, 10.0, True, "semantic consistency min(SC), mean over frames"),
            MethodOutput("viescore_pq", 0.0, 10.0, True, "perceptual quality min(naturalness, artifacts)"),
        ),
        prepare_calls=0,
        video_calls=lambda n_frames, n_questions: viescore.calls_per_video(n_frames, mode="per_frame"),
        notes="per_frame mode (default): 2 requests (SC, PQ) per sampled frame; clip mode: 2 per video",
        defaults={"mode": "per_frame"},
    ),
    "tifa": MethodInfo(
        name="tifa",
        module=tifa,
        upstream=tifa.UPSTREAM,
        outputs=(MethodOutput("tifa", 0.0, 1.0, True, "VQA accuracy on the generated questions"),),
        prepare_calls=1,
        video_calls=tifa.calls_per_video,
        notes="1 text-only generation request per prompt; 1 VQA request per question per frame",
        defaults={"vqa_format": "multiple_choice"},
    ),
    "dsg": MethodInfo(
        name="dsg",
        module=dsg,
        upstream=dsg.UPSTREAM,
        outputs=(
            MethodOutput("dsg", 0.0, 1.0, True, "yes-rate with children of a 'no' parent zeroed"),
            MethodOutput("dsg_no_dep", 0.0, 1.0, True, "yes-rate without the dependency rule"),
        ),
        prepare_calls=3,
        video_calls=dsg.calls_per_video,
        notes="3 text-only generation requests per prompt; 1 yes/no request per question per frame",
    ),
}

__all__ = ["METHODS", "MethodInfo", "MethodOutput", "dsg", "tifa", "viescore"]
