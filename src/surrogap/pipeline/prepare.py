"""The `prepare` stage: one dataset's train/val/test splits, one ``s<seed>/`` folder per seed
of the params list `seed`, in ``data/prepared/<dataset>/`` (one DVC instance per dataset;
the folder is replaced whole).

The seed draws the data: generated data, class sub-sampling and the split all use the data
seed ``<dataset>.data.seed + seed``, so the spread over training seeds includes the data's.
A seed's files depend on that seed and the `<dataset>.data` block alone (byte for byte), so
adding a seed leaves the others' files as they were. Every pretrain instance depends on the
whole folder, exactly one output of another stage (a dependency on a sub-folder of another
stage's output made DVC load that output's recorded tree from the cache, which a fresh clone
does not have)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from surrogap.core import io, memory
from surrogap.core.config import dataset_section
from surrogap.core.config import seeds as config_seeds
from surrogap.core.prepared import write_prepared
from surrogap.core.schema import seed_dir
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


def draw(cfg, dataset: str, seed: int, root: Path):
    """One seed's splits (a core.prepared.Prepared) drawn by the parsed `<dataset>.data`
    block `cfg`, and the config with the seed's data seed."""
    cfg = dataclasses.replace(cfg, seed=data_seed(cfg, seed))
    prepared = kinds.build(cfg, root)
    prepared.extra["data_seed"] = cfg.seed
    return prepared, cfg


def write(drawn, dataset: str, out_dir: Path) -> None:
    """`draw`'s answer into `out_dir` (replaced whole)."""
    prepared, cfg = drawn
    write_prepared(prepared, dataset, cfg.kind, getattr(cfg, "prior", "uniform"), out_dir)


def run_seed(params: Mapping, dataset: str, seed: int, out_dir: Path, root: Path) -> None:
    """One seed's splits into `out_dir`, from params.yaml."""
    cfg = data_config(params, dataset)
    check_memory(cfg, f"{dataset}.data")
    write(draw(cfg, dataset, seed, root), dataset, out_dir)


def run(params: Mapping, dataset: str, dataset_dir: Path, root: Path) -> None:
    """Every seed of the params list `seed` into ``dataset_dir/s<seed>/``, the data block
    parsed once; the folder is replaced whole once every seed is drawn. The first seed is
    drawn before any folder is made, so bad raw data leaves nothing behind."""
    cfg, seeds = data_config(params, dataset), config_seeds(params)
    check_memory(cfg, f"{dataset}.data")
    first = draw(cfg, dataset, seeds[0], root)
    with io.atomic_dir(Path(dataset_dir)) as tmp:
        for seed in seeds:
            drawn = first if seed == seeds[0] else draw(cfg, dataset, seed, root)
            write(drawn, dataset, tmp / seed_dir(seed))
