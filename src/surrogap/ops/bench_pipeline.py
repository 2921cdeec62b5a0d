"""The benchmarks of the pipeline as a whole, run in temporary copies of this checkout:
`stage_overhead` (one run's three stages under `dvc repro -s`), `sweep_speedup` (`surrogap
sweep -j 2` over a serial `dvc repro`) and `pipeline_efficiency` (the stages' own work over
the wall time of a fresh serial `dvc repro`). Registered by :mod:`surrogap.ops.bench`.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from surrogap.ops.bench_result import BenchResult, judged

# registered by surrogap.ops.bench, in this order
BENCHMARKS = ("stage_overhead", "sweep_speedup", "pipeline_efficiency")

# --------------------------------------------------------------------------- stage_overhead
STAGE_TARGET_SECONDS = 12.0
STAGE_TARGET = f"total <= {STAGE_TARGET_SECONDS:g} s"
STAGE_RUN = ("circle", 4, 0)  # (dataset, K, seed) of the benchmark's one run


def _stage_repo(root, quick: bool):
    """A temporary DVC repository like a clone of the default project (this checkout's
    pipeline, params.yaml and committed dvc.lock, so DVC reads and rewrites the full lock)
    whose benchmark run is cut to seed 0 and 1 epoch (quick: smaller data), with its data
    prepared; (None, None) when this is not a source checkout."""
    src = _checkout()
    if src is None:
        return None, None
    params = yaml.safe_load((src / "params.yaml").read_text())
    dataset, _, seed = STAGE_RUN
    params["seed"] = [seed]
    params[dataset]["train"].update(epochs=1, eval_every=1, checkpoint_every=1, stop_patience=None)
    if quick:
        params[dataset]["data"].update(classes=8, per_class=100)
    repo = pipeline_copy(Path(tempfile.mkdtemp(prefix="surrogap-bench-", dir=root)), params, True)
    if (src / "dvc.lock").is_file():
        shutil.copy(src / "dvc.lock", repo / "dvc.lock")
    env = _env(str(repo / "src"))
    run = lambda *cmd: subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)  # noqa: E731
    prepared = run(sys.executable, "-m", "dvc", "repro", "-s", f"prepare@{dataset}")
    if prepared.returncode != 0:
        raise RuntimeError(f"stage_overhead: prepare failed:\n{prepared.stderr[-2000:]}")
    return repo, run


def _training_seconds(repo, quick: bool) -> float:
    """The work of the benchmark run's pretrain, in this process (torch already imported):
    a fresh trainer's epoch-0 evaluation, one epoch and its evaluation, as the stage does."""
    from surrogap.core.schema import seed_dir
    from surrogap.models.inputs import load_prepared
    from surrogap.pipeline.pretrain import setup
    from surrogap.training import checkpoint
    from surrogap.training.train import Trainer

    dataset, k, seed = STAGE_RUN
    s = setup(yaml.safe_load((repo / "params.yaml").read_text()), dataset)
    enc, tcfg = s.encoder, s.train
    data = load_prepared(repo / "data" / "prepared" / dataset / seed_dir(seed))
    best = math.inf
    for _ in range(1 if quick else 3):
        t0 = time.perf_counter()
        info = checkpoint.run_info(dataset, k, seed, enc, tcfg, data.meta)
        trainer = Trainer(tcfg, enc, data, k, seed, info)
        trainer.evaluate()
        trainer.train_epoch()
        trainer.evaluate()
        best = min(best, time.perf_counter() - t0)
    return best


def stage_overhead(quick: bool = False) -> BenchResult:
    """Seconds that `dvc repro -f -s` of pretrain + extract + probe of a 1-epoch circle run,
    in a copy of the default project with its dvc.lock, costs beyond its training (best of 3
    forced runs; quick: 1, smaller data): process starts, imports, DVC's bookkeeping,
    extraction and the probe's own work. The target is on the whole command."""
    dataset, k, _ = STAGE_RUN
    with tempfile.TemporaryDirectory(prefix="surrogap-bench-") as root:
        repo, run = _stage_repo(root, quick)
        if repo is None:
            detail = "needs a source checkout (dvc.yaml and stages/ beside src/)"
            return BenchResult("stage_overhead", math.nan, STAGE_TARGET, detail, None)
        targets = [
            f"pretrain@{dataset}-{k}",
            f"extract@{dataset}-{k}",
            f"probe@{dataset}-{k}",
        ]
        total = math.inf
        for _ in range(1 if quick else 3):
            t0 = time.perf_counter()
            done = run(sys.executable, "-m", "dvc", "repro", "-f", "-s", *targets)
            elapsed = time.perf_counter() - t0
            if done.returncode != 0:
                raise RuntimeError(f"stage_overhead: dvc repro failed:\n{done.stderr[-2000:]}")
            total = min(total, elapsed)
        training = _training_seconds(repo, quick)
    detail = (
        f"dvc repro -s pretrain+extract+probe of {dataset} K={k}, 1 epoch: {total:.2f} s, "
        f"of which training {training:.2f} s"
    )
    met = total <= STAGE_TARGET_SECONDS
    return judged("stage_overhead", total - training, STAGE_TARGET, met, detail, quick)


# --------------------------------------------------------------------------- sweep
SWEEP_TARGET_RATIO = 0.6
ROOT = Path(__file__).resolve().parents[3]  # the source checkout, where this is one
NO_CHECKOUT = "needs a source checkout (dvc.yaml, stages/)"


def _checkout():
    """The source checkout this module lies in (dvc.yaml and stages/ beside src/), or None
    where it is an installed package."""
    return ROOT if (ROOT / "dvc.yaml").exists() and (ROOT / "stages").is_dir() else None


def _env(pythonpath: str) -> dict:
    """This environment with this interpreter's scripts first on PATH, `pythonpath` as
    PYTHONPATH (where the stages import surrogap from) and DVC's analytics off."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": pythonpath,
        "DVC_NO_ANALYTICS": "1",
    }


def pipeline_copy(dest, params: dict, git: bool = False):
    """A DVC repository at `dest` with this checkout's dvc.yaml, stages/ and src/ and
    `params`, inside a git repository (git=True) or without one; None where this is not a
    source checkout."""
    root = _checkout()
    if root is None:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    for item in ("dvc.yaml", "stages", "src"):
        src = root / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / item)
    (dest / "data" / "external").mkdir(parents=True, exist_ok=True)  # the evaluate stage's dep
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if git:
        subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    init = ["init", "-q"] if git else ["init", "-q", "--no-scm"]
    subprocess.run([sys.executable, "-m", "dvc", *init], cwd=dest, check=True)
    subprocess.run(
        [sys.executable, "-m", "dvc", "config", "core.analytics", "false"], cwd=dest, check=True
    )
    return dest


def _sweep_grid(quick: bool) -> dict:
    """The fixed small grid: circle at the default data size, 5 epochs, K x seeds."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["dataset"] = ["circle"]
    params["k"] = [1, 4] if quick else [1, 4, 16, 64]
    params["seed"] = [0] if quick else [0, 1]
    params["circle"]["train"].update(
        epochs=2 if quick else 5, eval_every=1, checkpoint_every=5, stop_patience=None
    )
    params["theory"].update(classes_fig3=[5], k_max=9, classes_fig4=3)
    for name in list(params):
        if isinstance(params[name], dict) and "data" in params[name] and name != "circle":
            del params[name]
    return params


def _timed(dest: Path, params: dict, cmd: list[str], failed: str):
    """`cmd` run in a fresh copy of the pipeline at `dest` with `params`, the stages importing
    this checkout's src/: (the process, its seconds); None where this is not a source
    checkout. A RuntimeError (`failed`, then the end of its stderr) where it fails."""
    pythonpath = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = _env(os.pathsep.join(pythonpath))
    repo = pipeline_copy(dest, params)
    if repo is None:
        return None
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{failed}:\n{proc.stderr[-2000:]}")
    return proc, seconds


def sweep_speedup(quick: bool = False) -> BenchResult:
    """`surrogap sweep -j 2` from scratch over a fixed small grid, over serial `dvc repro`
    of the same grid in the same run (each in its own fresh copy of the pipeline)."""
    params = _sweep_grid(quick)
    runs = len(params["k"]) * len(params["seed"])
    target = f"<= {SWEEP_TARGET_RATIO}"
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd in (
            ("serial", [sys.executable, "-m", "dvc", "repro", "-q"]),
            ("sweep", [sys.executable, "-m", "surrogap.cli", "sweep", "-j", "2"]),
        ):
            timed = _timed(Path(tmp) / name, params, cmd, f"sweep_speedup: {name} run failed")
            if timed is None:
                return BenchResult("sweep_speedup", math.nan, target, NO_CHECKOUT, None)
            seconds[name] = timed[1]
    value = seconds["sweep"] / seconds["serial"]
    detail = (
        f"circle, {runs} runs (K {params['k']} x seeds {params['seed']}), "
        f"{params['circle']['train']['epochs']} epochs, every stage from scratch: "
        f"sweep -j 2 {seconds['sweep']:.1f} s, serial dvc repro {seconds['serial']:.1f} s"
    )
    met = value <= SWEEP_TARGET_RATIO
    return judged("sweep_speedup", value, target, met, detail, quick)


# --------------------------------------------------------------------------- efficiency
EFFICIENCY_TARGET = 0.5


def pipeline_efficiency(quick: bool = False) -> BenchResult:
    """The seconds of training and estimation over the wall time of a fresh serial
    `dvc repro` of the fixed small grid (the sweep benchmark's): each stage times its own
    body (core.progress's closing line, "work"), so the rest of the wall time is process
    starts, imports and DVC's bookkeeping."""
    from surrogap.core.progress import LINE

    params = _sweep_grid(quick)
    target = f">= {EFFICIENCY_TARGET}"
    cmd = [sys.executable, "-m", "dvc", "repro"]
    with tempfile.TemporaryDirectory() as tmp:
        timed = _timed(Path(tmp) / "serial", params, cmd, "pipeline_efficiency: dvc repro failed")
    if timed is None:
        return BenchResult("pipeline_efficiency", math.nan, target, NO_CHECKOUT, None)
    proc, wall = timed
    lines = [m for m in map(LINE.match, (proc.stdout + proc.stderr).splitlines()) if m]
    work = sum(float(m["work"]) for m in lines)
    value = work / wall
    detail = (
        f"circle K {params['k']} x seeds {params['seed']}: {len(lines)} stage instances, "
        f"work {work:.1f} s of {wall:.1f} s wall (serial dvc repro from scratch)"
    )
    met = value >= EFFICIENCY_TARGET
    return judged("pipeline_efficiency", value, target, met, detail, quick)
