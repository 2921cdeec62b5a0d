"""When contrastive pre-training stops: a convergence rule on the validation contrastive
loss, with ``epochs`` as the cap (docs/PROTOCOL.md, "Pre-training: pairs, negatives and the
loss", its Stopping item).

With ``stop_patience`` p and ``stop_min_delta`` d, after evaluation i (i >= p; patience
counts evaluations, not epochs):

    flatness_i = (best_before - best_last) / best_before
    best_before = min of the values of evaluations 0..i-p
    best_last   = min of the values of the last p evaluations (i-p+1..i)

Training stops after evaluation i once flatness_i <= d ("converged"), and otherwise at the
evaluation of epoch ``epochs`` ("cap"). The decision is a function of the trajectory alone,
which the checkpoint holds, so a resumed run stops where the uninterrupted run stops.
"""

from __future__ import annotations

from collections.abc import Sequence

CONVERGED, CAP = "converged", "cap"


def flatness(losses: Sequence[float], patience: int) -> float | None:
    """The relative improvement of the best of the last `patience` values over the best of
    those before them; None with fewer than patience + 1 values."""
    if patience < 1 or len(losses) < patience + 1:
        return None
    before = min(losses[:-patience])
    last = min(losses[-patience:])
    if before == 0:  # the loss is >= 0: nothing below 0 to improve to
        return 0.0
    return float((before - last) / abs(before))


def decide(
    losses: Sequence[float], epoch: int, epochs: int, patience: int | None, min_delta: float
) -> dict | None:
    """After the evaluation of `epoch` (`losses`: every evaluation so far, this one last):
    the stop record {"epoch", "reason", "flatness"}, or None to train on.

    Plain data (it goes into the checkpoint, loaded with weights_only=True)."""
    flat = None if patience is None else flatness(losses, patience)
    if flat is not None and flat <= min_delta:
        reason = (
            f"{CONVERGED}: val contrastive loss improved {flat:.3g} <= {min_delta:g} (relative) "
            f"over the last {patience} evaluations"
        )
    elif epoch >= epochs:
        reason = f"{CAP}: reached epochs ({epochs})"
    else:
        return None
    return {"epoch": int(epoch), "reason": reason, "flatness": flat}
