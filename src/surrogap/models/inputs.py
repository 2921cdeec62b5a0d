"""A prepared dataset served to encoders: each split's arrays as tensors, and the positional
inputs of a batch of samples (dense: ``(x,)``; text: ``(tokens, offsets)``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from surrogap.core.prepared import read_splits


class Split:
    """One split of a prepared dataset, served as model inputs by index."""

    def __init__(self, arrays: dict[str, np.ndarray], modality: str):
        self.modality = modality
        self.y = torch.as_tensor(arrays["y"], dtype=torch.long)
        if modality == "dense":
            self.x = torch.as_tensor(arrays["x"], dtype=torch.float32)
        else:
            self.tokens = torch.as_tensor(arrays["tokens"], dtype=torch.long)
            self.offsets = torch.as_tensor(arrays["offsets"], dtype=torch.long)
            ends = torch.cat([self.offsets[1:], torch.tensor([self.tokens.numel()])])
            self.lengths = ends - self.offsets

    def __len__(self) -> int:
        return int(self.y.numel())

    def inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The encoder's positional inputs for samples `idx` (dense: (x,); text: (tokens, offsets))."""
        if self.modality == "dense":
            return (self.x[idx],)
        lengths = self.lengths[idx]
        starts = self.offsets[idx]
        # flat token positions of the selected sequences, concatenated in order
        rep = torch.repeat_interleave(starts - torch.cumsum(lengths, 0) + lengths, lengths)
        pos = rep + torch.arange(int(lengths.sum()))
        offsets = torch.cumsum(lengths, 0) - lengths
        return (self.tokens[pos], offsets)


@dataclass
class Dataset:
    """A prepared dataset read back from disk."""

    meta: dict
    splits: dict[str, Split]

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])


def load_prepared(folder: str | Path) -> Dataset:
    """The prepared dataset in `folder` (checked: core.prepared.read_splits) as tensors."""
    meta, arrays = read_splits(folder)
    return Dataset(meta=meta, splits={s: Split(a, meta["modality"]) for s, a in arrays.items()})
