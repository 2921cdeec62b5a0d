"""The `pretrain` stage: contrastive pre-training of every seed of one (dataset, K) group,
each seed's run resumable and trained in its own process.

A run's numbers depend on its inputs alone (every process computes on one thread,
surrogap.core.stage.pin_numeric_threads), so training the seeds of a group side by side, one
process each, gives the bytes that training them one after another gives; it only uses the
cores a serial `dvc repro` leaves idle. How many at once: :func:`jobs`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surrogap.core import config
from surrogap.core.config import dataset_section
from surrogap.core.parallel import each, stage_jobs
from surrogap.core.prepared import check_dataset
from surrogap.core.schema import run_name, seed_dir
from surrogap.models import parse_encoder_config
from surrogap.models.inputs import load_prepared
from surrogap.training import checkpoint, train
from surrogap.training.augment import build_augment
from surrogap.training.config import TrainConfig, check_sizes


@dataclass(frozen=True)
class Setup:
    """A dataset section's `encoder` and `train` blocks, parsed once per stage; `lr`: the
    entry of the lr grid that replaced train.lr, if any."""

    dataset: str
    encoder: Any
    train: TrainConfig
    lr: float | None = None


def setup(params: Mapping, dataset: str, lr: float | None = None) -> Setup:
    """The encoder and train blocks of `<dataset>` in params.yaml, parsed (every top-level
    key checked first); `lr` replaces train.lr."""
    section = dataset_section(params, dataset)
    tcfg = config.parse(TrainConfig, section.get("train"), f"{dataset}.train")
    if lr is not None:
        tcfg = dataclasses.replace(tcfg, lr=float(lr))
    enc = parse_encoder_config(section.get("encoder"), f"{dataset}.encoder")
    return Setup(dataset, enc, tcfg, None if lr is None else float(lr))


def train_one(s: Setup, k: int, seed: int, data_dir: Path, out_dir: Path, checkpoint_dir: Path):
    """One run of seed `seed` (its data in `data_dir`), written to `out_dir`."""
    data = load_prepared(data_dir)
    check_dataset(data.meta, s.dataset, data_dir)
    check_sizes(s.train, k, data, f"{s.dataset}.train")
    augment = build_augment(data.meta)
    info = checkpoint.run_info(s.dataset, k, seed, s.encoder, s.train, data.meta)
    trainer = train.Trainer(s.train, s.encoder, data, k, seed, info, augment=augment)
    train.pretrain(
        trainer,
        out_dir,
        checkpoint_dir,
        desc=f"pretrain {s.dataset} {run_name(k, seed, s.lr)}",
        data_dir=data_dir,
    )


def run(
    params: Mapping,
    dataset: str,
    k: int,
    seed: int,
    data_dir: Path,
    out_dir: Path,
    checkpoint_dir: Path,
    lr: float | None = None,
) -> None:
    """One run from params.yaml; `lr` (an entry of the lr grid) replaces the section's
    train.lr."""
    train_one(setup(params, dataset, lr), k, seed, data_dir, out_dir, checkpoint_dir)


def jobs(tcfg: TrainConfig, runs: int, environ: Mapping[str, str] | None = None) -> int:
    """Processes to train `runs` seeds in: one for a GPU, distributed or multi-threaded run
    (those use the hardware already), else SURROGAP_STAGE_JOBS or the number of cores, at
    most `runs`."""
    env = os.environ if environ is None else environ
    if tcfg.device not in ("cpu", "auto") or tcfg.nproc_per_node > 1 or "WORLD_SIZE" in env:
        return 1
    if tcfg.device == "auto":
        import torch

        if torch.cuda.is_available():  # no CUDA context yet: forked children could use none
            return 1
    cores = stage_jobs(env)
    return max(1, min(runs, cores // max(1, tcfg.threads or 1)))


def run_seeds(
    s: Setup,
    k: int,
    seeds: Sequence[int],
    data_dir: Path,
    out_dir: Path,
    checkpoint_dir: Path,
) -> None:
    """Every seed of one (dataset, K) group: seed s reads ``data_dir/s<s>`` and writes
    ``out_dir/s<s>`` (checkpoints in ``checkpoint_dir/s<s>``), in :func:`jobs` processes.
    The first failure stops the group and is raised again (core.parallel.each)."""
    folders = [
        (seed, *(Path(d) / seed_dir(seed) for d in (data_dir, out_dir, checkpoint_dir)))
        for seed in seeds
    ]
    each(folders, lambda f: train_one(s, k, *f), jobs(s.train, len(seeds)))
