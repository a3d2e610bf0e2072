"""mPLUG-Owl-Video, the network behind VideoPhy's auto-rater VideoCon-Physics (``videophysics/videocon_physics``).

Our implementation of the model that Hritikbansal/videophy vendors in
``videocon/training/pipeline_video/mplug_owl_video/modeling_mplug_owl.py`` (commit
01d366c979e4a82875852adbf427ccc036e7373a; class ``MplugOwlForConditionalGeneration``), with the parameter
names and shapes of its state dict, so the released checkpoint loads with ``strict=True`` (the only key
mapping: the LLaMA layers' ``rotary_emb.inv_freq`` buffers that transformers 4.28 saved are checked and
dropped, see :func:`map_checkpoint_keys`). Checked against the vendored class with the same random weights
(``tests/backbones/test_videophy.py`` keeps golden outputs of their code).

Three parts:

1. **Vision encoder** (``vision_model``): a ViT-L/14 at 224 px (1024 wide, 24 layers, 16 heads; no bias in
   the patch convolution, a class token, learned positions, a pre-LayerNorm) run on every frame, where each
   layer first adds a *local temporal* module when the clip has more than one frame: LayerNorm of the patch
   tokens, a 1x1x1 convolution down to half width, a depth-wise (3, 1, 1) convolution over time, QuickGELU,
   a 1x1x1 convolution back up. The class token passes the temporal module unchanged, so the residual add
   doubles it -- as in the authors' code. Then pre-norm self-attention (fused ``query_key_value`` with the
   heads' q, k, v interleaved per head) and a QuickGELU MLP; a final ``post_layernorm``. Every LayerNorm
   computes in float32 and casts back (``LayerNormFp32``).
2. **Visual abstractor** (``abstractor``): 64 learned query tokens plus 64 *temporal* query tokens (for
   clips of more than one frame) cross-attend, in 6 layers, to the concatenation of themselves
   (``norm1``) and all frames' tokens (``normk``); the residual starts from the normalised queries; a
   SwiGLU MLP with a LayerNorm before its output projection (hidden width ``2/3 * 4096`` rounded up to a
   multiple of 256 = 2816). The query outputs go through ``visual_fc`` and the temporal ones through
   ``temporal_visual_fc``; their sum, followed by the learned ``vit_eos`` token, gives the **65 video
   tokens** that replace the 65 ``<|video|>`` placeholders of the prompt.
3. **Language model** (``language_model``): LLaMA-7B as in transformers 4.28.1's ``LlamaForCausalLM``
   (RMSNorm, rotary positions 0..L-1, SiLU-gated MLP, no biases), run on the text embeddings with the video
   tokens spliced in. Attention is causal only: the authors pass an all-ones mask, padding included, so a
   position never sees what follows it and the logits at the read position do not depend on the padding.

Numerics follow the authors' code in every dtype: LayerNorms in float32, the vision attention softmax in
the activations' dtype, the abstractor's division by ``sqrt(head_dim)``, LLaMA's softmax in float32 cast
back, rotary cos/sin computed in float32 and cast to the activations' dtype. One deliberate difference: the
authors move the temporal depth-wise convolution to the CPU because bfloat16 ``conv_depthwise3d`` failed
on their GPU; here it runs on the model's device in float32 and is cast back (the same arithmetic as a
float32-accumulating bfloat16 kernel).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: the ids the authors' dataset puts in place of the media tags (``-(index + 1)`` of ``['<image>', '<|video|>']``)
IMAGE_TOKEN = -1
VIDEO_TOKEN = -2


@dataclass(frozen=True)
class VisionConfig:
    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int = 224
    patch_size: int = 14
    layer_norm_eps: float = 1e-6


@dataclass(frozen=True)
class AbstractorConfig:
    hidden_size: int = 1024
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    layer_norm_eps: float = 1e-6
    encoder_hidden_size: int = 1024

    @property
    def mlp_hidden(self) -> int:
        """The SwiGLU width: 2816 as given, else ``2/3`` of the size rounded up to a multiple of 256."""
        if self.intermediate_size == 2816:
            return 2816
        hidden = int(2 * self.intermediate_size / 3)
        return 256 * ((hidden + 255) // 256)


@dataclass(frozen=True)
class TextConfig:
    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0


@dataclass(frozen=True)
class MplugOwlVideoConfig:
    """The released checkpoint's configuration by default (``config.json`` of ``MAGAer13/mplug-owl-llama-7b-video``
    and ``videophysics/videocon_physics``: ViT-L/14 at 224, a 6-layer abstractor with 64 queries, LLaMA-7B)."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    abstractor: AbstractorConfig = field(default_factory=AbstractorConfig)
    text: TextConfig = field(default_factory=TextConfig)
    num_query_tokens: int = 64

    @property
    def video_tokens(self) -> int:
        """Tokens one video takes in the language model: the queries plus ``vit_eos``."""
        return self.num_query_tokens + 1

    @property
    def patches_per_frame(self) -> int:
        return (self.vision.image_size // self.vision.patch_size) ** 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MplugOwlVideoConfig:
        return cls(
            vision=VisionConfig(**d.get("vision", {})),
            abstractor=AbstractorConfig(**d.get("abstractor", {})),
            text=TextConfig(**d.get("text", {})),
            num_query_tokens=int(d.get("num_query_tokens", 64)),
        )


# ------------------------------------------------------------------------------------------ small pieces
class LayerNormFp32(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back to the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).type_as(x)


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


# ------------------------------------------------------------------------------------------ vision encoder
class VisionEmbeddings(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.hidden_size))
        self.patch_embed = nn.Conv2d(3, cfg.hidden_size, cfg.patch_size, stride=cfg.patch_size, bias=False)
        n = (cfg.image_size // cfg.patch_size) ** 2
        self.position_embedding = nn.Parameter(torch.zeros(1, n + 1, cfg.hidden_size))
        self.pre_layernorm = LayerNormFp32(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, C, T, H, W]`` -> ``[B, T, 1 + patches, D]``."""
        b, c, t, h, w = pixels.shape
        x = self.patch_embed(pixels.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        x = x.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(b * t, 1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1)
        x = x + self.position_embedding[:, : x.size(1)].to(x.dtype)
        x = self.pre_layernorm(x)
        return x.reshape(b, t, x.size(1), x.size(2))


class LocalTemporal(nn.Module):
    """The per-layer temporal adapter of the video variant (see the module docstring)."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        d, half = cfg.hidden_size, cfg.hidden_size // 2
        self.grid = cfg.image_size // cfg.patch_size
        self.ln = LayerNormFp32(d)  # default eps (1e-5), as in the authors' module
        self.down_proj = nn.Conv3d(d, half, kernel_size=1)
        self.conv = nn.Conv3d(half, half, kernel_size=(3, 1, 1), padding=(1, 0, 0), groups=half)
        self.up_proj = nn.Conv3d(half, d, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, 1 + H*W, D]`` -> same shape: the class token itself, then the adapted patch tokens."""
        b, t, _, d = x.shape
        cls, patches = x[:, :, :1], x[:, :, 1:]
        y = self.ln(patches)
        y = y.reshape(b, t, self.grid, self.grid, d).permute(0, 4, 1, 2, 3)  # b c t h w
        y = self.down_proj(y)
        y = F.conv3d(
            y.float(),
            self.conv.weight.float(),
            self.conv.bias.float() if self.conv.bias is not None else None,
            padding=(1, 0, 0),
            groups=self.conv.groups,
        ).to(y.dtype)
        y = quick_gelu(y)
        y = self.up_proj(y)
        y = y.permute(0, 2, 3, 4, 1).reshape(b, t, self.grid * self.grid, d)
        return torch.cat([cls, y], dim=2)


class VisionAttention(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.scale = self.head_dim**-0.5
        self.query_key_value = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, s, d = x.shape
        qkv = self.query_key_value(x).reshape(n, s, self.heads, 3, self.head_dim).permute(3, 0, 2, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        probs = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(n, s, d)
        return self.dense(ctx)


class VisionMLP(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(quick_gelu(self.fc1(x)))


class VisionLayer(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.temporal = LocalTemporal(cfg)
        self.self_attn = VisionAttention(cfg)
        self.input_layernorm = LayerNormFp32(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = VisionMLP(cfg)
        self.post_attention_layernorm = LayerNormFp32(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, s, d = x.shape
        if t > 1:
            x = x + self.temporal(x)
        h = x.reshape(b * t, s, d)
        h = h + self.self_attn(self.input_layernorm(h))
        h = h + self.mlp(self.post_attention_layernorm(h))
        return h.reshape(b, t, s, d)


class VisionEncoder(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([VisionLayer(cfg) for _ in range(cfg.num_hidden_layers)])


class VisionModel(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.embeddings = VisionEmbeddings(cfg)
        self.encoder = VisionEncoder(cfg)
        self.post_layernorm = LayerNormFp32(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, C, T, H, W]`` -> last hidden state ``[B, T, 1 + patches, D]`` (after ``post_layernorm``)."""
        x = self.embeddings(pixels)
        for layer in self.encoder.layers:
            x = layer(x)
        return self.post_layernorm(x)


# ------------------------------------------------------------------------------------------ abstractor
class AbstractorMLP(nn.Module):
    def __init__(self, cfg: AbstractorConfig) -> None:
        super().__init__()
        hidden = cfg.mlp_hidden
        self.w1 = nn.Linear(cfg.hidden_size, hidden)
        self.w2 = nn.Linear(hidden, cfg.hidden_size)
        self.w3 = nn.Linear(cfg.hidden_size, hidden)
        self.ffn_ln = LayerNormFp32(hidden, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(self.ffn_ln(F.silu(self.w1(x)) * self.w3(x)))


class AbstractorMultiHeadAttention(nn.Module):
    def __init__(self, cfg: AbstractorConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.encoder_hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.encoder_hidden_size, cfg.hidden_size)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.size(0), x.size(1), self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(queries)), self._split(self.key(keys)), self._split(self.value(keys))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3)
        return ctx.reshape(ctx.size(0), ctx.size(1), self.heads * self.head_dim)


class AbstractorCrossOutput(nn.Module):
    def __init__(self, cfg: AbstractorConfig) -> None:
        super().__init__()
        self.out_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm2 = LayerNormFp32(cfg.hidden_size)  # default eps (1e-5)
        self.mlp = AbstractorMLP(cfg)

    def forward(self, ctx: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        x = residual + self.out_proj(ctx)
        return x + self.mlp(self.norm2(x))


class AbstractorAttention(nn.Module):
    def __init__(self, cfg: AbstractorConfig) -> None:
        super().__init__()
        self.attention = AbstractorMultiHeadAttention(cfg)
        self.output = AbstractorCrossOutput(cfg)
        self.norm1 = LayerNormFp32(cfg.hidden_size)  # default eps (1e-5)
        self.normk = LayerNormFp32(cfg.hidden_size)

    def forward(self, queries: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        q = self.norm1(queries)
        keys = torch.cat([q, self.normk(frames)], dim=1)
        return self.output(self.attention(q, keys), q)


class AbstractorLayer(nn.Module):
    def __init__(self, cfg: AbstractorConfig) -> None:
        super().__init__()
        self.crossattention = AbstractorAttention(cfg)

    def forward(self, queries: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.crossattention(queries, frames)


class AbstractorEncoder(nn.Module):
    def __init__(self, cfg: AbstractorConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([AbstractorLayer(cfg) for _ in range(cfg.num_hidden_layers)])


class VisualAbstractor(nn.Module):
    def __init__(self, cfg: AbstractorConfig, language_hidden: int) -> None:
        super().__init__()
        self.encoder = AbstractorEncoder(cfg)
        self.visual_fc = nn.Linear(cfg.hidden_size, language_hidden)
        self.temporal_visual_fc = nn.Linear(cfg.hidden_size, language_hidden)
        self.vit_eos = nn.Parameter(torch.zeros(1, 1, language_hidden))

    def forward(
        self, queries: torch.Tensor, temporal_queries: torch.Tensor | None, frames: torch.Tensor
    ) -> torch.Tensor:
        """``frames`` ``[B, T, N, D]`` -> video tokens ``[B, queries + 1, language_hidden]``."""
        b, t, n, d = frames.shape
        with_temporal = t > 1 and temporal_queries is not None
        x = torch.cat([queries, temporal_queries], dim=1) if with_temporal else queries  # type: ignore[list-item]
        flat = frames.reshape(b, t * n, d)
        for layer in self.encoder.layers:
            x = layer(x, flat)
        nq = queries.size(1)
        out = self.visual_fc(x[:, :nq])
        if with_temporal:
            out = out + self.temporal_visual_fc(x[:, nq:])
        return torch.cat([out, self.vit_eos.repeat(b, 1, 1)], dim=1)


# ------------------------------------------------------------------------------------------ LLaMA
class RMSNorm(nn.Module):
    """LLaMA's RMSNorm as in transformers 4.28.1 (variance in float32; cast to a half weight's dtype)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return self.weight * x


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary_cos_sin(
    length: int, head_dim: int, theta: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 ``cos, sin`` ``[length, head_dim]`` for positions ``0..length-1`` (transformers 4.28.1)."""
    inv_freq = rotary_inv_freq(head_dim, theta, device)
    t = torch.arange(length, device=device, dtype=torch.float32)
    freqs = torch.einsum("i,j->ij", t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotary_inv_freq(head_dim: int, theta: float, device: torch.device | str = "cpu") -> torch.Tensor:
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))


class LlamaAttention(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        d = cfg.hidden_size
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        b, s, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        c, sn = cos.to(x.dtype), sin.to(x.dtype)
        q = q * c + _rotate_half(q) * sn
        k = k * c + _rotate_half(k) * sn
        w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        w = w + mask.to(w.dtype)
        w = torch.max(w, torch.tensor(torch.finfo(w.dtype).min, device=w.device))
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(w, v).transpose(1, 2).reshape(b, s, d)
        return self.o_proj(out)


class LlamaMLP(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([LlamaLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        """``[B, L, D]`` input embeddings -> final hidden states (causal attention, positions 0..L-1)."""
        b, length, _ = embeds.shape
        head_dim = self.cfg.hidden_size // self.cfg.num_attention_heads
        cos, sin = rotary_cos_sin(length, head_dim, self.cfg.rope_theta, embeds.device)
        mask = torch.full((length, length), torch.finfo(embeds.dtype).min, device=embeds.device)
        mask = torch.triu(mask, diagonal=1)[None, None]
        x = embeds
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)


# ------------------------------------------------------------------------------------------ the whole model
class MplugOwlVideo(nn.Module):
    """``MplugOwlForConditionalGeneration`` of the video variant, inference only (see the module docstring)."""

    def __init__(self, cfg: MplugOwlVideoConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or MplugOwlVideoConfig()
        self.cfg = cfg
        self.vision_model = VisionModel(cfg.vision)
        self.query_tokens = nn.Parameter(torch.zeros(1, cfg.num_query_tokens, cfg.abstractor.hidden_size))
        self.temporal_query_tokens = nn.Parameter(
            torch.zeros(1, cfg.num_query_tokens, cfg.abstractor.hidden_size)
        )
        self.abstractor = VisualAbstractor(cfg.abstractor, cfg.text.hidden_size)
        self.language_model = LlamaForCausalLM(cfg.text)

    @property
    def dtype(self) -> torch.dtype:
        return self.query_tokens.dtype

    def video_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised clips ``[B, 3, T, H, W]`` -> the tokens each video takes in the prompt ``[B, 65, D_text]``."""
        frames = self.vision_model(pixels.to(self.dtype))
        b = frames.size(0)
        return self.abstractor(
            self.query_tokens.expand(b, -1, -1), self.temporal_query_tokens.expand(b, -1, -1), frames
        )

    def embed_prompt(self, ids: list[int], video: torch.Tensor) -> torch.Tensor:
        """One prompt's input embeddings ``[L, D]``: text tokens embedded, every run of ``<|video|>``
        placeholders replaced by the video's tokens from its first position on (the authors' splice; a run
        is found on all but the last id, as they do)."""
        device = video.device
        ids_t = torch.tensor([1 if i < 0 else i for i in ids], dtype=torch.long, device=device)
        emb = self.language_model.model.embed_tokens(ids_t)
        starts = [p for p in range(len(ids) - 1) if ids[p] < 0 and (p == 0 or ids[p] != ids[p - 1])]
        parts: list[torch.Tensor] = []
        pos = 0
        for p in starts:
            if ids[p] == IMAGE_TOKEN:
                raise ValueError(
                    "the prompt holds an <image> placeholder; the video model has no image input"
                )
            if p > pos:
                parts.append(emb[pos:p])
            parts.append(video)
            pos = p + video.size(0)
        if pos < emb.size(0):
            parts.append(emb[pos:])
        return torch.cat(parts, dim=0)

    def read_logits(self, prompts: list[list[int]], videos: torch.Tensor, owner: list[int]) -> torch.Tensor:
        """Next-token logits ``[N, vocab]`` at the last position of each prompt.

        ``prompts[i]`` are token ids (``-2`` for video placeholders) cut after the read position;
        ``owner[i]`` is the row of ``videos`` (``[V, 65, D]`` from :meth:`video_tokens`) it shows. The
        prompts are right-padded to one length; with causal attention the padding never reaches a read
        position."""
        embeds = [self.embed_prompt(p, videos[o])[: len(p)] for p, o in zip(prompts, owner, strict=True)]
        longest = max(e.size(0) for e in embeds)
        batch = torch.zeros(
            len(embeds), longest, embeds[0].size(1), dtype=embeds[0].dtype, device=videos.device
        )
        for i, e in enumerate(embeds):
            batch[i, : e.size(0)] = e
        hidden = self.language_model.model(batch)
        last = torch.tensor([e.size(0) - 1 for e in embeds], device=videos.device)
        rows = hidden[torch.arange(len(embeds), device=videos.device), last]
        return self.language_model.lm_head(rows)


def map_checkpoint_keys(state: dict[str, torch.Tensor], model: MplugOwlVideo) -> dict[str, torch.Tensor]:
    """The authors' state dict -> ours: drop the ``rotary_emb.inv_freq`` buffers transformers 4.28 stored per
    LLaMA layer after checking they are the frequencies we compute (within the file's precision).

    Everything else must match key for key (the strict load says which key is missing or unexpected)."""
    out: dict[str, torch.Tensor] = {}
    t = model.cfg.text
    expected = rotary_inv_freq(t.hidden_size // t.num_attention_heads, t.rope_theta)
    for key, value in state.items():
        if key.startswith("language_model.model.layers.") and key.endswith(".self_attn.rotary_emb.inv_freq"):
            got = value.detach().to("cpu", torch.float32)
            tol = 1e-2 if value.dtype in (torch.bfloat16, torch.float16) else 1e-6
            if got.shape != expected.shape or not torch.allclose(got, expected, rtol=tol, atol=0.0):
                raise RuntimeError(f"{key}: rotary frequencies differ from LLaMA's (base {t.rope_theta})")
            continue
        out[key] = value
    return out
