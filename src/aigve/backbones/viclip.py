"""``viclip``: VBench's video-text cosine from ViCLIP ViT-L/14 (``temporal_style``, ``overall_consistency``).

VBench's procedure (``vbench/temporal_style.py`` and ``vbench/overall_consistency.py`` are the same code;
Vchitect/VBench commit 45e79ec = the ``vbench`` 0.1.5 wheel), per video:

1. frames: 8 indices by VBench's ``get_frame_indices(8, T, "middle")`` (``[0, T)`` cut into 8 intervals at
   ``linspace(0, T, 9).astype(int)``, the middle ``(a + b - 1) // 2`` of each; a video of fewer than 8 frames
   gives all its frames, then the last one repeated) from every decoded frame of the video;
2. ``clip_transform(224)``: torchvision ``Resize(224)`` of the shorter side, bicubic, ``antialias=False``, on
   the uint8 tensor (so the result is rounded back to uint8), ``CenterCrop(224)``, ``/ 255``, CLIP mean/std;
3. ViCLIP's video embedding of the 8 frames and text embedding of the prompt (CLIP BPE, 32-token context,
   truncated with the end token kept), each L2-normalised; the score is their dot product (a cosine; no
   logit scale).

Frames declared (``frame_windows``): one window, the 8 rows of step 1, so a streamed video holds only those 8
frames whatever its length.

Output: ``[1, 1]`` per video, the cosine. The tokenizer is CLIP's byte-pair encoder; the vocabulary file
(``bpe_simple_vocab_16e6.txt.gz``) is the one that ships inside ``open_clip`` (the ``vlsim`` extra), the same
file VBench downloads.

Options: ``config`` (``"vit_l14"``; ``"tiny_test"`` for tests with an explicit random ``weights`` file),
``weights`` (an explicit checkpoint path), ``num_frames`` (8, VBench's value; the network's temporal table has 8).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from aigve.backbones.base import Scorer, ScorerInput, checked_frames
from aigve.backbones.nets.viclip import CONFIGS, ViCLIP, ViCLIPConfig
from aigve.backbones.registry import register_extractor
from aigve.errors import MetricInputError, UsageError
from aigve.types import DeclaredFrames
from aigve.weights import fetch_hint, load_into

WEIGHTS_NAME = "viclip_internvid_10m_flt"
WEIGHTS_FILE = "ViClip-InternVid-10M-FLT.pth"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INPUT_SIZE = 224
PROCEDURE = (
    "8 frames by VBench get_frame_indices(middle, pad last); torchvision Resize(224, bicubic, antialias=False) "
    "on uint8 + CenterCrop(224) + /255 + CLIP mean/std; cos(ViCLIP video emb, ViCLIP text emb of the prompt)"
)


def middle_indices(num_frames: int, length: int) -> list[int]:
    """VBench's ``get_frame_indices(num_frames, length, sample="middle")`` (utils.py)."""
    if length < 1:
        return []
    n = min(num_frames, length)
    cuts = np.linspace(0, length, n + 1).astype(int)
    idx = [int((cuts[i] + cuts[i + 1] - 1) // 2) for i in range(n)]
    return idx + [idx[-1]] * (num_frames - len(idx))


def clip_transform(frames: np.ndarray, size: int = INPUT_SIZE) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float32 ``[T, 3, size, size]``, VBench's ``clip_transform(size)``."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    x = TF.resize(x, size, interpolation=InterpolationMode.BICUBIC, antialias=False)
    x = TF.center_crop(x, [size, size])
    x = x.float().div(255.0)
    return TF.normalize(x, CLIP_MEAN, CLIP_STD)


class ClipBPE:
    """CLIP's byte-pair tokenizer (open_clip's copy of the vocabulary), with ViCLIP's 32-token truncation."""

    def __init__(self) -> None:
        try:
            from open_clip.tokenizer import SimpleTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise UsageError(
                "viclip needs open_clip's CLIP tokenizer vocabulary: pip install 'aigve[vlsim]'"
            ) from exc
        self.tok = SimpleTokenizer()
        self.sot = int(self.tok.sot_token_id)  # <|startoftext|> = 49406
        self.eot = int(self.tok.eot_token_id)  # <|endoftext|> = 49407

    def __call__(self, texts: Sequence[str], context_length: int) -> torch.Tensor:
        out = torch.zeros(len(texts), context_length, dtype=torch.int)
        for i, text in enumerate(texts):
            ids = [self.sot, *self.tok.encode(text), self.eot]
            if len(ids) > context_length:
                ids = ids[:context_length]
                ids[-1] = self.eot
            out[i, : len(ids)] = torch.tensor(ids)
        return out


def load_viclip(
    config: str = "vit_l14", explicit_path: str | os.PathLike[str] | None = None
) -> tuple[ViCLIP, str]:
    """Resolve (registry ``viclip_internvid_10m_flt``), verify and strictly load ViCLIP (the file's ``model``
    entry, as VBench reads it): ``(model in eval mode, sha256)``."""
    cfg = _config(config)
    if config != "vit_l14" and explicit_path is None:
        raise UsageError(
            f"viclip: config {config!r} has no published weights (it is for tests); pass weights=PATH"
        )
    loaded = load_into(
        lambda: ViCLIP(cfg),
        WEIGHTS_NAME,
        explicit_path,
        key="auto",
        # VBench copies the file's tensors into a float32 model; assign=True would keep e.g. fp16 storage
        transform_state=lambda state, _: {
            k: v.float() if v.is_floating_point() else v for k, v in state.items()
        },
        meta=config == "vit_l14",
        what=f"a ViCLIP checkpoint for config {config!r}",
        fix=f"pass {WEIGHTS_FILE} (`aigve weights fetch {WEIGHTS_NAME}`), or the config that matches the file",
        missing_hint=fetch_hint(WEIGHTS_NAME, size="about 1.7 GB"),
    )
    return loaded.module, loaded.sha256


def _config(name: str) -> ViCLIPConfig:
    if name not in CONFIGS:
        raise UsageError(f"viclip: unknown config {name!r}; known: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[name]


@register_extractor
class ViCLIPScorer(Scorer):
    """Frames + prompt -> ``[1, 1]`` cosine of ViCLIP's video and text embeddings; see the module docstring."""

    name: ClassVar[str] = "viclip"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("config", "weights", "num_frames")
    input = "frames"
    texts: ClassVar[tuple[str, ...]] = ("prompt",)
    columns: ClassVar[tuple[str, ...]] = ("cosine",)
    extra: ClassVar[str | None] = "vlsim"
    weights_option: ClassVar[str | None] = "weights"
    input_side: ClassVar[int | None] = INPUT_SIZE

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        config: str = "vit_l14",
        weights: str | os.PathLike[str] | None = None,
        num_frames: int = 8,
        **options: Any,
    ) -> None:
        cfg = _config(config)
        if num_frames != cfg.num_frames:
            raise UsageError(
                f"viclip: num_frames must be {cfg.num_frames} (VBench's value; the network's temporal position "
                f"table has {cfg.num_frames} rows), got {num_frames!r}"
            )
        super().__init__(
            device=device, batch_size=batch_size, config=config, num_frames=num_frames, **options
        )
        self.config = config
        self.cfg = cfg
        self.num_frames = int(num_frames)
        self.weights_path = str(weights) if weights else None
        self.model: ViCLIP | None = None
        self.tokenizer: ClipBPE | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        self.tokenizer = ClipBPE()
        return load_viclip(self.config, self.weights_path)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["weights"] = WEIGHTS_NAME
        ident["network"] = self.cfg.to_dict()
        ident["procedure"] = PROCEDURE
        return ident

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        """One window: the ``num_frames`` (8) middle-sampled rows (VBench's ``get_frame_indices``)."""
        if num_frames < 1:
            raise MetricInputError("viclip needs uint8 [T,H,W,3] frames (T >= 1), got 0 frames")
        return [middle_indices(self.num_frames, num_frames)]

    def prepare(self, frames: np.ndarray | DeclaredFrames) -> torch.Tensor:
        """One video's decoded frames (or a :class:`~aigve.types.DeclaredFrames` holding at least its middle
        rows) -> ``[8, 3, 224, 224]`` network input (sampling + clip_transform)."""
        frames = checked_frames("viclip", frames, MetricInputError)
        return clip_transform(frames[middle_indices(self.num_frames, len(frames))])

    def embed_videos(self, clips: list[torch.Tensor]) -> torch.Tensor:
        """Prepared clips -> L2-normalised video embeddings ``[B, D]``, ``batch_size`` clips a pass."""
        self.ensure_loaded()
        assert self.model is not None
        outs = []
        with torch.inference_mode():
            for i in range(0, len(clips), max(1, self.batch_size)):
                x = torch.stack(clips[i : i + self.batch_size]).to(self.device)
                f = self.model.encode_video(x)
                outs.append((f / f.norm(dim=-1, keepdim=True)).cpu())
        return torch.cat(outs)

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Prompts -> L2-normalised text embeddings ``[B, D]``."""
        self.ensure_loaded()
        assert self.model is not None and self.tokenizer is not None
        outs = []
        with torch.inference_mode():
            for i in range(0, len(texts), max(1, self.batch_size)):
                tokens = self.tokenizer(texts[i : i + self.batch_size], self.cfg.context_length).to(
                    self.device
                )
                f = self.model.encode_text(tokens)
                outs.append((f / f.norm(dim=-1, keepdim=True)).cpu())
        return torch.cat(outs)

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        if not items:
            return []
        clips = [self.prepare(it.data) for it in items]
        prompts = [str(it.texts.get("prompt") or "") for it in items]
        for it, p in zip(items, prompts, strict=True):
            if not p.strip():
                raise MetricInputError(f"{it.video_id}: viclip needs the video's prompt")
        v = self.embed_videos(clips)
        uniq = list(dict.fromkeys(prompts))
        t = self.embed_texts(uniq)
        rows = t[[uniq.index(p) for p in prompts]]
        cos = (v * rows).sum(dim=-1).double().numpy()
        return [np.array([[c]]) for c in cos]
