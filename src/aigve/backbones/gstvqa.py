"""``gstvqa``: the GSTVQA temporal network (Chen et al., IEEE TCSVT 2021) as a scorer on VGG16 features.

The network (:class:`aigve.backbones.nets.gstvqa.GSTVQANet`) reads the ``vgg16_meanstd`` extractor's
five-stage mean ‖ std rows of the sampled frames (cached by the engine) and gives one number per video, on
its training label scale ``MOS / max(MOS)``; the ``gstvqa`` metric scales it. Sequence preparation follows
the authors' ``cross_test.py`` (commit 8463c9c3): ``mean_var`` = population std over all rows of the mean
half; the first ``max_len`` rows go through the network, padded to the attention convolutions' 29 rows by
``pad`` when shorter (``repeat_last``, ``stretch`` or ``none``; see :mod:`aigve.metrics.vqa`). Videos are
scored one at a time, so a score never depends on which videos share a batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from aigve.backbones.base import Scorer, ScorerInput
from aigve.backbones.nets.gstvqa import (
    CHECKPOINT_SCALES,
    DEFAULT_CHECKPOINT,
    FEATURE_DIM,
    INPUT_DIM,
    MAX_LEN,
    MIN_FRAMES,
    GSTVQANet,
)
from aigve.backbones.registry import register_extractor
from aigve.device import resolve_device
from aigve.errors import MetricInputError, UsageError
from aigve.weights import load_into

log = logging.getLogger(__name__)

GSTVQA_WEIGHTS = "gstvqa_konvid"
VGG_WEIGHTS = "tv_vgg16"
EXTRACTOR = "vgg16_meanstd"
PadMode = Literal["repeat_last", "stretch", "none"]
PAD_MODES: tuple[str, ...] = ("repeat_last", "stretch", "none")
CHECKPOINTS: tuple[str, ...] = tuple(CHECKPOINT_SCALES)


def checkpoint_weights_name(checkpoint: str) -> str:
    """Weights-registry name of a released checkpoint (``konvid`` -> ``gstvqa_konvid``); ``UsageError`` else."""
    if checkpoint not in CHECKPOINT_SCALES:
        raise UsageError(f"gstvqa: checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    return f"gstvqa_{checkpoint}"


def prepare_sequence(
    features: np.ndarray, max_len: int = MAX_LEN, pad: PadMode = "repeat_last"
) -> tuple[np.ndarray, np.ndarray]:
    """``[T, 2944]`` frame features -> (network input ``[L, 2944]`` float32, ``mean_var`` ``[1472]`` float32).

    ``mean_var`` = population std over all ``T`` rows of the mean half (the authors' ``np.std(means, 0)``);
    the input keeps the first ``max_len`` rows, then is padded to 29 rows by ``pad`` when shorter.
    """
    f = np.asarray(features)
    if f.ndim != 2 or f.shape[1] != INPUT_DIM:
        raise ValueError(f"GSTVQA needs [T, {INPUT_DIM}] features (vgg16_meanstd), got shape {f.shape}")
    if f.shape[0] == 0:
        raise ValueError("GSTVQA needs at least one frame")
    if pad not in PAD_MODES:
        raise UsageError(f"gstvqa: pad must be one of {PAD_MODES}, got {pad!r}")
    if max_len < MIN_FRAMES:
        raise UsageError(f"gstvqa: max_len must be >= {MIN_FRAMES}, got {max_len}")
    mean_var = f[:, :FEATURE_DIM].astype(np.float64).std(axis=0).astype(np.float32)
    seq = f[:max_len].astype(np.float32)
    n = seq.shape[0]
    if n < MIN_FRAMES:
        if pad == "none":
            raise ValueError(f"GSTVQA needs at least {MIN_FRAMES} frames, got {n}")
        if pad == "repeat_last":
            rows = list(range(n)) + [n - 1] * (MIN_FRAMES - n)
        else:  # stretch
            rows = [int(i * n // MIN_FRAMES) for i in range(MIN_FRAMES)]
        seq = seq[rows]
    return np.ascontiguousarray(seq), mean_var


def gstvqa_raw_scores(
    net: GSTVQANet,
    sequences: Sequence[np.ndarray],
    *,
    max_len: int = MAX_LEN,
    pad: PadMode = "repeat_last",
    batch_size: int = 8,
    device: str | torch.device | None = "cpu",
) -> np.ndarray:
    """Network outputs (label scale ``MOS / max(MOS)``) for several videos' ``[T, 2944]`` features.

    Videos are zero-padded to a common length inside a batch; the GRU is causal, so the result does not
    depend on ``batch_size`` (up to float rounding).
    """
    dev = resolve_device(device)
    prepared = [prepare_sequence(s, max_len, pad) for s in sequences]
    out: list[np.ndarray] = []
    net = net.to(dev).eval()
    with torch.inference_mode():
        for i in range(0, len(prepared), max(1, int(batch_size))):
            group = prepared[i : i + max(1, int(batch_size))]
            longest = max(seq.shape[0] for seq, _ in group)
            x = torch.zeros(len(group), longest, INPUT_DIM, dtype=torch.float32)
            for j, (seq, _) in enumerate(group):
                x[j, : seq.shape[0]] = torch.from_numpy(seq)
            lengths = torch.tensor([seq.shape[0] for seq, _ in group])
            mv = torch.from_numpy(np.stack([m for _, m in group]))
            out.append(net(x.to(dev), lengths, mv.to(dev)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def load_gstvqa_net(
    explicit_path: str | os.PathLike[str] | None = None, weights_name: str = GSTVQA_WEIGHTS
) -> tuple[GSTVQANet, str, str]:
    """Resolve, hash-check and strictly load a GSTVQA checkpoint (through :func:`aigve.weights.load_into`).
    Returns ``(net, sha256, path)``.

    Raises ``WeightsError`` naming the file and where to put it when it is missing or not a GSTVQA state dict.
    """
    loaded = load_into(
        GSTVQANet,
        weights_name,
        explicit_path,
        context="gstvqa needs the GSTVQA checkpoint",
        what="a GSTVQA checkpoint",
    )
    return loaded.module.eval(), loaded.sha256, str(loaded.path)


@register_extractor
class GSTVQAScorer(Scorer):
    """GSTVQA network output ``[1, 1]`` (label scale) per video from its ``vgg16_meanstd`` features.

    Options: ``checkpoint`` (released checkpoint ``konvid`` | ``cvd14`` | ``liveq`` | ``livev``, registry
    ``gstvqa_<checkpoint>``; absent = ``konvid``, so default cache keys stay as they were), ``weights``
    (explicit path of that checkpoint), ``max_len``, ``pad``;
    ``vgg_weights``, ``tap``, ``resize`` are the ``vgg16_meanstd`` extractor's options (it reads that output).
    """

    name: ClassVar[str] = "gstvqa"
    version: ClassVar[str] = "1"
    known_options: ClassVar[tuple[str, ...] | None] = (
        "checkpoint",
        "weights",
        "max_len",
        "pad",
        "vgg_weights",
        "tap",
        "resize",
    )
    extra: ClassVar[str | None] = "nnvqa"
    input: ClassVar[Literal["frames", "features"]] = "features"
    columns: ClassVar[tuple[str, ...]] = ("raw",)
    _UPSTREAM_OPTIONS = {"vgg_weights": "weights", "tap": "tap", "resize": "resize"}
    weights_option: ClassVar[str | None] = "weights"

    def __init__(
        self, device: str | torch.device | None = "cpu", batch_size: int = 32, **options: Any
    ) -> None:
        options.setdefault("max_len", MAX_LEN)
        options.setdefault("pad", "repeat_last")
        if options["pad"] not in PAD_MODES:
            raise UsageError(f"gstvqa: pad must be one of {PAD_MODES}, got {options['pad']!r}")
        if int(options["max_len"]) < MIN_FRAMES:
            raise UsageError(f"gstvqa: max_len must be >= {MIN_FRAMES}, got {options['max_len']}")
        self.weights_name = checkpoint_weights_name(options.get("checkpoint", DEFAULT_CHECKPOINT))
        super().__init__(device, batch_size, **options)
        self._net: GSTVQANet | None = None
        self._sha: str | None = None

    def upstream(self) -> tuple[str, dict[str, Any]]:
        return EXTRACTOR, {
            key: self.options[opt] for opt, key in self._UPSTREAM_OPTIONS.items() if opt in self.options
        }

    def set_network(self, net: GSTVQANet, sha256: str) -> None:
        """Use an already built network (tests, or a checkpoint loaded by the caller)."""
        self._net, self._sha = net.eval().to(self.device), sha256
        self._loaded = True

    def load(self) -> None:
        if self._net is None:
            net, sha, _ = load_gstvqa_net(self.options.get("weights"), self.weights_name)
            self.set_network(net, sha)
        self._loaded = True

    def weights_sha256(self) -> str | None:
        self.ensure_loaded()
        return self._sha

    def score(self, items: Sequence[ScorerInput]) -> list[np.ndarray]:
        self.ensure_loaded()
        assert self._net is not None
        pad, max_len = self.options["pad"], int(self.options["max_len"])
        out = []
        for it in items:
            f = np.asarray(it.data)
            n = f.shape[0] if f.ndim == 2 else 0
            if n < MIN_FRAMES and pad == "none":
                raise MetricInputError(
                    f"gstvqa needs at least {MIN_FRAMES} frames, got {n} — use "
                    f"--metric-option gstvqa.pad=repeat_last (or stretch), or a longer video"
                )
            raw = gstvqa_raw_scores(self._net, [f], max_len=max_len, pad=pad, device=self.device)
            out.append(np.asarray(raw, dtype=np.float64).reshape(1, 1))
        return out
