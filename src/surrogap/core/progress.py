"""The one line a stage prints when it ends under `dvc repro`: which instance, how long it
took, how far this run is (stage instances done in this `dvc repro` / `dvc exp run`, and
how many are still to run) and how long that run has gone on.

"Done" counts the instances whose command finished in this run: each stage appends its
name to a file of its run (``.dvc/tmp/surrogap-progress/<pid>-<start>``, the DVC process
above it). "To go" counts the instances of the current params that this run has not done
and that must still run by params and dvc.lock alone: no dvc.lock entry, recorded params
other than params.yaml's, or a dependency on the output of one that ran or will run (DVC
decides the rest by hashes, which a stage cannot see while DVC holds the repository: a
code edit shows up when its stage runs; an instance DVC restores from the run cache never
counts as done, and drops out of "to go" once DVC records it).

DVC names the running instance in the environment (DVC_STAGE, DVC_ROOT); outside DVC
nothing is printed. Everything here is best effort: a progress line never fails a stage.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from pathlib import Path

import yaml

from surrogap.core import dvclock, instance
from surrogap.core.config import load_params
from surrogap.core.errors import UserError

MATRIX_REF = re.compile(r"^\$\{(\w+)\}$")
ITEM_REF = re.compile(r"\$\{item\.(\w+)\}")
RUNS_DIR = ".dvc/tmp/surrogap-progress"


def _expand(stages: dict, params: dict) -> dict[str, dict]:
    """Every instance dvc.yaml expands to with `params`' lists: name -> {"deps", "outs",
    "params"} with ``${item.<key>}`` filled in as DVC fills it."""
    found: dict[str, dict] = {}
    for name, stage in stages.items():
        matrix = stage.get("matrix")
        combos: list[tuple[str, dict]] = [(name, {})]
        if matrix:
            axes = {}
            for key, value in matrix.items():
                ref = MATRIX_REF.match(str(value)) if isinstance(value, str) else None
                axes[key] = list(params.get(ref.group(1), []) if ref else value)
            combos = [(f"{name}@{key}", item) for key, item in instance.combinations(axes)]
        for full, item in combos:
            fill = lambda text, item=item: ITEM_REF.sub(  # noqa: E731
                lambda m: instance.to_str(item[m.group(1)]), str(text)
            )
            outs = [*stage.get("outs", []), *stage.get("metrics", [])]
            found[full] = {
                "deps": [fill(d) for d in stage.get("deps", [])],
                "outs": [fill(next(iter(o)) if isinstance(o, dict) else o) for o in outs],
                "params": [fill(k) for k in stage.get("params", []) if isinstance(k, str)],
            }
    return found


def expanded(root: Path) -> dict[str, dict]:
    """The instances of dvc.yaml with the current params.yaml (see :func:`_expand`)."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    return _expand(stages, load_params(root / "params.yaml"))  # as DVC reads it


def planned_instances(root: Path) -> set[str]:
    """The stage instance names dvc.yaml expands to with the current params.yaml lists
    (``name`` or ``name@v1-v2...``, as DVC names matrix instances)."""
    return set(expanded(root))


def recorded_instances(root: Path) -> set[str]:
    """The stage names dvc.lock holds (a UserError naming the fix if it is cut short)."""
    return set(dvclock.read(root) or {})


def _lock_params(root: Path) -> dict[str, dict]:
    """Each dvc.lock entry's recorded params.yaml values (name -> {key: value}); none
    without a dvc.lock, a UserError naming the fix for a cut one."""
    return {
        name: (entry.get("params") or {}).get("params.yaml") or {}
        for name, entry in (dvclock.read(root) or {}).items()
    }


def _value(params: dict, dotted: str):
    value = params
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _overlap(a: str, b: str) -> bool:
    """Paths `a` and `b` are the same, or one lies inside the other."""
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def to_go(root: Path, done: set[str]) -> int:
    """How many instances of the current params this run must still run, by params and
    dvc.lock alone (the module's docstring says what that counts and what it cannot see)."""
    plan = expanded(root)
    params = load_params(root / "params.yaml")
    recorded = _lock_params(root)
    pending = {
        name
        for name, inst in plan.items()
        if name not in done
        and (
            name not in recorded
            or any(recorded[name].get(k) != _value(params, k) for k in inst["params"])
        )
    }
    moving = {*pending, *(done & set(plan))}
    while True:  # everything downstream of what ran or will run runs too
        outs = [o for name in moving for o in plan[name]["outs"]]
        more = {
            name
            for name, inst in plan.items()
            if name not in moving
            and name not in done
            and any(_overlap(d, o) for d in inst["deps"] for o in outs)
        }
        if not more:
            return len(pending)
        moving |= more
        pending |= more


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: state, ppid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _started(pid: int) -> float | None:
    """Seconds since the process `pid` started (Linux /proc), or None."""
    try:
        start_ticks = int(_stat(pid)[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def repro_pid() -> int | None:
    """The nearest `dvc repro` / `dvc exp run` process above this one, or None."""
    pid = os.getppid()
    for _ in range(8):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            parent = int(_stat(pid)[1])
        except (OSError, ValueError, IndexError):
            return None
        words = [w.decode(errors="replace") for w in cmdline]
        if any(w.endswith("dvc") or w == "dvc" for w in words) and (
            "repro" in words or "exp" in words
        ):
            return pid
        if parent <= 1:
            return None
        pid = parent
    return None


def _start_ticks(pid: int) -> str:
    try:
        return _stat(pid)[19]
    except (OSError, IndexError):
        return "0"


def mark_done(root: Path, stage: str) -> set[str]:
    """Record `stage` as done in this run (the DVC process above this one) and return the
    instances this run has done so far; outside a DVC run, `stage` alone."""
    pid = repro_pid()
    if pid is None:
        return {stage}
    runs = root / RUNS_DIR
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"{pid}-{_start_ticks(pid)}"
    with open(path, "a", encoding="utf-8") as f:  # one short line: an atomic append
        f.write(stage + "\n")
    return set(path.read_text(encoding="utf-8").split())


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


LINE = re.compile(r"^stage (?P<stage>\S+) done in (?P<total>[\d.]+) s \(work (?P<work>[\d.]+) s\)")


def line(stage: str, seconds: float, root: Path, work: float | None = None) -> str:
    """The closing line; `work` is the stage body's own time (its training or estimation,
    without the interpreter's start and the imports), which the benchmark sums (LINE)."""
    parts = [
        f"stage {stage} done in {seconds:.1f} s"
        + (f" (work {work:.2f} s)" if work is not None else "")
    ]
    try:
        done = mark_done(root, stage)
        parts.append(f"this run: {len(done)} done, {to_go(root, done)} to go")
    except UserError as exc:  # a cut dvc.lock: said, with its fix; the stage still ends well
        parts.append(str(exc))
    except Exception:  # best effort: a progress line never fails a stage
        pass
    pid = repro_pid()  # how long the `dvc repro` / `dvc exp run` above this one has run
    elapsed = None if pid is None else _started(pid)
    if elapsed is not None and math.isfinite(elapsed):
        parts.append(f"{_clock(elapsed)} since dvc started")
    return "; ".join(parts)


def report(started: float) -> None:
    """Print the closing line of the stage DVC is running, if DVC is running one; its time
    counts from the process's start where /proc tells it (imports included), else from
    `started` (a time.perf_counter())."""
    stage, root = os.environ.get("DVC_STAGE"), os.environ.get("DVC_ROOT")
    if not stage or not root:
        return
    work = time.perf_counter() - started
    seconds = _started(os.getpid())
    if seconds is None:
        seconds = work
    print(line(stage, seconds, Path(root), work), file=sys.stderr, flush=True)
