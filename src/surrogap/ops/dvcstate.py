"""`surrogap sweep` and DVC's own state: the checks before a sweep starts (the project path,
the repository, a DVC command already running) and the locks it holds.

DVC serializes its commands with two locks in ``.dvc/tmp/``: the repository lock ``lock``
(taken by every command that reads or writes the pipeline's state: `dvc repro`, `dvc status`,
`dvc commit`, ...) and the per-path read/write lock ``rwlock`` (a JSON file mapping each
stage dep and out being used to ``{pid, cmd}``). `dvc repro` releases the repository lock
while a stage's command runs and takes it back to record the stage: a process that took the
lock meanwhile and kept it made `dvc repro` die after its training ("Unable to acquire lock")
with the result unrecorded. So the sweep

* refuses to start while another DVC command holds either lock (a live process in
  ``rwlock``: a `dvc repro` running a stage command; or the repository lock's holder), and
* holds the repository lock from start to end, never releasing it while its stages run: a
  DVC command started later fails within DVC's 3 s lock timeout, before doing any work,
  with DVC's own message ("Unable to acquire lock"); `dvc status` too, until the sweep ends.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager, suppress
from pathlib import Path

from surrogap.core.errors import UserError

PREFIX = "surrogap sweep: "


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def check_path(root: Path) -> None:
    """DVC hashes paths as UTF-8 (and fails on anything else after a stage has run): a
    project whose path is not UTF-8 is refused before anything runs."""
    try:
        str(root).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(
            f"{PREFIX}the project path {os.fsencode(root)!r} is not UTF-8, and DVC cannot "
            "record outputs under it; rename the folder (or move the project) to a UTF-8 path"
        ) from None


def _cmdline(pid: int) -> str:
    import psutil

    try:
        return " ".join(psutil.Process(pid).cmdline()) or "?"
    except (psutil.Error, OSError):
        return "?"


def running_dvc(tmp_dir: str | Path) -> list[tuple[int, str]]:
    """(pid, command) of the live processes other than this one that DVC's ``rwlock``
    lists: a DVC command running a stage (whose repository lock is released meanwhile)."""
    import psutil

    try:
        lock = json.loads((Path(tmp_dir) / "rwlock").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found: dict[int, str] = {}
    if not isinstance(lock, dict):
        return []
    for mode in ("write", "read"):
        entries = lock.get(mode)
        for infos in entries.values() if isinstance(entries, dict) else ():
            for info in infos if isinstance(infos, list) else [infos]:
                pid = info.get("pid") if isinstance(info, dict) else None
                if isinstance(pid, int) and pid != os.getpid() and psutil.pid_exists(pid):
                    found.setdefault(pid, str(info.get("cmd", "?")))
    return sorted(found.items())


def _busy(pid: int | None, cmd: str, what: str) -> UserError:
    who = f"PID {pid}: {cmd}" if pid is not None else cmd
    return UserError(
        f"{PREFIX}another DVC command is running in this repository ({who}) and {what}; "
        "wait for it to finish (or stop it), then run the sweep again"
    )


def _refuse_running(repo) -> None:
    busy = running_dvc(repo.tmp_dir)
    if busy:
        raise _busy(*busy[0], "runs a stage")


def open_repo(root: Path):
    """DVC's `Repo` at `root`, or one line (not a git repository, a broken dvc.yaml, ...)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    check_path(root)
    try:
        repo = Repo(str(root))
        repo.scm  # noqa: B018 - a project without git fails here, not mid-sweep
    except DvcException as exc:
        raise UserError(f"{PREFIX}{_one_line(exc)}") from None
    return repo


@contextmanager
def holding_lock(repo):
    """DVC's repository lock, taken once (after checking that no DVC command runs a stage)
    and held until the block ends; DVC's own calls inside see it as theirs (`lock_repo`)."""
    from dvc.lock import LockError
    from dvc.repo import lock_repo

    _refuse_running(repo)
    try:
        ctx = lock_repo(repo)
        ctx.__enter__()
    except LockError:
        holder = None
        with suppress(OSError):
            text = Path(repo.tmp_dir, "lock").read_text().strip()
            holder = int(text) if text.isdigit() else None
        cmd = _cmdline(holder) if holder is not None else "its process is unknown"
        raise _busy(holder, cmd, "holds DVC's repository lock") from None
    try:
        _refuse_running(repo)  # one that started a stage meanwhile
        yield repo
    finally:
        ctx.__exit__(None, None, None)


def stage_rwlock(repo, stage):
    """DVC's per-path read/write lock on a stage's deps and outs while its command runs."""
    from dvc.dependency.db import AbstractDependency
    from dvc.dependency.repo import RepoDependency
    from dvc.rwlock import rwlock

    def paths(items):
        return [i.fs_path for i in items if not isinstance(i, (RepoDependency, AbstractDependency))]

    return rwlock(
        repo.tmp_dir,
        repo.fs,
        f"surrogap sweep: {stage.addressing}",
        paths(stage.deps),
        paths(stage.outs),
        repo.config["core"].get("hardlink_lock", False),
    )
