"""Evaluations of frozen features: the mean classifier, the held-out contrastive loss,
the linear probe (PROTOCOL.md, "Evaluations of a frozen encoder").

Every function L2-normalizes the features it is given (``l2_normalize``: a zero row stays
zero), so b = 1 in every bound. Features are torch tensors (n, d); labels int64 (n,).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from surrogap.errors import UserError
from surrogap.losses import l2_normalize


def check_finite(z: torch.Tensor, what: str) -> None:
    """One clear line naming `what` where the first NaN or inf sits."""
    bad = ~torch.isfinite(z)
    if bad.any():
        row = int(bad.nonzero()[0, 0])
        raise UserError(f"{what} holds NaN or inf (first at row {row}); the encoder or its input is broken")


def class_means(z: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """mu (C, d): per-class mean of the (already normalized) rows of z, never renormalized."""
    sums = torch.zeros(num_classes, z.shape[1], dtype=torch.float64, device=z.device)
    sums.index_add_(0, y, z.double())
    counts = torch.bincount(y, minlength=num_classes).to(sums)
    if (counts == 0).any():
        raise UserError(f"class {int((counts == 0).nonzero()[0, 0])} has no sample to build its mean from")
    return (sums / counts[:, None]).to(z.dtype)


def mean_classifier(z_train: torch.Tensor, y_train: torch.Tensor, z_eval: torch.Tensor,
                    y_eval: torch.Tensor, num_classes: int, chunk: int = 65536) -> dict[str, float]:
    """R_mu (softmax cross-entropy of logits z @ mu^T) and accuracy on (z_eval, y_eval),
    with class means from the normalized training features."""
    means = class_means(l2_normalize(z_train), y_train, num_classes)  # (C, d)
    loss_sum, correct = 0.0, 0
    for start in range(0, z_eval.shape[0], chunk):
        z = l2_normalize(z_eval[start : start + chunk])
        y = y_eval[start : start + chunk]
        logits = z @ means.T  # (n, C)
        loss_sum += float(F.cross_entropy(logits.double(), y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    n = z_eval.shape[0]
    return {"supervised_loss": loss_sum / n, "mean_acc": correct / n}


def positive_partners(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each sample, the index of a uniformly random *other* sample of its class (n,)."""
    order = torch.argsort(y, stable=True)
    sorted_y = y[order]
    counts = torch.bincount(sorted_y)
    if ((counts == 1)).any():
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


def _block_losses(za: torch.Tensor, zp: torch.Tensor, k: int, generator: torch.Generator,
                  chunk_blocks: int) -> torch.Tensor:
    """Per-anchor contrastive losses (n,) for one pairing with K block negatives each.

    A random permutation cuts the n pairs into blocks of K + 1; in a block every anchor's
    negatives are the K other pairs, one view each (chosen at random per pair), so each
    anchor sees K distinct negatives drawn uniformly without replacement from the other
    n - 1 pairs. The last, partial block is filled up with random pairs from the other
    blocks, which serve as negatives only.
    """
    n, _ = za.shape
    g = k + 1
    perm = torch.randperm(n, generator=generator)
    full = n // g
    rest = n - full * g
    anchors_mask = torch.ones(full * g + (g if rest else 0), dtype=torch.bool)
    if rest:
        fill = perm[: n - rest][torch.randperm(n - rest, generator=generator)[: g - rest]]
        perm = torch.cat([perm, fill])
        anchors_mask[n:] = False
    blocks = perm.view(-1, g)  # (nb, K+1)
    mask = anchors_mask.view(-1, g)
    views = torch.rand(n, generator=generator) < 0.5
    neg_view = torch.where(views[:, None], zp, za)  # (n, d): the view a pair shows as a negative
    pos_all = (za * zp).sum(1)  # (n,)
    eye = torch.eye(g, dtype=torch.bool)
    out = []
    for s in range(0, blocks.shape[0], chunk_blocks):
        blk = blocks[s : s + chunk_blocks]  # (b, K+1)
        sim = torch.bmm(za[blk], neg_view[blk].transpose(1, 2))  # (b, K+1, K+1)
        sim.masked_fill_(eye, float("-inf"))  # the anchor's own pair is no negative
        pos = pos_all[blk]  # (b, K+1)
        lse = torch.logsumexp(torch.cat([pos[..., None], sim], -1), -1)  # (b, K+1)
        out.append((lse - pos)[mask[s : s + chunk_blocks]])
    return torch.cat(out)


@dataclass(frozen=True)
class ContrastiveEstimate:
    mean: float  # nats
    se: float  # standard error over repeats (0 for one repeat)
    repeats: int


def contrastive_loss_estimate(z: torch.Tensor, y: torch.Tensor, k: int, repeats: int = 10,
                              seed: int = 0, chunk_elements: int = 2**25) -> ContrastiveEstimate:
    """Held-out contrastive loss of features z (n, d) with K negatives.

    Each repeat draws a fresh pairing (every sample an anchor, a random other sample of its
    class its positive) and fresh block negatives (see :func:`_block_losses`). Returns the
    mean over repeats of the per-repeat average and its standard error. Needs n >= K + 1.
    """
    n = z.shape[0]
    if k < 1 or k > n - 1:
        raise UserError(f"k: got {k}, allowed: 1..{n - 1} (samples in the split - 1)")
    if repeats < 1:
        raise UserError(f"repeats: got {repeats}, allowed: an integer >= 1")
    zn = l2_normalize(z.float())
    gen = torch.Generator().manual_seed(seed)
    chunk_blocks = max(1, chunk_elements // ((k + 1) * max(k + 1, z.shape[1])))
    values = []
    for _ in range(repeats):
        partner = positive_partners(y, gen)
        losses = _block_losses(zn, zn[partner], k, gen, chunk_blocks)
        values.append(float(losses.double().mean()))
    mean = math.fsum(values) / repeats
    se = float(np.std(values, ddof=1) / math.sqrt(repeats)) if repeats > 1 else 0.0
    return ContrastiveEstimate(mean=mean, se=se, repeats=repeats)


def linear_probe(z_train: torch.Tensor, y_train: torch.Tensor, z_val: torch.Tensor,
                 y_val: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor,
                 num_classes: int, weight_decays: tuple[float, ...] = (0.0, 1e-4, 1e-2),
                 max_iter: int = 200, seed: int = 0) -> dict[str, float]:
    """A linear classifier without bias on frozen normalized features, cross-entropy,
    trained full-batch with L-BFGS for each weight decay; the one with the best validation
    accuracy is kept. Returns test accuracy and loss, the chosen weight decay, val accuracy.
    """
    torch.manual_seed(seed)
    xtr, xva, xte = (l2_normalize(z.float()) for z in (z_train, z_val, z_test))
    best = None
    for wd in weight_decays:
        w = torch.zeros(xtr.shape[1], num_classes, requires_grad=True)
        opt = torch.optim.LBFGS([w], lr=1.0, max_iter=max_iter, history_size=20,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-6)

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(xtr @ w, y_train) + 0.5 * wd * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            val_acc = float(((xva @ w).argmax(1) == y_val).float().mean())
            if best is None or val_acc > best[0]:
                best = (val_acc, wd, w.detach().clone())
    val_acc, wd, w = best
    with torch.no_grad():
        logits = xte @ w
        return {
            "linear_acc": float((logits.argmax(1) == y_test).float().mean()),
            "linear_loss": float(F.cross_entropy(logits.double(), y_test)),
            "linear_weight_decay": wd,
            "linear_val_acc": val_acc,
        }
