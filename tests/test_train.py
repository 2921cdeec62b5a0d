"""The trainer: same seed same weights, resume equals uninterrupted, faults are clear."""

import itertools
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_params as base_params

from surrogap.core import config
from surrogap.core.errors import UserError
from surrogap.models import inputs
from surrogap.pipeline import extract, prepare, pretrain, probe
from surrogap.training import checkpoint
from surrogap.training.train import Trainer, warmup_cosine

torch.set_num_threads(1)

PRESETS = Path(__file__).resolve().parents[1] / "params"


def tiny_params(**train_over):
    """conftest's tiny params, trained 4 epochs on the plateau schedule, checkpoints every 2."""
    params = base_params()
    params["circle"]["train"].update(epochs=4, schedule="plateau", checkpoint_every=2)
    params["circle"]["train"].update(train_over)
    params["probe"]["max_iter"] = 20
    return params


@pytest.fixture()
def prepared(tmp_path):
    params = tiny_params()
    out = tmp_path / "prepared"
    prepare.run(params, "circle", out, tmp_path / "raw")
    return out / "s0"


def run(params, prepared, tmp_path, name, k=4, seed=0):
    out = tmp_path / name
    pretrain.run(params, "circle", k, seed, prepared, out, tmp_path / f"{name}-ckpt")
    return out


def interrupted(params, prepared, tmp_path, name, after: int) -> Path:
    """Run `name` as if killed during epoch `after` + 1: its checkpoint of epoch `after` stays."""
    original = Trainer.train_epoch

    def killed(self):
        if self.epoch == after:
            raise KeyboardInterrupt
        return original(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "train_epoch", killed)
        with pytest.raises(KeyboardInterrupt):
            run(params, prepared, tmp_path, name)
    ckpt = tmp_path / f"{name}-ckpt" / checkpoint.NAME
    assert torch.load(ckpt, weights_only=True)["epoch"] == after
    return ckpt


def weights(out):
    return torch.load(out / "model.pt", weights_only=True)["model"]


def same(a, b):
    return all(torch.equal(a[key], b[key]) for key in a)


def test_same_seed_same_weights_different_seed_differs(prepared, tmp_path):
    params = tiny_params()
    a = weights(run(params, prepared, tmp_path, "a"))
    b = weights(run(params, prepared, tmp_path, "b"))
    c = weights(run(params, prepared, tmp_path, "c", seed=1))
    assert same(a, b)
    assert not same(a, c)


@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_resume_equals_uninterrupted(prepared, tmp_path, monkeypatch, schedule):
    params = tiny_params(epochs=6, schedule=schedule, warmup_epochs=1)
    full = run(params, prepared, tmp_path, "full")

    original = Trainer.train_epoch

    def killed_after_four(self):
        if self.epoch == 4:
            raise KeyboardInterrupt  # as if the process were killed during epoch 5
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", killed_after_four)
    with pytest.raises(KeyboardInterrupt):
        run(params, prepared, tmp_path, "resumed")
    assert not (tmp_path / "resumed").exists()  # no partial output
    ckpt = torch.load(tmp_path / "resumed-ckpt" / checkpoint.NAME, weights_only=True)
    assert ckpt["epoch"] == 4
    monkeypatch.setattr(Trainer, "train_epoch", original)
    resumed = run(params, prepared, tmp_path, "resumed")
    assert same(weights(full), weights(resumed))
    assert (full / "trajectory.csv").read_text() == (resumed / "trajectory.csv").read_text()
    # a completed run keeps its final checkpoint (one per run) until DVC records its output
    for name in ("resumed", "full"):
        kept = tmp_path / f"{name}-ckpt"
        assert sorted(p.name for p in kept.iterdir()) == [
            checkpoint.COMPLETE,
            checkpoint.NAME,
            "live",
        ]
        assert torch.load(kept / checkpoint.NAME, weights_only=True)["epoch"] == 6


def _record_in_dvc(root: Path, out: Path, md5: str) -> None:
    """What DVC writes once it records the run: `out` in dvc.lock as a folder whose manifest
    (in DVC's cache) lists model.pt with `md5`."""
    digest = "ab" + "0" * 30 + ".dir"
    manifest = root / ".dvc/cache/files/md5/ab" / digest[2:]
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps([{"md5": md5, "relpath": "model.pt"}]))
    rel = out.relative_to(root).as_posix()
    (root / "dvc.lock").write_text(
        f"schema: '2.0'\nstages:\n  pretrain@x:\n    outs:\n    - path: {rel}\n      md5: {digest}\n"
    )


def test_a_completed_run_resumes_at_its_end_until_dvc_records_it_then_retrains(
    prepared, tmp_path, capsys, monkeypatch
):
    """A run whose output DVC did not record (e.g. `dvc repro` died on its lock after
    training) resumes at its last epoch: no epoch trained, the same weights. Once dvc.lock
    records that output, a rerun (`dvc repro -f`, or changed data) trains every epoch."""
    params = tiny_params(epochs=2)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    first = weights(run(params, prepared, tmp_path, "x"))
    model_md5 = checkpoint._md5(tmp_path / "x" / "model.pt")
    complete = json.loads((tmp_path / "x-ckpt" / checkpoint.COMPLETE).read_text())
    assert complete["model_md5"] == model_md5
    assert "train.npz" in [entry[0] for entry in complete["data"]]
    capsys.readouterr()
    # the progress bar shows on a terminal only: count the epochs trained instead
    epochs = []
    original = Trainer.train_epoch

    def counted(self):
        epochs.append(self.epoch)
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", counted)
    (tmp_path / "x" / "model.pt").unlink()  # DVC removes the outs before a stage runs
    again = weights(run(params, prepared, tmp_path, "x"))
    assert "at epoch 2/2" in capsys.readouterr().err and epochs == []  # not recorded: resumed
    assert same(first, again) and checkpoint._md5(tmp_path / "x" / "model.pt") == model_md5
    _record_in_dvc(tmp_path, tmp_path / "x", model_md5)
    retrained = weights(run(params, prepared, tmp_path, "x"))
    assert "resuming" not in capsys.readouterr().err and epochs == [0, 1]  # both epochs again
    assert same(first, retrained)
    # recorded under another md5 (an older run, other data): not this run's, so resumed
    shutil.rmtree(tmp_path / ".dvc")
    _record_in_dvc(tmp_path, tmp_path / "x", "f" * 32)
    epochs.clear()
    run(params, prepared, tmp_path, "x")
    assert "at epoch 2/2" in capsys.readouterr().err and epochs == []
    # the prepared data written again (prepare re-ran, or DVC checked it out): not the files
    # the checkpoint was trained on, so trained from epoch 0 (same sizes: it could be other data)
    split = prepared / "train.npz"
    (prepared / "copy").write_bytes(split.read_bytes())
    os.replace(prepared / "copy", split)  # as prepare writes it: the same bytes, a new file
    epochs.clear()
    run(params, prepared, tmp_path, "x")
    assert "resuming" not in capsys.readouterr().err and epochs == [0, 1]


def test_checkpoint_with_tensors_of_the_wrong_shape_is_refused(prepared, tmp_path, capsys):
    params = tiny_params(epochs=3, checkpoint_every=1)
    ckpt = interrupted(params, prepared, tmp_path, "x", after=1)
    state = torch.load(ckpt, weights_only=True)
    key = next(k for k, v in state["model"].items() if v.ndim == 2)
    state["model"][key] = torch.zeros(3, 3)  # the run record still matches
    torch.save(state, ckpt)
    capsys.readouterr()
    out = run(params, prepared, tmp_path, "x")
    err = capsys.readouterr().err
    assert (
        f"checkpoint {str(ckpt)!r} does not fit this run's model: model tensor {key} is (3, 3)"
        in err
    )
    assert "starting from scratch" in err and "resuming" not in err
    fresh = run(params, prepared, tmp_path, "fresh")
    assert same(weights(out), weights(fresh))


def test_checkpoint_with_optimizer_state_of_the_wrong_shape_is_refused(prepared, tmp_path, capsys):
    params = tiny_params(epochs=3, checkpoint_every=1)
    ckpt = interrupted(params, prepared, tmp_path, "x", after=1)
    state = torch.load(ckpt, weights_only=True)
    state["optimizer"]["state"][0]["exp_avg"] = torch.zeros(7)
    torch.save(state, ckpt)
    capsys.readouterr()
    run(params, prepared, tmp_path, "x")
    err = capsys.readouterr().err
    assert "optimizer state exp_avg of parameter 0 is (7,)" in err and "resuming" not in err


def test_checkpoint_for_other_params_is_not_resumed(prepared, tmp_path, capsys):
    interrupted(tiny_params(epochs=2, checkpoint_every=1), prepared, tmp_path, "x", after=1)
    run(tiny_params(epochs=3, checkpoint_every=1), prepared, tmp_path, "x")
    err = capsys.readouterr().err
    assert "was written for other params (train.epochs: checkpoint 2, params 3)" in err
    fresh = run(tiny_params(epochs=3), prepared, tmp_path, "y")
    assert same(weights(tmp_path / "x"), weights(fresh))


def test_trajectory_and_dvclive_logs(prepared, tmp_path):
    out = run(tiny_params(epochs=4, eval_every=2), prepared, tmp_path, "t")
    rows = (out / "trajectory.csv").read_text().splitlines()
    assert rows[0] == "epoch,train_loss,val_contrastive_loss,val_supervised_loss,val_mean_acc,lr"
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "2", "4"]
    summary = json.loads((out / "live" / "metrics.json").read_text())
    assert summary["step"] == 4 and "val" in summary
    tsv = (
        (out / "live" / "plots" / "metrics" / "val" / "supervised_loss.tsv")
        .read_text()
        .splitlines()
    )
    assert len(tsv) == 4  # header + 3 evaluations


def test_nan_loss_stops_with_epoch_and_hint(prepared, tmp_path):
    params = tiny_params(lr=1e30, optimizer="sgd", epochs=3)
    with pytest.raises(UserError, match=r"became nan at epoch \d+ .*lower the learning rate"):
        run(params, prepared, tmp_path, "nan")
    assert not (tmp_path / "nan").exists()


@pytest.mark.parametrize(("optimizer", "lr"), [("adam", 1e38), ("sgd", 1e39)])
def test_an_overflowing_step_stops_with_epoch_and_hint(prepared, tmp_path, optimizer, lr):
    """Before: a RuntimeError traceback ('value cannot be converted to type float without
    overflow') from the optimizer's step."""
    params = tiny_params(lr=lr, optimizer=optimizer, epochs=3)
    with pytest.raises(UserError) as err:
        run(params, prepared, tmp_path, "over")
    assert re.fullmatch(
        rf"the training (step overflowed|loss became (nan|inf)) at epoch \d+ \(step \d+\); "
        rf"lower the learning rate \(train.lr is {re.escape(f'{lr:g}')}\); the last good "
        r"checkpoint is kept",
        str(err.value),
    ), err.value
    assert not (tmp_path / "over").exists()


@pytest.mark.parametrize(
    "k,over,message",
    [
        (32, {}, r"k: got 32, allowed: at most batch_size - 1 = 31"),
        (0, {}, r"k: got 0, allowed: an integer >= 1"),
        (
            4,
            {"batch_size": 1000},
            r"circle.train.batch_size: got 1000, allowed: at most the training split's 96",
        ),
        (4, {"epochs": 0}, r"circle.train.epochs: got 0, allowed: an integer >= 1"),
        (4, {"lrr": 0.1}, r"circle.train: unknown key 'lrr' \(did you mean 'lr'\?\)"),
    ],
)
def test_bad_input_is_one_clear_error_before_work(prepared, tmp_path, k, over, message):
    with pytest.raises(UserError, match=message):
        run(tiny_params(**over), prepared, tmp_path, "bad", k=k)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad-ckpt").exists()


def test_warmup_cosine_formula():
    total, warm = 100, 10
    got = [warmup_cosine(s, warm, total) for s in range(total)]
    assert got[0] == pytest.approx(0.1) and got[9] == pytest.approx(1.0)
    assert got[10] == pytest.approx(1.0)
    assert got[55] == pytest.approx(0.5 * (1 + np.cos(np.pi * 45 / 90)))
    assert all(a >= b for a, b in itertools.pairwise(got[10:]))


def test_text_split_inputs_concatenate_selected_sequences():
    arrays = {
        "tokens": np.array([5, 6, 7, 8, 9, 10]),
        "offsets": np.array([0, 2, 2, 5]),
        "y": np.array([0, 1, 0, 1]),
    }
    split = inputs.Split(arrays, "text")
    tokens, offsets = split.inputs(torch.tensor([3, 0, 1, 2]))
    assert tokens.tolist() == [10, 5, 6, 7, 8, 9]
    assert offsets.tolist() == [0, 1, 3, 3]


def test_new_keys_default_to_the_old_cpu_behaviour():
    from surrogap.core.config import parse
    from surrogap.training.config import TrainConfig

    cfg = parse(TrainConfig, {}, "train")
    assert (cfg.device, cfg.precision, cfg.lr_scaling, cfg.nproc_per_node) == (
        "auto",
        "fp32",
        "none",
        1,
    )
    assert cfg.optimizer == "adam" and cfg.lr_base_batch == 256 and cfg.lars_eta == 0.001


@pytest.mark.parametrize("preset", sorted(p.name for p in PRESETS.glob("paper-*.yaml")))
def test_paper_presets_are_valid_params(preset):
    """Every preset parses strictly, every dataset in its sweep is a section, and every K
    fits the per-process batch of every section."""

    params = config.load_params(PRESETS / preset)
    config.check_top_level(params)
    grid = config.grid(params)
    for name in grid.dataset:
        prepare.data_config(params, name)
        tcfg = pretrain.setup(params, name).train  # the encoder block parsed too
        per_process = tcfg.batch_size // tcfg.nproc_per_node
        assert tcfg.batch_size % tcfg.nproc_per_node == 0
        assert max(grid.k) <= per_process - 1, (name, max(grid.k), per_process)
    for section in ("extract", "probe"):
        config.stage_config(
            params,
            section,
            {"extract": extract.ExtractConfig, "probe": probe.ProbeConfig}[section],
        )


def test_checkpoint_of_other_training_code_is_not_resumed(prepared, tmp_path, capsys, monkeypatch):
    interrupted(tiny_params(epochs=2, checkpoint_every=1), prepared, tmp_path, "x", after=1)
    monkeypatch.setattr(checkpoint, "code_fingerprint", lambda: "0123456789abcdef")
    run(tiny_params(epochs=2), prepared, tmp_path, "x")
    err = capsys.readouterr().err
    assert "was written for other params (code: checkpoint '" in err
    assert "params '0123456789abcdef')" in err


def test_dvclive_is_imported_without_pandas_and_pandas_still_imports_later():
    import subprocess
    import sys

    code = (
        "import sys; from surrogap.training.train import _import_live; Live = _import_live(); "
        "print('pandas' in sys.modules, Live.__name__); import pandas; print(pandas.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "Live", "pandas"]
