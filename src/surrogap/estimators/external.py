"""`surrogap evaluate`: the surrogate gap of any encoder's features, one record per K.

Given frozen features (n, d) and labels, this splits them into train and test (a given
split, or a seeded stratified one), L2-normalizes them (b = 1) and reports for each K the
test contrastive loss with its standard error, R_mu and the mean classifier's accuracy, and
every bound (README.md, "Bring your own representation"; the bounds of H. Bao, Y. Nagano,
K. Nozawa, ICML 2022, arXiv:2110.02501). Losses in nats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from surrogap.core.errors import UserError
from surrogap.core.io import regular_file
from surrogap.core.schema import BOUND_COLUMNS, EVALUATE_RECORD_COLUMNS, EXTERNAL_COLUMNS
from surrogap.estimators import features
from surrogap.estimators.evaluation import (
    RAW_NORM_LIMIT,
    contrastive_loss_estimate,
    mean_classifier,
    rescale_rows,
)
from surrogap.estimators.features import FeatureSet

__all__ = [
    "RECORD_COLUMNS",
    "RECORD_KEYS",
    "STAGE_COLUMNS",
    "EvalSplit",
    "check_features",
    "encode_labels",
    "evaluate",
    "evaluate_split",
    "read_features",
    "split_features",
]

RECORD_COLUMNS = EVALUATE_RECORD_COLUMNS  # the values of one record
RECORD_KEYS = (*RECORD_COLUMNS, "why_null")  # the keys of one record
STAGE_COLUMNS = EXTERNAL_COLUMNS  # reports/external.csv
SPLIT_IGNORED = ("val", "valid", "validation")  # split values whose rows are left out
PRIORS = ("uniform", "empirical")


# --------------------------------------------------------------------------- input checks


def read_features(
    path: str | Path, labels_path: str | Path | None = None, **keys: str | None
) -> FeatureSet:
    """`features.load_features` (keys: features_key, labels_key, split_column), after
    refusing a features or labels path that is no regular file or folder, unopened."""
    regular_file(path, "the features", folder=True, missing=True)  # a datasets folder too
    if labels_path is not None:
        regular_file(labels_path, "the labels", missing=True)
    return features.load_features(path, labels_path=labels_path, **keys)


def check_features(x: np.ndarray, source: str) -> None:
    """One line naming the first NaN or inf (row, column) of x."""
    finite = np.isfinite(x)
    if not finite.all():
        row, col = (int(i) for i in np.argwhere(~finite)[0])
        raise UserError(
            f"{source!r}: features hold {float(x[row, col])} at row {row}, column {col}; "
            "allowed: finite numbers only"
        )


def encode_labels(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes 0..C-1 (int64) and the classes' names, in the order each class first appears
    in the rows: the codes depend only on which rows share a class, never on the names, so
    the split and every estimate are the same for any naming of the classes (integers,
    the same as strings, or permuted names)."""
    names, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first)  # the classes by their first row
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    codes = rank[inverse.reshape(-1)].astype(np.int64)
    return codes, [str(v) for v in names[order]]


def split_features(
    fs: FeatureSet, test_fraction: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test): from fs.split, or a seeded stratified split.

    The stratified split gives each class round(test_fraction * n_c) test rows, clamped to
    [2, n_c - 2] so that both splits can form a positive pair (classes need n_c >= 4).
    """
    if fs.split is not None:
        values = np.char.strip(fs.split.astype(str))
        allowed = ("train", "test", *SPLIT_IGNORED)
        bad = ~np.isin(values, allowed)
        if bad.any():
            row = int(np.argmax(bad))
            raise UserError(
                f"{fs.source!r}: split value {str(values[row])!r} at row {row}; allowed: 'train', 'test' "
                f"(rows marked {', '.join(map(repr, SPLIT_IGNORED))} are left out)"
            )
        train, test = np.flatnonzero(values == "train"), np.flatnonzero(values == "test")
        for name, idx in (("train", train), ("test", test)):
            if idx.size == 0:
                raise UserError(
                    f"{fs.source!r}: the split has no {name!r} rows; allowed: both 'train' and 'test' rows"
                )
        return train, test
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"test fraction: got {test_fraction!r}, allowed: a number in (0, 1)")
    codes, names = encode_labels(fs.labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c, name in enumerate(names):
        rows = np.flatnonzero(codes == c)
        if rows.size < 4:
            raise UserError(
                f"{fs.source!r}: class {name!r} has {rows.size} sample(s); allowed: at least 4 "
                "(2 train, 2 test, for a positive pair in each split), or give a split column"
            )
        rows = rng.permutation(rows)
        n_test = min(max(round(test_fraction * rows.size), 2), rows.size - 2)
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


class EvalSplit:
    """Checked train/test arrays of one feature set, ready for the estimators."""

    def __init__(self, fs: FeatureSet, test_fraction: float = 0.3, seed: int = 0):
        check_features(fs.x, fs.source)
        codes, names = encode_labels(fs.labels)
        if len(names) < 2:
            raise UserError(
                f"{fs.source!r}: the labels hold {len(names)} class ({', '.join(map(repr, names))}); "
                "allowed: at least 2 classes"
            )
        train, test = split_features(fs, test_fraction, seed)
        self.names = names
        self.num_classes = len(names)
        for split, rows in (("train", train), ("test", test)):
            counts = np.bincount(codes[rows], minlength=self.num_classes)
            if (counts < 2).any():
                c = int(np.argmax(counts < 2))
                raise UserError(
                    f"{fs.source!r}: class {names[c]!r} has {counts[c]} sample(s) in the {split} split; "
                    "allowed: at least 2 in each split (a positive pair needs two samples)"
                )
        x = fs.x
        if np.abs(x).max() > RAW_NORM_LIMIT / math.sqrt(x.shape[1]):
            # the float32 norms of such rows can overflow (l2_normalize would zero them)
            x = rescale_rows(x)
        self.z_train = x[train]
        self.y_train = codes[train]
        self.z_test = x[test]
        self.y_test = codes[test]
        self.train_counts = np.bincount(codes[train], minlength=self.num_classes)
        self.source = fs.source

    @property
    def n_test(self) -> int:
        return int(self.z_test.shape[0])

    def check_k(self, ks: Sequence[int]) -> None:
        if len(ks) == 0:
            raise UserError("k: got no values; allowed: one or more integers >= 1")
        for k in ks:
            if (
                isinstance(k, bool)
                or not isinstance(k, (int, np.integer))
                or not 1 <= k <= self.n_test - 1
            ):
                raise UserError(
                    f"k: got {k!r} for {self.n_test} test samples of {self.source!r}; "
                    f"allowed: 1..{self.n_test - 1} (test samples - 1)"
                )


def evaluate_split(
    data: EvalSplit, ks: Sequence[int], repeats: int = 10, seed: int = 0, prior: str = "uniform"
) -> list[dict]:
    """One record per K (keys RECORD_KEYS) for a checked split."""
    from surrogap.theory.bounds import holds, upper_bound_vacuity
    from surrogap.theory.records import bounds_records

    data.check_k(ks)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise UserError(f"repeats: got {repeats!r}, allowed: an integer >= 1")
    if prior not in PRIORS:
        raise UserError(f"prior: got {prior!r}, allowed: {', '.join(PRIORS)}")
    mu = mean_classifier(data.z_train, data.y_train, data.z_test, data.y_test, data.num_classes)
    estimates = [
        contrastive_loss_estimate(data.z_test, data.y_test, int(k), repeats, seed) for k in ks
    ]
    weights = None
    if prior == "empirical":
        weights = (data.train_counts / data.train_counts.sum()).tolist()
    records = bounds_records(
        [int(k) for k in ks],
        None if weights is not None else data.num_classes,
        [e.mean for e in estimates],
        weights,
        allow_below_ideal=True,  # a measured loss: an estimate, never refused
    )
    out = []
    for rec, est in zip(records, estimates, strict=True):
        r_mu = mu["supervised_loss"]
        out.append(
            {
                "classes": data.num_classes,
                "k": rec["k"],
                "contrastive_loss": est.mean,
                "contrastive_loss_se": est.se,
                "supervised_loss": r_mu,
                "mean_acc": mu["mean_acc"],
                **{key: rec[key] for key in BOUND_COLUMNS},
                "holds": holds(rec["bao_lower"], r_mu, rec["bao_upper"]),
                "vacuity": upper_bound_vacuity(rec["bao_upper"], data.num_classes),
                "n_train": int(data.z_train.shape[0]),
                "n_test": data.n_test,
                "dim": int(data.z_test.shape[1]),
            }
        )
        # why a value is None, as in `surrogap bounds` (e.g. "uniform prior only")
        out[-1]["why_null"] = {k: v for k, v in rec["why_null"].items() if k in out[-1]}
    return out


def evaluate(
    fs: FeatureSet,
    ks: Sequence[int],
    repeats: int = 10,
    seed: int = 0,
    test_fraction: float = 0.3,
    prior: str = "uniform",
) -> list[dict]:
    """Check, split and evaluate a feature set: one record per K (keys RECORD_KEYS:
    why_null gives the reason of each None value, as in `surrogap bounds`).

    Every input check (finite features, >= 2 classes, >= 2 samples of each class in each
    split, 1 <= K <= n_test - 1) runs before any estimate, so a bad input costs nothing.
    """
    data = EvalSplit(fs, test_fraction, seed)
    return evaluate_split(data, ks, repeats, seed, prior)
