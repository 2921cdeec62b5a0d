"""The `probe` stage: mean classifier, linear probe and test contrastive loss of every seed of
one (dataset, group): ``<features>/s<seed>.npz`` into ``<out>/s<seed>.json`` (the record) and
``<out>/s<seed>.npz`` (per-test-point arrays); one instance per (dataset, K), its seeds
side by side in forked processes (core.parallel), the folder replaced whole."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field

from surrogap.core import files, io
from surrogap.core.config import model, spec, stage_config
from surrogap.core.config import seeds as config_seeds
from surrogap.core.errors import UserError
from surrogap.core.parallel import stage_jobs
from surrogap.core.prepared import check_dataset, read_labels
from surrogap.core.schema import FEATURE_SPLITS, PROBE_ARRAYS
from surrogap.estimators.evaluation import (
    check_finite,
    contrastive_loss_estimate,
    linear_probe_points,
    mean_classifier,
    mean_classifier_points,
)


@model
class ProbeConfig:
    repeats: int = spec(
        10, ge=10, allowed="an integer >= 10 (independent pairings of the test split)"
    )
    weight_decays: tuple[Annotated[float, Field(ge=0)], ...] = spec(
        factory=lambda: (0.0, 1e-4, 1e-2),
        min_length=1,
        allowed="a non-empty list of numbers >= 0 (the linear probe's grid, chosen on validation loss)",
    )
    max_iter: int = spec(200, ge=1, allowed="an integer >= 1 (L-BFGS iterations)")


def load_features(path: Path, num_classes: int) -> tuple[dict, dict]:
    """The features (float32/64, (n, d)) and labels (int64, (n,)) of every split of an
    extract .npz, checked: readable, each split's arrays of one length, one dimension d >= 1
    across splits, float features, integer labels in 0..C-1, finite values. A bad file is
    one UserError line naming it and what is wrong."""
    where = f"features {str(path)!r}"
    again = "rerun the extract stage"
    keys = [f"{s}_{a}" for s in FEATURE_SPLITS for a in "xy"]
    arrays = files.read_npz(path, "features", again, keys)
    z = {s: arrays[f"{s}_x"] for s in FEATURE_SPLITS}
    y = {s: arrays[f"{s}_y"] for s in FEATURE_SPLITS}
    dims = set()
    for s in FEATURE_SPLITS:
        zs, ys = z[s], y[s]
        if zs.ndim != 2 or zs.dtype.kind != "f":
            raise UserError(
                f"{where}: {s}_x is {zs.dtype} of shape {zs.shape}, allowed: float (n, d); {again}"
            )
        if ys.ndim != 1 or ys.dtype.kind not in "iu":
            raise UserError(
                f"{where}: {s}_y is {ys.dtype} of shape {ys.shape}, allowed: integer (n,); {again}"
            )
        if zs.shape[0] != ys.shape[0]:
            raise UserError(
                f"{where}: {s}_x has {zs.shape[0]} rows but {s}_y {ys.shape[0]} labels; {again}"
            )
        if ys.size and (ys.min() < 0 or ys.max() >= num_classes):
            bad = int(ys[(ys < 0) | (ys >= num_classes)][0])
            raise UserError(
                f"{where}: {s}_y holds label {bad}, allowed: 0..{num_classes - 1} "
                f"(meta.json's num_classes); {again}"
            )
        dims.add(zs.shape[1])
        check_finite(zs, f"{s} features of {str(path)!r}")
    if len(dims) != 1 or 0 in dims:
        shapes = ", ".join(f"{s}_x {z[s].shape}" for s in FEATURE_SPLITS)
        raise UserError(f"{where}: the splits disagree on the dimension ({shapes}); {again}")
    return z, {s: y[s].astype(np.int64) for s in FEATURE_SPLITS}


def probe_seed(
    cfg: ProbeConfig,
    dataset: str,
    k: int,
    seed: int,
    data_dir: Path,
    features_path: Path,
    out_path: Path,
    lr: float | None = None,
    points_path: Path | None = None,
) -> None:
    """One run's record `out_path` (.json; `lr` is the run's entry of the lr grid, None: the
    section's) and, at `points_path` (.npz), the per-test-point arrays of
    schema.PROBE_ARRAYS in the order of the test split: labels `y` (int64), the mean
    classifier's and the linear probe's cross-entropy (float64) and correctness (bool)."""
    meta, labels = read_labels(data_dir)
    check_dataset(meta, dataset, data_dir)
    c = int(meta["num_classes"])
    z, y = load_features(features_path, c)
    for s in FEATURE_SPLITS:  # features of another seed or dataset carry other labels
        if not np.array_equal(y[s], labels[s]):
            raise UserError(
                f"features {str(features_path)!r}: {s}_y are not the labels of "
                f"{str(data_dir / f'{s}.npz')!r} (features of another seed or dataset?); "
                "rerun the extract stage"
            )
    mean_loss, mean_correct = mean_classifier_points(
        z["train"], y["train"], z["test"], y["test"], c
    )
    val = mean_classifier(z["train"], y["train"], z["val"], y["val"], c)
    est = contrastive_loss_estimate(z["test"], y["test"], k, repeats=cfg.repeats, seed=seed)
    lin, linear_loss, linear_correct = linear_probe_points(
        *(arrays[s] for s in FEATURE_SPLITS for arrays in (z, y)),  # train, val, test
        c,
        weight_decays=cfg.weight_decays,
        max_iter=cfg.max_iter,
    )
    n = mean_loss.size
    record = {
        "dataset": dataset,
        "kind": meta["kind"],
        "classes": c,
        "k": k,
        "seed": seed,
        "lr": lr,
        "prior": meta.get("prior"),
        "contrastive_loss": est.mean,
        "contrastive_loss_se": est.se,
        "contrastive_repeats": est.repeats,
        "supervised_loss": math.fsum(mean_loss) / n,
        "mean_acc": int(mean_correct.sum()) / n,
        "val_supervised_loss": val["supervised_loss"],
        "val_mean_acc": val["mean_acc"],
        **lin,
    }
    points = dict(
        zip(
            PROBE_ARRAYS,
            (y["test"], mean_loss, mean_correct, linear_loss, linear_correct),
            strict=True,
        )
    )
    if points_path is not None:
        io.write_with(points_path, lambda p: np.savez(p, **points), suffix=".npz")
    io.write_json(out_path, record)


def run(
    params: Mapping,
    dataset: str,
    k: int,
    data_dir: Path,
    features_dir: Path,
    out_dir: Path,
    lr: float | None = None,
) -> None:
    """Every seed of params `seed`: its record and per-point arrays into `out_dir`."""
    cfg = stage_config(params, "probe", ProbeConfig)

    def write(seed: int, name: str, tmp: Path) -> None:
        features = features_dir / f"{name}.npz"
        out, points = tmp / f"{name}.json", tmp / f"{name}.npz"
        probe_seed(cfg, dataset, k, seed, data_dir / name, features, out, lr, points)

    io.write_seeds(out_dir, config_seeds(params), write, stage_jobs())
