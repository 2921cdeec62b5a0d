"""The synthetic-data encoder of the paper: an MLP 2-256-256-256, ReLU, last layer no bias."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from surrogap.core.config import model, spec
from surrogap.core.errors import UserError


@model
class MLPConfig:
    name: Literal["mlp"] = spec("mlp")
    widths: tuple[Annotated[int, Field(ge=1)], ...] = spec(
        factory=lambda: (256, 256, 256),
        min_length=1,
        allowed="a non-empty list of layer widths >= 1",
    )


class MLP(nn.Module):
    """x (n, in_dim) -> features (n, widths[-1]); ReLU between layers, none after the last."""

    def __init__(self, in_dim: int, widths: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        dims = (in_dim, *widths)
        for i in range(len(widths)):
            last = i == len(widths) - 1
            layers.append(nn.Linear(dims[i], dims[i + 1], bias=not last))
            if not last:
                layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


def build(cfg: MLPConfig, meta: dict) -> nn.Module:
    shape = meta.get("input_shape") or []
    if meta.get("modality") != "dense" or not shape:
        raise UserError(
            f"encoder mlp needs dense inputs, dataset {meta.get('dataset')!r} is {meta.get('modality')}"
        )
    return MLP(math.prod(shape), cfg.widths)


ENCODERS = {"mlp": (MLPConfig, build)}
