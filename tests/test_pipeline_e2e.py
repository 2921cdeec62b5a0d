"""The DVC pipeline end to end, in a temporary copy of the repository with tiny params: built,
then nothing to do, then a grown grid (a new K, the lr grid, a new seed) runs only its new
instances and what aggregates them."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import pretrain_args
from repo_copy import dvc, grid_params, make_repo, new_k_stages, ran

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("repo"), grid_params(epochs=2))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_repro_builds_everything_then_nothing_then_only_new_k(repo):
    first = dvc(repo, "repro")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "pretrain@circle-1" in ran(first) and "report" in ran(first)

    results = pd.read_csv(repo / "reports/results.csv")
    assert sorted(results["k"]) == [1, 4]
    assert (
        not results[["contrastive_loss", "supervised_loss", "bao_lower", "bao_upper", "ash"]]
        .isna()
        .any()
        .any()
    )
    assert results["holds"].dtype == bool
    metrics = json.loads((repo / "reports/metrics/all.json").read_text())
    assert metrics["runs"] == 2 and metrics["holds"] == int(results["holds"].sum())
    shown = dvc(repo, "metrics", "show")
    assert shown.returncode == 0 and "reports/metrics/circle.json" in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) <= 120, shown.stdout
    for path in (
        "reports/report.md",
        "reports/theory/fig3.png",
        "reports/theory/fig4.png",
        "data/prepared/circle/s0/meta.json",
        "data/pretrain/circle/k4/s0/model.pt",
        "data/pretrain/circle/k4/s0/trajectory.csv",
        "data/features/circle/k4/s0.npz",
        "data/probe/circle/k4/s0.json",
        "data/probe/circle/k4/s0.npz",
    ):
        assert (repo / path).exists(), path

    again = dvc(repo, "repro")
    assert again.returncode == 0 and ran(again) == []

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["k"] = [1, 4, 8]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    grown = dvc(repo, "repro")
    assert grown.returncode == 0, grown.stderr[-3000:]
    assert ran(grown) == new_k_stages(8)
    assert sorted(pd.read_csv(repo / "reports/results.csv")["k"]) == [1, 4, 8]


def test_a_failing_stage_leaves_the_last_outputs_then_the_lr_grid_adds_only_its_runs(repo):
    before = {p: (repo / p).read_bytes() for p in ("reports/results.csv", "reports/report.md")}
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["k"] = [*params["k"], params["k"][0]]  # refused by the bounds stage
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = dvc(repo, "repro")
    assert failed.returncode != 0 and "stage bounds: k: got" in failed.stderr
    for path, content in before.items():
        assert (repo / path).read_bytes() == content, path
    assert (repo / "reports/metrics/all.json").is_file()
    assert (repo / "reports/figures").is_dir() and (repo / "reports/theory/fig3.png").is_file()

    params["k"] = params["k"][:-1]
    params["lr"] = [0.03]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    grid = dvc(repo, "repro")
    assert grid.returncode == 0, grid.stderr[-3000:]
    new = [s for s in ran(grid) if "@" in s]
    assert new and all(s.split("@")[0].endswith("-lr") for s in new), new
    assert "prepare" not in " ".join(ran(grid))
    results = pd.read_csv(repo / "reports/results.csv")
    selected = pd.read_csv(repo / "reports/selected.csv")
    assert len(results) == 2 * len(selected) == 2 * len(params["k"])
    assert set(results["run"]) >= {f"k{k}-s0-lr0.03" for k in params["k"]}


def seed_rows(results: Path) -> dict[int, list[str]]:
    """results.csv's lines by seed, as bytes on disk (the header first in each)."""
    lines = results.read_text().splitlines()
    seed = lines[0].split(",").index("seed")
    rows: dict[int, list[str]] = {}
    for line in lines[1:]:
        rows.setdefault(int(line.split(",")[seed]), []).append(line)
    return rows


def test_a_new_seed_reruns_each_group_and_changes_no_existing_run(repo):
    """Growing `seed` by one re-runs every instance that holds the seeds (prepare per
    dataset, pretrain and pretrain-lr per (dataset, K), extract, probe) and the aggregates;
    every existing seed's model.pt comes out byte for byte as before and its row of
    results.csv stays byte for byte (a seed's numbers never depend on the other seeds of its
    stage nor on how many train at once)."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert dvc(repo, "status", "--json").stdout.strip() == "{}"  # the grid as it stands
    rows_before = seed_rows(repo / "reports/results.csv")
    models = {p: digest(p) for p in (repo / "data/pretrain").rglob("model.pt")}
    assert len(models) == len(params["k"]) * len(params["seed"]) * (1 + len(params["lr"]))
    new = max(params["seed"]) + 1
    params["seed"] = [*params["seed"], new]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    grown = dvc(repo, "repro")
    assert grown.returncode == 0, grown.stderr[-3000:]
    expected = ["prepare@circle", "bounds", "fixed_null", "select_lr", "report"]
    for k in params["k"]:
        expected += [f"pretrain@circle-{k}", f"extract@circle-{k}", f"probe@circle-{k}"]
        for lr in params["lr"]:
            expected += [
                f"pretrain-lr@circle-{k}-{lr}",
                f"extract-lr@circle-{k}-{lr}",
                f"probe-lr@circle-{k}-{lr}",
            ]
    assert ran(grown) == sorted(expected)
    for path, before in models.items():
        assert digest(path) == before, path
    for k in params["k"]:
        for path in (
            f"data/pretrain/circle/k{k}/s{new}/model.pt",
            f"data/probe/circle/k{k}/s{new}.json",
        ):
            assert (repo / path).is_file(), path
    rows_after = seed_rows(repo / "reports/results.csv")
    for seed, rows in rows_before.items():
        assert rows_after[seed] == rows, seed
    results = pd.read_csv(repo / "reports/results.csv")
    assert sorted(set(results["seed"])) == params["seed"]
    assert len(results) == len(params["k"]) * len(params["seed"]) * (1 + len(params["lr"]))
    again = dvc(repo, "repro")
    assert again.returncode == 0 and ran(again) == []


def test_bad_params_fail_before_any_work(repo, tmp_path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["circle"]["train"]["epochz"] = 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(params))
    out = tmp_path / "never"
    result = subprocess.run(
        [
            sys.executable,
            "stages/pretrain.py",
            *pretrain_args(bad, "data/prepared/circle", out, tmp_path / "ck"),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "stage pretrain: circle.train: unknown key 'epochz' (did you mean 'epochs'?)"
    )
    assert not out.exists() and not (tmp_path / "ck").exists()
