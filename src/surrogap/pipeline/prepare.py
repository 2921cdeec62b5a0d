"""The `prepare` stage: build one dataset's train/val/test splits into its prepared folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from surrogap import data
from surrogap.config import dataset_section
from surrogap.data import kinds


def data_config(params: Mapping, name: str):
    """The `<name>.data` block of params.yaml, parsed."""
    return kinds.parse_data_config(dataset_section(params, name)["data"], f"{name}.data")


def run(params: Mapping, dataset: str, out_dir: Path, root: Path) -> None:
    cfg = data_config(params, dataset)
    prepared = kinds.build(cfg, root)
    data.write_prepared(prepared, dataset, cfg.kind, getattr(cfg, "prior", "uniform"), out_dir)
