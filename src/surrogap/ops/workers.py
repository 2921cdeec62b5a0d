"""The worker side of `surrogap sweep`: one stage command run in a process of its own on a
Dask worker (killed with its worker, retried by Dask when a signal ended it), and the
Dask cluster the client plans (local processes, GPUs one per worker, or a scheduler).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from surrogap.core import io
from surrogap.core.errors import UserError
from surrogap.core.parallel import JOBS_VARIABLE

CONNECT_TIMEOUT = 5.0  # seconds to reach a --scheduler (Dask's own default is 30)
# Each local worker is two processes of its own (a nanny and the worker, about 150 MB
# before its stage runs) running one stage command at a time; the stage commands are
# CPU- or GPU-bound, so workers beyond a few per core only queue for the cores while
# their memory adds up (`-j 100000` used to start a cluster until the machine gave out).
WORKERS_PER_CORE = 4
# a task is rerun at most this often when its worker dies or its command is killed: a
# command killed more often than that fails on each try (the OOM killer), not by chance
MAX_RETRIES = 10


def max_workers() -> int:
    """The most local workers (`-j`, or GPU ids given to --gpus) this machine is given:
    WORKERS_PER_CORE per core."""
    return WORKERS_PER_CORE * (os.cpu_count() or 1)


# --------------------------------------------------------------------------- worker side
class CommandKilled(RuntimeError):
    """A stage command ended by a signal (e.g. its machine's OOM killer): Dask retries it."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child after fork
    """Linux: the command gets SIGKILL when the worker process that started it dies, so a
    killed worker leaves no orphan command writing the outputs that its retry rewrites."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_command(commands: Sequence[str], wdir: str, env: dict[str, str], log: str) -> dict:
    """Run a stage's commands in `wdir` as DVC runs them (its shell, without rc files),
    stdout and stderr appended to `log`. Executes on a Dask worker.

    Returns {"rc", "seconds", "line" (the last non-empty output line), "host"}; raises
    CommandKilled when a command dies of a signal, so that the task is retried.
    """
    from dvc.stage.run import _make_cmd, get_executable
    from dvc.utils import fix_env

    run_env = fix_env(None)
    run_env.update(env)
    executable = get_executable()
    log_path = Path(log)
    io.check_target(log_path)  # appended to, not replaced: never a FIFO, device or link
    log_path.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    t0 = time.perf_counter()
    rc = 0
    with open(log_path, "ab") as out:
        out.write(
            f"# {time.strftime('%Y-%m-%d %H:%M:%S')} on {host} (pid {os.getpid()}, "
            f"CUDA_VISIBLE_DEVICES={run_env.get('CUDA_VISIBLE_DEVICES', '')})\n".encode()
        )
        for cmd in commands:
            out.write(f"> {cmd}\n".encode())
            out.flush()
            proc = subprocess.run(
                _make_cmd(executable, cmd),
                cwd=wdir,
                env=run_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                close_fds=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                check=False,
            )
            rc = proc.returncode
            if rc != 0:
                break
    seconds = time.perf_counter() - t0
    line = _last_line(log_path)
    if rc < 0:
        raise CommandKilled(f"killed by signal {-rc} on {host}: {line}")
    return {"rc": rc, "seconds": seconds, "line": line, "host": host}


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    return next((x.strip() for x in reversed(tail.splitlines()) if x.strip()), "")


# --------------------------------------------------------------------------- cluster
def visible_gpus() -> list[str]:
    """The GPU ids this machine shows (CUDA_VISIBLE_DEVICES, else `nvidia-smi`), no torch."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [x.strip() for x in out.stdout.splitlines() if x.strip()] if out.returncode == 0 else []


def parse_gpus(text: str) -> list[str] | None:
    """`auto` -> None (detect), `none` -> [], `0,2` -> ["0", "2"]."""
    if text == "auto":
        return None
    if text == "none":
        return []
    ids = [x.strip() for x in text.split(",")]
    if not ids or not all(x.isdigit() for x in ids):
        raise argparse.ArgumentTypeError(
            f"--gpus must be auto, none or comma-separated GPU ids like 0,1, got {text[:80]!r}"
        )
    if len(ids) > max_workers():
        raise argparse.ArgumentTypeError(
            f"--gpus names {len(ids)} GPUs (one local worker each), allowed: at most "
            f"{max_workers()} ({WORKERS_PER_CORE} per core), got {text[:80]!r}"
        )
    return ids


@dataclass(frozen=True)
class WorkerPlan:
    """The local cluster: one environment per worker (one thread each)."""

    envs: list[dict[str, str]]

    @property
    def describe(self) -> str:
        gpus = [e["CUDA_VISIBLE_DEVICES"] for e in self.envs if "CUDA_VISIBLE_DEVICES" in e]
        n = len(self.envs)
        workers = f"{n} local worker{'s' * (n != 1)}"
        return f"{workers}, GPU {', '.join(gpus)}" if gpus else f"{workers} (CPU)"


def plan_workers(jobs: int | None, gpus: list[str] | None) -> WorkerPlan:
    """With GPUs: one worker per GPU (or `jobs` workers over them in turn), each seeing
    only its GPU. Without: `jobs` workers (default: the number of cores); OMP_NUM_THREADS
    and SURROGAP_STAGE_JOBS split the cores among them unless they are set already."""
    gpus = visible_gpus() if gpus is None else gpus
    if gpus:
        n = jobs or len(gpus)
        return WorkerPlan([{"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} for i in range(n)])
    cores = os.cpu_count() or 1
    n = jobs or cores
    share = str(max(1, cores // n))
    env = {} if "OMP_NUM_THREADS" in os.environ else {"OMP_NUM_THREADS": share}
    # the processes a pretrain instance trains its seeds in (surrogap.pipeline.pretrain.jobs)
    if JOBS_VARIABLE not in os.environ:
        env[JOBS_VARIABLE] = share
    return WorkerPlan([dict(env) for _ in range(n)])


def dask_setup(worker=None) -> None:
    """Run in each local worker process as it starts (Dask's `preload`): Ctrl-C at the
    terminal reaches the whole process group, and a worker that took it died with
    tracebacks; the sweep's client alone handles it and stops the cluster. The stage
    commands inherit it, and die with their worker (`_die_with_parent`)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _no_address(scheduler: str, exc: ValueError) -> UserError:
    return UserError(
        f"surrogap sweep: --scheduler {scheduler!r} is no Dask scheduler address ({exc}); "
        "give one like tcp://host:8786"
    )


def check_scheduler(scheduler: str) -> None:
    """A one-line UserError where `scheduler` is no Dask address (``garbage``: no port),
    checked without connecting or resolving a host name."""
    from distributed.comm import get_address_host_port

    try:
        get_address_host_port(scheduler)
    except ValueError as exc:
        raise _no_address(scheduler, exc) from None
    except Exception:  # another transport (inproc, ucx): the connection says
        pass


def _connect(scheduler: str, timeout: float):
    """A `distributed.Client` on the scheduler at `scheduler`, or one line."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=timeout)
    except ValueError as exc:  # distributed's address parser
        raise _no_address(scheduler, exc) from None
    except (OSError, TimeoutError) as exc:
        raise UserError(
            f"surrogap sweep: cannot reach the Dask scheduler at {scheduler!r} within "
            f"{timeout:g} s ({type(exc).__name__}); is it running? (--connect-timeout "
            "waits longer)"
        ) from None


@contextmanager
def dask_client(
    scheduler: str | None,
    plan: WorkerPlan | None,
    retries: int,
    connect_timeout: float = CONNECT_TIMEOUT,
):
    """A `distributed.Client`: on the running cluster at `scheduler` (reached within
    `connect_timeout` seconds), else on a local cluster of `plan` (worker processes under
    nannies, which restart a worker that dies)."""
    import logging

    import dask
    from distributed import Client, Nanny, Scheduler, SpecCluster

    # a task whose worker dies is moved to another worker up to `retries` times
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        if scheduler is not None:
            with _connect(scheduler, connect_timeout) as client:
                yield client
            return
        assert plan is not None
        workers = {
            f"w{i}": {
                "cls": Nanny,
                "options": {
                    "nthreads": 1,
                    "env": env,
                    # CRITICAL: a worker whose heartbeat meets the scheduler closing at the
                    # end logs an ERROR with a traceback; a stage's own failure is the
                    # sweep's line and its log, a dead worker the nanny's restart
                    "silence_logs": logging.CRITICAL,
                    "preload": [__name__],  # dask_setup: Ctrl-C is the client's
                },
            }
            for i, env in enumerate(plan.envs)
        }
        sched = {"cls": Scheduler, "options": {"dashboard_address": None}}
        with (
            SpecCluster(workers=workers, scheduler=sched, silence_logs=logging.CRITICAL) as cluster,
            Client(cluster) as client,
        ):
            yield client
