"""Tests of surrogap.ops.bench (quick mode only: the full sizes take tens of seconds)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from surrogap.cli import main
from surrogap.ops import bench
from surrogap.theory.bounds import coverage_probability


@pytest.fixture(scope="module")
def quick_results():
    # only this module's own benchmark: the others registered here have their own tests
    return bench.run_all(quick=True, names=["coverage_speedup"])


def test_run_all_quick_keys_and_result(quick_results):
    assert set(quick_results) == {"coverage_speedup"}
    r = quick_results["coverage_speedup"]
    assert isinstance(r, bench.BenchResult) and r.name == "coverage_speedup"
    assert r.value > 0
    assert r.target == ">= 20x, rel. diff <= 1e-9"
    assert "rel. diff" in r.detail and " s " in r.detail
    assert r.passed is None  # quick: the ratio is not judged, the accuracy held
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.value = 1.0  # type: ignore[misc]


def test_format_results_prints_every_key(quick_results):
    text = bench.format_results(quick_results)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["key", "measured", "target", "result"]
    for name, r in quick_results.items():
        row = next(line for line in lines if line.startswith(name))
        assert r.target in row and f"{r.value:.3g}x" in row  # a ratio target: shown with x


def test_format_results_pass_and_fail():
    results = {
        "a": bench.BenchResult("a", 25.0, ">= 20x", "fast", True),
        "b": bench.BenchResult("b", 3.0, ">= 20x", "slow", False),
        "c": bench.BenchResult("c", 0.25, ">= 0.4", "a fraction"),
    }
    lines = bench.format_results(results).splitlines()
    assert "PASS" in lines[2] and "25x" in lines[2]
    assert "FAIL" in lines[3]
    assert "0.25 " in lines[4] and "0.25x" not in lines[4]


@pytest.mark.parametrize(("n", "c"), [(1, 2), (5, 3), (40, 7), (500, 60)])
def test_python_recursion_matches_library(n, c):
    assert bench.coverage_python(n, c) == pytest.approx(
        coverage_probability(n, c), rel=1e-12, abs=0
    )


def test_register_rejects_duplicates_and_run_all_filters():
    with pytest.raises(ValueError, match="already registered"):
        bench.register("coverage_speedup")(lambda quick: None)
    with pytest.raises(ValueError, match="unknown benchmark"):
        bench.run_all(quick=True, names=["nope"])


def test_cli_bench_quick(capsys, monkeypatch):
    # the CLI prints whatever is registered; keep this test to this module's benchmark
    only = {"coverage_speedup": bench.REGISTRY["coverage_speedup"]}
    monkeypatch.setattr(bench, "REGISTRY", only)
    assert main(["bench", "--quick", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"coverage_speedup"} and data["coverage_speedup"] > 0
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("key") and "coverage_speedup" in out and "n/a (quick)" in out


def test_evaluate_benchmark_reports_its_fields():
    """Keys and units only: speed is the benchmark's own business, never a test's."""
    result = bench.bench_evaluate_flops_fraction(quick=True)
    assert result["name"] == "evaluate_flops_fraction" and result["target"] == 0.4
    assert result["value"] > 0 and result["rss_growth_bytes"] >= 0
    assert "peak RSS growth" in result["detail"]


@pytest.mark.slow
def test_stage_overhead_runs_the_three_stages_and_subtracts_training():
    r = bench.run_all(quick=True, names=["stage_overhead"])["stage_overhead"]
    total, training = (
        float(x)
        for x in re.search(r": ([\d.]+) s, of which training ([\d.]+) s", r.detail).groups()
    )
    assert 0 < training < total
    assert r.value == pytest.approx(total - training, abs=0.01)
    assert r.target == "total <= 12 s" and r.passed is None  # quick: not judged


@pytest.mark.slow
def test_pipeline_efficiency_is_the_stages_work_over_the_wall_time():
    r = bench.run_all(quick=True, names=["pipeline_efficiency"])["pipeline_efficiency"]
    stages, work, wall = re.search(
        r"(\d+) stage instances, work ([\d.]+) s of ([\d.]+) s wall", r.detail
    ).groups()
    # the quick grid: theory, prepare, 2 pretrain, 2 extract, 2 probe, bounds, fixed_null, select_lr,
    # evaluate, report; each prints its closing line with its own work time
    assert int(stages) == 13
    assert 0 < float(work) < float(wall)
    assert r.value == pytest.approx(float(work) / float(wall), abs=0.01)  # detail: 0.1 s
    assert r.target == ">= 0.5" and r.passed is None  # quick: not judged
