"""Backbones used only by the VBench dimensions.

``vbench_clip_style``: VBench's ``appearance_style`` (Vchitect/VBench 45e79ec, ``vbench/appearance_style.py``)
scores each frame against the prompt's *style text* (auxiliary info ``appearance_style``, e.g. "oil painting"),
not against the prompt. This is the ``clip_text`` scorer reading the entry's ``appearance_style`` field instead:
per frame the cosine, ``exp(logit_scale) * cosine`` (CLIP's ``logits_per_text``, which VBench divides by 100) and
the truncation flag, on the ``clip`` extractor's embeddings of the same frames and model.

``vbench_aesthetic``: the LAION linear aesthetic head of ``aesthetic_quality`` on CLIP ViT-L/14 embeddings.

``vbench_raft`` / ``vbench_raft_static``: RAFT-large flow statistics of ``dynamic_degree`` and of the static-video
filter. Clip extractors that declare one frame window per frame pair they run RAFT on (its two rows), so a
streamed video holds a couple of frames, never the whole clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Extractor, Scorer, ScorerInput, checked_frames, run_windows
from aigve.backbones.clip import ClipTextScorer, image_text_cosine
from aigve.backbones.registry import register_extractor
from aigve.errors import MetricInputError, UsageError
from aigve.types import DeclaredFrames

STYLE_FIELD = "appearance_style"


@register_extractor
class VBenchClipStyleScorer(ClipTextScorer):
    """``clip_text`` on the entry's ``appearance_style`` text: ``[T, 3]`` cosine, scaled cosine, truncated."""

    name: ClassVar[str] = "vbench_clip_style"
    version: ClassVar[str] = "1"
    texts: ClassVar[tuple[str, ...]] = (STYLE_FIELD,)

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        if not items:
            return []
        h = self.handle
        txt, trunc = h.encode_text([it.texts[STYLE_FIELD] for it in items])
        scale = h.logit_scale
        out = []
        for i, it in enumerate(items):
            cos = image_text_cosine(it.data, txt[i])
            out.append(np.stack([cos, scale * cos, np.full_like(cos, float(trunc[i]))], axis=1))
        return out


AESTHETIC_WEIGHTS = "laion_aesthetic_l14"


@register_extractor
class VBenchAestheticScorer(Scorer):
    """VBench's ``aesthetic_quality`` head (Vchitect/VBench 45e79ec, ``vbench/aesthetic_quality.py``): the LAION
    aesthetic predictor's *linear* head ``sa_0_4_vit_l_14_linear.pth`` (``nn.Linear(768, 1)``) on the L2-normalised
    CLIP ViT-L/14 image embedding of each frame, divided by 10 -> ``[T, 1]``.

    Reads the ``clip`` extractor (``model=clip_vit_l14``, ``image_backend=vbench``: VBench's ``clip_transform``).
    Options: the upstream's ``model``/``weights`` and ``head_weights`` (the head file; default the registry's).
    """

    name: ClassVar[str] = "vbench_aesthetic"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = ("model", "weights", "image_backend", "head_weights")
    extra: ClassVar[str | None] = "vlsim"
    input: ClassVar[Literal["frames", "features"]] = "features"
    columns: ClassVar[tuple[str, ...]] = ("aesthetic",)

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        options.setdefault("model", "clip_vit_l14")
        options.setdefault("image_backend", "vbench")
        super().__init__(device, batch_size, **options)
        self.model: torch.nn.Linear | None = None

    def upstream(self) -> tuple[str, dict[str, Any]]:
        opts = {k: self.options[k] for k in ("model", "image_backend")}
        if self.options.get("weights"):
            opts["weights"] = str(self.options["weights"])
        return "clip", opts

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        from aigve.weights import load_into, resolve_for_backbone
        from aigve.weights.load import load_state_dict

        resolved = resolve_for_backbone(
            AESTHETIC_WEIGHTS,
            self.options.get("head_weights"),
            context="vbench_aesthetic_quality needs the LAION aesthetic linear head",
        )
        in_features = int(load_state_dict(resolved.path)["weight"].shape[1])
        loaded = load_into(
            lambda: torch.nn.Linear(in_features, 1),
            AESTHETIC_WEIGHTS,
            resolved=resolved,
            what="the LAION aesthetic linear head (sa_0_4_vit_l_14_linear.pth)",
            fix="pass sa_0_4_vit_l_14_linear.pth with --metric-option vbench_aesthetic_quality.head_weights=PATH",
        )
        return loaded.module, loaded.sha256

    @torch.inference_mode()
    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        self.ensure_loaded()
        assert self.model is not None
        out = []
        for it in items:
            emb = torch.as_tensor(np.asarray(it.data, dtype=np.float32), device=self.device)
            emb = torch.nn.functional.normalize(emb, dim=-1, p=2)
            s = self.model(emb).squeeze(-1) / 10
            out.append(s.double().cpu().numpy().reshape(-1, 1))
        return out


# --------------------------------------------------------------------------------------------------------------
# dynamic_degree: RAFT (torchvision's raft_large) with VBench's sampling, padding and threshold inputs
# --------------------------------------------------------------------------------------------------------------
RAFT_WEIGHTS = "tv_raft_large_c_t_v1"
RAFT_ITERS = 20
DYNAMIC_COLUMNS = ("max_rad", "thres", "count_num")

_RAFT_ENCODER_RULES = (
    (".conv1.", ".convnormrelu.0."),
    (".norm1.", ".convnormrelu.1."),
    (".conv2.", ".conv."),
)
_RAFT_BLOCK_RULES = (
    (".conv1.", ".convnormrelu1.0."),
    (".norm1.", ".convnormrelu1.1."),
    (".conv2.", ".convnormrelu2.0."),
    (".norm2.", ".convnormrelu2.1."),
)
_RAFT_UPDATE_RULES = {
    "update_block.encoder.convc1.": "update_block.motion_encoder.convcorr1.0.",
    "update_block.encoder.convc2.": "update_block.motion_encoder.convcorr2.0.",
    "update_block.encoder.convf1.": "update_block.motion_encoder.convflow1.0.",
    "update_block.encoder.convf2.": "update_block.motion_encoder.convflow2.0.",
    "update_block.encoder.conv.": "update_block.motion_encoder.conv.0.",
    "update_block.gru.convz1.": "update_block.recurrent_block.convgru1.convz.",
    "update_block.gru.convr1.": "update_block.recurrent_block.convgru1.convr.",
    "update_block.gru.convq1.": "update_block.recurrent_block.convgru1.convq.",
    "update_block.gru.convz2.": "update_block.recurrent_block.convgru2.convz.",
    "update_block.gru.convr2.": "update_block.recurrent_block.convgru2.convr.",
    "update_block.gru.convq2.": "update_block.recurrent_block.convgru2.convq.",
    "update_block.mask.0.": "mask_predictor.convrelu.0.",
    "update_block.mask.2.": "mask_predictor.conv.",
}


def raft_original_to_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys of the original RAFT checkpoint (princeton-vl/RAFT ``raft-things.pth``, as VBench loads it: a
    ``module.`` prefix from DataParallel) -> torchvision's ``raft_large``. A torchvision state dict is returned
    unchanged. ``norm3`` of the original residual blocks is the module also registered as ``downsample.1`` (same
    tensors, listed twice) and is dropped."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not any(k.startswith(("fnet.", "cnet.")) for k in state):
        return state
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if ".norm3." in k:
            continue
        if k.startswith(("fnet.", "cnet.")):
            enc, rest = k.split(".", 1)
            new = "feature_encoder." if enc == "fnet" else "context_encoder."
            rest = "." + rest
            if rest.startswith(".layer"):
                head, tail = rest.split(".", 3)[1:3], "." + rest.split(".", 3)[3]
                for a, b in _RAFT_BLOCK_RULES:
                    if tail.startswith(a):
                        tail = b + tail[len(a) :]
                        break
                new += f"{head[0]}.{head[1]}{tail}"
            else:
                for a, b in _RAFT_ENCODER_RULES:
                    if rest.startswith(a):
                        rest = b + rest[len(a) :]
                        break
                new += rest[1:]
            out[new] = v
            continue
        for a, b in _RAFT_UPDATE_RULES.items():
            if k.startswith(a):
                k = b + k[len(a) :]
                break
        out[k] = v
    return out


def pad_to_8(x: torch.Tensor) -> torch.Tensor:
    """RAFT's ``InputPadder`` ('sintel' mode): replicate-pad ``[B, C, H, W]`` to multiples of 8, split evenly."""
    h, w = x.shape[-2:]
    ph, pw = (((h // 8) + 1) * 8 - h) % 8, (((w // 8) + 1) * 8 - w) % 8
    return torch.nn.functional.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], mode="replicate")


def top5_mean_magnitude(flow: np.ndarray) -> float:
    """VBench's ``get_score``: mean of the largest 5 % of the flow magnitudes of a ``[2, H, W]`` flow."""
    rad = np.sqrt(np.square(flow[0]) + np.square(flow[1])).reshape(-1)
    cut = int(rad.size * 0.05)
    return float(np.mean(np.sort(rad)[::-1][:cut]))


def vbench_dynamic_stride(fps: float | None) -> int:
    """VBench's ``interval = max(1, round(fps / 8))`` (about 8 frames per second)."""
    return max(1, round(float(fps) / 8)) if fps else 1


@register_extractor
class VBenchRaftExtractor(Extractor):
    """VBench's ``dynamic_degree`` flow statistics (Vchitect/VBench 45e79ec, ``vbench/dynamic_degree.py``).

    From every decoded frame it keeps every ``max(1, round(fps/8))``-th, and for each consecutive pair of those runs
    RAFT large (torchvision's ``raft_large``, 20 flow updates) on the frames replicate-padded to multiples of 8,
    with inputs scaled to [-1, 1] (the original RAFT does ``2*x/255 - 1`` inside; torchvision expects it done).
    Per pair: ``max_rad`` = mean of the top 5 % flow magnitudes of the padded flow; every row also carries the
    video's thresholds ``thres = 6*min(H, W)/256`` and ``count_num = round(4*T_sampled/16)`` (columns
    :data:`DYNAMIC_COLUMNS`).

    Frames declared (``frame_windows``): one window per pair, its two rows; a streamed video holds about two
    frames. Fewer than two kept frames is a :class:`~aigve.errors.MetricInputError`.

    Weights: ``tv_raft_large_c_t_v1`` (torchvision's C_T_V1, ported from the original Chairs+Things RAFT, i.e. the
    ``raft-things.pth`` VBench uses); ``weights=PATH`` also takes the original ``raft-things.pth`` (keys converted).
    """

    name: ClassVar[str] = "vbench_raft"
    kind = "clip"
    version: ClassVar[str] = "2"  # 1: a scorer reading every frame; 2: an extractor declaring its pairs
    known_options: ClassVar[tuple[str, ...] | None] = ("weights",)
    columns: ClassVar[tuple[str, ...]] = DYNAMIC_COLUMNS
    min_side: ClassVar[int] = 128
    min_side_reason: ClassVar[str] = "RAFT's 1/8 feature map needs 4 correlation levels"
    weights_option: ClassVar[str | None] = "weights"

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 8, **options: Any
    ) -> None:
        super().__init__(device, batch_size, **options)
        self.model: torch.nn.Module | None = None

    def _load_network(self) -> tuple[torch.nn.Module, str]:
        from torchvision.models.optical_flow import raft_large

        from aigve.weights import load_into

        loaded = load_into(
            lambda: raft_large(weights=None, progress=False),
            RAFT_WEIGHTS,
            self.options.get("weights"),
            transform_state=lambda state, _m: raft_original_to_torchvision(state),
            what="a RAFT-large checkpoint (torchvision raft_large or the original raft-things.pth)",
            context="vbench_dynamic_degree needs RAFT-large weights",
        )
        return loaded.module, loaded.sha256

    @torch.inference_mode()
    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """RAFT flow ``[2, H8, W8]`` of two uint8 ``[H, W, 3]`` frames, padded as VBench pads them."""
        self.ensure_loaded()
        assert self.model is not None
        x = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float().to(self.device)
        x = 2 * (pad_to_8(x) / 255.0) - 1.0  # the original RAFT.forward normalisation
        flows = self.model(x[:1], x[1:], num_flow_updates=RAFT_ITERS)
        return flows[-1][0].float().cpu().numpy()

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        kept = range(0, num_frames, vbench_dynamic_stride(fps))
        if len(kept) < 2:
            raise MetricInputError(
                f"vbench_raft needs at least 2 frames after VBench's ~8 fps sampling (every "
                f"{kept.step}th of {num_frames}), got {len(kept)}"
            )
        return [(kept[i], kept[i + 1]) for i in range(len(kept) - 1)]

    def thresholds(self, frames: Any, fps: float | None) -> tuple[float, float]:
        """``(thres, count_num)`` of a clip (its whole length and frame size)."""
        kept = range(0, len(frames), vbench_dynamic_stride(fps))
        return 6.0 * (min(frames.shape[1:3]) / 256.0), float(round(4 * (len(kept) / 16.0)))

    def pair_score(self, flow: np.ndarray) -> float:
        return top5_mean_magnitude(flow)

    def extract_windows(self, frames: DeclaredFrames, fps: float | None, lo: int, hi: int) -> np.ndarray:
        """Rows ``[max_rad, thres, count_num]`` of pairs ``lo .. hi - 1``."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise UsageError(f"{self.name} needs uint8 [T,H,W,3] frames, got {frames.dtype} {frames.shape}")
        windows = self.frame_windows(len(frames), fps)
        assert windows is not None
        thres, count_num = self.thresholds(frames, fps)
        rows = [
            [self.pair_score(self.flow(frames[windows[i][0]], frames[windows[i][1]])), thres, count_num]
            for i in range(lo, hi)
        ]
        return np.asarray(rows, dtype=np.float64).reshape(-1, len(DYNAMIC_COLUMNS))

    def extract(self, frames: np.ndarray, fps: float | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` -> float64 ``[pairs, 3]`` (see the class docstring)."""
        return run_windows(self, checked_frames(self.name, frames, MetricInputError, min_frames=0), fps)


def top2_mean_magnitude(flow: np.ndarray) -> float:
    """``static_filter.py``'s ``get_score``: mean of the largest 2 % of the flow magnitudes."""
    rad = np.sqrt(np.square(flow[0]) + np.square(flow[1])).reshape(-1)
    cut = int(rad.size * 0.02)
    return float(np.mean(np.sort(rad)[::-1][:cut]))


@register_extractor
class VBenchRaftStaticExtractor(VBenchRaftExtractor):
    """VBench's static-video filter (``static_filter.py`` at the root of Vchitect/VBench 45e79ec), which its
    protocol runs before ``temporal_flickering``: RAFT on *every* consecutive frame pair plus (first, last) and
    (last, first); per pair the mean of the top 2 % flow magnitudes; thresholds ``thres = 3*min(H, W)/256`` and
    ``count_num = round(2*T/16)`` in every row. The same network and weights as ``vbench_raft``.

    Frames declared: one window per pair (its two rows, in the pair's order), the two last ones reading the first
    and the last frame; a streamed video holds the first frame and about two others."""

    name: ClassVar[str] = "vbench_raft_static"
    version: ClassVar[str] = "2"  # 1: a scorer reading every frame; 2: an extractor declaring its pairs

    def frame_windows(self, num_frames: int, fps: float | None) -> list[Sequence[int]] | None:
        if num_frames < 1:
            raise MetricInputError("vbench_raft_static: the video has no frames")
        last = num_frames - 1
        return [*((i, i + 1) for i in range(last)), (0, last), (last, 0)]

    def thresholds(self, frames: Any, fps: float | None) -> tuple[float, float]:
        return 3.0 * (min(frames.shape[1:3]) / 256.0), float(round(2 * (len(frames) / 16.0)))

    def pair_score(self, flow: np.ndarray) -> float:
        return top2_mean_magnitude(flow)
