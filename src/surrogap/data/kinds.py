"""The dataset kinds: the registry of the modules defining them, and the dispatch from a
params `data` block to its config class and builder. Only the `prepare` stage reaches this
module (and, through the registry, every kind module); loading prepared data does not."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from surrogap.core import config
from surrogap.core.errors import UserError
from surrogap.core.prepared import Prepared

# kind -> module defining it (imported on first use, so torchvision/datasets load lazily)
KIND_MODULES = {
    "circle": "surrogap.data.synthetic",
    "norm": "surrogap.data.synthetic",
    "digits": "surrogap.data.digits",
    "topics": "surrogap.data.text",
    "wiki3029": "surrogap.data.text",
    "cifar10": "surrogap.data.cifar",
    "cifar100": "surrogap.data.cifar",
}


def kind_entry(kind: str, where: str = "data"):
    if not isinstance(kind, str) or kind not in KIND_MODULES:
        raise UserError(
            f"{where}.kind: got {config.shown(kind)}, allowed: {', '.join(sorted(KIND_MODULES))}"
        )
    module = importlib.import_module(KIND_MODULES[kind])
    return module.KINDS[kind]


def parse_data_config(data: Any, where: str):
    """The frozen config of a dataset section's `data` block, chosen by its `kind`."""
    if not isinstance(data, dict) or "kind" not in data:
        raise UserError(f"{where}: expected a mapping with a 'kind' key, got {config.shown(data)}")
    cls, _ = kind_entry(data["kind"], where)
    return config.parse(cls, data, where)


def build(cfg, root: Path) -> Prepared:
    """Run the builder of ``cfg.kind`` (root: where downloads and raw files live)."""
    _, builder = kind_entry(cfg.kind)
    return builder(cfg, root)
