"""The paper's synthetic 2-D datasets (docs/PROTOCOL.md), generated from a seed.

- ``circle``: class c has points at radius (c + 1) / 2 with a uniform angle.
- ``norm``: one set of Gaussian points around (0, C + 1), copied and rotated by
  360 c / C degrees for class c.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from surrogap.core.config import model, spec
from surrogap.core.prepared import Prepared
from surrogap.data import SplitConfig, stratified_split


@model(kw_only=True)
class SyntheticConfig(SplitConfig):
    kind: Literal["circle", "norm"] = spec()
    classes: int = spec(100, ge=2)
    per_class: int = spec(1000, ge=4)
    std: float = spec(1.0, gt=0, allowed="a number > 0 (norm: std of the Gaussian)")

    def memory(self) -> tuple[int, str]:
        """About the peak bytes of one build (the points, their float64 intermediates,
        labels and split copies: under 100 bytes a point), and the keys that set them."""
        n = self.classes * self.per_class
        return 100 * n, f"classes x per_class = {self.classes} x {self.per_class} points"


def circle_points(
    classes: int, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): x (C * per_class, 2) float32 on circles of radius (c + 1) / 2."""
    y = np.repeat(np.arange(classes), per_class)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=y.size)
    radius = (y + 1) / 2.0
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return x.astype(np.float32), y.astype(np.int64)


def norm_points(
    classes: int, per_class: int, std: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): one Gaussian cloud around (0, C + 1), rotated by 360 c / C degrees for class c."""
    base = rng.normal(0.0, std, size=(per_class, 2)) + np.array([0.0, classes + 1.0])
    theta = 2.0 * np.pi * np.arange(classes) / classes  # (C,)
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (C, 2, 2)
    x = np.einsum("cij,nj->cni", rot, base).reshape(-1, 2)
    y = np.repeat(np.arange(classes), per_class)
    return x.astype(np.float32), y.astype(np.int64)


def build(cfg: SyntheticConfig, root: Path) -> Prepared:
    rng = np.random.default_rng(cfg.seed)
    if cfg.kind == "circle":
        x, y = circle_points(cfg.classes, cfg.per_class, rng)
    else:
        x, y = norm_points(cfg.classes, cfg.per_class, cfg.std, rng)
    parts = stratified_split(y, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    splits = {s: {"x": x[idx], "y": y[idx]} for s, idx in parts.items()}
    return Prepared(splits=splits, num_classes=cfg.classes, modality="dense", input_shape=(2,))


KINDS = {"circle": (SyntheticConfig, build), "norm": (SyntheticConfig, build)}
