"""The contrastive loss with K in-batch negatives (docs/PROTOCOL.md), as a pure function.

For a mini-batch of B positive pairs (anchor a_i, positive p_i), each anchor gets K
negatives: K of the other B - 1 pairs, chosen uniformly without replacement, one of each
pair's two views taken at random (drawn as random blocks of K + 1 pairs: :class:`Negatives`).
With s(u, v) = u^T v / temperature,

    loss_i = -log( e^{s(a_i, p_i)} / (e^{s(a_i, p_i)} + sum_k e^{s(a_i, n_ik)}) ),

the InfoNCE form of docs/THEORY.md's R_cont. Negatives come from the anchor's own batch, so
K <= B - 1 (under torch.distributed, the process's own share of it: docs/SCALING.md).
Half-precision features (from autocast) are upcast and the loss runs in fp32 with autocast
disabled; fp32 and fp64 inputs are used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from surrogap.core.errors import UserError
from surrogap.estimators.evaluation import NORM_EPS


def l2_normalize(z: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """z / max(||z||, eps) row-wise: unit rows, and a zero row stays zero (no NaN)."""
    return F.normalize(z, dim=-1, eps=eps)


@dataclass(frozen=True)
class Negatives:
    """Which pairs serve as whose negatives in a batch of B pairs, drawn as blocks.

    The pairs, in a uniformly random order, are cut into blocks of K + 1; inside a block
    every anchor's negatives are the K other pairs, each showing one view (chosen at random
    per slot). The last, partial block is filled up with random pairs from the other blocks,
    which serve as negatives only. So each anchor gets K distinct negatives drawn uniformly
    without replacement from the other B - 1 pairs, each with a random view: the rule of
    docs/PROTOCOL.md, computed as dense block products (4 B (K + 1) d multiply-adds) instead of
    B x 2B similarities.

    order (B,) or None: the random order of the pairs; None when the batch itself already
    comes in uniformly random order (the trainer's batches are slices of a seeded epoch
    permutation), which saves gathering the features. fill (F,): the filler pairs of the
    partial block (F = 0 when K + 1 divides B). views (B + F,): per slot, True where it
    shows its positive view, False where it shows its anchor view.
    """

    batch: int
    k: int
    order: torch.Tensor | None
    fill: torch.Tensor
    views: torch.Tensor

    @property
    def slots(self) -> torch.Tensor:
        """(B + F,) the pair in each slot: blocks are consecutive runs of K + 1 slots."""
        order = (
            torch.arange(self.batch, device=self.fill.device) if self.order is None else self.order
        )
        return torch.cat([order, self.fill])

    def indices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(idx, views), each (B, K): every anchor's negative pairs and their shown views."""
        g = self.k + 1
        blocks = self.slots.view(-1, g)
        views = self.views.view(-1, g)
        others = ~torch.eye(g, dtype=torch.bool)
        idx = torch.empty(self.batch, self.k, dtype=torch.long)
        shown = torch.empty(self.batch, self.k, dtype=torch.bool)
        for slot in range(self.batch):  # the first B slots are the anchors
            b, j = divmod(slot, g)
            owner = int(blocks[b, j])
            idx[owner] = blocks[b][others[j]]
            shown[owner] = views[b][others[j]]
        return idx, shown


def positive_partners(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each sample, the index of a uniformly random *other* sample of its class (n,):
    the training pairs (the held-out estimator draws its own in NumPy,
    :func:`surrogap.estimators.evaluation.positive_partners`)."""
    order = torch.argsort(y, stable=True)
    sorted_y = y[order]
    counts = torch.bincount(sorted_y)
    if (counts == 1).any():
        c = int((counts == 1).nonzero()[0, 0])
        raise UserError(f"class {c} has a single sample: no positive pair is possible")
    starts = torch.cumsum(counts, 0) - counts  # (C,)
    start = starts[sorted_y]  # (n,)
    size = counts[sorted_y]
    rank = torch.arange(y.numel()) - start  # position of each sample inside its class
    r = (torch.rand(y.numel(), generator=generator) * (size - 1)).long().clamp_max(size - 2)
    r = r + (r >= rank).long()  # skip the sample itself
    partner_sorted = order[start + r]
    partner = torch.empty_like(partner_sorted)
    partner[order] = partner_sorted
    return partner


def sample_negatives(
    batch: int,
    k: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    shuffle: bool = True,
) -> Negatives:
    """Draw the negatives of a batch of `batch` pairs, K per anchor (see :class:`Negatives`).

    shuffle=False takes the batch's own order as the random order: only for batches that
    are already a uniformly random ordering (then no features need gathering).
    """
    if not 1 <= k <= batch - 1:
        raise UserError(f"k: got {k}, allowed: 1..{batch - 1} (batch size - 1)")
    g = k + 1
    order = torch.randperm(batch, generator=generator) if shuffle else torch.arange(batch)
    rest = batch % g
    if rest:
        fill = order[: batch - rest][torch.randperm(batch - rest, generator=generator)[: g - rest]]
    else:
        fill = torch.empty(0, dtype=torch.long)
    views = torch.rand(batch + fill.numel(), generator=generator) < 0.5
    return Negatives(
        batch=batch,
        k=k,
        order=order.to(device) if shuffle else None,
        fill=fill.to(device),
        views=views.to(device),
    )


def contrastive_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    k: int,
    *,
    normalize: bool = True,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    negatives: Negatives | None = None,
) -> torch.Tensor:
    """Mean contrastive loss of a batch of pairs.

    anchor, positive: (B, d) features. k: negatives per anchor (1 <= k <= B - 1).
    normalize: L2-normalize features first (b = 1; the paper's synthetic runs).
    temperature: divides every inner product. negatives: drawn by
    :func:`sample_negatives` (drawn here when None).
    Returns a scalar tensor (nats).
    """
    if anchor.shape != positive.shape or anchor.ndim != 2:
        raise ValueError(
            f"anchor and positive must both be (B, d), got {tuple(anchor.shape)} and {tuple(positive.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    neg = negatives
    if neg is None:
        neg = sample_negatives(anchor.shape[0], k, generator, anchor.device)
    if neg.k != k or neg.batch != anchor.shape[0]:
        raise ValueError(
            f"negatives were drawn for B = {neg.batch}, K = {neg.k}, not B = {anchor.shape[0]}, K = {k}"
        )
    if anchor.dtype in (torch.float16, torch.bfloat16):
        anchor, positive = anchor.float(), positive.float()
    with torch.autocast(device_type=anchor.device.type, enabled=False):  # fp32 under amp
        if normalize:
            anchor, positive = l2_normalize(anchor), l2_normalize(positive)
        g = k + 1
        if neg.order is not None:  # gather the pairs into their random order
            a, p = anchor[neg.slots], positive[neg.slots]
        elif neg.fill.numel():  # the batch's own order: only the fillers are gathered
            a, p = torch.cat([anchor, anchor[neg.fill]]), torch.cat([positive, positive[neg.fill]])
        else:
            a, p = anchor, positive
        nb = a.shape[0] // g
        a3, p3 = a.view(nb, g, -1), p.view(nb, g, -1)  # (nb, K+1, d)
        s_aa = torch.bmm(a3, a3.transpose(1, 2))  # (nb, K+1, K+1) s(a_i, anchor view of slot j)
        s_ap = torch.bmm(a3, p3.transpose(1, 2))  # (nb, K+1, K+1) s(a_i, positive view of slot j)
        sim = torch.where(neg.views.view(nb, 1, g), s_ap, s_aa)  # the view slot j shows
        pos = s_ap.diagonal(0, 1, 2)  # (nb, K+1) s(a_i, p_i)
        own = torch.eye(g, dtype=torch.bool, device=sim.device)
        logits = torch.where(own, s_ap, sim)  # own pair -> its positive logit
        if temperature != 1.0:
            logits, pos = logits / temperature, pos / temperature
        losses = torch.logsumexp(logits, -1).view(-1) - pos.reshape(-1)  # (B + F,)
        return losses[: neg.batch].mean()  # the first B slots are the anchors
