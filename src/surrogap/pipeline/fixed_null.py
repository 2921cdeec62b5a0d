"""The `fixed_null` stage: the mechanical null of the surrogate gap's decay (reports/null.csv).

One fixed encoder per (dataset, seed), the one trained at the smallest K of the grid, is
evaluated at every K of the grid with the probe stage's own estimators and pairing (the
mean classifier on the test split, class means from the train split; the test contrastive
loss over `probe.repeats` pairings seeded by the seed). Its R_mu does not change with K and
its R_cont rises with K, so its gap R_mu - R_cont falls with no learning at all: what part
of the measured decay a larger K does not explain. Reads the features the extract stage
wrote for the smallest K (``data/features/<dataset>/k<Kmin>/s<seed>.npz``) and the prepared
labels; trains nothing."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from surrogap.core import io
from surrogap.core.config import check_top_level, dataset_section, grid, stage_config
from surrogap.core.errors import UserError
from surrogap.core.prepared import check_dataset, read_labels
from surrogap.core.schema import FEATURE_SPLITS, NULL_COLUMNS, run_group, seed_dir
from surrogap.estimators.evaluation import contrastive_loss_estimate, mean_classifier
from surrogap.pipeline.probe import ProbeConfig, load_features


def null_rows(
    dataset: str, ks: list[int], seed: int, data_dir: Path, features_path: Path, repeats: int
) -> list[dict]:
    """One row per K of `ks` for the encoder whose features are `features_path`: the
    columns of schema.NULL_COLUMNS (`encoder_k` the K it was trained at)."""
    meta, labels = read_labels(data_dir)
    check_dataset(meta, dataset, data_dir)
    c = int(meta["num_classes"])
    z, y = load_features(features_path, c)
    for s in FEATURE_SPLITS:
        if not np.array_equal(y[s], labels[s]):
            raise UserError(
                f"features {str(features_path)!r}: {s}_y are not the labels of "
                f"{str(data_dir / f'{s}.npz')!r}; rerun the extract stage"
            )
    mean = mean_classifier(z["train"], y["train"], z["test"], y["test"], c)
    rows = []
    for k in ks:
        est = contrastive_loss_estimate(z["test"], y["test"], k, repeats=repeats, seed=seed)
        rows.append(
            {
                "dataset": dataset,
                "kind": meta["kind"],
                "classes": c,
                "k": k,
                "seed": seed,
                "encoder_k": min(ks),
                "contrastive_loss": est.mean,
                "contrastive_loss_se": est.se,
                **mean,
            }
        )
    return rows


def run(params: Mapping, features_dir: Path, prepared_dir: Path, out_path: Path) -> None:
    """Every (dataset, seed) of the grid: its smallest-K encoder at every K, one table."""
    check_top_level(params)
    g = grid(params)
    cfg = stage_config(params, "probe", ProbeConfig)
    ks = sorted(int(k) for k in g.k)
    rows = []
    for name in g.dataset:
        dataset_section(params, name)
        for seed in g.seed:
            features = features_dir / name / run_group(ks[0]) / f"{seed_dir(seed)}.npz"
            if not features.exists():
                raise UserError(
                    f"features {str(features)!r} are missing; run `dvc repro` to make them"
                )
            data = prepared_dir / name / seed_dir(seed)
            rows += null_rows(name, ks, int(seed), data, features, cfg.repeats)
    df = pd.DataFrame(rows, columns=list(NULL_COLUMNS))
    io.write_with(
        out_path, lambda p: df.to_csv(p, index=False, float_format="%.10g"), suffix=".csv"
    )
