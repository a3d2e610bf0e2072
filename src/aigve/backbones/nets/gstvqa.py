"""GSTVQA's temporal quality model (Chen et al., "Learning Generalized Spatial-Temporal Deep Feature
Representation for No-Reference Video Quality Assessment", IEEE TCSVT 2021).

Our implementation of the model defined in Baoliang93/GSTVQA (commit 8463c9c3e5720349606d8efae7a5aa274bf69e7c,
``TCSVT_Release/GVQA_Release/GVQA_Cross/cross_test.py`` and ``main.py``: the same network), with the
parameter names and shapes of the released checkpoints (``training-all-data-GSTVQA-<set>-EXP0-best``), so
they load with ``strict=True``. Checked against the authors' class with the same random weights
(tests/backbones/test_gstvqa.py keeps golden outputs of their code).

Input per frame: VGG16 multi-stage features, ``mean ‖ std`` = 1472 + 1472 = 2944 values
(:mod:`aigve.backbones.vgg16_meanstd`). The network:

1. *channel attention* on the std half: ``std * sigmoid(MLP(mean_var))``, where ``mean_var`` is the
   per-channel standard deviation over time (population std) of the mean half (1472 -> 320 -> 1472 MLP);
   the mean half itself is not used otherwise;
2. ``ann.fc0``: linear 1472 -> 256 (``ann.fc`` exists in the checkpoint but is unused with one ANN layer);
3. a one-layer GRU 256 -> 32 over the frames (zero initial state);
4. temporal attention: ``tanh(conv1d_15(relu(conv1d_15(h))))`` gives one weight per frame for the
   ``T - 28`` frames whose two 15-tap windows fit, which weight the GRU states ``h[14 : T-14]``;
5. pyramid pooling: the mean of the weighted states, then for ``k = 2, 4, ..., 64`` the adaptive average
   pool of the weighted states to ``k`` bins divided by the same pool of the weights (127 rows);
6. ``q``: linear 32 -> 1 per row, ``q_reg2``: linear 127 -> 1 -> the score.

``q_reg`` / ``q_mean`` (a Gaussian frame-score branch used only as a training loss) are kept as parameters
for strict loading; they do not change the score.

The score is trained to predict ``MOS / max(MOS)`` of the training set (KoNViD-1k: MOS on the 1-5 ACR scale,
max 4.64, so the score is ~0.26-1.0 on that set and ``4.64 * score`` is the predicted MOS).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 1472  # mean (or std) part of one frame's VGG16 features: 64 + 128 + 256 + 512 + 512
INPUT_DIM = 2 * FEATURE_DIM  # mean ‖ std
REDUCED_DIM = 256
HIDDEN_DIM = 32
ATTENTION_DIM = 320
ATT_FRAMES = 15  # kernel of each temporal-attention conv
PYRAMID_LEVELS = 7  # rows: 1 + 2 + 4 + ... + 64 = 2**7 - 1
MIN_FRAMES = 2 * (ATT_FRAMES - 1) + 1  # 29: shortest sequence the attention convs accept
MAX_LEN = 500  # the authors' test script keeps the first 500 frames

#: label scale of each released checkpoint: ``max(MOS)`` of its training set; the network predicts
#: MOS / scale and the authors' ``cross_test.py`` (commit above) multiplies the output back by the training
#: set's largest MOS: KoNViD-1k 4.64, CVD2014 93.38, LIVE-Qualcomm 73.643, LIVE-VQC 94.287.
KONVID_SCALE = 4.64
#: checkpoint name (``training-all-data-GSTVQA-<name>-EXP0-best``, weights registry ``gstvqa_<name>``) ->
#: MOS scale (source: the authors' ``cross_test.py``, see above)
CHECKPOINT_SCALES: dict[str, float] = {
    "konvid": KONVID_SCALE,
    "cvd14": 93.38,
    "liveq": 73.643,
    "livev": 94.287,
}
#: nominal range of the training set's MOS scale: KoNViD-1k is a 1-5 ACR scale; CVD2014, LIVE-Qualcomm and
#: LIVE-VQC MOS are on 0-100 scales (the regression itself is unbounded)
CHECKPOINT_RANGES: dict[str, tuple[float, float]] = {
    "konvid": (1.0, 5.0),
    "cvd14": (0.0, 100.0),
    "liveq": (0.0, 100.0),
    "livev": (0.0, 100.0),
}
#: training set of each checkpoint, for messages and provenance
CHECKPOINT_DATASETS: dict[str, str] = {
    "konvid": "KoNViD-1k",
    "cvd14": "CVD2014",
    "liveq": "LIVE-Qualcomm",
    "livev": "LIVE-VQC",
}
DEFAULT_CHECKPOINT = "konvid"


class _ANN(nn.Module):
    """Linear reduction 1472 -> 256 (``fc`` is present in the checkpoint but unused: one layer)."""

    def __init__(self, input_size: int = FEATURE_DIM, reduced_size: int = REDUCED_DIM) -> None:
        super().__init__()
        self.fc0 = nn.Linear(input_size, reduced_size)
        self.fc = nn.Linear(reduced_size, reduced_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc0(x)


class _ChannelAttention(nn.Module):
    """Re-weights the std features with a sigmoid gate computed from the temporal spread of the means."""

    def __init__(self, dim: int = FEATURE_DIM, reduction: int = ATTENTION_DIM) -> None:
        super().__init__()
        self.bottleneck = nn.Sequential(nn.Linear(dim, reduction), nn.ReLU(), nn.Linear(reduction, dim))

    def forward(self, std_feats: torch.Tensor, mean_var: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.bottleneck(mean_var))  # [B, 1472]
        return std_feats * gate.unsqueeze(1)


def pyramid_pool(weighted: torch.Tensor, weights: torch.Tensor, levels: int = PYRAMID_LEVELS) -> torch.Tensor:
    """GSTVQA's pyramid temporal pooling.

    ``weighted``: ``[N, C]`` attention-weighted states; ``weights``: ``[N]`` the attention weights.
    Returns ``[2**levels - 1, C]``: the plain mean of ``weighted``, then for ``k = 2, 4, ..., 2**(levels-1)``
    the ``k``-bin adaptive average of ``weighted`` divided by the ``k``-bin adaptive average of ``weights``.
    """
    rows = [weighted.mean(dim=0, keepdim=True)]
    seq = weighted.t().unsqueeze(0)  # [1, C, N]
    w = weights.reshape(1, 1, -1)
    for j in range(1, levels):
        bins = 2**j
        num = F.adaptive_avg_pool1d(seq, bins)[0].t()  # [bins, C]
        den = F.adaptive_avg_pool1d(w, bins)[0].t()  # [bins, 1]
        rows.append(num / den)
    return torch.cat(rows, dim=0)


class GSTVQANet(nn.Module):
    """The GSTVQA network; parameter names/shapes equal the released checkpoints'."""

    def __init__(self) -> None:
        super().__init__()
        self.ann = _ANN()
        self.rnn = nn.GRU(REDUCED_DIM, HIDDEN_DIM, batch_first=True)
        self.q = nn.Linear(HIDDEN_DIM, 1)
        self.CA = _ChannelAttention()
        self.q_reg = nn.Parameter(torch.ones(HIDDEN_DIM))
        self.q_mean = nn.Parameter(torch.zeros(HIDDEN_DIM))
        self.q_reg2 = nn.Linear(2**PYRAMID_LEVELS - 1, 1)
        self.q_att = nn.Sequential(
            nn.Conv1d(HIDDEN_DIM, 1, ATT_FRAMES), nn.ReLU(), nn.Conv1d(1, 1, ATT_FRAMES)
        )

    def forward(self, features: torch.Tensor, lengths: torch.Tensor, mean_var: torch.Tensor) -> torch.Tensor:
        """``features`` ``[B, L, 2944]`` (rows past each length are ignored), ``lengths`` ``[B]`` integer
        (each in ``[MIN_FRAMES, L]``), ``mean_var`` ``[B, 1472]`` -> scores ``[B]``."""
        if features.ndim != 3 or features.shape[-1] != INPUT_DIM:
            raise ValueError(f"GSTVQA expects [B, L, {INPUT_DIM}] features, got {tuple(features.shape)}")
        lens = [int(v) for v in lengths.reshape(-1).tolist()]
        if len(lens) != features.shape[0]:
            raise ValueError("one length per sequence is needed")
        if min(lens) < MIN_FRAMES or max(lens) > features.shape[1]:
            raise ValueError(f"lengths must lie in [{MIN_FRAMES}, {features.shape[1]}], got {lens}")
        x = self.CA(features[..., FEATURE_DIM:], mean_var)
        x = self.ann(x)
        h0 = torch.zeros(1, x.shape[0], HIDDEN_DIM, dtype=x.dtype, device=x.device)
        states, _ = self.rnn(x, h0)  # causal: padding after a sequence does not change its states
        pooled = []
        cut = ATT_FRAMES - 1
        for i, n in enumerate(lens):
            h = states[i, :n]  # [n, 32]
            att = torch.tanh(self.q_att(h.t().unsqueeze(0)))[0, 0]  # [n - 28]
            weighted = att.unsqueeze(1) * h[cut : n - cut]
            pooled.append(self.q(pyramid_pool(weighted, att)).reshape(-1))  # [127]
        return self.q_reg2(torch.stack(pooled)).reshape(-1)
