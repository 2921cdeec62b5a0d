"""Atomic outputs: a stage killed at any point leaves its previous complete file or none.

Every writer goes to a temporary file in the destination's folder, flushes and fsyncs it,
then `os.replace`s it over the destination (atomic on POSIX). A failure to write (read-only
folder, full disk) raises `UserError` naming the path, and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from surrogap.errors import UserError


def _default_mode(directory: bool = False) -> int:
    """The mode a plain open() or mkdir() would give (mkstemp/mkdtemp use 0600/0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _explain(path: Path, exc: OSError) -> UserError:
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
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
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
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _explain(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        os.chmod(tmp, _default_mode(directory=True))
    except OSError as exc:
        raise _explain(path, exc) from None
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _explain(path, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
