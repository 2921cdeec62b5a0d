"""Datasets: the common on-disk layout, its writing and its loading for training.

Each dataset *kind* lives in one module that exposes ``KINDS = {kind: (ConfigClass,
build)}``; ``build(cfg, root) -> Prepared`` returns the three splits (the registry and the
dispatch are in :mod:`surrogap.data.kinds`, which only the `prepare` stage reaches). The `prepare` stage
writes them under ``data/prepared/<dataset>/`` as ``{train,val,test}.npz`` plus
``meta.json`` (see docs/ARCHITECTURE.md); training and evaluation read them back with
:func:`load_prepared`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from surrogap import config, io
from surrogap.errors import UserError
from surrogap.meta import AGAIN, read_meta

SPLITS = ("train", "val", "test")

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


# --------------------------------------------------------------------------- shared helpers
def stratified_split(
    y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Seeded stratified split of indices into train/val/test, every class in every split."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = idx.size
        n_test = int(round(n * test_fraction))
        n_val = int(round(n * val_fraction))
        if n - n_val - n_test < 2 or (val_fraction > 0 and n_val < 2) or (test_fraction > 0 and n_test < 2):
            raise UserError(
                f"class {int(c)} has {n} samples: too few for val_fraction={val_fraction} and "
                f"test_fraction={test_fraction} (each split needs at least 2 per class)"
            )
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return {s: np.sort(np.concatenate(p)) for s, p in parts.items()}


def subsample_classes(y: np.ndarray, classes: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep a seeded random subset of `classes` classes and relabel them 0..C-1.

    Returns (kept sample indices, kept original class ids in new-label order).
    """
    present = np.unique(y)
    if classes is None:
        return np.arange(y.size), present
    if classes < 2 or classes > present.size:
        raise UserError(
            f"data.classes: got {classes}, allowed: 2..{present.size} (the classes available)"
        )
    rng = np.random.default_rng(seed)
    kept = np.sort(rng.choice(present, size=classes, replace=False))
    mask = np.isin(y, kept)
    return np.flatnonzero(mask), kept


def relabel(y: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Map original class ids in `kept` to 0..len(kept)-1."""
    lookup = {int(c): i for i, c in enumerate(kept)}
    return np.fromiter((lookup[int(v)] for v in y), dtype=np.int64, count=y.size)


# --------------------------------------------------------------------------- on disk
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
        for key, arr in prepared.splits[s].items():
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                row = int(np.argwhere(~np.isfinite(arr))[0, 0])
                raise UserError(
                    f"dataset {name!r}: split {s} key {key} holds NaN or inf (first at row "
                    f"{row}); nothing written: check the raw data or the data block of params"
                )
    with io.atomic_dir(out_dir) as tmp:
        for s in SPLITS:
            np.savez(tmp / f"{s}.npz", **prepared.splits[s])
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


class Split:
    """One split of a prepared dataset, served as model inputs by index."""

    def __init__(self, arrays: dict[str, np.ndarray], modality: str):
        self.modality = modality
        self.y = torch.as_tensor(arrays["y"], dtype=torch.long)
        if modality == "dense":
            self.x = torch.as_tensor(arrays["x"], dtype=torch.float32)
        else:
            self.tokens = torch.as_tensor(arrays["tokens"], dtype=torch.long)
            self.offsets = torch.as_tensor(arrays["offsets"], dtype=torch.long)
            ends = torch.cat([self.offsets[1:], torch.tensor([self.tokens.numel()])])
            self.lengths = ends - self.offsets

    def __len__(self) -> int:
        return int(self.y.numel())

    def inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The encoder's positional inputs for samples `idx` (dense: (x,); text: (tokens, offsets))."""
        if self.modality == "dense":
            return (self.x[idx],)
        lengths = self.lengths[idx]
        starts = self.offsets[idx]
        # flat token positions of the selected sequences, concatenated in order
        rep = torch.repeat_interleave(starts - torch.cumsum(lengths, 0) + lengths, lengths)
        pos = rep + torch.arange(int(lengths.sum()))
        offsets = torch.cumsum(lengths, 0) - lengths
        return (self.tokens[pos], offsets)


@dataclass
class Dataset:
    """A prepared dataset read back from disk."""

    meta: dict
    splits: dict[str, Split]

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])


def load_prepared(folder: str | Path) -> Dataset:
    folder = Path(folder)
    meta = read_meta(folder)
    again = AGAIN
    splits = {}
    for s in SPLITS:
        path = folder / f"{s}.npz"
        try:
            with np.load(path) as arrays:
                loaded = {k: arrays[k] for k in arrays.files}
        except FileNotFoundError:
            raise UserError(f"{str(path)!r} is missing; {again}") from None
        except Exception as exc:  # truncated or not an npz (BadZipFile, ValueError, EOFError)
            raise UserError(f"{str(path)!r} is unreadable ({type(exc).__name__}); {again}") from None
        for key, arr in loaded.items():
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                row = int(np.argwhere(~np.isfinite(arr))[0, 0])
                raise UserError(
                    f"{str(path)!r} key {key} holds NaN or inf (first at row {row}); the "
                    f"prepared data was changed after the prepare stage: {again}"
                )
        splits[s] = Split(loaded, meta["modality"])
    return Dataset(meta=meta, splits=splits)
