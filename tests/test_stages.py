"""The pipeline's layout: seeds draw the data, the lr grid and its model selection, stage
arguments as one line, and outputs that survive a failing stage under `dvc repro`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli_args, files_under, one_line, stage, tiny_params, write_params

from surrogap.core import config, parallel, schema
from surrogap.core import prepared as core_prepared
from surrogap.core.errors import UserError
from surrogap.core.schema import RESULTS_CSV_COLUMNS
from surrogap.models import inputs
from surrogap.pipeline import bounds as results
from surrogap.pipeline import prepare, pretrain
from surrogap.pipeline import select_lr as select
from surrogap.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("kind", ["circle", "digits"])
def test_the_seed_draws_the_data(tmp_path, kind):
    params = {**tiny_params(), "seed": [0, 1]}
    if kind == "digits":
        params["circle"]["data"] = {"kind": "digits", "classes": 4, "seed": 3}
    base = params["circle"]["data"]["seed"]
    prepare.run(params, "circle", tmp_path / "both", tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "both").iterdir()) == ["s0", "s1"]
    prepare.run({**params, "seed": [1]}, "circle", tmp_path / "again", tmp_path / "raw")
    folders = (tmp_path / "both" / "s0", tmp_path / "both" / "s1", tmp_path / "again" / "s1")
    a, b, again = (inputs.load_prepared(f) for f in folders)
    assert a.meta["data_seed"] == base and b.meta["data_seed"] == base + 1
    assert not np.array_equal(a.splits["test"].y.numpy(), b.splits["test"].y.numpy()) or (
        not np.array_equal(a.splits["test"].x.numpy(), b.splits["test"].x.numpy())
    )
    for s in core_prepared.SPLITS:
        assert np.array_equal(b.splits[s].x.numpy(), again.splits[s].x.numpy())
        assert np.array_equal(b.splits[s].y.numpy(), again.splits[s].y.numpy())


def test_seed_s_equals_seed_zero_with_the_data_seed_moved_by_s(tmp_path):
    params = {**tiny_params(), "seed": [2]}
    prepare.run(params, "circle", tmp_path / "a", tmp_path / "raw")
    params = {**tiny_params(), "seed": [0]}
    params["circle"]["data"]["seed"] += 2
    prepare.run(params, "circle", tmp_path / "b", tmp_path / "raw")
    a, b = inputs.load_prepared(tmp_path / "a" / "s2"), inputs.load_prepared(tmp_path / "b" / "s0")
    for s in core_prepared.SPLITS:
        assert np.array_equal(a.splits[s].x.numpy(), b.splits[s].x.numpy())


# --------------------------------------------------------------------------- pretrain groups
def test_a_groups_seeds_train_to_the_same_bytes_side_by_side_or_one_by_one(tmp_path, monkeypatch):
    """pretrain trains every seed of its (dataset, K) group, one process each: two at once
    and one after another write byte-identical runs (each process computes on one thread)."""
    params = {**tiny_params(), "seed": [0, 1, 2]}
    prepare.run(params, "circle", tmp_path / "data", tmp_path / "raw")
    outs = {}
    for jobs in ("1", "2"):
        monkeypatch.setenv(parallel.JOBS_VARIABLE, jobs)
        out = tmp_path / f"out{jobs}"
        setup = pretrain.setup(params, "circle")
        pretrain.run_seeds(setup, 4, [0, 1, 2], tmp_path / "data", out, tmp_path / f"c{jobs}")
        outs[jobs] = {
            p.relative_to(out).as_posix(): p.read_bytes()
            for p in out.rglob("*")
            if p.is_file() and p.name in ("model.pt", "trajectory.csv")
        }
    assert sorted(outs["1"]) == [
        f"s{s}/{n}" for s in range(3) for n in ("model.pt", "trajectory.csv")
    ]
    assert outs["1"] == outs["2"]


@pytest.mark.parametrize(
    ("over", "env", "runs", "expected"),
    [
        ({}, {}, 5, min(5, os.cpu_count() or 1)),
        ({}, {"SURROGAP_STAGE_JOBS": "3"}, 5, 3),
        ({}, {"SURROGAP_STAGE_JOBS": "8"}, 2, 2),  # never more than the seeds
        ({"threads": 2}, {"SURROGAP_STAGE_JOBS": "4"}, 5, 2),  # cores per run
        ({"device": "cpu", "nproc_per_node": 2}, {"SURROGAP_STAGE_JOBS": "4"}, 5, 1),
        ({}, {"SURROGAP_STAGE_JOBS": "4", "WORLD_SIZE": "2"}, 5, 1),  # under torchrun
    ],
)
def test_how_many_seeds_train_at_once(over, env, runs, expected):
    tcfg = config.parse(TrainConfig, {**tiny_params()["circle"]["train"], **over}, "t")
    assert pretrain.jobs(tcfg, runs, env) == expected


@pytest.mark.parametrize("text", ["0", "two", "-1"])
def test_a_bad_stage_jobs_variable_is_one_line(text):
    tcfg = config.parse(TrainConfig, tiny_params()["circle"]["train"], "t")
    with pytest.raises(
        UserError, match=f"SURROGAP_STAGE_JOBS is '{text}', allowed: an integer >= 1"
    ):
        pretrain.jobs(tcfg, 3, {"SURROGAP_STAGE_JOBS": text})


def test_adding_a_seed_rewrites_the_others_byte_for_byte(tmp_path):
    """prepare writes every seed of a dataset in one instance: adding a seed to params `seed`
    must leave s0's files byte-identical, so DVC re-runs no pretrain that reads them."""
    prepare.run({**tiny_params(), "seed": [0]}, "circle", tmp_path / "one", tmp_path / "raw")
    time.sleep(2.1)  # a later `dvc repro`: a file stamped with the time would differ
    prepare.run({**tiny_params(), "seed": [0, 1]}, "circle", tmp_path / "two", tmp_path / "raw")
    one, two = tmp_path / "one" / "s0", tmp_path / "two" / "s0"
    assert files_under(one) == ["meta.json", "test.npz", "train.npz", "val.npz"]
    assert files_under(two) == files_under(one)
    for name in files_under(one):
        assert (two / name).read_bytes() == (one / name).read_bytes(), name
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["s0", "s1"]


def test_extract_refuses_a_model_copied_from_another_run(tmp_path, capsys):
    """A K = 1 model copied into the K = 4 group: one line naming the file and the k."""
    params = tiny_params()
    prepare.run(params, "circle", tmp_path / "prepared", tmp_path / "raw")
    models = tmp_path / "pretrain" / "circle" / "k4"
    pretrain.run(
        params, "circle", 1, 0, tmp_path / "prepared" / "s0", models / "s0", tmp_path / "ckpt"
    )
    out = tmp_path / "features" / "circle" / "k4"
    argv = cli_args(
        params=write_params(tmp_path / "params.yaml", params),
        dataset="circle",
        k=4,
        data=tmp_path / "prepared",
        models=models,
        out=out,
    )
    capsys.readouterr()
    assert stage("extract").main(argv) == 2
    msg = one_line(capsys.readouterr().err)
    model = str(models / "s0" / "model.pt")
    assert msg.startswith(f"stage extract: model {model!r} was trained with k = 1, "), msg
    assert "this instance is k = 4" in msg and "rerun the pretrain stage" in msg, msg
    assert not out.exists()


# --------------------------------------------------------------------------- lr grid
def test_run_names():
    assert schema.run_name(4, 0) == "k4-s0"
    assert schema.run_name(4, 1, 0.03) == "k4-s1-lr0.03"
    assert schema.run_name(4, 1, 1e-5) == "k4-s1-lr1e-05"  # as DVC writes the number


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
        "contrastive_repeats": 10,
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
    for lr, group in ((None, "k4"), (0.03, "k4-lr0.03")):
        (probe / group).mkdir(parents=True)
        (probe / group / "s0.json").write_text(json.dumps(record(4, 0, lr, 0.5)))
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
    (probe / "k4-lr0.03" / "s0.json").unlink()
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
            "pretrain",
            ["--dataset", "circle", "--k", "4", "--seed", "-1"],
            "stage pretrain: argument --seed: got '-1', allowed: an integer in 0..4294967295 "
            "(an entry of params `seed`)",
        ),
        (
            "pretrain",
            ["--dataset", "circle", "--k", "4", "--seed", str(2**64)],
            "stage pretrain: argument --seed: got '18446744073709551616', allowed: an integer "
            "in 0..4294967295 (an entry of params `seed`)",
        ),
        (
            "probe",
            ["--dataset", "circle", "--k", "0"],
            "stage probe: argument --k: got '0', allowed: an integer >= 1 (an entry of params `k`)",
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
        paths = ["--data", "d", "--features", "f", "--out", str(tmp_path / "o")]
    if name == "prepare":
        paths = ["--out", str(tmp_path / "o")]  # --root missing
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


def test_every_stage_runs_its_numeric_libraries_on_one_thread(monkeypatch):
    # a stage's numbers must not depend on the core count nor on what ran before it in its
    # process (a multi-threaded BLAS splits sums by thread): `surrogap sweep`'s workers and a
    # serial `dvc repro` then write the same results (core.stage.pin_numeric_threads)
    import os

    import scipy.linalg  # noqa: F401  (SciPy's own BLAS loaded too)
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    from surrogap.core import stage as core_stage

    for name in core_stage.THREAD_VARIABLES:
        monkeypatch.setenv(name, "2")
    seen = {}

    def body():
        seen["pools"] = {
            (p["user_api"], p["filepath"]): p["num_threads"] for p in threadpool_info()
        }
        seen["torch"] = torch.get_num_threads()
        seen["env"] = {name: os.environ[name] for name in core_stage.THREAD_VARIABLES}

    before = torch.get_num_threads()
    with threadpool_limits(limits=2):
        try:
            assert core_stage.stage_main("probe", body) == 0
        finally:
            torch.set_num_threads(before)
    assert seen["pools"] and set(seen["pools"].values()) == {1}, seen["pools"]
    assert seen["torch"] == 1
    assert set(seen["env"].values()) == {"1"}


# --------------------------------------------------------------------------- core.parallel
def test_each_runs_every_item_in_forked_processes_and_raises_the_first_failure(tmp_path):
    def write(i: int) -> None:
        (tmp_path / f"{i}.txt").write_text(f"{i} in {os.getpid()}")

    parallel.each(range(5), write, 2)
    pids = {(tmp_path / f"{i}.txt").read_text().split(" in ")[1] for i in range(5)}
    assert len(pids) == 5 and str(os.getpid()) not in pids  # one forked process per item

    def fail_on_two(i: int) -> None:
        if i == 2:
            raise UserError("seed 2: bad")
        (tmp_path / f"ok{i}").touch()

    with pytest.raises(UserError, match=r"^seed 2: bad$"):
        parallel.each([2, 0, 1, 3, 4], fail_on_two, 1)  # in order, in this process
    assert not list(tmp_path.glob("ok*"))
    with pytest.raises(UserError, match=r"^seed 2: bad$"):
        parallel.each([2, 0, 1, 3, 4], fail_on_two, 2)
    # the failure stops what had not started: at most the one started beside it ran
    assert len(list(tmp_path.glob("ok*"))) <= 1

    def crash(i: int) -> None:
        raise ValueError("not a user error")

    with pytest.raises(RuntimeError, match=r"^ValueError: not a user error$"):
        parallel.each([0, 1], crash, 2)


@pytest.mark.parametrize("text", ["0", "two", "-1"])
def test_a_bad_stage_jobs_variable_is_one_line_in_every_stage_that_reads_it(text):
    with pytest.raises(
        UserError, match=f"SURROGAP_STAGE_JOBS is '{text}', allowed: an integer >= 1"
    ):
        parallel.stage_jobs({"SURROGAP_STAGE_JOBS": text})
