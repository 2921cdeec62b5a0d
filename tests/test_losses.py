"""The in-batch contrastive loss: oracle, closed form, invariants."""

import math

import pytest
import torch

from surrogap.core.errors import UserError
from surrogap.training.losses import Negatives, contrastive_loss, l2_normalize, sample_negatives


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
@pytest.mark.parametrize("shuffle", [True, False])
def test_matches_naive_loop(k, dim, normalize, temperature, shuffle):
    g = torch.Generator().manual_seed(100 * k + dim)
    a = torch.randn(8, dim, generator=g, dtype=torch.float64)
    p = torch.randn(8, dim, generator=g, dtype=torch.float64)
    neg = sample_negatives(8, k, g, shuffle=shuffle)
    got = contrastive_loss(a, p, k, normalize=normalize, temperature=temperature, negatives=neg)
    idx, views = neg.indices()
    want = naive_loss(a, p, idx, views, normalize, temperature)
    assert float(got) == pytest.approx(want, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("k", [1, 4, 31])
def test_identical_embeddings_give_log_k_plus_one(k):
    z = torch.ones(32, 5, dtype=torch.float64) * 0.3
    got = contrastive_loss(z, z.clone(), k, generator=torch.Generator().manual_seed(0))
    assert float(got) == pytest.approx(math.log(k + 1), rel=0, abs=1e-12)


@pytest.mark.parametrize("batch,k", [(2, 1), (10, 9), (64, 16), (64, 63)])
def test_negatives_distinct_and_never_own_pair(batch, k):
    idx, views = sample_negatives(batch, k, torch.Generator().manual_seed(batch + k)).indices()
    assert idx.shape == (batch, k) and views.shape == (batch, k)
    for i, row in enumerate(idx.tolist()):
        assert i not in row
        assert len(set(row)) == k


def test_negatives_uniform_over_other_pairs():
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(7, 7)
    shown = torch.zeros(7)
    for _ in range(3000):
        idx, views = sample_negatives(7, 2, g).indices()  # 7 = 2 blocks of 3 + a partial block
        for i in range(7):
            counts[i] += torch.bincount(idx[i], minlength=7)
        shown += views.float().mean(1)
    for i in range(7):  # every anchor, in full and partial blocks alike
        assert counts[i, i] == 0
        freq = torch.cat([counts[i, :i], counts[i, i + 1 :]]) / counts[i].sum()
        assert torch.allclose(freq, torch.full((6,), 1 / 6), atol=0.02)
    assert torch.allclose(shown / 3000, torch.full((7,), 0.5), atol=0.03)


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


def test_loss_runs_in_fp32_under_autocast_and_for_half_features():
    """Mixed precision: bf16 features are upcast, and autocast does not reach the
    normalization and similarities (checked with CPU autocast, which exists everywhere)."""
    g = torch.Generator().manual_seed(0)
    a, p = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    neg = sample_negatives(16, 5, g)
    ref = contrastive_loss(a, p, 5, negatives=neg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = contrastive_loss(a, p, 5, negatives=neg)
    assert got.dtype == torch.float32 and torch.equal(got, ref)
    half = contrastive_loss(a.bfloat16(), p.bfloat16(), 5, negatives=neg)
    assert half.dtype == torch.float32
    assert torch.equal(
        half, contrastive_loss(a.bfloat16().float(), p.bfloat16().float(), 5, negatives=neg)
    )


# --------------------------------------------------------------------------- invariants
def _pairs(seed: int, batch: int = 12, dim: int = 5):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    p = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    return a, p, g


@pytest.mark.parametrize("k", [1, 4, 11])
def test_scaling_rows_changes_nothing_when_normalized(k):
    a, p, g = _pairs(k)
    neg = sample_negatives(12, k, g)
    sa = torch.rand(12, 1, generator=g, dtype=torch.float64) * 10 + 0.1
    sp = torch.rand(12, 1, generator=g, dtype=torch.float64) * 10 + 0.1
    ref = contrastive_loss(a, p, k, negatives=neg)
    got = contrastive_loss(a * sa, p * sp, k, negatives=neg)
    assert float(got) == pytest.approx(float(ref), rel=1e-12)
    # without normalization the same scaling does change the loss
    assert float(contrastive_loss(a * sa, p * sp, k, normalize=False, negatives=neg)) != (
        pytest.approx(float(contrastive_loss(a, p, k, normalize=False, negatives=neg)))
    )


@pytest.mark.parametrize("k", [1, 3, 11])
@pytest.mark.parametrize("shuffle", [True, False])
def test_permuting_pairs_with_the_negatives_fixed_changes_nothing(k, shuffle):
    """Relabel the pairs by a permutation and the negatives with it (each anchor keeps the
    same partner pairs and views): the batch loss is the same."""
    a, p, g = _pairs(10 + k)
    neg = sample_negatives(12, k, g, shuffle=shuffle)
    perm = torch.randperm(12, generator=g)  # new pair i is old pair perm[i]
    inverse = torch.argsort(perm)  # old pair j is new pair inverse[j]
    slots = neg.slots
    moved = Negatives(
        batch=12,
        k=k,
        order=inverse[slots[:12]],
        fill=inverse[neg.fill],
        views=neg.views,
    )
    ref = contrastive_loss(a, p, k, negatives=neg)
    got = contrastive_loss(a[perm], p[perm], k, negatives=moved)
    assert float(got) == pytest.approx(float(ref), rel=1e-12)
    old_idx, old_views = neg.indices()
    new_idx, new_views = moved.indices()
    for new in range(12):  # the same negatives, relabelled
        old = int(perm[new])
        assert sorted(perm[new_idx[new]].tolist()) == sorted(old_idx[old].tolist())
        assert sorted(zip(perm[new_idx[new]].tolist(), new_views[new].tolist())) == sorted(
            zip(old_idx[old].tolist(), old_views[old].tolist())
        )


def test_rotating_the_feature_space_changes_nothing():
    a, p, g = _pairs(3)
    neg = sample_negatives(12, 4, g)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    for normalize in (True, False):
        ref = contrastive_loss(a, p, 4, normalize=normalize, negatives=neg)
        got = contrastive_loss(a @ q, p @ q, 4, normalize=normalize, negatives=neg)
        assert float(got) == pytest.approx(float(ref), rel=1e-12)
