"""GPU check for a session that has one (not collected by pytest): a few epochs on cuda in
fp32, bf16 and fp16, a ResNet-18 run with BatchNorm in bf16, a 1-GPU DDP run (NCCL) through
the stage's torchrun relaunch (and a 2-GPU one with SyncBatchNorm when there are 2 GPUs),
`surrogap sweep` on a small grid with one Dask worker per GPU (each sees only its GPU), then
the GPU tests of tests/test_distributed.py. Prints timings; exit status 0 when all pass.

    python tools/gpu_check.py            # about 2-4 minutes on one modern GPU
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def params(dataset: dict, encoder: dict, **train) -> dict:
    base = {
        "optimizer": "adam",
        "lr": 0.01,
        "batch_size": 256,
        "epochs": 4,
        "schedule": "cosine",
        "warmup_epochs": 1,
        "eval_every": 2,
        "checkpoint_every": 2,
        "device": "cuda",
    }
    base.update(train)
    return {
        "dataset": ["d"],
        "k": [16],
        "seed": [0],
        "d": {"data": dataset, "encoder": encoder, "train": base},
    }


CIRCLE = {"kind": "circle", "classes": 50, "per_class": 400, "seed": 0}
MLP = {"name": "mlp", "widths": [256, 256, 256]}
DIGITS = {"kind": "digits", "seed": 0}
RESNET = {"name": "resnet18", "head": True, "hidden": 512, "out_dim": 128}


def in_process(tmp: Path, name: str, p: dict) -> dict:
    from surrogap.pipeline import prepare, pretrain

    prepared = tmp / f"prep-{p['d']['data']['kind']}"
    if not prepared.exists():
        prepare.run_seed(p, "d", 0, prepared, tmp / "raw")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    pretrain.run(p, "d", 16, 0, prepared, tmp / name, tmp / f"{name}-ckpt")
    torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - t0, **read(tmp / name)}


def read(out: Path) -> dict:
    info = json.loads((out / "train_info.json").read_text())
    rows = (out / "trajectory.csv").read_text().splitlines()[1:]
    losses = [float(r.split(",")[1]) for r in rows[1:]]
    return {
        "losses": [round(x, 4) for x in losses],
        "world": info["world_size"],
        "backend": info["backend"],
    }


def under_torchrun(tmp: Path, name: str, p: dict, nproc: int) -> dict:
    from surrogap.pipeline import prepare

    p["d"]["train"]["nproc_per_node"] = nproc
    prepared = tmp / f"prep-{p['d']['data']['kind']}"
    if not prepared.exists():
        prepare.run_seed(p, "d", 0, prepared, tmp / "raw")
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(p))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    # torchrun explicitly (the documented command for several nodes): WORLD_SIZE is set, so
    # the stage does not relaunch itself, and even one process gets a group and DDP
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(ROOT / "stages" / "pretrain.py"),
        "--params",
        str(path),
        "--dataset",
        "d",
        "--k",
        "16",
        "--seed",
        "0",
        "--data",
        str(prepared),
        "--out",
        str(tmp / name),
        "--checkpoints",
        str(tmp / f"{name}-ckpt"),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: exit {proc.returncode}\n{proc.stderr[-4000:]}")
    return {"seconds": time.perf_counter() - t0, **read(tmp / name)}


def sweep_on_gpus(tmp: Path, n_gpu: int) -> dict:
    """`surrogap sweep` (default: one local worker per GPU) over circle, K in {1, 4} x two
    seeds on cuda in a fresh DVC repository; then `dvc status` must be clean, every pretrain
    must have run on cuda, and with several GPUs the runs must have used more than one."""
    import shutil

    p = params(CIRCLE, MLP)
    p.update(dataset=["circle"], k=[1, 4], seed=[0, 1], circle=p.pop("d"))
    for key, value in yaml.safe_load((ROOT / "params.yaml").read_text()).items():
        if key not in p and not (isinstance(value, dict) and "data" in value):
            p[key] = value  # the stage sections
    p["theory"].update(classes_fig3=[5], k_max=9, classes_fig4=3)
    repo = tmp / "sweep-repo"
    repo.mkdir()
    for item in ("dvc.yaml", "stages", "src"):
        (shutil.copytree if (ROOT / item).is_dir() else shutil.copy)(ROOT / item, repo / item)
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT / "src"),
        "DVC_NO_ANALYTICS": "1",
    }
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q", "--no-scm"], cwd=repo, env=env, check=True)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "surrogap.cli", "sweep"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds = time.perf_counter() - t0
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"sweep: exit {proc.returncode}\n{proc.stderr[-4000:]}")
    workers = proc.stdout.splitlines()[0]
    if f"{n_gpu} local worker" not in workers:
        raise RuntimeError(f"expected one worker per GPU ({n_gpu}): {workers!r}")
    status = subprocess.run(
        [*dvc, "status", "--json"], cwd=repo, env=env, capture_output=True, text=True
    )
    if status.stdout.strip() != "{}":
        raise RuntimeError(f"dvc status after the sweep is not clean: {status.stdout[:2000]}")
    devices, visible, losses = set(), set(), []
    for run in sorted((repo / "data/pretrain/circle").glob("k*/s*")):
        devices.add(json.loads((run / "train_info.json").read_text())["device"])
        losses += read(run)["losses"][-1:]
        log = repo / "data/sweep" / f"pretrain@circle-{run.parent.name[1:]}.log"
        header = log.read_text().splitlines()[0]
        visible.add(header.rsplit("CUDA_VISIBLE_DEVICES=", 1)[1].rstrip(")"))
    if devices != {"cuda"}:
        raise RuntimeError(f"pretrain ran on {devices}, expected cuda only")
    if n_gpu >= 2 and len(visible) < 2:
        raise RuntimeError(f"the 4 pretrain runs all saw CUDA_VISIBLE_DEVICES={visible}")
    print(f"sweep: pretrain runs saw CUDA_VISIBLE_DEVICES in {sorted(visible)}", flush=True)
    return {"seconds": seconds, "losses": losses, "world": 1, "backend": None}


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to check")
        return 1
    n_gpu = torch.cuda.device_count()
    print(
        f"torch {torch.__version__}, {n_gpu} x {torch.cuda.get_device_name(0)}, "
        f"bf16 supported: {torch.cuda.is_bf16_supported()}, NCCL: {torch.distributed.is_nccl_available()}"
    )
    failures = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        checks = [
            ("mlp-fp32", lambda: in_process(tmp, "mlp-fp32", params(CIRCLE, MLP))),
            (
                "mlp-bf16",
                lambda: in_process(tmp, "mlp-bf16", params(CIRCLE, MLP, precision="bf16")),
            ),
            (
                "mlp-fp16",
                lambda: in_process(tmp, "mlp-fp16", params(CIRCLE, MLP, precision="fp16")),
            ),
            (
                "resnet18-bf16-lars",
                lambda: in_process(
                    tmp,
                    "resnet18-bf16-lars",
                    params(
                        DIGITS,
                        RESNET,
                        optimizer="lars",
                        lr=0.3,
                        lr_scaling="linear",
                        precision="bf16",
                        batch_size=128,
                        normalize=False,
                    ),
                ),
            ),
            (
                "ddp-1gpu-nccl-bf16",
                lambda: under_torchrun(tmp, "ddp1", params(CIRCLE, MLP, precision="bf16"), 1),
            ),
        ]
        if n_gpu >= 2:
            checks.append(
                (
                    "ddp-2gpu-syncbn-resnet18",
                    lambda: under_torchrun(
                        tmp, "ddp2", params(DIGITS, RESNET, precision="bf16", batch_size=128), 2
                    ),
                )
            )
        checks.append((f"sweep-{n_gpu}gpu-workers", lambda: sweep_on_gpus(tmp, n_gpu)))
        for name, fn in checks:
            try:
                r = fn()
                ok = all(x == x and abs(x) < 1e6 for x in r["losses"])
                print(
                    f"{'ok  ' if ok else 'FAIL'} {name:28s} {r['seconds']:7.1f} s  world={r['world']} "
                    f"backend={r['backend']}  train loss per eval: {r['losses']}",
                    flush=True,
                )
                if not ok:
                    failures.append(name)
            except Exception as exc:  # report every check, then fail
                print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
                failures.append(name)
    t0 = time.perf_counter()
    rc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            str(ROOT / "tests" / "test_distributed.py"),
            "-k",
            "cuda or nccl",
        ],
        cwd=ROOT,
    ).returncode
    print(f"GPU tests of tests/test_distributed.py: exit {rc} in {time.perf_counter() - t0:.1f} s")
    if rc != 0:
        failures.append("pytest")
    print("all GPU checks passed" if not failures else f"FAILED: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
