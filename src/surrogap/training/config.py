"""A dataset section's `train` block (TrainConfig), the device a run uses, and the size
checks a run must pass before any training."""

from __future__ import annotations

from typing import Literal

import torch

from surrogap.core.config import model, spec
from surrogap.core.errors import UserError
from surrogap.models.inputs import Dataset
from surrogap.training import distributed

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@model
class TrainConfig:
    """The `train` block of a dataset section of params.yaml."""

    optimizer: Literal["adam", "sgd", "lars"] = spec(
        "adam", allowed="adam, sgd or lars (SGD with LARS)"
    )
    lr: float = spec(0.01, gt=0)
    lr_scaling: Literal["none", "linear", "sqrt"] = spec(
        "none", allowed="none (lr as given), linear (lr * batch_size / lr_base_batch) or sqrt"
    )
    lr_base_batch: int = spec(256, ge=1, allowed="an integer >= 1 (the batch size lr is given for)")
    lars_eta: float = spec(0.001, gt=0, allowed="a number > 0 (LARS trust coefficient)")
    weight_decay: float = spec(0.0, ge=0)
    momentum: float = spec(0.9, ge=0, lt=1)
    batch_size: int = spec(512, ge=2)
    epochs: int = spec(30, ge=1)
    schedule: Literal["none", "plateau", "cosine"] = spec("none")
    warmup_epochs: int = spec(0, ge=0)
    plateau_patience: int = spec(5, ge=0)
    plateau_factor: float = spec(0.5, gt=0, lt=1)
    normalize: bool = spec(True)
    temperature: float = spec(1.0, gt=0)
    fixed_positives: bool = spec(False)
    eval_every: int = spec(1, ge=1)
    eval_mean_samples: int | None = spec(
        None,
        ge=1,
        allowed="null (all) or an integer >= 1 (training samples per class for the trajectory's class means)",
    )
    # the stopping rule (surrogap.training.stopping): off by default, every run trains `epochs`
    stop_patience: int | None = spec(
        None,
        ge=1,
        allowed="null (off: train all epochs) or an integer >= 1 (evaluations, one every "
        "eval_every epochs, whose best validation contrastive loss must improve on the best "
        "before them by more than stop_min_delta, else training stops; epochs is the cap)",
    )
    stop_min_delta: float = spec(
        0.001,
        ge=0,
        lt=1,
        allowed="a number in [0, 1) (the relative improvement of the validation contrastive "
        "loss over stop_patience evaluations at or below which training stops)",
    )
    checkpoint_every: int = spec(5, ge=1)
    threads: int | None = spec(None, ge=1, allowed="null (torch's default) or an integer >= 1")
    device: Literal["auto", "cpu", "cuda"] = spec(
        "auto", allowed="auto (cuda if available, else cpu), cpu or cuda"
    )
    precision: Literal["fp32", "bf16", "fp16"] = spec(
        "fp32", allowed="fp32, bf16 or fp16 (mixed precision: cuda only)"
    )
    nproc_per_node: int = spec(
        1, ge=1, allowed="an integer >= 1 (processes the stage starts under torchrun)"
    )

    def validate(self, where: str) -> None:
        if self.schedule == "cosine" and self.warmup_epochs >= self.epochs:
            raise UserError(
                f"{where}.warmup_epochs: got {self.warmup_epochs}, allowed: fewer than epochs ({self.epochs})"
            )
        if self.stop_patience is not None and self.stop_patience * self.eval_every >= self.epochs:
            raise UserError(
                f"{where}.stop_patience: got {self.stop_patience}, allowed: null or fewer than "
                f"epochs / eval_every = {self.epochs / self.eval_every:g} evaluations (with more, "
                "the rule could never stop a run before the cap)"
            )


def resolve_device(
    cfg: TrainConfig, where: str, denv: distributed.DistEnv | None = None
) -> torch.device:
    """The torch.device of this process; cuda:<LOCAL_RANK> under torchrun. One clear error
    for cuda without a GPU and for mixed precision on the CPU (refused: CPU autocast is slow
    on most CPUs and would change the CPU results; fp32 is exact and fast enough there)."""
    denv = denv or distributed.from_env()
    kind = cfg.device
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"{where}.device: got 'cuda', but torch sees no GPU here; use device: auto or cpu"
            )
        count = torch.cuda.device_count()
        if denv.local_rank >= count:
            raise UserError(
                f"{where}.device: LOCAL_RANK {denv.local_rank} but only {count} GPU(s) on this node"
            )
        device = torch.device("cuda", denv.local_rank)
    else:
        device = torch.device("cpu")
    if device.type == "cpu" and cfg.precision != "fp32":
        raise UserError(
            f"{where}.precision: got {cfg.precision!r}, allowed on the CPU: fp32 (mixed precision needs cuda)"
        )
    return device


def check_sizes(cfg: TrainConfig, k: int, data: Dataset, where: str) -> None:
    """The checks that need the data and the launch: K against the per-process batch, the
    batch against the split and the processes, the device and precision."""
    n_train = len(data.splits["train"])
    n_val = len(data.splits["val"])
    if k < 1:
        raise UserError(f"k: got {k}, allowed: an integer >= 1")
    if cfg.batch_size > n_train:
        raise UserError(
            f"{where}.batch_size: got {cfg.batch_size}, allowed: at most the training split's {n_train} samples"
        )
    denv = distributed.from_env()
    b = distributed.per_process_batch(cfg.batch_size, denv.world_size, where)
    if denv.world_size > 1 and k > b - 1:
        raise UserError(
            f"k: got {k}, allowed: at most the per-process batch - 1 = {b - 1} ({where}.batch_size {cfg.batch_size} "
            f"split across {denv.world_size} processes; negatives come from each process's own batch)"
        )
    if k > cfg.batch_size - 1:
        raise UserError(
            f"k: got {k}, allowed: at most batch_size - 1 = {cfg.batch_size - 1} ({where}.batch_size is {cfg.batch_size})"
        )
    if k > n_val - 1:
        raise UserError(f"k: got {k}, allowed: at most {n_val - 1} (validation samples - 1)")
    resolve_device(cfg, where, denv)
