"""The `select_lr` stage: model selection over the lr grid, as the paper does it.

For each (dataset, classes, K, seed), of the runs that differ only in their learning rate
(the dataset section's own train.lr and every entry of the params list `lr`), keep the one
with the best validation accuracy of the mean classifier (ties: the lower validation R_mu,
then the section's own lr, then the smaller lr). Reads
reports/results.csv, writes reports/selected.csv with the same columns and one row per
(dataset, classes, K, seed); with no extra lr the two tables hold the same rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from surrogap.core import files, io
from surrogap.core.schema import RESULTS_CSV_COLUMNS, RUN_KEYS


def select(df: pd.DataFrame) -> pd.DataFrame:
    """One row per RUN_KEYS: the run with the highest val_mean_acc."""
    order = df.assign(_own=df["lr"].isna()).sort_values(
        [*RUN_KEYS, "val_mean_acc", "val_supervised_loss", "_own", "lr"],
        ascending=[True] * len(RUN_KEYS) + [False, True, False, True],
        na_position="last",
        kind="mergesort",
    )
    best = order.groupby(list(RUN_KEYS), sort=True).head(1)
    return best.drop(columns="_own").sort_values(list(RUN_KEYS)).reset_index(drop=True)


def read_results(path: Path) -> pd.DataFrame:
    """reports/results.csv, every column typed as core.columns.COLUMNS says (one line names
    a value of the wrong type by line and column)."""
    return files.read_csv(
        path, RESULTS_CSV_COLUMNS, "results file", "rerun the bounds stage", keep_other=True
    )


def run(results_path: Path, selected_path: Path) -> None:
    best = select(read_results(results_path))[list(RESULTS_CSV_COLUMNS)]
    io.write_with(
        selected_path,
        lambda p: best.to_csv(p, index=False, float_format="%.10g"),
        suffix=".csv",
    )
