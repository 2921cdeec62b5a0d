"""CIFAR-10 and CIFAR-100 from the official python-version archives.

The archive (``cifar-10-python.tar.gz``, ``cifar-100-python.tar.gz``) lives in the raw
folder (:func:`surrogap.data.archive.raw_folder`), is fetched and checked by
:func:`surrogap.data.archive.ensure` and extracted once beside it; its pickle batches are
read with an unpickler that only admits numpy arrays. Splits (docs/PROTOCOL.md): a seeded
stratified 10% of the official training set is val, the official test set is test. ``x``
is float32 (n, 3, 32, 32), normalized per channel (recorded in meta.json as
``normalization`` so augmentation can undo it); CIFAR-100 uses its 100 fine labels.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np

from surrogap.core.config import model, spec
from surrogap.core.errors import UserError
from surrogap.core.prepared import Prepared
from surrogap.data import archive, relabel, stratified_split, subsample_classes


class Source(NamedTuple):
    filename: str
    url: str
    md5: str
    folder: str  # the top-level folder inside the archive
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: str
    names_key: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# The official archives (fields in Source's order); tests monkeypatch this mapping to
# point at fixtures.
KRIZ = "https://www.cs.toronto.edu/~kriz"
SOURCES: dict[str, Source] = {
    "cifar10": Source(
        "cifar-10-python.tar.gz", f"{KRIZ}/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta",
        "labels", "label_names", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": Source(
        "cifar-100-python.tar.gz", f"{KRIZ}/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python", ("train",), ("test",), "meta",
        "fine_labels", "fine_label_names", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
    ),
}  # fmt: skip


@model
class CifarConfig:
    kind: Literal["cifar10", "cifar100"] = spec()
    root: str | None = spec(None, allowed="null (the prepare stage's --root) or a folder path")
    download: bool = spec(True)
    classes: int | None = spec(None, ge=2, allowed="null (all) or an integer >= 2")
    val_fraction: float = spec(0.1, gt=0, lt=1)
    train_limit: int | None = spec(
        None, ge=2, allowed="null (no cap) or an integer >= 2 (training images per class)"
    )
    augment: bool = spec(False)
    prior: Literal["uniform", "empirical"] = spec("uniform")
    seed: int = spec(0, ge=0)


# --------------------------------------------------------------------------- pickles
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits the globals a pickled numpy array needs and nothing else."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core") :]  # numpy 2 moved it
        return getattr(importlib.import_module(module), name)


def _text(value: Any) -> Any:
    return value.decode("latin1") if isinstance(value, bytes) else value


def read_pickle(path: Path) -> dict[str, Any]:
    """A CIFAR pickle (written by Python 2 or 3) as a dict with str keys."""
    try:
        with open(path, "rb") as fh:
            obj = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError:
        raise UserError(f"{str(path)!r} is missing from the extracted archive") from None
    except OSError as exc:
        raise UserError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except Exception as exc:
        # (UnpicklingError, EOFError, a codec it names that does not exist: LookupError,
        # UnicodeDecodeError, ...): one line naming it, never a traceback
        what = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(
            f"{str(path)!r} is not a readable CIFAR pickle ({type(exc).__name__}: {what})"
        ) from None
    if not isinstance(obj, dict):
        raise UserError(f"{str(path)!r} is not a CIFAR pickle (expected a dict)")
    return {_text(k): v for k, v in obj.items()}


def read_batches(
    folder: Path, names: tuple[str, ...], label_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 3, 32, 32) uint8, labels (n,) int64) of the named batches, in order."""
    xs, ys = [], []
    for name in names:
        batch = read_pickle(folder / name)
        if "data" not in batch or label_key not in batch:
            raise UserError(f"{str(folder / name)!r} lacks 'data' or {label_key!r}")
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.size:
            raise UserError(
                f"{str(folder / name)!r}: data {data.shape} and {labels.size} labels do not "
                "match (n, 3072) images"
            )
        xs.append(data.reshape(-1, 3, 32, 32))  # rows are channel-major: R, G, B planes
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def normalize(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """uint8 (n, 3, H, W) -> float32 (n, 3, H, W): (x / 255 - mean) / std per channel."""
    m = np.asarray(mean, dtype=np.float32)[None, :, None, None]
    s = np.asarray(std, dtype=np.float32)[None, :, None, None]
    return ((images.astype(np.float32) / np.float32(255.0)) - m) / s


def limit_per_class(y: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices keeping at most `limit` samples of each class (a seeded choice)."""
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep.append(idx if idx.size <= limit else rng.choice(idx, size=limit, replace=False))
    return np.sort(np.concatenate(keep))


# --------------------------------------------------------------------------- build
def build(cfg: CifarConfig, root: Path) -> Prepared:
    src = SOURCES[cfg.kind]
    folder = archive.raw_folder(cfg.root, root)
    tar_path = folder / src.filename
    ours = archive.inside(tar_path, root)  # a `root` elsewhere is the user's folder
    digest = archive.ensure(tar_path, src.url, src.md5, cfg.download, cfg.kind, ours=ours)
    extracted = archive.extract_once(
        tar_path, folder / src.filename.removesuffix(".tar.gz"), digest, ours=ours
    )
    batches = extracted / src.folder

    meta = read_pickle(batches / src.meta)
    names = [str(_text(n)) for n in meta.get(src.names_key, [])]
    x_train, y_train = read_batches(batches, src.train, src.label_key)
    x_test, y_test = read_batches(batches, src.test, src.label_key)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if len(names) != n_classes:
        raise UserError(
            f"{str(batches / src.meta)!r} names {len(names)} classes but the labels use {n_classes}"
        )

    # class sub-sampling (seeded), then relabel 0..C-1 keeping the names
    keep, kept = subsample_classes(y_train, cfg.classes, cfg.seed)
    x_train, y_train = x_train[keep], relabel(y_train[keep], kept)
    test_keep = np.flatnonzero(np.isin(y_test, kept))
    x_test, y_test = x_test[test_keep], relabel(y_test[test_keep], kept)

    parts = stratified_split(y_train, cfg.val_fraction, 0.0, cfg.seed)
    train_idx, val_idx = parts["train"], parts["val"]
    if cfg.train_limit is not None:
        rng = np.random.default_rng([cfg.seed, 1])
        train_idx = train_idx[limit_per_class(y_train[train_idx], cfg.train_limit, rng)]

    def split(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        return {"x": normalize(x, src.mean, src.std), "y": y.astype(np.int64)}

    splits = {
        "train": split(x_train[train_idx], y_train[train_idx]),
        "val": split(x_train[val_idx], y_train[val_idx]),
        "test": split(x_test, y_test),
    }
    return Prepared(
        splits=splits,
        num_classes=int(kept.size),
        modality="dense",
        input_shape=(3, 32, 32),
        class_names=[names[int(c)] for c in kept],
        extra={
            "augment": cfg.augment,
            "normalization": {"mean": list(src.mean), "std": list(src.std)},
        },
    )


KINDS = {"cifar10": (CifarConfig, build), "cifar100": (CifarConfig, build)}
