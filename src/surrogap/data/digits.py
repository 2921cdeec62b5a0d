"""``digits``: the 8x8 handwritten digits that ship inside scikit-learn (offline images).

1797 grey-scale images of the ten digits (about 180 per class), pixel values 0..16
scaled to [0, 1]; ``x`` is float32 (n, 1, 8, 8). A seeded stratified split into
train/val/test, and optional seeded class sub-sampling (relabelled 0..C-1, the digit
names kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from surrogap.core.config import model, spec
from surrogap.core.prepared import Prepared
from surrogap.data import SplitConfig, relabel, stratified_split, subsample_classes


@model(kw_only=True)
class DigitsConfig(SplitConfig):
    kind: Literal["digits"] = spec("digits")
    classes: int | None = spec(None, ge=2, allowed="null (all 10) or an integer in 2..10")


def build(cfg: DigitsConfig, root: Path) -> Prepared:
    from sklearn.datasets import load_digits  # ships its data: no download

    bunch = load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0))[:, None]  # (n, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    keep, kept = subsample_classes(y, cfg.classes, cfg.seed)
    x, y = x[keep], relabel(y[keep], kept)
    parts = stratified_split(y, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    splits = {s: {"x": x[idx], "y": y[idx]} for s, idx in parts.items()}
    return Prepared(
        splits=splits,
        num_classes=int(kept.size),
        modality="dense",
        input_shape=(1, 8, 8),
        class_names=[str(int(c)) for c in kept],
    )


KINDS = {"digits": (DigitsConfig, build)}
