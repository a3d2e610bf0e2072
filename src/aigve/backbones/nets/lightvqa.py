"""Light-VQA (Dong et al., ACM MM 2023): Swin-S semantic features, hand-crafted brightness and noise
features, and an MLP quality head.

Ported from ``final_fusion_model.py`` of wenzhouyidu/Light-VQA (code commit eecf49d1, repository HEAD
32b67408). The authors' ``SwinTransformer`` is the common re-implementation of Microsoft's Swin (window 7,
shifted windows, padding to multiples of the window, masks filled with -100); torchvision's
``SwinTransformer`` (v1) computes the same function, so the backbone here *is* torchvision's (built with
the authors' sizes, Swin-S: embed 96, depths 2-2-18-2, heads 3-6-12-24), and only the parameter names
differ. :func:`upstream_to_ours` maps the authors' state dict (``patch_embed.*``, ``layers.i.blocks.j.*``,
``layers.i.downsample.*``, ``mlp.fc1/fc2``) onto ours (``features.k.*``, ``mlp.0/3``) one to one (the
constant ``relative_position_index`` buffers are stored ``[49, 49]`` there and flattened here);
:func:`ours_to_upstream` is its inverse, so the authors' layout can be rebuilt key for key.

Forward, as the authors' ``SwinTransformer.forward(x, y)``, per key frame:

- ``x``: the frame, ``[B, 3, 512, 960]``, ImageNet-normalised RGB (the size is fixed by the hand-crafted
  features below);
- brightness (64): ``gray`` = channel mean of the normalised frame; max-pool with kernel and stride
  (16, 15) -> ``[B, 32, 64]``; mean over the 32 rows, divided by 10;
- noise (64): ``gray`` reshaped (row-major, not in spatial blocks) to ``[B, 32, 64, 240]``; unbiased
  variance over the 240; mean over the 32;
- semantic: LayerNorm + global average pool of the last stage (768) and, with the *same* final LayerNorm,
  of the third stage's output after its patch merging (768);
- ``y``: the temporal feature of that key frame's slot, ``[B, 2304 + 144]`` (SlowFast slow||fast and the
  brightness consistency, see :mod:`aigve.backbones.lightvqa`);
- head: ``cat(final, brightness, noise, stage3, y)`` (4112) -> Linear 1024 -> ReLU -> Linear 64 -> ReLU
  -> Linear 1 -> clamp to [0, 100].
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import nn

FRAME_H, FRAME_W = 512, 960  # fixed by the brightness/noise features (gray.view(-1, 512, 960))
BRIGHT_POOL = (16, 15)
NOISE_SHAPE = (32, 64, 240)
HAND_DIM = 64 + 64
SLOWFAST_DIM = 2048 + 256
BC_DIM = 144
TEMPORAL_DIM = SLOWFAST_DIM + BC_DIM  # 2448
FIRST_FC = 1024
SWIN_S = {"embed_dim": 96, "depths": (2, 2, 18, 2), "num_heads": (3, 6, 12, 24), "window_size": 7}


def _swin(embed_dim: int, depths: Sequence[int], num_heads: Sequence[int], window_size: int) -> nn.Module:
    from torchvision.models.swin_transformer import SwinTransformer

    return SwinTransformer(
        patch_size=[4, 4],
        embed_dim=embed_dim,
        depths=list(depths),
        num_heads=list(num_heads),
        window_size=[window_size, window_size],
        stochastic_depth_prob=0.0,  # training only; eval is the identity either way
    )


class LightVQANet(nn.Module):
    """The Light-VQA network. ``forward(x, y)`` -> ``[B, 1]`` scores in [0, 100]; :meth:`frame_features`
    and :meth:`head_forward` split it into the per-frame part and the head (same result)."""

    def __init__(
        self,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        first_fc: int = FIRST_FC,
    ) -> None:
        super().__init__()
        if len(depths) != 4:
            raise ValueError("Light-VQA reads the third of four Swin stages: depths needs 4 entries")
        tv = _swin(embed_dim, depths, num_heads, window_size)
        self.features: nn.Sequential = tv.features  # type: ignore[assignment]  # patch embed, stage1, merge, stage2, merge, stage3, merge, stage4
        self.norm: nn.Module = tv.norm  # type: ignore[assignment]
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.feature_dim = 2 * self.num_features + HAND_DIM
        self.head = nn.Linear(self.feature_dim + TEMPORAL_DIM, first_fc)
        self.head1 = nn.Linear(first_fc, 64)
        self.head2 = nn.Linear(64, 1)

    @staticmethod
    def hand_features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(brightness [B, 64], noise [B, 64])`` of normalised frames ``[B, 3, 512, 960]``."""
        gray = x.mean(dim=1, keepdim=True).view(-1, FRAME_H, FRAME_W)
        bright = nn.functional.max_pool2d(gray, BRIGHT_POOL).mean(dim=1) / 10
        noise = gray.reshape(-1, *NOISE_SHAPE).var(dim=-1).mean(dim=1)
        return bright, noise

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h).mean(dim=(1, 2))  # [B, H, W, C] -> [B, C]

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 512, 960]`` -> ``[B, 2C + 128]`` = final stage || brightness || noise || third stage."""
        if tuple(x.shape[-2:]) != (FRAME_H, FRAME_W):
            raise ValueError(f"Light-VQA frames must be {FRAME_H}x{FRAME_W}, got {tuple(x.shape[-2:])}")
        bright, noise = self.hand_features(x)
        h = x
        stage3 = h
        for i, block in enumerate(self.features):
            h = block(h)
            if i == 6:  # after the third stage's patch merging (the authors' layers[2] output)
                stage3 = h
        return torch.cat([self._pool(h), bright, noise, self._pool(stage3)], dim=1)

    def head_forward(self, feats: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``cat(frame features, temporal y)`` -> MLP -> clamp to [0, 100], ``[B, 1]``."""
        z = torch.relu(self.head(torch.cat([feats, y], dim=1)))
        z = torch.relu(self.head1(z))
        return torch.clamp(self.head2(z), min=0, max=100)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head_forward(self.frame_features(x), y)


# ------------------------------------------------------------------------------------------------
# the authors' parameter names <-> ours
# ------------------------------------------------------------------------------------------------
_MLP = {"fc1": "0", "fc2": "3"}
_MLP_BACK = {v: k for k, v in _MLP.items()}


def upstream_key_to_ours(key: str) -> str:
    """One key of the authors' state dict -> ours (``KeyError`` for a name outside their layout)."""
    if key.startswith("patch_embed.proj."):
        return "features.0.0." + key[len("patch_embed.proj.") :]
    if key.startswith("patch_embed.norm."):
        return "features.0.2." + key[len("patch_embed.norm.") :]
    m = re.fullmatch(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)", key)
    if m:
        stage, block, rest = int(m[1]), m[2], m[3]
        mm = re.fullmatch(r"mlp\.(fc1|fc2)\.(weight|bias)", rest)
        if mm:
            rest = f"mlp.{_MLP[mm[1]]}.{mm[2]}"
        return f"features.{2 * stage + 1}.{block}.{rest}"
    m = re.fullmatch(r"layers\.(\d+)\.downsample\.(.+)", key)
    if m:
        return f"features.{2 * int(m[1]) + 2}.{m[2]}"
    if key.split(".")[0] in ("norm", "head", "head1", "head2"):
        return key
    raise KeyError(f"not a Light-VQA parameter name: {key}")


def ours_key_to_upstream(key: str) -> str:
    """Inverse of :func:`upstream_key_to_ours`."""
    m = re.fullmatch(r"features\.(\d+)\.(.+)", key)
    if not m:
        return key
    k, rest = int(m[1]), m[2]
    if k == 0:
        sub, _, tail = rest.partition(".")
        return {"0": "patch_embed.proj.", "2": "patch_embed.norm."}[sub] + tail
    if k % 2 == 1:
        block, _, tail = rest.partition(".")
        mm = re.fullmatch(r"mlp\.(0|3)\.(weight|bias)", tail)
        if mm:
            tail = f"mlp.{_MLP_BACK[mm[1]]}.{mm[2]}"
        return f"layers.{(k - 1) // 2}.blocks.{block}.{tail}"
    return f"layers.{(k - 2) // 2}.downsample.{rest}"


def upstream_to_ours(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' state dict (optionally with ``nn.DataParallel``'s ``module.`` prefix) -> ours."""
    keys = list(state)
    if keys and all(k.startswith("module.") for k in keys):
        state = {k[len("module.") :]: v for k, v in state.items()}
    out = {}
    for k, v in state.items():
        if k.endswith("relative_position_index"):  # theirs [N, N], torchvision's flattened [N*N]
            v = v.reshape(-1)
        out[upstream_key_to_ours(k)] = v
    return out


def ours_to_upstream(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`upstream_to_ours` (the authors' key names and tensor shapes)."""
    out = {}
    for k, v in state.items():
        if k.endswith("relative_position_index"):
            n = int(round(v.numel() ** 0.5))
            v = v.reshape(n, n)
        out[ours_key_to_upstream(k)] = v
    return out
