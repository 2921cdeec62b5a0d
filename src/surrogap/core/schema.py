"""Every column tuple shared between modules: the tables and records the stages write and the
report, the CLI and the tests read. Defined once here, imported everywhere else."""

from __future__ import annotations

# reports/results.csv (the bounds stage), one row per (dataset, classes, k, seed)
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

# columns results.csv adds after RESULT_COLUMNS: the lr of the run (empty where the dataset
# section's own train.lr ran) and the run's folder name under data/pretrain/<dataset>/
RUN_COLUMNS = ("lr", "run")
# the keys of reports/results.csv and reports/selected.csv, in order
RESULTS_CSV_COLUMNS = (*RESULT_COLUMNS, *RUN_COLUMNS)
# one row per run of these; the lr grid adds rows that the select stage reduces to one
RUN_KEYS = ("dataset", "classes", "k", "seed")

# the bounds of bounds.bounds_at, in the order of results.csv
BOUND_COLUMNS = ("lower_gap", "upper_gap", "bao_lower", "bao_upper", "arora", "nozawa_sato", "ash")

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
    "contrastive_loss",
    "contrastive_loss_se",
    "supervised_loss",
    "mean_acc",
    *BOUND_COLUMNS,
    "holds",
    "n_train",
    "n_test",
    "dim",
)
# reports/external.csv (the evaluate stage)
EXTERNAL_COLUMNS = ("dataset", *EVALUATE_RECORD_COLUMNS)
# the columns of reports/external.csv the report reads
REPORT_EXTERNAL_COLUMNS = (
    "dataset",
    "classes",
    "k",
    "contrastive_loss",
    "contrastive_loss_se",
    "supervised_loss",
    "mean_acc",
    "lower_gap",
    "upper_gap",
    "bao_lower",
    "bao_upper",
    "holds",
)
# the table `surrogap evaluate` prints
EVALUATE_TABLE_COLUMNS = (
    "k",
    "contrastive_loss",
    "contrastive_loss_se",
    "supervised_loss",
    "mean_acc",
    "bao_lower",
    "bao_upper",
    "arora",
    "nozawa_sato",
    "ash",
    "holds",
)

# data/features/<dataset>/<run>.npz: `<split>_x` (n, d) features and `<split>_y` labels
FEATURE_SPLITS = ("train", "val", "test")

# data/probe/<dataset>/<run>.npz: per test point, in the order of the test split
PROBE_ARRAYS = ("y", "mean_loss", "mean_correct", "linear_loss", "linear_correct")
