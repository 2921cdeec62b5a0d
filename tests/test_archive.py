"""surrogap.data.archive: checksummed download (offline, via file:// and a closed port) and
safe, atomic tarball extraction."""

from __future__ import annotations

import hashlib
import io
import os
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


def test_archive_bombs_are_refused_before_a_byte_is_written(tmp_path):
    """The members' declared sizes are summed as the headers are read: an archive over the
    total limit or the ratio limit is refused whole, naming the archive, the member and the
    limit; nothing is extracted (no folder, no temporary) and the archive stays."""
    small = [_file("top/a.txt", b"a" * 3000), _file("top/b.txt", b"b" * 3000)]
    tar = _tar(tmp_path / "two.tar.gz", small)
    dest = tmp_path / "out"
    with pytest.raises(UserError) as err:
        archive.safe_extract(tar, dest, max_bytes=5000)
    line = str(err.value)
    assert "\n" not in line and str(tar) in line and "'top/b.txt'" in line, line
    assert "over the limit of 5000 bytes (archive.MAX_EXTRACTED_BYTES)" in line, line
    assert not dest.exists() and _leftovers(tmp_path) == [] and tar.exists()
    archive.safe_extract(tar, dest, max_bytes=6000)  # exactly at the limit: extracted
    assert (dest / "top" / "b.txt").read_bytes() == b"b" * 3000
    # ratio: 9 MiB of zeros compress to a few KiB (past the 8 MiB floor, over 100 times)
    bomb = _tar(tmp_path / "bomb.tar.gz", [_file("top/zeros.txt", bytes(9 * archive.MIB))])
    with pytest.raises(UserError, match=r"over 100 times its size \(archive.MAX_RATIO") as err:
        archive.safe_extract(bomb, tmp_path / "bombed")
    assert "'top/zeros.txt' (9 MiB)" in str(err.value) and str(bomb) in str(err.value)
    assert not (tmp_path / "bombed").exists() and _leftovers(tmp_path) == []
    # the same sizes under the floor are not a bomb
    archive.safe_extract(_tar(tmp_path / "z.tar.gz", [_file("z", bytes(archive.MIB))]), dest)
    assert (dest / "z").stat().st_size == archive.MIB


def test_a_hard_link_to_a_name_not_in_the_archive_is_one_line(tmp_path):
    """tarfile raised KeyError at extraction; now the member is refused before any write,
    and a hard link to an earlier file of the archive still works."""
    tar = _tar(tmp_path / "h.tar", [_file("a.txt", b"A"), _link("b", "gone.txt", tarfile.LNKTYPE)])
    with pytest.raises(UserError, match=r"member 'b' is a hard link to 'gone.txt', which is no"):
        archive.safe_extract(tar, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []
    ok = _tar(tmp_path / "ok.tar", [_file("a.txt", b"A"), _link("b", "a.txt", tarfile.LNKTYPE)])
    archive.safe_extract(ok, tmp_path / "out")
    assert (tmp_path / "out" / "b").read_bytes() == b"A"


def test_a_fifo_where_an_archive_belongs_is_refused_without_opening_it(tmp_path):
    """Opening a FIFO blocks until a writer comes: it is refused from its stat alone."""
    fifo = tmp_path / "cifar-10-python.tar.gz"
    os.mkfifo(fifo)
    expected = f"{str(fifo)!r} is a FIFO, not a regular file; an archive must be a regular file"
    for call in (
        lambda: archive.ensure(fifo, None, None, False, "cifar10"),
        lambda: archive.safe_extract(fifo, tmp_path / "out"),
    ):
        with pytest.raises(UserError) as err:
            call()
        assert str(err.value) == expected
    assert fifo.exists() and not (tmp_path / "out").exists()


def test_prepare_stage_refuses_bombs_bad_links_and_fifos_in_one_line(tmp_path):
    """Through stages/prepare.py (the defaults of the limits): a Wiki tarball whose 9 MiB
    member compresses to a few KiB, one with a hard link to a name it lacks, and a FIFO given
    as data.path are each one line, nothing prepared or extracted, the inputs left as they
    were (and the FIFO never opened: the stage would hang)."""
    from test_data_text import _prepare_stage, make_wiki

    mine = tmp_path / "mine"
    mine.mkdir()
    wiki = make_wiki(mine / "plain.tar.gz")
    _tar(mine / "bomb.tar.gz", [_file("Wiki-3029/Article_00.txt", bytes(9 * archive.MIB))])
    with tarfile.open(wiki) as good, tarfile.open(mine / "link.tar.gz", "w:gz") as bad:
        for member in good.getmembers():
            bad.addfile(member, good.extractfile(member))
        ghost = _link("Wiki-3029/Article_99.txt", "Wiki-3029/Article_77.txt", tarfile.LNKTYPE)
        bad.addfile(ghost[0])
    os.mkfifo(mine / "fifo.tar.gz")
    before = sorted(p.name for p in mine.iterdir())
    project = tmp_path / "project"
    cases = [
        ("bomb.tar.gz", "member 'Wiki-3029/Article_00.txt' (9 MiB) brings the extraction to"),
        ("link.tar.gz", "member 'Wiki-3029/Article_99.txt' is a hard link to"),
        ("fifo.tar.gz", "is a FIFO, not a regular file; wiki3029's data.path (a tarball or a"),
    ]
    for name, needle in cases:
        status, err = _prepare_stage(project, {"kind": "wiki3029", "path": str(mine / name)})
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1, err
        assert lines[0].startswith("stage prepare: ") and needle in lines[0], err
        if name != "fifo.tar.gz":
            assert repr(str(mine / name)) in lines[0] and "nothing extracted" in lines[0], err
        assert sorted(p.name for p in mine.iterdir()) == before
        assert not (project / "data" / "prepared").exists()
        assert sorted(p.name for p in (project / "data" / "raw").iterdir()) == []
    status, err = _prepare_stage(project, {"kind": "wiki3029", "path": str(wiki)})
    assert status == 0, err  # the same stage prepares the sound tarball


def test_a_corpus_folder_over_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """The text reader reads each class file whole: the folder's total is bounded first."""
    from surrogap.data import text

    folder = tmp_path / "corpus"
    folder.mkdir()
    for k in range(2):
        (folder / f"c{k}.txt").write_text("a sentence\n" * 10)  # 110 bytes each
    monkeypatch.setattr(archive, "MAX_EXTRACTED_BYTES", 219)
    with pytest.raises(UserError, match=r"holds 220 bytes of text, over the limit of 219"):
        text.read_corpus(folder)
    monkeypatch.setattr(archive, "MAX_EXTRACTED_BYTES", 220)
    assert text.read_corpus(folder)[1].tolist() == [0] * 10 + [1] * 10


def _header(name: str, size: int, kind: bytes, **fields) -> bytes:
    """One raw 512-byte tar header declaring `size` bytes, whatever follows it."""
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info.tobuf(format=tarfile.GNU_FORMAT if kind == tarfile.GNUTYPE_SPARSE else 0)


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % tarfile.BLOCKSIZE)


def _raw_gz(path: Path, *parts: bytes) -> Path:
    import gzip

    path.write_bytes(gzip.compress(b"".join(parts), mtime=0))
    return path


def _prepare_here(project: Path, block: dict, capsys) -> tuple[int, str]:
    """stages/prepare.py's main() in this process (no interpreter start: many cases stay
    fast) for the dataset `wiki` of data `block`, run in `project`; (exit status, stderr)."""
    import yaml
    from conftest import WIKI_PREPARE, stage

    (project / "data" / "raw").mkdir(parents=True, exist_ok=True)
    params = {"dataset": ["wiki"], "seed": [0], "wiki": {"data": block}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    cwd = os.getcwd()
    os.chdir(project)
    try:
        status = stage("prepare").main(WIKI_PREPARE)
    finally:
        os.chdir(cwd)
    return status, capsys.readouterr().err


def test_prepare_stage_bounds_headers_links_and_member_counts(tmp_path, capsys):
    """Through stages/prepare.py: a long-name or pax header declaring more than
    MAX_HEADER_BYTES is refused before tarfile reads it (the archives end right after the
    header: tarfile reading it would say 'truncated'), so are long-name headers past
    MAX_META_BYTES in all, more than MAX_HEADER_CHAIN in a row, sparse members, links to a
    file counted as the file again (hard links and symlinks, also through a linked folder:
    the reader reads each), and more than MAX_MEMBERS members; each in one line, nothing
    extracted or prepared, the archives left where they are."""
    from surrogap.data import tarheaders

    mine = tmp_path / "mine"
    mine.mkdir()
    top = "Wiki-3029/"
    long = tarfile.GNUTYPE_LONGNAME
    _raw_gz(
        mine / "longname.tar.gz", _header("././@LongLink", 400 * archive.MIB, long), b"a" * 4096
    )
    _raw_gz(
        mine / "pax.tar.gz", _header("././@PaxHeader", archive.MIB, tarfile.XHDTYPE), b"9 a=b\n"
    )
    name = top + "n" * (tarheaders.MAX_HEADER_BYTES - 1 - len(top))  # + NUL: at the limit
    entry = _header("././@LongLink", len(name) + 1, long) + _padded(name.encode() + b"\0")
    entry += _header("x", 0, tarfile.REGTYPE)
    count = tarheaders.MAX_META_BYTES // tarheaders.MAX_HEADER_BYTES
    _raw_gz(mine / "names.tar.gz", entry * (count + 1), bytes(1024))
    hop = _header("././@LongLink", 6, long) + _padded(b"x.txt\0")
    _raw_gz(mine / "chain.tar.gz", hop * (tarheaders.MAX_HEADER_CHAIN + 1), _header("y", 0, b"0"))
    _raw_gz(mine / "sparse.tar.gz", _header(top + "s.txt", 0, tarfile.GNUTYPE_SPARSE), bytes(1024))
    sparse10 = tarfile.TarInfo(top + "t.txt")
    sparse10.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
    sparse10.size = 512
    _tar(mine / "sparse10.tar.gz", [(sparse10, b"999999999\n".ljust(512, b"\0"))], "w:gz")
    ones = [_file(top + "a/a.txt", bytes(archive.MIB))]
    hard = [_link(f"{top}h{k}.txt", top + "a/a.txt", tarfile.LNKTYPE) for k in range(9)]
    _tar(mine / "hard.tar.gz", ones + hard)
    soft = [_link(top + "d", "a", tarfile.SYMTYPE)]
    soft += [_link(f"{top}s{k}.txt", "d/a.txt", tarfile.SYMTYPE) for k in range(9)]
    _tar(mine / "soft.tar.gz", soft + ones)  # the links come first, their target later
    many = [_file(f"{top}{k}.txt", b"") for k in range(archive.MAX_MEMBERS + 1)]
    _tar(mine / "many.tar.gz", many)
    before = _snapshot(mine)
    project = tmp_path / "project"
    cases = [
        ("longname", "a long-name header of 400 MiB, over the limit of 65536 bytes"),
        ("pax", "a pax header of 1 MiB, over the limit of 65536 bytes"),
        ("names", "its long-name and pax headers pass 16 MiB in all"),
        ("chain", "more than 8 long-name or pax headers in a row"),
        ("sparse", "member 'Wiki-3029/s.txt' is a sparse file (unsupported)"),
        ("sparse10", "member 'Wiki-3029/t.txt' is a sparse file (unsupported)"),
        ("hard", "member 'Wiki-3029/h7.txt' (1 MiB, a link) brings the extraction to 9 MiB"),
        ("soft", "member 'Wiki-3029/s7.txt' (1 MiB, a link) brings the extraction to 9 MiB"),
        ("many", "more than 20000 members (archive.MAX_MEMBERS"),
    ]
    for stem, needle in cases:
        path = mine / f"{stem}.tar.gz"
        status, err = _prepare_here(project, {"kind": "wiki3029", "path": str(path)}, capsys)
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1, err
        assert lines[0].startswith(f"stage prepare: archive {str(path)!r}: "), err
        assert needle in lines[0] and lines[0].endswith("refused, nothing extracted"), err
        assert _snapshot(mine) == before
        assert not (project / "data" / "prepared").exists()
        assert sorted((project / "data" / "raw").iterdir()) == []


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_instances_extracting_one_archive_at_once_extract_it_once(tmp_path, monkeypatch):
    # a dataset's prepare instances (one per seed) run in parallel under `surrogap sweep` or
    # `dvc queue start -j 2`, and each extracts the same archive: the second waits and finds
    # the first's extraction (archive.held), where both used to extract and swap folders
    import threading

    tar = _tar(tmp_path / "ok.tar.gz", [_file(f"top/f{i}.txt", b"x" * 4096) for i in range(50)])
    digest = archive.md5sum(tar)
    real, calls = archive.safe_extract, []

    def slow_extract(*args, **kwargs):
        calls.append(1)
        threading.Event().wait(0.2)  # a large archive: the others arrive meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(archive, "safe_extract", slow_extract)
    dest, errors = tmp_path / "out", []

    def extract():
        try:
            archive.extract_once(tar, dest, digest)
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=extract) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(calls) == 1
    assert sorted(p.name for p in (dest / "top").iterdir()) == sorted(
        f"f{i}.txt" for i in range(50)
    )
    assert (dest / archive.STAMP).read_text().strip() == digest
