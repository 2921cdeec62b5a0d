"""The dataset kinds: the registry of the modules defining them, and the dispatch from a
params `data` block to its config class and builder, and what the report calls each kind.
The `prepare` stage imports the kind modules through the registry; the report reads only
the table; loading prepared data reaches neither."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surrogap.core import config
from surrogap.core.errors import UserError
from surrogap.core.prepared import Prepared


@dataclass(frozen=True)
class Kind:
    """One kind of data: the module defining its config class and builder (its ``KINDS``;
    imported on first use, so torchvision/datasets load lazily), what the report calls it,
    and the paper's runs on what it is (or, for an offline stand-in, what it stands in for:
    Bao, Nagano & Nozawa 2022, Sec. 5 and its code), as report.markdown's scale table
    prints them (None: the report says "unknown")."""

    module: str
    name: str
    paper: dict[str, str] | None = None


def _paper(data, classes, per_class, epochs, k, seeds, batch="1024") -> dict[str, str]:
    return dict(data=data, classes=classes, per_class=per_class, batch=batch, epochs=epochs, k=k, seeds=seeds)  # fmt: skip


_CIFAR10 = _paper("CIFAR-10", "10", "6000", "2000", "4-512", "3")
_CIFAR100 = _paper("CIFAR-100", "100", "600", "2000", "4-512", "3")
_WIKI = _paper("Wiki-3029", "500-3029", "200", "not stated", "8-1024", "3", batch="2048")
_SYNTHETIC, _GENERATED = "surrogap.data.synthetic", "generated 2-D data"
# kind -> its entry: the one place a kind is declared (tests/test_one_home.py)
KINDS = {
    "circle": Kind(_SYNTHETIC, _GENERATED, _paper("circle", "100", "1000", "300", "1-256", "8")),
    "norm": Kind(_SYNTHETIC, _GENERATED, _paper("norm", "100", "1000", "300", "1-256", "8")),
    "digits": Kind("surrogap.data.digits", "digits 8x8, a stand-in for CIFAR-10", _CIFAR10),
    "topics": Kind("surrogap.data.text", "generated topics, a stand-in for Wiki-3029", _WIKI),
    "wiki3029": Kind("surrogap.data.text", "Wiki-3029", _WIKI),
    "cifar10": Kind("surrogap.data.cifar", "CIFAR-10", _CIFAR10),
    "cifar100": Kind("surrogap.data.cifar", "CIFAR-100", _CIFAR100),
}


def kind_name(kind: str, unknown: str | None = None) -> str:
    """What the report calls data of `kind`; `unknown` (default "kind <kind>") if no entry."""
    return KINDS[kind].name if kind in KINDS else unknown or f"kind {kind}"


def kind_entry(kind: str, where: str = "data"):
    if not isinstance(kind, str) or kind not in KINDS:
        raise UserError(
            f"{where}.kind: got {config.shown(kind)}, allowed: {', '.join(sorted(KINDS))}"
        )
    module = importlib.import_module(KINDS[kind].module)
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
