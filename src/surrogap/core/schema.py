"""Every on-disk name shared between modules: the column tuples of the tables and records the
stages write and the report, the CLI and the tests read, and the names of the run folders.
Defined once here, imported everywhere else (dvc.yaml spells the same folder names)."""

from __future__ import annotations

import re

from surrogap.core.columns import result_columns

# the splits of every prepared dataset and features file, in order
SPLITS = ("train", "val", "test")

# the earlier bounds the paper compares against (Arora et al. 2019, Nozawa & Sato 2021,
# Ash et al. 2022), and every bound of bounds.bounds_at in the order of results.csv
EARLIER_BOUNDS = ("arora", "nozawa_sato", "ash")
BOUND_COLUMNS = ("lower_gap", "upper_gap", "bao_lower", "bao_upper", *EARLIER_BOUNDS)
# what every run (and every `surrogap evaluate` row) measures at one K
MEASURED = ("contrastive_loss", "contrastive_loss_se", "supervised_loss", "mean_acc")

# reports/results.csv (the bounds stage), one row per (dataset, classes, k, seed): the
# columns of core.columns.COLUMNS that results.csv holds, in order
RESULT_COLUMNS = result_columns()

# columns results.csv adds after RESULT_COLUMNS: the lr of the run (empty where the dataset
# section's own train.lr ran) and the run's folder name under data/pretrain/<dataset>/
RUN_COLUMNS = ("lr", "run")
# the keys of reports/results.csv and reports/selected.csv, in order
RESULTS_CSV_COLUMNS = (*RESULT_COLUMNS, *RUN_COLUMNS)
# one row per run of these; the lr grid adds rows that the select stage reduces to one
RUN_KEYS = ("dataset", "classes", "k", "seed")

# data/pretrain/<dataset>/<run>/trajectory.csv, one row per epoch (written by train)
TRAJECTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "val_contrastive_loss",
    "val_supervised_loss",
    "val_mean_acc",
    "lr",
)
# the trajectory columns the report reads
REPORT_TRAJECTORY_COLUMNS = ("epoch", "val_contrastive_loss", "val_supervised_loss", "val_mean_acc")

# one record of `surrogap evaluate` (external.evaluate), in the order of results.csv where
# the columns apply
EVALUATE_RECORD_COLUMNS = (
    "classes",
    "k",
    *MEASURED,
    *BOUND_COLUMNS,
    "holds",
    "vacuity",  # of bao_upper: theory.bounds.upper_bound_vacuity (no, above_log_c, vacuous)
    "n_train",
    "n_test",
    "dim",
)
# reports/external.csv (the evaluate stage)
EXTERNAL_COLUMNS = ("dataset", *EVALUATE_RECORD_COLUMNS)
# the columns of reports/external.csv the report reads
REPORT_EXTERNAL_COLUMNS = ("dataset", "classes", "k", *MEASURED, *BOUND_COLUMNS[:4], "holds")
# the table `surrogap evaluate` prints
EVALUATE_TABLE_COLUMNS = ("k", *MEASURED, *BOUND_COLUMNS[2:], "holds", "vacuity")

# reports/null.csv (the null stage): the encoder trained at the smallest K (`encoder_k`) of
# each (dataset, seed), evaluated at every K of the grid: the gap's mechanical null
NULL_COLUMNS = ("dataset", "kind", "classes", "k", "seed", "encoder_k", *MEASURED)

# data/features/<dataset>/<group>/s<seed>.npz: `<split>_x` (n, d) features and `<split>_y`
# labels of every split
FEATURE_SPLITS = SPLITS

# data/probe/<dataset>/<group>/s<seed>.npz: per test point, in the order of the test split
PROBE_ARRAYS = ("y", "mean_loss", "mean_correct", "linear_loss", "linear_correct")


# --------------------------------------------------------------------------- run folders
# data/prepared/<dataset>/s<seed>/                     one seed's data (prepare, per dataset)
# data/pretrain/<dataset>/<group>/s<seed>/             one run (pretrain, per dataset and group)
# data/features/<dataset>/<group>/s<seed>.npz          (extract, per dataset and group)
# data/probe/<dataset>/<group>/s<seed>.json and .npz   (probe, per dataset and group)
# where <group> is k<K> with the dataset section's own train.lr, k<K>-lr<lr> with an extra lr
# of the grid: a group holds every seed of one K (and lr), and each stage handles every seed
# of its (dataset, group) in one instance (pretrain trains them in parallel processes).


def seed_dir(seed: int) -> str:
    """One seed's entry inside a group (and inside ``data/prepared/<dataset>/``): ``s<seed>``."""
    return f"s{seed}"


def run_group(k: int, lr: int | float | None = None) -> str:
    """The folder of every seed of one K: ``k<K>``, or ``k<K>-lr<lr>`` for an extra lr of the
    grid. `lr` is the value as params.yaml holds it, written as DVC writes it into the paths
    of dvc.yaml (Python's str: 0.03, 0.001, 1e-05)."""
    return f"k{k}" if lr is None else f"k{k}-lr{lr}"


def run_dir(k: int, seed: int, lr: int | float | None = None) -> str:
    """One run's path below ``data/<stage>/<dataset>/``: ``<group>/s<seed>``."""
    return f"{run_group(k, lr)}/{seed_dir(seed)}"


def run_name(k: int, seed: int, lr: int | float | None = None) -> str:
    """The name of one run in tables (results.csv's `run` column, progress lines):
    ``k<K>-s<seed>``, or ``k<K>-s<seed>-lr<lr>`` for an extra lr of the grid."""
    return f"k{k}-s{seed}" if lr is None else f"k{k}-s{seed}-lr{lr}"


RUN_NAME = re.compile(r"k(?P<k>\d+)-s(?P<seed>\d+)(?:-lr(?P<lr>\S+))?")


def run_dir_of(name: str) -> str:
    """The run folder (:func:`run_dir`) of a run name (:func:`run_name`), the lr spelled as
    in the name; ValueError for a string that is no run name."""
    m = RUN_NAME.fullmatch(name)
    if m is None:
        raise ValueError(f"{name!r} is not a run name like k4-s0 or k4-s0-lr0.03")
    return run_dir(m["k"], int(m["seed"]), m["lr"])


# the folders of dvc.yaml's matrix stages, relative to the repository root (DVC runs every
# stage there); `stage_paths` spells each instance's paths as dvc.yaml's deps and outs do
RAW_DIR = "data/raw"
PREPARED_DIR = "data/prepared"
PRETRAIN_DIR = "data/pretrain"
CHECKPOINTS_DIR = "data/checkpoints"
FEATURES_DIR = "data/features"
PROBE_DIR = "data/probe"
# the folders of a (dataset, group) instance beside its prepared data, by option name
GROUP_DIRS = {
    "pretrain": {"out": PRETRAIN_DIR, "checkpoints": CHECKPOINTS_DIR},
    "extract": {"models": PRETRAIN_DIR, "out": FEATURES_DIR},
    "probe": {"features": FEATURES_DIR, "out": PROBE_DIR},
}


def stage_paths(stage: str, dataset: str, k: int | None = None, lr=None) -> dict[str, str]:
    """The path arguments of one instance of a matrix stage of dvc.yaml (`prepare`,
    `pretrain`, `extract`, `probe` and the -lr ones), by option name (``out``, ``data``, ...).
    `lr` is the value as params.yaml holds it (see :func:`run_group`)."""
    base = stage.removesuffix("-lr")
    if base == "prepare":
        return {"out": f"{PREPARED_DIR}/{dataset}", "root": RAW_DIR}
    if base not in GROUP_DIRS:
        raise ValueError(f"{stage!r} is no matrix stage of dvc.yaml")
    group = f"{dataset}/{run_group(k, lr)}"
    dirs = GROUP_DIRS[base].items()
    return {"data": f"{PREPARED_DIR}/{dataset}", **{name: f"{d}/{group}" for name, d in dirs}}
