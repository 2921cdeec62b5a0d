"""The `probe` stage: mean classifier, linear probe and test contrastive loss of one run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from surrogap import io
from surrogap.config import at_least, spec, stage_config
from surrogap.errors import UserError
from surrogap.evaluation import (
    check_finite,
    contrastive_loss_estimate,
    linear_probe,
    mean_classifier,
)
from surrogap.schema import FEATURE_SPLITS


@dataclass(frozen=True)
class ProbeConfig:
    repeats: int = spec(
        10, check=at_least(10), allowed="an integer >= 10 (independent pairings of the test split)"
    )
    weight_decays: tuple[float, ...] = spec(
        factory=lambda: (0.0, 1e-4, 1e-2),
        check=lambda v: len(v) > 0 and all(x >= 0 for x in v),
        allowed="a non-empty list of numbers >= 0 (the linear probe's grid, chosen on val accuracy)",
    )
    max_iter: int = spec(200, check=at_least(1), allowed="an integer >= 1 (L-BFGS iterations)")


def run(
    params: Mapping,
    dataset: str,
    k: int,
    seed: int,
    data_dir: Path,
    features_path: Path,
    out_path: Path,
    lr: float | None = None,
) -> None:
    """One run's record; `lr` is the run's entry of the lr grid (None: the section's)."""
    cfg = stage_config(params, "probe", ProbeConfig)
    meta = json.loads((data_dir / "meta.json").read_text())
    c = int(meta["num_classes"])
    try:
        with np.load(features_path) as f:
            z = {s: torch.from_numpy(f[f"{s}_x"]) for s in FEATURE_SPLITS}
            y = {s: torch.from_numpy(f[f"{s}_y"]) for s in FEATURE_SPLITS}
    except OSError:
        raise
    except Exception as exc:  # truncated or foreign (BadZipFile, ValueError, KeyError)
        raise UserError(
            f"features {str(features_path)!r} are unreadable ({type(exc).__name__}); "
            "rerun the extract stage"
        ) from None
    for s, zs in z.items():
        check_finite(zs, f"{s} features of {str(features_path)!r}")
    test = mean_classifier(z["train"], y["train"], z["test"], y["test"], c)
    val = mean_classifier(z["train"], y["train"], z["val"], y["val"], c)
    est = contrastive_loss_estimate(z["test"], y["test"], k, repeats=cfg.repeats, seed=seed)
    lin = linear_probe(
        z["train"],
        y["train"],
        z["val"],
        y["val"],
        z["test"],
        y["test"],
        c,
        weight_decays=cfg.weight_decays,
        max_iter=cfg.max_iter,
        seed=seed,
    )
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
        "supervised_loss": test["supervised_loss"],
        "mean_acc": test["mean_acc"],
        "val_supervised_loss": val["supervised_loss"],
        "val_mean_acc": val["mean_acc"],
        **lin,
    }
    io.write_json(out_path, record)
