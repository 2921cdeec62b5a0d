"""Fixtures and params shared by the test files. Tests never read the working params.yaml
(a user's edits there must not change what the suite checks): every params dict here is the
tests' own. Test files import `tiny_params` and the stage command-line helpers from here (tests/ is on sys.path, as for
tests/repo_copy.py)."""

from __future__ import annotations

import copy
import importlib.util
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


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def stage(name: str):
    """The module of stages/<name>.py (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli_args(**options) -> list[str]:
    """A stage's command line from keywords: cli_args(probe_dir=p) -> ["--probe-dir", "p"]."""
    return [x for key, value in options.items() for x in (f"--{key.replace('_', '-')}", str(value))]


# stages/prepare.py's command line for seed 0 of a dataset `wiki` (run in its project folder)
WIKI_PREPARE = cli_args(dataset="wiki", out="data/prepared/wiki", root="data/raw")


def pretrain_args(params, data, out, checkpoints, dataset="circle", k=4, seed=0) -> list[str]:
    """The command line of stages/pretrain.py (after the script) for one run: `data` the
    prepared dataset's folder, `out` and `checkpoints` the group's (the run writes
    ``<out>/s<seed>``)."""
    return cli_args(
        params=params, dataset=dataset, k=k, seed=seed, data=data, out=out, checkpoints=checkpoints
    )


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


# --------------------------------------------------------------------------- fault helpers
def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def leftovers(folder: Path) -> list[str]:
    """Temporaries of surrogap.core.io (and anything hidden) left in a folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]
