"""The `pretrain` stage: contrastive pre-training of one (dataset, K, seed) run, resumable."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from surrogap.core import config, memory
from surrogap.core.config import dataset_section
from surrogap.core.errors import UserError
from surrogap.core.prepared import check_dataset
from surrogap.core.schema import run_name
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


def check_memory(enc, meta: dict, where: str) -> None:
    """The encoder's size against the memory available, before anything is allocated: the
    model is built on torch's meta device (no storage) and its parameters counted; weights,
    gradients and Adam's two moments take 16 bytes a parameter."""
    import torch

    from surrogap.models import build_encoder

    try:
        with torch.device("meta"):
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
