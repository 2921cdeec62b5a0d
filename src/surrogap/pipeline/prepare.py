"""The `prepare` stage: one dataset's train/val/test splits for every seed of params `seed`,
each into ``<out>/s<seed>/`` (one process and one DVC instance per dataset; the folder is
replaced whole).

The seed draws the data: generated data, class sub-sampling and the split all use the data
seed ``<dataset>.data.seed + seed``, so the spread over training seeds includes the data's.
Each seed's files depend on that seed alone (byte for byte), so adding a seed rewrites the
others unchanged and re-runs none of their pretrain instances."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from surrogap.core import io, memory
from surrogap.core.config import dataset_section
from surrogap.core.config import seeds as config_seeds
from surrogap.core.prepared import write_prepared
from surrogap.data import kinds


def data_config(params: Mapping, name: str):
    """The `<name>.data` block of params.yaml, parsed."""
    return kinds.parse_data_config(dataset_section(params, name)["data"], f"{name}.data")


def data_seed(cfg, seed: int) -> int:
    """The seed the data of training seed `seed` is drawn with: ``data.seed + seed``."""
    return cfg.seed + seed


def check_memory(cfg, where: str) -> None:
    """A generated kind's sizes against the memory available, before anything is drawn."""
    estimate = getattr(cfg, "memory", None)
    if estimate is not None:
        need, what = estimate()
        memory.require(need, f"{where}: {what}")


def build_seed(params: Mapping, dataset: str, seed: int, root: Path):
    """One seed's splits (a core.prepared.Prepared) and the data config they were drawn with."""
    cfg = data_config(params, dataset)
    check_memory(cfg, f"{dataset}.data")
    cfg = dataclasses.replace(cfg, seed=data_seed(cfg, seed))
    prepared = kinds.build(cfg, root)
    prepared.extra["data_seed"] = cfg.seed
    return prepared, cfg


def run(params: Mapping, dataset: str, out_dir: Path, root: Path) -> None:
    """Every seed of the grid into ``out_dir/s<seed>/``. The first seed is built before
    anything is written (a bad params block or archive fails with nothing touched); the
    folder is replaced whole once every seed is written."""
    seeds = config_seeds(params)
    first = build_seed(params, dataset, seeds[0], root)

    def write(seed: int, name: str, tmp: Path) -> None:
        prepared, cfg = first if seed == seeds[0] else build_seed(params, dataset, seed, root)
        write_prepared(prepared, dataset, cfg.kind, getattr(cfg, "prior", "uniform"), tmp / name)

    io.write_seeds(out_dir, seeds, write)
