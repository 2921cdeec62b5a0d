"""Evaluations of frozen features: the mean classifier, the held-out contrastive loss,
the linear probe (docs/PROTOCOL.md, "Estimators on frozen features").

NumPy and SciPy only, every feature L2-normalized (b = 1): docs/ARCHITECTURE.md,
"Estimators". Features are arrays (n, d) (anything ``np.asarray`` takes, CPU tensors
included); labels int (n,).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from surrogap.core.errors import UserError

NORM_EPS = 1e-12  # x / max(||x||, eps), here and in surrogap.training.losses


def _labels(y) -> np.ndarray:
    return np.asarray(y).astype(np.int64, copy=False).reshape(-1)


def l2_normalize(z, eps: float = NORM_EPS) -> np.ndarray:
    """z / max(||z||, eps) row-wise (in z's float precision): a zero row stays zero."""
    z = np.asarray(z)
    norm = np.sqrt(np.einsum("ij,ij->i", z, z))
    return z / np.maximum(norm, eps)[:, None].astype(z.dtype, copy=False)


def check_finite(z, what: str) -> None:
    """One clear line naming `what` where the first NaN or inf sits."""
    bad = ~np.isfinite(np.asarray(z))
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise UserError(
            f"{what} holds NaN or inf (first at row {row}); the encoder or its input is broken"
        )


def class_means(z, y, num_classes: int) -> np.ndarray:
    """mu (C, d): per-class mean of the (already normalized) rows of z, never renormalized
    (accumulated in float64, returned in z's precision)."""
    z, y = np.asarray(z), _labels(y)
    sums = np.zeros((num_classes, z.shape[1]), dtype=np.float64)
    np.add.at(sums, y, z.astype(np.float64, copy=False))
    counts = np.bincount(y, minlength=num_classes)
    if (counts == 0).any():
        raise UserError(f"class {int(np.argmax(counts == 0))} has no sample to build its mean from")
    return (sums / counts[:, None]).astype(z.dtype, copy=False)


def _softmax_ce(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row softmax cross-entropy (n,) of logits (n, C) against labels y (n,)."""
    top = logits.max(1)
    lse = top + np.log(np.exp(logits - top[:, None]).sum(1))
    return lse - logits[np.arange(y.size), y]


def mean_classifier_points(
    z_train, y_train, z_eval, y_eval, num_classes: int, chunk_elements: int = 2**24
) -> tuple[np.ndarray, np.ndarray]:
    """Per-point mean-classifier cross-entropy (float64, (n,)) and correctness (bool, (n,))
    of logits z @ mu^T on (z_eval, y_eval), class means from the normalized training
    features. Logits are built in float64 chunks of at most `chunk_elements` entries, so
    memory stays bounded for any C."""
    means = class_means(l2_normalize(z_train), y_train, num_classes).astype(np.float64)
    z_eval, y_eval = np.asarray(z_eval), _labels(y_eval)
    n = z_eval.shape[0]
    loss = np.empty(n, dtype=np.float64)
    correct = np.empty(n, dtype=bool)
    chunk = max(1, chunk_elements // num_classes)
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        z = l2_normalize(z_eval[sl].astype(np.float64, copy=False))
        logits = z @ means.T  # (m, C)
        loss[sl] = _softmax_ce(logits, y_eval[sl])
        correct[sl] = logits.argmax(1) == y_eval[sl]
    return loss, correct


def mean_classifier(
    z_train, y_train, z_eval, y_eval, num_classes: int, chunk_elements: int = 2**24
) -> dict[str, float]:
    """R_mu (softmax cross-entropy of logits z @ mu^T) and accuracy on (z_eval, y_eval):
    the means of :func:`mean_classifier_points`."""
    loss, correct = mean_classifier_points(
        z_train, y_train, z_eval, y_eval, num_classes, chunk_elements
    )
    n = loss.size
    return {"supervised_loss": math.fsum(loss) / n, "mean_acc": int(correct.sum()) / n}


def positive_partners(y, rng: np.random.Generator) -> np.ndarray:
    """For each sample, the index of a uniformly random *other* sample of its class (n,)."""
    y = _labels(y)
    order = np.argsort(y, kind="stable")
    sorted_y = y[order]
    counts = np.bincount(sorted_y)
    if (counts == 1).any():
        raise UserError(
            f"class {int(np.argmax(counts == 1))} has a single sample: no positive pair is possible"
        )
    starts = np.cumsum(counts) - counts  # (C,)
    start = starts[sorted_y]  # (n,)
    size = counts[sorted_y]
    rank = np.arange(y.size) - start  # position of each sample inside its class
    r = np.minimum((rng.random(y.size) * (size - 1)).astype(np.int64), size - 2)
    r = r + (r >= rank)  # skip the sample itself
    partner = np.empty(y.size, dtype=np.int64)
    partner[order] = order[start + r]
    return partner


# bytes of the three gathered (rows, d) float32 buffers of one chunk: small enough to stay in
# the last-level cache, so each block product reads its operands from cache
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
    z: np.ndarray,
    inv_norm: np.ndarray | None,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    k: int,
    out: np.ndarray,
    buffers: tuple[np.ndarray, ...],
) -> None:
    """Losses of b whole blocks into `out` (b*(K+1),).

    rows: (anchor, shown negative view, positive) row indices of z, each (b*(K+1),).
    buffers: reused (cb*(K+1), d) x 3 and (cb, K+1, K+1) scratch arrays, cb >= b.
    """
    g = k + 1
    d = z.shape[1]
    b = rows[0].size // g
    a, v, p = (buf[: b * g] for buf in buffers[:3])
    blk = buffers[3][:b]
    for buf, idx in zip((a, v, p), rows, strict=True):
        np.take(z, idx, axis=0, out=buf)  # (b*(K+1), d)
    pos = np.einsum("ij,ij->i", a, p)  # (b*(K+1),) s(a_i, p_i)
    np.matmul(a.reshape(b, g, d), v.reshape(b, g, d).transpose(0, 2, 1), out=blk)
    if inv_norm is not None:  # rows of z are raw: scale the inner products to unit norm
        ia, iv, ip = (inv_norm[idx] for idx in rows)
        pos *= ia * ip
        blk *= ia.reshape(b, g, 1)
        blk *= iv.reshape(b, 1, g)
    flat = blk.reshape(b, g * g)
    flat[:, :: g + 1] = pos.reshape(b, g)  # own pair -> its positive logit
    top = blk.max(2)  # (b, K+1)
    blk -= top[:, :, None]
    np.exp(blk, out=blk)
    out[:] = (np.log(blk.sum(2)) + top).reshape(-1) - pos


def block_draw(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The random draw of one pairing's blocks: (slots, views).

    slots (nb (K + 1),): a random permutation of the n pairs cut into blocks of K + 1, the
    last partial block filled up with pairs drawn from the other blocks (negatives only);
    views (n,): per pair, True where it shows its positive view as a negative.
    """
    g = k + 1
    perm = rng.permutation(n)
    rest = n % g
    if rest:
        fill = perm[: n - rest][rng.permutation(n - rest)[: g - rest]]
        perm = np.concatenate([perm, fill])  # the fill pairs are negatives only
    views = rng.random(n) < 0.5
    return perm, views


def block_losses(
    z: np.ndarray,
    partner: np.ndarray,
    k: int,
    rng: np.random.Generator | None,
    chunk_rows: int | None = None,
    inv_norm: np.ndarray | None = None,
    workers: int | None = None,
    draw: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Per-anchor contrastive losses (n,) for one pairing with K block negatives each.

    z: (n, d) float32 features, unit rows (or raw rows with inv_norm (n,) =
    1 / max(||z_i||, eps)); partner: (n,) the positive of each anchor. A random permutation
    cuts the n pairs into blocks of K + 1; in a block every anchor's negatives are the K
    other pairs, one view each (one view bit per pair), so each anchor sees K distinct
    negatives drawn uniformly without replacement from the other n - 1 pairs. The last,
    partial block is filled up (a second permutation) with pairs of the other blocks, which
    serve as negatives only (:func:`block_draw`; `draw` gives that draw explicitly).
    Computed with little memory traffic:

    - each chunk of blocks gathers its anchor, negative-view and positive rows straight
      from z into reused buffers small enough for the cache (no (n, d) copies);
    - the positive logit overwrites the masked diagonal of the block product instead of
      being concatenated to it (row i of a block holds the other K pairs and pair i);
    - the chunks are shared among `workers` threads (default: the usable cores), each
      running its block products with a single-threaded BLAS, so a busy core delays only
      its own chunk (NumPy releases the GIL in BLAS, gathers and ufuncs).
    """
    n, d = z.shape
    g = k + 1
    perm, views = block_draw(n, k, rng) if draw is None else draw
    shown = np.where(views, partner, np.arange(n))  # the row a pair shows as a negative
    neg_rows = shown[perm]  # (nb*(K+1),)
    pos_rows = partner[perm]
    nb = perm.size // g
    if chunk_rows is None:
        chunk_rows = CHUNK_BYTES // (3 * 4 * d)
    cb = max(1, min(nb, chunk_rows // g))  # blocks per chunk
    starts = list(range(0, nb, cb))
    out = np.empty(nb * g, dtype=z.dtype)
    workers = max(1, min(workers or _cores(), len(starts)))

    def run(first: int) -> None:
        buffers = (
            *(np.empty((cb * g, d), dtype=z.dtype) for _ in range(3)),
            np.empty((cb, g, g), dtype=z.dtype),
        )
        for s in starts[first::workers]:
            sl = slice(s * g, min(s + cb, nb) * g)
            _chunk_losses(z, inv_norm, (perm[sl], neg_rows[sl], pos_rows[sl]), k, out[sl], buffers)

    if workers == 1:
        run(0)
    else:
        with _single_threaded_blas(), ThreadPoolExecutor(workers) as pool:
            for future in [pool.submit(run, w) for w in range(workers)]:
                future.result()
    return out[:n]  # anchors come first; the fill rows of the last block are dropped


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _single_threaded_blas():
    """BLAS limited to one thread while the chunks run in parallel (threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def rescale_rows(z: np.ndarray) -> np.ndarray:
    """z with each row divided by its largest |entry| (zero rows stay zero): same directions."""
    top = np.abs(z).max(1, keepdims=True)
    return z / np.maximum(top, np.finfo(z.dtype).tiny)


def contrastive_loss_estimate(
    z,
    y,
    k: int,
    repeats: int = 10,
    seed: int = 0,
    chunk_rows: int | None = None,
    workers: int | None = None,
) -> ContrastiveEstimate:
    """Held-out contrastive loss of features z (n, d) with K negatives: mean and SE.

    Each repeat draws a fresh pairing (every sample an anchor, a random other sample of its
    class its positive) and fresh block negatives (:func:`block_losses`), all from one
    ``np.random.default_rng(seed)``. Features are L2-normalized (x / max(||x||, eps), so
    b = 1) by scaling the float32 inner products, so no normalized (n, d) copy is made.
    Returns the mean over repeats of the per-repeat average and its standard error. Needs
    n >= K + 1.
    """
    z, y = np.asarray(z), _labels(y)
    n = z.shape[0]
    if k < 1 or k > n - 1:
        raise UserError(f"k: got {k}, allowed: 1..{n - 1} (samples in the split - 1)")
    if repeats < 1:
        raise UserError(f"repeats: got {repeats}, allowed: an integer >= 1")
    zf = np.ascontiguousarray(z, dtype=np.float32)
    norm = np.sqrt(np.einsum("ij,ij->i", zf, zf, dtype=np.float64))  # (n,)
    if not bool((norm <= RAW_NORM_LIMIT).all()):
        # raw inner products (or the norms themselves) could overflow float32: rescale the
        # rows by their largest entry first, which leaves the normalized rows unchanged
        zf = np.ascontiguousarray(rescale_rows(z.astype(np.float64)), dtype=np.float32)
        norm = np.sqrt(np.einsum("ij,ij->i", zf, zf, dtype=np.float64))
    inv_norm = (1.0 / np.maximum(norm, NORM_EPS)).astype(np.float32)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(repeats):
        partner = positive_partners(y, rng)
        losses = block_losses(zf, partner, k, rng, chunk_rows, inv_norm, workers)
        values.append(float(losses.astype(np.float64).mean()))
    mean = math.fsum(values) / repeats
    se = float(np.std(values, ddof=1) / math.sqrt(repeats)) if repeats > 1 else 0.0
    return ContrastiveEstimate(mean=mean, se=se, repeats=repeats)


def _probe_objective(w_flat: np.ndarray, x: np.ndarray, onehot: np.ndarray, wd: float):
    """Mean softmax cross-entropy of x @ W plus wd/2 ||W||^2, and its gradient (flat)."""
    w = w_flat.reshape(x.shape[1], onehot.shape[1])
    logits = x @ w
    top = logits.max(1, keepdims=True)
    e = np.exp(logits - top)
    s = e.sum(1, keepdims=True)
    n = x.shape[0]
    loss = float((np.log(s) + top).sum() - (logits * onehot).sum()) / n
    loss += 0.5 * wd * float((w * w).sum())
    grad = x.T @ (e / s - onehot) / n + wd * w
    return loss, grad.reshape(-1)


def linear_probe_points(
    z_train,
    y_train,
    z_val,
    y_val,
    z_test,
    y_test,
    num_classes: int,
    weight_decays: tuple[float, ...] = (0.0, 1e-4, 1e-2),
    max_iter: int = 200,
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """A linear classifier without bias on frozen normalized features, mean cross-entropy
    plus wd/2 ||W||^2, trained full-batch in float64 from W = 0 with SciPy's L-BFGS
    (at most `max_iter` iterations and 1.25 `max_iter` evaluations, stopping when the
    largest gradient entry is <= 1e-6) for each weight decay of the grid; the one kept has
    the lowest validation cross-entropy (ties: docs/ARCHITECTURE.md, "Estimators").
    Deterministic (no randomness). Returns the summary (test accuracy and loss, the chosen
    weight decay, its validation accuracy and loss) and the per-test-point cross-entropy
    (float64) and correctness (bool).
    """
    from scipy.optimize import minimize

    xtr, xva, xte = (
        l2_normalize(np.asarray(z, dtype=np.float64)) for z in (z_train, z_val, z_test)
    )
    ytr, yva, yte = _labels(y_train), _labels(y_val), _labels(y_test)
    onehot = np.zeros((ytr.size, num_classes))
    onehot[np.arange(ytr.size), ytr] = 1.0
    best = None
    for wd in weight_decays:
        res = minimize(
            _probe_objective,
            np.zeros(xtr.shape[1] * num_classes),
            args=(xtr, onehot, float(wd)),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "maxfun": max_iter * 5 // 4, "maxcor": 20, "gtol": 1e-6},
        )
        w = res.x.reshape(xtr.shape[1], num_classes)
        logits = xva @ w
        val_loss = float(_softmax_ce(logits, yva).mean())
        val_acc = float((logits.argmax(1) == yva).mean())
        key = (val_loss, -val_acc)
        if best is None or key < best[0]:
            best = (key, float(wd), w, val_loss, val_acc)
    _, wd, w, val_loss, val_acc = best
    logits = xte @ w
    loss = _softmax_ce(logits, yte)
    correct = logits.argmax(1) == yte
    summary = {
        "linear_acc": float(correct.mean()),
        "linear_loss": math.fsum(loss) / loss.size,
        "linear_weight_decay": wd,
        "linear_val_acc": val_acc,
        "linear_val_loss": val_loss,
    }
    return summary, loss, correct
