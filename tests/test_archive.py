"""surrogap.data.archive: checksummed download (offline, via file:// and a closed port) and
safe, atomic tarball extraction."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from surrogap.core.errors import UserError
from surrogap.data import archive


def _tar(
    path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz"
) -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_md5sum_and_verify(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello")
    good = hashlib.md5(b"hello").hexdigest()
    assert archive.md5sum(f) == good
    assert archive.verify_md5(f, good.upper()) == good
    assert archive.verify_md5(f, None) == good
    with pytest.raises(UserError, match=r"fails its checksum.*moved aside.*a\.bin\.corrupt") as err:
        archive.verify_md5(f, "0" * 32, url="https://example.org/a.bin")
    assert "\n" not in str(err.value) and "https://example.org/a.bin" in str(err.value)
    assert not f.exists() and (tmp_path / "a.bin.corrupt").read_bytes() == b"hello"


def test_fetch_file_url_verifies_and_renames_atomically(tmp_path):
    src = tmp_path / "src.tar.gz"
    src.write_bytes(b"payload" * 1000)
    md5 = archive.md5sum(src)
    dest = tmp_path / "raw" / "thing.tar.gz"
    assert archive.fetch(src.as_uri(), dest, md5) == dest
    assert dest.read_bytes() == src.read_bytes()
    assert _leftovers(dest.parent) == []

    bad = tmp_path / "raw" / "bad.tar.gz"
    with pytest.raises(UserError, match=r"fails its checksum.*bad\.tar\.gz\.corrupt"):
        archive.fetch(src.as_uri(), bad, "f" * 32)
    assert not bad.exists() and (tmp_path / "raw" / "bad.tar.gz.corrupt").exists()
    assert _leftovers(dest.parent) == []


def test_fetch_network_error_is_one_line_with_path_and_url(tmp_path):
    dest = tmp_path / "raw" / "x.tar.gz"
    url = "http://127.0.0.1:9/x.tar.gz"  # the discard port: refused at once, no network needed
    with pytest.raises(UserError) as err:
        archive.fetch(url, dest, None, timeout=5)
    msg = str(err.value)
    assert "\n" not in msg and url in msg and str(dest) in msg
    assert not dest.exists() and _leftovers(dest.parent) == []


def test_ensure_missing_without_download(tmp_path):
    dest = tmp_path / "x.tar.gz"
    with pytest.raises(UserError, match=r"archive missing.*set download: true") as err:
        archive.ensure(dest, "https://example.org/x.tar.gz", None, False, "thing")
    assert str(dest) in str(err.value) and "https://example.org/x.tar.gz" in str(err.value)


def test_safe_extract_plain_archive_and_extract_once(tmp_path):
    tar = _tar(
        tmp_path / "ok.tar.gz",
        [
            _file("top/a.txt", b"A"),
            _file("top/sub/b.txt", b"B"),
            _link("top/ln", "a.txt", tarfile.SYMTYPE),
        ],
    )
    dest = tmp_path / "out"
    archive.safe_extract(tar, dest)
    assert (dest / "top" / "a.txt").read_bytes() == b"A"
    assert (dest / "top" / "sub" / "b.txt").read_bytes() == b"B"
    assert (dest / "top" / "ln").read_bytes() == b"A"  # a link inside dest is fine
    assert _leftovers(tmp_path) == []

    digest = archive.md5sum(tar)
    archive.safe_extract(tar, dest, stamp=digest)  # stamped: an extraction of ours
    (dest / "top" / "a.txt").write_bytes(b"changed")
    archive.extract_once(tar, dest, digest)  # stamp matches: reused as is
    assert (dest / "top" / "a.txt").read_bytes() == b"changed"
    archive.extract_once(tar, dest, "another digest")  # archive changed: extracted afresh
    assert (dest / "top" / "a.txt").read_bytes() == b"A"


@pytest.mark.parametrize(
    "member, needle",
    [
        (_file("../evil", b"x"), "'..'"),
        (_file("ok/../../evil", b"x"), "'..'"),
        (_file("/abs/evil", b"x"), "absolute"),
        (_link("etc", "/etc", tarfile.SYMTYPE), "symlink"),
        (_link("up", "../../outside", tarfile.SYMTYPE), "symlink"),
        (_link("hard", "/etc/passwd", tarfile.LNKTYPE), "hard link"),
        (_link("hard", "../outside", tarfile.LNKTYPE), "hard link"),
        (_link("dev", "", tarfile.CHRTYPE), "device"),
        (_link("fifo", "", tarfile.FIFOTYPE), "device or fifo"),
    ],
)
def test_safe_extract_refuses_unsafe_members(tmp_path, member, needle):
    tar = _tar(tmp_path / "evil.tar", [_file("fine.txt", b"ok"), member], mode="w")
    dest = tmp_path / "out"
    with pytest.raises(UserError, match=needle) as err:
        archive.safe_extract(tar, dest)
    assert repr(member[0].name) in str(err.value)
    assert not dest.exists() and _leftovers(tmp_path) == []
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()
    assert tar.exists()  # an unsafe archive is refused, not renamed


def test_safe_extract_truncated_archive_moved_aside(tmp_path):
    full = _tar(
        tmp_path / "full.tar.gz", [_file(f"f{i}.bin", bytes(range(256)) * 400) for i in range(5)]
    )
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    dest = tmp_path / "out"
    with pytest.raises(UserError, match=r"truncated or corrupt.*cut\.tar\.gz\.corrupt") as err:
        archive.safe_extract(cut, dest)
    assert "\n" not in str(err.value)
    assert not cut.exists() and (tmp_path / "cut.tar.gz.corrupt").exists()
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_safe_extract_replaces_previous_extraction_whole(tmp_path):
    dest = tmp_path / "out"
    archive.safe_extract(_tar(tmp_path / "one.tar", [_file("a.txt", b"1")], mode="w"), dest)
    archive.safe_extract(_tar(tmp_path / "two.tar", [_file("b.txt", b"2")], mode="w"), dest)
    assert sorted(p.name for p in dest.iterdir()) == ["b.txt"]


def test_safe_extract_refuses_a_link_chain_that_escapes(tmp_path):
    # each link alone looks inside ('l1' -> '.', 'l1/l2' -> '..' resolves to '.'), but on
    # disk l1/l2 is ./l2 -> .., so 'l1/l2/escaped' would land outside dest without the
    # through-a-link check (Python < 3.11.4 has no tarfile data filter to catch it)
    tar = _tar(
        tmp_path / "chain.tar",
        [
            _link("l1", ".", tarfile.SYMTYPE),
            _link("l1/l2", "..", tarfile.SYMTYPE),
            _file("l1/l2/escaped", b"x"),
        ],
        mode="w",
    )
    dest = tmp_path / "out"
    with pytest.raises(UserError, match=r"'l1/l2' is a path through the link 'l1'"):
        archive.safe_extract(tar, dest)
    assert not dest.exists() and _leftovers(tmp_path) == []
    assert not (tmp_path / "escaped").exists()


def test_safe_extract_failed_swap_keeps_previous_extraction(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    archive.safe_extract(_tar(tmp_path / "one.tar", [_file("a.txt", b"1")], mode="w"), dest)
    real, calls = archive.os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the previous extraction is aside, the new one fails to move in
            raise OSError(30, "Read-only file system")
        return real(src, dst)

    monkeypatch.setattr(archive.os, "replace", second_fails)
    with pytest.raises(UserError, match=r"cannot write .*out'.*previous extraction is left"):
        archive.safe_extract(_tar(tmp_path / "two.tar", [_file("b.txt", b"2")], mode="w"), dest)
    monkeypatch.undo()
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt"]
    assert _leftovers(tmp_path) == []


def test_corrupt_copies_are_numbered_never_replaced(tmp_path):
    """A second bad file of the same name does not replace the first one set aside."""
    f = tmp_path / "a.bin"
    for n, payload in enumerate((b"first", b"second", b"third")):
        f.write_bytes(payload)
        with pytest.raises(UserError, match="moved aside") as err:
            archive.verify_md5(f, "0" * 32)
        aside = tmp_path / ("a.bin.corrupt" + ("" if n == 0 else f".{n}"))
        assert repr(str(aside)) in str(err.value)
    assert not f.exists()
    assert (tmp_path / "a.bin.corrupt").read_bytes() == b"first"
    assert (tmp_path / "a.bin.corrupt.1").read_bytes() == b"second"
    assert (tmp_path / "a.bin.corrupt.2").read_bytes() == b"third"


def test_files_not_ours_are_refused_in_place(tmp_path):
    """ours=False (a file of the user's): refused with one line, never renamed or moved."""
    f = tmp_path / "mine.tar.gz"
    f.write_bytes(b"not the archive")
    with pytest.raises(UserError, match="left where it is") as err:
        archive.verify_md5(f, "0" * 32, ours=False)
    assert "\n" not in str(err.value) and "moved" not in str(err.value).split(":")[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.tar.gz"]
    with pytest.raises(UserError, match=r"truncated or corrupt.*left where it is") as err:
        archive.safe_extract(f, tmp_path / "out", ours=False)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.tar.gz"]
    assert f.read_bytes() == b"not the archive"


def test_inside_resolves_the_path():
    assert archive.inside("data/raw/x.tar.gz", "data/raw")
    assert archive.inside("data/raw/sub/../x.tar.gz", "data")
    assert not archive.inside("data/raw/../x.tar.gz", "data/raw")
    assert not archive.inside("data/raw", "data/raw")


def test_extraction_never_replaces_the_folder_holding_the_archive(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "other.bin").write_bytes(b"another dataset's file")
    tar = _tar(raw / "x.tar.gz", [_file("a.txt", b"1")])
    for dest in (raw, tmp_path):
        with pytest.raises(UserError, match="the folder that holds it: refused"):
            archive.safe_extract(tar, dest)
    assert sorted(p.name for p in raw.iterdir()) == ["other.bin", "x.tar.gz"]


def test_extract_once_never_replaces_a_folder_it_did_not_write(tmp_path):
    tar = _tar(tmp_path / "x.tar.gz", [_file("a.txt", b"1")])
    mine = tmp_path / "x"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own")
    with pytest.raises(UserError, match=r"no extraction of surrogap's.*refused to replace"):
        archive.extract_once(tar, mine, archive.md5sum(tar))
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    # an extraction of ours is replaced when the archive changes
    ours = tmp_path / "y"
    archive.extract_once(tar, ours, archive.md5sum(tar))
    tar2 = _tar(tmp_path / "x2.tar.gz", [_file("b.txt", b"2")])
    archive.extract_once(tar2, ours, archive.md5sum(tar2))
    assert sorted(p.name for p in ours.iterdir()) == [archive.STAMP, "b.txt"]
