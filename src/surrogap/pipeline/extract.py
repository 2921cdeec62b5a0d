"""The `extract` stage: frozen features of every split, computed once, encoder in eval mode,
for every seed of one (dataset, group): ``<models>/s<seed>/model.pt`` on
``<data>/s<seed>/`` into ``<out>/s<seed>.npz`` (one process per (dataset, K): torch is
imported once for all seeds; the folder is replaced whole)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from surrogap.core import io
from surrogap.core.config import at_least, spec, stage_config
from surrogap.core.config import seeds as config_seeds
from surrogap.core.errors import UserError
from surrogap.core.prepared import SPLITS
from surrogap.estimators.evaluation import check_finite
from surrogap.models.inference import encode, load_model
from surrogap.models.inputs import load_prepared


@dataclass(frozen=True)
class ExtractConfig:
    batch_size: int = spec(4096, check=at_least(1), allowed="an integer >= 1")


def features(data_dir: Path, model_path: Path, batch_size: int, expect: Mapping) -> dict:
    """The arrays of one seed's features file; the model file's own record of its run
    (dataset, K, seed) must be `expect`'s, so a model copied from another run is refused."""
    data = load_prepared(data_dir)
    model, run = load_model(model_path, data.meta)
    for key, want in expect.items():
        if key in run and run[key] != want:
            raise UserError(
                f"model {str(model_path)!r} was trained with {key} = {run[key]!r}, but this "
                f"instance is {key} = {want!r}; rerun the pretrain stage of this run"
            )
    arrays = {}
    with torch.inference_mode():
        for s in SPLITS:
            z = encode(model, data.splits[s], batch_size)
            check_finite(z, f"{s} features of {str(model_path)!r}")
            arrays[f"{s}_x"] = z.numpy()
            arrays[f"{s}_y"] = data.splits[s].y.numpy()
    return arrays


def run(
    params: Mapping, dataset: str, k: int, data_dir: Path, models_dir: Path, out_dir: Path
) -> None:
    cfg = stage_config(params, "extract", ExtractConfig)

    def write(seed: int, name: str, tmp: Path) -> None:
        expect = {"dataset": dataset, "k": k, "seed": seed}
        model = models_dir / name / "model.pt"
        np.savez(tmp / f"{name}.npz", **features(data_dir / name, model, cfg.batch_size, expect))

    io.write_seeds(out_dir, config_seeds(params), write)
