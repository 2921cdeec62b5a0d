"""The documents say what is true of the repository: every test a document names exists
where it says, every document the code cites is in docs/, every section a reference names
exists in its document, and docs/ARCHITECTURE.md's layer and stage-deps tables are the code's.

docs/FAULTS.md names, on each row, the test that proves it (`tests/test_faults.py` unless a
file is named on that row); docs/THEORY.md and the README name tests as well. A test that
is renamed or moved to another file must take its documents with it.

A reference to a part of a document takes one of the forms the project writes, and each must
land on a heading of that document:

- a number: `docs/THEORY.md, section 6`, `THEORY.md (section 8)`, `THEORY.md section 3.2`,
  `§6` (a heading `## 6. Numerics` or `### 3.2 ...`); inside docs/ a bare `section 8` is one
  of the document's own sections, elsewhere a bare one names no document and is wrong;
- a title: `docs/PROTOCOL.md, "Estimators on frozen features"` (a heading equal to the title,
  or the title followed by ` (` or `:`);
- an anchor: `docs/SCALING.md#parallel-sweeps-on-dask-surrogap-sweep` (GitHub's slug of a
  heading), or `](#anchor)` inside a document.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from functools import cache
from pathlib import Path

import pytest

from surrogap.core import codedeps

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# `tests/test_x.py::test_name`, `test_x.py::test_name` or a bare `test_name`
NAMED = re.compile(r"`(?:(?:tests/)?(test_[A-Za-z0-9_]+\.py)::)?(test_[A-Za-z0-9_]+)`")
FILE = re.compile(r"`(?:tests/)?(test_[A-Za-z0-9_]+\.py)(?:::[A-Za-z0-9_]+)?`")
CITED = re.compile(r"\b(?:docs/)?([A-Z][A-Z_]+\.md)\b")
# the code and configuration whose references to a document's sections are checked
CODE_SOURCES = sorted(
    [
        *(ROOT / "src").rglob("*.py"),
        *(ROOT / "stages").glob("*.py"),
        *(ROOT / "tools").glob("*.py"),
        ROOT / "params.yaml",
        ROOT / "dvc.yaml",
    ]
)
DOC = r"(?:docs/)?\b([A-Z][A-Z0-9_]*\.md)"
NUMBER = r"\d+(?:\.\d+)*"
NUMBERS = rf"({NUMBER}(?:\s*(?:,|and|or|to|-|\u2013)\s*{NUMBER})*)"
SECTION_WORD = r"(?:\b[Ss]ections?\s*|\u00a7\u00a7?\s*)"
# `X.md, section 6`, `X.md (section 8)`, `X.md section 3.2`, `X.md's section 5`, `X.md, §6`
NUMBERED = re.compile(DOC + r"(?:'s)?[\s,;:(#]*" + SECTION_WORD + NUMBERS)
BARE = re.compile(SECTION_WORD + NUMBERS)
TITLED = re.compile(DOC + r"(?:'s)?[\s,;:(]*\"([^\"\n]+)\"")
ANCHORED = re.compile(DOC + r"#([\w-]+)")
OWN_ANCHOR = re.compile(r"\]\(#([\w-]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


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


# --------------------------------------------------------------------------- sections
def document_file(name: str) -> Path:
    return ROOT / name if name == "README.md" else ROOT / "docs" / name


@cache
def headings(name: str) -> tuple[str, ...]:
    """The headings of a document (outside fenced code), as written."""
    path = document_file(name)
    if not path.is_file():
        return ()
    found, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := HEADING.match(line)):
            found.append(m.group(1))
    return tuple(found)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(name: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for h in headings(name):
        base = slug(h)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def section_numbers(name: str) -> set[str]:
    """The numbers of a document's numbered headings (`## 6. Numerics`, `### 3.2 ...`)."""
    return {m.group(1) for h in headings(name) if (m := re.match(rf"({NUMBER})\.?\s", h))}


def has_title(name: str, title: str) -> bool:
    plain = title.replace("`", "")
    return any(
        h == plain or h.startswith((plain + " (", plain + ":"))
        for h in (h.replace("`", "") for h in headings(name))
    )


def references_in(text: str, own: str = "") -> list[tuple[int, str, str, str]]:
    """(line, document, kind, what) for every reference `text` makes to a part of a document:
    kind "section" (a number), "title" or "anchor". A bare section number belongs to `own`
    (the document the text is, if it is one), else to no document ("")."""

    def line(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    found, named_spans = [], []
    for m in NUMBERED.finditer(text):
        named_spans.append(range(m.start(), m.end()))
        for number in re.findall(NUMBER, m.group(2)):
            found.append((line(m.start()), m.group(1), "section", number))
    for m in BARE.finditer(text):
        if not any(m.start() in span for span in named_spans):
            for number in re.findall(NUMBER, m.group(1)):
                found.append((line(m.start()), own, "section", number))
    for m in TITLED.finditer(text):
        found.append((line(m.start()), m.group(1), "title", m.group(2)))
    for m in ANCHORED.finditer(text):
        found.append((line(m.start()), m.group(1), "anchor", m.group(2)))
    if own:
        for m in OWN_ANCHOR.finditer(text):
            found.append((line(m.start()), own, "anchor", m.group(1)))
    return found


def section_references(path: Path) -> list[tuple[int, str, str, str]]:
    own = path.name if path in DOCUMENTS else ""
    return references_in(path.read_text(encoding="utf-8"), own)


def wrong_references(path: Path) -> list[str]:
    wrong = []
    where = path.relative_to(ROOT)
    for number, name, kind, what in section_references(path):
        if not name:
            wrong.append(
                f"{where}:{number}: section {what} names no document (write X.md, section {what})"
            )
        elif not document_file(name).is_file():
            wrong.append(f"{where}:{number}: {name} is no document")
        elif kind == "section" and what not in section_numbers(name):
            wrong.append(f"{where}:{number}: {name} has no section {what}")
        elif kind == "title" and not has_title(name, what):
            wrong.append(f"{where}:{number}: {name} has no section titled {what!r}")
        elif kind == "anchor" and what not in anchors(name):
            wrong.append(f"{where}:{number}: {name} has no heading with the anchor #{what}")
    return wrong


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: p.name)
def test_every_section_a_document_names_exists(doc):
    wrong = wrong_references(doc)
    assert not wrong, "\n".join(wrong)


def test_every_section_the_code_names_exists():
    wrong = [w for path in CODE_SOURCES for w in wrong_references(path)]
    assert not wrong, "\n".join(wrong)


def test_the_reference_patterns_see_what_the_project_writes():
    """The patterns still catch the forms in use (a silent regex would pass everything)."""
    refs = {
        (name, kind, what)
        for path in [*DOCUMENTS, *CODE_SOURCES]
        for _, name, kind, what in section_references(path)
    }
    assert ("THEORY.md", "section", "8") in refs  # docs/THEORY.md, section 8 (code and docs)
    assert ("THEORY.md", "section", "3.2") in refs  # README: (docs/THEORY.md, section 3.2)
    assert any(kind == "anchor" for _, kind, _ in refs)  # README -> SCALING.md#...
    assert "6" in section_numbers("THEORY.md") and "3.2" in section_numbers("THEORY.md")
    sample = "see docs/THEORY.md (section 8) and THEORY.md,\nsection 3.1; also section 9 and §2"
    sample += ' (X.md, "Title") Y.md#an-anchor'
    assert references_in(sample, own="PROTOCOL.md") == [
        (1, "THEORY.md", "section", "8"),
        (1, "THEORY.md", "section", "3.1"),
        (2, "PROTOCOL.md", "section", "9"),
        (2, "PROTOCOL.md", "section", "2"),
        (2, "X.md", "title", "Title"),
        (2, "Y.md", "anchor", "an-anchor"),
    ]
    assert references_in("section 4", own="") == [(1, "", "section", "4")]


# --------------------------------------------------------------------------- ARCHITECTURE.md
def architecture_table(heading: str) -> list[list[str]]:
    """The rows (cells, stripped) of the first table under `heading` in ARCHITECTURE.md."""
    lines = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # without the header and the rule


def test_architecture_opens_with_the_layers_in_order():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    first = next(line for line in text.splitlines() if line.startswith("## "))
    assert first == "## Layers"
    names = [row[0].strip("`") for row in architecture_table("## Layers")]
    assert names == [*codedeps.LAYERS, "cli.py"]
    package = ROOT / "src" / "surrogap"
    folders = sorted(p.name for p in package.iterdir() if (p / "__init__.py").is_file())
    assert folders == sorted(codedeps.LAYERS)


def test_architecture_stage_deps_table_is_what_the_scripts_reach():
    table = {
        row[0].strip("`"): {c.strip("` ") for c in row[1].split(",")}
        for row in architecture_table("### Stage -> code deps")
    }
    package = ROOT / "src" / "surrogap"
    expected = {}
    for script in sorted((ROOT / "stages").glob("*.py")):
        deps = [Path(p).resolve() for p in codedeps.stage_deps(script)]
        fixed = {
            script.resolve(),
            (package / "__init__.py").resolve(),
            (package / "pipeline" / "__init__.py").resolve(),
            (package / "pipeline" / f"{script.stem}.py").resolve(),
        }
        assert fixed <= set(deps), script.name  # what the table's preamble says every stage has
        rest = [d for d in deps if d not in fixed]
        # layer folders, and another stage's pipeline module where a stage reuses its code
        layer = [d for d in rest if d.is_dir() and d.parent == package.resolve()]
        other = [d for d in rest if d.parent == (package / "pipeline").resolve()]
        assert len(layer) + len(other) == len(rest), (script, rest)
        expected[script.stem] = {d.name for d in layer} | {f"pipeline/{d.name}" for d in other}
    assert table == expected


def test_generated_doc_tables_are_current():
    """docs/SCALING.md's tolerance table is what tools/docs_tables.py generates from
    surrogap.core.columns (rerun it with --write after changing a column)."""
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "tools" / "docs_tables.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = (ROOT / "docs" / "SCALING.md").read_text(encoding="utf-8")
    assert tool.generated(text) == text, "run python tools/docs_tables.py --write"
    assert tool.tolerance_table() in text
