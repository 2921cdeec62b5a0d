"""The `prepare` stage: build one (dataset, seed)'s train/val/test splits into its folder.

The seed draws the data: generated data, class sub-sampling and the split all use the data
seed ``<dataset>.data.seed + seed``, so the spread over training seeds includes the data's."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from surrogap.core import prepared as core_prepared
from surrogap.core.config import dataset_section
from surrogap.data import kinds


def data_config(params: Mapping, name: str):
    """The `<name>.data` block of params.yaml, parsed."""
    return kinds.parse_data_config(dataset_section(params, name)["data"], f"{name}.data")


def data_seed(cfg, seed: int) -> int:
    """The seed the data of training seed `seed` is drawn with: ``data.seed + seed``."""
    return cfg.seed + seed


def run(params: Mapping, dataset: str, seed: int, out_dir: Path, root: Path) -> None:
    cfg = data_config(params, dataset)
    cfg = dataclasses.replace(cfg, seed=data_seed(cfg, seed))
    prepared = kinds.build(cfg, root)
    prepared.extra["data_seed"] = cfg.seed
    core_prepared.write_prepared(
        prepared, dataset, cfg.kind, getattr(cfg, "prior", "uniform"), out_dir
    )
