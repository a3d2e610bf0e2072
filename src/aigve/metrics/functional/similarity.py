"""Cosine similarity between feature rows (pure numpy, float64)."""

from __future__ import annotations

import numpy as np


def cosine_similarity_rows(a: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise cosine similarity of two ``[N, D]`` arrays -> ``[N]`` float64.

    ``cos(a_i, b_i) = <a_i, b_i> / (max(|a_i|, eps) * max(|b_i|, eps))``: a zero row gives 0 instead of NaN.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"cosine_similarity_rows needs two [N, D] arrays of one shape, got {a.shape} and {b.shape}"
        )
    na = np.maximum(np.linalg.norm(a, axis=1), eps)
    nb = np.maximum(np.linalg.norm(b, axis=1), eps)
    return np.einsum("nd,nd->n", a, b) / (na * nb)


def consecutive_cosine(features: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Cosine similarity of each row with the next: ``[T, D]`` -> ``[T - 1]`` float64 (empty if T < 2)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"consecutive_cosine needs a [T, D] array, got shape {f.shape}")
    return cosine_similarity_rows(f[:-1], f[1:], eps=eps)
