"""Encoders. Each module exposes ``ENCODERS = {name: (ConfigClass, build)}`` where
``build(cfg, meta) -> nn.Module`` takes the dataset's meta.json; an encoder's forward takes
the positional inputs that ``surrogap.models.inputs.Split.inputs`` serves (dense: ``x``; text:
``tokens, offsets``) and returns features of shape (n, d).
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from surrogap.core import config
from surrogap.core.errors import UserError

ENCODER_MODULES = {
    "mlp": "surrogap.models.mlp",
    "convnet": "surrogap.models.vision",
    "resnet18": "surrogap.models.vision",
    "bag": "surrogap.models.text",
}


def _entry(name: str, where: str = "encoder"):
    if not isinstance(name, str) or name not in ENCODER_MODULES:
        raise UserError(
            f"{where}.name: got {config.shown(name)}, allowed: {', '.join(sorted(ENCODER_MODULES))}"
        )
    return importlib.import_module(ENCODER_MODULES[name]).ENCODERS[name]


def parse_encoder_config(data: Any, where: str):
    """The frozen config of a dataset section's `encoder` block, chosen by its `name`."""
    if not isinstance(data, dict) or "name" not in data:
        raise UserError(f"{where}: expected a mapping with a 'name' key, got {config.shown(data)}")
    cls, _ = _entry(data["name"], where)
    return config.parse(cls, data, where)


def build_encoder(cfg, meta: dict) -> nn.Module:
    _, builder = _entry(cfg.name)
    return builder(cfg, meta)
