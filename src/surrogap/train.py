"""Contrastive pre-training with K in-batch negatives, resumable and deterministic on the CPU.

One epoch: every training sample is an anchor once (seeded shuffle), its positive a random
other sample of its class (redrawn every epoch unless ``fixed_positives``), batches of B
pairs, the loss of :func:`surrogap.losses.contrastive_loss`. All randomness of epoch e comes
from generators seeded by (seed, e), so a run resumed from the checkpoint of epoch e ends
with the same weights as an uninterrupted run.

Every ``eval_every`` epochs the held-out trajectory (validation contrastive loss, R_mu and
mean-classifier accuracy) is recorded, logged with DVCLive and kept in the checkpoint.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from surrogap import __version__, config, io
from surrogap.config import at_least, non_negative, one_of, positive, spec
from surrogap.data import Dataset, Split
from surrogap.errors import UserError
from surrogap.evaluation import (
    check_finite,
    contrastive_loss_estimate,
    mean_classifier,
    positive_partners,
)
from surrogap.losses import contrastive_loss, sample_negatives
from surrogap.models import build_encoder

CHECKPOINT_NAME = "last.pt"
TRAJECTORY_COLUMNS = ("epoch", "train_loss", "val_contrastive_loss", "val_supervised_loss", "val_mean_acc", "lr")


@dataclass(frozen=True)
class TrainConfig:
    """The `train` block of a dataset section of params.yaml."""

    optimizer: str = spec("adam", check=one_of("adam", "sgd"), allowed="adam or sgd")
    lr: float = spec(0.01, check=positive, allowed="a number > 0")
    weight_decay: float = spec(0.0, check=non_negative, allowed="a number >= 0")
    momentum: float = spec(0.9, check=lambda v: 0 <= v < 1, allowed="a number in [0, 1)")
    batch_size: int = spec(512, check=at_least(2), allowed="an integer >= 2")
    epochs: int = spec(30, check=at_least(1), allowed="an integer >= 1")
    schedule: str = spec("none", check=one_of("none", "plateau", "cosine"), allowed="none, plateau or cosine")
    warmup_epochs: int = spec(0, check=at_least(0), allowed="an integer >= 0")
    plateau_patience: int = spec(5, check=at_least(0), allowed="an integer >= 0")
    plateau_factor: float = spec(0.5, check=lambda v: 0 < v < 1, allowed="a number in (0, 1)")
    normalize: bool = spec(True)
    temperature: float = spec(1.0, check=positive, allowed="a number > 0")
    fixed_positives: bool = spec(False)
    eval_every: int = spec(1, check=at_least(1), allowed="an integer >= 1")
    eval_mean_samples: int | None = spec(
        None, check=at_least(1), allowed="null (all) or an integer >= 1 (training samples per class for the trajectory's class means)"
    )
    checkpoint_every: int = spec(5, check=at_least(1), allowed="an integer >= 1")
    threads: int | None = spec(None, check=at_least(1), allowed="null (torch's default) or an integer >= 1")

    def validate(self, where: str) -> None:
        if self.schedule == "cosine" and self.warmup_epochs >= self.epochs:
            raise UserError(f"{where}.warmup_epochs: got {self.warmup_epochs}, allowed: fewer than epochs ({self.epochs})")


def check_sizes(cfg: TrainConfig, k: int, data: Dataset, where: str) -> None:
    """The checks that need the data: K against the batch, the batch against the split."""
    n_train = len(data.splits["train"])
    n_val = len(data.splits["val"])
    if k < 1:
        raise UserError(f"k: got {k}, allowed: an integer >= 1")
    if cfg.batch_size > n_train:
        raise UserError(f"{where}.batch_size: got {cfg.batch_size}, allowed: at most the training split's {n_train} samples")
    if k > cfg.batch_size - 1:
        raise UserError(f"k: got {k}, allowed: at most batch_size - 1 = {cfg.batch_size - 1} ({where}.batch_size is {cfg.batch_size})")
    if k > n_val - 1:
        raise UserError(f"k: got {k}, allowed: at most {n_val - 1} (validation samples - 1)")


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR factor: linear warm-up from 1/warmup to 1 over warmup_steps, then cosine to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


@torch.inference_mode()
def encode(model: nn.Module, split: Split, batch_size: int = 4096,
           idx: torch.Tensor | None = None) -> torch.Tensor:
    """Features (n, d) of a split (or of the samples `idx`), encoder in eval mode."""
    was_training = model.training
    model.eval()
    order = torch.arange(len(split)) if idx is None else idx
    parts = [model(*split.inputs(order[s : s + batch_size])) for s in range(0, order.numel(), batch_size)]
    model.train(was_training)
    return torch.cat(parts).float()


class Trainer:
    """Holds the model, optimizer and schedule of one (dataset, K, seed) run."""

    def __init__(self, cfg: TrainConfig, encoder_cfg, data: Dataset, k: int, seed: int,
                 run_info: dict, augment: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.cfg, self.data, self.k, self.seed = cfg, data, k, seed
        self.augment = augment
        self.run_info = run_info  # resolved params, K, seed, dataset: recorded in checkpoints
        torch.manual_seed(seed)
        self.model = build_encoder(encoder_cfg, data.meta)
        if cfg.optimizer == "adam":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.steps_per_epoch = len(data.splits["train"]) // cfg.batch_size
        if cfg.schedule == "plateau":
            self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.opt, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience)
        elif cfg.schedule == "cosine":
            total = cfg.epochs * self.steps_per_epoch
            warm = cfg.warmup_epochs * self.steps_per_epoch
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: warmup_cosine(s, warm, total))
        else:
            self.sched = None
        self.epoch = 0  # epochs completed
        self.trajectory: list[dict] = []
        self._eval_idx = self._mean_subset()

    # ---------------------------------------------------------------- state
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": None if self.sched is None else self.sched.state_dict(),
            "epoch": self.epoch,
            "trajectory": self.trajectory,
            "run": self.run_info,
            "version": __version__,
        }

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.trajectory = list(state["trajectory"])

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    # ---------------------------------------------------------------- one epoch
    def train_epoch(self) -> float:
        """Run epoch `self.epoch + 1`; returns its mean training loss."""
        cfg = self.cfg
        epoch = self.epoch + 1
        gen = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
        torch.manual_seed(_epoch_seed(self.seed, epoch))  # augmentation uses the global RNG
        split = self.data.splits["train"]
        if cfg.fixed_positives:
            partner = positive_partners(split.y, torch.Generator().manual_seed(_epoch_seed(self.seed, 0)))
        else:
            partner = positive_partners(split.y, gen)
        order = torch.randperm(len(split), generator=gen)
        self.model.train()
        total, steps = 0.0, 0
        for step in range(self.steps_per_epoch):
            anchors = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]  # (B,)
            pairs = torch.cat([anchors, partner[anchors]])  # (2B,)
            inputs = split.inputs(pairs)
            if self.augment is not None:
                inputs = (self.augment(inputs[0]), *inputs[1:])
            z = self.model(*inputs)  # (2B, d)
            negatives = sample_negatives(cfg.batch_size, self.k, gen)
            loss = contrastive_loss(z[: cfg.batch_size], z[cfg.batch_size :], self.k,
                                    normalize=cfg.normalize, temperature=cfg.temperature,
                                    negatives=negatives)
            if not torch.isfinite(loss):
                raise UserError(
                    f"the training loss became {float(loss.detach())} at epoch {epoch} (step {step + 1}); "
                    f"lower the learning rate (train.lr is {cfg.lr:g}); the last good checkpoint is kept"
                )
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if isinstance(self.sched, torch.optim.lr_scheduler.LambdaLR):
                self.sched.step()
            total += float(loss.detach())
            steps += 1
        mean_loss = total / max(steps, 1)
        if isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.sched.step(mean_loss)
        self.epoch = epoch
        return mean_loss

    # ---------------------------------------------------------------- held-out evaluation
    def _mean_subset(self) -> torch.Tensor | None:
        """Training samples whose features give the trajectory's class means (None: all)."""
        per_class = self.cfg.eval_mean_samples
        if per_class is None:
            return None
        y = self.data.splits["train"].y
        gen = torch.Generator().manual_seed(_epoch_seed(self.seed, -1))
        keep = [torch.nonzero(y == c).flatten() for c in range(self.data.num_classes)]
        keep = [ix[torch.randperm(ix.numel(), generator=gen)[:per_class]] for ix in keep]
        return torch.sort(torch.cat(keep)).values

    def evaluate(self) -> dict[str, float]:
        """Validation contrastive loss (one fixed pairing), R_mu and mean-classifier accuracy."""
        train, val = self.data.splits["train"], self.data.splits["val"]
        idx = self._eval_idx
        z_train = encode(self.model, train, idx=idx)
        y_train = train.y if idx is None else train.y[idx]
        z_val = encode(self.model, val)
        check_finite(z_val, f"validation features at epoch {self.epoch}")
        mc = mean_classifier(z_train, y_train, z_val, val.y, self.data.num_classes)
        est = contrastive_loss_estimate(z_val, val.y, self.k, repeats=1, seed=self.seed)
        return {"val_contrastive_loss": est.mean, "val_supervised_loss": mc["supervised_loss"],
                "val_mean_acc": mc["mean_acc"]}


def run_info(dataset: str, k: int, seed: int, encoder_cfg, train_cfg: TrainConfig, meta: dict) -> dict:
    """What a checkpoint records about the run; resuming requires an exact match."""
    return {
        "dataset": dataset,
        "k": k,
        "seed": seed,
        "encoder": config.to_dict(encoder_cfg),
        "train": config.to_dict(train_cfg),
        "data": {key: meta[key] for key in ("kind", "num_classes", "sizes", "input_shape", "vocab_size")},
    }


def _mismatch(saved: dict, current: dict, prefix: str = "") -> str | None:
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _mismatch(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key}: checkpoint {a!r}, params {b!r}"
    return None


def load_checkpoint(path: Path, info: dict) -> dict | None:
    """The checkpoint at `path` if it was written for exactly this run, else None (with a
    note on stderr saying why it is not used). Loaded with weights_only=True."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: never trusted, never fatal
        print(f"note: checkpoint {str(path)!r} is unreadable ({type(exc).__name__}); starting from scratch", file=sys.stderr)
        return None
    why = _mismatch(state.get("run", {}), info) if isinstance(state, dict) else "not a surrogap checkpoint"
    if why:
        print(f"note: checkpoint {str(path)!r} was written for other params ({why}); starting from scratch", file=sys.stderr)
        return None
    return state


def _progress(total: int, initial: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="epoch", file=sys.stderr,
                dynamic_ncols=True, mininterval=1.0)


def _open_live(live_dir: Path):
    """DVCLive's metric files (dvcyaml=None) without its Git/DVC integration: the stage's
    outputs are tracked by dvc.yaml, and the integration fails in a repository without
    commits."""
    from dvclive import Live

    class PlainLive(Live):
        def _init_dvc(self):
            return None

    return PlainLive(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)


def _log_live(live, row: dict) -> None:
    live.step = int(row["epoch"])
    live.log_metric("train/loss", row["train_loss"])
    for key in ("contrastive_loss", "supervised_loss", "mean_acc"):
        live.log_metric(f"val/{key}", row[f"val_{key}"])
    live.log_metric("lr", row["lr"])
    live.make_summary()


def pretrain(trainer: Trainer, out_dir: Path, checkpoint_dir: Path, desc: str = "pretrain") -> None:
    """Train to the configured epochs, resuming from `checkpoint_dir`, and write `out_dir`
    (model.pt, trajectory.csv, live/) atomically at the end."""
    cfg = trainer.cfg
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    ckpt = checkpoint_dir / CHECKPOINT_NAME
    state = load_checkpoint(ckpt, trainer.run_info)
    if state is not None:
        trainer.load_state(state)
        print(f"resuming from {str(ckpt)!r} at epoch {trainer.epoch}/{cfg.epochs}", file=sys.stderr)
    live_dir = checkpoint_dir / "live"
    shutil.rmtree(live_dir, ignore_errors=True)  # rebuilt from the checkpoint's trajectory
    live = _open_live(live_dir)
    for row in trainer.trajectory:
        _log_live(live, row)
    if trainer.epoch == 0 and not trainer.trajectory:
        row = {"epoch": 0, "train_loss": float("nan"), **trainer.evaluate(), "lr": trainer.lr()}
        trainer.trajectory.append(row)
        _log_live(live, row)
    bar = _progress(cfg.epochs, trainer.epoch, desc)
    try:
        while trainer.epoch < cfg.epochs:
            t0 = time.perf_counter()
            lr = trainer.lr()
            loss = trainer.train_epoch()
            rate = trainer.steps_per_epoch * cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", samples_per_s=f"{rate:.0f}")
            e = trainer.epoch
            if e % cfg.eval_every == 0 or e == cfg.epochs:
                row = {"epoch": e, "train_loss": loss, **trainer.evaluate(), "lr": lr}
                trainer.trajectory.append(row)
                _log_live(live, row)
            if e % cfg.checkpoint_every == 0 or e == cfg.epochs:
                io.write_with(ckpt, lambda p: torch.save(trainer.state(), p))
    finally:
        bar.close()
        live.end()
    final = {"model": trainer.model.state_dict(), "run": trainer.run_info, "epoch": trainer.epoch,
             "version": __version__}
    with io.atomic_dir(out_dir) as tmp:
        torch.save(final, tmp / "model.pt")
        lines = [",".join(TRAJECTORY_COLUMNS)]
        lines += [",".join(repr(float(r[c])) if c != "epoch" else str(r[c]) for c in TRAJECTORY_COLUMNS) for r in trainer.trajectory]
        (tmp / "trajectory.csv").write_text("\n".join(lines) + "\n")
        shutil.copytree(live_dir, tmp / "live")


def load_model(path: Path, meta: dict) -> tuple[nn.Module, dict]:
    """The encoder saved by :func:`pretrain`, in eval mode, loaded with weights_only=True."""
    from surrogap.models import parse_encoder_config

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"model {str(path)!r} does not exist; run the pretrain stage first") from None
    except Exception as exc:
        raise UserError(f"model {str(path)!r} is unreadable ({type(exc).__name__}); rerun the pretrain stage") from None
    run = state["run"]
    model = build_encoder(parse_encoder_config(run["encoder"], "encoder"), meta)
    model.load_state_dict(state["model"])
    model.eval()
    return model, run
