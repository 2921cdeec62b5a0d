"""When contrastive pre-training stops: a convergence rule on the validation contrastive
loss, with ``epochs`` as the cap.

The rule reads the trajectory's ``val_contrastive_loss``, one value per evaluation (epoch 0,
every ``eval_every`` epochs, and the cap): each is the project's estimator on the validation
split with one pairing drawn from the run's seed, the same pairing at every evaluation, so
consecutive values differ only by the encoder. Patience counts evaluations, not epochs.

With ``stop_patience`` p and ``stop_min_delta`` d, after evaluation i (i >= p):

    flatness_i = (best_before - best_last) / best_before
    best_before = min of the values of evaluations 0..i-p
    best_last   = min of the values of the last p evaluations (i-p+1..i)

is the relative improvement the last p evaluations made on the best value before them
(0 or below: none at all). Training stops after evaluation i once flatness_i <= d
("converged"), and otherwise at the evaluation of epoch ``epochs`` ("cap"; a run whose last
evaluation also meets the rule is "converged"). With ``stop_patience: null`` the rule is off:
every run trains ``epochs`` epochs and its flatness is null.

The decision is a function of the trajectory alone, which the checkpoint holds, so a run
resumed from a checkpoint stops where the uninterrupted run stops; the decision itself is
kept in the checkpoint too (a run that stopped is not trained further when started again).
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
