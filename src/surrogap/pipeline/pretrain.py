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
from pathlib import Path

from surrogap.core import config, memory
from surrogap.core.config import dataset_section
from surrogap.core.errors import UserError
from surrogap.core.parallel import each, stage_jobs
from surrogap.core.prepared import check_dataset
from surrogap.core.schema import run_name, seed_dir
from surrogap.models import parse_encoder_config
from surrogap.models.inputs import load_prepared
from surrogap.training import checkpoint, train
from surrogap.training.config import TrainConfig, check_sizes


def _encoder(section: Mapping, name: str):
    return parse_encoder_config(section.get("encoder"), f"{name}.encoder")


def _train(section: Mapping, name: str) -> TrainConfig:
    return config.parse(TrainConfig, section.get("train"), f"{name}.train")


def encoder_config(params: Mapping, name: str):
    """The `<name>.encoder` block of params.yaml, parsed."""
    return _encoder(dataset_section(params, name), name)


def train_config(params: Mapping, name: str) -> TrainConfig:
    """The `<name>.train` block of params.yaml, parsed."""
    return _train(dataset_section(params, name), name)


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


def check_memory(enc, meta: dict, where: str) -> None:
    """The encoder's size against the memory available, before anything is allocated: the
    model is built on torch's meta device (no storage, no init) and its parameters counted;
    weights, gradients and Adam's two moments take 16 bytes a parameter."""
    import torch

    from surrogap.models import build_encoder

    try:
        with torch.device("meta"), _skip_init():
            n = sum(p.numel() for p in build_encoder(enc, meta).parameters())
    except (RuntimeError, OverflowError) as exc:  # a size beyond int64 ("... overflowed")
        raise UserError(
            f"{where}: its sizes are too large to build ({config.shown(str(exc))})"
        ) from None
    memory.require(16 * n, f"{where}: an encoder of {n} parameters")


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
    """One run; `lr` (an entry of the lr grid) replaces the section's train.lr."""
    section = dataset_section(params, dataset)  # the top level checked once
    enc, tcfg = _encoder(section, dataset), _train(section, dataset)
    if lr is not None:
        tcfg = dataclasses.replace(tcfg, lr=float(lr))
    data = load_prepared(data_dir)
    check_dataset(data.meta, dataset, data_dir)
    check_sizes(tcfg, k, data, f"{dataset}.train")
    check_memory(enc, data.meta, f"{dataset}.encoder")
    augment = None
    if data.meta.get("augment"):
        from surrogap.training.augment import build_augment

        augment = build_augment(data.meta)
    info = checkpoint.run_info(dataset, k, seed, enc, tcfg, data.meta)
    trainer = train.Trainer(tcfg, enc, data, k, seed, info, augment=augment)
    train.pretrain(
        trainer,
        out_dir,
        checkpoint_dir,
        desc=f"pretrain {dataset} {run_name(k, seed, lr)}",
        data_dir=data_dir,
    )


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
    params: Mapping,
    dataset: str,
    k: int,
    seeds: Sequence[int],
    data_dir: Path,
    out_dir: Path,
    checkpoint_dir: Path,
    lr: float | None = None,
) -> None:
    """Every seed of one (dataset, K) group: seed s reads ``data_dir/s<s>`` and writes
    ``out_dir/s<s>`` (checkpoints in ``checkpoint_dir/s<s>``), in :func:`jobs` processes.
    The first failure stops the group and is raised again (core.parallel.each)."""
    tcfg = train_config(params, dataset)
    n = jobs(tcfg, len(seeds))
    args = [
        (
            params,
            dataset,
            k,
            s,
            Path(data_dir) / seed_dir(s),
            Path(out_dir) / seed_dir(s),
            Path(checkpoint_dir) / seed_dir(s),
            lr,
        )
        for s in seeds
    ]
    each(args, lambda a: run(*a), n)
