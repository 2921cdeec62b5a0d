"""The dispatch from a params `data` block to its kind's config class and builder, from the
kind's module named in surrogap.core.kinds.KINDS (a module of this folder, imported by name
on first use). Only the `prepare` stage reaches this module; loading prepared data does
not."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from surrogap.core import config
from surrogap.core.errors import UserError
from surrogap.core.kinds import KINDS
from surrogap.core.prepared import Prepared


def kind_entry(kind: str, where: str = "data"):
    if not isinstance(kind, str) or kind not in KINDS:
        raise UserError(
            f"{where}.kind: got {config.shown(kind)}, allowed: {', '.join(sorted(KINDS))}"
        )
    module = importlib.import_module(f"surrogap.data.{KINDS[kind].module}")
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
