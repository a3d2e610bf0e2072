"""Inception Score against closed forms, torch-fidelity 0.4.0 and torchmetrics on the same logits.

The references are driven with the logits themselves (torch-fidelity's ``isc_features_to_metric`` with
``shuffle=False``; torchmetrics' ``InceptionScore`` with an identity feature network, after replaying its
``torch.randperm`` so our function sees the rows in the same order). Tolerance 1e-10 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigve.errors import UsageError
from aigve.metrics.functional.inception_score import inception_score, inception_score_splits

tf_isc = pytest.importorskip("torch_fidelity.metric_isc", reason="torch-fidelity==0.4.0 is a reference")
tm_is = pytest.importorskip("torchmetrics.image.inception", reason="torchmetrics is a reference")


@pytest.fixture(scope="module")
def logits() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1000, 50)) * 3.0


def test_uniform_logits_score_one() -> None:
    mean, std = inception_score(np.full((100, 1008), 0.7), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_one_hot_distinct_classes() -> None:
    # split of m rows with m distinct one-hot classes: p(y) uniform on m classes, KL = log m, IS = m
    n, splits = 120, 6
    probs = np.eye(n)[np.random.default_rng(1).permutation(n)]
    mean, std = inception_score(probs, splits=splits, from_logits=False)
    assert mean == pytest.approx(n / splits, rel=1e-12) and std == pytest.approx(0.0, abs=1e-10)
    # the same from logits with a large gap (softmax rounds the others to exactly 0)
    mean_l, _ = inception_score(probs * 1000.0, splits=splits)
    assert mean_l == pytest.approx(n / splits, rel=1e-12)
    # all rows the same class: p(y|x) = p(y), IS = 1
    same = np.zeros((50, 10))
    same[:, 3] = 1.0
    assert inception_score(same, splits=5, from_logits=False)[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n,splits", [(1000, 10), (997, 7), (50, 1)])
def test_matches_torch_fidelity(logits: np.ndarray, n: int, splits: int) -> None:
    x = logits[:n]
    ref = tf_isc.isc_features_to_metric(torch.from_numpy(x), splits=splits, shuffle=False)
    mean, std = inception_score(x, splits=splits)  # ddof=0 like torch-fidelity
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-10)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-8, abs=1e-12)


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save:UserWarning")
def test_matches_torchmetrics(logits: np.ndarray) -> None:
    metric = tm_is.InceptionScore(feature=torch.nn.Identity(), splits=10)
    t = torch.from_numpy(logits)
    metric.update(t[:400])
    metric.update(t[400:])
    torch.manual_seed(5)
    ref_mean, ref_std = metric.compute()
    torch.manual_seed(5)
    perm = torch.randperm(len(logits)).numpy()  # torchmetrics shuffles with the global torch RNG
    mean, std = inception_score(logits[perm], splits=10, ddof=1)  # torchmetrics: torch.std, ddof=1
    assert mean == pytest.approx(float(ref_mean), rel=1e-10)
    assert std == pytest.approx(float(ref_std), rel=1e-8)


def test_probs_equal_logits_and_order_is_used(logits: np.ndarray) -> None:
    p = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    np.testing.assert_allclose(
        inception_score_splits(p, splits=10, from_logits=False),
        inception_score_splits(logits, splits=10),
        rtol=1e-10,
    )
    # deterministic, no internal shuffling: same rows in the same order -> identical numbers
    assert inception_score(logits, 10) == inception_score(logits.copy(), 10)
    # torch input (float32 widened to float64) equals the numpy result on the same values
    t32 = torch.from_numpy(logits).float()
    assert inception_score(t32, 10)[0] == pytest.approx(
        inception_score(t32.double().numpy(), 10)[0], rel=1e-12
    )


def test_usage_errors() -> None:
    with pytest.raises(UsageError, match="splits"):
        inception_score(np.zeros((5, 10)), splits=10)
    with pytest.raises(UsageError, match=r"\[N, C\]"):
        inception_score(np.zeros(10), splits=1)
    with pytest.raises(UsageError, match="probabilities"):
        inception_score(np.full((4, 3), 0.5), splits=2, from_logits=False)
    with pytest.raises(UsageError, match="NaN"):
        inception_score(np.full((4, 3), np.nan), splits=2)
