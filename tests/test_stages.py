"""The pipeline's layout: seeds draw the data, the lr grid and its model selection, stage
arguments as one line, and outputs that survive a failing stage under `dvc repro`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import stage, tiny_params, write_params

from surrogap.core import config
from surrogap.core import prepared as core_prepared
from surrogap.core.schema import RESULTS_CSV_COLUMNS
from surrogap.models import inputs
from surrogap.pipeline import bounds as results
from surrogap.pipeline import prepare
from surrogap.pipeline import select_lr as select

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("kind", ["circle", "digits"])
def test_the_seed_draws_the_data(tmp_path, kind):
    params = tiny_params()
    if kind == "digits":
        params["circle"]["data"] = {"kind": "digits", "classes": 4, "seed": 3}
    base = params["circle"]["data"]["seed"]
    for seed in (0, 1):
        prepare.run(params, "circle", seed, tmp_path / f"s{seed}", tmp_path / "raw")
    prepare.run(params, "circle", 1, tmp_path / "again", tmp_path / "raw")
    a, b, again = (inputs.load_prepared(tmp_path / n) for n in ("s0", "s1", "again"))
    assert a.meta["data_seed"] == base and b.meta["data_seed"] == base + 1
    assert not np.array_equal(a.splits["test"].y.numpy(), b.splits["test"].y.numpy()) or (
        not np.array_equal(a.splits["test"].x.numpy(), b.splits["test"].x.numpy())
    )
    for s in core_prepared.SPLITS:
        assert np.array_equal(b.splits[s].x.numpy(), again.splits[s].x.numpy())
        assert np.array_equal(b.splits[s].y.numpy(), again.splits[s].y.numpy())


def test_seed_s_equals_seed_zero_with_the_data_seed_moved_by_s(tmp_path):
    params = tiny_params()
    prepare.run(params, "circle", 2, tmp_path / "a", tmp_path / "raw")
    params["circle"]["data"]["seed"] += 2
    prepare.run(params, "circle", 0, tmp_path / "b", tmp_path / "raw")
    a, b = inputs.load_prepared(tmp_path / "a"), inputs.load_prepared(tmp_path / "b")
    for s in core_prepared.SPLITS:
        assert np.array_equal(a.splits[s].x.numpy(), b.splits[s].x.numpy())


# --------------------------------------------------------------------------- lr grid
def test_run_names():
    assert config.run_name(4, 0) == "k4-s0"
    assert config.run_name(4, 1, 0.03) == "k4-s1-lr0.03"
    assert config.run_name(4, 1, 1e-5) == "k4-s1-lr1e-05"  # as DVC writes the number


@pytest.mark.parametrize("bad", [[0.0], [0.1, 0.1], [-1], "0.1"])
def test_lr_list_is_checked(bad):
    with pytest.raises(config.UserError, match=r"^lr: got"):
        config.grid({**tiny_params(), "lr": bad})


def record(k: int, seed: int, lr, val_acc: float, val_loss: float = 1.0, c: int = 4) -> dict:
    return {
        "dataset": "circle",
        "kind": "circle",
        "classes": c,
        "k": k,
        "seed": seed,
        "lr": lr,
        "prior": None,
        "contrastive_loss": 1.5,
        "contrastive_loss_se": 0.01,
        "supervised_loss": 1.2 + (lr or 0),
        "mean_acc": 0.5,
        "val_supervised_loss": val_loss,
        "val_mean_acc": val_acc,
        "linear_acc": 0.6,
        "linear_loss": 1.0,
    }


def test_select_keeps_the_best_validation_accuracy_per_run():
    records = [
        record(4, 0, None, 0.80),
        record(4, 0, 0.03, 0.90),  # best of (4, 0)
        {**record(4, 0, 0.3, 0.85), "mean_acc": 0.99},  # test accuracy is never looked at
        record(4, 1, None, 0.70),  # best of (4, 1)
        record(4, 1, 0.03, 0.60),
        record(16, 0, None, 0.75, val_loss=0.9),
        record(16, 0, 0.03, 0.75, val_loss=0.8),  # tie on accuracy: lower val loss wins
        record(16, 1, 0.3, 0.75),
        record(16, 1, None, 0.75),  # full tie: the section's own lr wins
    ]
    table = results.results_table(records)
    assert list(table.columns) == list(RESULTS_CSV_COLUMNS) and len(table) == 9
    best = select.select(table)
    got = {(r.k, r.seed): (None if np.isnan(r.lr) else r.lr) for r in best.itertuples()}
    assert got == {(4, 0): 0.03, (4, 1): None, (16, 0): 0.03, (16, 1): None}
    assert best.loc[(best.k == 4) & (best.seed == 0), "run"].item() == "k4-s0-lr0.03"


def test_select_stage_without_an_lr_grid_keeps_every_row(tmp_path):
    table = results.results_table([record(k, s, None, 0.5) for k in (1, 4) for s in (0, 1)])
    table.to_csv(tmp_path / "results.csv", index=False)
    argv = ["--results", str(tmp_path / "results.csv"), "--out", str(tmp_path / "selected.csv")]
    assert stage("select_lr").main(argv) == 0
    out = pd.read_csv(tmp_path / "selected.csv")
    pd.testing.assert_frame_equal(out, pd.read_csv(tmp_path / "results.csv"), check_dtype=False)


def test_bounds_stage_reads_every_run_of_the_lr_grid(tmp_path):
    params = {**tiny_params(), "lr": [0.03]}
    probe = tmp_path / "probe" / "circle"
    probe.mkdir(parents=True)
    for lr, name in ((None, "k4-s0"), (0.03, "k4-s0-lr0.03")):
        (probe / f"{name}.json").write_text(json.dumps(record(4, 0, lr, 0.5)))
    argv = [
        "--params",
        str(write_params(tmp_path / "params.yaml", params)),
        "--probe-dir",
        str(tmp_path / "probe"),
        "--results",
        str(tmp_path / "results.csv"),
        "--metrics",
        str(tmp_path / "metrics"),
    ]
    assert stage("bounds").main(argv) == 0
    df = pd.read_csv(tmp_path / "results.csv")
    assert df["run"].tolist() == ["k4-s0", "k4-s0-lr0.03"]
    assert np.isnan(df["lr"][0]) and df["lr"][1] == 0.03
    metrics = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "metrics").glob("*.json")}
    assert set(metrics) == {"all", "circle"}
    assert metrics["all"] == {
        "runs": 2,
        "holds": int(df["holds"].sum()),
        "holds_fraction": df["holds"].mean(),
    }
    for values in metrics.values():  # numbers only, so that `dvc metrics diff` reads them
        assert all(type(v) in (int, float) for v in values.values()), values
    (probe / "k4-s0-lr0.03.json").unlink()
    assert stage("bounds").main(argv) == 2  # a run of the grid is missing


# --------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("name", "argv", "message"),
    [
        (
            "pretrain",
            ["--dataset", "circle", "--k", "four", "--seed", "0"],
            "stage pretrain: argument --k: got 'four', allowed: an integer >= 1 "
            "(an entry of params `k`)",
        ),
        (
            "probe",
            ["--dataset", "circle", "--k", "4", "--seed", "-1"],
            "stage probe: argument --seed: got '-1', allowed: an integer >= 0 "
            "(an entry of params `seed`)",
        ),
        (
            "pretrain",
            ["--dataset", "circle", "--k", "4", "--seed", "0", "--lr", "fast"],
            "stage pretrain: argument --lr: got 'fast', allowed: a number > 0 "
            "(an entry of params `lr`)",
        ),
        ("prepare", ["--dataset", "circle"], "stage prepare: the following arguments are"),
    ],
)
def test_a_bad_stage_argument_is_one_line(tmp_path, capsys, name, argv, message):
    paths = ["--data", "d", "--out", str(tmp_path / "o"), "--checkpoints", "c"]
    if name == "probe":
        paths = ["--data", "d", "--features", "f.npz", "--out", str(tmp_path / "o")]
    if name == "prepare":
        paths = ["--out", str(tmp_path / "o"), "--root", "r"]
    assert stage(name).main([*argv, *paths]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(message), err
    assert not (tmp_path / "o").exists()


def test_no_stage_script_shadows_a_standard_module():
    # a script of stages/ runs with stages/ first on sys.path: stages/select.py would be
    # imported by the standard library in place of its own `select`
    names = {p.stem for p in (ROOT / "stages").glob("*.py")}
    assert not names & set(sys.stdlib_module_names)


# --------------------------------------------------------------------------- failing stages
def test_every_output_survives_a_failing_stage(dvc_index):
    """Under `dvc repro` DVC deletes a stage's outputs before running it unless they are
    persistent. An output is either in DVC's cache (`dvc checkout` brings it back) or
    `persist: true` (left in place; every stage writes atomically, so a failure keeps it)."""
    problems = [
        f"{st.addressing}: {out.def_path}"
        for st in dvc_index
        for out in st.outs
        if not out.use_cache and not out.persist
    ]
    assert not problems, "outputs lost by a failing stage:\n" + "\n".join(problems)
