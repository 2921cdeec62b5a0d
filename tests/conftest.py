"""Fixtures shared by the test files. Tests never read the working params.yaml: every
params dict here is the tests' own."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# the smallest params that run every stage of dvc.yaml in seconds
TINY_PARAMS = {
    "dataset": ["circle"],
    "k": [4],
    "seed": [0],
    "circle": {
        "data": {"kind": "circle", "classes": 4, "per_class": 40, "seed": 0},
        "encoder": {"name": "mlp", "widths": [16, 16]},
        "train": {
            "optimizer": "adam",
            "lr": 0.01,
            "batch_size": 32,
            "epochs": 2,
            "eval_every": 1,
            "checkpoint_every": 1,
            "threads": 1,
        },
    },
    "extract": {"batch_size": 64},
    "probe": {"repeats": 10, "max_iter": 10},
    "theory": {"classes_fig3": [5], "classes_fig4": 3, "k_max": 9},
    "report": {"dpi": 60},
    "evaluate": {"features": []},
}


def tiny_params() -> dict:
    """A fresh copy of TINY_PARAMS (tests change it freely)."""
    return copy.deepcopy(TINY_PARAMS)


@pytest.fixture(name="tiny_params")
def tiny_params_fixture():
    """The factory :func:`tiny_params`: call it for a fresh copy."""
    return tiny_params


@pytest.fixture(scope="session")
def dvc_index(tmp_path_factory) -> list:
    """The stages of dvc.yaml, resolved by DVC against TINY_PARAMS (not the working
    params.yaml), one entry per matrix instance."""
    from dvc.repo import Repo

    folder = tmp_path_factory.mktemp("dvc-index")
    shutil.copy(ROOT / "dvc.yaml", folder / "dvc.yaml")
    (folder / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS, sort_keys=False))
    Repo.init(str(folder), no_scm=True)
    with Repo(str(folder)) as repo:
        return list(repo.index.stages)
