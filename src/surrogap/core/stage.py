"""The one pattern of every `stages/<name>.py`: parse the command line, run the body, and
turn a user error into one line on stderr and exit status 2.

    def main(argv=None) -> int:
        p = stage.parser("probe", __doc__)
        p.add_argument(...)
        return stage.run("probe", p, lambda args: probe.run(...), argv)

A bad argument (argparse's own complaint), a `UserError` or an input file that cannot be
read (OSError) is one line ``stage <name>: <message>``; any other exception is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from surrogap.core import instance, progress
from surrogap.core.argtypes import Parser, integer, positive_number  # noqa: F401  (the stages' types)
from surrogap.core.config import clip, load_params
from surrogap.core.errors import UserError

# the longest message a stage prints: values are quoted cut short where they are quoted
# (surrogap.core.config.shown); this bounds whatever else a message holds (a long path)
MAX_MESSAGE = 2000


def message(exc: BaseException) -> str:
    """The one-line text of an error: its message with whitespace collapsed, or its type;
    at most MAX_MESSAGE characters (and "...")."""
    if isinstance(exc, OSError):
        where = f"{clip(str(exc.filename), 500)!r}: " if exc.filename else ""
        return f"cannot access {where}{exc.strerror or exc}"
    return clip(" ".join(str(exc).split()), MAX_MESSAGE) or type(exc).__name__


def parser(name: str, doc: str | None, params: bool = True) -> Parser:
    """A stage's parser, with the `--params` option of every stage that reads params."""
    first = (doc or "").strip().splitlines()
    p = Parser(
        prog=f"stages/{name}.py",
        description=first[0] if first else None,
        prog_in_errors=False,  # stage_main prefixes `stage <name>:`
    )
    if params:
        p.add_argument("--params", default="params.yaml", help="the params file")
    return p


# the variables the numeric libraries read when they load (OpenBLAS, MKL, OpenMP: numpy's,
# SciPy's and torch's own copies)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pin_numeric_threads() -> None:
    """One thread for every numeric library of this process, whatever the machine and
    however the stage was started (`dvc repro`, `surrogap sweep`'s workers, by hand): a
    stage's numbers then depend on its inputs alone, not on the core count nor on which
    other seeds ran before in the same process (a multi-threaded BLAS splits a sum by
    thread). The libraries loaded already are limited now (threadpoolctl; torch's intra-op
    pool), those loaded later read the variables. pretrain sets torch's threads again from
    its section's `train.threads` (surrogap.training.train)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def stage_main(name: str, body: Callable[[], None]) -> int:
    """Run a stage body with its numeric libraries on one thread each
    (:func:`pin_numeric_threads`); a UserError, or an input file that cannot be read
    (OSError), is one line on stderr and exit status 2."""
    started = time.perf_counter()
    pin_numeric_threads()
    try:
        body()
    except (UserError, OSError) as exc:
        # surrogap.core.io turns failed writes into UserErrors: an OSError here is mostly a read
        print(f"stage {name}: {message(exc)}", file=sys.stderr)
        return 2
    progress.report(started)
    return 0


def run(
    name: str,
    p: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse `argv` with `p` and run `body(args)`, both inside the one error boundary."""
    return stage_main(name, lambda: body(p.parse_args(argv)))


def instance_params(
    p: argparse.ArgumentParser,
    args: argparse.Namespace,
    script: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
) -> dict:
    """The params of a matrix stage's script, with its instance in `args`.

    By hand (``--dataset`` given) every option of `required` must be given too, as before.
    Under DVC (no option given) the instance comes from DVC_STAGE
    (:func:`surrogap.core.instance.current`) and every path from
    :func:`surrogap.core.schema.stage_paths`: dvc.yaml's `cmd` carries no params value."""
    given = [n for n in ("dataset", *required, *optional) if getattr(args, n) is not None]
    if args.dataset is not None:
        missing = [f"--{n.replace('_', '-')}" for n in required if getattr(args, n) is None]
        if missing:
            p.error(f"the following arguments are required: {', '.join(missing)}")
        return load_params(args.params)
    if given:
        p.error(
            f"--{given[0].replace('_', '-')} needs --dataset and the other options of a run by hand"
        )
    params = load_params(args.params)
    inst = instance.current(params, script)
    args.dataset = inst.dataset
    for name in ("k", "seed"):
        if hasattr(args, name):
            setattr(args, name, getattr(inst, name))
    if hasattr(args, "lr"):
        args.lr = None if inst.lr is None else float(inst.lr)  # as --lr's type reads it
    for name, path in inst.paths().items():
        setattr(args, name, Path(path))
    return params
