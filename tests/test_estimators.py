"""Estimators of frozen features: mean classifier, block contrastive loss, pairing, and
the linear probe (against the torch L-BFGS implementation it replaced)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from surrogap.core.errors import UserError
from surrogap.estimators.evaluation import (
    class_means,
    contrastive_loss_estimate,
    l2_normalize,
    linear_probe_points,
    mean_classifier,
    mean_classifier_points,
    positive_partners,
)
from surrogap.theory import bounds
from surrogap.training import losses as torch_losses


@pytest.mark.parametrize("partners", [positive_partners, torch_losses.positive_partners])
def test_positive_partners_same_class_other_sample(partners):
    y = np.array([0, 1, 0, 2, 1, 2, 2, 0])
    for s in range(20):
        if partners is positive_partners:
            p = partners(y, np.random.default_rng(s))
        else:
            p = partners(torch.from_numpy(y), torch.Generator().manual_seed(s)).numpy()
        assert (y[p] == y).all()
        assert (p != np.arange(len(y))).all()


def test_positive_partners_are_uniform_over_the_other_samples():
    y = np.array([0, 0, 0, 0, 1, 1])
    rng = np.random.default_rng(0)
    hits = np.zeros((6, 6))
    for _ in range(4000):
        hits[np.arange(6), positive_partners(y, rng)] += 1
    # sample 0's partner: 1, 2 or 3 with probability 1/3 each (binomial sd ~ 30 of 4000)
    assert np.abs(hits[0, 1:4] - 4000 / 3).max() < 150
    assert hits[4, 5] == 4000


def test_positive_partners_single_sample_class_is_error():
    with pytest.raises(UserError, match="class 1 has a single sample"):
        positive_partners(np.array([0, 0, 1]), np.random.default_rng(0))


def test_mean_classifier_matches_naive():
    g = np.random.default_rng(3)
    z_tr = g.standard_normal((40, 5))
    y_tr = np.arange(40) % 4
    z_ev = g.standard_normal((13, 5))
    y_ev = np.arange(13) % 4
    got = mean_classifier(z_tr, y_tr, z_ev, y_ev, 4)
    ztr = [r / np.linalg.norm(r) for r in z_tr]
    means = [sum(ztr[i] for i in range(40) if y_tr[i] == c) / 10 for c in range(4)]
    loss, acc = 0.0, 0
    points = []
    for r, c in zip(z_ev, y_ev.tolist()):
        r = r / np.linalg.norm(r)
        s = [float(r @ m) for m in means]
        loss += -s[c] + math.log(sum(math.exp(v) for v in s))
        points.append(-s[c] + math.log(sum(math.exp(v) for v in s)))
        acc += int(np.argmax(s) == c)
    assert got["supervised_loss"] == pytest.approx(loss / 13, rel=1e-12)
    assert got["mean_acc"] == acc / 13
    per_loss, per_correct = mean_classifier_points(z_tr, y_tr, z_ev, y_ev, 4, chunk_elements=8)
    np.testing.assert_allclose(per_loss, points, rtol=1e-12)
    assert per_correct.dtype == bool and int(per_correct.sum()) == acc


def test_class_means_are_not_renormalized():
    z = l2_normalize(np.array([[1.0, 0.0], [0.0, 1.0]]))
    mu = class_means(z, np.array([0, 0]), 1)
    assert np.linalg.norm(mu[0]) == pytest.approx(math.sqrt(0.5))


@pytest.mark.parametrize("k", [1, 4, 16])
def test_perfectly_separated_features_reach_the_ideal(k):
    # C = 2 antipodal unit vectors: same-class inner product 1, cross-class -1 (b = 1)
    n = 4000
    y = np.arange(n) % 2
    z = np.zeros((n, 3), dtype=np.float32)
    z[:, 0] = 1.0 - 2.0 * y
    est = contrastive_loss_estimate(z, y, k, repeats=10, seed=k)
    # block negatives are drawn without replacement from the split, the ideal with
    # replacement; for n >> K the difference is far below the Monte Carlo error
    assert est.mean == pytest.approx(bounds.optimal_contrastive_loss(k, 2), abs=4 * est.se + 2e-3)
    mc = mean_classifier(z, y, z, y, 2)
    assert mc["supervised_loss"] == pytest.approx(bounds.optimal_supervised_loss(2), rel=1e-6)
    assert mc["mean_acc"] == 1.0


def test_estimate_is_seeded_and_has_standard_error():
    g = np.random.default_rng(0)
    z = g.standard_normal((300, 8), dtype=np.float32)
    y = np.arange(300) % 5
    a = contrastive_loss_estimate(z, y, 8, repeats=10, seed=1)
    b = contrastive_loss_estimate(z, y, 8, repeats=10, seed=1)
    assert a == b and a.se > 0 and a.repeats == 10


def test_k_larger_than_split_is_error():
    with pytest.raises(UserError, match=r"k: got 10, allowed: 1\.\.9"):
        contrastive_loss_estimate(np.ones((10, 2)), np.arange(10) % 2, 10)


# --------------------------------------------------------------------------- linear probe
def torch_linear_probe(xtr, ytr, xva, yva, xte, yte, c, weight_decays, max_iter=200):
    """The torch L-BFGS probe the NumPy one replaced (its code as it was), choosing the
    weight decay on validation loss like the NumPy one: the reference of the test below."""
    xtr, xva, xte = (F.normalize(torch.from_numpy(x).double(), dim=1) for x in (xtr, xva, xte))
    ytr, yva, yte = (torch.from_numpy(y) for y in (ytr, yva, yte))
    best = None
    for wd in weight_decays:
        w = torch.zeros(xtr.shape[1], c, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS(
            [w], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
            tolerance_grad=1e-6,
        )  # fmt: skip

        def closure(opt=opt, w=w, wd=wd):
            opt.zero_grad()
            loss = F.cross_entropy(xtr @ w, ytr) + 0.5 * wd * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            val_loss = float(F.cross_entropy(xva @ w, yva))
            if best is None or val_loss < best[0]:
                best = (val_loss, wd, w.detach().clone())
    _, wd, w = best
    with torch.no_grad():
        logits = xte @ w
        return {
            "linear_acc": float((logits.argmax(1) == yte).double().mean()),
            "linear_loss": float(F.cross_entropy(logits, yte)),
            "linear_weight_decay": wd,
        }


def probe_data(seed: int, n: int = 600, d: int = 6, c: int = 4, spread: float = 1.0):
    """Overlapping Gaussian classes (no separating W: every weight decay has one optimum)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(c, d))
    out = []
    for m in (n, n // 2, n // 2):
        y = np.arange(m) % c
        out += [(centers[y] + spread * rng.normal(size=(m, d))).astype(np.float32), y]
    return out


@pytest.mark.parametrize("weight_decays", [(1e-2,), (1e-4,), (0.0, 1e-4, 1e-2), (1e-3, 1.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_linear_probe_matches_the_torch_lbfgs_probe(weight_decays, seed):
    data = probe_data(seed)
    got = linear_probe_points(*data, 4, weight_decays=weight_decays)[0]
    want = torch_linear_probe(*data, 4, weight_decays)
    assert got["linear_weight_decay"] == want["linear_weight_decay"]
    assert got["linear_loss"] == pytest.approx(want["linear_loss"], abs=1e-5)
    assert got["linear_acc"] == pytest.approx(want["linear_acc"], abs=2 / 300)  # <= 2 ties


def test_linear_probe_chooses_the_weight_decay_on_validation_loss():
    xtr, ytr, xva, yva, xte, yte = probe_data(2, spread=0.6)
    grid = (0.0, 0.3, 3.0)
    per_wd = {wd: linear_probe_points(xtr, ytr, xva, yva, xte, yte, 4, (wd,))[0] for wd in grid}
    chosen = linear_probe_points(xtr, ytr, xva, yva, xte, yte, 4, grid)[0]
    best = min(grid, key=lambda wd: per_wd[wd]["linear_val_loss"])
    assert chosen["linear_weight_decay"] == best
    assert chosen["linear_val_loss"] == min(r["linear_val_loss"] for r in per_wd.values())
    assert chosen == per_wd[best] | {"linear_weight_decay": best}


def test_linear_probe_points_are_the_summary_per_test_point():
    xtr, ytr, xva, yva, xte, yte = probe_data(3)
    summary, loss, correct = linear_probe_points(xtr, ytr, xva, yva, xte, yte, 4, (1e-3,))
    assert loss.shape == correct.shape == (yte.size,)
    assert loss.dtype == np.float64 and correct.dtype == bool
    assert summary["linear_loss"] == pytest.approx(loss.mean(), rel=1e-12)
    assert summary["linear_acc"] == correct.mean()
    assert (loss > 0).all()
