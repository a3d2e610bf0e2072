"""``umt_k400``: Kinetics-400 class probabilities of a video from UMT ViT-L/16, as VBench's ``human_action``.

VBench's procedure (``vbench/human_action.py`` with ``load_video(..., num_frames=16)`` and the UMT dataset
transforms; Vchitect/VBench commit 45e79ec = the ``vbench`` 0.1.5 wheel), per video:

1. 16 frames by ``get_frame_indices(16, T, "middle")`` from every decoded frame (last frame repeated for short
   videos);
2. UMT's ``Resize(256, "bilinear")``: ``cv2.resize`` (``INTER_LINEAR``) of each uint8 frame so that its shorter
   side is 256, the longer ``int(256 * long / short)`` (no-op when the shorter side is already 256);
   ``CenterCrop(224)`` at ``int(round((W - 224) / 2))``, ``int(round((H - 224) / 2))``; ``/ 255`` in float32;
   ImageNet mean/std;
3. the classifier's 400 logits through a sigmoid.

Frames declared (``frame_windows``): one window, the 16 rows of step 1, so a streamed video holds only those
16 frames whatever its length.

Output: float64 ``[1, 400]``, the sigmoid probabilities in the head's class order
(:func:`aigve.backbones.nets.umt.kinetics400_labels`).

``umt_k400_action`` (a scorer on those probabilities and the prompt) applies VBench's rule: the action label,
parsed from the prompt as VBench parses it from the file name ``{prompt}-{index}.mp4`` (lower case, the text
after ``"person is "``, cut at ``-`` and ``_``), is correct when it is among the top-5 classes whose
probability, rounded to 4 decimals, is at least 0.85. Columns: ``hit`` (1/0) and ``label_known`` (1 when the
parsed label is one of the 400 classes; a prompt that names none cannot be judged).

Loading: VBench loads the file with ``strict=False``. Here the load is strict, with one allowance that matches
what VBench's non-strict load does: a file without ``pos_embed`` keeps the network's own (resampled sine-cosine)
table. Any other missing or unexpected key is a ``WeightsError`` (VBench would silently keep random weights).

Options: ``config`` (``"vit_l16_k400"``; ``"tiny_test"`` for tests with an explicit random ``weights`` file),
``weights`` (an explicit checkpoint path).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from aigve.backbones.base import Extractor, Scorer, ScorerInput, checked_frames
from aigve.backbones.nets.umt import CONFIGS, UMTClassifier, UMTConfig
from aigve.backbones.registry import register_extractor
from aigve.backbones.viclip import middle_indices
from aigve.errors import MetricInputError, UsageError
from aigve.types import DeclaredFrames
from aigve.weights import fetch_hint, load_into

WEIGHTS_NAME = "umt_l16_k400"
WEIGHTS_FILE = "l16_ptk710_ftk710_ftk400_f16_res224.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_FRAMES = 16
RESIZE = 256
CROP = 224
PROCEDURE = (
    "16 frames by VBench get_frame_indices(middle, pad last); cv2 INTER_LINEAR shorter side 256 (other side "
    "int(256*long/short)); center crop 224 at int(round((W-224)/2)); /255; ImageNet mean/std; sigmoid(logits)"
)


def load_umt(
    config: str = "vit_l16_k400", explicit_path: str | os.PathLike[str] | None = None
) -> tuple[UMTClassifier, str]:
    """Resolve (registry ``umt_l16_k400``), verify and load UMT (see the module docstring for ``pos_embed``)."""
    cfg = _config(config)
    if config != "vit_l16_k400" and explicit_path is None:
        raise UsageError(
            f"umt_k400: config {config!r} has no published weights (it is for tests); pass weights=PATH"
        )

    def keep_own_pos_embed(
        state: dict[str, torch.Tensor], module: UMTClassifier
    ) -> Mapping[str, torch.Tensor]:
        if "pos_embed" not in state:
            state = {**state, "pos_embed": module.pos_embed.detach().clone()}
        return state

    loaded = load_into(
        lambda: UMTClassifier(cfg),
        WEIGHTS_NAME,
        explicit_path,
        key="auto",
        transform_state=keep_own_pos_embed,
        what=f"a UMT Kinetics-400 checkpoint for config {config!r}",
        fix=f"pass {WEIGHTS_FILE} (`aigve weights fetch {WEIGHTS_NAME}`), or the config that matches the file",
        missing_hint=fetch_hint(WEIGHTS_NAME, size="about 1.2 GB"),
    )
    return loaded.module, loaded.sha256


def _config(name: str) -> UMTConfig:
    if name not in CONFIGS:
        raise UsageError(f"umt_k400: unknown config {name!r}; known: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[name]


def preprocess(frames: np.ndarray | DeclaredFrames) -> torch.Tensor:
    """All decoded uint8 frames ``[T, H, W, 3]`` of one video (or a :class:`~aigve.types.DeclaredFrames` holding
    at least its 16 middle rows) -> float32 ``[3, 16, 224, 224]`` (VBench's)."""
    import cv2

    frames = checked_frames("umt_k400", frames, MetricInputError)
    clip = frames[middle_indices(NUM_FRAMES, len(frames))]  # only these rows: its declared frame window
    h, w = clip.shape[1:3]
    if min(h, w) != RESIZE:
        nh, nw = (int(RESIZE * h / w), RESIZE) if w < h else (RESIZE, int(RESIZE * w / h))
        clip = np.stack([cv2.resize(f, (nw, nh), interpolation=cv2.INTER_LINEAR) for f in clip])
        h, w = nh, nw
    y0 = int(round((h - CROP) / 2.0))
    x0 = int(round((w - CROP) / 2.0))
    clip = clip[:, y0 : y0 + CROP, x0 : x0 + CROP]
    x = torch.from_numpy(np.ascontiguousarray(clip)).permute(3, 0, 1, 2).float().div(255)
    mean = torch.as_tensor(IMAGENET_MEAN, dtype=x.dtype)[:, None, None, None]
    std = torch.as_tensor(IMAGENET_STD, dtype=x.dtype)[:, None, None, None]
    return x.sub(mean).div(std)


@register_extractor
class UMTKineticsExtractor(Extractor):
    """All frames of one video -> ``[1, 400]`` sigmoid probabilities; see the module docstring."""

    name: ClassVar[str] = "umt_k400"
    kind = "clip"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("config", "weights")
    extra: ClassVar[str | None] = "offline"  # opencv, for UMT's resize
    weights_option: ClassVar[str | None] = "weights"
    input_side: ClassVar[int | None] = CROP

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        config: str = "vit_l16_k400",
        weights: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        cfg = _config(config)
        super().__init__(device=device, batch_size=batch_size, config=config, **options)
        self.config = config
        self.cfg = cfg
        self.weights_path = str(weights) if weights else None
        self.model: UMTClassifier | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        return load_umt(self.config, self.weights_path)

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["weights"] = WEIGHTS_NAME
        ident["network"] = self.cfg.to_dict()
        ident["procedure"] = PROCEDURE
        return ident

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        """One window: the 16 middle-sampled rows (VBench's ``get_frame_indices(16, T, "middle")``)."""
        if num_frames < 1:
            raise MetricInputError("umt_k400 needs uint8 [T,H,W,3] frames (T >= 1), got 0 frames")
        return [middle_indices(NUM_FRAMES, num_frames)]

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        return self.probabilities([preprocess(frames)])

    def extract_many(self, clips: list[np.ndarray], fps: list[float | None]) -> list[np.ndarray]:
        """Videos of any size: each is preprocessed to the same input shape, then batched."""
        prepared = [preprocess(c) for c in clips]
        probs = self.probabilities(prepared)
        return [probs[i : i + 1] for i in range(len(prepared))]

    def probabilities(self, prepared: list[torch.Tensor]) -> np.ndarray:
        """Preprocessed clips ``[3, 16, 224, 224]`` -> float64 ``[B, 400]``, ``batch_size`` clips a pass."""
        self.ensure_loaded()
        assert self.model is not None
        outs = []
        with torch.inference_mode():
            for i in range(0, len(prepared), max(1, self.batch_size)):
                x = torch.stack(prepared[i : i + self.batch_size]).to(self.device)
                outs.append(torch.sigmoid(self.model(x)).float().cpu().numpy().astype(np.float64))
        return np.concatenate(outs)


def action_label(prompt: str) -> str:
    """VBench's action label from the prompt (its file-name rule applied to ``{prompt}-{index}.mp4``)."""
    return prompt.lower().split("-")[0].split("person is ")[-1].split("_")[0]


def action_hit(
    probs: np.ndarray, label: str, labels: Sequence[str], top: int = 5, thresh: float = 0.85
) -> bool:
    """VBench's rule: ``label`` is among the ``top`` most probable classes whose probability, rounded to 4
    decimals, is at least ``thresh`` (``torch.topk`` on float32 probabilities, Python ``round``)."""
    values, indices = torch.topk(torch.as_tensor(np.asarray(probs, dtype=np.float32)), top)
    kept = [
        labels[int(i)]
        for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        if round(v, 4) >= thresh
    ]
    return label in kept


@register_extractor
class UMTActionScorer(Scorer):
    """``umt_k400`` probabilities + prompt -> ``[1, 2]``: ``hit``, ``label_known`` (VBench's top-5 rule)."""

    name: ClassVar[str] = "umt_k400_action"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("config", "weights")
    input = "features"
    texts: ClassVar[tuple[str, ...]] = ("prompt",)
    columns: ClassVar[tuple[str, ...]] = ("hit", "label_known")
    extra: ClassVar[str | None] = "offline"
    weights_option: ClassVar[str | None] = "weights"

    def __init__(
        self,
        device: str | torch.device | None = "cpu",
        batch_size: int = 32,
        config: str = "vit_l16_k400",
        weights: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        _config(config)
        super().__init__(device=device, batch_size=batch_size, config=config, **options)
        self._upstream_opts: dict[str, Any] = {"config": config}
        if weights:
            self._upstream_opts["weights"] = str(weights)
        self._labels: list[str] = []

    def upstream(self) -> tuple[str, dict[str, Any]]:
        return UMTKineticsExtractor.name, dict(self._upstream_opts)

    def load(self) -> None:
        from aigve.backbones.nets.umt import kinetics400_labels

        self._labels = kinetics400_labels()
        self._loaded = True

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["rule"] = "label from prompt (VBench file-name rule); top-5 sigmoid, round(p, 4) >= 0.85"
        return ident

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        self.ensure_loaded()
        known = set(self._labels)
        out = []
        for it in items:
            probs = np.asarray(it.data, dtype=np.float64).reshape(-1)
            label = action_label(str(it.texts.get("prompt") or ""))
            ok = label in known and probs.shape == (len(self._labels),)
            hit = ok and action_hit(probs, label, self._labels)
            out.append(np.array([[float(hit), float(ok)]]))
        return out
