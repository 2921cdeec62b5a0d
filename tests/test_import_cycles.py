"""The import graph of src/surrogap has no cycle: every module's imports (at module level and
inside functions, absolute and relative, and the registries importlib loads from) resolved to
the package's own files, searched for a cycle of any length, not only an arrow back between
layers (tests/test_deps.py checks those)."""

from __future__ import annotations

from pathlib import Path

from surrogap.core import codedeps
from surrogap.core.codedeps import imported_names

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "surrogap"


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: the project modules it imports}, each import resolved to the most specific
    module file it names (`from a.b import c`: a.b.c where that is a module, else a.b)."""
    graph = {}
    for path in sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts):
        current = codedeps.module_name(path, package)
        targets = set()
        for name in imported_names(path.read_text(), current, path.name == "__init__.py"):
            parts = name.split(".")
            for i in range(len(parts), 1, -1):  # the longest prefix that is a module
                found = codedeps.module_file(".".join(parts[:i]), package)
                if found is not None:
                    targets.add(codedeps.module_name(found, package))
                    break
        graph[current] = targets - {current}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as the modules along it (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "surrogap.estimators.tables" in graph["surrogap.estimators.features"]
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    pkg = tmp_path / "surrogap"
    (pkg / "sub").mkdir(parents=True)
    for rel in ("__init__.py", "sub/__init__.py", "c.py"):
        (pkg / rel).write_text("")
    (pkg / "a.py").write_text("from surrogap.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import c\n    from ..a import g\n")
    cycle = find_cycle(import_graph(pkg))
    assert cycle == ["surrogap.a", "surrogap.sub.b", "surrogap.a"]
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    assert find_cycle(import_graph(pkg)) is None
