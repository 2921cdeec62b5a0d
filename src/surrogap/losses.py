"""The contrastive loss with K in-batch negatives (PROTOCOL.md), as a pure function.

For a mini-batch of B positive pairs (anchor a_i, positive p_i), each anchor gets K
negatives: K of the other B - 1 pairs, chosen uniformly without replacement, one of each
pair's two views taken at random. With s(u, v) = u^T v / temperature,

    loss_i = -log( e^{s(a_i, p_i)} / (e^{s(a_i, p_i)} + sum_k e^{s(a_i, n_ik)}) ),

the InfoNCE form of THEORY.md's R_cont. Negatives come from the anchor's own batch (and,
under torch.distributed, from the process's own batch), so K <= B - 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from surrogap.errors import UserError

NORM_EPS = 1e-12


def l2_normalize(z: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """z / max(||z||, eps) row-wise: unit rows, and a zero row stays zero (no NaN)."""
    return F.normalize(z, dim=-1, eps=eps)


def sample_negatives(batch: int, k: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Negative pair indices (B, K), distinct per row and never the row itself, and view
    bits (B, K) (True: the negative's positive view, False: its anchor view)."""
    if not 1 <= k <= batch - 1:
        raise UserError(f"k: got {k}, allowed: 1..{batch - 1} (batch size - 1)")
    keys = torch.rand(batch, batch, generator=generator, device=device)
    keys.fill_diagonal_(2.0)  # never pick the anchor's own pair
    idx = keys.topk(k, dim=1, largest=False).indices  # (B, K)
    views = torch.rand(batch, k, generator=generator, device=device) < 0.5  # (B, K)
    return idx, views


def contrastive_loss(anchor: torch.Tensor, positive: torch.Tensor, k: int, *,
                     normalize: bool = True, temperature: float = 1.0,
                     generator: torch.Generator | None = None,
                     negatives: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean contrastive loss of a batch of pairs.

    anchor, positive: (B, d) features. k: negatives per anchor (1 <= k <= B - 1).
    normalize: L2-normalize features first (b = 1; the paper's synthetic runs).
    temperature: divides every inner product. negatives: precomputed
    (idx, views) from :func:`sample_negatives` (drawn here when None).
    Returns a scalar tensor (nats).
    """
    if anchor.shape != positive.shape or anchor.ndim != 2:
        raise ValueError(f"anchor and positive must both be (B, d), got {tuple(anchor.shape)} and {tuple(positive.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    b = anchor.shape[0]
    idx, views = negatives if negatives is not None else sample_negatives(b, k, generator, anchor.device)
    if normalize:
        anchor, positive = l2_normalize(anchor), l2_normalize(positive)
    both = torch.cat([anchor, positive], 0)  # (2B, d): rows 0..B-1 anchor views, B..2B-1 positive views
    sim = anchor @ both.T / temperature  # (B, 2B)
    pos = sim.diagonal(offset=b)  # (B,) s(a_i, p_i)
    neg = sim.gather(1, idx + b * views.long())  # (B, K)
    logits = torch.cat([pos[:, None], neg], 1)  # (B, K + 1)
    return (torch.logsumexp(logits, 1) - pos).mean()
