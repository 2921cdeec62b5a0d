"""Optional per-view image augmentation (the SimCLR recipe of the paper's CIFAR runs).

``build_augment(meta)`` returns a callable for image datasets whose meta.json says
``augment: true``, else None. The callable maps a batch x (B, 3, H, W), normalized as the
dataset stored it, to an augmented batch of the same shape, dtype and device; each
sample gets its own random draw. The pipeline (torchvision.transforms.v2, SimCLR's
colour strength 0.5 as in the paper's code) works on pixels in [0, 1], so the batch is
un-normalized with meta's ``normalization`` first and normalized again after:

- RandomResizedCrop to (H, W), scale (0.08, 1)
- RandomHorizontalFlip, p 0.5
- ColorJitter(brightness 0.4, contrast 0.4, saturation 0.4, hue 0.1), applied with p 0.8
- RandomGrayscale, p 0.2

The draws come from torch's global generator, so a run is reproducible given
``torch.manual_seed``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from surrogap.core.errors import UserError

STRENGTH = 0.5


class Augment:
    """Callable: x (B, 3, H, W) -> augmented x (B, 3, H, W); see the module docstring."""

    def __init__(self, height: int, width: int, mean: list[float], std: list[float]):
        from surrogap.models.vision import import_torchvision

        v2 = import_torchvision("torchvision.transforms.v2")  # lazily: slow to import

        s = STRENGTH
        self.transform = v2.Compose(
            [
                v2.RandomResizedCrop((height, width), scale=(0.08, 1.0), antialias=True),
                v2.RandomHorizontalFlip(p=0.5),
                v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
                v2.RandomGrayscale(p=0.2),
            ]
        )
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)  # (1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"augment expects a batch (B, 3, H, W), got {tuple(x.shape)}")
        mean, std = self.mean.to(x.device, x.dtype), self.std.to(x.device, x.dtype)
        pixels = (x * std + mean).clamp_(0.0, 1.0)  # (B, 3, H, W) in [0, 1]
        out = torch.stack([self.transform(img) for img in pixels])  # one draw per sample
        return (out - mean) / std

    def __repr__(self) -> str:
        return f"Augment({self.transform})"


def build_augment(meta: dict) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The per-view augmentation asked for by the dataset's meta.json, or None."""
    if not meta.get("augment"):
        return None
    shape = list(meta.get("input_shape") or [])
    if meta.get("modality") != "dense" or len(shape) != 3 or shape[0] != 3:
        raise UserError(
            f"dataset {meta.get('dataset')!r}: augment is for RGB images (input_shape [3, H, W]), "
            f"got modality {meta.get('modality')} and input_shape {shape}"
        )
    norm = meta.get("normalization") or {}
    mean = list(norm.get("mean", [0.0, 0.0, 0.0]))
    std = list(norm.get("std", [1.0, 1.0, 1.0]))
    return Augment(int(shape[1]), int(shape[2]), mean, std)
