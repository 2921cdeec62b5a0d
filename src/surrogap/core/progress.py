"""The one line a stage prints when it ends under `dvc repro`: which instance, how long it
took, how far the pipeline is (stage instances recorded in dvc.lock of those dvc.yaml
expands to) and how long the `dvc repro` (or `dvc exp run`) that started it has run.

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


def planned_instances(root: Path) -> set[str]:
    """The stage instance names dvc.yaml expands to with the current params.yaml lists
    (``name`` or ``name@v1-v2...``, as DVC names matrix instances)."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    params = load_params(root / "params.yaml")  # as DVC reads it
    names: set[str] = set()
    for name, stage in stages.items():
        matrix = stage.get("matrix")
        if not matrix:
            names.add(name)
            continue
        axes = {}
        for key, value in matrix.items():
            ref = MATRIX_REF.match(str(value)) if isinstance(value, str) else None
            axes[key] = params.get(ref.group(1), []) if ref else value
        names |= {f"{name}@{key}" for key in instance.keys(axes)}
    return names


def recorded_instances(root: Path) -> set[str]:
    """The stage names dvc.lock holds (a UserError naming the fix if it is cut short)."""
    return set(dvclock.read(root) or {})


def _started(pid: int) -> float | None:
    """Seconds since the process `pid` started (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def repro_elapsed() -> float | None:
    """How long the nearest `dvc repro` / `dvc exp run` above this process has run."""
    pid = os.getppid()
    for _ in range(8):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        words = [w.decode(errors="replace") for w in cmdline]
        if any(w.endswith("dvc") or w == "dvc" for w in words) and (
            "repro" in words or "exp" in words
        ):
            return _started(pid)
        if parent <= 1:
            return None
        pid = parent
    return None


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
        planned = planned_instances(root)
        recorded = recorded_instances(root)
        done = len(recorded & planned) + (stage not in recorded)
        parts.append(f"{min(done, len(planned))} of {len(planned)} stage instances recorded")
    except UserError as exc:  # a cut dvc.lock: said, with its fix; the stage still ends well
        parts.append(str(exc))
    except Exception:  # best effort: a progress line never fails a stage
        pass
    elapsed = repro_elapsed()
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
