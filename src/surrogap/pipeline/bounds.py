"""The `bounds` stage: every bound at each run's measured test contrastive loss, in one table
(reports/results.csv), and a summary in numbers (reports/metrics/: all.json and one file per
dataset, for `dvc metrics show`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from surrogap.core import config, io
from surrogap.core.config import check_top_level, dataset_section
from surrogap.core.errors import UserError
from surrogap.core.schema import RESULTS_CSV_COLUMNS, RUN_KEYS, run_dir, run_name
from surrogap.theory import bounds


def results_table(records: list[dict]) -> pd.DataFrame:
    """The tidy results DataFrame (RESULTS_CSV_COLUMNS), sorted by dataset, classes, k, seed
    and lr (the section's own lr, empty, first)."""
    rows = []
    for r in records:
        prior = r.get("prior")
        setting = {"num_classes": r["classes"]} if prior is None else {"prior": prior}
        at = bounds.bounds_at(r["contrastive_loss"], r["k"], **setting)
        row = {**r, **{key: float(value) for key, value in at.items()}}
        row["holds"] = bounds.holds(row["bao_lower"], row["supervised_loss"], row["bao_upper"])
        row["lr"] = r.get("lr")
        row["run"] = r.get("run") or run_name(r["k"], r["seed"], r.get("lr"))
        rows.append(row)
    df = pd.DataFrame(rows)
    df["lr"] = pd.to_numeric(df["lr"], errors="coerce").astype(float)
    return (
        df[list(RESULTS_CSV_COLUMNS)]
        .sort_values([*RUN_KEYS, "lr"], na_position="first")
        .reset_index(drop=True)
    )


def summary_metrics(df: pd.DataFrame) -> dict[str, dict]:
    """Numbers for `dvc metrics show/diff` and `dvc exp show`: one small record per file
    name, ``all`` and then one per dataset, sharing their keys so that `dvc metrics show`
    prints one short row per file.

    ``runs``; ``holds``: how many runs R_mu lies inside Bao et al.'s band for, and
    ``holds_fraction``; per dataset also the K of the lowest mean R_mu over seeds
    (``best_k``), that R_mu (``r_mu``, nats), the best mean linear-probe accuracy
    (``linear_acc``) and the largest ``bao_upper - R_mu`` (``slack``, nats).
    """

    def holds(g: pd.DataFrame) -> dict:
        count = int(g["holds"].sum())
        return {"runs": len(g), "holds": count, "holds_fraction": round(count / len(g), 4)}

    out = {"all": holds(df)}
    for name, g in df.groupby("dataset", sort=True):
        by_k = g.groupby("k")[["supervised_loss", "linear_acc"]].mean()
        out[str(name)] = {
            **holds(g),
            "best_k": int(by_k["supervised_loss"].idxmin()),
            "r_mu": round(float(by_k["supervised_loss"].min()), 4),
            "linear_acc": round(float(by_k["linear_acc"].max()), 4),
            "slack": round(float((g["bao_upper"] - g["supervised_loss"]).max()), 4),
        }
    return out


def run(params: Mapping, probe_dir: Path, results_path: Path, metrics_dir: Path) -> None:
    """One row per (dataset, classes, k, seed, lr) of the current grid (lr: the section's
    own train.lr, then every entry of the `lr` list)."""
    grid = config.grid(params)
    check_top_level(params)
    lrs = [None, *params.get("lr", [])]  # as params.yaml writes them: they name the runs
    records, missing = [], []
    for name in grid.dataset:
        dataset_section(params, name)
        for k in grid.k:
            for seed in grid.seed:
                for lr in lrs:
                    path = probe_dir / name / f"{run_dir(k, seed, lr)}.json"
                    if not path.exists():
                        missing.append(str(path))
                        continue
                    records.append({**json.loads(path.read_text()), "run": run_name(k, seed, lr)})
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
    with io.atomic_dir(metrics_dir) as tmp:  # the folder is replaced whole
        for name, record in summary_metrics(df).items():
            (tmp / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
