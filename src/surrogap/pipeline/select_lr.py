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

from surrogap.core import io
from surrogap.core.errors import UserError
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
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{str(path)!r} is not a readable CSV ({type(exc).__name__})") from None
    lacking = [c for c in RESULTS_CSV_COLUMNS if c not in df.columns]
    if lacking:
        raise UserError(
            f"{str(path)!r} lacks the columns {', '.join(lacking)}; rerun the bounds stage"
        )
    if df.empty:
        raise UserError(f"{str(path)!r} holds no runs; rerun the bounds stage")
    return df


def run(results_path: Path, selected_path: Path) -> None:
    best = select(read_results(results_path))[list(RESULTS_CSV_COLUMNS)]
    io.write_with(
        selected_path,
        lambda p: best.to_csv(p, index=False, float_format="%.10g"),
        suffix=".csv",
    )
