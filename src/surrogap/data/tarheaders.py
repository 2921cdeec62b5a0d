"""Bounded tar headers: the headers tarfile reads whole into memory before a member exists
are refused past fixed bounds before tarfile reads what they announce (used by
:func:`surrogap.data.archive.safe_extract`, whose other bounds are in that module)."""

from __future__ import annotations

import tarfile

MIB = 1 << 20
# The headers tarfile reads whole into memory before a member exists (GNU long names and
# long link names, 'L'/'K'; pax headers, 'x'/'g'/'X'; docs/FAULTS.md, "Bounded work,
# concurrency and `surrogap sweep`'s boundary"):
MAX_HEADER_BYTES = 64 << 10  # each (a file name is at most 4096 bytes)
MAX_META_BYTES = 16 * MIB  # all of them together (the members keep their names and records)
MAX_HEADER_CHAIN = 8  # in a row (tarfile recurses once per header)
META_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


def size_text(n: int) -> str:
    """`n` bytes for a message: in MiB from 1 MiB on."""
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n} bytes"


class Refused(Exception):
    """A header refused while tarfile reads it (wrapped into a `UserError` naming the archive)."""


def bounded_tarinfo() -> type[tarfile.TarInfo]:
    """A TarInfo class whose headers are checked against the header bounds after their
    512-byte block is parsed and before tarfile reads what they announce, and which refuses
    sparse members (their maps are read unbounded); one class per archive (it counts the
    archive's headers)."""
    seen = {"meta": 0, "chain": 0}

    class Bounded(tarfile.TarInfo):
        # tarfile calls _proc_member for every header block it parses, the ones a long-name
        # or pax header fetches after itself included (test_archive.py pins these hooks)
        def _proc_member(self, tar):
            if self.size < 0:
                raise Refused(f"a header declares a negative size ({self.size})")
            if self.type == tarfile.GNUTYPE_SPARSE:
                raise Refused(f"member {self.name!r} is a sparse file (unsupported)")
            if self.type in META_TYPES:
                seen["meta"] += self.size
                seen["chain"] += 1
                kind = "long-name" if self.type in META_TYPES[:2] else "pax"
                if self.size > MAX_HEADER_BYTES:
                    raise Refused(
                        f"a {kind} header of {size_text(self.size)}, over the limit of "
                        f"{size_text(MAX_HEADER_BYTES)} (tarheaders.MAX_HEADER_BYTES)"
                    )
                if seen["meta"] > MAX_META_BYTES:
                    raise Refused(
                        f"its long-name and pax headers pass {size_text(MAX_META_BYTES)} in all "
                        "(tarheaders.MAX_META_BYTES)"
                    )
                if seen["chain"] > MAX_HEADER_CHAIN:
                    raise Refused(
                        f"more than {MAX_HEADER_CHAIN} long-name or pax headers in a row "
                        "(tarheaders.MAX_HEADER_CHAIN)"
                    )
            else:
                seen["chain"] = 0
            return super()._proc_member(tar)

        def _proc_gnusparse_10(self, next, pax_headers, tar):
            raise Refused(f"member {next.name!r} is a sparse file (unsupported)")

    return Bounded
