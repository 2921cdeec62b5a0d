"""`surrogap sweep`: the stale part of the DVC pipeline, run in parallel on Dask.

DVC decides what is stale and records every result; Dask (`dask.distributed`) only runs
stage commands. How the client settles each stage as `dvc repro` does (unchanged, restored
from the run cache, or run on a worker and recorded serially), and what a failure, a dead
worker or Ctrl-C does: docs/SCALING.md ("Parallel sweeps on Dask"). Beyond `dvc repro`:

* DVC's repository lock is held from start to end, never released while commands run, so a
  DVC command started meanwhile fails at once instead of losing its work (`ops.dvcstate`);
  while a command runs, its stage's deps and outs hold DVC's read/write lock too;
* the dvc.lock entries of stages that finish close together are written in one rewrite of
  the file (`recording.LockWriter`), where `dvc repro` rewrites it after every stage;
* every planned out is listed in its `.gitignore` first, in the order a serial `dvc repro`
  records them: DVC hashes a folder dep with the `.gitignore` files in it, so the hashes
  agree whatever order stages finish in;
* a command's stdout and stderr go to `data/sweep/<stage>.log`; on Ctrl-C every task
  already finished is recorded, as if collected (`recording.finished_uncollected`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

from surrogap.core import config, dvclock
from surrogap.core.argtypes import float_value, int_value
from surrogap.core.errors import UserError
from surrogap.ops import dvcstate
from surrogap.ops.dvcstate import _one_line, stage_rwlock
from surrogap.ops.recording import LockWriter, Settled, finished_uncollected
from surrogap.ops.workers import (
    CONNECT_TIMEOUT,
    MAX_RETRIES,
    WORKERS_PER_CORE,
    check_scheduler,
    dask_client,
    max_workers,
    parse_gpus,
    plan_workers,
    run_command,
)

LOG_DIR = Path("data") / "sweep"
# set in every stage command: the stages' progress bars (tqdm) stay off, one line per
# finished stage is printed here instead
STAGE_ENV = {"TQDM_DISABLE": "1"}


# --------------------------------------------------------------------------- client side
@dataclass
class Outcome:
    stage: str
    status: str  # ran, restored, unchanged, failed, skipped
    seconds: float = 0.0
    message: str = ""
    log: str = ""


@dataclass
class SweepResult:
    outcomes: list[Outcome] = field(default_factory=list)
    planned: int = 0  # stage instances in the plan

    def with_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]


def sweep(
    repo,
    targets: Sequence[str],
    client,
    echo: Callable[[str], None] = print,
    retries: int = 2,
    run_cache: bool = True,
    result: SweepResult | None = None,
) -> SweepResult:
    """Reproduce `targets` (default: every stage of dvc.yaml) in the DVC `repo` (opened and
    locked: `dvcstate.open_repo`, `dvcstate.holding_lock`), running stale stages' commands
    on `client`'s workers; `result` (filled as stages settle) tells what was done when the
    sweep is interrupted."""
    import logging

    from distributed import as_completed
    from dvc.dvcfile import PROJECT_FILE
    from dvc.exceptions import DvcException
    from dvc.repo.reproduce import _reproduce_stage, collect_stages, get_active_graph, plan_repro
    from dvc.stage.cache import RunCacheNotFoundError
    from dvc.stage.run import _enforce_cmd_list

    # DVC's own per-stage messages ("Updating lock file") would interleave with ours
    logging.getLogger("dvc").setLevel(logging.WARNING)
    root = Path(repo.root_dir)
    held = Settled(repo)  # DVC's repository lock is held by the caller throughout
    result = SweepResult() if result is None else result
    inflight: dict = {}  # {future: (stage, log)} until its stage is settled
    settled: set = set()  # stages whose outcome is reported
    locks: dict = {}
    writer: LockWriter | None = None
    scm = ExitStack()
    try:
        scm.enter_context(repo.scm_context())  # .gitignore changes, as `dvc repro` reports them
        with held:
            try:
                stages = collect_stages(repo, list(targets) or [PROJECT_FILE])
                graph = get_active_graph(repo.index.graph)
                steps = plan_repro(graph, stages)
                result.planned = len(steps)
            except DvcException as exc:
                raise UserError(f"surrogap sweep: {_one_line(exc)}") from None
            # DVC lists each out in its folder's .gitignore when it first records it, and a
            # folder dep's hash covers that file: listed now in plan order, the entries (and
            # so the hashes) are those of a serial `dvc repro`, whatever order stages finish in
            for out in (o for stage in steps for o in stage.outs if o.use_scm_ignore):
                with suppress(DvcException, OSError):
                    Path(out.fs_path).parent.mkdir(parents=True, exist_ok=True)
                    out.ignore()
        order = {s: i for i, s in enumerate(steps)}
        writer = LockWriter(order)
        upstream = {s: list(graph.successors(s)) for s in steps}
        downstream = {s: [d for d in graph.predecessors(s) if d in order] for s in steps}
        waiting = {s: len(upstream[s]) for s in steps}
        blocked_by: dict = {}
        total = len(steps)
        done = 0
        width = len(str(total))

        def report(o: Outcome) -> None:
            nonlocal done
            done += 1
            result.outcomes.append(o)
            if o.status == "unchanged":
                return
            tail = {
                "ran": f"ran in {o.seconds:.1f} s",
                "restored": "restored from the run cache",
                "failed": f"FAILED: {o.message}" + (f" (log: {o.log})" if o.log else ""),
                "skipped": f"skipped: {o.message}",
            }[o.status]
            echo(f"[{done:>{width}}/{total}] {o.stage}: {tail}")

        def settle(stage, outcome: Outcome, ready: list) -> None:
            settled.add(stage)
            report(outcome)
            failed = outcome.status in ("failed", "skipped")
            for d in downstream[stage]:
                if failed:
                    blocked_by.setdefault(d, blocked_by.get(stage, stage))
                waiting[d] -= 1
                if waiting[d] == 0:
                    ready.append(d)

        def finished(future, stage, log: str, timeout: float | None) -> Outcome:
            """A finished task's outcome, its stage recorded when its command succeeded."""
            name = stage.addressing
            try:
                out = future.result(timeout=timeout)
            except Exception as exc:  # KilledWorker, CommandKilled after the retries
                return Outcome(name, "failed", message=_one_line(exc), log=log)
            if out["rc"] != 0:
                message = out["line"] or f"exit status {out['rc']}"
                return Outcome(name, "failed", out["seconds"], message, log)
            try:
                writer.record(stage)
            except (DvcException, OSError) as exc:
                return Outcome(name, "failed", message=_one_line(exc), log=log)
            return Outcome(name, "ran", out["seconds"], log=log)

        def collect(future, ready: list, timeout: float | None = None) -> None:
            """A finished task's stage recorded (or failed); inflight keeps it until then."""
            stage, log = inflight[future]
            lock = locks.pop(stage, None)
            if lock is not None:
                lock.close()
            try:
                settle(stage, finished(future, stage, log, timeout), ready)
            finally:
                if stage in settled:
                    inflight.pop(future, None)

        def prepare(stage) -> Outcome | None:
            """What `dvc repro` does with a stage before its command: the stage's outcome, or
            None when its command is to run (outs removed, its rwlock held in `locks`)."""
            name = stage.addressing
            if stage in blocked_by:
                return Outcome(name, "skipped", message=f"{blocked_by[stage].addressing} failed")
            try:
                if not stage.cmd or stage.frozen or stage.is_import:
                    # nothing to run in parallel: DVC's own per-stage reproduce
                    writer.flush()
                    ran = _reproduce_stage(stage, upstream=upstream[stage])
                    return Outcome(name, "ran" if ran else "unchanged")
                if not stage.changed(False, upstream[stage]):
                    return Outcome(name, "unchanged")
                stage.remove_outs(ignore_remove=False, force=False)
                try:
                    repo.stage_cache.restore(stage, run_cache=run_cache)
                except RunCacheNotFoundError:
                    stage.save_deps()
                else:
                    writer.record(stage)
                    return Outcome(name, "restored")
                # after DVC's own rwlocked calls, which would see it as a blocker
                lock = ExitStack()
                lock.enter_context(stage_rwlock(repo, stage))
            except (DvcException, OSError) as exc:
                return Outcome(name, "failed", message=_one_line(exc))
            locks[stage] = lock
            return None

        ready = [s for s in steps if waiting[s] == 0]
        futures = as_completed()
        while ready or inflight:
            with held:
                while ready:
                    ready.sort(key=order.__getitem__)
                    stage = ready.pop(0)
                    outcome = prepare(stage)
                    if outcome is not None:
                        settle(stage, outcome, ready)
                        continue
                    name = stage.addressing
                    log = LOG_DIR / f"{name.replace('/', '_').replace(':', '_')}.log"
                    (root / log).unlink(missing_ok=True)
                    env = {**STAGE_ENV, "DVC_ROOT": repo.root_dir, "DVC_STAGE": name}
                    future = client.submit(
                        run_command,
                        _enforce_cmd_list(stage.cmd),
                        str(Path(stage.wdir).resolve()),
                        env,
                        str(root / log),
                        key=f"sweep-{name}-{time.time_ns()}",
                        pure=False,
                        retries=retries,
                    )
                    inflight[future] = (stage, str(log))
                    futures.add(future)
            if not inflight:
                break
            future = next(futures)
            with held:
                collect(future, ready)
                if writer.due():
                    writer.flush()
        with held:
            writer.flush()
    except KeyboardInterrupt:
        # the first Ctrl-C: nothing more is submitted and what runs is cancelled (below),
        # but a command that already finished did its work: it is recorded as a collected
        # one is (Dask had it done, the client had not yet taken it), then dvc.lock written
        if writer is not None and inflight:
            with suppress(Exception), held:
                for future in finished_uncollected(inflight, settled):
                    collect(future, [], timeout=30)
                writer.flush()
        raise
    finally:
        if writer is not None and writer.pending:  # stopped early: keep what finished
            with suppress(Exception), held:
                writer.flush()
        scm.close()
        for lock in locks.values():
            lock.close()
        for future in inflight:
            future.cancel()
    return result


# --------------------------------------------------------------------------- command line
def add_subparser(sub) -> None:
    """`surrogap sweep` in the `surrogap` command line."""
    p = sub.add_parser(
        "sweep",
        help="reproduce the stale part of the DVC pipeline in parallel on Dask",
        description="Like `dvc repro [targets]`, with the stale stages' commands run in "
        "parallel on a Dask cluster (local by default) and every result recorded by DVC: "
        "afterwards `dvc status` is clean and dvc.lock is what `dvc repro` would write.",
    )
    p.add_argument("targets", nargs="*", help="stages or dvc.yaml files (default: all)")
    p.add_argument(
        "-j",
        "--jobs",
        type=int_value(
            "jobs",
            1,
            max_workers(),
            f"an integer in 1..{max_workers()} ({WORKERS_PER_CORE} local workers per core, "
            "each a process running one stage)",
        ),
        help="local workers (default: one per GPU, else the number of cores; at most "
        f"{WORKERS_PER_CORE} per core)",
    )
    p.add_argument(
        "--gpus",
        type=parse_gpus,
        default=None,
        help="auto (default: CUDA_VISIBLE_DEVICES or nvidia-smi), none, or ids like 0,1: "
        "one local worker per GPU, each seeing only its GPU",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler (e.g. tcp://host:8786, or one a dask-jobqueue "
        "cluster started) instead of a local cluster; its workers must see this "
        "workspace at the same path",
    )
    p.add_argument(
        "--connect-timeout",
        type=_connect_timeout,
        default=CONNECT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to try reaching --scheduler (default {CONNECT_TIMEOUT:g} s)",
    )
    p.add_argument(
        "--retries",
        type=int_value("retries", 0, MAX_RETRIES, f"an integer in 0..{MAX_RETRIES}"),
        default=2,
        help="times a task is retried when its worker dies or its command is killed "
        f"(default 2, at most {MAX_RETRIES})",
    )
    p.add_argument(
        "--no-run-cache",
        action="store_true",
        help="run stale stages even when DVC's run cache holds their results",
    )
    p.set_defaults(func=main)


def _find_root() -> Path:
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Path(Repo.find_root())
    except NotDvcRepoError:
        raise UserError(
            f"surrogap sweep: {os.getcwd()!r} is not inside a DVC repository (run it where dvc.yaml is)"
        ) from None


MAX_CONNECT_TIMEOUT = 3600.0  # an hour: 1e308 waited for ever


def _connect_timeout(text: str) -> float:
    value = float_value("connect timeout", minimum=0.1)(text)
    if value > MAX_CONNECT_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"connect timeout must be <= {MAX_CONNECT_TIMEOUT:g}, got {text!r}"
        )
    return value


def check_inputs(root: Path) -> None:
    """params.yaml's sweep lists and dvc.lock, checked before DVC reads them: DVC itself ends
    `k: 4` in a traceback ("'Value' object is not iterable"), and a lock cut by an
    interrupted `dvc repro` in ``validation failed``; here each is one line with its fix."""
    try:  # a missing or dangling params.yaml too: DVC's own message is a traceback
        config.grid(config.load_params(root / "params.yaml"))
        dvclock.read(root)
    except UserError as exc:
        raise UserError(f"surrogap sweep: {exc}") from None


def _on_sigint(signum, frame) -> None:
    """The first Ctrl-C stops the sweep (KeyboardInterrupt); more are ignored while the
    cluster stops and what finished is recorded."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _interrupted(result: SweepResult) -> str:
    recorded = len(result.with_status("ran")) + len(result.with_status("restored"))
    unchanged = len(result.with_status("unchanged"))
    left = max(0, result.planned - recorded - unchanged)
    return (
        f"surrogap sweep: interrupted; {recorded} stage{'s' * (recorded != 1)} recorded, "
        f"{unchanged} unchanged, {left} not run; the next surrogap sweep or dvc repro "
        "resumes (a stopped pretrain from its checkpoint)"
    )


def main(args: argparse.Namespace) -> int:
    if args.scheduler is not None and (args.jobs is not None or args.gpus is not None):
        raise UserError(
            "surrogap sweep: -j/--gpus size the local cluster; with --scheduler the running "
            "cluster's workers are used"
        )
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    result = SweepResult()
    try:
        root = _find_root()
        check_inputs(root)
        if args.scheduler is not None:
            check_scheduler(args.scheduler)  # before the line that names it
        repo = dvcstate.open_repo(root)
        try:
            with dvcstate.holding_lock(repo):
                plan = None if args.scheduler else plan_workers(args.jobs, args.gpus)
                where = args.scheduler or plan.describe
                print(f"surrogap sweep: {where}; logs in {LOG_DIR}/", flush=True)
                t0 = time.perf_counter()
                with dask_client(args.scheduler, plan, args.retries, args.connect_timeout) as c:
                    sweep(
                        repo,
                        args.targets,
                        c,
                        echo=lambda line: print(line, flush=True),
                        retries=args.retries,
                        run_cache=not args.no_run_cache,
                        result=result,
                    )
        finally:
            repo.close()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(_interrupted(result), file=sys.stderr, flush=True)
        return 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    counts = {s: len(result.with_status(s)) for s in ("ran", "restored", "unchanged")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    print(f"surrogap sweep: {summary} in {time.perf_counter() - t0:.1f} s", flush=True)
    failed = result.with_status("failed")
    skipped = result.with_status("skipped")
    if failed:
        print(
            f"surrogap sweep: {len(failed)} stage{'s' * (len(failed) != 1)} failed: "
            f"{', '.join(o.stage for o in failed)}; {len(skipped)} skipped",
            file=sys.stderr,
        )
        return 1
    return 0
