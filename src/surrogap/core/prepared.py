"""The on-disk contract of a prepared dataset, `data/prepared/<dataset>/s<seed>/`: the
splits ``{train,val,test}.npz`` and ``meta.json``, written by :func:`write_prepared` (the
`prepare` stage) and read back by :func:`read_splits` (numpy only;
:func:`surrogap.models.inputs.load_prepared` serves the splits to encoders as tensors) and,
where only meta.json's numbers are used (probe, bounds, report), by
:func:`read_checked_meta`; both check every split against meta.json (keys, sizes, label
range, shapes, every class in train, the prior, text token ids), so data changed after the
prepare stage is one line naming the file. See docs/ARCHITECTURE.md."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from surrogap.core import io
from surrogap.core.errors import UserError
from surrogap.core.schema import SPLITS

MODALITIES = ("dense", "text")
AGAIN = "rerun `dvc repro prepare` (or delete the folder first)"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _problem(meta) -> str | None:
    """What is wrong with a decoded meta.json, or None."""
    if not isinstance(meta, dict):
        return f"holds a {type(meta).__name__}, not an object"
    for key in ("kind", "modality", "num_classes", "input_shape", "sizes"):
        if key not in meta:
            return f"has no {key!r}"
    if meta["modality"] not in MODALITIES:
        return f"modality is {meta['modality']!r}, allowed: {', '.join(MODALITIES)}"
    if not isinstance(meta["kind"], str):
        return f"kind is {meta['kind']!r}, not a string"
    c = meta["num_classes"]
    if not _is_int(c) or c < 2:
        return f"num_classes is {c!r}, allowed: an integer >= 2"
    shape = meta["input_shape"]
    if not isinstance(shape, list) or not all(_is_int(v) and v >= 1 for v in shape):
        return f"input_shape is {shape!r}, allowed: a list of integers >= 1"
    sizes = meta["sizes"]
    if not isinstance(sizes, dict) or not all(
        _is_int(sizes.get(s)) and sizes[s] >= 0 for s in SPLITS
    ):
        return f"sizes is {sizes!r}, allowed: {{train, val, test}} sample counts"
    vocab = meta.get("vocab_size")
    if meta["modality"] == "text" and (not _is_int(vocab) or vocab < 1):
        return f"vocab_size is {vocab!r}, allowed for text: an integer >= 1"
    prior = meta.get("prior")
    if prior is not None:
        ok = (
            isinstance(prior, list)
            and len(prior) == c
            and all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in prior)
            and all(0 <= p <= 1 for p in prior)
            and math.isclose(math.fsum(prior), 1.0, abs_tol=1e-6)
        )
        if not ok:
            return f"prior is not null or a list of {c} probabilities summing to 1"
    return None


def read_meta(folder: str | Path) -> dict:
    """The checked meta.json of a prepared dataset folder; a missing, unreadable or
    inconsistent one is one UserError line naming the file and what is wrong."""
    folder = Path(folder)
    path = folder / "meta.json"
    if not path.exists():
        raise UserError(
            f"{str(folder)!r} holds no prepared dataset (meta.json missing); run `dvc repro prepare` first"
        )
    io.readable(path, "a prepared dataset's meta.json")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, OSError) as exc:  # empty, truncated, not UTF-8, a folder
        raise UserError(f"{str(path)!r} is unreadable ({type(exc).__name__}); {AGAIN}") from None
    why = _problem(meta)
    if why:
        raise UserError(f"{str(path)!r} {why}; {AGAIN}")
    return meta


def check_dataset(meta: Mapping, dataset: str, folder: str | Path) -> None:
    """The prepared data of `folder` must be `dataset`'s: meta.json records the section it
    was prepared from, so another dataset's folder copied in is one line, not a row of
    `dataset` computed on other data."""
    if meta.get("dataset") != dataset:
        raise UserError(
            f"{str(Path(folder) / 'meta.json')!r} says dataset {meta.get('dataset')!r}, but this "
            f"run is dataset {dataset!r}: the folder holds another dataset's prepared data; the "
            f"prepared data was changed after the prepare stage: {AGAIN}"
        )


@dataclass
class Prepared:
    """What a builder returns: arrays per split plus metadata for meta.json.

    Dense splits hold ``x`` (n, ...) float32 and ``y`` (n,) int64; text splits hold
    ``tokens`` (total,) int64, ``offsets`` (n,) int64 (start of each sequence) and ``y``.
    """

    splits: dict[str, dict[str, np.ndarray]]
    num_classes: int
    modality: str = "dense"  # "dense" or "text"
    input_shape: tuple[int, ...] = ()
    vocab_size: int | None = None
    class_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def write_prepared(prepared: Prepared, name: str, kind: str, prior: str, out_dir: Path) -> None:
    """Write the splits and meta.json into `out_dir` atomically (a whole folder at once)."""
    y_train = prepared.splits["train"]["y"]
    counts = np.bincount(y_train, minlength=prepared.num_classes)
    if (counts == 0).any():
        raise UserError(f"dataset {name!r}: class {int(np.argmin(counts))} has no training sample")
    empirical = (counts / counts.sum()).tolist()
    meta = {
        "dataset": name,
        "kind": kind,
        "modality": prepared.modality,
        "num_classes": prepared.num_classes,
        "input_shape": list(prepared.input_shape),
        "vocab_size": prepared.vocab_size,
        "class_names": prepared.class_names,
        "prior": empirical if prior == "empirical" else None,
        "sizes": {s: int(prepared.splits[s]["y"].size) for s in SPLITS},
        **prepared.extra,
    }
    for s in SPLITS:
        bad = _nonfinite(prepared.splits[s])
        if bad is not None:
            raise UserError(
                f"dataset {name!r}: split {s} key {bad[0]} holds NaN or inf (first at row "
                f"{bad[1]}); nothing written: check the raw data or the data block of params"
            )
    with io.atomic_dir(out_dir) as tmp:
        for s in SPLITS:
            np.savez(tmp / f"{s}.npz", **prepared.splits[s])
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def _nonfinite(arrays: Mapping[str, np.ndarray]) -> tuple[str, int] | None:
    """(key, first row) of the first float array holding NaN or inf, else None."""
    for key, arr in arrays.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            return key, int(np.argwhere(~np.isfinite(arr))[0, 0])
    return None


def _npz_shapes(path: Path) -> dict[str, tuple[tuple, np.dtype]]:
    """The shape and dtype of every array of an .npz, read from the headers alone."""
    import zipfile

    out = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if not name.endswith(".npy"):
                continue
            with zf.open(name) as fp:
                version = np.lib.format.read_magic(fp)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read(fp)
            out[name[: -len(".npy")]] = (tuple(shape), np.dtype(dtype))
    return out


def _check_split(
    folder: Path, meta: dict, split: str, shapes: dict, arrays: dict[str, np.ndarray]
) -> None:
    """The split's arrays (`shapes`: every key's shape and dtype; `arrays`: at least the
    labels `y`) against meta.json: the keys of its modality, sizes, label range, the
    dense input shape, and (train) every class present, matching the prior."""
    path, meta_path = folder / f"{split}.npz", folder / "meta.json"
    where, mwhere = repr(str(path)), repr(str(meta_path))
    stale = f"the prepared data was changed after the prepare stage: {AGAIN}"
    need = ("x", "y") if meta["modality"] == "dense" else ("tokens", "offsets", "y")
    lacking = [k for k in need if k not in shapes]
    if lacking:
        raise UserError(
            f"{where} lacks the arrays {', '.join(lacking)} ({mwhere} says modality "
            f"{meta['modality']}: {', '.join(need)}); {stale}"
        )
    y = arrays["y"]
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise UserError(
            f"{where} y is {y.dtype} of shape {y.shape}, allowed: integer (n,); {stale}"
        )
    n, size = int(y.size), meta["sizes"][split]
    if n != size:
        raise UserError(f"{mwhere} sizes.{split} is {size} but {where} holds {n} samples; {stale}")
    c = meta["num_classes"]
    if n and (y.min() < 0 or y.max() >= c):
        bad = int(y[(y < 0) | (y >= c)][0])
        raise UserError(
            f"{where} holds label {bad}, allowed: 0..{c - 1} ({mwhere} num_classes is {c}); {stale}"
        )
    if meta["modality"] == "dense":
        shape, dtype = shapes["x"]
        want = (n, *meta["input_shape"])
        if shape != want or dtype.kind != "f":
            raise UserError(
                f"{where} x is {dtype} of shape {shape}, allowed: float {want} ({n} samples "
                f"of {mwhere} input_shape {meta['input_shape']}); {stale}"
            )
    else:
        (tshape, tdtype), (oshape, odtype) = shapes["tokens"], shapes["offsets"]
        if len(tshape) != 1 or tdtype.kind not in "iu" or oshape != (n,) or odtype.kind not in "iu":
            raise UserError(
                f"{where} tokens is {tdtype} {tshape} and offsets {odtype} {oshape}, allowed: "
                f"integer (total,) and integer ({n},); {stale}"
            )
        if "tokens" in arrays and "offsets" in arrays:
            _check_text(where, mwhere, meta, arrays["tokens"], arrays["offsets"], stale)
    if split != "train":
        return
    counts = np.bincount(y, minlength=c)
    if (counts == 0).any():
        raise UserError(
            f"{mwhere} num_classes is {c} but {where} has no sample of class "
            f"{int(np.argmin(counts))}; {stale}"
        )
    prior = meta.get("prior")
    if prior is not None and not np.allclose(prior, counts / counts.sum(), rtol=1e-9, atol=1e-12):
        raise UserError(
            f"{mwhere} prior is not the class frequencies of {where} (it is written from "
            f"them); {stale}"
        )


def _check_text(
    where: str, mwhere: str, meta: dict, tokens: np.ndarray, offsets: np.ndarray, stale: str
) -> None:
    """Token ids within meta.json's vocabulary; offsets starting at 0, never decreasing,
    within the tokens (the encoder's embedding indexes by them)."""
    vocab = meta["vocab_size"]
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab):
        bad = int(tokens[(tokens < 0) | (tokens >= vocab)][0])
        raise UserError(
            f"{where} holds token id {bad}, allowed: 0..{vocab - 1} ({mwhere} vocab_size is "
            f"{vocab}); {stale}"
        )
    if offsets.size and (
        offsets[0] != 0 or (np.diff(offsets) < 0).any() or offsets[-1] > tokens.size
    ):
        raise UserError(
            f"{where} offsets are not the starts of its sentences (0 first, never decreasing, "
            f"at most the {tokens.size} tokens); {stale}"
        )


def _read_split(path: Path, read: Callable[[Path], Any]) -> Any:
    """`read(path)` of a prepared split; a missing or unreadable one is one line."""
    io.readable(path, "a prepared split")
    try:
        return read(path)
    except FileNotFoundError:
        raise UserError(f"{str(path)!r} is missing; {AGAIN}") from None
    except Exception as exc:  # truncated or not an npz (BadZipFile, ValueError, EOFError)
        raise UserError(f"{str(path)!r} is unreadable ({type(exc).__name__}); {AGAIN}") from None


def _arrays(path: Path, keys: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The arrays of the .npz `path` (only `keys` when given)."""
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in keys or npz.files}


def read_checked_meta(folder: str | Path) -> dict:
    """The checked meta.json of a prepared dataset folder, checked against the arrays of
    every split too (their headers and labels only, not the inputs): for a reader that
    takes the sizes or classes from meta.json without reading the data."""
    return read_labels(folder)[0]


def read_labels(folder: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """meta.json and the labels `y` of every split, checked as :func:`read_checked_meta`
    does (the inputs are not read)."""
    return _read_checked(folder, labels_only=True)


def read_splits(folder: str | Path) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """The checked meta.json and the arrays of every split of a prepared dataset folder,
    each split checked against meta.json (:func:`_check_split`) and for NaN or inf."""
    return _read_checked(folder, labels_only=False)


def _read_checked(folder: str | Path, labels_only: bool) -> tuple[dict, dict]:
    folder = Path(folder)
    meta = read_meta(folder)
    out = {}
    for s in SPLITS:
        path = folder / f"{s}.npz"
        if labels_only:  # the headers, then `y` alone
            shapes = _read_split(path, _npz_shapes)
            arrays = _read_split(path, lambda p: _arrays(p, ["y"])) if "y" in shapes else {}
        else:
            arrays = _read_split(path, _arrays)
            shapes = {k: (a.shape, a.dtype) for k, a in arrays.items()}
        _check_split(folder, meta, s, shapes, arrays)
        bad = None if labels_only else _nonfinite(arrays)
        if bad is not None:
            raise UserError(
                f"{str(path)!r} key {bad[0]} holds NaN or inf (first at row {bad[1]}); the "
                f"prepared data was changed after the prepare stage: {AGAIN}"
            )
        out[s] = arrays["y"] if labels_only else arrays
    return meta, out
