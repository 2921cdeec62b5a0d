"""The in-batch contrastive loss: oracle, closed form, invariants."""

import math

import pytest
import torch

from surrogap.errors import UserError
from surrogap.losses import contrastive_loss, l2_normalize, sample_negatives


def naive_loss(anchor, positive, idx, views, normalize=True, temperature=1.0):
    """Per-anchor loop straight from PROTOCOL.md / THEORY.md."""
    a = [row / max(row.norm().item(), 1e-12) if normalize else row for row in anchor]
    p = [row / max(row.norm().item(), 1e-12) if normalize else row for row in positive]
    total = 0.0
    for i in range(len(a)):
        s_pos = float(a[i] @ p[i]) / temperature
        denom = math.exp(s_pos)
        for j, v in zip(idx[i].tolist(), views[i].tolist()):
            other = p[j] if v else a[j]
            denom += math.exp(float(a[i] @ other) / temperature)
        total += -s_pos + math.log(denom)
    return total / len(a)


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("dim", [2, 16])
@pytest.mark.parametrize("normalize,temperature", [(True, 1.0), (True, 0.5), (False, 2.0)])
def test_matches_naive_loop(k, dim, normalize, temperature):
    g = torch.Generator().manual_seed(100 * k + dim)
    a = torch.randn(8, dim, generator=g, dtype=torch.float64)
    p = torch.randn(8, dim, generator=g, dtype=torch.float64)
    idx, views = sample_negatives(8, k, g)
    got = contrastive_loss(
        a, p, k, normalize=normalize, temperature=temperature, negatives=(idx, views)
    )
    want = naive_loss(a, p, idx, views, normalize, temperature)
    assert float(got) == pytest.approx(want, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("k", [1, 4, 31])
def test_identical_embeddings_give_log_k_plus_one(k):
    z = torch.ones(32, 5, dtype=torch.float64) * 0.3
    got = contrastive_loss(z, z.clone(), k, generator=torch.Generator().manual_seed(0))
    assert float(got) == pytest.approx(math.log(k + 1), rel=0, abs=1e-12)


@pytest.mark.parametrize("batch,k", [(2, 1), (10, 9), (64, 16), (64, 63)])
def test_negatives_distinct_and_never_own_pair(batch, k):
    idx, views = sample_negatives(batch, k, torch.Generator().manual_seed(batch + k))
    assert idx.shape == (batch, k) and views.shape == (batch, k)
    for i, row in enumerate(idx.tolist()):
        assert i not in row
        assert len(set(row)) == k


def test_negatives_uniform_over_other_pairs():
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(6)
    for _ in range(3000):
        idx, _ = sample_negatives(6, 2, g)
        counts += torch.bincount(idx[0], minlength=6)
    assert counts[0] == 0
    freq = counts[1:] / counts[1:].sum()
    assert torch.allclose(freq, torch.full((5,), 0.2), atol=0.02)


@pytest.mark.parametrize("k", [0, 8])
def test_k_out_of_range_is_user_error(k):
    with pytest.raises(UserError, match=r"k: got .*allowed: 1\.\.7"):
        sample_negatives(8, k)


def test_zero_feature_normalizes_to_zero_not_nan():
    z = torch.zeros(3, 4)
    z[1, 0] = 2.0
    out = l2_normalize(z)
    assert torch.isfinite(out).all()
    assert out[0].abs().sum() == 0 and out[1, 0] == 1.0


def test_gradient_is_finite_with_zero_features():
    z = torch.zeros(8, 4, requires_grad=True)
    loss = contrastive_loss(z, z, 3, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(z.grad).all()
