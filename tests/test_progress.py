"""The closing line every stage prints under `dvc repro` (surrogap.core.progress): the
instance, its time and its own work, and how far the pipeline is."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml
from conftest import tiny_params

from surrogap.core import progress

ROOT = Path(__file__).resolve().parents[1]


def _project(tmp_path: Path, params: dict) -> Path:
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def test_planned_instances_are_the_ones_dvc_expands(tmp_path, dvc_index):
    # conftest's dvc_index: DVC's own expansion of dvc.yaml for TINY_PARAMS with lr [0.03]
    root = _project(tmp_path, {**tiny_params(), "lr": [0.03]})
    dvc_names = {st.addressing.split(":")[-1] for st in dvc_index}
    assert progress.planned_instances(root) == dvc_names


def test_the_default_grid_plans_instances_per_dataset_and_k_not_per_seed():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    d, k = len(params["dataset"]), len(params["k"])
    planned = progress.planned_instances(ROOT)
    # theory, prepare per dataset, pretrain, extract and probe per (dataset, K), then
    # bounds, fixed_null, select_lr, evaluate and report (no extra lr); seeds add none
    assert len(params["seed"]) > 1 and not params["lr"]
    assert len(planned) == 1 + d + 3 * d * k + 5


def test_recorded_instances_are_the_stage_entries_of_the_lock(tmp_path):
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  theory:\n    cmd: x\n  pretrain@circle-4:\n"
        "    deps:\n    - path: a\n"
    )
    assert progress.recorded_instances(tmp_path) == {"theory", "pretrain@circle-4"}
    assert progress.recorded_instances(tmp_path / "nowhere") == set()


def _lock_as_recorded(root: Path, params: dict, skip: set[str] = frozenset()) -> None:
    """A dvc.lock whose every entry records the params of `params` (as DVC writes them)."""
    stages = {}
    for name, inst in progress.expanded(root).items():
        if name not in skip:
            values = {key: progress._value(params, key) for key in inst["params"]}
            stages[name] = (
                {"cmd": "x", "params": {"params.yaml": values}} if values else {"cmd": "x"}
            )
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))


def test_to_go_counts_new_and_changed_instances_and_what_follows_them(tmp_path):
    params = {**tiny_params(), "k": [1, 4], "seed": [0, 1]}
    root = _project(tmp_path, params)
    planned = progress.planned_instances(root)
    # nothing recorded: everything is to go, less what this run did
    assert progress.to_go(root, set()) == len(planned)
    assert progress.to_go(root, {"theory"}) == len(planned) - 1
    # everything recorded with today's params: nothing is to go
    _lock_as_recorded(root, params)
    assert progress.to_go(root, set()) == 0
    # a new K: its pretrain, extract and probe (every seed in each), then the aggregates
    grown = {**params, "k": [1, 4, 16]}
    (root / "params.yaml").write_text(yaml.safe_dump(grown, sort_keys=False))
    new = {"pretrain@circle-16", "extract@circle-16", "probe@circle-16"}
    assert progress.to_go(root, set()) == len(new) + 4  # bounds, fixed_null, select_lr, report
    assert progress.to_go(root, {"pretrain@circle-16"}) == len(new) + 4 - 1
    # a changed train section: every circle run and what follows; prepare and theory not
    changed = {**params}
    changed["circle"] = {**params["circle"], "train": {**params["circle"]["train"], "epochs": 3}}
    (root / "params.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    runs = 2 + 2 + 2  # pretrain, extract and probe per K (every seed in each)
    assert progress.to_go(root, set()) == runs + 4


def test_the_line_says_this_runs_done_and_to_go(tmp_path, monkeypatch):
    root = _project(tmp_path, tiny_params())
    planned = progress.planned_instances(root)
    monkeypatch.setattr(progress, "repro_pid", lambda: os.getpid())  # as under dvc repro
    line = progress.line("theory", 3.21, root, work=1.234)
    assert line.startswith("stage theory done in 3.2 s (work 1.23 s); ")
    assert f"this run: 1 done, {len(planned) - 1} to go" in line
    match = progress.LINE.match(line)  # what the pipeline_efficiency benchmark reads
    assert match and match["stage"] == "theory" and float(match["work"]) == 1.23
    line = progress.line("prepare@circle", 1.0, root, work=0.5)
    assert f"this run: 2 done, {len(planned) - 2} to go" in line
    # another dvc run starts its own count
    monkeypatch.setattr(progress, "repro_pid", lambda: os.getppid())
    assert "this run: 1 done" in progress.line("theory", 1.0, root, work=0.5)


def test_nothing_is_printed_outside_dvc(monkeypatch, capsys):
    monkeypatch.delenv("DVC_STAGE", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    progress.report(0.0)
    assert capsys.readouterr().err == ""


def test_a_broken_project_never_fails_the_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "dvc.yaml").write_text("stages: [not, a, mapping\n")
    monkeypatch.setenv("DVC_STAGE", "probe@circle-4")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    progress.report(0.0)
    err = capsys.readouterr().err
    assert err.startswith("stage probe@circle-4 done in ") and err.count("\n") == 1
