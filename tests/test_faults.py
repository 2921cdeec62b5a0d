"""Faults a user meets with what the stages read and write: NaN/inf, untrusted files, a full
disk, tampered artifacts (params and atomic writes: test_faults_io.py).

Each test proves one row of docs/FAULTS.md. The tests run as root, where ``chmod 0o555``
does not stop a write, so a read-only folder or a full disk is simulated by patching the
call that would fail (``tempfile.mkstemp``, ``os.replace`` or the writer) to raise the
OSError the kernel would give (EROFS, EACCES, ENOSPC), and by writing to ``/dev/full``,
the kernel's always-full device, where a real ENOSPC is needed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    cli_args,
    files_under,
    leftovers,
    one_line,
    stage,
    tiny_params,
    write_params,
)

from surrogap.core import io
from surrogap.core import prepared as core_prepared
from surrogap.core.errors import UserError
from surrogap.estimators.evaluation import contrastive_loss_estimate, mean_classifier
from surrogap.models import inputs
from surrogap.pipeline import prepare, pretrain
from surrogap.training import checkpoint, train
from surrogap.training.losses import contrastive_loss, l2_normalize

torch.set_num_threads(1)


# --------------------------------------------------------------------------- helpers
RUN = {"dataset": "circle", "k": 4, "seed": 0}  # the tiny params' run
GROUP = {"dataset": "circle", "k": 4}  # its (dataset, K) instance of extract and probe
# the built run's folders: built/prepared/s0/ (prepare), built/models/s0/ (pretrain)
PREPARED = Path("prepared") / "s0"
MODEL = Path("models") / "s0" / "model.pt"


def _stage_argv(name: str, params, prepared: Path, built: Path, t: Path, **over) -> list[str]:
    """The command line of stage `name` (pretrain, extract or probe) of the run reading the
    dataset folder `prepared` (its s0/; and the built run's group folder) and writing under
    `t`: pretrain t/run/s0, t/ckpt/s0 (seed 0 of the group); extract t/f/s0.npz; probe t/features/s0.npz into
    t/p/s0.json and t/p/s0.npz. `over` replaces options."""
    if name == "pretrain":
        options = {**RUN, "data": prepared, "out": t / "run", "checkpoints": t / "ckpt"}
    elif name == "extract":
        options = {**GROUP, "data": prepared, "models": built / "models", "out": t / "f"}
    else:
        options = {**GROUP, "data": prepared, "features": t / "features", "out": t / "p"}
    return cli_args(params=params, **{**options, **over})


def _run_stage(name: str, built: Path, t: Path, prepared: Path | None = None, **over) -> int:
    """The exit status of stage `name` on `_stage_argv`, with the tiny params (t/params.yaml)."""
    params = write_params(t / "params.yaml", tiny_params())
    argv = _stage_argv(name, params, prepared or built / "prepared", built, t, **over)
    return stage(name).main(argv)


def _features_path(t: Path) -> Path:
    """Where probe (as `_run_stage` runs it) reads seed 0's features."""
    (t / "features").mkdir(exist_ok=True)
    return t / "features" / "s0.npz"


def _copy_prepared(built: Path, t: Path) -> Path:
    """A copy of the built dataset folder under `t` (prepared/s0/): the folder to tamper."""
    shutil.copytree(built / "prepared", t / "prepared")
    return t / "prepared"


def _refusal(capsys, name: str, built: Path, t: Path, prepared: Path | None = None, **over) -> str:
    """Stage `name` run as by `_run_stage` must fail with exit status 2: its one stderr line."""
    assert _run_stage(name, built, t, prepared, **over) == 2
    return one_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A prepared tiny circle dataset and a 2-epoch model, shared by the file-fault tests."""
    root = tmp_path_factory.mktemp("built")
    params = tiny_params()
    prepare.run(params, "circle", root / "prepared", root / "raw")
    done = root / "ckpt-done"
    pretrain.run(params, "circle", 4, 0, root / PREPARED, root / "models" / "s0", done)
    # a completed run keeps its final checkpoint until DVC records its output
    assert torch.load(done / checkpoint.NAME, weights_only=True)["epoch"] == 2
    # the checkpoint of a run killed after epoch 1 (of 2)
    original = train.Trainer.train_epoch

    def killed(self):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return original(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train.Trainer, "train_epoch", killed)
        with pytest.raises(KeyboardInterrupt):
            pretrain.run(params, "circle", 4, 0, root / PREPARED, root / "killed", root / "ckpt")
    return root


# --------------------------------------------------------------------------- 4. numbers
def test_write_prepared_refuses_nan(tmp_path):
    x = np.zeros((8, 2), np.float32)
    x[5, 1] = np.nan
    splits = {s: {"x": x, "y": np.repeat(np.arange(2), 4)} for s in core_prepared.SPLITS}
    prepared = core_prepared.Prepared(splits=splits, num_classes=2, input_shape=(2,))
    with pytest.raises(
        UserError, match=r"dataset 'bad': split train key x holds NaN or inf \(first at row 5\)"
    ):
        core_prepared.write_prepared(prepared, "bad", "circle", "uniform", tmp_path / "out")
    assert files_under(tmp_path) == []


def test_prepared_data_edited_to_nan_is_refused_before_training(built, tmp_path, capsys):
    prepared = _copy_prepared(built, tmp_path)
    with np.load(prepared / "s0" / "train.npz") as f:
        arrays = dict(f)
    arrays["x"][3, 0] = np.inf
    np.savez(prepared / "s0" / "train.npz", **arrays)
    msg = _refusal(capsys, "pretrain", built, tmp_path, prepared)
    assert (
        msg.startswith("stage pretrain: ")
        and "train.npz' key x holds NaN or inf (first at row 3)" in msg
    )
    assert "dvc repro prepare" in msg
    assert not (tmp_path / "run").exists() and not (tmp_path / "ckpt").exists()


def test_truncated_prepared_split_is_one_line(built, tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    for f in (built / PREPARED).iterdir():
        (prepared / f.name).write_bytes(f.read_bytes()[: 40 if f.name == "val.npz" else None])
    with pytest.raises(
        UserError, match=r"val\.npz' is unreadable \(\w+\); rerun `dvc repro prepare`"
    ):
        inputs.load_prepared(prepared)


def test_extract_refuses_nan_features(built, tmp_path, capsys):
    state = torch.load(built / MODEL, weights_only=True)
    first = next(iter(state["model"]))
    state["model"][first] = torch.full_like(state["model"][first], float("nan"))
    (tmp_path / "models" / "s0").mkdir(parents=True)
    torch.save(state, tmp_path / "models" / "s0" / "model.pt")
    out = tmp_path / "features" / "k4"
    msg = _refusal(capsys, "extract", built, tmp_path, models=tmp_path / "models", out=out)
    assert (
        msg.startswith("stage extract: train features of ")
        and "holds NaN or inf (first at row 0)" in msg
    )
    assert "the encoder or its input is broken" in msg
    # nothing written: the group's folder is not there and nothing lies beside it
    assert not out.exists() and files_under(out.parent) == []


def test_probe_refuses_non_finite_features(built, tmp_path, capsys):
    rng = np.random.default_rng(0)
    arrays = {}
    for s in core_prepared.SPLITS:
        y = np.repeat(np.arange(4), 10)
        arrays[f"{s}_x"], arrays[f"{s}_y"] = rng.normal(size=(40, 3)).astype(np.float32), y
    arrays["test_x"][7, 2] = np.nan
    np.savez(_features_path(tmp_path), **arrays)
    assert "test features of" in _refusal(capsys, "probe", built, tmp_path)
    assert not (tmp_path / "p").exists()


def test_zero_norm_features_stay_finite():
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 2.0]] * 5)
    y = torch.tensor([0, 0, 1, 1] * 5)
    assert torch.equal(l2_normalize(torch.zeros(2, 3)), torch.zeros(2, 3))
    mc = mean_classifier(z, y, z, y, 2)
    assert np.isfinite(mc["supervised_loss"])
    assert np.isfinite(contrastive_loss_estimate(z, y, 3, repeats=2).mean)
    zeros = torch.zeros(8, 4, requires_grad=True)
    loss = contrastive_loss(zeros, zeros, 3)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(zeros.grad).all()
    # all-zero features: every logit 0, so R_mu is exactly log C and the loss log(K + 1)
    assert mean_classifier(torch.zeros(20, 2), y, torch.zeros(20, 2), y, 2)[
        "supervised_loss"
    ] == pytest.approx(np.log(2))
    assert float(loss.detach()) == pytest.approx(np.log(4))


# --------------------------------------------------------------------------- 5. untrusted
class Payload:
    """Unpickling this would create the file `marker` (an arbitrary code execution)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_checkpoint_with_pickled_object_is_never_executed(built, tmp_path, capsys):
    ckpt = tmp_path / "ckpt" / "s0"  # seed 0's, in the group's checkpoint folder
    ckpt.mkdir(parents=True)
    marker = tmp_path / "pwned"
    good = torch.load(built / "ckpt" / checkpoint.NAME, weights_only=True)
    torch.save({**good, "extra": Payload(str(marker))}, ckpt / checkpoint.NAME)
    assert checkpoint.load(ckpt / checkpoint.NAME, good["run"]) is None
    err = capsys.readouterr().err
    assert "holds objects other than tensors and plain data: refused (weights_only)" in one_line(
        err
    )
    assert not marker.exists()
    # the pretrain stage then trains from scratch and replaces the file
    assert _run_stage("pretrain", built, tmp_path, checkpoints=ckpt.parent) == 0
    assert not marker.exists()
    assert "resuming" not in capsys.readouterr().err
    # trained to the end: the refused file is replaced by the run's own final checkpoint
    final = torch.load(ckpt / checkpoint.NAME, weights_only=True)
    assert "extra" not in final and final["epoch"] == good["run"]["train"]["epochs"]


def test_model_with_pickled_object_is_refused_by_extract(built, tmp_path, capsys):
    marker = tmp_path / "pwned"
    state = torch.load(built / MODEL, weights_only=True)
    (tmp_path / "models" / "s0").mkdir(parents=True)
    torch.save({**state, "extra": Payload(str(marker))}, tmp_path / "models" / "s0" / "model.pt")
    msg = _refusal(capsys, "extract", built, tmp_path, models=tmp_path / "models")
    assert "is unreadable (UnpicklingError); rerun the pretrain stage" in msg
    assert not marker.exists() and not (tmp_path / "f").exists()


def test_truncated_or_foreign_checkpoint_is_not_resumed(built, tmp_path, capsys):
    good = built / "ckpt" / checkpoint.NAME
    info = torch.load(good, weights_only=True)["run"]
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert checkpoint.load(cut, info) is None
    assert "unreadable" in one_line(capsys.readouterr().err)
    other = tmp_path / "other.pt"
    torch.save({**torch.load(good, weights_only=True), "run": {**info, "k": 8}}, other)
    assert checkpoint.load(other, info) is None
    assert (
        "written for other params (k: checkpoint 8, params 4); starting from scratch"
        in one_line(capsys.readouterr().err)
    )
    partial = tmp_path / "partial.pt"
    torch.save({"run": info, "model": {}}, partial)
    assert checkpoint.load(partial, info) is None
    assert (
        "is not a surrogap checkpoint (it needs epoch, model, optimizer, run, trajectory)"
        in one_line(capsys.readouterr().err)
    )


# --------------------------------------------------------------------------- 6. disk
def _probe_records(folder: Path) -> None:
    for k in (4,):
        rec = {
            "dataset": "circle",
            "kind": "circle",
            "classes": 4,
            "k": k,
            "seed": 0,
            "prior": None,
            "contrastive_loss": 1.5,
            "contrastive_loss_se": 0.01,
            "contrastive_repeats": 10,
            "supervised_loss": 1.2,
            "mean_acc": 0.5,
            "val_supervised_loss": 1.2,
            "val_mean_acc": 0.5,
            "linear_acc": 0.6,
            "linear_loss": 1.0,
            "linear_weight_decay": 0.0,
            "linear_val_acc": 0.6,
        }
        (folder / "circle" / f"k{k}").mkdir(parents=True, exist_ok=True)
        (folder / "circle" / f"k{k}" / "s0.json").write_text(json.dumps(rec))


@pytest.mark.parametrize(
    "err, reason",
    [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "the file system is read-only")],
)
def test_bounds_stage_write_failure_keeps_previous_results(
    tmp_path, monkeypatch, capsys, err, reason
):
    _probe_records(tmp_path / "probe")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "results.csv").write_text("previous results\n")
    (reports / "metrics").mkdir()
    (reports / "metrics" / "all.json").write_text("{}\n")
    params = write_params(tmp_path / "params.yaml", tiny_params())
    argv = [
        "--params",
        str(params),
        "--probe-dir",
        str(tmp_path / "probe"),
        "--results",
        str(reports / "results.csv"),
        "--metrics",
        str(reports / "metrics"),
    ]

    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(io.os, "replace", fail)
    assert stage("bounds").main(argv) == 2
    msg = one_line(capsys.readouterr().err)
    assert msg == (
        f"stage bounds: cannot write {str(reports / 'results.csv')!r}: {reason}; "
        "earlier outputs are left as they were"
    )
    assert (reports / "results.csv").read_text() == "previous results\n"
    assert (reports / "metrics" / "all.json").read_text() == "{}\n"
    assert leftovers(reports) == []
    monkeypatch.undo()
    assert stage("bounds").main(argv) == 0  # the fault gone, the stage just works
    assert "previous" not in (reports / "results.csv").read_text()


def test_missing_input_file_is_one_line(built, tmp_path, capsys):
    msg = _refusal(capsys, "probe", built, tmp_path, features=tmp_path / "none")
    assert msg.startswith("stage probe: cannot access ") and "none/s0.npz" in msg


def test_full_disk_during_training_keeps_last_checkpoint_and_resumes(built, tmp_path, monkeypatch):
    params = tiny_params()
    params["circle"]["train"]["epochs"] = 3
    ckpt = tmp_path / "ckpt"
    real = os.replace

    def full_after_first_checkpoint(src, dst):
        if Path(dst).name == checkpoint.NAME and Path(dst).exists():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", full_after_first_checkpoint)
    with pytest.raises(UserError) as err:
        pretrain.run(params, "circle", 4, 0, built / PREPARED, tmp_path / "run", ckpt)
    assert str(err.value) == (
        f"cannot write {str(ckpt / checkpoint.NAME)!r}: the disk is full; "
        "earlier outputs are left as they were"
    )
    assert torch.load(ckpt / checkpoint.NAME, weights_only=True)["epoch"] == 1
    assert not (tmp_path / "run").exists()
    assert sorted(p.name for p in ckpt.iterdir()) == [checkpoint.NAME, "live"]
    monkeypatch.undo()  # space freed: the same call resumes from epoch 1
    pretrain.run(params, "circle", 4, 0, built / PREPARED, tmp_path / "run", ckpt)
    assert torch.load(tmp_path / "run" / "model.pt", weights_only=True)["epoch"] == 3


def test_truncated_features_file_is_one_line(built, tmp_path, capsys):
    _features_path(tmp_path).write_bytes(b"PK\x03\x04 not really a zip")
    msg = _refusal(capsys, "probe", built, tmp_path)
    assert msg.startswith("stage probe: features ") and "unreadable" in msg
    assert msg.endswith("rerun the extract stage") and not (tmp_path / "p").exists()


# --------------------------------------------------------------------------- tampered artifacts
def _good_features(built: Path, path: Path) -> dict:
    """Valid features of the built run (written to `path` unchanged)."""
    arrays = {}
    rng = np.random.default_rng(0)
    for s in core_prepared.SPLITS:
        with np.load(built / PREPARED / f"{s}.npz") as f:
            y = f["y"]
        arrays[f"{s}_x"], arrays[f"{s}_y"] = rng.normal(size=(y.size, 5)).astype(np.float32), y
    np.savez(path, **arrays)
    return arrays


META_CASES = [
    ("", "is unreadable (JSONDecodeError)"),
    ('{"kind": "circle", ', "is unreadable (JSONDecodeError)"),
    ("[1, 2]", "holds a list, not an object"),
    ("{}", "has no 'kind'"),
    ("GOOD num_classes=1", "num_classes is 1, allowed: an integer >= 2"),
    ("GOOD modality='image'", "modality is 'image', allowed: dense, text"),
    ("GOOD sizes={'train': 3}", "sizes is {'train': 3}, allowed: {train, val, test} sample counts"),
]


@pytest.mark.parametrize("name", ["pretrain", "extract", "probe"])
@pytest.mark.parametrize(("content", "why"), META_CASES)
def test_corrupt_or_empty_meta_json_is_one_line_in_every_stage(
    built, tmp_path, capsys, name, content, why
):
    prepared = _copy_prepared(built, tmp_path)
    meta_path = prepared / "s0" / "meta.json"
    if content.startswith("GOOD "):
        key, value = content[5:].split("=", 1)
        meta = json.loads(meta_path.read_text())
        meta[key] = eval(value)  # a literal of the test table
        content = json.dumps(meta)
    meta_path.write_text(content)
    _good_features(built, _features_path(tmp_path))
    msg = _refusal(capsys, name, built, tmp_path, prepared)
    assert msg.startswith(f"stage {name}: {str(meta_path)!r} {why}"), msg
    assert "rerun `dvc repro prepare`" in msg
    left = {p.name for p in tmp_path.iterdir()}
    assert not left & {"run", "ckpt", "f", "p"}


def _bad_features(arrays: dict, case: str) -> tuple[dict, str]:
    a = dict(arrays)
    if case == "lengths":
        a["train_y"] = a["train_y"][:-1]
        n = arrays["train_x"].shape[0]
        return a, f"train_x has {n} rows but train_y {n - 1} labels"
    if case == "label":
        a["val_y"] = a["val_y"].copy()
        a["val_y"][2] = 9
        return a, "val_y holds label 9, allowed: 0..3 (meta.json's num_classes)"
    if case == "negative label":
        a["test_y"] = a["test_y"].copy()
        a["test_y"][0] = -1
        return a, "test_y holds label -1, allowed: 0..3"
    if case == "dims":
        a["test_x"] = np.zeros((arrays["test_x"].shape[0], 4), dtype=np.float32)
        return a, "the splits disagree on the dimension"
    if case == "feature dtype":
        a["train_x"] = arrays["train_x"].astype(np.int64)
        return a, "train_x is int64 of shape"
    if case == "label dtype":
        a["val_y"] = arrays["val_y"].astype(np.float64)
        return a, "val_y is float64 of shape"
    if case == "rank":
        a["val_x"] = arrays["val_x"].reshape(-1)
        return a, "val_x is float32 of shape"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["lengths", "label", "negative label", "dims", "feature dtype", "label dtype", "rank"],
)
def test_features_whose_arrays_disagree_are_one_line(built, tmp_path, capsys, case):
    arrays, why = _bad_features(_good_features(built, tmp_path / "good.npz"), case)
    np.savez(_features_path(tmp_path), **arrays)
    msg = _refusal(capsys, "probe", built, tmp_path)
    where = f"stage probe: features {str(_features_path(tmp_path))!r}: "
    assert msg.startswith(where) and why in msg and msg.endswith("rerun the extract stage"), msg
    assert not (tmp_path / "p").exists()


def test_probe_writes_the_per_test_point_arrays(built, tmp_path):
    _good_features(built, _features_path(tmp_path))
    assert _run_stage("probe", built, tmp_path) == 0
    assert files_under(tmp_path / "p") == ["s0.json", "s0.npz"]
    record = json.loads((tmp_path / "p" / "s0.json").read_text())
    with np.load(tmp_path / "p" / "s0.npz") as f:
        points = {key: f[key] for key in f.files}
    with np.load(built / PREPARED / "test.npz") as f:
        y_test = f["y"]
    assert sorted(points) == sorted(
        ("y", "mean_loss", "mean_correct", "linear_loss", "linear_correct")
    )
    np.testing.assert_array_equal(points["y"], y_test)
    assert points["y"].dtype == np.int64
    assert points["mean_correct"].dtype == points["linear_correct"].dtype == bool
    assert points["mean_loss"].dtype == points["linear_loss"].dtype == np.float64
    assert record["supervised_loss"] == pytest.approx(points["mean_loss"].mean(), rel=1e-12)
    assert record["mean_acc"] == pytest.approx(points["mean_correct"].mean())
    assert record["linear_loss"] == pytest.approx(points["linear_loss"].mean(), rel=1e-12)
    assert record["linear_acc"] == pytest.approx(points["linear_correct"].mean())


def test_checkpoint_whose_tensors_have_the_wrong_shape_is_refused_by_the_stage(
    built, tmp_path, capsys
):
    ckpt = tmp_path / "ckpt" / "s0"  # seed 0's, in the group's checkpoint folder
    ckpt.mkdir(parents=True)
    state = torch.load(built / "ckpt" / checkpoint.NAME, weights_only=True)
    key = next(k for k, v in state["model"].items() if v.ndim == 2)
    shape = tuple(state["model"][key].shape)
    state["model"][key] = torch.zeros(2, 2)  # the run record still matches
    torch.save(state, ckpt / checkpoint.NAME)
    assert _run_stage("pretrain", built, tmp_path) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: checkpoint {str(ckpt / checkpoint.NAME)!r} does not fit this run's model: "
        f"model tensor {key} is (2, 2) torch.float32, the model's {shape} torch.float32; "
        "starting from scratch"
    ]
    got = torch.load(tmp_path / "run" / "s0" / "model.pt", weights_only=True)["model"]
    want = torch.load(built / MODEL, weights_only=True)["model"]
    assert all(torch.equal(got[k], want[k]) for k in want)  # trained from scratch, fully
