"""The library side of the DVC stages: `prepare`, `pretrain`, `extract`, `probe`, `bounds`.

Each `stages/<name>.py` parses its command line and calls the function of the same name
here. Every function validates the params it reads before any work, and writes its outputs
atomically. See docs/ARCHITECTURE.md for the files between stages.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surrogap import bounds, config, io
from surrogap.config import at_least, spec
from surrogap.errors import UserError

STAGE_SECTIONS = ("theory", "extract", "probe", "bounds", "report", "evaluate")
DATASET_BLOCKS = ("data", "encoder", "train")

RESULT_COLUMNS = (
    "dataset",
    "kind",
    "classes",
    "k",
    "seed",
    "contrastive_loss",
    "contrastive_loss_se",
    "supervised_loss",
    "mean_acc",
    "linear_acc",
    "linear_loss",
    "val_supervised_loss",
    "val_mean_acc",
    "lower_gap",
    "upper_gap",
    "bao_lower",
    "bao_upper",
    "arora",
    "nozawa_sato",
    "ash",
    "holds",
)


def run_name(k: int, seed: int) -> str:
    return f"k{k}-s{seed}"


def stage_main(name: str, body: Callable[[], None]) -> int:
    """Run a stage body; a UserError, or an input file that cannot be read (OSError), is one
    line on stderr and exit status 2."""
    try:
        body()
    except UserError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"stage {name}: {message}", file=sys.stderr)
        return 2
    except OSError as exc:  # surrogap.io turns failed writes into UserErrors: mostly a read
        where = f"{str(exc.filename)!r}: " if exc.filename else ""
        print(f"stage {name}: cannot access {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


# --------------------------------------------------------------------------- params
def check_top_level(params: Mapping) -> None:
    """Every top-level key is a grid list, a stage section or a dataset section."""
    known = (*config.GRID_KEYS, *STAGE_SECTIONS)
    for key, value in params.items():
        if key in known:
            continue
        if isinstance(value, Mapping) and "data" in value:
            extra = sorted(set(value) - set(DATASET_BLOCKS))
            if extra:
                raise UserError(
                    f"{key}: unknown key {extra[0]!r}; a dataset section holds {', '.join(DATASET_BLOCKS)}"
                )
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(
            f"unknown params key {key!r}{hint}; allowed: {', '.join(known)}, or a dataset section with a 'data' block"
        )


def dataset_section(params: Mapping, name: str) -> Mapping:
    check_top_level(params)
    section = params.get(name)
    if not isinstance(section, Mapping) or "data" not in section:
        sections = sorted(k for k, v in params.items() if isinstance(v, Mapping) and "data" in v)
        raise UserError(
            f"dataset: got {name!r}, allowed: {', '.join(sections) or 'none defined'} (dataset sections of params.yaml)"
        )
    return section


def data_config(params: Mapping, name: str):
    from surrogap.data import parse_data_config

    return parse_data_config(dataset_section(params, name)["data"], f"{name}.data")


def encoder_config(params: Mapping, name: str):
    from surrogap.models import parse_encoder_config

    return parse_encoder_config(dataset_section(params, name).get("encoder"), f"{name}.encoder")


def train_config(params: Mapping, name: str):
    from surrogap.train import TrainConfig

    return config.parse(TrainConfig, dataset_section(params, name).get("train"), f"{name}.train")


@dataclass(frozen=True)
class ExtractConfig:
    batch_size: int = spec(4096, check=at_least(1), allowed="an integer >= 1")


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


def stage_config(params: Mapping, name: str, cls):
    check_top_level(params)
    return config.parse(cls, params.get(name), name)


# --------------------------------------------------------------------------- prepare
def prepare(params: Mapping, dataset: str, out_dir: Path, root: Path) -> None:
    from surrogap import data

    cfg = data_config(params, dataset)
    prepared = data.build(cfg, root)
    data.write_prepared(prepared, dataset, cfg.kind, getattr(cfg, "prior", "uniform"), out_dir)


# --------------------------------------------------------------------------- pretrain
def pretrain(
    params: Mapping,
    dataset: str,
    k: int,
    seed: int,
    data_dir: Path,
    out_dir: Path,
    checkpoint_dir: Path,
) -> None:
    from surrogap import train
    from surrogap.data import load_prepared

    enc = encoder_config(params, dataset)
    tcfg = train_config(params, dataset)
    data = load_prepared(data_dir)
    train.check_sizes(tcfg, k, data, f"{dataset}.train")
    augment = None
    if data.meta.get("augment"):
        from surrogap.augment import build_augment

        augment = build_augment(data.meta)
    info = train.run_info(dataset, k, seed, enc, tcfg, data.meta)
    trainer = train.Trainer(tcfg, enc, data, k, seed, info, augment=augment)
    train.pretrain(trainer, out_dir, checkpoint_dir, desc=f"pretrain {dataset} {run_name(k, seed)}")


# --------------------------------------------------------------------------- extract
def extract(params: Mapping, data_dir: Path, model_path: Path, out_path: Path) -> None:
    import torch

    from surrogap.data import SPLITS, load_prepared
    from surrogap.evaluation import check_finite
    from surrogap.train import encode, load_model

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


# --------------------------------------------------------------------------- probe
def probe(
    params: Mapping,
    dataset: str,
    k: int,
    seed: int,
    data_dir: Path,
    features_path: Path,
    out_path: Path,
) -> None:
    import torch

    from surrogap.evaluation import (
        check_finite,
        contrastive_loss_estimate,
        linear_probe,
        mean_classifier,
    )

    cfg = stage_config(params, "probe", ProbeConfig)
    meta = json.loads((data_dir / "meta.json").read_text())
    c = int(meta["num_classes"])
    try:
        with np.load(features_path) as f:
            z = {s: torch.from_numpy(f[f"{s}_x"]) for s in ("train", "val", "test")}
            y = {s: torch.from_numpy(f[f"{s}_y"]) for s in ("train", "val", "test")}
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


# --------------------------------------------------------------------------- bounds
def results_table(records: list[dict]):
    """The tidy results DataFrame (RESULT_COLUMNS), sorted by dataset, classes, k, seed."""
    import pandas as pd

    rows = []
    for r in records:
        prior = r.get("prior")
        setting = {"num_classes": r["classes"]} if prior is None else {"prior": prior}
        at = bounds.bounds_at(r["contrastive_loss"], r["k"], **setting)
        row = {**r, **{key: float(value) for key, value in at.items()}}
        row["holds"] = bounds.holds(row["bao_lower"], row["supervised_loss"], row["bao_upper"])
        rows.append(row)
    df = pd.DataFrame(rows)
    return (
        df[list(RESULT_COLUMNS)]
        .sort_values(["dataset", "classes", "k", "seed"])
        .reset_index(drop=True)
    )


def summary_metrics(df) -> dict:
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


def collect(params: Mapping, probe_dir: Path, results_path: Path, metrics_path: Path) -> None:
    """The `bounds` stage: one row per (dataset, classes, k, seed) of the current grid."""
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
