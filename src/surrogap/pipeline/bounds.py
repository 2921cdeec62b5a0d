"""The `bounds` stage: every bound at each run's measured test contrastive loss, in one table
(reports/results.csv), and a summary in numbers (reports/metrics/: all.json and one file per
dataset, for `dvc metrics show`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from surrogap.core import config, files, io
from surrogap.core.columns import COLUMNS, probe_record
from surrogap.core.config import check_top_level, dataset_section
from surrogap.core.errors import UserError
from surrogap.core.prepared import check_dataset, read_checked_meta
from surrogap.core.schema import RESULTS_CSV_COLUMNS, RUN_KEYS, run_dir, run_name, seed_dir
from surrogap.theory import bounds

# what a probe record (data/probe/<dataset>/<group>/s<seed>.json) must hold: every column
# of results.csv the bounds do not add (core.columns), and the numbers among them
RECORD_KEYS = probe_record()
RESULT_NUMBERS = tuple(key for key in RECORD_KEYS if COLUMNS[key].type == "finite")


def _number(rec: dict, key: str, where: str, again: str) -> None:
    """A finite number within its column's `allowed` (core.columns)."""
    v, (test, allowed) = rec[key], COLUMNS[key].allowed or (lambda v: True, "a number")
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not (ok and test(v)):
        raise UserError(f"{where}: {key} is {v!r}, allowed: a finite {allowed[2:]}; {again}")


def read_record(
    path: Path,
    dataset: str,
    k: int,
    seed: int,
    lr,
    prepared_dir: Path | None = None,
    metas: dict | None = None,
) -> dict:
    """One probe record, checked against its neighbours: its dataset, K, seed and lr
    against the run it is read for (its folder, as schema.run_dir names it, and the
    bounds stage's grid), its classes, kind and prior against the run's prepared
    meta.json (where `prepared_dir` is given; checked against its arrays, and kept in
    `metas`, by folder), and its numbers (finite, losses >= 0,
    accuracies in [0, 1])."""
    again = "rerun the probe stage of this run"
    rec = files.read_json(path, "probe record", again, RECORD_KEYS)
    where = f"probe record {str(path)!r}"
    run = run_name(k, seed, lr)
    for key, want in (("dataset", dataset), ("k", k), ("seed", seed)):
        if rec[key] != want or isinstance(rec[key], bool):
            raise UserError(
                f"{where} says {key} {rec[key]!r} but it is the record of run {run} of "
                f"{dataset} ({key} {want!r}); {again}"
            )
    if "lr" in rec:
        got = rec["lr"]
        same = got is None if lr is None else isinstance(got, (int, float)) and got == float(lr)
        if not same:
            want = "none: the section's own train.lr" if lr is None else repr(lr)
            raise UserError(
                f"{where} says lr {got!r} but it is the record of run {run} of {dataset} "
                f"(lr {want}); {again}"
            )
    c = rec["classes"]
    if isinstance(c, bool) or not isinstance(c, int) or c < 2:
        raise UserError(f"{where}: classes is {c!r}, allowed: an integer >= 2; {again}")
    for key in RESULT_NUMBERS:
        _number(rec, key, where, again)
    if prepared_dir is not None:
        folder = prepared_dir / dataset / seed_dir(seed)
        metas = {} if metas is None else metas  # each folder read once per stage
        if folder not in metas:
            metas[folder] = read_checked_meta(folder)
        meta = metas[folder]
        check_dataset(meta, dataset, folder)
        mwhere = repr(str(folder / "meta.json"))
        for key, mkey in (("classes", "num_classes"), ("kind", "kind"), ("prior", "prior")):
            if rec.get(key) != meta.get(mkey):
                raise UserError(
                    f"{where} says {key} {rec.get(key)!r} but {mwhere} says {mkey} "
                    f"{meta.get(mkey)!r}; {again}"
                )
    return rec


def results_table(records: list[dict], paths: list[Path] | None = None) -> pd.DataFrame:
    """The tidy results DataFrame (RESULTS_CSV_COLUMNS), sorted by dataset, classes, k, seed
    and lr (the section's own lr, empty, first). `paths` name each record's file in a
    refusal of its numbers."""
    rows = []
    for i, r in enumerate(records):
        prior = r.get("prior")
        setting = {"num_classes": r["classes"]} if prior is None else {"prior": prior}
        try:
            at = bounds.bounds_at(r["contrastive_loss"], r["k"], **setting)
        except UserError as exc:
            if paths is None:
                raise
            raise UserError(f"probe record {str(paths[i])!r}: {exc}") from None
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


def run(
    params: Mapping,
    probe_dir: Path,
    results_path: Path,
    metrics_dir: Path,
    prepared_dir: Path | None = None,
) -> None:
    """One row per (dataset, classes, k, seed, lr) of the current grid (lr: the section's
    own train.lr, then every entry of the `lr` list); each probe record checked against its
    run and (`prepared_dir`) its prepared meta.json: :func:`read_record`."""
    grid = config.grid(params)
    check_top_level(params)
    lrs = [None, *params.get("lr", [])]  # as params.yaml writes them: they name the runs
    records, paths, missing, metas = [], [], [], {}
    for name in grid.dataset:
        dataset_section(params, name)
        for k in grid.k:
            for seed in grid.seed:
                for lr in lrs:
                    path = probe_dir / name / f"{run_dir(k, seed, lr)}.json"
                    if not path.exists():
                        missing.append(str(path))
                        continue
                    rec = read_record(path, name, k, seed, lr, prepared_dir, metas)
                    records.append({**rec, "run": run_name(k, seed, lr)})
                    paths.append(path)
    if missing:
        raise UserError(
            f"{len(missing)} probe result(s) missing, first {missing[0]!r}; run `dvc repro` to make them"
        )
    df = results_table(records, paths)  # read_record refused any non-finite number
    io.write_with(
        results_path, lambda p: df.to_csv(p, index=False, float_format="%.10g"), suffix=".csv"
    )
    with io.atomic_dir(metrics_dir) as tmp:  # the folder is replaced whole
        for name, record in summary_metrics(df).items():
            (tmp / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
