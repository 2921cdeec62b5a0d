"""The calculator's records: every bound of :mod:`surrogap.theory.bounds` at each (K, loss)
as one flat dict per row (``surrogap bounds``, its ``--json``, and ``surrogap evaluate``),
with the reason of every value that is no finite number."""

from __future__ import annotations

import math

import numpy as np

from surrogap.core.errors import UserError
from surrogap.theory.bounds import (
    _as_b,
    _as_k,
    _class_setting,
    bounds_at,
    lower_gap,
    optimal_contrastive_loss,
    optimal_supervised_loss,
    upper_gap,
)

# why a record field is None (JSON null): docs in README ("The calculator")
UNDEFINED = "undefined"  # an earlier bound where K + 1 < C
UNIFORM_ONLY = "uniform prior only"  # an earlier bound or ideal value with a skewed prior
OVERFLOW = "inf"  # the value is above the largest float64 (about 1.8e308)
NEGATIVE_OVERFLOW = "-inf"  # the value is below minus the largest float64


def _field(value, nan_reason: str) -> tuple[float | None, str | None]:
    """A record value and, where it is None, why."""
    if value is None:
        return None, nan_reason
    value = float(value)
    if math.isnan(value):
        return None, nan_reason
    if math.isinf(value):
        return None, OVERFLOW if value > 0 else NEGATIVE_OVERFLOW
    return value, None


def bounds_records(
    k,
    classes: int | None,
    loss=None,
    prior=None,
    b: float = 1.0,
    allow_below_ideal: bool = False,
) -> list[dict]:
    """One record per K: the gaps, and the bounds at `loss` (or the ideal values without it).

    Every value is a finite float or None; `why_null` maps each None field to its reason
    (the constants above; "inf" e.g. for Delta_U at b > 1.3e154). The records are valid JSON
    as they are.

    With a loss, `below_ideal` says whether it lies below R_cont*(K, C, b), the lowest
    contrastive loss any encoder with feature norm <= b reaches (docs/THEORY.md, section 4;
    None under a skewed prior, "uniform prior only"). Such a loss is a UserError naming K,
    the loss and R_cont*, unless `allow_below_ideal` (then the records are marked).
    """
    ks = _as_k(k).reshape(-1)
    c, p = _class_setting(classes, prior)
    uniform = p is None
    b_value = _as_b(b)
    ideal = np.atleast_1d(optimal_contrastive_loss(ks, c, b)) if uniform else None
    records = []
    if loss is None:
        lower = np.atleast_1d(lower_gap(ks, c, p, b))
        upper = np.atleast_1d(upper_gap(ks, c, p, b))
        ideal_mu = optimal_supervised_loss(c, b) if uniform else None
        for i, kk in enumerate(ks):
            values = {
                "lower_gap": float(lower[i]),
                "upper_gap": float(upper[i]),
                "optimal_contrastive_loss": None if ideal is None else float(ideal[i]),
                "optimal_supervised_loss": ideal_mu,
            }
            records.append(_record(int(kk), c, b_value, None, values, UNIFORM_ONLY))
        return records
    losses = np.atleast_1d(np.asarray(loss, dtype=np.float64))
    if losses.size not in (1, ks.size):
        raise UserError(f"loss takes one value or one per k value ({ks.size}), got {losses.size}")
    losses = np.broadcast_to(losses, ks.shape)
    at = bounds_at(losses, ks, c, p, b)
    for i, kk in enumerate(ks):
        values = {name: float(v[i]) for name, v in at.items()}
        reason = UNDEFINED if uniform else UNIFORM_ONLY
        rec = _record(int(kk), c, b_value, float(losses[i]), values, reason)
        if ideal is None:
            rec["why_null"].update(below_ideal=UNIFORM_ONLY, optimal_contrastive_loss=UNIFORM_ONLY)
        else:
            rec["below_ideal"] = is_below_ideal(float(losses[i]), float(ideal[i]))
            rec["optimal_contrastive_loss"] = float(ideal[i])
        records.append(rec)
    if not allow_below_ideal:
        check_reachable(records, "or allow_below_ideal=True for the records, marked below_ideal")
    return records


# a loss within this relative distance of R_cont* is the ideal encoder's (rounding only)
IDEAL_RTOL = 1e-9


def is_below_ideal(loss: float, ideal: float) -> bool:
    """loss < R_cont*(K, C, b): no encoder with feature norm <= b reaches it."""
    return loss < ideal * (1.0 - IDEAL_RTOL)


def check_reachable(records: list[dict], hint: str) -> None:
    """A UserError naming the first record whose loss lies below R_cont*(K, C, b)."""
    for rec in records:
        if rec.get("below_ideal"):
            k, c, b, ideal = rec["k"], rec["classes"], rec["b"], rec["optimal_contrastive_loss"]
            raise UserError(
                f"loss {rec['loss']:g} at K = {k} is below R_cont* = {ideal:.6g} (C = {c}, "
                f"b = {b:g}), the lowest contrastive loss any encoder with feature norm <= b "
                f"reaches at this K; allowed: a loss >= {ideal:.6g}, {hint}"
            )


def _record(k: int, c: int, b: float, loss, values: dict, nan_reason: str) -> dict:
    rec: dict = {"k": k, "classes": c, "b": b}
    if loss is not None:
        rec["loss"] = loss
        rec["below_ideal"] = None
        rec["optimal_contrastive_loss"] = None
    why: dict[str, str] = {}
    for name, value in values.items():
        rec[name], reason = _field(value, nan_reason)
        if reason is not None:
            why[name] = reason
    rec["why_null"] = why
    return rec
