"""The experiment workflow of the design card as a new user meets it: a fresh clone of the
repository (no DVC cache, the committed dvc.lock), then `dvc exp run --temp` twice in a row
(the second adding a K), a workspace `dvc exp run`, `dvc exp apply`, the README's restore
recipe, and a third experiment. Each exits 0 and trains only the instances new to this
clone (the rest comes from the run cache), and after the restore `git status` and `dvc
status` are clean.

The repository here is this checkout's tracked files as they are in the working tree,
committed with a small grid whose dvc.lock a `dvc repro` wrote, so the clone's committed
dvc.lock names outputs its empty cache does not hold: what broke before each seed's
prepared data was its own output (pretrain depended on a sub-folder of prepare's output,
and DVC loaded that output's recorded tree from the cache)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from repo_copy import dvc, grid_params

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GIT = ["git", "-c", "user.email=test@surrogap", "-c", "user.name=surrogap tests"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def trained(result: subprocess.CompletedProcess) -> list[str]:
    """The pretrain instances an experiment ran (not restored), sorted."""
    return sorted(
        line.split("'")[1]
        for line in (result.stdout + result.stderr).splitlines()
        if line.startswith("Running stage 'pretrain")
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh clone of a repository made of this checkout's tracked files, with a small
    grid committed together with the dvc.lock of its `dvc repro`."""
    base = tmp_path_factory.mktemp("fresh")
    origin = base / "origin"
    tracked = git(ROOT, "ls-files", "-z").split("\0")
    for name in filter(None, tracked):
        src = ROOT / name
        if src.is_file():
            (origin / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, origin / name)
    params = grid_params(epochs=2)
    params["theory"].update(classes_fig3=[5], classes_fig4=3, k_max=9)
    (origin / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (origin / "dvc.lock").unlink(missing_ok=True)
    shutil.rmtree(origin / "reports", ignore_errors=True)
    git(origin, "init", "-q")
    ok(dvc(origin, "repro"))
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "a small grid and its dvc.lock")
    subprocess.run([*GIT, "clone", "-q", str(origin), str(base / "clone")], check=True)
    repo = base / "clone"
    assert not (repo / ".dvc" / "cache").exists()
    return repo


def test_experiments_from_a_fresh_clone_train_only_what_is_new(clone):
    # 1. the committed grid, in a temporary workspace: new to this clone, so all of it trains
    first = ok(dvc(clone, "exp", "run", "--temp", "-n", "committed"))
    assert trained(first) == ["pretrain@circle-1", "pretrain@circle-4"]
    # 2. a K more, again --temp: only the new K's run trains
    second = ok(dvc(clone, "exp", "run", "--temp", "-n", "k16", "-S", "k=[1,4,16]"))
    assert trained(second) == ["pretrain@circle-16"]
    # 3. the same in the workspace: nothing trains, everything comes from the run cache
    third = ok(dvc(clone, "exp", "run", "-n", "k16-here", "-S", "k=[1,4,16]"))
    assert trained(third) == []
    assert yaml.safe_load((clone / "params.yaml").read_text())["k"] == [1, 4, 16]
    shown = ok(dvc(clone, "exp", "show", "--csv"))
    assert {"committed", "k16", "k16-here"} <= set(shown.stdout.replace(",", "\n").split())
    ok(dvc(clone, "exp", "apply", "k16"))

    # 4. the README's restore recipe: back to the committed params, dvc.lock and reports
    git(clone, "checkout", "--", "params.yaml", "dvc.lock", "reports/")
    ok(dvc(clone, "checkout", "--allow-missing"))
    assert git(clone, "status", "--porcelain") == ""
    status = ok(dvc(clone, "status", "--json"))
    assert status.stdout.strip() == "{}", status.stdout[-2000:]

    # 5. a third experiment after the restore: only its new K trains
    fourth = ok(dvc(clone, "exp", "run", "--temp", "-S", "k=[1,4,8]"))
    assert trained(fourth) == ["pretrain@circle-8"]
    assert git(clone, "status", "--porcelain") == ""
