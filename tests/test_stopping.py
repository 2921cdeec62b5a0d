"""The stopping rule of pre-training (surrogap.training.stopping): the rule against a naive
oracle on synthetic loss sequences, real tiny runs that stop early on a flat problem and at
the cap otherwise, the record a run writes, resume equivalence, and config errors."""

import json
import random
import shutil

import pytest
import torch
from conftest import tiny_params as base_params

from surrogap.core import config
from surrogap.core.errors import UserError
from surrogap.pipeline import prepare, pretrain
from surrogap.training import checkpoint, stopping
from surrogap.training.config import TrainConfig
from surrogap.training.train import Trainer

torch.set_num_threads(1)


# ------------------------------------------------------------------ the rule on a list
def naive_stop(losses, patience, min_delta):
    """The evaluation index at which the rule stops, or None: the first i >= patience at
    which no loss of the last `patience` evaluations is below (1 - min_delta) times every
    loss before them (pairwise, no running minimum)."""
    for i in range(patience, len(losses)):
        window, before = losses[i - patience + 1 : i + 1], losses[: i - patience + 1]
        if not any(all(w < (1 - min_delta) * b for b in before) for w in window):
            return i
    return None


def drive(losses, patience, min_delta, eval_every=1):
    """Feed the rule one evaluation at a time, as the trainer does (the last one is the
    cap): the index it stops at and its record."""
    epochs = (len(losses) - 1) * eval_every
    for i in range(len(losses)):
        stop = stopping.decide(losses[: i + 1], i * eval_every, epochs, patience, min_delta)
        if stop is not None:
            return i, stop
    raise AssertionError("the rule never stopped, not even at the cap")


def sequences():
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(2, 30)
        start = rng.uniform(0.5, 5.0)
        drop = rng.choice([0.0, 0.001, 0.01, 0.1])
        noise = rng.choice([0.0, 0.002, 0.02])
        values, v = [], start
        for _ in range(n):
            values.append(max(v * (1 + rng.gauss(0, noise)), 1e-6))
            v *= 1 - drop * rng.random()
        yield values, rng.randint(1, 5), rng.choice([0.0, 0.001, 0.01, 0.05])


@pytest.mark.parametrize("eval_every", [1, 3])
def test_rule_matches_a_naive_oracle_on_synthetic_sequences(eval_every):
    stopped_early = capped = 0
    for losses, patience, min_delta in sequences():
        i, stop = drive(losses, patience, min_delta, eval_every)
        want = naive_stop(losses, patience, min_delta)
        if want is None:
            assert i == len(losses) - 1 and stop["reason"].startswith("cap: reached epochs")
            capped += 1
        else:
            assert i == want, (losses, patience, min_delta)
            assert stop["reason"].startswith("converged: val contrastive loss improved")
            stopped_early += i < len(losses) - 1
        assert stop["epoch"] == i * eval_every
        if i >= patience:  # flatness: the relative improvement over the last `patience`
            before, last = min(losses[: i - patience + 1]), min(losses[i - patience + 1 : i + 1])
            assert stop["flatness"] == pytest.approx((before - last) / before)
        else:
            assert stop["flatness"] is None
    assert stopped_early > 50 and capped > 50  # both outcomes exercised


@pytest.mark.parametrize(
    "losses,patience,min_delta,index,flatness",
    [
        ([2.0, 1.0, 1.0, 1.0, 1.0, 1.0], 2, 0.001, 3, 0.0),  # flat after one step
        ([2.0, 1.8, 1.62, 1.458, 1.3122], 2, 0.05, 4, 0.19),  # 10% per evaluation: the cap
        ([2.0, 1.0, 1.0005, 0.9995, 1.2, 1.3], 3, 0.001, 4, 0.0005),  # 0.05% within 3: stops
        ([2.0, 1.0, 1.2, 1.3, 0.5, 0.4], 2, 0.0, 3, -0.2),  # it rose: no improvement
        ([1.0, 1.0, 1.0], 1, 0.0, 1, 0.0),  # min_delta 0: no improvement at all
    ],
)
def test_rule_on_hand_made_sequences(losses, patience, min_delta, index, flatness):
    i, stop = drive(losses, patience, min_delta)
    assert i == index and stop["flatness"] == pytest.approx(flatness)


def test_rule_off_trains_to_the_cap_with_no_flatness():
    i, stop = drive([2.0, 2.0, 2.0, 2.0], None, 0.001)
    assert i == 3 and stop == {"epoch": 3, "reason": "cap: reached epochs (3)", "flatness": None}


# ------------------------------------------------------------------ real tiny runs
def tiny_params(**train_over):
    """conftest's tiny params on 4 x 100 points and a wider encoder, whose validation
    contrastive loss falls from 1.64 to 1.13 in 4 epochs and is flat after, trained 6
    epochs, evaluated and checkpointed every epoch."""
    params = base_params()
    params["circle"]["data"]["per_class"] = 100
    params["circle"]["encoder"]["widths"] = [32, 32]
    params["circle"]["train"].update(epochs=6, eval_every=1, checkpoint_every=1)
    params["circle"]["train"].update(train_over)
    return params


# a flat problem: at this learning rate the encoder barely moves
FLAT = {"lr": 1e-7, "stop_patience": 2, "stop_min_delta": 0.001}


@pytest.fixture()
def prepared(tmp_path):
    out = tmp_path / "prepared"
    prepare.run(tiny_params(), "circle", out, tmp_path / "raw")
    return out / "s0"


def run(params, prepared, tmp_path, name):
    out = tmp_path / name
    pretrain.run(params, "circle", 4, 0, prepared, out, tmp_path / f"{name}-ckpt")
    return out


def epochs_of(out):
    return [int(r.split(",")[0]) for r in (out / "trajectory.csv").read_text().splitlines()[1:]]


def info_of(out):
    return json.loads((out / "train_info.json").read_text())


def test_a_flat_run_stops_early_as_converged_and_records_why(prepared, tmp_path):
    out = run(tiny_params(**FLAT), prepared, tmp_path, "flat")
    info = info_of(out)
    assert info["stop_epoch"] == info["epochs"] == 2 and info["max_epochs"] == 6
    assert info["stop_reason"].startswith("converged: val contrastive loss improved ")
    assert info["stop_reason"].endswith("<= 0.001 (relative) over the last 2 evaluations")
    assert (info["stop_patience"], info["stop_min_delta"]) == (2, 0.001)
    assert abs(info["flatness"]) < 1e-3
    assert epochs_of(out) == [0, 1, 2]
    assert torch.load(out / "model.pt", weights_only=True)["epoch"] == 2
    summary = json.loads((out / "live" / "metrics.json").read_text())
    assert summary["step"] == 2
    assert summary["stop"] == {
        "epoch": 2,
        "reason": info["stop_reason"],
        "flatness": info["flatness"],
    }


def test_the_report_reads_a_run_stopped_between_its_evaluations_and_its_cap(prepared, tmp_path):
    """Evaluated every 2 epochs, capped at 9: the run stops at epoch 4, its trajectory holds
    epochs 0, 2, 4 and no row of the cap, and the report's loader takes it as complete."""
    import pandas as pd

    from surrogap.report import load

    params = tiny_params(**FLAT, epochs=9, eval_every=2)
    out = tmp_path / "pretrain" / "circle" / "k4" / "s0"
    pretrain.run(params, "circle", 4, 0, prepared, out, tmp_path / "ckpt")
    assert info_of(out)["stop_epoch"] == 4 and epochs_of(out) == [0, 2, 4]
    results = pd.DataFrame(
        [{"dataset": "circle", "kind": "circle", "classes": 4, "k": 4, "seed": 0,
          "contrastive_loss_se": 0.0, "contrastive_repeats": 10, "lower_gap": 0.0, "upper_gap": 1.0}]
    )  # fmt: skip
    frame, _ = load.load_trajectories(tmp_path / "pretrain", results)
    assert frame["epoch"].tolist() == [0, 2, 4]


def test_a_learning_run_and_a_run_without_the_rule_stop_at_the_cap(prepared, tmp_path):
    learning = run(
        tiny_params(epochs=4, stop_patience=1, stop_min_delta=0.0), prepared, tmp_path, "a"
    )
    info = info_of(learning)
    assert info["stop_epoch"] == 4 and info["stop_reason"] == "cap: reached epochs (4)"
    assert info["flatness"] > 0  # still improving at the cap
    assert epochs_of(learning) == [0, 1, 2, 3, 4]
    off = info_of(run(tiny_params(**{**FLAT, "stop_patience": None}), prepared, tmp_path, "off"))
    assert off["stop_epoch"] == 6 and off["stop_reason"] == "cap: reached epochs (6)"
    assert off["flatness"] is None and off["stop_patience"] is None


def kill_after(monkeypatch, after):
    original = Trainer.train_epoch

    def killed(self):
        if self.epoch == after:
            raise KeyboardInterrupt  # as if the process were killed during epoch after + 1
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", killed)
    return original


# a learning run that the rule stops before its cap of 12 epochs (at epoch 6 here)
LEARNING = {"epochs": 12, "stop_patience": 2, "stop_min_delta": 0.02}


def test_resume_stops_where_the_uninterrupted_run_stops(prepared, tmp_path, monkeypatch):
    params = tiny_params(**LEARNING)
    full = run(params, prepared, tmp_path, "full")
    stop = info_of(full)["stop_epoch"]
    assert 3 < stop < 12 and info_of(full)["stop_reason"].startswith("converged")
    original = kill_after(monkeypatch, stop - 2)
    with pytest.raises(KeyboardInterrupt):
        run(params, prepared, tmp_path, "resumed")
    monkeypatch.setattr(Trainer, "train_epoch", original)
    resumed = run(params, prepared, tmp_path, "resumed")
    for name in ("model.pt", "trajectory.csv", "train_info.json", "live/metrics.json"):
        assert (full / name).read_bytes() == (resumed / name).read_bytes(), name


def test_a_stopped_run_started_again_is_not_trained_further(prepared, tmp_path):
    """Its final checkpoint (kept until DVC records the output) holds the decision: a run
    whose output was lost resumes at its stopping epoch, not on to the cap."""
    params = tiny_params(**FLAT)
    out = run(params, prepared, tmp_path, "x")
    saved = torch.load(tmp_path / "x-ckpt" / checkpoint.NAME, weights_only=True)
    assert saved["epoch"] == 2 and saved["stop"]["reason"].startswith("converged")
    first = {n: (out / n).read_bytes() for n in ("model.pt", "trajectory.csv", "train_info.json")}
    shutil.rmtree(out)
    again = run(params, prepared, tmp_path, "x")
    assert {n: (again / n).read_bytes() for n in first} == first


# ------------------------------------------------------------------ config errors
@pytest.mark.parametrize(
    "over,message",
    [
        (
            {"stop_patience": 0},
            r"^circle\.train\.stop_patience: got 0, allowed: null \(off: train all epochs\) "
            r"or an integer >= 1 \(evaluations",
        ),
        (
            {"stop_patience": 2.5},
            r"^circle\.train\.stop_patience: got 2\.5, expected an integer or null$",
        ),
        (
            {"stop_patience": 1, "stop_min_delta": 1},
            r"^circle\.train\.stop_min_delta: got 1, allowed: a number in \[0, 1\)",
        ),
        (
            {"stop_patience": 1, "stop_min_delta": -0.01},
            r"^circle\.train\.stop_min_delta: got -0\.01, allowed: a number in \[0, 1\)",
        ),
        (
            {"stop_patience": 3, "epochs": 6, "eval_every": 2},
            r"^circle\.train\.stop_patience: got 3, allowed: null or fewer than "
            r"epochs / eval_every = 3 evaluations \(with more, the rule could never stop",
        ),
        ({"stop_patiance": 3}, r"unknown key 'stop_patiance' \(did you mean 'stop_patience'\?\)"),
    ],
)
def test_stop_keys_are_checked_with_one_line_naming_the_key(over, message):
    with pytest.raises(UserError, match=message) as err:
        config.parse(TrainConfig, {"epochs": 6, **over}, "circle.train")
    assert "\n" not in str(err.value)


def test_stop_keys_default_to_off():
    cfg = config.parse(TrainConfig, {}, "train")
    assert cfg.stop_patience is None and cfg.stop_min_delta == 0.001
