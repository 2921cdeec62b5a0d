"""``bag``: the fastText-style sentence encoder of the paper's Wiki-3029 runs.

The mean of the word embeddings of a sentence, no head: tokens (total,) int64 and
offsets (n,) int64 (start of each sentence, as ``surrogap.models.inputs.Split.inputs`` serves
them) -> features (n, dim). Padding (id 0) has a zero embedding that is never trained; an
empty sentence gets the zero vector.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from surrogap.core.config import model, spec
from surrogap.core.errors import UserError


@model
class BagConfig:
    name: Literal["bag"] = spec("bag")
    dim: int = spec(256, ge=1, allowed="an integer >= 1 (embedding width)")


class Bag(nn.Module):
    """EmbeddingBag(vocab_size, dim, mode="mean", padding_idx=0): (tokens, offsets) -> (n, dim)."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, dim, mode="mean", padding_idx=0)
        self.out_dim = dim

    def forward(self, tokens: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.embedding(tokens, offsets)


def build(cfg: BagConfig, meta: dict) -> nn.Module:
    vocab = meta.get("vocab_size")
    if meta.get("modality") != "text" or not vocab:
        raise UserError(
            f"encoder bag needs text inputs with a vocab_size, dataset {meta.get('dataset')!r} "
            f"has modality {meta.get('modality')}"
        )
    return Bag(int(vocab), cfg.dim)


ENCODERS = {"bag": (BagConfig, build)}
