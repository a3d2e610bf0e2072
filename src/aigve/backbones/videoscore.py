"""The ``videoscore`` scorer: TIGER-Lab/VideoScore(-v1.1) on a video's frames and its prompt.

As the authors' example ``examples/run_videoscore.py`` (TIGER-AI-Lab/VideoScore, repository HEAD 8e449734,
file last changed in 194736f9) runs it:

- **frames** (option ``sampling``): ``"arange"`` (default, VideoScore-v1.1's example): with ``T`` decoded
  frames (upstream takes ``T`` from the container's frame count, which can differ from what decodes) and ``n = num_frames`` (48 for v1.1), ``np.arange(0, T, T / n).astype(int)`` when ``T > n``, else
  *all* ``T`` frames — a video shorter than ``n`` frames is not padded: it gets fewer image tokens, exactly
  as upstream. ``"linspace"`` is the benchmark script's rule for VideoScore v1.0 (``benchmark/
  eval_videoscore.py``, 16 frames: ``np.linspace(0, T - 1, n).astype(int)``, frames repeat when ``T < n``);
  These rows are the scorer's one declared frame window (``frame_windows``): a streamed video holds only
  them, whatever its length;
- **text**: :data:`REGRESSION_QUERY_PROMPT` (byte for byte; its ``{text_prompt}`` is the entry's prompt),
  then one ``"<image> "`` per frame (as many as the text lacks); each ``<image>`` becomes
  ``<fake_token_around_image>`` + 64 x ``<image>`` + ``<fake_token_around_image>`` with doubled boundary
  tokens merged (what transformers 4.4x's ``Idefics2Processor`` does; done here so the token sequence does
  not depend on the installed transformers), tokenised with the checkpoint's tokenizer (``<s>`` added);
- **images**: transformers' PIL ``Idefics2ImageProcessorPil`` with the checkpoint's settings: no image
  splitting, each side at least 378 px and the longer side at most 980 px (aspect kept when shrinking),
  bilinear, rescale 1/255, mean = std = 0.5 — 64 perceiver tokens per frame whatever its size;
- **model**: :mod:`aigve.backbones.nets.videoscore`, one video per forward pass (as upstream; batching
  would pad sequences), bf16 on CUDA (as the authors load it) and fp32 on CPU (option ``dtype``);
- **output** ``[1, 5]``: the head's raw values in the authors' order (visual quality, temporal consistency,
  dynamic degree, text-to-video alignment, factual consistency), nominally 1.0-4.0 (the range the prompt
  asks for; the regression is not clipped). The example rounds them to 3 digits for printing; we do not.

Weights: a directory with the Hugging Face repository's files (``config.json``, the tokenizer files, the
``*.safetensors`` shards; registry ``videoscore_v1_1``; option ``weights``), loaded strictly through
transformers' ``from_pretrained`` (any missing or unexpected key is an error).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Scorer, ScorerInput, checked_frames
from aigve.backbones.registry import register_extractor
from aigve.errors import MetricInputError, UsageError, WeightsError
from aigve.weights.load import resolve_for_backbone

log = logging.getLogger(__name__)

WEIGHTS = "videoscore_v1_1"
#: TIGER-AI-Lab/VideoScore examples/run_videoscore.py @ 8e449734 (sha256 of the string:
#: 49b386d9ea3003760c983cc258cf4211faf858d58191f95fcfacdf68a8fed2c0; note the space after "sub-score,")
REGRESSION_QUERY_PROMPT = (
    "\n"
    "Suppose you are an expert in judging and evaluating the quality of AI-generated videos,\n"
    "please watch the following frames of a given video and see the text prompt for generating the video,\n"
    "then give scores from 5 different dimensions:\n"
    "(1) visual quality: the quality of the video in terms of clearness, resolution, brightness, and color\n"
    "(2) temporal consistency, both the consistency of objects or humans and the smoothness of motion or "
    "movements\n"
    "(3) dynamic degree, the degree of dynamic changes\n"
    "(4) text-to-video alignment, the alignment between the text prompt and the video content\n"
    "(5) factual consistency, the consistency of the video content with the common-sense and factual "
    "knowledge\n"
    "\n"
    "for each dimension, output a float number from 1.0 to 4.0,\n"
    "the higher the number is, the better the video performs in that sub-score, \n"
    "the lowest 1.0 means Bad, the highest 4.0 means Perfect/Real (the video is like a real video)\n"
    "Here is an output example:\n"
    "visual quality: 3.2\n"
    "temporal consistency: 2.7\n"
    "dynamic degree: 4.0\n"
    "text-to-video alignment: 2.3\n"
    "factual consistency: 1.8\n"
    "\n"
    'For this video, the text prompt is "{text_prompt}",\n'
    "all the frames of video are as follows:\n"
)
ASPECTS = (
    "visual_quality",
    "temporal_consistency",
    "dynamic_degree",
    "text_to_video_alignment",
    "factual_consistency",
)
IMAGE_TOKEN = "<image>"
FAKE_TOKEN = "<fake_token_around_image>"
IMAGE_SEQ_LEN = 64
SHORTEST_EDGE, LONGEST_EDGE = 378, 980
SAMPLINGS = ("arange", "linspace")
DTYPES = ("auto", "bfloat16", "float32")
V11_FRAMES = 48


def frame_indices(num_frames: int, n: int = V11_FRAMES, sampling: str = "arange") -> list[int]:
    """The frames VideoScore reads (see the module docstring)."""
    if num_frames < 1:
        raise MetricInputError("videoscore: the video has no frames")
    if sampling == "arange":
        if num_frames > n:
            return [int(i) for i in np.arange(0, num_frames, num_frames / n).astype(int)]
        return list(range(num_frames))
    if sampling == "linspace":
        return [int(i) for i in np.linspace(0, num_frames - 1, num=n).astype(int)]
    raise UsageError(f"videoscore: sampling must be one of {SAMPLINGS}, got {sampling!r}")


def query_text(prompt: str, num_images: int) -> str:
    """The upstream prompt for ``prompt`` with one ``"<image> "`` per frame it does not already contain."""
    text = REGRESSION_QUERY_PROMPT.format(text_prompt=prompt)
    have = text.count(IMAGE_TOKEN)
    if have < num_images:
        text += "<image> " * (num_images - have)
    return text


def expand_image_tokens(text: str, image_seq_len: int = IMAGE_SEQ_LEN) -> str:
    """transformers 4.4x ``Idefics2Processor`` (no image splitting): each ``<image>`` -> fake + 64 x image +
    fake, then every doubled fake token merged into one."""
    image_str = f"{FAKE_TOKEN}{IMAGE_TOKEN * image_seq_len}{FAKE_TOKEN}"
    text = text.replace(IMAGE_TOKEN, image_str)
    return text.replace(f"{FAKE_TOKEN}{FAKE_TOKEN}", FAKE_TOKEN)


def image_processor() -> Any:
    """The Idefics2 image processor with VideoScore's settings (PIL backend, as transformers 4.4x's)."""
    from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

    return Idefics2ImageProcessorPil(
        do_convert_rgb=True,
        do_resize=True,
        size={"shortest_edge": SHORTEST_EDGE, "longest_edge": LONGEST_EDGE},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_pad=True,
        do_image_splitting=False,
    )


def encode(
    tokenizer: Any, processor: Any, frames: np.ndarray, prompt: str, rows: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Model inputs for one video: ``input_ids``, ``attention_mask`` ``[1, L]``, ``pixel_values``
    ``[1, N, 3, H, W]``, ``pixel_attention_mask`` ``[1, N, H, W]``."""
    from PIL import Image

    images = [Image.fromarray(np.ascontiguousarray(frames[i])) for i in rows]
    text = expand_image_tokens(query_text(prompt, len(images)))
    enc = tokenizer([text], add_special_tokens=True, padding=False, return_tensors="pt")
    px = processor([images], return_tensors="pt")
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "pixel_values": px["pixel_values"],
        "pixel_attention_mask": px["pixel_attention_mask"],
    }


def load_videoscore(
    path: str | os.PathLike[str], dtype: torch.dtype = torch.float32
) -> tuple[torch.nn.Module, Any]:
    """Strictly load a VideoScore directory: ``(model in eval mode on CPU, tokenizer)``."""
    from transformers import AutoTokenizer

    from aigve.backbones.nets.videoscore import videoscore_class

    cls = videoscore_class()
    try:
        model, info = cls.from_pretrained(
            str(path),
            local_files_only=True,
            dtype=dtype,
            output_loading_info=True,
            num_labels=len(ASPECTS),  # a config without id2label would otherwise mean 2 labels
        )
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise WeightsError(
            f"{path}: cannot load VideoScore with transformers ({type(e).__name__}: {str(e).splitlines()[0]}); "
            "it needs the TIGER-Lab/VideoScore-v1.1 repository's files (config.json, tokenizer files, "
            "*.safetensors) — pass the folder with --metric-option videoscore.weights=DIR"
        ) from e
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        shown = "; ".join(f"{k}: {sorted(map(str, v))[:4]}" for k, v in bad.items())
        raise WeightsError(
            f"{path}: not a VideoScore checkpoint (Idefics2 + 5-output score head): {shown} — pass the "
            "TIGER-Lab/VideoScore-v1.1 folder with --metric-option videoscore.weights=DIR"
        )
    if int(model.num_labels) != len(ASPECTS):
        raise WeightsError(f"{path}: the score head has {model.num_labels} outputs, VideoScore has 5")
    return model.eval(), tokenizer


@register_extractor
class VideoScoreScorer(Scorer):
    """VideoScore on (all decoded frames, prompt) -> ``[1, 5]`` raw aspect scores (see the module docstring).

    Options: ``weights`` (the model directory; else the registry's ``videoscore_v1_1``), ``num_frames`` (48),
    ``sampling`` (``arange`` | ``linspace``), ``dtype`` (``auto``: bf16 on CUDA, fp32 on CPU).
    """

    name: ClassVar[str] = "videoscore"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("weights", "num_frames", "sampling", "dtype")
    extra: ClassVar[str | None] = "vlsim"
    input: ClassVar[Literal["frames", "features"]] = "frames"
    texts: ClassVar[tuple[str, ...]] = ("prompt",)
    columns: ClassVar[tuple[str, ...]] = ASPECTS
    weights_option: ClassVar[str | None] = "weights"
    input_side: ClassVar[int | None] = SHORTEST_EDGE

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        options.setdefault("num_frames", V11_FRAMES)
        options.setdefault("sampling", "arange")
        options.setdefault("dtype", "auto")
        n = options["num_frames"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise UsageError(f"videoscore: num_frames must be an integer >= 1, got {n!r}")
        if options["sampling"] not in SAMPLINGS:
            raise UsageError(f"videoscore: sampling must be one of {SAMPLINGS}, got {options['sampling']!r}")
        if options["dtype"] not in DTYPES:
            raise UsageError(f"videoscore: dtype must be one of {DTYPES}, got {options['dtype']!r}")
        if options.get("weights"):
            options["weights"] = str(options["weights"])
        super().__init__(device, batch_size, **options)
        self.model: torch.nn.Module | None = None
        self.tokenizer: Any = None
        self.processor: Any = None

    @property
    def torch_dtype(self) -> torch.dtype:
        d = self.options["dtype"]
        if d == "auto":
            return torch.bfloat16 if self.device.type == "cuda" else torch.float32
        return torch.bfloat16 if d == "bfloat16" else torch.float32

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        resolved = resolve_for_backbone(
            WEIGHTS,
            self.options.get("weights"),
            context="videoscore needs the TIGER-Lab/VideoScore-v1.1 model folder",
            note="pass it with --metric-option videoscore.weights=DIR",
        )
        model, self.tokenizer = load_videoscore(resolved.path, self.torch_dtype)
        self.processor = image_processor()
        return model, resolved.sha256

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["preprocess"] = {
            "prompt_sha256": "49b386d9ea3003760c983cc258cf4211faf858d58191f95fcfacdf68a8fed2c0",
            "image_seq_len": IMAGE_SEQ_LEN,
            "size": [SHORTEST_EDGE, LONGEST_EDGE],
            "image_splitting": False,
            "dtype": str(self.torch_dtype),
        }
        return ident

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        """One window: the rows :func:`frame_indices` picks (``num_frames`` of them at most)."""
        return [frame_indices(num_frames, int(self.options["num_frames"]), self.options["sampling"])]

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        self.ensure_loaded()
        assert self.model is not None
        out = []
        for it in items:
            frames = checked_frames("videoscore", it.data, MetricInputError, min_frames=0)
            prompt = str(it.texts.get("prompt") or "")
            if not prompt.strip():
                raise MetricInputError(f"{it.video_id}: videoscore needs the video's prompt")
            rows = frame_indices(len(frames), int(self.options["num_frames"]), self.options["sampling"])
            enc = encode(self.tokenizer, self.processor, frames, prompt, rows)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=enc["input_ids"].to(self.device),
                    attention_mask=enc["attention_mask"].to(self.device),
                    pixel_values=enc["pixel_values"].to(self.device, self.torch_dtype),
                    pixel_attention_mask=enc["pixel_attention_mask"].to(self.device),
                )
            out.append(logits.float().cpu().numpy().astype(np.float64).reshape(1, len(ASPECTS)))
        return out
