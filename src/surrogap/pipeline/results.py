"""The `bounds` stage: every bound at each run's measured test contrastive loss, in one table
(reports/results.csv) and a compact summary (reports/metrics.json)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from surrogap import bounds, config, io
from surrogap.config import check_top_level, dataset_section, run_name
from surrogap.errors import UserError
from surrogap.schema import RESULT_COLUMNS


def results_table(records: list[dict]) -> pd.DataFrame:
    """The tidy results DataFrame (RESULT_COLUMNS), sorted by dataset, classes, k, seed."""
    rows = []
    for r in records:
        prior = r.get("prior")
        setting = {"num_classes": r["classes"]} if prior is None else {"prior": prior}
        at = bounds.bounds_at(r["contrastive_loss"], r["k"], **setting)
        row = {**r, **{key: float(value) for key, value in at.items()}}
        row["holds"] = bool(row["bao_lower"] <= row["supervised_loss"] <= row["bao_upper"])
        rows.append(row)
    df = pd.DataFrame(rows)
    return (
        df[list(RESULT_COLUMNS)]
        .sort_values(["dataset", "classes", "k", "seed"])
        .reset_index(drop=True)
    )


def summary_metrics(df: pd.DataFrame) -> dict:
    """A compact per-dataset summary for `dvc metrics show` and `dvc exp show`."""
    out: dict = {"runs": len(df), "holds_all": bool(df["holds"].all())}
    for name, g in df.groupby("dataset", sort=True):
        by_k = g.groupby("k")[["supervised_loss", "mean_acc", "linear_acc"]].mean()
        out[name] = {
            "holds": f"{int(g['holds'].sum())}/{len(g)}",
            "best_k": int(by_k["supervised_loss"].idxmin()),
            "best_supervised_loss": round(float(by_k["supervised_loss"].min()), 4),
            "best_linear_acc": round(float(by_k["linear_acc"].max()), 4),
            "max_upper_slack": round(float((g["bao_upper"] - g["supervised_loss"]).max()), 4),
        }
    return out


def run(params: Mapping, probe_dir: Path, results_path: Path, metrics_path: Path) -> None:
    """One row per (dataset, classes, k, seed) of the current grid."""
    grid = config.grid(params)
    check_top_level(params)
    records, missing = [], []
    for name in grid.dataset:
        dataset_section(params, name)
        for k in grid.k:
            for seed in grid.seed:
                path = probe_dir / name / f"{run_name(k, seed)}.json"
                if not path.exists():
                    missing.append(str(path))
                    continue
                records.append(json.loads(path.read_text()))
    if missing:
        raise UserError(
            f"{len(missing)} probe result(s) missing, first {missing[0]!r}; run `dvc repro` to make them"
        )
    df = results_table(records)
    for col in ("contrastive_loss", "supervised_loss"):
        bad = df[~np.isfinite(df[col])]
        if len(bad):
            r = bad.iloc[0]
            raise UserError(f"{col} of {r['dataset']} k={r['k']} seed={r['seed']} is not finite")
    io.write_with(
        results_path, lambda p: df.to_csv(p, index=False, float_format="%.10g"), suffix=".csv"
    )
    io.write_json(metrics_path, summary_metrics(df))
