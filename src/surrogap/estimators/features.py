"""Reading any encoder's features from a file: the input of `surrogap evaluate`.

The accepted sources (.npy with a labels file, .npz, Parquet, Arrow IPC, a ``datasets``
folder; the format recognized from the file's first bytes, not its name) and the keys and
columns looked for are README.md's "Bring your own representation". Labels are integers or
strings, kept as read (the mapping to 0..C-1 is :func:`surrogap.estimators.external.encode_labels`).
Every failure is a :class:`UserError` with one line naming the file, what was found and
what is allowed.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from surrogap.core.errors import UserError
from surrogap.estimators import tables
from surrogap.estimators.tables import (
    FEATURE_COLUMNS,
    FORMATS,
    LABEL_COLUMNS,
    as_features,
    as_labels,
    first_line,
)

__all__ = [
    "FEATURE_COLUMNS",
    "FEATURE_KEYS",
    "LABEL_COLUMNS",
    "LABEL_KEYS",
    "FeatureSet",
    "load_features",
    "load_labels",
]

FEATURE_KEYS = ("features", "x")
LABEL_KEYS = ("labels", "y", "label")


@dataclass(frozen=True)
class FeatureSet:
    """Features as read: x (n, d) float32, labels (n,) int64 or str, split (n,) str or None."""

    x: np.ndarray
    labels: np.ndarray
    split: np.ndarray | None
    source: str


# --------------------------------------------------------------------------- helpers
def _sniff(path: Path) -> str:
    """The format of a file from its magic bytes ('npy', 'npz', 'parquet', 'feather', 'stream')."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise UserError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "npz"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head.startswith(b"FEA1"):
        return "feather"
    if head.startswith(b"\xff\xff\xff\xff") or path.suffix.lower() in (".arrow", ".arrows", ".ipc"):
        return "stream"
    raise UserError(
        f"{str(path)!r} is in an unknown format (first bytes {head[:6]!r}); allowed: {FORMATS}"
    )


def _parse_text_labels(values: Sequence[str], where: str) -> np.ndarray:
    """Integers when every value is one, strings otherwise."""
    values = [v.strip() for v in values]
    if not values:
        raise UserError(f"{where}: holds no labels")
    try:
        return np.asarray([int(v) for v in values], dtype=np.int64)
    except ValueError:
        return np.asarray(values, dtype=str)


# --------------------------------------------------------------------------- labels file
def load_labels(path: str | Path, column: str | None = None) -> np.ndarray:
    """Labels (n,) from a .npy, .txt or .csv file (see the module docstring)."""
    path = Path(path)
    where = repr(str(path))
    if not path.is_file():
        raise UserError(f"labels file {where} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise UserError(f"cannot read labels {where} as .npy: {first_line(exc)}") from None
        return as_labels(arr, f"labels {where}")
    if suffix not in (".txt", ".csv"):
        raise UserError(f"labels file {where} has an unknown format; allowed: .npy, .txt, .csv")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read labels {where}: {first_line(exc)}") from None
    if suffix == ".txt":
        lines = [line for line in text.splitlines() if line.strip()]
        return _parse_text_labels(lines, f"labels {where}")
    rows = [row for row in csv.reader(text.splitlines()) if row]
    if not rows:
        raise UserError(f"labels {where} holds no labels")
    header = [h.strip() for h in rows[0]]
    names = (column,) if column else LABEL_COLUMNS
    found = next((h for h in header if h in names), None)
    if found is not None:
        i = header.index(found)
        body = rows[1:]
        short = next((j for j, row in enumerate(body) if len(row) <= i), None)
        if short is not None:
            raise UserError(f"labels {where}: row {short + 2} has no {found!r} field")
        return _parse_text_labels([row[i] for row in body], f"labels {where}")
    if column:
        raise UserError(f"labels {where} has no column {column!r}; its header: {', '.join(header)}")
    if max(len(row) for row in rows) != 1:
        raise UserError(
            f"labels {where} has several columns and none named {' or '.join(map(repr, names))}; "
            "give the column with --labels-column"
        )
    return _parse_text_labels([row[0] for row in rows], f"labels {where}")


# --------------------------------------------------------------------------- .npy / .npz
def _load_npz(path: Path, features_key, labels_key, split_key, need_labels: bool):
    where = repr(str(path))
    try:
        archive = np.load(path, allow_pickle=False)
        keys = list(archive.files)
    except Exception as exc:
        raise UserError(f"cannot read {where} as .npz: {first_line(exc)}") from None

    def get(key: str) -> np.ndarray:
        try:
            return archive[key]
        except Exception as exc:
            raise UserError(f"cannot read array {key!r} of {where}: {first_line(exc)}") from None

    with archive:
        if features_key is None and not any(k in keys for k in FEATURE_KEYS):
            if {"train_x", "test_x"} <= set(keys) and split_key is None:
                # the project's extract output: train and test come split
                xs = [as_features(get(f"{s}_x"), f"{where}[{s}_x]") for s in ("train", "test")]
                if xs[0].shape[1] != xs[1].shape[1]:
                    raise UserError(
                        f"{where}: train_x has {xs[0].shape[1]} columns but test_x has "
                        f"{xs[1].shape[1]}; they must match"
                    )
                ys = None
                if need_labels:
                    missing = [k for k in ("train_y", "test_y") if k not in keys]
                    if missing:
                        raise UserError(
                            f"{where} has no array {missing[0]!r}; it holds: {', '.join(keys)}"
                        )
                    ys = [as_labels(get(f"{s}_y"), f"{where}[{s}_y]") for s in ("train", "test")]
                    for s, xx, yy in zip(("train", "test"), xs, ys, strict=True):
                        if len(yy) != len(xx):
                            raise UserError(
                                f"{where}: {s}_x has {len(xx)} rows but {s}_y has {len(yy)}; they must match"
                            )
                split = np.asarray(["train"] * len(xs[0]) + ["test"] * len(xs[1]))
                labels = None if ys is None else np.concatenate(ys)
                return np.concatenate(xs), labels, split
        fkey = pick_key(keys, features_key, FEATURE_KEYS, "features", "--features-key", where)
        x = as_features(get(fkey), f"{where}[{fkey}]")
        labels = None
        if need_labels:
            lkey = pick_key(keys, labels_key, LABEL_KEYS, "labels", "--labels-key", where)
            labels = as_labels(get(lkey), f"{where}[{lkey}]")
        split = None
        if split_key is not None:
            if split_key not in keys:
                raise UserError(
                    f"{where} has no split array {split_key!r}; it holds: {', '.join(keys)}"
                )
            split = np.asarray(get(split_key)).astype(str)
    return x, labels, split


def pick_key(keys, given, defaults, what, option, where) -> str:
    if given is not None:
        if given not in keys:
            raise UserError(f"{where} has no {what} array {given!r}; it holds: {', '.join(keys)}")
        return given
    for key in defaults:
        if key in keys:
            return key
    raise UserError(
        f"{where} has no {what} array (looked for {', '.join(map(repr, defaults))}); "
        f"it holds: {', '.join(keys) or 'nothing'}; name one with {option}"
    )


# --------------------------------------------------------------------------- tables
def load_features(
    path: str | Path,
    *,
    labels_path: str | Path | None = None,
    features_key: str | None = None,
    labels_key: str | None = None,
    split_column: str | None = None,
) -> FeatureSet:
    """Read features (n, d), labels (n,) and an optional train/test split from `path`.

    features_key / labels_key name the npz key or table column (defaults in the module
    docstring); labels_path is a separate labels file, which replaces any labels in `path`;
    split_column names a key/column of "train"/"test" values.
    """
    path = Path(path)
    where = repr(str(path))
    if not path.exists():
        raise UserError(f"features file {where} does not exist")
    need_labels = labels_path is None
    if path.is_dir():
        table, split = tables.read_datasets_folder(path, split_column)
        x, labels, col_split = tables.from_table(
            table, where, features_key, labels_key, split_column, need_labels
        )
        split = col_split if split_column is not None else split
    else:
        kind = _sniff(path)
        if kind == "npy":
            try:
                arr = np.load(path, allow_pickle=False)
            except Exception as exc:
                raise UserError(f"cannot read {where} as .npy: {first_line(exc)}") from None
            if need_labels:
                raise UserError(
                    f"{where} holds only the feature array; give the labels with --labels FILE "
                    "(.npy, .txt or .csv)"
                )
            if split_column is not None:
                raise UserError(
                    f"{where} holds only the feature array; it has no split column {split_column!r}"
                )
            x, labels, split = as_features(arr, where), None, None
        elif kind == "npz":
            x, labels, split = _load_npz(path, features_key, labels_key, split_column, need_labels)
        else:
            table = tables.read_table(path, kind)
            x, labels, split = tables.from_table(
                table, where, features_key, labels_key, split_column, need_labels
            )
    if labels is None:
        labels = load_labels(labels_path, labels_key)
    if len(labels) != len(x):
        source = f"labels {str(labels_path)!r}" if labels_path is not None else "labels"
        raise UserError(
            f"{where} has {len(x)} feature rows but {source} has {len(labels)} labels; they must match"
        )
    if split is not None and len(split) != len(x):
        raise UserError(
            f"{where}: split has {len(split)} values but there are {len(x)} rows; they must match"
        )
    return FeatureSet(x=x, labels=labels, split=split, source=str(path))
