"""Atomic outputs: a stage killed at any point leaves its previous complete file or none.

Every writer goes to a temporary file in the destination's folder, flushes and fsyncs it,
then `os.replace`s it over the destination (atomic on POSIX). A failure to write (read-only
folder, full disk) raises `UserError` naming the path, and the destination is untouched.

Temporary names carry the writer's process id (``.<name>.part-<pid>-<random><suffix>``). A
process killed with SIGKILL cannot clean up after itself, so the next write of the same
destination removes the temporaries of processes that no longer exist. See docs/FAULTS.md.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from surrogap.core.errors import UserError


def _default_mode(directory: bool = False) -> int:
    """The mode a plain open() or mkdir() would give (mkstemp/mkdtemp use 0600/0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.part-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def sweep_stale(path: str | Path) -> list[Path]:
    """Remove the temporaries of `path` left by killed writers (their process is gone).

    Only names of the form ``.<name>.part-<pid>-<anything>`` whose pid no longer runs are
    removed, so a concurrent writer's temporary is never touched. Returns what was removed.
    """
    path = Path(path)
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    head = f".{path.name}."
    for entry in entries:
        rest = entry.name[len(head) :] if entry.name.startswith(head) else ""
        pid, dash, _ = rest.removeprefix("part-").partition("-")
        if not (rest.startswith("part-") and dash and pid.isdigit()) or _pid_alive(int(pid)):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            pass
    return removed


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def regular_file(
    path: str | Path, what: str, *, folder: bool = False, missing: bool = False
) -> Path:
    """`path` if it names a regular file (links followed), else one-line `UserError`
    (``'<path>' is a FIFO, not a regular file; <what> must be a regular file``).

    Checked with `os.stat`, WITHOUT opening the file: opening a FIFO blocks until a writer
    comes, and reading a device (``/dev/zero``) never ends. A missing path is a `UserError`
    too (``'<path>' does not exist; ...``), unless `missing` (then the reader says so); with
    `folder`, a folder is accepted as well (``<what> must be a regular file or a folder``).
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if missing:
            return path
        raise UserError(f"{str(path)!r} does not exist; {what} must be a regular file") from None
    except OSError as exc:
        raise UserError(f"cannot access {str(path)!r}: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(mode) or (folder and stat.S_ISDIR(mode))):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        allowed = "a regular file or a folder" if folder else "a regular file"
        raise UserError(f"{str(path)!r} is {kind}, not a regular file; {what} must be {allowed}")
    return path


def _fsync_dir(folder: Path) -> None:
    """Persist a rename on disk (best effort: some file systems refuse it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# torch.save reports a failed write (full disk, EIO) as a RuntimeError of its zip writer
_TORCH_WRITE_FAILURE = re.compile(r"inline_container|PytorchStreamWriter|file write failed")


def _write_failure(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and bool(_TORCH_WRITE_FAILURE.search(str(exc)))


def _explain(path: Path, exc: OSError | RuntimeError) -> UserError:
    if not isinstance(exc, OSError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return UserError(
            f"cannot write {str(path)!r}: the write failed ({first}); check the free disk "
            "space; earlier outputs are left as they were"
        )
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.EPERM: "operation not permitted",
    }.get(exc.errno, exc.strerror or str(exc))
    return UserError(f"cannot write {str(path)!r}: {reason}; earlier outputs are left as they were")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path)
        fd, tmp_name = tempfile.mkstemp(
            prefix=_temp_prefix(path), suffix=suffix or ".tmp", dir=path.parent
        )
        os.close(fd)
        os.chmod(tmp_name, _default_mode())
    except OSError as exc:
        raise _explain(path, exc) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) or _write_failure(exc):
            raise _explain(path, exc) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, allow_nan=True) + "\n")


def write_with(path: str | Path, writer: Callable[[Path], None], suffix: str = "") -> None:
    """Atomically write `path` with `writer(tmp_path)` (np.savez, torch.save, fig.savefig)."""
    with atomic_path(path, suffix=suffix) as tmp:
        writer(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `path`; on success it replaces `path` whole."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), dir=path.parent))
        os.chmod(tmp, _default_mode(directory=True))
    except OSError as exc:
        raise _explain(path, exc) from None
    old = None
    try:
        yield tmp
        if path.exists():
            # the previous folder steps aside (under this process's temporary prefix, so a
            # kill right here leaves it for sweep_stale) and comes back if the swap fails
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, old)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        _restore(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and _names_other_file(exc, tmp, path, old):
            raise  # an input the body could not read (a missing file): not a failed write
        if isinstance(exc, OSError) or _write_failure(exc):
            raise _explain(path, exc) from None
        raise
    except BaseException:
        _restore(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(path.parent)


def _names_other_file(exc: OSError, *ours: Path | None) -> bool:
    """Whether `exc` names a file outside the folders being written (`ours`): then it is an
    input the body failed to read, reported as it is (`cannot access ...`)."""
    if not isinstance(exc.filename, (str, bytes, os.PathLike)):
        return False
    name = Path(os.fsdecode(exc.filename)).absolute()
    folders = [Path(o).absolute() for o in ours if o is not None]
    return not any(name == f or f in name.parents for f in folders)


def _restore(old: Path | None, path: Path) -> None:
    """Put the previous folder back after a failed swap (it was moved aside to `old`)."""
    if old is None or not old.exists():
        return
    if path.exists():  # the swap did not happen: `old` is only the empty placeholder
        shutil.rmtree(old, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        os.replace(old, path)


def write_seeds(out_dir: str | Path, seeds, write: Callable[[int, str, Path], None]) -> None:
    """Replace the folder `out_dir` whole (:func:`atomic_dir`) with what ``write(seed, name,
    tmp)`` writes into the temporary folder `tmp` for every seed, `name` being the seed's
    entry ``s<seed>`` (schema.seed_dir): the output of the stages that handle every seed of
    their dataset, or (dataset, K), in one process."""
    from surrogap.core.schema import seed_dir

    with atomic_dir(out_dir) as tmp:
        for seed in seeds:
            write(seed, seed_dir(seed), tmp)
