"""What `surrogap sweep`'s client does with a stage whose command finished: DVC's own
recording of it (`LockWriter`), inside a block of DVC calls (`Settled`), and which finished
tasks a Ctrl-C must still record (`finished_uncollected`)."""

from __future__ import annotations

import time


class Settled:
    """A block of DVC calls, followed by `repo._reset()` as DVC does when it releases its
    lock: the SCM's cached .gitignore state among others (stale, a recorded out was listed
    in its .gitignore twice, and the folder hashes of a serial `dvc repro` differed)."""

    def __init__(self, repo):
        self.repo = repo

    def __enter__(self):
        return self.repo

    def __exit__(self, *exc):
        self.repo._reset()
        return False


FLUSH_SECONDS = 10.0  # dvc.lock entries are written at most this long after their stage


class LockWriter:
    """What `Stage.run` and `dvc repro` do after a stage's command: hash deps and outs, add
    the run-cache entry (not for stages with a `cache: false` out, as DVC), commit the outs
    to the cache and write the stage's dvc.lock entry.

    `dvc repro` rewrites the whole dvc.lock (a YAML load and dump) after every stage, which
    grows with the grid: with a few hundred stage instances it is most of DVC's own time.
    Here the entries of stages that finish close together are written in one rewrite, in
    plan order (`flush`), at most FLUSH_SECONDS after the first of them and always before
    the sweep ends. The run-cache entry is saved at once, so a sweep stopped between two
    writes loses no work: the next sweep or `dvc repro` restores those stages from it."""

    def __init__(self, order: dict):
        self.order = order
        self.pending: list = []
        self.since: float | None = None

    def record(self, stage) -> None:
        no_cache_outs = any(not o.use_cache for o in stage.outs if not (o.is_metric or o.is_plot))
        stage.save(run_cache=not no_cache_outs)
        stage.commit()
        self.pending.append(stage)
        if self.since is None:
            self.since = time.monotonic()

    def due(self) -> bool:
        return self.since is not None and time.monotonic() - self.since >= FLUSH_SECONDS

    def flush(self) -> None:
        """The pending entries written; they stay pending until written (a Ctrl-C in the
        middle of a rewrite leaves them for the next flush)."""
        by_file: dict = {}
        for stage in sorted(self.pending, key=lambda s: self.order.get(s, 0)):
            by_file.setdefault(stage.dvcfile.path, (stage.dvcfile, []))[1].append(stage)
        for dvcfile, group in by_file.values():
            dump_lock_atomically(dvcfile, group)
            self.pending = [s for s in self.pending if s not in group]
        self.since = None


def dump_lock_atomically(dvcfile, stages: list) -> None:
    """DVC's own writing of `stages`' dvc.lock entries (`Lockfile.dump_stages`, what
    `dvcfile.dump_stages(stages, update_pipeline=False)` does), into a copy of dvc.lock that
    then replaces it (`surrogap.core.io.write_with`): DVC opens dvc.lock itself with "w+",
    so a Ctrl-C or kill during its rewrite (hundreds of KB on a large grid) left it cut
    short, and every later DVC command failed on it. Here the file is the old one or the
    new one, never a part."""
    import os
    import shutil
    from pathlib import Path

    from dvc.dvcfile import Lockfile

    from surrogap.core import io

    lockfile = dvcfile._lockfile
    path = Path(lockfile.path)

    def write(tmp: Path) -> None:
        if path.exists():
            shutil.copyfile(path, tmp)
        else:
            tmp.unlink()  # DVC starts a new lock file where none exists
        Lockfile(dvcfile.repo, os.fspath(tmp)).dump_stages(stages)

    io.write_with(path, write, suffix=".lock")
    dvcfile.repo.scm_context.track_file(lockfile.relpath)


def finished_uncollected(inflight: dict, settled: set) -> list:
    """The futures of `inflight` ({future: (stage, log)}) whose task is done, not
    cancelled, and whose stage the client has not settled yet: on Ctrl-C these are
    recorded as if collected (their command finished and wrote its outputs; dropping them
    lost that work, `dvc.lock` said nothing of it). Running ones are left to be cancelled."""
    return [
        future
        for future, (stage, _log) in inflight.items()
        if stage not in settled and future.done() and not future.cancelled()
    ]
