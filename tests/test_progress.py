"""The closing line every stage prints under `dvc repro` (surrogap.core.progress): the
instance, its time and its own work, and how far the pipeline is."""

from __future__ import annotations

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


def test_the_default_grid_plans_131_instances():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    d, k, s = len(params["dataset"]), len(params["k"]), len(params["seed"])
    planned = progress.planned_instances(ROOT)
    # theory, prepare per dataset, pretrain per run, extract and probe per (dataset, K),
    # then bounds, select_lr, evaluate and report (no extra lr in the default params)
    assert len(planned) == 1 + d + d * k * s + 2 * d * k + 4 == 131


def test_recorded_instances_are_the_stage_entries_of_the_lock(tmp_path):
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  theory:\n    cmd: x\n  pretrain@circle-4-0:\n"
        "    deps:\n    - path: a\n"
    )
    assert progress.recorded_instances(tmp_path) == {"theory", "pretrain@circle-4-0"}
    assert progress.recorded_instances(tmp_path / "nowhere") == set()


def test_the_line_counts_the_running_instance_once(tmp_path):
    root = _project(tmp_path, tiny_params())
    planned = progress.planned_instances(root)
    (root / "dvc.lock").write_text("schema: '2.0'\nstages:\n  theory:\n    cmd: x\n")
    line = progress.line("report", 3.21, root, work=1.234)
    assert line.startswith("stage report done in 3.2 s (work 1.23 s); ")
    assert f"2 of {len(planned)} stage instances recorded" in line
    match = progress.LINE.match(line)  # what the pipeline_efficiency benchmark reads
    assert match and match["stage"] == "report" and float(match["work"]) == 1.23
    # an instance already in the lock (a re-run) is not counted twice
    assert f"1 of {len(planned)}" in progress.line("theory", 1.0, root, work=0.5)


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
