"""Estimators of frozen features: mean classifier, block contrastive loss, pairing."""

import math

import numpy as np
import pytest
import torch

from surrogap import bounds
from surrogap.errors import UserError
from surrogap.evaluation import (
    class_means,
    contrastive_loss_estimate,
    mean_classifier,
    positive_partners,
)
from surrogap.losses import l2_normalize


def test_positive_partners_same_class_other_sample():
    y = torch.tensor([0, 1, 0, 2, 1, 2, 2, 0])
    for s in range(20):
        p = positive_partners(y, torch.Generator().manual_seed(s))
        assert (y[p] == y).all()
        assert (p != torch.arange(len(y))).all()


def test_positive_partners_single_sample_class_is_error():
    with pytest.raises(UserError, match="class 1 has a single sample"):
        positive_partners(torch.tensor([0, 0, 1]), torch.Generator().manual_seed(0))


def test_mean_classifier_matches_naive():
    g = torch.Generator().manual_seed(3)
    z_tr = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y_tr = torch.arange(40) % 4
    z_ev = torch.randn(13, 5, generator=g, dtype=torch.float64)
    y_ev = torch.arange(13) % 4
    got = mean_classifier(z_tr, y_tr, z_ev, y_ev, 4)
    ztr = [r / r.norm() for r in z_tr]
    means = [sum(ztr[i] for i in range(40) if y_tr[i] == c) / 10 for c in range(4)]
    loss, acc = 0.0, 0
    for r, c in zip(z_ev, y_ev.tolist()):
        r = r / r.norm()
        s = [float(r @ m) for m in means]
        loss += -s[c] + math.log(sum(math.exp(v) for v in s))
        acc += int(np.argmax(s) == c)
    assert got["supervised_loss"] == pytest.approx(loss / 13, rel=1e-12)
    assert got["mean_acc"] == acc / 13


def test_class_means_are_not_renormalized():
    z = l2_normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    mu = class_means(z, torch.tensor([0, 0]), 1)
    assert mu[0].norm() == pytest.approx(math.sqrt(0.5))


@pytest.mark.parametrize("k", [1, 4, 16])
def test_perfectly_separated_features_reach_the_ideal(k):
    # C = 2 antipodal unit vectors: same-class inner product 1, cross-class -1 (b = 1)
    n = 4000
    y = torch.arange(n) % 2
    z = torch.zeros(n, 3)
    z[:, 0] = 1.0 - 2.0 * y.float()
    est = contrastive_loss_estimate(z, y, k, repeats=10, seed=k)
    # block negatives are drawn without replacement from the split, the ideal with
    # replacement; for n >> K the difference is far below the Monte Carlo error
    assert est.mean == pytest.approx(bounds.optimal_contrastive_loss(k, 2), abs=4 * est.se + 2e-3)
    mc = mean_classifier(z, y, z, y, 2)
    assert mc["supervised_loss"] == pytest.approx(bounds.optimal_supervised_loss(2), rel=1e-6)
    assert mc["mean_acc"] == 1.0


def test_estimate_is_seeded_and_has_standard_error():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(300, 8, generator=g)
    y = torch.arange(300) % 5
    a = contrastive_loss_estimate(z, y, 8, repeats=10, seed=1)
    b = contrastive_loss_estimate(z, y, 8, repeats=10, seed=1)
    assert a == b and a.se > 0 and a.repeats == 10


def test_k_larger_than_split_is_error():
    with pytest.raises(UserError, match=r"k: got 10, allowed: 1\.\.9"):
        contrastive_loss_estimate(torch.randn(10, 2), torch.arange(10) % 2, 10)
