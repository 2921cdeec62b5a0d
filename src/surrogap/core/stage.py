"""The one pattern of every `stages/<name>.py`: parse the command line, run the body, and
turn a user error into one line on stderr and exit status 2.

    def main(argv=None) -> int:
        p = stage.parser("probe", __doc__)
        p.add_argument(...)
        return stage.run("probe", p, lambda args: probe.run(...), argv)

Errors and exit statuses are :func:`stage_main`'s; a Ctrl-C while the modules load is one
line too (importing this module installs `errors.quiet_interrupt_hook`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from surrogap.core import errors

# first, before the heavier imports: a Ctrl-C while they load is one line too
errors.quiet_interrupt_hook(f"stage {Path(sys.argv[0]).stem}")

from surrogap.core import instance, io, progress, schema  # noqa: E402
from surrogap.core.argtypes import (  # noqa: E402  (the stages' types)
    Parser,
    integer,
    positive_number,
    refuse_overlap,
)
from surrogap.core.argtypes import output_path as _output_path  # noqa: E402
from surrogap.core.config import clip, load_params  # noqa: E402
from surrogap.core.errors import UserError  # noqa: E402

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
    (:func:`pin_numeric_threads`) inside the one error boundary
    (`surrogap.core.errors.boundary`): a bad argument, a UserError or an input file that
    cannot be read (OSError) is one line ``stage <name>: <message>`` and exit status 2; any
    other exception is a bug and keeps its traceback."""
    started = time.perf_counter()
    pin_numeric_threads()

    def work() -> int:
        body()
        progress.report(started)
        return 0

    # surrogap.core.io turns failed writes into UserErrors: an OSError here is mostly a read
    return errors.boundary(
        f"stage {name}",
        work,
        say=lambda exc: f"stage {name}: {message(exc)}",
        on_other=lambda exc: f"stage {name}: {message(exc)}",
    )


def output_path(folder: bool = False):
    """The type of a stage's output option: no symlink, FIFO, device or socket there
    (checked when parsed); its parent folder is checked by `run` once `--params` is known
    (`check_outputs`)."""
    return _output_path(folder=folder, project=False)  # check_outputs finds its output_folder


def check_outputs(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every output option of `p` (typed `output_path`) writable, a missing parent folder
    only inside the project: the folder of the params file (``--params``)."""
    root = Path(getattr(args, "params", None) or "params.yaml").absolute().parent
    for action in p._actions:
        folder = getattr(action.type, "output_folder", None)
        value = getattr(args, action.dest, None)
        if folder is None or value is None:
            continue
        try:
            io.check_target(value, folder=folder, root=root)
        except UserError as exc:
            raise UserError(f"argument {action.option_strings[0]}: {exc}") from None
    refuse_overlap(p, args)


def run(
    name: str,
    p: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse `argv` with `p` and run `body(args)`, both inside the one error boundary."""

    def parsed() -> None:
        args = p.parse_args(argv)
        check_outputs(p, args)
        body(args)

    return stage_main(name, parsed)


# the help of each path option of the matrix stages (their names: schema.stage_paths)
PATH_HELP = {
    "data": "the prepared dataset's folder (data/prepared/<dataset>, s<seed>/ inside)",
    "models": "the (dataset, K) group's folder of pretrain's runs",
    "features": "the (dataset, K) group's features folder",
    "checkpoints": "the group's resumable checkpoint folder, s<seed>/ inside (kept until DVC "
    "records the output)",
    "root": "downloads and raw files",
    "out": "the instance's output folder (dvc.yaml's out), s<seed>/ inside",
}


@dataclass(frozen=True)
class Job:
    """What one instance of a matrix stage works on: the params (read once), the instance's
    values and its paths by option name, in schema.stage_paths' order."""

    params: dict
    dataset: str
    k: int | None
    lr: float | None
    paths: dict[str, Path]

    def call(self, run: Callable) -> None:
        """`run(params, dataset, k, *paths, lr=lr)`, a pipeline stage's run (prepare's:
        `run(params, dataset, *paths)`)."""
        if self.k is None:
            return run(self.params, self.dataset, *self.paths.values())
        return run(self.params, self.dataset, self.k, *self.paths.values(), lr=self.lr)


def matrix_stage(
    script: str,
    doc: str | None,
    body: Callable[[Job, argparse.Namespace], None],
    argv: Sequence[str] | None = None,
    options: Callable[[Parser], None] = lambda p: None,
) -> int:
    """The command line of a matrix stage's script (`prepare`, `pretrain`, `extract`,
    `probe`): `--dataset`, `--k` and `--lr` (the instance; `prepare` has a dataset only),
    one option per path of :func:`surrogap.core.schema.stage_paths` (``out`` is the output
    folder), and what `options` adds (optional, by hand only). Then `body(job, args)`.

    By hand (``--dataset`` given) `--k` and every path must be given too. Under DVC (no
    option given) the instance comes from DVC_STAGE (:func:`surrogap.core.instance.current`)
    and every path from stage_paths: dvc.yaml's `cmd` carries no params value."""
    p = parser(script, doc)
    p.add_argument("--dataset", help="a dataset section of params.yaml (default: DVC_STAGE's)")
    keyed = script != "prepare"
    if keyed:
        p.add_argument("--k", type=integer(1, "k"), help="negatives per anchor")
        p.add_argument(
            "--lr",
            type=positive_number("lr"),
            help="an lr of the grid (default: the section's train.lr)",
        )
    paths = list(schema.stage_paths(script, "d", 1))
    for name in paths:
        kind = output_path(folder=True) if name == "out" else Path
        p.add_argument(f"--{name}", type=kind, help=PATH_HELP[name])
    before = {a.dest for a in p._actions}
    options(p)
    optional = ["lr", *(a.dest for a in p._actions if a.dest not in before)] if keyed else []
    required = ["k", *paths] if keyed else paths

    def resolve(a: argparse.Namespace) -> Job:
        if a.dataset is not None:
            missing = [f"--{n.replace('_', '-')}" for n in required if getattr(a, n) is None]
            if missing:
                p.error(f"the following arguments are required: {', '.join(missing)}")
            got = {n: getattr(a, n) for n in paths}
            k, lr = (a.k, a.lr) if keyed else (None, None)
            return Job(load_params(a.params), a.dataset, k, lr, got)
        given = [n for n in (*required, *optional) if getattr(a, n) is not None]
        if given:
            p.error(
                f"--{given[0].replace('_', '-')} needs --dataset and the other options of a "
                "run by hand"
            )
        params = load_params(a.params)
        inst = instance.current(params, script)
        lr = None if inst.lr is None else float(inst.lr)  # as --lr's type reads it
        found = {n: Path(path) for n, path in inst.paths().items()}
        if "out" in found:  # refused before any work, not at the write
            io.check_target(found["out"], folder=True)
        return Job(params, inst.dataset, inst.k, lr, found)

    return run(script, p, lambda a: body(resolve(a), a), argv)
