"""The `extract` stage: frozen features of every split, computed once, encoder in eval mode,
for every seed of one (dataset, group): ``<models>/s<seed>/model.pt`` on
``<data>/s<seed>/`` into ``<out>/s<seed>.npz`` (one process per (dataset, K): torch is
imported once for all seeds; the folder is replaced whole)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from surrogap.core import io
from surrogap.core.config import model, spec, stage_config
from surrogap.core.config import seeds as config_seeds
from surrogap.core.errors import UserError
from surrogap.core.prepared import SPLITS, check_dataset
from surrogap.estimators.evaluation import check_finite
from surrogap.models.inference import encode, load_model
from surrogap.models.inputs import load_prepared


@model
class ExtractConfig:
    batch_size: int = spec(4096, ge=1)


# what model.pt's run record says of its data (pretrain's checkpoint.run_info), compared
# with the prepared meta.json it is applied to
DATA_KEYS = ("kind", "num_classes", "sizes", "input_shape", "vocab_size")


def check_run(model_path: Path, run: Mapping, expect: Mapping, meta: Mapping) -> None:
    """The model file's own record of its run against this instance: dataset, K, seed and
    (``lr`` in `expect`, None: the section's own) the learning rate; and the data it was
    trained on against meta.json. A model copied from another run is refused."""
    where = f"model {str(model_path)!r}"
    again = "rerun the pretrain stage of this run"
    for key, want in expect.items():
        if key == "lr":
            got = (run.get("train") or {}).get("lr")
            if want is None or got is None or float(got) == float(want):
                continue
            key = "train.lr"
        elif key not in run or run[key] == want:
            continue
        else:
            got = run[key]
        raise UserError(
            f"{where} was trained with {key} = {got!r}, but this instance is {key} = "
            f"{want!r}; {again}"
        )
    data = run.get("data")
    if isinstance(data, Mapping):
        for key in DATA_KEYS:
            if key in data and data[key] != meta.get(key):
                raise UserError(
                    f"{where} was trained on data with {key} = {data[key]!r}, but its prepared "
                    f"meta.json has {key} = {meta.get(key)!r}; {again}"
                )


def features(data_dir: Path, model_path: Path, batch_size: int, expect: Mapping) -> dict:
    """The arrays of one seed's features file; the model file's own record of its run
    must be `expect`'s and its data the prepared data's (:func:`check_run`)."""
    data = load_prepared(data_dir)
    check_dataset(data.meta, expect["dataset"], data_dir)
    model, run = load_model(model_path, data.meta)
    check_run(model_path, run, expect, data.meta)
    arrays = {}
    with torch.inference_mode():
        for s in SPLITS:
            z = encode(model, data.splits[s], batch_size)
            check_finite(z, f"{s} features of {str(model_path)!r}")
            arrays[f"{s}_x"] = z.numpy()
            arrays[f"{s}_y"] = data.splits[s].y.numpy()
    return arrays


def run(
    params: Mapping,
    dataset: str,
    k: int,
    data_dir: Path,
    models_dir: Path,
    out_dir: Path,
    lr: float | None = None,
) -> None:
    """Every seed's features; `lr`: the group's entry of the lr grid (None: the section's
    own train.lr, not compared)."""
    cfg = stage_config(params, "extract", ExtractConfig)

    def write(seed: int, name: str, tmp: Path) -> None:
        expect = {"dataset": dataset, "k": k, "seed": seed, "lr": lr}
        model = models_dir / name / "model.pt"
        np.savez(tmp / f"{name}.npz", **features(data_dir / name, model, cfg.batch_size, expect))

    io.write_seeds(out_dir, config_seeds(params), write)
