"""DVC's run cache covers pre-training: a second clone that pulls the run cache from a DVC
remote (a local folder here, `dvc repro --pull`) reproduces the grid without running any prepare, pretrain,
extract or probe stage, and ends with the same files; `dvc repro -f -s pretrain@...` retrains from
epoch 0. Temporary copies of the repository, as tests/test_pipeline_e2e.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
import torch
from repo_copy import dvc, grid_params, make_repo, ran

pytestmark = pytest.mark.slow

# the grid's instances: prepare per dataset, pretrain, extract and probe per (dataset, K)
INSTANCES = {
    "prepare": ("circle",),
    "pretrain": ("circle-1", "circle-4"),
    "extract": ("circle-1", "circle-4"),
    "probe": ("circle-1", "circle-4"),
}
OUTPUTS = (
    "data/prepared/circle/s0/train.npz",
    "data/pretrain/circle/k4/s0/model.pt",
    "data/pretrain/circle/k4/s0/trajectory.csv",
    "data/features/circle/k4/s0.npz",
    "data/probe/circle/k4/s0.json",
    "data/probe/circle/k4/s0.npz",
    "reports/results.csv",
)
MODEL = "data/pretrain/circle/k4/s0/model.pt"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ok(result) -> None:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def test_second_clone_pulls_the_run_cache_and_runs_no_pretrain(tmp_path):
    store = tmp_path / "store"
    first = make_repo(tmp_path / "first", grid_params(epochs=3))
    ok(dvc(first, "remote", "add", "-d", "store", str(store)))
    built = dvc(first, "repro", "bounds")
    ok(built)
    assert {f"pretrain@{g}" for g in INSTANCES["pretrain"]} <= set(ran(built))
    # a completed run keeps one final checkpoint until its next run finds it recorded
    assert sorted(p.parent.name for p in (first / "data/checkpoints").rglob("complete.json")) == [
        "s0",
        "s0",
    ]
    assert len(list((first / "data/checkpoints").rglob("last.pt"))) == 2
    ok(dvc(first, "push", "--run-cache"))

    second = make_repo(
        tmp_path / "second", grid_params(epochs=3)
    )  # same code and params, no dvc.lock
    ok(dvc(second, "remote", "add", "-d", "store", str(store)))
    # `--pull`: the run cache from the remote, then each cached run's outputs as needed
    again = dvc(second, "repro", "--pull", "bounds")
    ok(again)
    for name, instances in INSTANCES.items():
        for g in instances:
            assert f"{name}@{g}" not in ran(again), again.stdout
            assert f"Stage '{name}@{g}' is cached - skipping run" in again.stdout, again.stdout
    assert not (second / "data/checkpoints").exists()
    for path in OUTPUTS:
        assert digest(second / path) == digest(first / path), path
    status = dvc(second, "status", "bounds")
    assert "up to date" in status.stdout, status.stdout

    # force means retrain: the stage runs, from epoch 0, and ends with the same weights
    forced = dvc(first, "repro", "-f", "-s", "pretrain@circle-4")
    ok(forced)
    assert ran(forced) == ["pretrain@circle-4"]
    # no progress bar in a log (tqdm only on a terminal): the stage's one closing line, and
    # a model trained through all 3 epochs with no resume
    assert "resuming" not in forced.stderr
    assert forced.stderr.strip().splitlines() == [
        line for line in forced.stderr.strip().splitlines() if line.startswith("stage pretrain@")
    ]
    assert "stage pretrain@circle-4 done in " in forced.stderr
    assert torch.load(first / MODEL, weights_only=True)["epoch"] == 3
    epochs = pd.read_csv(first / "data/pretrain/circle/k4/s0/trajectory.csv")["epoch"]
    assert epochs.iloc[0] == 0 and epochs.iloc[-1] == 3
    assert digest(first / MODEL) == digest(second / MODEL)
