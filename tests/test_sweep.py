"""`surrogap sweep`: the stale DVC stages run on a two-worker Dask LocalCluster, recorded by DVC
as a serial `dvc repro` records them, in temporary copies of the repository with tiny params."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import tiny_params as base_params
from repo_copy import dvc, env, make_repo, new_k_stages, ran


def tiny_params(k=(1,), datasets=("circle",)) -> dict:
    """The tests' own tiny params (never the working params.yaml), one section per dataset
    kind named in `datasets`, with the grid's K list `k`."""
    params = base_params()
    base = params.pop("circle")
    for name in datasets:
        section = copy.deepcopy(base)
        section["data"]["kind"] = name
        params[name] = section
    params["dataset"] = list(datasets)
    params["k"] = list(k)
    params["seed"] = [0]
    return params


def sweep(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "surrogap.cli", "sweep", *args],
        cwd=repo,
        env=env(),
        capture_output=True,
        text=True,
        timeout=900,
    )


def lock(repo: Path) -> dict:
    """dvc.lock's stages, less the resumable checkpoint folders (DVCLive's wall-clock
    timestamps are in them, so two runs of a stage never agree on their hash)."""
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    for entry in stages.values():
        entry["outs"] = [o for o in entry["outs"] if "checkpoints" not in Path(o["path"]).parts]
    return stages


def run_cache(repo: Path) -> set[str]:
    runs = repo / ".dvc" / "cache" / "runs"
    return {str(p.relative_to(runs)) for p in runs.rglob("*") if p.is_file()}


def test_sweep_on_two_workers_leaves_nothing_for_dvc_repro(tmp_path):
    repo = make_repo(tmp_path / "repo", tiny_params())
    first = sweep(repo, "-j", "2")
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    stages = sorted(lock(repo))
    assert stages == [
        "bounds",
        "evaluate",
        "extract@circle-1",
        "prepare@circle",
        "pretrain@circle-1-0",
        "probe@circle-1",
        "report",
        "select_lr",
        "theory",
    ]
    # one progress line per stage that ran, with the overall count
    progress = [line for line in first.stdout.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == [f"[{i}/9" for i in range(1, 10)]
    assert "\r" not in first.stdout + first.stderr  # no progress bars
    status = dvc(repo, "status", "--json")
    assert status.returncode == 0 and status.stdout.strip() == "{}", status.stdout
    again = dvc(repo, "repro")
    assert again.returncode == 0 and ran(again) == [], again.stdout
    # the run cache holds the stages without `cache: false` outs, as after `dvc repro`
    cached = {
        yaml.safe_load((repo / ".dvc/cache/runs" / entry).read_text())["cmd"].split()[1]
        for entry in run_cache(repo)
    }
    assert {"stages/prepare.py", "stages/extract.py", "stages/probe.py"} <= cached
    # a second sweep finds nothing stale
    second = sweep(repo, "-j", "2")
    assert second.returncode == 0 and "9 unchanged" in second.stdout, second.stdout


@pytest.mark.slow
def test_sweep_writes_what_serial_dvc_repro_writes(tmp_path):
    params = tiny_params(k=(1, 4))
    serial = make_repo(tmp_path / "serial", params)
    parallel = make_repo(tmp_path / "parallel", params)
    by_repro = dvc(serial, "repro")
    assert by_repro.returncode == 0, by_repro.stderr[-3000:]
    by_sweep = sweep(parallel, "-j", "2")
    assert by_sweep.returncode == 0, by_sweep.stdout + by_sweep.stderr[-3000:]
    assert "12 ran" in by_sweep.stdout
    # dvc.lock: the same stages, deps, params and output hashes (stage order may differ)
    assert lock(parallel) == lock(serial)
    # the run cache: the same keys (deps, params, cmd) and the same recorded outputs
    assert run_cache(parallel) == run_cache(serial) != set()
    # outputs are in the DVC cache: deleting one is restored from the run cache, not run
    (parallel / "data/features/circle/k4/s0.npz").unlink()
    again = dvc(parallel, "repro")
    assert again.returncode == 0 and ran(again) == [], again.stdout
    assert "is cached - skipping run" in again.stdout
    assert dvc(parallel, "status", "--json").stdout.strip() == "{}"
    # and the sweep restores from the run cache as dvc repro does
    (parallel / "data/probe/circle/k1/s0.json").unlink()
    restored = sweep(parallel, "-j", "2")
    assert restored.returncode == 0
    assert "probe@circle-1: restored from the run cache" in restored.stdout
    # a grown grid runs only the new instances and what aggregates them
    grown_params = yaml.safe_load((parallel / "params.yaml").read_text())
    grown_params["k"] = [1, 4, 8]
    (parallel / "params.yaml").write_text(yaml.safe_dump(grown_params, sort_keys=False))
    grown = sweep(parallel)
    assert grown.returncode == 0, grown.stdout + grown.stderr[-3000:]
    ran_now = sorted(
        line.split("] ")[1].split(":")[0]
        for line in grown.stdout.splitlines()
        if " ran in " in line
    )
    assert ran_now == new_k_stages(8)


@pytest.mark.slow
def test_a_failed_stage_stops_its_descendants_and_the_rest_is_recorded(tmp_path):
    params = tiny_params(datasets=("circle", "norm"))
    params["norm"]["train"]["optimizer"] = "adamw"  # not allowed: pretrain@norm fails
    repo = make_repo(tmp_path / "repo", params)
    result = sweep(repo, "-j", "2", "probe")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "pretrain@norm-1-0: FAILED: stage pretrain: " in failed[0]
    assert "optimizer" in failed[0] and "adamw" in failed[0]
    assert "(log: data/sweep/pretrain@norm-1-0.log)" in failed[0]
    assert "extract@norm-1: skipped: pretrain@norm-1-0 failed" in out
    assert "probe@norm-1: skipped: pretrain@norm-1-0 failed" in out
    assert "1 stage failed: pretrain@norm-1-0; 2 skipped" in result.stderr
    assert "Traceback" not in out + result.stderr
    # circle's chain and norm's prepare ran and are recorded
    assert sorted(lock(repo)) == [
        "extract@circle-1",
        "prepare@circle",
        "prepare@norm",
        "pretrain@circle-1-0",
        "probe@circle-1",
    ]
    done = ["prepare@norm", "pretrain@circle-1-0", "extract@circle-1", "probe@circle-1"]
    status = dvc(repo, "status", "--json", *done)
    assert status.stdout.strip() == "{}", status.stdout
    # fixed, the sweep runs only what failed or was skipped
    params["norm"]["train"]["optimizer"] = "adam"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    fixed = sweep(repo, "-j", "2", "probe")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "3 ran, 0 restored, 5 unchanged" in fixed.stdout


def _worker_of(pid: int, sweep_pid: int) -> int | None:
    """The Dask worker process (a child of the sweep's nanny) running process `pid`."""
    import psutil

    proc = psutil.Process(pid)
    for parent in proc.parents():
        if parent.ppid() == sweep_pid:
            return parent.pid
    return None


@pytest.mark.slow
def test_a_worker_killed_mid_pretrain_is_retried_and_resumes_to_the_same_weights(tmp_path):
    import psutil
    import torch

    params = tiny_params()
    params["circle"]["data"].update(per_class=1000)
    params["circle"]["train"].update(epochs=12, eval_every=4, checkpoint_every=1)
    killed = make_repo(tmp_path / "killed", params)
    plain = make_repo(tmp_path / "plain", params)

    proc = subprocess.Popen(
        [sys.executable, "-m", "surrogap.cli", "sweep", "-j", "2", "pretrain"],
        cwd=killed,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    victims: list[int] = []
    stopped_at: list[int] = []  # the checkpoint's epoch while the pretrain was stopped
    errors: list[BaseException] = []
    # pretrain's first checkpoint, at its known path: a glob over data/ races with the
    # temporary folders that prepare's atomic writes create and remove
    checkpoint = killed / "data/checkpoints/circle/k1/s0/last.pt"

    def pretrain_and_worker() -> tuple[int, int] | None:
        for p in psutil.process_iter(["pid", "cmdline"]):
            cmdline = p.info["cmdline"] or []
            # the Python process itself, not a shell that may wrap it
            if cmdline[1:2] == ["stages/pretrain.py"] and "python" in Path(cmdline[0]).name:
                try:
                    worker = _worker_of(p.info["pid"], proc.pid)
                except psutil.NoSuchProcess:
                    continue
                if worker is not None:
                    return p.info["pid"], worker
        return None

    def kill_when_checkpointed() -> None:
        deadline = time.time() + 600
        found = None
        while time.time() < deadline and proc.poll() is None and found is None:
            found = pretrain_and_worker()
            time.sleep(0.01)
        if found is None:
            return
        pid, worker = found
        while time.time() < deadline and proc.poll() is None:
            if checkpoint.exists():
                # stopped first, so the run cannot finish (and remove its checkpoint)
                # between the check and the kill: the retry must find it mid-run
                os.kill(pid, signal.SIGSTOP)
                saved = torch.load(checkpoint, weights_only=True)
                stopped_at.append(saved["epoch"])
                os.kill(worker, signal.SIGKILL)  # the stopped command dies with it
                victims.append(worker)
                return
            time.sleep(0.002)

    def killer_main() -> None:
        try:
            kill_when_checkpointed()
        except BaseException as e:  # surfaced below, not lost as a thread warning
            errors.append(e)

    killer = threading.Thread(target=killer_main)
    killer.start()
    out, err = proc.communicate(timeout=900)
    killer.join()
    assert not errors, errors
    assert proc.returncode == 0, out + err
    assert victims, "the pretrain finished before a checkpoint was seen"
    assert 1 <= stopped_at[0] < 12, stopped_at  # killed mid-run, with a checkpoint to resume
    log = (killed / "data/sweep/pretrain@circle-1-0.log").read_text()
    assert log.count("\n# ") + log.startswith("# ") == 2, log  # two attempts
    assert "resuming from" in log, log

    uninterrupted = dvc(plain, "repro", "pretrain@circle-1-0")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    a = torch.load(killed / "data/pretrain/circle/k1/s0/model.pt", weights_only=False)
    b = torch.load(plain / "data/pretrain/circle/k1/s0/model.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 12
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert dvc(killed, "status", "--json", "pretrain").stdout.strip() == "{}"
    assert lock(killed)["pretrain@circle-1-0"] == lock(plain)["pretrain@circle-1-0"]


@pytest.mark.slow
def test_sweep_on_a_running_scheduler(tmp_path):
    from distributed import LocalCluster

    repo = make_repo(tmp_path / "repo", tiny_params())
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        result = sweep(repo, "--scheduler", cluster.scheduler_address, "prepare")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"surrogap sweep: {cluster.scheduler_address};")
    assert "prepare@circle: ran in" in result.stdout
    assert sorted(lock(repo)) == ["prepare@circle"]
    assert dvc(repo, "status", "--json", "prepare").stdout.strip() == "{}"


def test_bad_arguments_are_one_line(tmp_path):
    for args, expected in (
        (["-j", "0"], "jobs must be an integer >= 1, got '0'"),
        (["--gpus", "x"], "--gpus must be auto, none or comma-separated GPU ids"),
        (["--scheduler", "tcp://127.0.0.1:1", "-j", "2"], "with --scheduler"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "surrogap.cli", "sweep", *args],
            cwd=tmp_path,
            env=env(),
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert expected in result.stderr
    outside = subprocess.run(
        [sys.executable, "-m", "surrogap.cli", "sweep"],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert outside.returncode == 2 and "not inside a DVC repository" in outside.stderr


def test_local_workers_one_per_gpu_each_pinned(monkeypatch):
    from surrogap.ops.workers import parse_gpus, plan_workers, visible_gpus

    pinned = plan_workers(None, ["0", "3"])
    assert pinned.envs == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "3"}]
    assert pinned.describe == "2 local workers, GPU 0, 3"
    # more workers than GPUs: the GPUs in turn, one each
    assert [e["CUDA_VISIBLE_DEVICES"] for e in plan_workers(3, ["0", "1"]).envs] == ["0", "1", "0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus() == ["2", "5"] and parse_gpus("auto") is None
    assert len(plan_workers(None, None).envs) == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    # CPU: the cores split among the workers unless OMP_NUM_THREADS is set
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    cpu = plan_workers(None, [])
    assert cpu.envs == [{"OMP_NUM_THREADS": "1"}] * 8 and cpu.describe == "8 local workers (CPU)"
    assert plan_workers(2, parse_gpus("none")).envs == [{"OMP_NUM_THREADS": "4"}] * 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert plan_workers(2, []).envs == [{}, {}]
    assert parse_gpus("0,1") == ["0", "1"]
