"""Atomic outputs: a stage killed at any point leaves its previous complete file or none.

Every writer goes to a temporary file (``.<name>.part-<pid>-<random><suffix>``, swept by
the next write once its process is gone) beside the destination, fsyncs it and
`os.replace`s it over the destination, only where a regular file (for a folder output: a
folder) or nothing is (`check_target`); a failure is one `UserError` line naming the path.
See docs/FAULTS.md ("Writes that fail", "What the writer never replaces").
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


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.part-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
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
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def regular_file(
    path: str | Path,
    what: str,
    *,
    folder: bool = False,
    missing: bool = False,
    unopened: bool = False,
) -> Path:
    """`path` if it names a regular file (links followed), else one-line `UserError`
    (``'<path>' is a FIFO, not a regular file; <what> must be a regular file``).

    Checked with `os.stat`, WITHOUT opening the file: opening a FIFO blocks until a writer
    comes, and reading a device (``/dev/zero``) never ends. A missing path is a `UserError`
    too (``'<path>' does not exist; ...``), unless `missing` (then the reader says so); with
    `folder`, a folder is accepted as well (``<what> must be a regular file or a folder``).
    With `unopened` (:func:`readable`) only a FIFO, device or socket is refused: a missing
    path, a folder or one that cannot be stat'ed pass, for the reader to name as it does.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if missing or unopened:
            return path
        raise UserError(f"{str(path)!r} does not exist; {what} must be a regular file") from None
    except OSError as exc:
        if unopened:
            return path
        raise UserError(f"cannot access {str(path)!r}: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(mode) or ((folder or unopened) and stat.S_ISDIR(mode))):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        allowed = "a regular file or a folder" if folder else "a regular file"
        why = " (not opened: reading it would wait for ever)" if unopened else ""
        raise UserError(
            f"{str(path)!r} is {kind}, not a regular file; {what} must be {allowed}{why}"
        )
    return path


def readable(path: str | Path, what: str) -> Path:
    """`path` unless it is a FIFO, device or socket (`regular_file` with `unopened`): the
    first call of every reader of a data file (`surrogap.core.files`, dvc.lock, the
    prepared data, the checkpoints, ``model.pt``), which names a missing file or a folder
    itself."""
    return regular_file(path, what, unopened=True)


def special_files(folder: str | Path, limit: int = 10) -> list[tuple[Path, str]]:
    """The first `limit` FIFOs, devices and sockets anywhere under `folder`, each with its
    kind ("a FIFO"; "a symbolic link to a FIFO" for a link to one), links followed as DVC
    follows them when it hashes the folder (docs/FAULTS.md), each folder walked once;
    nothing is opened."""
    found: list[tuple[Path, str]] = []
    seen: set[tuple[int, int]] = set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        try:
            st = os.stat(top)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # reached again through a link: a loop
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        for name in (*dirs, *files):
            entry = Path(top) / name
            try:
                link = stat.S_ISLNK(os.lstat(entry).st_mode)
                mode = os.stat(entry).st_mode
            except OSError:  # a dangling link: DVC skips it too
                continue
            if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
                continue
            kind = next((k for t, k in _KINDS if t(mode)), "a special file")
            found.append((entry, f"a symbolic link to {kind}" if link else kind))
            if len(found) >= limit:
                return found
    return found


def refuse_special_files(folder: str | Path, what: str) -> None:
    """A one-line UserError naming the first FIFO, device or socket under `folder`."""
    found = special_files(folder, limit=1)
    if found:
        entry, kind = found[0]
        raise UserError(
            f"{str(entry)!r} is {kind}, not a regular file, inside {str(folder)!r} ({what}); "
            "DVC hashes every file "
            "there and waits for ever on a FIFO or device: remove it (`dvc status` and "
            "`dvc repro` hang until then)"
        )


def project_root() -> Path:
    """The project folders are created in: ``DVC_ROOT`` (set by DVC for a stage), else the
    nearest folder above the working directory holding ``dvc.yaml``, else the working
    directory itself."""
    env = os.environ.get("DVC_ROOT")
    if env:
        return Path(env).resolve()
    cwd = Path.cwd().resolve()
    return next((d for d in (cwd, *cwd.parents) if (d / "dvc.yaml").is_file()), cwd)


_LINK_KINDS = ((stat.S_ISLNK, "a symbolic link"), *_KINDS)


def check_target(path: str | Path, *, folder: bool = False, root: str | Path | None = None) -> Path:
    """`path` if surrogap may write it, else a one-line `UserError` naming it.

    Allowed: nothing at `path`, a regular file, or (with `folder`, for an output replaced
    whole) a folder. A symlink (not followed: its target would stay, the link be replaced),
    FIFO, device or socket is refused, as is a folder where a file goes. With `root` (the
    project, for a path the user gave), the parent must exist, or its nearest existing
    folder lie inside `root`: the writer creates missing folders only inside the project."""
    if not os.fspath(path):
        raise UserError("cannot write '': the path is empty; give a file name")
    if not folder and os.fspath(path).endswith(("/", os.sep)):
        raise UserError(
            f"cannot write {os.fspath(path)!r}: a trailing slash names a folder, and this "
            "output is a file; give a file name (without the trailing slash)"
        )
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UserError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    allowed = "a regular file, a folder or nothing" if folder else "a regular file or nothing"
    if mode is not None and not (stat.S_ISREG(mode) or (folder and stat.S_ISDIR(mode))):
        kind = next((name for test, name in _LINK_KINDS if test(mode)), "a special file")
        if stat.S_ISLNK(mode):
            with contextlib.suppress(OSError):
                kind += f" (to {os.readlink(path)!r})"
        raise UserError(
            f"cannot write {str(path)!r}: it is {kind}; surrogap writes only where {allowed} "
            "is (refused, nothing replaced): give another path or remove it"
        )
    if root is None:
        return path
    parent = path.absolute().parent
    existing = next(d for d in (parent, *parent.parents) if os.path.lexists(d))
    if existing == parent:
        if not parent.is_dir():
            raise UserError(f"cannot write {str(path)!r}: {str(parent)!r} is not a folder")
        return path
    root = Path(root).resolve()
    if not existing.resolve().is_relative_to(root):
        raise UserError(
            f"cannot write {str(path)!r}: the folder {str(parent)!r} does not exist, and "
            f"surrogap creates folders only inside the project ({str(root)!r}); create it "
            "first or give a path in an existing folder"
        )
    return path


def _same_or_inside(output: Path, source: Path, folder: bool) -> bool:
    """Whether writing `output` would replace `source`: the same file (os.path.samefile
    where both exist: hard links, symlinks, `./x` and `x` alike; else the resolved paths),
    or, for a folder output (replaced whole), `source` inside it."""
    with contextlib.suppress(OSError):
        if os.path.lexists(output) and os.path.exists(source) and os.path.samefile(output, source):
            return True
    out, src = output.resolve(), source.resolve()
    return out == src or (folder and out in src.parents)


def refuse_same_file(outputs, inputs) -> None:
    """A one-line UserError, before any work, when an output would replace an input:
    `outputs` and `inputs` are (name, path) pairs (name: the option, ``--plot``), an
    output's path also (name, path, folder) for a folder replaced whole. The one check of
    every command and stage whose options name both (`surrogap evaluate --plot`, a
    stage's ``--out``/``--results``)."""
    for entry in outputs:
        name, out, folder = (*entry, False)[:3]
        if out is None:
            continue
        for src_name, src in inputs:
            if src is None or not os.fspath(src):
                continue
            if _same_or_inside(Path(out), Path(src), folder):
                how = "is" if not folder else "holds"
                raise UserError(
                    f"{name} {os.fspath(out)!r} {how} the input {src_name} "
                    f"{os.fspath(src)!r}: writing it would replace the input (refused, "
                    "nothing written); give another output path"
                )


def _fsync_dir(folder: Path) -> None:
    """Persist a rename on disk (best effort: some file systems refuse it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# torch.save reports a failed write (full disk, EIO) as a RuntimeError of its zip writer
_TORCH_WRITE_FAILURE = re.compile(r"inline_container|PytorchStreamWriter|file write failed")


def _write_failure(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and bool(_TORCH_WRITE_FAILURE.search(str(exc)))


def _file_size_limit() -> int | None:
    """The process's file-size limit in bytes (``ulimit -f``), None when unlimited."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def _explain(path: Path, exc: OSError | RuntimeError) -> UserError:
    limit = _file_size_limit()
    if not isinstance(exc, OSError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        check = "check the free disk space"
        if limit is not None:
            check += f" and the file-size limit (ulimit -f: {limit} bytes)"
        return UserError(
            f"cannot write {str(path)!r}: the write failed ({first}); {check}; earlier "
            "outputs are left as they were"
        )
    if exc.errno == errno.EFBIG:
        shown = f"{limit} bytes" if limit is not None else "set"
        return UserError(
            f"cannot write {str(path)!r}: the file would exceed the file-size limit "
            f"(ulimit -f: {shown}); raise it (ulimit -f unlimited); earlier outputs are left "
            "as they were"
        )
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.EPERM: "operation not permitted",
    }.get(exc.errno, exc.strerror or str(exc))
    return UserError(f"cannot write {str(path)!r}: {reason}; earlier outputs are left as they were")


def _temporary(path: Path, folder: bool = False, suffix: str = "") -> Path:
    """A fresh temporary file (or folder) beside `path`, once the stale ones are swept, with
    the mode a plain open() or mkdir() would give (mkstemp/mkdtemp use 0600/0700)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path)
        if folder:
            tmp = tempfile.mkdtemp(prefix=_temp_prefix(path), dir=path.parent)
        else:
            fd, tmp = tempfile.mkstemp(
                prefix=_temp_prefix(path), suffix=suffix or ".tmp", dir=path.parent
            )
            os.close(fd)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, (0o777 if folder else 0o666) & ~mask)
    except OSError as exc:
        raise _explain(path, exc) from None
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically."""
    path = check_target(path)
    tmp = _temporary(path, suffix=suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) or _write_failure(exc):
            raise _explain(path, exc) from None
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
    path = check_target(path, folder=True)
    tmp = _temporary(path, folder=True)
    old = None
    try:
        yield tmp
        if path.exists():
            # the previous folder steps aside (under this process's temporary prefix, so a
            # kill right here leaves it for sweep_stale) and comes back if the swap fails
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException as exc:
        _restore(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and _names_other_file(exc, tmp, path, old):
            raise  # an input the body could not read (a missing file): not a failed write
        if isinstance(exc, OSError) or _write_failure(exc):
            raise _explain(path, exc) from None
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


def write_seeds(
    out_dir: str | Path, seeds, write: Callable[[int, str, Path], None], jobs: int = 1
) -> None:
    """Replace the folder `out_dir` whole (:func:`atomic_dir`) with what ``write(seed, name,
    tmp)`` writes into the temporary folder `tmp` for every seed, `name` being the seed's
    entry ``s<seed>`` (schema.seed_dir): the output of the stages that handle every seed of
    their dataset, or (dataset, K), in one instance; `jobs` seeds at once in forked
    processes (core.parallel.each; each seed writes only its own files)."""
    from surrogap.core.parallel import each
    from surrogap.core.schema import seed_dir

    with atomic_dir(out_dir) as tmp:
        each(list(seeds), lambda seed: write(seed, seed_dir(seed), tmp), jobs)
