"""Features as tables: Parquet, Arrow IPC and folders written by the ``datasets`` library,
read into (features, labels, split) by the rules of :mod:`surrogap.estimators.features`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from surrogap.core.errors import UserError

FEATURE_COLUMNS = ("features", "embedding", "embeddings")
LABEL_COLUMNS = ("label", "labels")
FORMATS = ".npy, .npz, Parquet, Arrow/Feather, or a folder saved by datasets' save_to_disk"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def as_features(arr: np.ndarray, where: str) -> np.ndarray:
    """(n, d) float32 from a numeric array; one line naming the shape or dtype otherwise."""
    if arr.dtype.kind not in "fiub":
        raise UserError(f"{where}: features must be numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UserError(
            f"{where}: features must be a non-empty 2-D array (n, d), got shape {arr.shape}"
        )
    with np.errstate(over="ignore"):  # checked just below, with a message that says why
        x = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
        over = np.isinf(x) & np.isfinite(arr)
        if over.any():
            row = int(np.flatnonzero(over.any(axis=1))[0])
            big = float(np.max(np.abs(arr[row][over[row]])))
            raise UserError(
                f"{where}: features hold finite values too large for float32 (first at row "
                f"{row}: {big:.3g}; float32 holds magnitudes up to "
                f"{float(np.finfo(np.float32).max):.3g}); rescale them"
            )
    return x


def as_labels(arr: np.ndarray, where: str) -> np.ndarray:
    """(n,) int64 or str labels; integer-valued floats become integers."""
    arr = np.asarray(arr)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise UserError(f"{where}: labels must be a 1-D array (n,), got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind in "iub":
        return arr.astype(np.int64)
    if kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise UserError(
                f"{where}: labels must be integers or strings, got {arr[bad][0].item()!r} "
                f"at row {int(np.argmax(bad))}"
            )
        return arr.astype(np.int64)
    if kind in "US":
        return arr.astype(str)
    if kind == "O":
        if any(v is None for v in arr):
            row = next(i for i, v in enumerate(arr) if v is None)
            raise UserError(f"{where}: labels must not be missing, got null at row {row}")
        return arr.astype(str)
    raise UserError(f"{where}: labels must be integers or strings, got dtype {arr.dtype}")


def read_table(path: Path, kind: str):
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    where = repr(str(path))
    try:
        if kind == "parquet":
            return pq.read_table(path)
        if kind == "feather":
            return feather.read_table(path)
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_stream(source).read_all()
    except Exception as exc:
        if kind == "stream":
            raise UserError(
                f"cannot read {where} as an Arrow IPC stream ({first_line(exc)}); "
                f"allowed: {FORMATS}"
            ) from None
        name = "Parquet" if kind == "parquet" else "Arrow/Feather"
        raise UserError(f"cannot read {where} as {name}: {first_line(exc)}") from None


def read_datasets_folder(path: Path, split_column: str | None):
    """A pyarrow Table (and the split per row, for a DatasetDict with train and test)."""
    where = repr(str(path))
    if not any(
        (path / f).is_file() for f in ("dataset_dict.json", "state.json", "dataset_info.json")
    ):
        raise UserError(
            f"{where} is a folder but not one saved by datasets' save_to_disk "
            f"(no dataset_dict.json or state.json); allowed: {FORMATS}"
        )
    import pyarrow as pa

    try:
        import datasets

        ds = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise UserError(f"cannot read {where} as a datasets folder: {first_line(exc)}") from None

    def table(d):
        return d.with_format("arrow")[:]

    if isinstance(ds, datasets.DatasetDict):
        names = list(ds.keys())
        if split_column is not None:
            return pa.concat_tables([table(ds[s]) for s in names]), None
        if not {"train", "test"} <= set(names):
            raise UserError(
                f"{where} holds the splits {', '.join(names)}; allowed: a DatasetDict with "
                "'train' and 'test' splits, a single Dataset, or name a split column"
            )
        parts = [table(ds[s]) for s in ("train", "test")]
        try:
            merged = pa.concat_tables(parts)
        except Exception as exc:
            raise UserError(
                f"{where}: its train and test splits differ: {first_line(exc)}"
            ) from None
        split = np.asarray(["train"] * parts[0].num_rows + ["test"] * parts[1].num_rows)
        return merged, split
    return table(ds), None


def _numeric_type(t) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _list_column_to_array(col, name: str, where: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if col.null_count:
        row = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise UserError(f"{where}: column {name!r} has a missing value at row {row}")
    if not _numeric_type(col.type.value_type):
        raise UserError(f"{where}: column {name!r} must hold lists of numbers, got {col.type}")
    n = len(col)
    if n == 0:
        raise UserError(f"{where}: column {name!r} is empty")
    if pa.types.is_fixed_size_list(col.type):
        d = col.type.list_size
    else:
        lengths = np.asarray(pc.list_value_length(col))
        d = int(lengths[0])
        if (lengths != d).any():
            row = int(np.flatnonzero(lengths != d)[0])
            raise UserError(
                f"{where}: column {name!r} must hold lists of one length, "
                f"row 0 has {d} and row {row} has {int(lengths[row])}"
            )
    values = col.flatten()
    if values.null_count:
        raise UserError(f"{where}: column {name!r} holds a missing number")
    flat = values.to_numpy(zero_copy_only=False)
    return as_features(flat.reshape(n, d), f"{where}[{name}]")


def _column_to_numpy(col, name: str, where: str) -> np.ndarray:
    import pyarrow as pa

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if col.null_count:
        row = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise UserError(f"{where}: column {name!r} has a missing value at row {row}")
    return np.asarray(col.to_numpy(zero_copy_only=False))


def from_table(table, where, features_column, labels_column, split_column, need_labels):
    import pyarrow as pa

    columns = table.column_names
    listing = ", ".join(columns) or "none"

    def need(name: str, what: str, option: str) -> str:
        if name not in columns:
            raise UserError(
                f"{where} has no {what} column {name!r}; its columns: {listing} ({option})"
            )
        return name

    labels = None
    label_name = None
    if need_labels:
        if labels_column is not None:
            label_name = need(labels_column, "labels", "--labels-column")
        else:
            label_name = next((c for c in LABEL_COLUMNS if c in columns), None)
            if label_name is None:
                raise UserError(
                    f"{where} has no labels column (looked for {', '.join(map(repr, LABEL_COLUMNS))}); "
                    f"its columns: {listing}; name one with --labels-column or give --labels FILE"
                )
        labels = as_labels(
            _column_to_numpy(table[label_name], label_name, where), f"{where}[{label_name}]"
        )
    elif labels_column is not None and labels_column in columns:
        label_name = labels_column
    split = None
    if split_column is not None:
        need(split_column, "split", "--split-column")
        split = _column_to_numpy(table[split_column], split_column, where).astype(str)

    def is_list(t) -> bool:
        return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)

    if features_column is not None:
        need(features_column, "features", "--features-column")
        t = table.schema.field(features_column).type
        if is_list(t):
            x = _list_column_to_array(table[features_column], features_column, where)
        elif _numeric_type(t):
            x = as_features(
                _column_to_numpy(table[features_column], features_column, where)[:, None],
                f"{where}[{features_column}]",
            )
        else:
            raise UserError(
                f"{where}: features column {features_column!r} must hold numbers or lists of numbers, got {t}"
            )
    else:
        found = next(
            (c for c in FEATURE_COLUMNS if c in columns and is_list(table.schema.field(c).type)),
            None,
        )
        if found is not None:
            x = _list_column_to_array(table[found], found, where)
        else:
            skip = {label_name, split_column, *LABEL_COLUMNS}
            numeric = [
                c
                for c in columns
                if c not in skip
                and not c.startswith("__")
                and _numeric_type(table.schema.field(c).type)
            ]
            if not numeric:
                raise UserError(
                    f"{where} has no features: no list column {', '.join(map(repr, FEATURE_COLUMNS))} "
                    f"and no numeric column besides the labels; its columns: {listing}; "
                    "name one with --features-column"
                )
            x = as_features(
                np.column_stack([_column_to_numpy(table[c], c, where) for c in numeric]), where
            )
    return x, labels, split


# --------------------------------------------------------------------------- entry point
