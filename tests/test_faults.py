"""Faults a user meets: bad params, failed writes, kills mid-write, NaN/inf, untrusted files.

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
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli_args, pretrain_args, stage, tiny_params, write_params

from surrogap import checkpoint, config, data, io, train
from surrogap.errors import UserError
from surrogap.evaluation import contrastive_loss_estimate, mean_classifier
from surrogap.losses import contrastive_loss, l2_normalize
from surrogap.pipeline import prepare, pretrain

torch.set_num_threads(1)


# --------------------------------------------------------------------------- helpers
def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def leftovers(folder: Path) -> list[str]:
    """Temporaries of surrogap.io (and anything hidden) left in a folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


RUN = {"dataset": "circle", "k": 4, "seed": 0}  # the tiny params' run


def _stage_argv(name: str, params, prepared: Path, built: Path, t: Path, **over) -> list[str]:
    """The command line of stage `name` (pretrain, extract or probe) of the run reading
    `prepared` (and the built run's model) and writing under `t`; `over` replaces options."""
    if name == "pretrain":
        options = {**RUN, "out": t / "run", "checkpoints": t / "ckpt"}
    elif name == "extract":
        options = {"model": built / "run" / "model.pt", "out": t / "f.npz"}
    else:
        options = {
            **RUN,
            "features": t / "features.npz",
            "out": t / "p.json",
            "points": t / "p.npz",
        }
    return cli_args(params=params, data=prepared, **{**options, **over})


def _run_stage(name: str, built: Path, t: Path, prepared: Path | None = None, **over) -> int:
    """The exit status of stage `name` on `_stage_argv`, with the tiny params (t/params.yaml)."""
    params = write_params(t / "params.yaml", tiny_params())
    argv = _stage_argv(name, params, prepared or built / "prepared", built, t, **over)
    return stage(name).main(argv)


def _refusal(capsys, name: str, built: Path, t: Path, prepared: Path | None = None, **over) -> str:
    """Stage `name` run as by `_run_stage` must fail with exit status 2: its one stderr line."""
    assert _run_stage(name, built, t, prepared, **over) == 2
    return one_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A prepared tiny circle dataset and a 2-epoch model, shared by the file-fault tests."""
    root = tmp_path_factory.mktemp("built")
    params = tiny_params()
    prepare.run(params, "circle", 0, root / "prepared", root / "raw")
    pretrain.run(params, "circle", 4, 0, root / "prepared", root / "run", root / "ckpt")
    assert not (root / "ckpt").exists()  # a completed run leaves nothing to resume
    # the checkpoint of a run killed after epoch 1 (of 2)
    original = train.Trainer.train_epoch

    def killed(self):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return original(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train.Trainer, "train_epoch", killed)
        with pytest.raises(KeyboardInterrupt):
            pretrain.run(params, "circle", 4, 0, root / "prepared", root / "killed", root / "ckpt")
    return root


# --------------------------------------------------------------------------- 1. params
def _set(params: dict, dotted: str, value) -> dict:
    *head, last = dotted.split(".")
    node = params
    for key in head:
        node = node.setdefault(key, {})
    node[last] = value
    return params


# (stage, params change, expected message start, argv; {t} is the tmp dir)
PARAMS = "{t}/params.yaml"
STAGE_CASES = [
    (
        "prepare",
        ("circle.data.per_class", "many"),
        "stage prepare: circle.data.per_class: got 'many', expected an integer",
        cli_args(
            params=PARAMS, dataset="circle", seed=0, out="{t}/out/prepared", root="{t}/out/raw"
        ),
    ),
    (
        "pretrain",
        ("circle.train.lr", -1),
        "stage pretrain: circle.train.lr: got -1, allowed: a number > 0",
        pretrain_args(PARAMS, "{t}/none", "{t}/out/run", "{t}/out/ckpt"),
    ),
    (
        "extract",
        ("extract.batch_size", 0),
        "stage extract: extract.batch_size: got 0, allowed: an integer >= 1",
        cli_args(params=PARAMS, data="{t}/none", model="{t}/none/model.pt", out="{t}/out/f.npz"),
    ),
    (
        "probe",
        ("probe.repeats", 3),
        "stage probe: probe.repeats: got 3, allowed: an integer >= 10",
        cli_args(
            params=PARAMS, **RUN, data="{t}/none", features="{t}/none/f.npz", out="{t}/out/p.json"
        ),
    ),
    (
        "bounds",
        ("seeds", [0]),
        "stage bounds: unknown params key 'seeds' (did you mean 'seed'?)",
        cli_args(
            params=PARAMS,
            probe_dir="{t}/none",
            results="{t}/out/results.csv",
            metrics="{t}/out/metrics",
        ),
    ),
    (
        "theory",
        ("theory.k_max", 0),
        "stage theory: theory.k_max: got 0, allowed: an integer in [1,",
        cli_args(params=PARAMS, out_dir="{t}/out/theory"),
    ),
    (
        "report",
        ("report.dpi", 10),
        "stage report: report.dpi: got 10, allowed: an integer in [50, 600]",
        cli_args(
            params=PARAMS,
            results="{t}/none/results.csv",
            pretrain_dir="{t}/none",
            theory_dir="{t}/none",
            out="{t}/out/report.md",
            figures_dir="{t}/out/fig",
            external="{t}/none/external.csv",
        ),
    ),
    (
        "evaluate",
        ("evaluate.repeat", 5),
        "stage evaluate: evaluate: unknown key 'repeat' (did you mean 'repeats'?)",
        cli_args(params=PARAMS, out="{t}/out/external.csv", inputs="{t}"),
    ),
]


@pytest.mark.parametrize(
    "name, change, message, argv", STAGE_CASES, ids=[c[0] for c in STAGE_CASES]
)
def test_every_stage_refuses_bad_params_before_any_work(
    tmp_path, capsys, name, change, message, argv
):
    write_params(tmp_path / "params.yaml", _set(tiny_params(), *change))
    code = stage(name).main([a.format(t=tmp_path) for a in argv])
    captured = capsys.readouterr()
    assert code == 2
    assert one_line(captured.err).startswith(message), captured.err
    assert files_under(tmp_path) == ["params.yaml"]  # nothing written, not even a folder


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "circle:\n  data: {kind: circle}\n  data: {kind: norm}\n",
            r"line 3: duplicate key 'data' \(first at line 2\)",
        ),
        ("k: [1, 4\n", r"is not valid YAML at line 2"),
        ("- 1\n- 2\n", r"must hold a mapping of sections"),
    ],
)
def test_malformed_params_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as err:
        config.load_params(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_params_file_unreadable_is_one_line(tmp_path, capsys):
    assert (
        stage("extract").main(
            cli_args(params=str(tmp_path), data="x", model="y", out=str(tmp_path / "f.npz"))
        )
        == 2
    )
    assert "cannot be read: Is a directory" in one_line(capsys.readouterr().err)
    (tmp_path / "latin1.yaml").write_bytes(b"report:\n  title: caf\xe9\n")
    with pytest.raises(UserError, match=r"is not UTF-8 text"):
        config.load_params(tmp_path / "latin1.yaml")


def test_exponent_numbers_are_numbers_as_in_dvc(tmp_path):
    # PyYAML alone reads 1e-3 as the string '1e-3'; DVC (YAML 1.2) reads a number
    path = tmp_path / "params.yaml"
    path.write_text(
        "circle:\n  train:\n    lr: 1e-3\n    weight_decay: 5E-4\n  data: {kind: circle}\n"
    )
    params = config.load_params(path)
    assert params["circle"]["train"] == {"lr": 1e-3, "weight_decay": 5e-4}
    assert pretrain.train_config(params, "circle").lr == 1e-3


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(value):
    params = _set(tiny_params(), "circle.train.lr", value)
    with pytest.raises(
        UserError, match=r"circle\.train\.lr: got (nan|inf|-inf), expected a finite number"
    ):
        pretrain.train_config(params, "circle")


def test_wrong_types_and_lists_name_the_key_and_the_type():
    params = _set(tiny_params(), "circle.train.epochs", 2.5)
    with pytest.raises(UserError, match=r"^circle\.train\.epochs: got 2\.5, expected an integer$"):
        pretrain.train_config(params, "circle")
    params = _set(tiny_params(), "circle.train.epochs", True)
    with pytest.raises(UserError, match=r"circle\.train\.epochs: got True, expected an integer"):
        pretrain.train_config(params, "circle")
    with pytest.raises(UserError, match=r"^k: got 4, expected a list of integers$"):
        config.grid({**tiny_params(), "k": 4})
    with pytest.raises(UserError, match=r"^seed: got \[0, 0\], allowed: a list without repeats$"):
        config.grid({**tiny_params(), "seed": [0, 0]})


# --------------------------------------------------------------------------- 2. atomic io
def test_atomic_path_exception_keeps_previous_output_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    io.write_text(target, "previous\n")
    with pytest.raises(KeyboardInterrupt), io.atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise KeyboardInterrupt  # as if interrupted mid-write
    assert target.read_text() == "previous\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "where, err, reason",
    [
        ("writer", errno.ENOSPC, "the disk is full"),
        ("replace", errno.ENOSPC, "the disk is full"),
        ("replace", errno.EROFS, "the file system is read-only"),
        ("mkstemp", errno.EACCES, "permission denied"),
        ("mkstemp", errno.EROFS, "the file system is read-only"),
    ],
)
def test_write_with_failure_is_one_line_naming_the_path(tmp_path, monkeypatch, where, err, reason):
    target = tmp_path / "results.csv"
    io.write_text(target, "old,complete\n")

    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    def writer(p):
        p.write_text("new,partial")
        if where == "writer":
            fail()

    if where == "replace":
        monkeypatch.setattr(io.os, "replace", fail)
    if where == "mkstemp":
        monkeypatch.setattr(io.tempfile, "mkstemp", fail)
    with pytest.raises(UserError) as exc:
        io.write_with(target, writer, suffix=".csv")
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg == f"cannot write {str(target)!r}: {reason}; earlier outputs are left as they were"
    assert target.read_text() == "old,complete\n"
    assert leftovers(tmp_path) == []


def test_torch_save_on_a_full_disk_is_a_clear_message(tmp_path):
    # torch.save reports ENOSPC as a RuntimeError of its zip writer; /dev/full is a real
    # always-full device, so this is the error a full disk gives
    target = tmp_path / "last.pt"
    io.write_with(target, lambda p: torch.save({"w": torch.ones(3)}, p))
    with pytest.raises(
        UserError, match=r"cannot write .*last\.pt.*the write failed .*free disk space"
    ):
        io.write_with(target, lambda p: torch.save({"w": torch.zeros(10**5)}, "/dev/full"))
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(3))
    assert leftovers(tmp_path) == []


def test_plain_write_to_full_device_gives_enospc():
    # the premise of the patched ENOSPC cases above: what the kernel raises on a full disk
    with pytest.raises(OSError) as exc, open("/dev/full", "w") as fh:
        fh.write("x" * 10000)
        fh.flush()
    assert exc.value.errno == errno.ENOSPC


def test_atomic_dir_failures_keep_the_previous_folder(tmp_path, monkeypatch):
    target = tmp_path / "prepared"
    with io.atomic_dir(target) as tmp:
        (tmp / "meta.json").write_text("{}\n")
    # the writer fails: previous folder intact
    with pytest.raises(UserError, match=r"disk is full"), io.atomic_dir(target) as tmp:
        (tmp / "meta.json").write_text('{"new"')
        raise OSError(errno.ENOSPC, "No space left on device")
    assert files_under(target) == ["meta.json"] and (target / "meta.json").read_text() == "{}\n"
    assert leftovers(tmp_path) == []
    # the swap fails after the previous folder stepped aside: it is put back
    real = os.replace
    calls = []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", second_fails)
    with pytest.raises(UserError, match=r"read-only"), io.atomic_dir(target) as tmp:
        (tmp / "meta.json").write_text('{"new": 1}\n')
    monkeypatch.setattr(io.os, "replace", real)
    assert len(calls) == 3 and calls[2] == target  # aside, the failed swap, put back
    assert (target / "meta.json").read_text() == "{}\n"
    assert leftovers(tmp_path) == []


def _write_then_sigkill(target: Path) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        f"""
        import os, signal
        from surrogap import io
        def writer(p):
            p.write_text("partial")
            os.kill(os.getpid(), signal.SIGKILL)
        io.write_with({str(target)!r}, writer)
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_sigkill_mid_write_leaves_previous_file_and_next_write_sweeps(tmp_path):
    target = tmp_path / "metrics.json"
    io.write_json(target, {"old": 1})
    result = _write_then_sigkill(target)
    assert result.returncode == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"old": 1}  # never a truncated file
    stale = leftovers(tmp_path)
    assert len(stale) == 1 and stale[0].startswith(".metrics.json.part-")  # SIGKILL: no cleanup
    io.write_json(target, {"new": 2})  # the next write removes the dead writer's temporary
    assert json.loads(target.read_text()) == {"new": 2}
    assert leftovers(tmp_path) == []


def test_sweep_keeps_temporaries_of_live_writers(tmp_path):
    target = tmp_path / "a.csv"
    live = tmp_path / f".a.csv.part-{os.getppid()}-xyz.tmp"  # our parent: alive
    other = tmp_path / ".a.csv.1.tmp"  # not a surrogap temporary name
    live.write_text("busy")
    other.write_text("keep")
    io.write_text(target, "x")
    assert live.exists() and other.exists()


# --------------------------------------------------------------------------- 4. numbers
def test_write_prepared_refuses_nan(tmp_path):
    x = np.zeros((8, 2), np.float32)
    x[5, 1] = np.nan
    splits = {s: {"x": x, "y": np.repeat(np.arange(2), 4)} for s in data.SPLITS}
    prepared = data.Prepared(splits=splits, num_classes=2, input_shape=(2,))
    with pytest.raises(
        UserError, match=r"dataset 'bad': split train key x holds NaN or inf \(first at row 5\)"
    ):
        data.write_prepared(prepared, "bad", "circle", "uniform", tmp_path / "out")
    assert files_under(tmp_path) == []


def test_prepared_data_edited_to_nan_is_refused_before_training(built, tmp_path, capsys):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    for f in (built / "prepared").iterdir():
        (prepared / f.name).write_bytes(f.read_bytes())
    with np.load(prepared / "train.npz") as f:
        arrays = dict(f)
    arrays["x"][3, 0] = np.inf
    np.savez(prepared / "train.npz", **arrays)
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
    for f in (built / "prepared").iterdir():
        (prepared / f.name).write_bytes(f.read_bytes()[: 40 if f.name == "val.npz" else None])
    with pytest.raises(
        UserError, match=r"val\.npz' is unreadable \(\w+\); rerun `dvc repro prepare`"
    ):
        data.load_prepared(prepared)


def test_extract_refuses_nan_features(built, tmp_path, capsys):
    state = torch.load(built / "run" / "model.pt", weights_only=True)
    first = next(iter(state["model"]))
    state["model"][first] = torch.full_like(state["model"][first], float("nan"))
    torch.save(state, tmp_path / "model.pt")
    out = tmp_path / "features" / "k4-s0.npz"
    msg = _refusal(capsys, "extract", built, tmp_path, model=tmp_path / "model.pt", out=out)
    assert (
        msg.startswith("stage extract: train features of ")
        and "holds NaN or inf (first at row 0)" in msg
    )
    assert "the encoder or its input is broken" in msg
    assert not out.parent.exists()


def test_probe_refuses_non_finite_features(built, tmp_path, capsys):
    rng = np.random.default_rng(0)
    arrays = {}
    for s in data.SPLITS:
        y = np.repeat(np.arange(4), 10)
        arrays[f"{s}_x"], arrays[f"{s}_y"] = rng.normal(size=(40, 3)).astype(np.float32), y
    arrays["test_x"][7, 2] = np.nan
    np.savez(tmp_path / "features.npz", **arrays)
    assert "test features of" in _refusal(capsys, "probe", built, tmp_path)
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "p.npz").exists()


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
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
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
    assert _run_stage("pretrain", built, tmp_path, checkpoints=ckpt) == 0
    assert not marker.exists()
    assert "resuming" not in capsys.readouterr().err
    assert not ckpt.exists()  # trained to the end: the refused file is gone with its folder


def test_model_with_pickled_object_is_refused_by_extract(built, tmp_path, capsys):
    marker = tmp_path / "pwned"
    state = torch.load(built / "run" / "model.pt", weights_only=True)
    torch.save({**state, "extra": Payload(str(marker))}, tmp_path / "model.pt")
    msg = _refusal(capsys, "extract", built, tmp_path, model=tmp_path / "model.pt")
    assert "is unreadable (UnpicklingError); rerun the pretrain stage" in msg
    assert not marker.exists() and not (tmp_path / "f.npz").exists()


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
        (folder / "circle").mkdir(parents=True, exist_ok=True)
        (folder / "circle" / f"k{k}-s0.json").write_text(json.dumps(rec))


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
    msg = _refusal(capsys, "probe", built, tmp_path, features=tmp_path / "none.npz")
    assert msg.startswith("stage probe: cannot access ") and "none.npz" in msg


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
        pretrain.run(params, "circle", 4, 0, built / "prepared", tmp_path / "run", ckpt)
    assert str(err.value) == (
        f"cannot write {str(ckpt / checkpoint.NAME)!r}: the disk is full; "
        "earlier outputs are left as they were"
    )
    assert torch.load(ckpt / checkpoint.NAME, weights_only=True)["epoch"] == 1
    assert not (tmp_path / "run").exists()
    assert sorted(p.name for p in ckpt.iterdir()) == [checkpoint.NAME, "live"]
    monkeypatch.undo()  # space freed: the same call resumes from epoch 1
    pretrain.run(params, "circle", 4, 0, built / "prepared", tmp_path / "run", ckpt)
    assert torch.load(tmp_path / "run" / "model.pt", weights_only=True)["epoch"] == 3


def test_truncated_features_file_is_one_line(built, tmp_path, capsys):
    (tmp_path / "features.npz").write_bytes(b"PK\x03\x04 not really a zip")
    msg = _refusal(capsys, "probe", built, tmp_path)
    assert msg.startswith("stage probe: features ") and "unreadable" in msg
    assert msg.endswith("rerun the extract stage") and not (tmp_path / "p.json").exists()


# --------------------------------------------------------------------------- tampered artifacts
def _good_features(built: Path, path: Path) -> dict:
    """Valid features of the built run (written to `path` unchanged)."""
    arrays = {}
    rng = np.random.default_rng(0)
    for s in data.SPLITS:
        with np.load(built / "prepared" / f"{s}.npz") as f:
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
    prepared = tmp_path / "prepared"
    shutil.copytree(built / "prepared", prepared)
    if content.startswith("GOOD "):
        key, value = content[5:].split("=", 1)
        meta = json.loads((prepared / "meta.json").read_text())
        meta[key] = eval(value)  # a literal of the test table
        content = json.dumps(meta)
    (prepared / "meta.json").write_text(content)
    _good_features(built, tmp_path / "features.npz")
    msg = _refusal(capsys, name, built, tmp_path, prepared)
    assert msg.startswith(f"stage {name}: {str(prepared / 'meta.json')!r} {why}"), msg
    assert "rerun `dvc repro prepare`" in msg
    left = {p.name for p in tmp_path.iterdir()}
    assert not left & {"run", "ckpt", "f.npz", "p.json", "p.npz"}


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
    np.savez(tmp_path / "features.npz", **arrays)
    msg = _refusal(capsys, "probe", built, tmp_path)
    where = f"stage probe: features {str(tmp_path / 'features.npz')!r}: "
    assert msg.startswith(where) and why in msg and msg.endswith("rerun the extract stage"), msg
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "p.npz").exists()


def test_probe_writes_the_per_test_point_arrays(built, tmp_path):
    _good_features(built, tmp_path / "features.npz")
    assert _run_stage("probe", built, tmp_path) == 0
    record = json.loads((tmp_path / "p.json").read_text())
    with np.load(tmp_path / "p.npz") as f:
        points = {key: f[key] for key in f.files}
    with np.load(built / "prepared" / "test.npz") as f:
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
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
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
    got = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["model"]
    want = torch.load(built / "run" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(got[k], want[k]) for k in want)  # trained from scratch, fully
