"""Image datasets: cifar10/cifar100 loaded end to end from tiny archives in the official
python-pickle format, digits from scikit-learn, and per-view augmentation."""

from __future__ import annotations

import io
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from surrogap.core import prepared as core_prepared
from surrogap.core.errors import UserError
from surrogap.data import archive, cifar, kinds
from surrogap.models import inputs
from surrogap.training.augment import build_augment

torch.set_num_threads(1)

PER_CLASS_TRAIN = 20
PER_CLASS_TEST = 3


def _member(tar: tarfile.TarFile, name: str, obj) -> None:
    blob = pickle.dumps(obj, protocol=2)
    info = tarfile.TarInfo(name)
    info.size = len(blob)
    tar.addfile(info, io.BytesIO(blob))


def _images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 3072) uint8 rows; pixel 0 of the red plane encodes the label, for checks."""
    x = rng.integers(0, 256, size=(labels.size, 3072), dtype=np.uint8)
    x[:, 0] = labels
    return x


def _labels(classes: int, seed: int) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    """The fixture's generator, then its shuffled train labels and ordered test labels
    (PER_CLASS_TRAIN and PER_CLASS_TEST of each class)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(classes), PER_CLASS_TRAIN))
    return rng, y, np.repeat(np.arange(classes), PER_CLASS_TEST)


def make_cifar10(path: Path, seed: int = 0) -> Path:
    """cifar-10-python.tar.gz in the official layout (bytes keys, as Python 2 wrote them)."""
    rng, y, y_test = _labels(10, seed)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for i, chunk in enumerate(np.array_split(np.arange(y.size), 5), start=1):
            batch = {
                b"batch_label": b"training batch",
                b"labels": y[chunk].tolist(),
                b"data": _images(y[chunk], rng),
            }
            _member(tar, f"cifar-10-batches-py/data_batch_{i}", batch)
        _member(
            tar,
            "cifar-10-batches-py/test_batch",
            {b"labels": y_test.tolist(), b"data": _images(y_test, rng)},
        )
        names = [
            b"airplane",
            b"automobile",
            b"bird",
            b"cat",
            b"deer",
            b"dog",
            b"frog",
            b"horse",
            b"ship",
            b"truck",
        ]
        _member(tar, "cifar-10-batches-py/batches.meta", {b"label_names": names, b"num_vis": 3072})
    return path


def make_cifar100(path: Path, seed: int = 0) -> Path:
    """cifar-100-python.tar.gz in the official layout (str keys), fine and coarse labels."""
    rng, y, y_test = _labels(100, seed)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for split, labels in (("train", y), ("test", y_test)):
            batch = {
                "fine_labels": labels.tolist(),
                "coarse_labels": (labels // 5).tolist(),
                "data": _images(labels, rng),
            }
            _member(tar, f"cifar-100-python/{split}", batch)
        meta = {
            "fine_label_names": [f"fine{i:02d}" for i in range(100)],
            "coarse_label_names": [f"c{i}" for i in range(20)],
        }
        _member(tar, "cifar-100-python/meta", meta)
    return path


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cifar-fixtures")
    return {
        kind: maker(folder / cifar.SOURCES[kind].filename)
        for kind, maker in (("cifar10", make_cifar10), ("cifar100", make_cifar100))
    }


@pytest.fixture
def raw(tmp_path, monkeypatch, archives):
    """A root holding both fixture archives, with the module's checksums pointed at them."""
    folder = tmp_path / "raw"
    folder.mkdir()
    for kind, made in archives.items():
        src = cifar.SOURCES[kind]
        path = folder / src.filename
        shutil.copyfile(made, path)
        monkeypatch.setitem(
            cifar.SOURCES,
            kind,
            src._replace(md5=archive.md5sum(path), url=f"http://127.0.0.1:9/{src.filename}"),
        )
    return folder


def _build(prepare_root: Path, **params):
    cfg = kinds.parse_data_config(params, "cifar.data")
    return kinds.build(cfg, prepare_root)


def _label_of(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Undo the normalization of red pixel 0, which the fixture set to the original label."""
    return np.rint((x[:, 0, 0, 0] * std + mean) * 255).astype(np.int64)


def test_cifar10_end_to_end(raw):
    p = _build(raw, kind="cifar10", download=False, augment=True)
    assert p.num_classes == 10 and p.modality == "dense" and p.input_shape == (3, 32, 32)
    assert p.class_names[:3] == ["airplane", "automobile", "bird"]
    sizes = {s: p.splits[s]["y"].size for s in core_prepared.SPLITS}
    assert sizes == {"train": 180, "val": 20, "test": 30}
    for s in core_prepared.SPLITS:
        x, y = p.splits[s]["x"], p.splits[s]["y"]
        assert x.dtype == np.float32 and x.shape == (y.size, 3, 32, 32) and y.dtype == np.int64
        assert np.array_equal(_label_of(x, 0.4914, 0.2470), y)  # images and labels stay paired
    assert np.bincount(p.splits["val"]["y"]).tolist() == [2] * 10  # stratified 10%
    assert np.bincount(p.splits["test"]["y"]).tolist() == [PER_CLASS_TEST] * 10
    assert p.extra["augment"] is True and p.extra["normalization"]["std"][0] == pytest.approx(
        0.2470
    )
    # a second build reuses the extraction and gives the same arrays
    again = _build(raw, kind="cifar10", download=False, augment=True)
    assert np.array_equal(again.splits["val"]["x"], p.splits["val"]["x"])


def test_cifar100_subsample_classes_and_train_limit(raw):
    p = _build(raw, kind="cifar100", classes=7, train_limit=5, seed=3, download=False)
    assert p.num_classes == 7 and len(p.class_names) == 7
    original = np.array([int(n.removeprefix("fine")) for n in p.class_names])
    assert np.all(np.diff(original) > 0)  # kept classes in ascending original order
    for s in core_prepared.SPLITS:
        y = p.splits[s]["y"]
        assert set(np.unique(y).tolist()) == set(range(7))
        assert np.array_equal(original[y], _label_of(p.splits[s]["x"], 0.5071, 0.2673))
    assert np.bincount(p.splits["train"]["y"]).tolist() == [5] * 7
    assert np.bincount(p.splits["val"]["y"]).tolist() == [2] * 7
    assert p.splits["test"]["y"].size == 7 * PER_CLASS_TEST
    other = _build(raw, kind="cifar100", classes=7, train_limit=5, seed=4, download=False)
    assert other.class_names != p.class_names  # the subset follows the seed


@pytest.mark.parametrize("classes", [1, 0])
def test_cifar_classes_below_two_is_a_user_error(tmp_path, classes):
    with pytest.raises(UserError, match="classes"):
        _build(tmp_path, kind="cifar10", classes=classes)


def test_cifar_classes_above_available_is_a_user_error(raw):
    with pytest.raises(UserError, match=r"data\.classes: got 11, allowed: 2\.\.10"):
        _build(raw, kind="cifar10", classes=11, download=False)


def test_cifar_checksum_mismatch_refused_and_moved_aside(raw):
    tar = raw / "cifar-10-python.tar.gz"
    tar.write_bytes(tar.read_bytes() + b"tampered")
    with pytest.raises(UserError) as err:
        _build(raw, kind="cifar10", download=False)
    msg = str(err.value)
    assert "\n" not in msg and "checksum" in msg and "cifar-10-python.tar.gz.corrupt" in msg
    assert not tar.exists() and tar.with_name(tar.name + ".corrupt").exists()
    assert not (raw / "cifar-10-python").exists()  # nothing extracted
    # the bad file is not picked up again: now the archive is simply missing
    with pytest.raises(UserError, match="archive missing"):
        _build(raw, kind="cifar10", download=False)


def test_cifar_truncated_archive_refused(raw, monkeypatch):
    tar = raw / "cifar-100-python.tar.gz"
    tar.write_bytes(tar.read_bytes()[:-5000])
    with pytest.raises(UserError, match="checksum"):  # the official md5 catches it first
        _build(raw, kind="cifar100", download=False)
    # with a checksum that matches the cut file, extraction itself refuses it
    cut = tar.with_name(tar.name + ".corrupt")
    cut.rename(tar)
    src = cifar.SOURCES["cifar100"]
    monkeypatch.setitem(cifar.SOURCES, "cifar100", src._replace(md5=archive.md5sum(tar)))
    with pytest.raises(UserError, match=r"truncated or corrupt.*\.corrupt"):
        _build(raw, kind="cifar100", download=False)
    assert not tar.exists() and not (tar.parent / "cifar-100-python").exists()
    assert not [p for p in tar.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_cifar_missing_archive_without_download(tmp_path):
    with pytest.raises(UserError) as err:
        _build(tmp_path, kind="cifar10", download=False)
    msg = str(err.value)
    want = tmp_path / "cifar-10-python.tar.gz"
    assert "\n" not in msg and "missing" in msg and str(want) in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg


def test_cifar_missing_archive_and_no_network(tmp_path, monkeypatch):
    src = cifar.SOURCES["cifar100"]
    monkeypatch.setitem(
        cifar.SOURCES, "cifar100", src._replace(url="http://127.0.0.1:9/cifar-100-python.tar.gz")
    )
    root = tmp_path / "elsewhere"
    with pytest.raises(UserError) as err:
        _build(tmp_path, kind="cifar100", root=str(root), download=True)
    msg = str(err.value)
    assert "\n" not in msg and "cannot download" in msg
    assert str(root / "cifar-100-python.tar.gz") in msg and "127.0.0.1:9" in msg
    assert [p.name for p in root.iterdir()] == []  # nothing partial


def test_cifar_download_from_url(tmp_path, monkeypatch):
    mirror = make_cifar10(tmp_path / "mirror.tar.gz")
    src = cifar.SOURCES["cifar10"]
    monkeypatch.setitem(
        cifar.SOURCES, "cifar10", src._replace(url=mirror.as_uri(), md5=archive.md5sum(mirror))
    )
    p = _build(tmp_path, kind="cifar10", classes=2, download=True)
    assert p.num_classes == 2 and (tmp_path / "cifar-10-python.tar.gz").exists()


def test_cifar_prepared_round_trip(raw, tmp_path):
    p = _build(raw, kind="cifar10", classes=3, download=False, augment=True)
    out = tmp_path / "prepared" / "cifar10"
    core_prepared.write_prepared(p, "cifar10", "cifar10", "uniform", out)
    ds = inputs.load_prepared(out)
    assert ds.meta["augment"] is True and ds.meta["input_shape"] == [3, 32, 32]
    (x,) = ds.splits["train"].inputs(torch.arange(4))
    assert x.shape == (4, 3, 32, 32)
    assert torch.equal(x, torch.as_tensor(p.splits["train"]["x"][:4]))


# --------------------------------------------------------------------------- digits
def test_digits_shapes_and_stratified_splits(tmp_path):
    p = kinds.build(kinds.parse_data_config({"kind": "digits"}, "digits.data"), tmp_path)
    assert p.num_classes == 10 and p.input_shape == (1, 8, 8) and p.class_names[0] == "0"
    total = sum(p.splits[s]["y"].size for s in core_prepared.SPLITS)
    assert total == 1797
    for s in core_prepared.SPLITS:
        x, y = p.splits[s]["x"], p.splits[s]["y"]
        assert x.shape == (y.size, 1, 8, 8) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        frac = np.bincount(y, minlength=10) / y.size
        assert np.all(np.abs(frac - 0.1) < 0.02)  # every class near 10% in every split
    assert p.splits["test"]["y"].size == pytest.approx(0.2 * total, abs=10)
    assert not list(tmp_path.iterdir())  # nothing downloaded or written


def test_digits_classes_and_seed(tmp_path):
    cfg = kinds.parse_data_config({"kind": "digits", "classes": 4, "seed": 1}, "digits.data")
    a, b = kinds.build(cfg, tmp_path), kinds.build(cfg, tmp_path)
    assert a.num_classes == 4 and len(a.class_names) == 4
    assert np.array_equal(a.splits["train"]["x"], b.splits["train"]["x"])
    assert set(a.splits["test"]["y"].tolist()) == {0, 1, 2, 3}
    with pytest.raises(UserError, match=r"allowed: 2\.\.10"):
        kinds.build(kinds.parse_data_config({"kind": "digits", "classes": 12}, "d"), tmp_path)
    with pytest.raises(UserError, match="unknown key"):
        kinds.parse_data_config({"kind": "digits", "clases": 4}, "d")


# --------------------------------------------------------------------------- augmentation
META = {
    "dataset": "c",
    "modality": "dense",
    "input_shape": [3, 32, 32],
    "augment": True,
    "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
}


def test_augment_per_sample_and_seeded():
    aug = build_augment(META)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 3, 32, 32, generator=gen) - 0.5) / 0.25
    x[3:] = x[0]  # identical inputs still get independent draws
    torch.manual_seed(1)
    a = aug(x)
    torch.manual_seed(1)
    b = aug(x)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert not torch.equal(a[3], a[4])
    lo, hi = (0 - 0.5) / 0.25, (1 - 0.5) / 0.25  # stays within the normalized pixel range
    assert a.min() >= lo - 1e-5 and a.max() <= hi + 1e-5


def test_augment_off_or_not_applicable():
    assert build_augment({**META, "augment": False}) is None
    assert build_augment({"modality": "text", "input_shape": []}) is None
    with pytest.raises(UserError, match="RGB"):
        build_augment({**META, "input_shape": [1, 8, 8]})


def test_cifar_archive_in_a_root_of_yours_is_refused_in_place(raw, tmp_path):
    """data.root outside the project's raw folder: a bad archive there is the user's file,
    refused with one line and left exactly as it was (no .corrupt, nothing extracted)."""
    tar = raw / "cifar-10-python.tar.gz"
    tar.write_bytes(tar.read_bytes() + b"tampered")
    before = {p.name: p.read_bytes() for p in raw.iterdir()}
    project_raw = tmp_path / "project" / "data" / "raw"
    with pytest.raises(UserError) as err:
        _build(project_raw, kind="cifar10", root=str(raw), download=False)
    msg = str(err.value)
    assert "\n" not in msg and "checksum" in msg and "left where it is" in msg
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before
