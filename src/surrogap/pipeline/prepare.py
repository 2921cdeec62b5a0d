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


def build_seed(params: Mapping, dataset: str, seed: int, root: Path):
    """One seed's splits (a core.prepared.Prepared) and the data config they were drawn with."""
    cfg = data_config(params, dataset)
    check_memory(cfg, f"{dataset}.data")
    cfg = dataclasses.replace(cfg, seed=data_seed(cfg, seed))
    prepared = kinds.build(cfg, root)
    prepared.extra["data_seed"] = cfg.seed
    return prepared, cfg


def run_seed(params: Mapping, dataset: str, seed: int, out_dir: Path, root: Path, built=None):
    """One seed's splits into `out_dir` (replaced whole, once everything is drawn);
    `built`: build_seed's answer for this seed, where the caller has it already."""
    prepared, cfg = built or build_seed(params, dataset, seed, root)
    write_prepared(prepared, dataset, cfg.kind, getattr(cfg, "prior", "uniform"), out_dir)


def run(params: Mapping, dataset: str, dataset_dir: Path, root: Path) -> None:
    """Every seed of the params list `seed` into ``dataset_dir/s<seed>/``; the folder is
    replaced whole once every seed is drawn. The first seed is drawn before any folder is
    made, so bad raw data leaves nothing behind."""
    seeds = config_seeds(params)
    first = build_seed(params, dataset, seeds[0], root)
    with io.atomic_dir(Path(dataset_dir)) as tmp:
        for seed in seeds:
            built = first if seed == seeds[0] else None
            run_seed(params, dataset, seed, tmp / seed_dir(seed), root, built)
