"""The layer folders as DVC code deps, end to end: in a temporary copy of the repository with
tiny params (circle, K in {1, 4}, seed 0), a comment appended to one file of a layer folder
re-runs exactly the stages that list that folder (and what reads their outputs), and nothing
else. Each case restores the file and reproduces again, so the next one starts from a clean
pipeline (what `dvc status` calls up to date). The stages import the copy's own src (not
this checkout's, which may change meanwhile), so only the appended comments change code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import repo_copy
from repo_copy import grid_params, make_repo, ran

pytestmark = pytest.mark.slow

dvc = repo_copy.dvc

KS = (1, 4)
PRETRAIN = {f"pretrain@circle-{k}" for k in KS}
EXTRACT = {f"extract@circle-{k}" for k in KS}
PROBE = {f"probe@circle-{k}" for k in KS}
# pre-training and every stage that reads, directly or not, what it writes
PRETRAIN_AND_DOWNSTREAM = (
    PRETRAIN | EXTRACT | PROBE | {"bounds", "fixed_null", "select_lr", "report"}
)
EVERY_STAGE = PRETRAIN_AND_DOWNSTREAM | {"prepare@circle", "theory", "evaluate"}


def ok(result) -> None:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def clean(repo: Path) -> None:
    status = dvc(repo, "status", "--json")
    ok(status)
    assert status.stdout.strip() == "{}", status.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    path = make_repo(tmp_path_factory.mktemp("layers"), grid_params(epochs=1))
    where = subprocess.run(
        [sys.executable, "-c", "import surrogap; print(surrogap.__file__)"],
        cwd=path,
        env=repo_copy.env(path / "src"),
        capture_output=True,
        text=True,
    )
    assert Path(where.stdout.strip()) == path / "src/surrogap/__init__.py", where
    built = dvc(path, "repro")
    ok(built)
    assert set(ran(built)) == EVERY_STAGE, ran(built)
    clean(path)
    return path


def repro_after_editing(repo: Path, file: str) -> set[str]:
    """The stages that `dvc repro` runs once a comment line is appended to `file` (a path
    in the copy); the file is then restored and the pipeline reproduced back to clean."""
    path = repo / file
    assert path.is_file(), file
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# appended by tests/test_layers_e2e.py\n")
        edited = dvc(repo, "repro")
        ok(edited)
        assert "Running stage" in edited.stdout, edited.stdout  # the edit is seen
    finally:
        path.write_bytes(original)
    restored = dvc(repo, "repro")
    ok(restored)
    clean(repo)
    return set(ran(edited))


def test_a_training_edit_reruns_pretrain_and_only_what_reads_it(repo):
    stages = repro_after_editing(repo, "src/surrogap/training/losses.py")
    assert stages >= PRETRAIN, sorted(stages)
    assert not stages & {"prepare@circle", "theory", "evaluate"}, sorted(stages)
    # the same model bytes may leave extract and the rest cached: allowed, not required
    assert stages <= PRETRAIN_AND_DOWNSTREAM, sorted(stages - PRETRAIN_AND_DOWNSTREAM)


def test_a_plots_edit_reruns_report_and_theory_only(repo):
    assert repro_after_editing(repo, "src/surrogap/plots/style.py") == {"report", "theory"}


def test_a_report_edit_reruns_report_only(repo):
    assert repro_after_editing(repo, "src/surrogap/report/markdown.py") == {"report"}


def test_an_estimators_edit_leaves_prepare_and_theory(repo):
    stages = repro_after_editing(repo, "src/surrogap/estimators/evaluation.py")
    assert not stages & {"prepare@circle", "theory"}, sorted(stages)
    # the stages that list the folder among their deps run
    assert stages >= PRETRAIN | EXTRACT | PROBE | {"evaluate"}, sorted(stages)
