"""Fixtures and params shared by the test files. Tests never read the working params.yaml
(a user's edits there must not change what the suite checks): every params dict here is the
tests' own. Test files import `tiny_params` from here (tests/ is on sys.path, as for
tests/repo_copy.py)."""

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
    "lr": [],
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


@pytest.fixture(scope="session")
def dvc_index(tmp_path_factory) -> list:
    """The stages of dvc.yaml, resolved by DVC against TINY_PARAMS with one extra lr (not
    the working params.yaml), one entry per matrix instance."""
    from dvc.repo import Repo

    folder = tmp_path_factory.mktemp("dvc-index")
    shutil.copy(ROOT / "dvc.yaml", folder / "dvc.yaml")
    params = {**tiny_params(), "lr": [0.03]}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # a bare DVC repository by hand: Repo.init logs through a handler pytest may have closed
    (folder / ".dvc").mkdir()
    (folder / ".dvc" / "config").write_text("[core]\n    no_scm = true\n")
    with Repo(str(folder)) as repo:
        return list(repo.index.stages)
