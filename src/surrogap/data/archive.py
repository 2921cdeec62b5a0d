"""Raw archives: download with a checksum, and safe extraction of tarballs.

Nothing partial is ever left under a final name: a download or an extraction goes to a
temporary file or folder beside its destination, renamed over it once complete and
verified. A file that fails its checksum or cannot be read to the end is refused (moved
aside only inside the project's raw folder: :func:`refuse`). See docs/FAULTS.md.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import lzma
import os
import posixpath
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from surrogap.core import io
from surrogap.core.errors import UserError
from surrogap.data.tarheaders import MIB, Refused, bounded_tarinfo, size_text

CHUNK = 1 << 20
# Bounded extraction (archive bombs; docs/FAULTS.md, "Bounded work, concurrency and
# `surrogap sweep`'s boundary"): the members' declared sizes (a link to a file counted as
# the file again), summed as the headers are read.
MAX_EXTRACTED_BYTES = 1 << 30  # 1 GiB declared in all (CIFAR-10/100: about 180 MB)
MAX_RATIO = 100  # declared bytes per byte of the archive file (gzip's own maximum: ~1032)
RATIO_FLOOR = 8 * MIB  # below this many declared bytes the ratio is not checked
MAX_MEMBERS = 20_000  # Wiki-3029 holds 3029 class files, CIFAR 8 members
STAMP = ".surrogap-source"  # written inside an extraction: the archive digest it came from

# what a truncated or corrupt archive raises while it is read
CORRUPT = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)


def raw_folder(configured: str | None, root: str | Path) -> Path:
    """Where a kind keeps its raw files: the prepare stage's `root` (``--root``, by default
    ``data/raw``) unless the dataset's ``root`` key names another folder (relative paths
    are relative to the working directory, the project root under DVC)."""
    return Path(root) if configured is None else Path(configured).expanduser()


def md5sum(path: str | Path) -> str:
    """The hex MD5 digest of a file, read in chunks (a FIFO or device refused unopened)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(io.regular_file(path, "an archive"), "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether `path` lies inside `folder` (both resolved: links and ``..`` followed)."""
    return Path(folder).resolve() in Path(path).resolve().parents


def quarantine(path: str | Path, as_name: str | None = None) -> Path:
    """Rename `path` aside to a fresh ``<name>.corrupt`` and return the new path (`name`:
    `as_name`, by default the file's own name).

    An older ``<name>.corrupt`` is never replaced: the next free ``<name>.corrupt.1``,
    ``.2``, ... is taken instead (claimed with a hard link, which fails rather than
    replace; where links are not supported, by a checked rename).
    """
    path = Path(path)
    name = as_name or path.name
    for n in range(10_000):
        aside = path.with_name(name + (".corrupt" if n == 0 else f".corrupt.{n}"))
        if aside.exists() or aside.is_symlink():
            continue
        try:
            os.link(path, aside)
        except FileExistsError:
            continue
        except OSError:  # no hard links here (some file systems)
            if aside.exists():  # pragma: no cover - a race
                continue
            os.rename(path, aside)
            return aside
        os.unlink(path)
        return aside
    raise UserError(f"{str(path)!r} is refused, and 10000 older '.corrupt' copies lie beside it")


def refuse(path: str | Path, reason: str, ours: bool, hint: str = "") -> UserError:
    """The `UserError` refusing the file `path`; moves it aside first when `ours`
    (a file of the project's raw folder), else leaves it where it is (the user's own)."""
    path = Path(path)
    if ours:
        try:
            fate = f"refused and moved aside to {str(quarantine(path))!r}"
        except OSError as exc:
            fate = f"refused (it could not be moved aside: {exc.strerror or exc})"
    else:
        fate = "refused and left where it is (a file of yours: surrogap never moves it)"
    return UserError(f"{reason}: {fate}{hint}")


def verify_md5(
    path: str | Path, md5: str | None, url: str | None = None, *, ours: bool = True
) -> str:
    """Check `path` against `md5` (skipped when None) and return its actual digest; a
    mismatch is refused (:func:`refuse`: moved aside only when `ours`), naming `url`."""
    path = io.regular_file(path, "an archive")
    actual = md5sum(path)
    if md5 is not None and actual != md5.lower():
        again = f"; fetch it again from {url}" if url else ""
        raise refuse(
            path,
            f"{str(path)!r} fails its checksum (md5 {actual}, expected {md5.lower()})",
            ours,
            again,
        )
    return actual


def fetch(url: str, path: str | Path, md5: str | None, timeout: float = 60.0) -> Path:
    """Download `url` to `path` (temp file, checksum, then atomic rename); return `path`.
    A network failure names the path to place the file at by hand; a download short of its
    announced length or failing `md5` is refused and moved aside (:func:`quarantine`)."""
    path = io.check_target(path)  # a download never replaces a link, FIFO or device
    by_hand = f"place the file at {str(path)!r} by hand (fetch it from {url})"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {str(path.parent)!r}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    print(f"downloading {url} -> {path}", file=sys.stderr)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            shutil.copyfileobj(resp, out, CHUNK)
            got = out.tell()
            out.flush()
            os.fsync(out.fileno())
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, (urllib.error.URLError, OSError, ValueError)):
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            raise UserError(f"cannot download {url} ({reason}); {by_hand}") from None
        raise
    if expected is not None and expected.isdigit() and got != int(expected):
        aside = quarantine(tmp, as_name=path.name)
        raise UserError(
            f"download of {url} stopped after {got} of {expected} bytes: refused and moved "
            f"aside to {str(aside)!r}; retry, or {by_hand}"
        )
    if md5 is not None:
        actual = md5sum(tmp)
        if actual != md5.lower():
            aside = quarantine(tmp, as_name=path.name)
            raise UserError(
                f"download of {url} fails its checksum (md5 {actual}, expected {md5.lower()}): "
                f"refused and moved aside to {str(aside)!r}"
            )
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def held(target: Path):
    """An exclusive lock (fcntl.flock; none without fcntl) on the folder holding `target`
    for this block, leaving no lock file: the prepare instances of one dataset's seeds, run
    in parallel, fetch and extract the same archive; the second waits, then finds it done."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def ensure(
    path: str | Path,
    url: str | None,
    md5: str | None,
    download: bool,
    what: str,
    *,
    ours: bool = True,
) -> str:
    """Make sure the archive `path` is there and sound; return its MD5 digest.

    Present: verified against `md5` (a mismatch is moved aside only when `ours`, see
    :func:`refuse`). Missing: downloaded from `url` when `download` is true, else one line
    saying where to place it and where it comes from.
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        if not (download and url):
            source = f"fetch it from {url}" if url else "see the docs for where it comes from"
            hint = "" if download or not url else ", or set download: true"
            raise UserError(
                f"{what}: archive missing: place {path.name} at {str(path)!r} ({source}){hint}"
            )
        with held(path):
            if not path.exists():  # another instance may have fetched it meanwhile
                fetch(url, path, md5)
    return verify_md5(path, md5, url, ours=ours)


# --------------------------------------------------------------------------- extraction
def _check_member(member: tarfile.TarInfo) -> None:
    """Refuse a member that could write outside the destination or is not a plain entry."""
    name = member.name
    unsafe = None
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
        unsafe = "an absolute path"
    elif ".." in parts:
        unsafe = "a '..' component"
    elif member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        unsafe = "a device or fifo"
    elif member.issparse():
        unsafe = "a sparse file (unsupported)"
    elif member.issym():
        target = member.linkname
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if target.startswith("/") or os.path.isabs(target) or resolved.split("/")[0] == "..":
            unsafe = f"a symlink pointing outside ({target})"
    elif member.islnk():
        target = posixpath.normpath(member.linkname)
        if member.linkname.startswith("/") or target.split("/")[0] == "..":
            unsafe = f"a hard link pointing outside ({member.linkname})"
    elif not (member.isfile() or member.isdir()):
        unsafe = "an unsupported entry type"
    if unsafe is not None:
        raise UserError(f"archive member {name!r} is {unsafe}: refused, nothing extracted")


def _check_not_through_link(member: tarfile.TarInfo, links: set[str]) -> None:
    """Refuse a member whose path passes through a link of the archive: the lexical checks
    of each link alone miss a chain (``a -> .`` then ``a/b -> ..``) that escapes."""
    parts = posixpath.normpath(member.name).split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if parent in links:
            raise UserError(
                f"archive member {member.name!r} is a path through the link {parent!r}: "
                "refused, nothing extracted"
            )


def _resolve(path: str, symlinks: dict[str, str]) -> str | None:
    """The name `path` of the archive designates once its symlinks (name -> target, relative
    to the archive's top) are followed, component by component; None past 40 hops."""
    for _ in range(40):
        parts = path.split("/")
        prefix = next(
            (i for i in range(1, len(parts) + 1) if "/".join(parts[:i]) in symlinks), None
        )
        if prefix is None:
            return path
        target = symlinks["/".join(parts[:prefix])]
        path = posixpath.normpath(posixpath.join(target, *parts[prefix:]))
    return None


def _checked_members(
    tar: tarfile.TarFile,
    tar_path: Path,
    max_bytes: int,
    max_ratio: float,
    max_members: int,
) -> list[tarfile.TarInfo]:
    """Every member of `tar`, each checked as its header is read (before its data is
    decompressed past or written): the member checks, a hard link to a file not earlier in
    the archive (tarfile would raise KeyError at extraction), and the bounds: at most
    `max_members` members; the sizes summed (a link to a file counted as that file again)
    may not pass `max_bytes`, nor `max_ratio` times the archive's size once past
    RATIO_FLOOR."""
    archive_bytes = max(1, tar_path.stat().st_size)
    where = f"archive {str(tar_path)!r}"
    members: list[tarfile.TarInfo] = []
    links: set[str] = set()
    symlinks: dict[str, str] = {}  # name -> target, relative to the archive's top
    files: dict[str, int] = {}  # name -> size
    total = 0

    def bound(member: tarfile.TarInfo, size: int) -> None:
        nonlocal total
        total += size
        link = ", a link" if member.islnk() or member.issym() else ""
        what = f"member {member.name!r} ({size_text(size)}{link})"
        if total > max_bytes:
            raise UserError(
                f"{where}: {what} brings the extraction to {size_text(total)}, over the limit "
                f"of {size_text(max_bytes)} (archive.MAX_EXTRACTED_BYTES): refused, nothing "
                "extracted"
            )
        if total > RATIO_FLOOR and total > max_ratio * archive_bytes:
            raise UserError(
                f"{where}: {what} brings the extraction to {size_text(total)} from an archive "
                f"of {size_text(archive_bytes)}, over {max_ratio:g} times its size "
                "(archive.MAX_RATIO; an archive bomb?): refused, nothing extracted"
            )

    for member in tar:  # lazily: the next header is read only after these checks
        if len(members) == max_members:
            raise UserError(
                f"{where}: more than {max_members} members (archive.MAX_MEMBERS; Wiki-3029 "
                "has about 3030): refused, nothing extracted"
            )
        _check_member(member)
        _check_not_through_link(member, links)
        name = posixpath.normpath(member.name)
        if member.islnk() and posixpath.normpath(member.linkname) not in files:
            raise UserError(
                f"{where}: member {member.name!r} is a hard link to {member.linkname!r}, "
                "which is no file before it in the archive: refused, nothing extracted"
            )
        if member.issym():
            links.add(name)
            symlinks[name] = posixpath.normpath(
                posixpath.join(posixpath.dirname(name), member.linkname)
            )
        elif member.islnk():  # materialised as the file again
            links.add(name)
            bound(member, files[posixpath.normpath(member.linkname)])
        elif member.isfile():
            files[name] = member.size
            bound(member, member.size)
        members.append(member)
    for member in members:  # symlinks may point at later members: counted at the end
        if member.issym():
            target = _resolve(posixpath.normpath(member.name), symlinks)
            bound(member, files.get(target, 0) if target is not None else 0)
    return members


def safe_extract(
    tar_path: str | Path,
    dest: str | Path,
    stamp: str | None = None,
    *,
    ours: bool = True,
    max_bytes: int = MAX_EXTRACTED_BYTES,
    max_ratio: float = MAX_RATIO,
    max_members: int | None = None,
) -> Path:
    """Extract the tarball `tar_path` into the folder `dest`, safely and atomically.

    Every member is checked first (:func:`_check_member`, :func:`_checked_members` with
    `max_bytes`, `max_ratio` and `max_members`, None: MAX_MEMBERS; the header bounds of
    :mod:`surrogap.data.tarheaders`), each refused in one `UserError` line naming it; the
    members are then extracted into a temporary folder which replaces `dest` whole. A
    tarball that cannot be read to the end is refused (see :func:`refuse`: moved aside only
    when `ours`). `dest` may not hold the archive itself. `stamp`, when given, is written to
    ``dest/.surrogap-source`` (see :func:`extract_once`).
    """
    tar_path, dest = io.regular_file(tar_path, "an archive"), Path(dest)
    if dest.resolve() == tar_path.resolve() or inside(tar_path, dest):
        raise UserError(
            f"archive {str(tar_path)!r} would be extracted into {str(dest)!r}, the folder "
            "that holds it: refused, nothing extracted"
        )

    def corrupt(exc: BaseException) -> UserError:
        return refuse(
            tar_path,
            f"archive {str(tar_path)!r} is truncated or corrupt ({type(exc).__name__}: "
            + " ".join(str(exc).split())  # tarfile's reasons span lines: one line here
            + ")",
            ours,
        )

    io.check_target(dest, folder=True)  # an extraction never replaces a link or a device
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as exc:
        raise UserError(f"cannot write {str(dest.parent)!r}: {exc.strerror or exc}") from None

    @contextlib.contextmanager
    def reading():  # a corrupt archive, or one whose headers are refused: one line
        try:
            yield
        except CORRUPT as exc:
            raise corrupt(exc) from None
        except Refused as exc:
            msg = f"archive {str(tar_path)!r}: {exc}: refused, nothing extracted"
            raise UserError(msg) from None

    try:
        with reading():  # opening reads the first header: bounded as the rest
            tar = tarfile.open(tar_path, "r:*", tarinfo=bounded_tarinfo())
        with tar:
            with reading():  # reads to the end: a truncated archive fails here
                most = max_members or MAX_MEMBERS
                members = _checked_members(tar, tar_path, max_bytes, max_ratio, most)
            try:
                if hasattr(tarfile, "data_filter"):  # defence in depth (Python >= 3.11.4)
                    tar.extractall(tmp, members=members, filter="data")
                else:  # pragma: no cover
                    tar.extractall(tmp, members=members)
            except tarfile.FilterError as exc:
                raise UserError(f"archive member refused: {exc}; nothing extracted") from None
            except CORRUPT as exc:
                raise corrupt(exc) from None
            except OSError as exc:
                raise UserError(
                    f"cannot extract {str(tar_path)!r} into {str(dest.parent)!r}: "
                    f"{exc.strerror or exc}"
                ) from None
        if stamp is not None:
            (tmp / STAMP).write_text(stamp + "\n")
        old = None
        try:
            if dest.exists():
                old = dest.with_name(f".{dest.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(dest, old)
            os.replace(tmp, dest)
        except OSError as exc:  # the previous extraction comes back
            if old is not None and old.exists() and not dest.exists():
                os.replace(old, dest)
            raise UserError(
                f"cannot write {str(dest)!r}: {exc.strerror or exc}; the previous "
                "extraction is left as it was"
            ) from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def extract_once(
    tar_path: str | Path,
    dest: str | Path,
    digest: str,
    *,
    ours: bool = True,
    max_members: int | None = None,
) -> Path:
    """`safe_extract` unless `dest` already holds a complete extraction of this very archive.

    `digest` (the archive's MD5) is stamped inside the extraction, so a changed archive is
    extracted again and an interrupted extraction (never renamed into place) is redone. A
    `dest` that exists without a stamp is not ours (a folder of the user's) and is never
    replaced.
    """
    dest = Path(dest)
    stamp = dest / STAMP

    def done() -> bool:
        return stamp.is_file() and stamp.read_text().strip() == digest

    if done():
        return dest
    with held(dest):
        if done():
            return dest  # another instance extracted it while this one waited
        if (dest.exists() or dest.is_symlink()) and not stamp.is_file():
            raise UserError(
                f"{str(dest)!r} exists and is no extraction of surrogap's (it has no {STAMP}): "
                f"refused to replace it with the extraction of {str(tar_path)!r}; move it "
                "away, or give that folder as data.path"
            )
        return safe_extract(tar_path, dest, stamp=digest, ours=ours, max_members=max_members)
