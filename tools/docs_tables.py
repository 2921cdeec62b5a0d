"""The tables of the docs generated from the code's one table of each fact: docs/SCALING.md's
tolerance table from surrogap.core.columns (each column's `tol`), between the marker
comments `<!-- tolerances: begin -->` and `<!-- tolerances: end -->`.

    python tools/docs_tables.py           # exit 1 (and say which) where a doc is stale
    python tools/docs_tables.py --write   # rewrite the blocks

tests/test_docs.py checks the committed docs equal what this generates."""

from __future__ import annotations

import sys
from pathlib import Path

from surrogap.core import columns

ROOT = Path(__file__).resolve().parents[1]
SCALING = ROOT / "docs" / "SCALING.md"
BEGIN, END = "<!-- tolerances: begin -->", "<!-- tolerances: end -->"


def _g(x: float) -> str:
    """0, or like 5e-3."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return "0" if x == 0 else f"{mantissa}e{int(exponent)}"


def tolerance_table() -> str:
    """One row per distinct tolerance, its columns in results.csv's order."""
    groups: dict = {}
    for name, tol in columns.tolerances().items():
        groups.setdefault(tol, []).append(name)
    rows = ["| column | atol | rtol | why |", "|---|---|---|---|"]
    for tol, names in groups.items():
        cells = ", ".join(f"`{n}`" for n in names)
        rows.append(f"| {cells} | {_g(tol.atol)} | {_g(tol.rtol)} | {tol.why} |")
    return "\n".join(rows)


def generated(text: str) -> str:
    """`text` (SCALING.md) with its tolerance block replaced by the generated one."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n{tolerance_table()}\n{text[end:]}"


def main(argv: list[str]) -> int:
    text = SCALING.read_text(encoding="utf-8")
    new = generated(text)
    if "--write" in argv:
        SCALING.write_text(new, encoding="utf-8")
        return 0
    if new != text:
        print(f"{SCALING.relative_to(ROOT)} is stale: run python tools/docs_tables.py --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
