"""The ``videophy`` scorer: VideoPhy's auto-rater VideoCon-Physics (mPLUG-Owl-Video on LLaMA-7B) asked two
yes/no questions about a video, as the authors' inference does.

Upstream (Hritikbansal/videophy at 01d366c979e4a82875852adbf427ccc036e7373a): ``utils/constants.py`` (the two
prompt templates), ``utils/prepare_data.py`` (semantic adherence gets the caption, physical commonsense none),
``videocon/training/pipeline_video/entailment_inference.py`` (``get_entail``), ``.../data_utils/xgpt3_dataset.py``
(``MultiModalDataset._extract_text_token_from_conversation``, ``max_length=256``) and
``.../mplug_owl_video/processing_mplug_owl.py`` (``get_index``, ``load_video``, 32 frames). Checkpoint: the hub
repository ``videophysics/videocon_physics`` (revision 2b908dfc044350a1441efc785235c0dc110f14e1).

Per video and question:

1. **Frames**: 32 frames at the segment centres of ``get_index`` (the metric's ``Sampler("segments", n=32)``;
   a video shorter than 32 frames repeats frames, exactly as the authors' index rule does). The authors decode
   with decord straight to 224 x 224 (aspect ratio not kept; FFmpeg's bilinear scaler on the YUV frames) and
   then apply CLIP's processor, which at that size only rescales and normalises (CLIP mean/std). Here the
   decoded RGB frames are resized to 224 x 224 with antialiased bilinear interpolation and rounded to uint8:
   on the toy videos this is 0.8-1.2 grey levels (mean absolute) from decord's frames, the closest of the
   RGB-side resizers we measured; then the same normalisation. End to end on the first four toy videos, with
   a 224 px variant of the tiny test network, the authors' pipeline (decord, their processor, their model) and
   ours (PyAV, this resize, this port) gave P(yes) values at most 8.4e-4 apart; given the authors' pixel
   tensors, ours agreed to 1.2e-7.
2. **Prompt**: the template (byte for byte below) with ``{caption}`` replaced by the prompt for semantic
   adherence; tokenised chunk by chunk as the authors' dataset does (split at ``<|video|>``, ``AI: `` and
   ``\\nHuman: ``; BOS first; 65 placeholder ids ``-2`` for the video; a chunk right after ``AI: `` gets an EOS;
   truncation at ``max_length + 1`` tokens), with the checkpoint's LLaMA SentencePiece model (transformers
   4.28's slow ``LlamaTokenizer``: special-token strings split out, every other piece by SentencePiece).
3. **Model**: :class:`aigve.backbones.nets.mplug_owl_video.MplugOwlVideo` (the video's 65 tokens spliced in
   place of the placeholders).
4. **Score**: the authors' ``get_entail``: the read position is the token before the first padding token
   (``<unk>``, id 0) -- the last prompt token -- and the score is ``p(Yes) / (p(Yes) + p(No))`` from the
   softmax over the vocabulary there, computed in the logits' dtype, with the ids of the first pieces of
   ``"Yes"`` and ``"No"``.

Precision: bfloat16 on CUDA, as the authors run it; float32 elsewhere (``dtype`` option). Both outputs are
probabilities in [0, 1], higher is better.

Missing prompt: the physical-commonsense template does not contain the caption, but the engine records a
missing input per metric, so a video without a prompt gets an error record for both outputs (a prompt is
declared as this scorer's text; the physics score does not depend on its value, which a test checks).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from aigve.backbones.base import Scorer, ScorerInput
from aigve.backbones.nets.mplug_owl_video import (
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    AbstractorConfig,
    MplugOwlVideo,
    MplugOwlVideoConfig,
    TextConfig,
    VisionConfig,
    map_checkpoint_keys,
)
from aigve.backbones.registry import register_extractor
from aigve.errors import MetricInputError, MissingDependencyError, UsageError, WeightsError

UPSTREAM_COMMIT = "01d366c979e4a82875852adbf427ccc036e7373a"  # Hritikbansal/videophy
WEIGHTS_NAME = "videocon_physics"
METRIC = "videophy"

#: ``PROMPT_VTA`` of upstream ``utils/constants.py`` (semantic adherence; ``{caption}`` is the prompt)
PROMPT_SA = (
    "The following is a conversation between a curious human and AI assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions.\n"
    "Human: <|video|>\n"
    'Human: Does this video entail the description: "{caption}"?\n'
    "AI: "
)
#: ``PROMPT_PHYSICS`` of upstream ``utils/constants.py`` (physical commonsense; no caption)
PROMPT_PC = (
    "The following is a conversation between a curious human and AI assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions.\n"
    "Human: <|video|>\n"
    "Human: Does this video follow the physical laws?\n"
    "AI: "
)
COLUMNS: tuple[str, str] = ("semantic_adherence", "physical_commonsense")

NUM_FRAMES = 32  # processor(videos=[path], num_frames=32) in the authors' dataset
MAX_LENGTH = 256  # MultiModalDataset(..., max_length=256) in entailment_inference.py
MEDIA_TAGS: dict[str, int] = {"<image>": IMAGE_TOKEN, "<|video|>": VIDEO_TOKEN}
MEDIA_LENGTH = 65  # the dataset's ``media_lengths``: 1 + 64 for either tag
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_CHUNK_PATTERN = re.compile("(" + "|".join(map(re.escape, [*MEDIA_TAGS, "AI: ", "\nHuman: "])) + ")")

WEIGHT_FILES = ("pytorch_model.bin", "model.safetensors")
SNAPSHOT_GROUPS: list[tuple[str, ...]] = [("config.json",), WEIGHT_FILES, ("tokenizer.model",)]


# ------------------------------------------------------------------------------------------ tokenizer
class LlamaSentencePiece:
    """transformers 4.28's slow ``LlamaTokenizer`` for ``tokenizer(text, add_special_tokens=False)``: the
    special-token strings (``<s>``, ``</s>``, ``<unk>`` and the pad token; none strips whitespace) are split
    out and mapped to their ids, every other piece of text is encoded by SentencePiece."""

    def __init__(self, model_file: str | os.PathLike[str], pad_token: str = "<unk>") -> None:
        try:
            import sentencepiece as spm
        except ImportError as e:
            raise MissingDependencyError("the videophy tokenizer", "multiaspect", "sentencepiece") from e
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self.bos_id = int(self.sp.piece_to_id("<s>"))
        self.eos_id = int(self.sp.piece_to_id("</s>"))
        self.unk_id = int(self.sp.piece_to_id("<unk>"))
        self.pad_id = int(self.sp.piece_to_id(pad_token))
        specials = sorted({"<s>", "</s>", "<unk>", pad_token}, key=len, reverse=True)
        self._special_ids = {s: int(self.sp.piece_to_id(s)) for s in specials}
        self._split = re.compile("(" + "|".join(map(re.escape, specials)) + ")")

    @property
    def vocab_size(self) -> int:
        return int(self.sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for part in self._split.split(text):
            if not part:
                continue
            if part in self._special_ids:
                ids.append(self._special_ids[part])
            else:
                ids.extend(int(i) for i in self.sp.encode(part))
        return ids


def load_tokenizer(snapshot: Path) -> LlamaSentencePiece:
    """The checkpoint's tokenizer: ``tokenizer.model``, pad token from ``tokenizer_config.json`` (``<unk>``)."""
    pad = "<unk>"
    cfg_file = snapshot / "tokenizer_config.json"
    if cfg_file.is_file():
        try:
            value = json.loads(cfg_file.read_text(encoding="utf-8")).get("pad_token")
        except (OSError, ValueError) as e:
            raise WeightsError(f"{cfg_file}: unreadable tokenizer config ({e})") from e
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str) and value:
            pad = value
    return LlamaSentencePiece(snapshot / "tokenizer.model", pad_token=pad)


def conversation_ids(
    tok: LlamaSentencePiece, conversation: str, max_length: int = MAX_LENGTH, media_length: int = MEDIA_LENGTH
) -> list[int]:
    """The ``max_length + 1`` input ids the authors' dataset builds for a conversation holding a media tag
    (``_extract_text_token_from_conversation``, image-text branch; padding with the pad id)."""
    if not any(tag in conversation for tag in MEDIA_TAGS):
        raise UsageError("videophy: a conversation without <|video|> is not a video question")
    chunks = [c for c in _CHUNK_PATTERN.split(conversation) if c]
    enc: list[int] = []
    n = 0
    for idx, chunk in enumerate(chunks):
        if n >= max_length + 1:
            break
        if idx == 0:
            enc = ([tok.bos_id] if tok.bos_id > 0 else []) + tok.encode(chunk)
            n = len(enc)
        elif chunk in MEDIA_TAGS:
            if n + media_length > max_length + 1:
                break
            enc += [MEDIA_TAGS[chunk]] * media_length
            n += media_length
        elif chunks[idx - 1] == "AI: ":
            cur = tok.encode(chunk)
            if n + len(cur) >= max_length:
                cur = cur[: max_length - n]
            cur += [tok.eos_id]
            n += len(cur)
            enc += cur
        else:
            cur = tok.encode(chunk)
            if n + len(cur) >= max_length + 1:
                cur = cur[: max_length + 1 - n]
            n += len(cur)
            enc += cur
    if n > max_length + 1:  # the authors' dataset asserts here
        raise MetricInputError(
            f"videophy: the prompt takes {n} tokens, more than max_length + 1 = {max_length + 1}"
        )
    return enc + [tok.pad_id] * (max_length + 1 - n)


def read_position(ids: Sequence[int], pad_id: int) -> int:
    """``get_entail``'s position: one before the first padding id, else the last (a Python index: -1 when
    the sequence starts with padding, as in the authors' loop)."""
    for i, t in enumerate(ids):
        if t == pad_id:
            return i - 1
    return len(ids) - 1


def p_yes(logits: torch.Tensor, yes_id: int, no_id: int) -> torch.Tensor:
    """``[N, vocab]`` -> ``[N]``: softmax over the vocabulary in the logits' dtype, ``p(Yes) / (p(Yes) + p(No))``."""
    probs = torch.softmax(logits, dim=-1)
    yes, no = probs[:, yes_id], probs[:, no_id]
    return yes / (yes + no)


# ------------------------------------------------------------------------------------------ frames
def preprocess_frames(
    frames: np.ndarray | torch.Tensor, size: int = 224, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` RGB -> float32 ``[3, T, size, size]``: antialiased bilinear resize to
    ``size x size`` rounded to uint8 (stands in for decord's scaler), then CLIP's rescale and normalisation."""
    arr = torch.as_tensor(np.asarray(frames)) if isinstance(frames, np.ndarray) else frames
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != torch.uint8:
        raise UsageError(f"videophy needs uint8 [T,H,W,3] frames, got {arr.dtype} {tuple(arr.shape)}")
    if arr.shape[0] < 1:
        raise MetricInputError("videophy: the video has no frames")
    x = arr.to(device).permute(0, 3, 1, 2).to(torch.float32)
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = x.round_().clamp_(0, 255)
    x = x / 255.0
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).permute(1, 0, 2, 3).contiguous()


# ------------------------------------------------------------------------------------------ loading
def config_from_json(d: dict[str, Any]) -> MplugOwlVideoConfig:
    """Our config from the checkpoint's ``config.json`` (the ``MplugOwlConfig`` layout: ``vision_config``,
    ``visual_abstractor_config``, ``text_config``, ``num_query_tokens``); absent fields take the defaults
    of the authors' config classes."""

    def pick(section: dict[str, Any], cls: Any) -> Any:
        fields = dataclasses.fields(cls)
        names = [f.name for f in fields]
        return cls(**{k: section[k] for k in names if k in section and section[k] is not None})

    text = dict(d.get("text_config") or {})
    if "rope_theta" not in text:
        text["rope_theta"] = 10000.0
    return MplugOwlVideoConfig(
        vision=pick(dict(d.get("vision_config") or {}), VisionConfig),
        abstractor=pick(dict(d.get("visual_abstractor_config") or {}), AbstractorConfig),
        text=pick(text, TextConfig),
        num_query_tokens=int(d.get("num_query_tokens", 64)),
    )


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """A flat state dict from ``pytorch_model.bin`` (``torch.load(weights_only=True, mmap=True)``) or
    ``model.safetensors``; never an arbitrary unpickling."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # a legacy (pre-zip) file cannot be memory-mapped: read it whole
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(
            f"{path}: cannot be read as a state dict ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            f"download it again (`aigve weights fetch {METRIC}`)"
        ) from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a flat state dict of tensors")
    return state


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``"auto"``: bfloat16 on CUDA (the authors' setting), float32 elsewhere."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in table:
        raise UsageError(f"videophy: dtype must be auto, {', '.join(table)}; got {dtype!r}")
    return table[dtype]


@dataclass
class VideoPhyModel:
    """The loaded network, its tokenizer and the ids ``get_entail`` reads."""

    net: MplugOwlVideo
    tokenizer: LlamaSentencePiece
    yes_id: int
    no_id: int
    sha256: str | None
    path: Path
    warnings: tuple[str, ...] = ()


def load_videophy(
    weights: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: str = "auto",
) -> VideoPhyModel:
    """Resolve the ``videophysics/videocon_physics`` snapshot (explicit directory, else the cache), build the
    network on the meta device from its ``config.json``, load the checkpoint strictly (key mapping:
    :func:`map_checkpoint_keys`) and cast it (:func:`resolve_dtype`). ``WeightsError`` naming the checkpoint
    and the fix when the directory or a file is missing or does not fit."""
    from aigve.backbones.clip import resolve_hf_dir
    from aigve.device import resolve_device

    dev = resolve_device(device)
    rd = resolve_hf_dir(WEIGHTS_NAME, weights, SNAPSHOT_GROUPS, METRIC)
    try:
        cfg = config_from_json(json.loads((rd.path / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as e:
        raise WeightsError(f"{rd.path / 'config.json'}: not an mPLUG-Owl config ({e})") from e
    weight_file = next(rd.path / f for f in WEIGHT_FILES if (rd.path / f).is_file())
    state = _read_state(weight_file)
    with torch.device("meta"):
        net = MplugOwlVideo(cfg)
    try:
        net.load_state_dict(map_checkpoint_keys(state, net), strict=True, assign=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        first = " ".join(lines[:2])[:400] if lines else type(e).__name__
        raise WeightsError(
            f"{weight_file}: not a VideoCon-Physics (mPLUG-Owl-Video) checkpoint ({first}) — pass the "
            f"videophysics/videocon_physics snapshot directory (--metric-option {METRIC}.weights=DIR, or "
            f"`aigve weights fetch {METRIC}`)"
        ) from e
    net = net.to(device=dev, dtype=resolve_dtype(dtype, dev)).eval()
    tok = load_tokenizer(rd.path)
    if tok.vocab_size != cfg.text.vocab_size:
        raise WeightsError(
            f"{rd.path / 'tokenizer.model'}: {tok.vocab_size} pieces, the model has {cfg.text.vocab_size} embeddings"
        )
    yes, no = tok.encode("Yes"), tok.encode("No")
    return VideoPhyModel(net, tok, yes[0], no[0], rd.sha256, rd.path, tuple(rd.warnings))


# ------------------------------------------------------------------------------------------ the scorer
@register_extractor
class VideophyScorer(Scorer):
    """``[1, 2]`` per video: P(yes) for semantic adherence (the prompt in ``PROMPT_SA``) and for physical
    commonsense (``PROMPT_PC``), see the module docstring.

    Options: ``weights`` (the snapshot directory), ``max_length`` (256, the authors' dataset), ``dtype``
    (``auto``: bfloat16 on CUDA, float32 elsewhere). ``batch_size`` videos run through the vision side at
    once, ``2 * batch_size`` prompts through the language model."""

    name: ClassVar[str] = "videophy"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("weights", "max_length", "dtype")
    extra: ClassVar[str | None] = "multiaspect"
    input: ClassVar[Literal["frames", "features"]] = "frames"
    texts: ClassVar[tuple[str, ...]] = ("prompt",)
    columns: ClassVar[tuple[str, ...]] = COLUMNS
    input_side: ClassVar[int | None] = 224
    weights_option: ClassVar[str | None] = "weights"

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 4, **options: Any
    ) -> None:
        options.setdefault("max_length", MAX_LENGTH)
        options.setdefault("dtype", "auto")
        ml = options["max_length"]
        if isinstance(ml, bool) or not isinstance(ml, int) or ml < MEDIA_LENGTH + 2:
            raise UsageError(f"videophy: max_length must be an integer >= {MEDIA_LENGTH + 2}, got {ml!r}")
        super().__init__(device, batch_size, **options)
        resolve_dtype(str(options["dtype"]), self.device)  # validate early
        self.handle: VideoPhyModel | None = None

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["dtype"] = str(resolve_dtype(str(self.options["dtype"]), self.device)).replace("torch.", "")
        ident["preprocess"] = {
            "id": f"videophy-{UPSTREAM_COMMIT[:7]}",
            "resize": "224x224 bilinear antialiased, rounded (decord stand-in)",
            "mean": list(CLIP_MEAN),
            "std": list(CLIP_STD),
        }
        return ident

    def load(self) -> None:
        if self.handle is None:
            self.handle = load_videophy(self.options.get("weights"), self.device, str(self.options["dtype"]))
        self._loaded = True

    def weights_sha256(self) -> str | None:
        self.ensure_loaded()
        assert self.handle is not None
        return self.handle.sha256

    def prompts(self, caption: str) -> dict[str, list[int]]:
        """Each question's ids as read: the authors' padded ids cut after the read position."""
        self.ensure_loaded()
        assert self.handle is not None
        tok, ml = self.handle.tokenizer, int(self.options["max_length"])
        if "<image>" in caption:
            raise MetricInputError(
                "videophy: the prompt contains '<image>', which the authors' model cannot take"
            )
        out: dict[str, list[int]] = {}
        for col, conv in zip(COLUMNS, (PROMPT_SA.format(caption=caption), PROMPT_PC), strict=True):
            ids = conversation_ids(tok, conv, ml, self.handle.net.cfg.video_tokens)
            pos = read_position(ids, tok.pad_id) % len(ids)
            out[col] = ids[: pos + 1]
        return out

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        self.ensure_loaded()
        assert self.handle is not None
        net, size = self.handle.net, self.handle.net.cfg.vision.image_size
        results: list[np.ndarray] = []
        step = max(1, self.batch_size)
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            prompts = [self.prompts(it.texts["prompt"]) for it in chunk]
            with torch.inference_mode():
                pixels = torch.stack([preprocess_frames(it.data, size, self.device) for it in chunk])
                videos = net.video_tokens(pixels)
                flat = [p[c] for p in prompts for c in COLUMNS]
                owner = [i for i in range(len(chunk)) for _ in COLUMNS]
                logits = net.read_logits(flat, videos, owner)
                scores = p_yes(logits, self.handle.yes_id, self.handle.no_id).float().cpu().numpy()
            for i in range(len(chunk)):
                results.append(scores[2 * i : 2 * i + 2].astype(np.float64).reshape(1, 2))
        return results
