"""Evaluations of frozen features: the mean classifier, the held-out contrastive loss,
the linear probe (docs/PROTOCOL.md, "Evaluations of a frozen encoder").

Every function L2-normalizes the features it is given (``l2_normalize``: a zero row stays
zero), so b = 1 in every bound. Features are torch tensors (n, d); labels int64 (n,).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from surrogap.errors import UserError
from surrogap.losses import NORM_EPS, l2_normalize


def check_finite(z: torch.Tensor, what: str) -> None:
    """One clear line naming `what` where the first NaN or inf sits."""
    bad = ~torch.isfinite(z)
    if bad.any():
        row = int(bad.nonzero()[0, 0])
        raise UserError(
            f"{what} holds NaN or inf (first at row {row}); the encoder or its input is broken"
        )


def class_means(z: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """mu (C, d): per-class mean of the (already normalized) rows of z, never renormalized."""
    sums = torch.zeros(num_classes, z.shape[1], dtype=torch.float64, device=z.device)
    sums.index_add_(0, y, z.double())
    counts = torch.bincount(y, minlength=num_classes).to(sums)
    if (counts == 0).any():
        raise UserError(
            f"class {int((counts == 0).nonzero()[0, 0])} has no sample to build its mean from"
        )
    return (sums / counts[:, None]).to(z.dtype)


def mean_classifier(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_eval: torch.Tensor,
    y_eval: torch.Tensor,
    num_classes: int,
    chunk_elements: int = 2**24,
) -> dict[str, float]:
    """R_mu (softmax cross-entropy of logits z @ mu^T) and accuracy on (z_eval, y_eval),
    with class means from the normalized training features.

    Per-sample losses in the features' precision, summed in float64; logits are built in
    chunks of at most `chunk_elements` entries, so memory stays bounded for any C.
    """
    means = class_means(l2_normalize(z_train), y_train, num_classes)  # (C, d)
    loss_sum, correct = 0.0, 0
    chunk = max(1, chunk_elements // num_classes)
    for start in range(0, z_eval.shape[0], chunk):
        z = l2_normalize(z_eval[start : start + chunk])
        y = y_eval[start : start + chunk]
        logits = z @ means.T  # (n, C)
        loss_sum += float(F.cross_entropy(logits, y, reduction="none").double().sum())
        correct += int((logits.argmax(1) == y).sum())
    n = z_eval.shape[0]
    return {"supervised_loss": loss_sum / n, "mean_acc": correct / n}


def positive_partners(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each sample, the index of a uniformly random *other* sample of its class (n,)."""
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


# bytes of the three gathered (rows, d) float32 buffers of one chunk: small enough to stay in
# the last-level cache, so each block product reads its operands from cache (about 1.0 of the
# matmul peak instead of about 0.5 for chunks of hundreds of MB)
CHUNK_BYTES = 12 * 2**20
# features whose norms stay below this are normalized by scaling their float32 inner
# products (|dot| <= 1e36 < 3.4e38); larger ones are first rescaled row by row
RAW_NORM_LIMIT = 1e18


@dataclass(frozen=True)
class ContrastiveEstimate:
    mean: float  # nats
    se: float  # standard error over repeats (0 for one repeat)
    repeats: int


def _chunk_losses(
    z: torch.Tensor,
    inv_norm: torch.Tensor | None,
    rows: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    k: int,
    out: torch.Tensor,
    buffers: tuple[torch.Tensor, ...],
) -> None:
    """Losses of b whole blocks into `out` (b*(K+1),).

    rows: (anchor, shown negative view, positive) row indices of z, each (b*(K+1),).
    buffers: reused (cb*(K+1), d) x 3 and (cb, K+1, K+1) scratch tensors, cb >= b.
    """
    g = k + 1
    d = z.shape[1]
    b = rows[0].numel() // g
    a, v, p = (buf[: b * g] for buf in buffers[:3])
    blk = buffers[3][:b]
    for buf, idx in zip((a, v, p), rows, strict=True):
        torch.index_select(z, 0, idx, out=buf)  # (b*(K+1), d)
    pos = p.mul_(a).sum(1)  # (b*(K+1),) s(a_i, p_i)
    torch.bmm(a.view(b, g, d), v.view(b, g, d).transpose(1, 2), out=blk)  # (b, K+1, K+1)
    if inv_norm is not None:  # rows of z are raw: scale the inner products to unit norm
        ia, iv, ip = (inv_norm[idx] for idx in rows)
        pos.mul_(ia).mul_(ip)
        blk.mul_(ia.view(b, g, 1)).mul_(iv.view(b, 1, g))
    blk.diagonal(0, 1, 2).copy_(pos.view(b, g))  # own pair -> its positive logit
    torch.sub(torch.logsumexp(blk, -1).view(-1), pos, out=out)


def block_draw(n: int, k: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The random draw of one pairing's blocks: (slots, views).

    slots (nb (K + 1),): a random permutation of the n pairs cut into blocks of K + 1, the
    last partial block filled up with pairs drawn from the other blocks (negatives only);
    views (n,): per pair, True where it shows its positive view as a negative.
    """
    g = k + 1
    perm = torch.randperm(n, generator=generator)
    rest = n % g
    if rest:
        fill = perm[: n - rest][torch.randperm(n - rest, generator=generator)[: g - rest]]
        perm = torch.cat([perm, fill])  # the fill pairs are negatives only
    views = torch.rand(n, generator=generator) < 0.5
    return perm, views


def block_losses(
    z: torch.Tensor,
    partner: torch.Tensor,
    k: int,
    generator: torch.Generator | None,
    chunk_rows: int | None = None,
    inv_norm: torch.Tensor | None = None,
    workers: int | None = None,
    draw: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-anchor contrastive losses (n,) for one pairing with K block negatives each.

    z: (n, d) features, unit rows (or raw rows with inv_norm (n,) = 1 / max(||z_i||, eps));
    partner: (n,) the positive of each anchor. A random permutation (one randperm) cuts the
    n pairs into blocks of K + 1; in a block every anchor's negatives are the K other pairs,
    one view each (one view bit per pair), so each anchor sees K distinct negatives drawn
    uniformly without replacement from the other n - 1 pairs. The last, partial block is
    filled up (a second randperm) with pairs of the other blocks, which serve as negatives
    only (:func:`block_draw`; `draw` gives that draw explicitly). Computed with little memory traffic and no per-op thread barriers:

    - each chunk of blocks gathers its anchor, negative-view and positive rows straight
      from z into reused buffers small enough for the cache (no (n, d) copies);
    - the positive logit overwrites the masked diagonal of the block product instead of
      being concatenated to it (row i of a block holds the other K pairs and pair i);
    - the chunks are shared among `workers` threads (default: torch.get_num_threads()),
      each running single-threaded torch ops, so a busy core delays only its own chunk.
    """
    n, d = z.shape
    g = k + 1
    perm, views = block_draw(n, k, generator) if draw is None else draw
    shown = torch.where(views, partner, torch.arange(n))  # (n,) the row a pair shows as a negative
    neg_rows = shown[perm]  # (nb*(K+1),)
    pos_rows = partner[perm]
    nb = perm.numel() // g
    if chunk_rows is None:
        chunk_rows = CHUNK_BYTES // (3 * 4 * d)
    cb = max(1, min(nb, chunk_rows // g))  # blocks per chunk
    starts = list(range(0, nb, cb))
    out = torch.empty(nb * g, dtype=z.dtype)
    workers = max(1, min(workers or torch.get_num_threads(), len(starts)))

    def run(first: int) -> None:
        buffers = (
            *(torch.empty(cb * g, d, dtype=z.dtype) for _ in range(3)),
            torch.empty(cb, g, g, dtype=z.dtype),
        )
        for s in starts[first::workers]:
            sl = slice(s * g, min(s + cb, nb) * g)
            _chunk_losses(z, inv_norm, (perm[sl], neg_rows[sl], pos_rows[sl]), k, out[sl], buffers)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # chunks are parallel, ops inside them are not
    try:
        if workers == 1:
            run(0)
        else:
            with ThreadPoolExecutor(workers) as pool:
                for future in [pool.submit(run, w) for w in range(workers)]:
                    future.result()
    finally:
        torch.set_num_threads(threads)
    return out[:n]  # anchors come first; the fill rows of the last block are dropped


def _rescale_rows(z: torch.Tensor) -> torch.Tensor:
    """z with each row divided by its largest |entry| (zero rows stay zero): same directions."""
    return z / z.abs().amax(1, keepdim=True).clamp_min(torch.finfo(z.dtype).tiny)


def contrastive_loss_estimate(
    z: torch.Tensor,
    y: torch.Tensor,
    k: int,
    repeats: int = 10,
    seed: int = 0,
    chunk_rows: int | None = None,
    workers: int | None = None,
) -> ContrastiveEstimate:
    """Held-out contrastive loss of features z (n, d) with K negatives: mean and SE.

    Each repeat draws a fresh pairing (every sample an anchor, a random other sample of its
    class its positive) and fresh block negatives (:func:`block_losses`). Features are
    L2-normalized (x / max(||x||, eps), so b = 1) by scaling the inner products, so no
    normalized (n, d) copy is made. Returns the mean over repeats of the per-repeat average
    and its standard error. Needs n >= K + 1.
    """
    n = z.shape[0]
    if k < 1 or k > n - 1:
        raise UserError(f"k: got {k}, allowed: 1..{n - 1} (samples in the split - 1)")
    if repeats < 1:
        raise UserError(f"repeats: got {repeats}, allowed: an integer >= 1")
    zf = z.float().contiguous()
    norm = torch.linalg.vector_norm(zf, dim=1)  # (n,)
    if not bool((norm <= RAW_NORM_LIMIT).all()):
        # raw inner products (or the norms themselves) could overflow float32: rescale the
        # rows by their largest entry first, which leaves the normalized rows unchanged
        zf = _rescale_rows(zf)
        norm = torch.linalg.vector_norm(zf, dim=1)
    inv_norm = 1.0 / norm.clamp_min(NORM_EPS)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(repeats):
        partner = positive_partners(y, gen)
        losses = block_losses(zf, partner, k, gen, chunk_rows, inv_norm, workers)
        values.append(float(losses.double().mean()))
    mean = math.fsum(values) / repeats
    se = float(np.std(values, ddof=1) / math.sqrt(repeats)) if repeats > 1 else 0.0
    return ContrastiveEstimate(mean=mean, se=se, repeats=repeats)


def linear_probe(
    z_train: torch.Tensor,
    y_train: torch.Tensor,
    z_val: torch.Tensor,
    y_val: torch.Tensor,
    z_test: torch.Tensor,
    y_test: torch.Tensor,
    num_classes: int,
    weight_decays: tuple[float, ...] = (0.0, 1e-4, 1e-2),
    max_iter: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """A linear classifier without bias on frozen normalized features, cross-entropy,
    trained full-batch with L-BFGS for each weight decay; the one with the best validation
    accuracy is kept. Returns test accuracy and loss, the chosen weight decay, val accuracy.
    """
    torch.manual_seed(seed)
    xtr, xva, xte = (l2_normalize(z.float()) for z in (z_train, z_val, z_test))
    best = None
    for wd in weight_decays:
        w = torch.zeros(xtr.shape[1], num_classes, requires_grad=True)
        opt = torch.optim.LBFGS(
            [w],
            lr=1.0,
            max_iter=max_iter,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-6,
        )

        def closure(opt=opt, w=w, wd=wd):
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
