"""Inception Score (Salimans et al. 2016) from class logits or probabilities.

    IS = exp( E_x KL(p(y|x) || p(y)) ),   p(y) = mean of p(y|x) over the split

The rows are cut into ``splits`` consecutive groups at ``floor(i·N/splits)`` (the original code's and
torch-fidelity's boundaries), the score is computed per group, and the result is the mean and std of
the per-group scores. Rows are *not* shuffled: the order given is the order used, so the number is a
deterministic function of the input (torch-fidelity shuffles with a fixed seed by default, torchmetrics
with torch's global RNG; pass rows in the same order to reproduce them, see the tests).

``ddof`` of the std: 0 (population std) by default, like the original code and torch-fidelity;
torchmetrics' ``InceptionScore`` reports ``torch.std`` (ddof=1) over ``torch.chunk`` groups, which has the
same boundaries when ``splits`` divides N. Computed in float64 with ``log_softmax`` (no log of 0).
"""

from __future__ import annotations

import numpy as np
import torch

from aigve.errors import UsageError

ArrayLike = np.ndarray | torch.Tensor


def inception_score_splits(scores: ArrayLike, splits: int = 10, from_logits: bool = True) -> np.ndarray:
    """Per-split Inception Scores ``[splits]`` of ``[N, C]`` logits (or probabilities)."""
    t = scores.detach() if isinstance(scores, torch.Tensor) else torch.from_numpy(np.asarray(scores))
    t = t.to(torch.float64)
    if t.ndim != 2 or t.shape[1] < 2:
        raise UsageError(
            f"inception_score expects [N, C] class scores with C >= 2, got shape {tuple(t.shape)}"
        )
    n = t.shape[0]
    if splits < 1 or n < splits:
        raise UsageError(f"inception_score: need 1 <= splits <= N, got splits={splits} for N={n} rows")
    if from_logits:
        if not bool(torch.isfinite(t).all()):
            raise UsageError("inception_score: logits contain NaN or inf")
        log_p = torch.log_softmax(t, dim=1)
    else:
        if bool((t < 0).any()) or not bool(
            torch.allclose(t.sum(dim=1), torch.ones(n, dtype=t.dtype), atol=1e-6)
        ):
            raise UsageError(
                "inception_score(from_logits=False) needs rows of probabilities (>= 0, summing to 1); "
                "pass logits with from_logits=True instead"
            )
        log_p = torch.log(t)  # -inf where p = 0; masked below
    p = torch.exp(log_p)
    out = np.empty(splits, dtype=np.float64)
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        pc, lpc = p[lo:hi], log_p[lo:hi]
        log_marg = torch.log(pc.mean(dim=0, keepdim=True))
        terms = torch.where(pc > 0, pc * (lpc - log_marg), torch.zeros_like(pc))  # 0·log 0 = 0
        out[i] = float(torch.exp(terms.sum(dim=1).mean()).item())
    return out


def inception_score(
    scores: ArrayLike, splits: int = 10, from_logits: bool = True, ddof: int = 0
) -> tuple[float, float]:
    """Inception Score mean and std over ``splits`` consecutive groups of ``[N, C]`` logits/probabilities.

    ``ddof=0`` matches torch-fidelity and the original code; ``ddof=1`` matches torchmetrics.
    """
    per = inception_score_splits(scores, splits=splits, from_logits=from_logits)
    std = float(per.std(ddof=ddof)) if len(per) > ddof else float("nan")
    return float(per.mean()), std
