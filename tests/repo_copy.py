"""Helpers of the end-to-end tests: a temporary copy of the repository with its own params,
and `dvc` run in it by this interpreter (so the stages find the installed package)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import tiny_params

from surrogap.ops.bench_pipeline import pipeline_copy

ROOT = Path(__file__).resolve().parents[1]


def only_datasets(params: dict) -> dict:
    """Drop the dataset sections that the `dataset` list does not name."""
    for name in list(params):
        section = params[name]
        if isinstance(section, dict) and "data" in section and name not in params["dataset"]:
            del params[name]
    return params


def grid_params(epochs: int) -> dict:
    """conftest's tiny params over K in {1, 4} (seed 0, the circle dataset alone), trained
    `epochs` epochs: the end-to-end tests' grid."""
    params = tiny_params()
    params.update(dataset=["circle"], k=[1, 4], seed=[0])
    params["circle"]["train"]["epochs"] = epochs
    return only_datasets(params)


def env(src: Path | None = None) -> dict:
    """The environment of `dvc` in a copy. With `src`, the stages import surrogap from that
    folder (the copy's own src) rather than from the editable install (this checkout's src,
    which may change while a test runs), and write no __pycache__ into it (a code dep)."""
    own = {"PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"} if src is not None else {}
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
        **own,
    }


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """`dvc *args` in `repo`; its stages run the copy's own src where it has one (see env)."""
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=env(repo / "src" if (repo / "src").is_dir() else None),
        capture_output=True,
        text=True,
        timeout=900,
    )


def ran(result: subprocess.CompletedProcess) -> list[str]:
    """The stages a `dvc repro` run ran, sorted."""
    return sorted(
        line.split("'")[1]
        for line in result.stdout.splitlines()
        if line.startswith("Running stage")
    )


def new_k_stages(k: int, dataset: str = "circle") -> list[str]:
    """The stages, sorted, that growing the K list by `k` must run: that K's pretrain,
    extract and probe (one instance per (dataset, K), every seed) and the aggregates after
    them, nothing else (prepare stays cached)."""
    group = f"{dataset}-{k}"
    return sorted(
        [
            "bounds",
            f"extract@{group}",
            "fixed_null",
            f"pretrain@{group}",
            f"probe@{group}",
            "report",
            "select_lr",
        ]
    )


def make_repo(path: Path, params: dict) -> Path:
    """A fresh git + DVC repository at `path` with the pipeline's code and `params` (the
    benchmarks' pipeline copy, inside git)."""
    repo = pipeline_copy(path, params, git=True)
    assert repo is not None, "the tests run from a source checkout"
    return repo
