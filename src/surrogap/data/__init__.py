"""Dataset sources: one module per *kind* exposing ``KINDS = {kind: (ConfigClass, build)}``;
``build(cfg, root) -> Prepared`` returns the three splits (the registry and the dispatch are
in :mod:`surrogap.data.kinds`, which only the `prepare` stage reaches). The on-disk layout
they are written in is :mod:`surrogap.core.prepared`; this module holds the helpers the
sources share.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from surrogap.core.config import model, spec
from surrogap.core.errors import UserError
from surrogap.core.prepared import SPLITS


def stratified_split(
    y: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    names: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Seeded stratified split of indices into train/val/test, every class in every split
    (`names`: what a message calls class c besides its number, e.g. its file)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = idx.size
        n_test = round(n * test_fraction)
        n_val = round(n * val_fraction)
        if (
            n - n_val - n_test < 2
            or (val_fraction > 0 and n_val < 2)
            or (test_fraction > 0 and n_test < 2)
        ):
            named = f" ({names[int(c)]})" if names else ""
            raise UserError(
                f"class {int(c)}{named} has {n} samples: too few for val_fraction={val_fraction} and "
                f"test_fraction={test_fraction} (each split needs at least 2 per class)"
            )
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return {s: np.sort(np.concatenate(p)) for s, p in parts.items()}


def subsample_classes(
    y: np.ndarray, classes: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep a seeded random subset of `classes` classes and relabel them 0..C-1.

    Returns (kept sample indices, kept original class ids in new-label order).
    """
    present = np.unique(y)
    if classes is None:
        return np.arange(y.size), present
    if classes < 2 or classes > present.size:
        raise UserError(
            f"data.classes: got {classes}, allowed: 2..{present.size} (the classes available)"
        )
    rng = np.random.default_rng(seed)
    kept = np.sort(rng.choice(present, size=classes, replace=False))
    return np.flatnonzero(np.isin(y, kept)), kept


def relabel(y: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Map original class ids in `kept` (sorted, as :func:`subsample_classes` returns them)
    to 0..len(kept)-1."""
    return np.searchsorted(kept, y).astype(np.int64)


def check_fractions(val_fraction: float, test_fraction: float, where: str) -> None:
    """The validation and test fractions leave at least 10% for training."""
    if val_fraction + test_fraction >= 0.9:
        raise UserError(
            f"{where}: val_fraction + test_fraction = {val_fraction + test_fraction:g}, "
            "allowed: below 0.9 (the rest is the training split)"
        )


@model(kw_only=True)
class SplitConfig:
    """The fields every generated or sub-sampled source's data block shares: the split
    fractions, the class prior the bounds use, and the data seed."""

    val_fraction: float = spec(0.2, gt=0, lt=1)
    test_fraction: float = spec(0.2, gt=0, lt=1)
    prior: Literal["uniform", "empirical"] = spec("uniform")
    seed: int = spec(0, ge=0)

    def validate(self, where: str) -> None:
        check_fractions(self.val_fraction, self.test_fraction, where)
