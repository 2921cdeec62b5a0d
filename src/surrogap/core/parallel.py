"""Run one function per seed in forked processes, for the stages that handle every seed of
their (dataset, K) in one instance (pretrain, probe).

Each stage computes on one thread (surrogap.core.stage.pin_numeric_threads), so a seed's
bytes do not depend on how many seeds run at once: this only uses the cores a serial
`dvc repro` leaves idle. The children are forked, so they start with the parent's imports
(torch: seconds each) and its one-thread settings, and the function needs no pickling; the
parent must not have used a GPU or a thread pool before (the callers decide the count)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from surrogap.core import config
from surrogap.core.errors import UserError

# the processes a stage may run its seeds in at once (default: the cores); `surrogap
# sweep` sets it to the cores per worker, so two workers on two cores start two
# processes, not four
JOBS_VARIABLE = "SURROGAP_STAGE_JOBS"


def stage_jobs(environ: Mapping[str, str] | None = None) -> int:
    """SURROGAP_STAGE_JOBS, or the number of cores; one line for a value that is no
    integer >= 1."""
    env = os.environ if environ is None else environ
    text = env.get(JOBS_VARIABLE, "")
    if not text:
        return os.cpu_count() or 1
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(f"{JOBS_VARIABLE} is {config.shown(text)}, allowed: an integer >= 1")
    return n


def _child(fn: Callable[[Any], None], item: Any, send) -> None:
    try:
        fn(item)
    except BaseException as exc:  # the parent raises it again, as one line
        send.send((type(exc).__name__, str(exc)))
        raise SystemExit(1) from None
    finally:
        send.close()


def each(items: Sequence, fn: Callable[[Any], None], jobs: int) -> None:
    """fn(item) for every item, in at most `jobs` forked processes at once (in this process,
    in order, for jobs <= 1 or a single item). The first failure stops the rest (the running
    ones are terminated) and is raised again: a UserError as itself, anything else as a
    RuntimeError naming its type."""
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            fn(item)
        return
    ctx = multiprocessing.get_context("fork")
    pending, running = list(items), []
    error = None
    try:
        while (pending and error is None) or running:
            while pending and error is None and len(running) < jobs:
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(fn, pending.pop(0), send), daemon=True)
                proc.start()
                send.close()
                running.append((proc, recv))
            multiprocessing.connection.wait([proc.sentinel for proc, _ in running])
            still = []
            for proc, recv in running:
                if proc.is_alive():
                    still.append((proc, recv))
                    continue
                proc.join()
                try:  # a failed child sent (type, text); one that succeeded closed the pipe
                    message = recv.recv() if recv.poll() else None
                except EOFError:
                    message = None
                recv.close()
                if proc.exitcode != 0 and error is None:
                    error = message or ("RuntimeError", f"a process died (exit {proc.exitcode})")
            running = still
            if error is not None:
                for proc, _ in running:
                    proc.terminate()
    finally:
        for proc, _ in running:
            proc.terminate()
            proc.join()
    if error is not None:
        kind, text = error
        if kind == "KeyboardInterrupt":
            raise KeyboardInterrupt
        raise UserError(text) if kind == "UserError" else RuntimeError(f"{kind}: {text}")
