"""`surrogap sweep`: the stale DVC stages run on a two-worker Dask LocalCluster, recorded by DVC
as a serial `dvc repro` records them, in temporary copies of the repository with tiny params."""

from __future__ import annotations

import copy
import json
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
        "fixed_null",
        "prepare@circle",
        "pretrain@circle-1",
        "probe@circle-1",
        "report",
        "select_lr",
        "theory",
    ]
    # one progress line per stage that ran, with the overall count
    progress = [line for line in first.stdout.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == [f"[{i:2d}/10" for i in range(1, 11)]
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
    assert second.returncode == 0 and "10 unchanged" in second.stdout, second.stdout


@pytest.mark.slow
def test_sweep_writes_what_serial_dvc_repro_writes(tmp_path):
    params = tiny_params(k=(1, 4))
    serial = make_repo(tmp_path / "serial", params)
    parallel = make_repo(tmp_path / "parallel", params)
    by_repro = dvc(serial, "repro")
    assert by_repro.returncode == 0, by_repro.stderr[-3000:]
    by_sweep = sweep(parallel, "-j", "2")
    assert by_sweep.returncode == 0, by_sweep.stdout + by_sweep.stderr[-3000:]
    assert "13 ran" in by_sweep.stdout
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
    assert len(failed) == 1 and "pretrain@norm-1: FAILED: stage pretrain: " in failed[0]
    assert "optimizer" in failed[0] and "adamw" in failed[0]
    assert "(log: data/sweep/pretrain@norm-1.log)" in failed[0]
    assert "extract@norm-1: skipped: pretrain@norm-1 failed" in out
    assert "probe@norm-1: skipped: pretrain@norm-1 failed" in out
    assert "1 stage failed: pretrain@norm-1; 2 skipped" in result.stderr
    assert "Traceback" not in out + result.stderr
    # circle's chain and norm's prepare ran and are recorded
    assert sorted(lock(repo)) == [
        "extract@circle-1",
        "prepare@circle",
        "prepare@norm",
        "pretrain@circle-1",
        "probe@circle-1",
    ]
    done = ["prepare@norm", "pretrain@circle-1", "extract@circle-1", "probe@circle-1"]
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
    log = (killed / "data/sweep/pretrain@circle-1.log").read_text()
    assert log.count("\n# ") + log.startswith("# ") == 2, log  # two attempts
    assert "resuming from" in log, log

    uninterrupted = dvc(plain, "repro", "pretrain@circle-1")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    a = torch.load(killed / "data/pretrain/circle/k1/s0/model.pt", weights_only=False)
    b = torch.load(plain / "data/pretrain/circle/k1/s0/model.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 12
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert dvc(killed, "status", "--json", "pretrain").stdout.strip() == "{}"
    assert lock(killed)["pretrain@circle-1"] == lock(plain)["pretrain@circle-1"]


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
        (["-j", "0"], "jobs must be an integer in 1.."),
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


def test_workers_and_retries_are_bounded_before_anything_starts(tmp_path, monkeypatch, capsys):
    """`-j 1e9` used to build a list of 1e9 worker specs (MemoryError), `-j 100000` to start
    that many worker processes: -j and --gpus' ids are at most 4 per core, --retries 10."""
    from surrogap import cli
    from surrogap.ops import sweep as sweep_mod

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.chdir(tmp_path)  # no DVC repository: nothing could run past the arguments
    started = []
    monkeypatch.setattr(sweep_mod, "plan_workers", lambda *a: started.append(a))
    gpus = ",".join(["0"] * 9)
    for args, expected in (
        (["-j", "1e9"], "argument -j/--jobs: jobs must be an integer in 1..8 (4 local workers "
         "per core, each a process running one stage), got '1e9'"),
        (["-j", "100000"], "jobs must be an integer in 1..8"),
        (["-j", "9"], "got '9'"),
        (["--gpus", gpus], f"--gpus names 9 GPUs (one local worker each), allowed: at most 8 "
         f"(4 per core), got '{gpus}'"),
        (["--retries", "1e6"], "argument --retries: retries must be an integer in 0..10, got '1e6'"),
        (["--retries", "11"], "retries must be an integer in 0..10, got '11'"),
        # 1e308 s waited for ever on an unreachable scheduler
        (["--connect-timeout", "1e308", "--scheduler", "tcp://127.0.0.1:1"],
         "argument --connect-timeout: connect timeout must be <= 3600, got '1e308'"),
    ):  # fmt: skip
        assert cli.main(["sweep", *args]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and err.startswith("surrogap sweep: "), err
        assert expected in err, err
    # the largest allowed values pass the arguments (and stop at the missing repository)
    for args in (["-j", "8"], ["--gpus", ",".join(["0"] * 8)], ["--retries", "10"]):
        assert cli.main(["sweep", *args]) == 2
        assert "not inside a DVC repository" in capsys.readouterr().err
    assert started == []


def test_a_missing_or_dangling_params_file_is_one_line_before_dvc(tmp_path, monkeypatch, capsys):
    """DVC itself ended a dangling params.yaml symlink in a 65-line traceback, and a missing
    one in "Could not find 'dataset'"; the sweep reads params.yaml first."""
    from surrogap import cli

    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    (repo / ".git").mkdir()
    (repo / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(repo)
    for make in (lambda p: None, lambda p: p.symlink_to(tmp_path / "nonexistent")):
        make(repo / "params.yaml")
        assert cli.main(["sweep", "-j", "1"]) == 2
        err = capsys.readouterr().err
        assert err == f"surrogap sweep: params file {str(repo / 'params.yaml')!r} does not exist\n"


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
    # and so do the processes a stage runs its seeds in (SURROGAP_STAGE_JOBS)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SURROGAP_STAGE_JOBS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    cpu = plan_workers(None, [])
    one = {"OMP_NUM_THREADS": "1", "SURROGAP_STAGE_JOBS": "1"}
    assert cpu.envs == [one] * 8 and cpu.describe == "8 local workers (CPU)"
    four = {"OMP_NUM_THREADS": "4", "SURROGAP_STAGE_JOBS": "4"}
    assert plan_workers(2, parse_gpus("none")).envs == [four] * 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert plan_workers(2, []).envs == [{"SURROGAP_STAGE_JOBS": "4"}] * 2
    monkeypatch.setenv("SURROGAP_STAGE_JOBS", "1")
    assert plan_workers(2, []).envs == [{}, {}]
    assert parse_gpus("0,1") == ["0", "1"]


def _one_line(result: subprocess.CompletedProcess, needle: str) -> str:
    """The sweep's own stderr line (DVC may add its `WARNING:` lines), asserted alone."""
    lines = [x for x in result.stderr.splitlines() if not x.startswith("WARNING:")]
    assert result.returncode == 2 and len(lines) == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and needle in lines[0], result.stderr
    return lines[0]


def test_the_boundary_of_sweep_is_one_line_each_before_any_work(tmp_path):
    """Bad schedulers, a DVC command already running, a project without git and a project
    at a non-UTF-8 path: each is one line on stderr, exit 2, before any stage runs."""
    repo = make_repo(tmp_path / "repo", tiny_params())
    _one_line(sweep(repo, "--scheduler", "garbage"), "--scheduler 'garbage' is no Dask")
    t0 = time.monotonic()
    unreachable = sweep(repo, "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "1")
    line = _one_line(unreachable, "cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'")
    assert "within 1 s" in line and time.monotonic() - t0 < 20  # not Dask's 30 s
    # a `dvc repro` running a stage: DVC lists it in its rwlock (the repository lock is
    # released while the stage's command runs); a live process there stops the sweep
    other = subprocess.Popen(["sleep", "60"])
    try:
        rwlock = repo / ".dvc" / "tmp" / "rwlock"
        rwlock.parent.mkdir(parents=True, exist_ok=True)
        entry = {"pid": other.pid, "cmd": "dvc repro"}
        rwlock.write_text(json.dumps({"write": {str(repo / "data/prepared/circle"): entry}}))
        busy = _one_line(sweep(repo), "another DVC command is running in this repository")
        assert f"(PID {other.pid}: dvc repro) and runs a stage" in busy
        rwlock.unlink()
        # the repository lock held by another process (DVC between two stages)
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, time, zc.lockfile; "
             "l = zc.lockfile.LockFile(sys.argv[1]); print('held', flush=True); time.sleep(60)",
             str(repo / ".dvc" / "tmp" / "lock")],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout.readline().strip() == "held"
            locked = _one_line(sweep(repo), f"(PID {holder.pid}: ")
            assert "holds DVC's repository lock" in locked
        finally:
            holder.kill()
            holder.wait()
    finally:
        other.kill()
        other.wait()
    assert not (repo / "dvc.lock").exists() and not (repo / "data" / "sweep").exists()
    # no git: `dvc repro` says so in one line, and so does the sweep
    (repo / ".git").rename(tmp_path / "git-aside")
    _one_line(sweep(repo), "is not a git repository")
    (tmp_path / "git-aside").rename(repo / ".git")
    # a non-UTF-8 project path: DVC fails after the stage ran; the sweep refuses first
    odd = os.fsencode(tmp_path) + b"/proj\xff"
    os.rename(repo, odd)
    done = subprocess.run(
        [sys.executable, "-m", "surrogap.cli", "sweep"],
        cwd=odd, env=env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    line = _one_line(done, "is not UTF-8, and DVC cannot record outputs under it")
    assert "proj\\xff" in line
    assert not os.path.exists(odd + b"/dvc.lock")


class _Done:
    """A stand-in for a Dask future: finished, running or cancelled."""

    def __init__(self, done: bool, cancelled: bool = False):
        self._done, self._cancelled = done, cancelled

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return self._cancelled


def test_ctrl_c_records_the_tasks_that_finished_and_only_those():
    from surrogap.ops.recording import finished_uncollected

    finished, running, cancelled, collected = (
        _Done(True),
        _Done(False),
        _Done(True, True),
        _Done(True),
    )
    inflight = {finished: ("a", "a.log"), running: ("b", "b.log"), cancelled: ("c", "c.log")}
    inflight[collected] = ("d", "d.log")
    assert finished_uncollected(inflight, settled={"d"}) == [finished]
    assert finished_uncollected({}, settled=set()) == []


@pytest.mark.slow
def test_ctrl_c_before_the_client_collects_finished_stages_still_records_them(
    tmp_path, monkeypatch
):
    """Ctrl-C (KeyboardInterrupt in the client) while a finished stage's future waits to be
    collected: that stage used to be dropped (its outputs written, nothing in dvc.lock).
    Two independent stages; the interrupt comes as the first is reported, once the
    scheduler has both done (deterministic: no timing)."""
    from distributed import Client

    from surrogap.ops import dvcstate
    from surrogap.ops.sweep import SweepResult
    from surrogap.ops.sweep import sweep as run_sweep

    repo = make_repo(tmp_path / "repo", tiny_params(datasets=("circle", "norm")))
    for key, value in env(repo / "src" if (repo / "src").is_dir() else None).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(repo)
    result = SweepResult()
    lines: list[str] = []
    with Client(
        processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None
    ) as client:

        def echo(line: str) -> None:
            lines.append(line)
            if len(lines) > 1:
                return  # the stage recorded after the interrupt is reported too
            deadline = time.monotonic() + 120
            while any(client.processing().values()) and time.monotonic() < deadline:
                time.sleep(0.1)  # the other stage's command finishing
            raise KeyboardInterrupt

        repo_obj = dvcstate.open_repo(repo)
        try:
            with dvcstate.holding_lock(repo_obj), pytest.raises(KeyboardInterrupt):
                run_sweep(repo_obj, ["prepare"], client, echo=echo, result=result)
        finally:
            repo_obj.close()
    assert [x[:6] for x in lines] == ["[1/2] ", "[2/2] "] and "ran in" in lines[1], lines
    assert sorted(x[6:].split(":")[0] for x in lines) == ["prepare@circle", "prepare@norm"]
    assert sorted(o.stage for o in result.with_status("ran")) == [
        "prepare@circle",
        "prepare@norm",
    ]
    assert sorted(lock(repo)) == ["prepare@circle", "prepare@norm"]
    status = dvc(repo, "status", "--json", "prepare")
    assert status.stdout.strip() == "{}", status.stdout + status.stderr


def test_a_running_sweep_stops_a_later_dvc_repro_at_once_and_ctrl_c_is_one_line(tmp_path):
    """While the sweep runs it holds DVC's repository lock, so a `dvc repro` started later
    fails before it trains (it used to train, then die unrecorded when the sweep had taken the
    lock). Ctrl-C at the terminal (SIGINT to the whole process group: client, workers and
    stage commands) stops the cluster and prints one line with what was recorded."""
    params = tiny_params()
    params["circle"]["data"].update(per_class=1000)
    params["circle"]["train"].update(epochs=200)  # still training when Ctrl-C comes
    repo = make_repo(tmp_path / "repo", params)
    proc = subprocess.Popen(
        [sys.executable, "-m", "surrogap.cli", "sweep", "-j", "2"],
        cwd=repo,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not inherited SIG_IGN
    )
    try:
        lines = []
        while not any("prepare@circle:" in x for x in lines):
            lines.append(proc.stdout.readline())
            assert lines[-1], "".join(lines) + proc.stderr.read()
        t0 = time.monotonic()
        later = dvc(repo, "repro", "theory")
        assert later.returncode != 0 and "Unable to acquire lock" in later.stderr, later.stderr
        assert ran(later) == [] and time.monotonic() - t0 < 30
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, out + err
    own = [x for x in err.splitlines() if not x.startswith("WARNING:")]
    assert len(own) == 1 and "Traceback" not in err, err
    recorded, unchanged, left = (
        int(own[0].split(word)[0].split()[-1]) for word in (" stage", " unchanged", " not run")
    )
    assert own[0].startswith("surrogap sweep: interrupted; ") and "resumes" in own[0], own
    assert recorded >= 1 and unchanged == 0 and recorded + left == 10, own
    assert "prepare@circle" in lock(repo) and "pretrain@circle-1" not in lock(repo)
    # the lock is released and no process of the sweep is left in DVC's rwlock
    status = dvc(repo, "status", "prepare")
    assert status.returncode == 0, status.stderr
    assert "surrogap sweep" not in (repo / ".dvc" / "tmp" / "rwlock").read_text()


@pytest.mark.slow
def test_a_pretrain_that_dvc_did_not_record_resumes_at_its_end_under_dvc_repro(tmp_path):
    """`dvc repro` that died on DVC's lock after its pretrain finished (the command done,
    nothing recorded: here the stage's command run as DVC runs it) lost the training; the
    final checkpoint now stays until DVC records the output, so the next `dvc repro` resumes
    at the last epoch with the same weights, and `dvc repro -f` then retrains from epoch 0."""
    import torch

    repo = make_repo(tmp_path / "repo", tiny_params())
    assert dvc(repo, "repro", "prepare").returncode == 0
    run = "data/pretrain/circle/k1/s0"
    cmd = [
        sys.executable, "stages/pretrain.py", "--dataset", "circle", "--k", "1", "--seed", "0",
        "--data", "data/prepared/circle", "--out", "data/pretrain/circle/k1",
        "--checkpoints", "data/checkpoints/circle/k1",
    ]  # fmt: skip
    lost = subprocess.run(
        cmd,
        cwd=repo,
        env={**env(repo / "src"), "DVC_ROOT": str(repo), "DVC_STAGE": "pretrain@circle-1"},
        capture_output=True,
        text=True,
    )
    assert lost.returncode == 0, lost.stderr
    weights = torch.load(repo / run / "model.pt", weights_only=True)
    epochs = weights["epoch"]
    resumed = dvc(repo, "repro", "pretrain@circle-1")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at epoch {epochs}/{epochs}" in resumed.stderr, resumed.stderr
    again = torch.load(repo / run / "model.pt", weights_only=True)
    assert all(torch.equal(weights["model"][k], again["model"][k]) for k in weights["model"])
    forced = dvc(repo, "repro", "-f", "-s", "pretrain@circle-1")
    assert forced.returncode == 0 and "resuming" not in forced.stderr, forced.stderr[-2000:]
    # one checkpoint per run on disk: the completed run's, until its next run
    ckpts = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("last.pt"))
    assert ckpts == ["data/checkpoints/circle/k1/s0/last.pt"]


@pytest.mark.slow
def test_a_sweep_started_while_dvc_repro_trains_refuses_and_the_repro_is_recorded(tmp_path):
    """The finding: `dvc repro` training, a sweep started 6 s later took DVC's lock and the
    repro died unrecorded. Now the sweep sees the running stage in DVC's rwlock and refuses
    in one line naming it, and the `dvc repro` finishes and records its pretrain."""
    params = tiny_params()
    params["circle"]["data"].update(per_class=1000)
    params["circle"]["train"].update(epochs=40)
    repo = make_repo(tmp_path / "repo", params)
    repro = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", "pretrain"],
        cwd=repo,
        env=env(repo / "src"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        rwlock = repo / ".dvc" / "tmp" / "rwlock"
        deadline = time.monotonic() + 300
        while "pretrain/circle" not in (rwlock.read_text() if rwlock.exists() else ""):
            assert repro.poll() is None and time.monotonic() < deadline, repro.communicate()
            time.sleep(0.2)
        refused = sweep(repo, "-j", "2")
        line = _one_line(
            refused, f"another DVC command is running in this repository (PID {repro.pid}: "
        )
        assert "runs a stage" in line and "repro" in line
        _, err = repro.communicate(timeout=600)
    finally:
        if repro.poll() is None:
            repro.kill()
            repro.wait()
    assert repro.returncode == 0, err[-3000:]
    assert "pretrain@circle-1" in lock(repo)
    assert dvc(repo, "status", "--json", "pretrain").stdout.strip() == "{}"
