"""Contrastive pre-training with K in-batch negatives, resumable and deterministic on the CPU.

One epoch: every training sample is an anchor once (seeded shuffle), its positive a random
other sample of its class (redrawn every epoch unless ``fixed_positives``), batches of B
pairs, the loss of :func:`surrogap.training.losses.contrastive_loss`. All randomness of epoch e comes
from generators seeded by (seed, e), so a run resumed from the checkpoint of epoch e ends
with the same weights as an uninterrupted run.

Every ``eval_every`` epochs the held-out trajectory (validation contrastive loss, R_mu and
mean-classifier accuracy) is recorded, logged with DVCLive and kept in the checkpoint; the
stopping rule (``stop_patience``) is the Stopping item of docs/PROTOCOL.md, "Pre-training:
pairs, negatives and the loss". Device, precision and
torch.distributed (``batch_size`` the global batch, rank 0 alone evaluating and writing):
docs/SCALING.md.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from surrogap import __version__
from surrogap.core import io
from surrogap.core.errors import UserError
from surrogap.core.schema import TRAJECTORY_COLUMNS
from surrogap.estimators.evaluation import check_finite, contrastive_loss_estimate, mean_classifier
from surrogap.models import build_encoder
from surrogap.models.inference import encode
from surrogap.models.inputs import Dataset
from surrogap.training import checkpoint, distributed, stopping
from surrogap.training.config import AMP_DTYPES, TrainConfig, resolve_device
from surrogap.training.losses import contrastive_loss, positive_partners, sample_negatives
from surrogap.training.optim import build_optimizer, scaled_lr, warmup_cosine

__all__ = ["Trainer", "pretrain", "warmup_cosine"]


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


class Trainer:
    """Holds the model, optimizer and schedule of one (dataset, K, seed) run.

    Under torchrun (WORLD_SIZE set, even to 1) it joins the process group, converts BatchNorm to
    SyncBatchNorm on cuda (SyncBatchNorm has no CPU kernel: on Gloo/CPU each process keeps
    its own batch statistics) and wraps the model in DistributedDataParallel as `self.ddp`;
    `self.model` is always the plain module (evaluation, state dicts).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        encoder_cfg,
        data: Dataset,
        k: int,
        seed: int,
        run_info: dict,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        self.cfg, self.data, self.k, self.seed, self.augment = cfg, data, k, seed, augment
        self.denv = distributed.from_env()
        self.device = resolve_device(cfg, "train", self.denv)
        self.local_batch = distributed.per_process_batch(
            cfg.batch_size, self.denv.world_size, "train"
        )
        distributed.setup(self.denv, self.device)
        self.lr0 = scaled_lr(cfg.lr, cfg.batch_size, cfg.lr_scaling, cfg.lr_base_batch)
        resolved = {
            "lr": self.lr0,
            "world_size": self.denv.world_size,
            "per_process_batch": self.local_batch,
            "device": self.device.type,
        }
        # resolved params, K, seed, dataset and the launch: recorded in checkpoints
        self.run_info = {**run_info, "resolved": resolved}
        torch.manual_seed(seed)
        where = f"{run_info['dataset']}.encoder" if "dataset" in run_info else "encoder"
        model = build_encoder(encoder_cfg, data.meta, where)  # sized before it is built
        if self.denv.active and self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(self.device)
        self.opt = build_optimizer(
            self.model, cfg.optimizer, self.lr0, cfg.weight_decay, cfg.momentum, cfg.lars_eta
        )
        self.ddp: nn.Module = self.model
        if self.denv.active:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        self.amp_dtype = AMP_DTYPES.get(cfg.precision)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
        self.steps_per_epoch = len(data.splits["train"]) // cfg.batch_size
        if cfg.schedule == "plateau":
            self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.opt, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
            )
        elif cfg.schedule == "cosine":
            total = cfg.epochs * self.steps_per_epoch
            warm = cfg.warmup_epochs * self.steps_per_epoch
            self.sched = torch.optim.lr_scheduler.LambdaLR(
                self.opt, lambda s: warmup_cosine(s, warm, total)
            )
        else:
            self.sched = None
        self.epoch = 0  # epochs completed
        self.trajectory: list[dict] = []
        self.stop: dict | None = None  # stopping.decide's record once training has stopped
        self._eval_idx = self._mean_subset()

    # ---------------------------------------------------------------- state
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": None if self.sched is None else self.sched.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "epoch": self.epoch,
            "trajectory": self.trajectory,
            "stop": self.stop,
            "run": self.run_info,
            "version": __version__,
        }

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.trajectory = list(state["trajectory"])
        self.stop = state.get("stop")

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def decide_stop(self) -> dict | None:
        """After an evaluation: the stop record of the rule over the trajectory so far (None
        to train on), kept as `self.stop`."""
        cfg = self.cfg
        losses = [float(r["val_contrastive_loss"]) for r in self.trajectory]
        self.stop = stopping.decide(
            losses, self.epoch, cfg.epochs, cfg.stop_patience, cfg.stop_min_delta
        )
        return self.stop

    # ---------------------------------------------------------------- one epoch
    def train_epoch(self) -> float:
        """Run epoch `self.epoch + 1`; returns its mean training loss (over all processes).

        Every process draws the same permutation, partners and negatives from `gen` (so the
        generator stays in step); process r trains on the r-th shard of each global batch
        with the r-th of the W negative draws."""
        cfg, denv, b = self.cfg, self.denv, self.local_batch
        epoch = self.epoch + 1
        gen = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
        # augmentation uses the global RNG; rank 0 (and a single process) as before
        torch.manual_seed(_epoch_seed(self.seed, epoch) + denv.rank)
        split = self.data.splits["train"]
        if cfg.fixed_positives:
            partner = positive_partners(
                split.y, torch.Generator().manual_seed(_epoch_seed(self.seed, 0))
            )
        else:
            partner = positive_partners(split.y, gen)
        order = torch.randperm(len(split), generator=gen)
        self.model.train()
        total, steps = 0.0, 0
        for step in range(self.steps_per_epoch):
            anchors = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]  # (B,)
            anchors = distributed.shard(anchors, denv)  # (b,) this process's share, b = B / W
            pairs = torch.cat([anchors, partner[anchors]])  # (2b,)
            inputs = tuple(x.to(self.device, non_blocking=True) for x in split.inputs(pairs))
            if self.augment is not None:  # on the device: the GPU does the augmentation
                inputs = (self.augment(inputs[0]), *inputs[1:])
            amp = (
                torch.autocast(self.device.type, dtype=self.amp_dtype)
                if self.amp_dtype is not None
                else contextlib.nullcontext()
            )
            with amp:
                z = self.ddp(*inputs)  # (2b, d)
            # every process draws all processes' negatives, so the generator stays in step
            # the batch is a slice of the epoch's random permutation: its order is random
            draws = [
                sample_negatives(b, self.k, gen, self.device, shuffle=False)
                for _ in range(denv.world_size)
            ]
            # fp32 inside, whatever autocast made of z
            loss = contrastive_loss(
                *z.chunk(2),  # (b, d) anchors, (b, d) positives: views whose backward is one cat
                self.k,
                normalize=cfg.normalize,
                temperature=cfg.temperature,
                negatives=draws[denv.rank],
            )
            seen = distributed.all_mean(loss.detach(), denv)  # the same value on every process
            if not torch.isfinite(seen):
                raise self.diverged(f"the training loss became {float(seen)}", epoch, step)
            self.opt.zero_grad(set_to_none=True)
            try:
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                    self.scaler.step(self.opt)
                    self.scaler.update()
                else:
                    loss.backward()
                    self.opt.step()
            except RuntimeError as exc:  # lr * grad past float32 in the optimizer's update
                if "overflow" not in str(exc):
                    raise
                raise self.diverged("the training step overflowed", epoch, step) from None
            if isinstance(self.sched, torch.optim.lr_scheduler.LambdaLR):
                self.sched.step()
            total += float(seen)
            steps += 1
        mean_loss = total / max(steps, 1)
        if isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.sched.step(mean_loss)
        self.epoch = epoch
        return mean_loss

    def diverged(self, what: str, epoch: int, step: int) -> UserError:
        """The one line of a training run that diverged (a loss of NaN or inf, an update
        past float32: `lr` 1e30 with sgd, 1e38 with adam)."""
        return UserError(
            f"{what} at epoch {epoch} (step {step + 1}); lower the learning rate "
            f"(train.lr is {self.cfg.lr:g}); the last good checkpoint is kept"
        )

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
        z_train = encode(self.model, train, idx=idx).numpy()
        y_train = (train.y if idx is None else train.y[idx]).numpy()
        z_val, y_val = encode(self.model, val).numpy(), val.y.numpy()
        check_finite(z_val, f"validation features at epoch {self.epoch}")
        mc = mean_classifier(z_train, y_train, z_val, y_val, self.data.num_classes)
        est = contrastive_loss_estimate(
            z_val, y_val, self.k, repeats=1, seed=self.seed, workers=torch.get_num_threads()
        )
        return {
            "val_contrastive_loss": est.mean,
            "val_supervised_loss": mc["supervised_loss"],
            "val_mean_acc": mc["mean_acc"],
        }


def _progress(total: int, initial: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="epoch",
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=1.0,
        disable=None,  # a bar on a terminal only: in a log, the stage's one closing line
    )


def _import_live():
    """dvclive.Live, imported without pandas when pandas is not loaded yet.

    dvclive imports pandas (about 1 s) only to accept DataFrames in `log_plot`, which this
    module never calls; with pandas marked unavailable during the import, dvclive takes
    its own no-pandas path. Should any part of dvclive need pandas, the import is retried
    normally. Other code importing pandas later gets it as usual."""
    if "pandas" in sys.modules or "dvclive" in sys.modules:
        from dvclive import Live

        return Live
    sys.modules["pandas"] = None  # type: ignore[assignment]  # "import pandas" -> ImportError
    try:
        from dvclive import Live
    except ImportError:
        for name in [m for m in sys.modules if m == "dvclive" or m.startswith("dvclive.")]:
            del sys.modules[name]
        del sys.modules["pandas"]
        from dvclive import Live
    finally:
        if sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]
    return Live


def _open_live(live_dir: Path):
    """DVCLive's metric files (dvcyaml=None) without its Git/DVC integration: the stage's
    outputs are tracked by dvc.yaml, and the integration fails in a repository without
    commits."""
    Live = _import_live()

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


def train_info(trainer: Trainer) -> dict:
    """How the run was actually executed (train_info.json): the learning rate used and
    the rule that gave it, the global and per-process batch, the launch."""
    cfg = trainer.cfg
    return {
        "lr_given": cfg.lr,
        "lr_scaling": cfg.lr_scaling,
        "lr_base_batch": cfg.lr_base_batch,
        "lr_used": trainer.lr0,
        "global_batch": cfg.batch_size,
        "per_process_batch": trainer.local_batch,
        "world_size": trainer.denv.world_size,
        "device": trainer.device.type,
        "precision": cfg.precision,
        "optimizer": cfg.optimizer,
        "steps_per_epoch": trainer.steps_per_epoch,
        "epochs": trainer.epoch,
        "max_epochs": cfg.epochs,
        "stop_patience": cfg.stop_patience,
        "stop_min_delta": cfg.stop_min_delta,
        "stop_epoch": trainer.stop["epoch"],
        "stop_reason": trainer.stop["reason"],
        "flatness": trainer.stop["flatness"],
        "negatives": "per process: K of the other pairs of the process's own batch",
        "backend": ("nccl" if trainer.device.type == "cuda" else "gloo")
        if trainer.denv.active
        else None,
    }


def pretrain(
    trainer: Trainer,
    out_dir: Path,
    checkpoint_dir: Path,
    desc: str = "pretrain",
    data_dir: Path | None = None,
) -> None:
    """Train until the stopping rule or the `epochs` cap (:mod:`surrogap.training.stopping`),
    resuming from `checkpoint_dir`, and write `out_dir`
    (model.pt, trajectory.csv, train_info.json, live/) atomically at the end; then remove
    `checkpoint_dir` (the run's own folder: :mod:`surrogap.training.checkpoint`).

    Distributed: rank 0 alone reads (and broadcasts) the checkpoint, evaluates, decides the
    stop for every rank and writes (docs/SCALING.md)."""
    cfg, denv = trainer.cfg, trainer.denv
    main = denv.is_main
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if main and cfg.lr_scaling != "none":
        print(
            f"lr: {trainer.lr0:g} used = {cfg.lr:g} scaled by lr_scaling {cfg.lr_scaling} "
            f"(global batch {cfg.batch_size}, base {cfg.lr_base_batch})",
            file=sys.stderr,
        )
    ckpt = checkpoint_dir / checkpoint.NAME
    if main:
        checkpoint.drop_if_done(checkpoint_dir, out_dir, data_dir)
    state = checkpoint.load(ckpt, trainer.run_info) if main else None
    if state is not None:
        why = checkpoint.misfit(state, trainer.model, trainer.opt)
        if why:
            checkpoint.note(f"checkpoint {str(ckpt)!r} does not fit this run's model: {why}")
            state = None
    state = distributed.broadcast_object(state, denv)
    if state is not None:
        trainer.load_state(state)
        if main:
            print(
                f"resuming from {str(ckpt)!r} at epoch {trainer.epoch}/{cfg.epochs}",
                file=sys.stderr,
            )
    live_dir = checkpoint_dir / "live"
    live = bar = None
    if main:
        shutil.rmtree(live_dir, ignore_errors=True)  # rebuilt from the checkpoint's trajectory
        live = _open_live(live_dir)
        for row in trainer.trajectory:
            _log_live(live, row)
    if trainer.epoch == 0 and not trainer.trajectory:
        if main:
            row = {"epoch": 0, "train_loss": float("nan"), **trainer.evaluate(), "lr": trainer.lr()}
            trainer.trajectory.append(row)
            _log_live(live, row)
        distributed.barrier(denv)
    if main:
        bar = _progress(cfg.epochs, trainer.epoch, desc)
        if trainer.stop is None:  # training again: the checkpoint is not final any more
            (checkpoint_dir / checkpoint.COMPLETE).unlink(missing_ok=True)
    try:
        while trainer.stop is None:
            t0 = time.perf_counter()
            lr = trainer.lr()
            loss = trainer.train_epoch()
            rate = trainer.steps_per_epoch * cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
            e = trainer.epoch
            if main:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", samples_per_s=f"{rate:.0f}")
            if e % cfg.eval_every == 0 or e == cfg.epochs:
                if main:
                    row = {"epoch": e, "train_loss": loss, **trainer.evaluate(), "lr": lr}
                    trainer.trajectory.append(row)
                    _log_live(live, row)
                    trainer.decide_stop()
                # rank 0's decision on every rank (the others hold no trajectory rows)
                trainer.stop = distributed.broadcast_object(trainer.stop, denv)
            if main and (e % cfg.checkpoint_every == 0 or trainer.stop is not None):
                checkpoint.save(ckpt, trainer.state())
        if live is not None:  # the stop's epoch, reason and flatness in metrics.json
            live.summary["stop"] = dict(trainer.stop)
            live.make_summary()
    finally:
        if bar is not None:
            bar.close()
        if live is not None:
            live.end()
    if main:
        final = {
            "model": trainer.model.state_dict(),
            "run": trainer.run_info,
            "epoch": trainer.epoch,
            "version": __version__,
        }
        with io.atomic_dir(out_dir) as tmp:
            torch.save(final, tmp / "model.pt")
            lines = [",".join(TRAJECTORY_COLUMNS)]
            lines += [
                ",".join(
                    repr(float(r[c])) if c != "epoch" else str(r[c]) for c in TRAJECTORY_COLUMNS
                )
                for r in trainer.trajectory
            ]
            (tmp / "trajectory.csv").write_text("\n".join(lines) + "\n")
            (tmp / "train_info.json").write_text(json.dumps(train_info(trainer), indent=2) + "\n")
            shutil.copytree(live_dir, tmp / "live")
        # complete: the final checkpoint stays until DVC records the output (a rerun that
        # finds it recorded trains from epoch 0; one that does not resumes at the end)
        checkpoint.mark_complete(checkpoint_dir, out_dir, data_dir)
    distributed.barrier(denv)
    distributed.teardown()
