"""Encoders. Each module exposes ``ENCODERS = {name: (ConfigClass, build)}`` where
``build(cfg, meta) -> nn.Module`` takes the dataset's meta.json; an encoder's forward takes
the positional inputs that ``surrogap.models.inputs.Split.inputs`` serves (dense: ``x``; text:
``tokens, offsets``) and returns features of shape (n, d).
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from surrogap.core import config, memory
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


def _skip_init():
    """A torch function mode in which every torch.nn.init function returns its tensor as it
    is: counting parameters needs no values, and a normal init on the meta device imports
    torch._dynamo (3 s on 2 cores, once per run of an embedding encoder)."""
    from torch.overrides import TorchFunctionMode

    class SkipInit(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if getattr(func, "__module__", None) == "torch.nn.init":
                return args[0] if args else kwargs["tensor"]
            return func(*args, **kwargs)

    return SkipInit()


def build_encoder(cfg, meta: dict, where: str | None = None) -> nn.Module:
    """The encoder of `cfg` for a dataset of `meta`. With `where` (the params path that
    sets its sizes, e.g. ``circle.encoder``) its size is checked against the memory
    available before any storage is allocated: the module is first laid out on torch's
    meta device (no storage, no init) and its parameters counted; weights, gradients and
    Adam's two moments take 16 bytes a parameter."""
    import torch

    _, builder = _entry(cfg.name)
    if where is not None:
        try:
            with torch.device("meta"), _skip_init():
                n = sum(p.numel() for p in builder(cfg, meta).parameters())
        except (RuntimeError, OverflowError) as exc:  # a size beyond int64 ("... overflowed")
            raise UserError(
                f"{where}: its sizes are too large to build ({config.shown(str(exc))})"
            ) from None
        memory.require(16 * n, f"{where}: an encoder of {n} parameters")
    return builder(cfg, meta)
