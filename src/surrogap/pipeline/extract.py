"""The `extract` stage: frozen features of every split, computed once, encoder in eval mode."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from surrogap.core import io
from surrogap.core.config import at_least, spec, stage_config
from surrogap.core.prepared import SPLITS
from surrogap.estimators.evaluation import check_finite
from surrogap.models.inference import encode, load_model
from surrogap.models.inputs import load_prepared


@dataclass(frozen=True)
class ExtractConfig:
    batch_size: int = spec(4096, check=at_least(1), allowed="an integer >= 1")


def run(params: Mapping, data_dir: Path, model_path: Path, out_path: Path) -> None:
    cfg = stage_config(params, "extract", ExtractConfig)
    data = load_prepared(data_dir)
    model, _ = load_model(model_path, data.meta)
    arrays = {}
    with torch.inference_mode():
        for s in SPLITS:
            z = encode(model, data.splits[s], cfg.batch_size)
            check_finite(z, f"{s} features of {str(model_path)!r}")
            arrays[f"{s}_x"] = z.numpy()
            arrays[f"{s}_y"] = data.splits[s].y.numpy()
    io.write_with(out_path, lambda p: np.savez(p, **arrays), suffix=".npz")
