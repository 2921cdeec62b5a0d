"""Reading what the pipeline wrote, checked: reports/results.csv, the pretrain
trajectories and train_info.json files, the prepared data's meta.json files,
reports/external.csv, the probe stage's per-test-point arrays, and the `report` section of
params.yaml.

Every problem with an input is one UserError line naming the file and what is wrong.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from surrogap.core import files, io
from surrogap.core.config import NAME, ONE_LINE, model, parse, spec
from surrogap.core.errors import UserError
from surrogap.core.prepared import SPLITS, read_checked_meta
from surrogap.core.schema import (
    EVALUATE_RECORD_COLUMNS,
    NULL_COLUMNS,
    PROBE_ARRAYS,
    REPORT_EXTERNAL_COLUMNS,
    REPORT_TRAJECTORY_COLUMNS,
    RESULT_COLUMNS,
    RUN_COLUMNS,
    RUN_NAME,
    TRAJECTORY_COLUMNS,
    run_dir,
    run_dir_of,
    seed_dir,
)
from surrogap.theory import bounds

__all__ = [
    "ReportParams",
    "load_external",
    "load_null",
    "load_points",
    "load_results",
    "load_scale",
    "load_trajectories",
    "parse_params",
    "points_path",
]

AGAIN_PRETRAIN = "rerun the pretrain stage of this run"
AGAIN_PROBE = "rerun the probe stage of this run"


# --------------------------------------------------------------------------- params
@model
class ReportParams:
    """The `report` section of params.yaml: presentation and every threshold of the claim
    tests (the report's "How this was made" quotes each)."""

    title: str = spec(
        "Surrogate gap between contrastive and supervised losses: reproduction report",
        pattern=ONE_LINE,
        allowed="a non-empty one-line string",
    )
    dpi: int = spec(150, ge=50, le=600)
    decimals: int = spec(3, ge=1, le=6)
    # one-sided confidence level of every test ("improves", "saturates", "decays", the rate)
    confidence: float = spec(0.95, gt=0.5, lt=1)
    # the power at which the report sizes a test of the effects of interest below
    power: float = spec(0.8, ge=0.5, lt=1)
    # the smallest effects of interest per unit log K, fixed in docs/PROTOCOL.md's
    # pre-registration (their use: docs/THEORY.md section 8): effect_r_mu for
    # R_mu, the gap and the slack, effect_accuracy for the accuracies
    effect_r_mu: float = spec(0.015, gt=0, lt=10)
    effect_accuracy: float = spec(0.015, gt=0, lt=1)
    # accuracies at or above this are at the ceiling: no room left to improve
    ceiling: float = spec(0.99, gt=0, le=1)
    # fewer seeds than this at some K: a trend verdict is inconclusive
    min_seeds: int = spec(3, ge=1)
    # a run collapsed when its validation mean-classifier accuracy lies this far (absolute)
    # below the median of the other seeds of the same dataset and K
    collapse_drop: float = spec(0.2, gt=0, lt=1)


def parse_params(section: Any) -> ReportParams:
    """Validate the `report` section (None: all defaults); one line names a bad key."""
    return parse(ReportParams, section, "report")


# --------------------------------------------------------------------------- results
def again_for(path: str | Path) -> str:
    """What to rerun for a bad table: selected.csv is select_lr's, results.csv the bounds
    stage's (a table of another name: the bounds stage, which writes the runs' rows)."""
    return f"rerun the {'select_lr' if Path(path).name == 'selected.csv' else 'bounds'} stage"


def load_results(path: str | Path) -> pd.DataFrame:
    """reports/results.csv (or selected.csv) typed by its one reader (core.files.read_csv);
    a missing or malformed file is one line. Each row's dataset is a name params.yaml
    allows, its (k, seed, lr) those of its `run` (:func:`_check_runs`) and its `holds`
    Bao et al.'s bounds' verdict on its R_mu (:func:`check_holds`)."""
    path = Path(path)
    where, again = str(path), again_for(path)
    frame = files.read_csv(
        path, RESULT_COLUMNS, "results file", again, keep_other=True, optional=RUN_COLUMNS
    )
    for check in (_check_runs, _check_finite, check_holds):
        check(frame, f"results file {where!r}", again)
    per_dataset = frame.groupby("dataset")["classes"].nunique()
    if (per_dataset > 1).any():
        ds = per_dataset[per_dataset > 1].index[0]
        raise UserError(
            f"{where}: dataset {ds!r} has several classes values; each dataset section has one C"
        )
    repeated = frame.duplicated(["dataset", "k", "seed"])
    if repeated.any():
        row = frame[repeated].iloc[0]
        raise UserError(
            f"{where}: more than one row for dataset {row['dataset']!r}, "
            f"k {row['k']}, seed {row['seed']}"
        )
    # datasets in natural order (topics_c10, topics_c30, topics_c100)
    names = sorted(pd.unique(frame["dataset"]), key=_natural_key)
    frame = frame.assign(_order=frame["dataset"].map({ds: i for i, ds in enumerate(names)}))
    frame = frame.sort_values(["_order", "k", "seed"]).drop(columns="_order")
    return frame.reset_index(drop=True)


def _row_error(where: str, i: int, col: str, value, allowed: str, again: str) -> UserError:
    return UserError(f"{where} row {i + 1}, column {col!r}: {value}, allowed: {allowed}; {again}")


# finite at every K and C for a finite loss and b = 1 (an earlier bound may be NaN, where it
# is undefined, or overflow to inf, which the report prints as such)
FINITE_COLUMNS = ("lower_gap", "upper_gap", "bao_lower", "bao_upper")


def _check_finite(frame: pd.DataFrame, where: str, again: str) -> None:
    for col in FINITE_COLUMNS:
        bad = ~np.isfinite(frame[col].to_numpy(dtype=float))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _row_error(where, i, col, frame[col].iloc[i], "a finite number", again)


def _check_runs(frame: pd.DataFrame, where: str, again: str) -> None:
    """Every row names a dataset and kind as params.yaml does (a dataset becomes a folder
    name, both enter the report's headings) and, where
    the table has its `run` column (the bounds stage writes it; the run's folder is read
    from it), k, seed and lr agree with it: a row edited to another seed would borrow
    another run's trajectory."""
    for col in ("dataset", "kind"):  # names of params.yaml and of surrogap.data's kinds
        for i, name in enumerate(frame[col]):
            if NAME.fullmatch(name) is None:
                raise _row_error(
                    where, i, col, repr(name)[:80], f"a {col} name as params.yaml writes it "
                    "(letters, digits and '_', starting with a letter)", again,
                )  # fmt: skip
    if "run" not in frame.columns:
        if "lr" in frame.columns and frame["lr"].notna().any():
            raise UserError(f"{where} has an lr column but no run column; {again}")
        return
    lrs = frame["lr"] if "lr" in frame.columns else pd.Series(math.nan, index=frame.index)
    for i, (run, k, seed, lr) in enumerate(zip(frame["run"], frame["k"], frame["seed"], lrs)):
        m = RUN_NAME.fullmatch(run)
        named_lr = math.nan if m is None or m["lr"] is None else _number(m["lr"])
        if m is None or (m["lr"] is not None and not named_lr > 0):
            raise _row_error(where, i, "run", repr(run)[:80], "a run name like k4-s0 or "
                             "k4-s0-lr0.03", again)  # fmt: skip
        for col, got, named in (("k", k, int(m["k"])), ("seed", seed, int(m["seed"]))):
            if got != named:
                raise _row_error(where, i, col, got, f"{named}, the {col} of its run {run}", again)
        same_lr = (
            math.isnan(lr) if math.isnan(named_lr) else math.isclose(lr, named_lr, rel_tol=1e-9)
        )
        if not same_lr:
            raise _row_error(
                where, i, "lr", "empty" if math.isnan(lr) else repr(float(lr)),
                f"{'empty' if math.isnan(named_lr) else m['lr']}, the lr of its run {run}", again,
            )  # fmt: skip


def _number(text: str) -> float:
    """A finite number, or NaN where `text` is none (an lr spelled inside a run name)."""
    try:
        v = float(text)
    except ValueError:
        return math.nan
    return v if math.isfinite(v) else math.nan


def check_holds(frame: pd.DataFrame, where: str, again: str) -> None:
    """`holds` is Bao et al.'s verdict, bao_lower <= R_mu <= bao_upper (theory.bounds.holds),
    up to the rounding of the written numbers."""
    cols = ("bao_lower", "supervised_loss", "bao_upper", "holds")
    for i, (lo, r_mu, up, said) in enumerate(zip(*(frame[c] for c in cols))):
        tol = 1e-9 * max(1.0, abs(r_mu))
        inside = bounds.holds(lo - tol, r_mu, up + tol)
        strictly = bounds.holds(lo + tol, r_mu, up - tol)
        if (said and not inside) or (not said and strictly):
            raise _row_error(
                where, i, "holds", said, f"{not said} (bao_lower {lo!r} <= supervised_loss "
                f"{r_mu!r} <= bao_upper {up!r} is {not said})", again,
            )  # fmt: skip


def _natural_key(name: str) -> list:
    """Sort key that orders the digit runs of a name by value: c10 < c30 < c100."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)
    ]


# --------------------------------------------------------------------------- trajectories
def run_folder(row) -> str:
    """The folder of a results row's run below its dataset's, ``<group>/s<seed>``: from its
    `run` column (``k<K>-s<seed>[-lr<lr>]``, the lr as params.yaml and dvc.yaml spell it)
    where the table has one, else ``k<K>/s<seed>``."""
    run = getattr(row, "run", None)
    if isinstance(run, str) and run:
        return run_dir_of(run)
    return run_dir(int(row.k), int(row.seed))


def load_trajectories(
    pretrain_dir: str | Path, results: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """The held-out trajectory of every run in `results`, as one tidy frame.

    Returns (frame, missing): frame has the columns dataset, kind, classes, k, seed, epoch,
    val_contrastive_loss, val_supervised_loss, val_mean_acc, contrastive_loss_se,
    contrastive_repeats, lower_gap, upper_gap (the last four from results.csv: the run's
    test-set standard error of R_cont, the pairings behind it, and the bounds stage's gaps, so a non-uniform prior is respected). Each file
    is typed by core.files.read_csv (a missing value is refused, not dropped; train_loss
    is empty at epoch 0 only) and must hold every evaluated epoch (:func:`_check_epochs`).
    Every run has one (pretrain writes it): a missing one, or a FIFO, device or folder in
    its place, is one line naming it, so `missing` is always empty (kept for the callers).
    """
    keys = ("dataset", "kind", "classes", "k", "seed")
    carried = (*keys, "contrastive_loss_se", "contrastive_repeats", "lower_gap", "upper_gap")
    columns = [*keys, *REPORT_TRAJECTORY_COLUMNS, *carried[len(keys) :]]
    frames, missing = [], []
    for row in results.itertuples(index=False):
        path = Path(pretrain_dir) / row.dataset / run_folder(row) / "trajectory.csv"
        run = getattr(row, "run", None) or run_dir(int(row.k), int(row.seed))
        name = f"run {row.dataset} {run}"
        if not path.exists() and not path.is_symlink():
            raise UserError(f"trajectory {str(path)!r} of {name} does not exist; {AGAIN_PRETRAIN}")
        io.regular_file(path, f"the trajectory of {name}")
        traj = files.read_csv(path, TRAJECTORY_COLUMNS, "trajectory", AGAIN_PRETRAIN)
        later = traj["epoch"] > 0
        if traj.loc[later, "train_loss"].isna().any():
            i = int(np.flatnonzero((later & traj["train_loss"].isna()).to_numpy())[0])
            raise _row_error(f"trajectory {str(path)!r}", i, "train_loss", "NaN or empty",
                             "a number >= 0 (empty at epoch 0 only)", AGAIN_PRETRAIN)  # fmt: skip
        if traj["lr"].isna().any():
            i = int(np.flatnonzero(traj["lr"].isna().to_numpy())[0])
            raise _row_error(f"trajectory {str(path)!r}", i, "lr", "NaN or empty",
                             "a number >= 0", AGAIN_PRETRAIN)  # fmt: skip
        traj = traj[list(REPORT_TRAJECTORY_COLUMNS)]
        info = _train_info(path.parent / "train_info.json")
        _check_epochs(path, traj["epoch"].tolist(), info["epochs"] if info else None)
        for col in carried:
            traj[col] = getattr(row, col)
        frames.append(traj)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns}), missing
    frame = pd.concat(frames, ignore_index=True)[columns]
    return frame.sort_values(["dataset", "k", "seed", "epoch"]).reset_index(drop=True), missing


def _check_epochs(path: Path, epochs: list[int], trained: int | None) -> None:
    """A trajectory holds the epochs pretrain evaluated: 0, then every eval_every-th
    epoch, and the last one (train_info.json's `epochs`, where recorded), so a file cut
    short or with rows missing is refused. eval_every is the second row's epoch."""
    last = trained if trained is not None else (epochs[-1] if epochs else 0)
    step = epochs[1] if len(epochs) > 1 and epochs[1] > 0 else max(last, 1)
    want = list(range(0, last + 1, step))
    if want[-1] != last:
        want.append(last)
    if epochs != want:
        i = next((i for i, (a, b) in enumerate(zip(epochs, want)) if a != b), None)
        # the first epoch seen before, in one pass (a quadratic scan took minutes on a file
        # of a million rows)
        repeats = np.flatnonzero(pd.Series(epochs).duplicated())
        dup = int(repeats[0]) if repeats.size else None
        if dup is not None and (i is None or dup <= i):
            what = f"row {dup + 1} repeats epoch {epochs[dup]}"
        elif i is not None:
            what = f"row {i + 1} is epoch {epochs[i]}, expected {want[i]}"
        else:
            what = f"it ends at epoch {epochs[-1] if epochs else 'none'}, expected {last}"
        told = " (train_info.json's epochs)" if trained is not None else ""
        raise UserError(
            f"trajectory {str(path)!r}: {what}{told}; pretrain evaluates epoch 0, then "
            f"every {step} epochs and epoch {last}; {AGAIN_PRETRAIN}"
        )


# --------------------------------------------------------------------------- scale
def _present(path: Path, what: str) -> bool:
    """Whether an optional input exists; a FIFO, device or folder in its place is one line
    (core.io.regular_file), never read nor taken for absent."""
    io.regular_file(path, what, missing=True)
    return path.exists()


def _train_info(path: Path) -> dict | None:
    """A run's train_info.json (how it was actually trained), or None where it is absent."""
    if not _present(path, "a run's train_info.json"):
        return None
    info = files.read_json(path, "train info")
    for key in ("global_batch", "epochs"):
        v = info.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserError(f"train info {str(path)!r}: {key} is {v!r}, allowed: an integer >= 1")
    # how the run stopped (training.stopping), where recorded: absent in older files
    for key in ("stop_epoch", "max_epochs"):
        v = info.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise UserError(
                f"train info {str(path)!r}: {key} is {v!r}, allowed: an integer >= 0 or absent"
            )
    reason, flat = info.get("stop_reason"), info.get("flatness")
    if reason is not None and not isinstance(reason, str):
        raise UserError(f"train info {str(path)!r}: stop_reason is {reason!r}, allowed: a string")
    if flat is not None and (
        isinstance(flat, bool) or not isinstance(flat, int | float) or not math.isfinite(flat)
    ):
        raise UserError(
            f"train info {str(path)!r}: flatness is {flat!r}, allowed: a finite number or null"
        )
    return info


def load_scale(
    pretrain_dir: str | Path, prepared_dir: str | Path | None, results: pd.DataFrame
) -> dict[str, dict[str, list]]:
    """Per dataset of `results`, the scale its runs were actually run at, read from what
    the stages wrote (so the report depends on no dataset params): `per_class`, one value
    per data seed from `<prepared-dir>/<dataset>/s<seed>/meta.json` (all splits over the
    number of classes), `batch` and `epochs`, one value per run from its `train_info.json`
    (the global batch and the epochs trained), and where that file records how the run
    stopped (training.stopping; docs/ARCHITECTURE.md), `stop_epoch`, `max_epochs` (the cap),
    `stop_reason` (its kind: "converged" or "cap") and `flatness`. A file that is absent
    adds no value."""
    scale = {}
    for ds, runs in results.groupby("dataset", sort=False):
        per_class = []
        if prepared_dir is not None:
            for seed in sorted(set(int(s) for s in runs["seed"])):
                folder = Path(prepared_dir) / str(ds) / seed_dir(seed)
                if _present(folder / "meta.json", "a prepared meta.json"):
                    m = read_checked_meta(folder)
                    per_class.append(sum(m["sizes"][s] for s in SPLITS) / m["num_classes"])
        infos = [
            _train_info(Path(pretrain_dir) / str(ds) / run_folder(row) / "train_info.json")
            for row in runs.itertuples(index=False)
        ]
        infos = [i for i in infos if i is not None]
        stopping = ("stop_epoch", "max_epochs", "stop_reason", "flatness")
        recorded = {key: [i[key] for i in infos if i.get(key) is not None] for key in stopping}
        scale[str(ds)] = {
            "per_class": per_class,
            "batch": [i["global_batch"] for i in infos],
            "epochs": [i["epochs"] for i in infos],
            **recorded,
            "stop_reason": [r.split(":")[0] for r in recorded["stop_reason"]],
        }
    return scale


# --------------------------------------------------------------------------- external
def load_external(path: str | Path) -> pd.DataFrame | None:
    """The `evaluate` stage's table, or None where the file is absent: typed and range
    checked (core.columns.COLUMNS' types and ranges, `vacuity`, `n_train`, `n_test`
    and `dim` where the table has them) and each `holds` Bao et al.'s verdict."""
    path = Path(path)
    if not _present(path, "the external table"):
        return None
    again = "rerun the evaluate stage"
    columns = REPORT_EXTERNAL_COLUMNS
    optional = [c for c in EVALUATE_RECORD_COLUMNS if c not in columns]
    df = files.read_csv(
        path, columns, "external table", again, True, allow_empty=True, optional=optional
    )
    if not df.empty:
        check_holds(df, f"external table {str(path)!r}", again)
    return df


# --------------------------------------------------------------------------- fixed-encoder null
def load_null(path: str | Path) -> pd.DataFrame | None:
    """The fixed_null stage's table (schema.NULL_COLUMNS), typed and range checked, or None
    where the file is absent."""
    path = Path(path)
    if not _present(path, "the fixed-encoder null table"):
        return None
    return files.read_csv(
        path, NULL_COLUMNS, "fixed-encoder null table", "rerun the fixed_null stage"
    )


# --------------------------------------------------------------------------- per-point arrays
def points_path(
    probe_dir: str | Path, dataset: str, k: int, seed: int, run: str | None = None
) -> Path:
    """`<probe-dir>/<dataset>/<run>.npz` (the probe stage's per-test-point arrays), run
    `k<K>/s<seed>` by default."""
    return Path(probe_dir) / dataset / f"{run or run_dir(k, seed)}.npz"


def _read_points(path: Path) -> dict[str, np.ndarray]:
    where = str(path)
    found = files.read_npz(path, "per-point file", AGAIN_PROBE, PROBE_ARRAYS)
    arrays = {a: found[a] for a in PROBE_ARRAYS}
    n = arrays["y"].shape
    for name, a in arrays.items():
        if a.ndim != 1 or a.shape != n:
            raise UserError(
                f"per-point file {where!r}: array {name!r} has shape {a.shape}, "
                f"allowed: one value per test point, shape {n}"
            )
    if n[0] == 0:
        raise UserError(f"per-point file {where!r} holds no test point")
    if not np.issubdtype(arrays["y"].dtype, np.integer):
        raise UserError(f"per-point file {where!r}: 'y' must hold integer labels")
    out = {"y": arrays["y"].astype(np.int64)}
    for name in ("mean_loss", "linear_loss"):
        a = arrays[name].astype(np.float64)
        if not np.isfinite(a).all():
            raise UserError(f"per-point file {where!r}: {name!r} holds a value that is not finite")
        out[name] = a
    for name in ("mean_correct", "linear_correct"):
        a = arrays[name]
        if a.dtype != bool and not np.isin(a, (0, 1)).all():
            raise UserError(f"per-point file {where!r}: {name!r} must be boolean")
        out[name] = a.astype(bool)
    return out


def load_points(
    probe_dir: str | Path | None, results: pd.DataFrame, tolerance: float = 1e-3
) -> tuple[dict[tuple[str, int, int], dict[str, np.ndarray]], list[str]]:
    """The per-test-point arrays of every run in `results` that has them.

    Returns ({(dataset, K, seed): arrays}, missing): arrays as core.schema.PROBE_ARRAYS
    (labels int64, losses float64, correctness bool); `missing` names runs without a file.
    Checked: the test split of a (dataset, seed) has the same labels at every K (the
    seed-level contrasts pair them), and the arrays average to the run's mean_acc /
    supervised_loss in results.csv within `tolerance` (a stale file from another run is an
    error).
    """
    found: dict[tuple[str, int, int], dict[str, np.ndarray]] = {}
    missing: list[str] = []
    if probe_dir is None:
        return found, [f"{r.dataset} K={r.k} seed {r.seed}" for r in results.itertuples()]
    first: dict[tuple[str, int], tuple[Path, np.ndarray]] = {}
    for row in results.itertuples(index=False):
        ds, k, seed = str(row.dataset), int(row.k), int(row.seed)
        path = points_path(probe_dir, ds, k, seed, run_folder(row))
        if not _present(path, "a per-point file"):
            missing.append(f"{ds} K={k} seed {seed}")
            continue
        arrays = _read_points(path)
        for col, name in (("mean_acc", "mean_correct"), ("supervised_loss", "mean_loss")):
            mean, want = float(arrays[name].mean()), float(getattr(row, col))
            if not math.isclose(mean, want, abs_tol=tolerance, rel_tol=tolerance):
                raise UserError(
                    f"per-point file {str(path)!r}: {name!r} averages to {mean:.6g} but "
                    f"results.csv has {col} {want:.6g} for this run (a stale file?)"
                )
        ref = first.setdefault((ds, seed), (path, arrays["y"]))
        if not np.array_equal(ref[1], arrays["y"]):
            raise UserError(
                f"per-point file {str(path)!r}: its test labels differ from {str(ref[0])!r}; "
                "allowed: the same test split at every K of a (dataset, seed)"
            )
        found[(ds, k, seed)] = arrays
    return found, missing
