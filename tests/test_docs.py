"""The documents say what is true of the repository: every test a document names exists
where it says, and every document the code cites is in docs/.

docs/FAULTS.md names, on each row, the test that proves it (`tests/test_faults.py` unless a
file is named on that row); docs/THEORY.md and the README name tests as well. A test that
is renamed or moved to another file must take its documents with it.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# `tests/test_x.py::test_name`, `test_x.py::test_name` or a bare `test_name`
NAMED = re.compile(r"`(?:(?:tests/)?(test_[A-Za-z0-9_]+\.py)::)?(test_[A-Za-z0-9_]+)`")
FILE = re.compile(r"`(?:tests/)?(test_[A-Za-z0-9_]+\.py)(?:::[A-Za-z0-9_]+)?`")
CITED = re.compile(r"\b(?:docs/)?([A-Z][A-Z_]+\.md)\b")


@cache
def defined_tests(file: str) -> frozenset[str]:
    path = ROOT / "tests" / file
    if not path.is_file():
        return frozenset()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    )


def references(doc: Path) -> list[tuple[int, str, str]]:
    """(line number, file, test) for every test the document names; a bare name belongs
    to the last file named before it on its line, else to FAULTS.md's default file."""
    found = []
    default = "test_faults.py" if doc.name == "FAULTS.md" else None
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        for match in NAMED.finditer(line):
            file, name = match.groups()
            if file is None:
                before = FILE.findall(line[: match.start()])
                file = before[-1] if before else default
            found.append((number, file, name))
    return found


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: p.name)
def test_every_test_a_document_names_exists_where_it_says(doc):
    wrong = []
    for number, file, name in references(doc):
        if file is None:  # a bare name with no file on its line: a param, not a test
            continue
        if name not in defined_tests(file):
            wrong.append(f"{doc.name}:{number}: {name} is not in tests/{file}")
    assert not wrong, "\n".join(wrong)


def test_every_document_the_code_cites_is_in_docs():
    cited: dict[str, list[str]] = {}
    for folder in ("src", "stages", "tools", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in CITED.findall(path.read_text(encoding="utf-8")):
                cited.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert {"THEORY.md", "PROTOCOL.md", "FAULTS.md"} <= set(cited)
    missing = {
        name: paths
        for name, paths in cited.items()
        if name != "README.md" and not (ROOT / "docs" / name).is_file()
    }
    assert not missing, missing
