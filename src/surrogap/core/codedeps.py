"""The project files a piece of code reaches, by following its imports statically.

A module reaches every project module it imports (``import surrogap.x``, ``from surrogap
import x``, ``from surrogap.x import y``, relative imports), at module level or inside a
function, the ``__init__.py`` of every package on the way, and every project module named in
a registry that ``importlib`` loads from: a module-level assignment to a name ending in
``_MODULES`` (such as ``surrogap.models.ENCODER_MODULES``); a module that imports project
code of another folder by name must keep such a registry. The closure of that relation is what a stage runs.

dvc.yaml lists it by layer (:func:`stage_deps`): the stage's script, the package's
``__init__.py``, the files it reaches in ``pipeline/`` (its own module), and every layer
folder (:data:`LAYERS`) it reaches a file of, whole. tests/test_deps.py checks that list for
every stage and that no layer imports a layer above it; the checkpoint fingerprint of
`pretrain` hashes the same files (:func:`fingerprint`).
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "surrogap"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# the layer folders of the package, lowest first: a module may import from its own layer and
# the ones before it, never from one after it (tests/test_deps.py). `pipeline` holds one
# module per stage, `ops` the tools around the pipeline; `cli.py` sits above them all.
LAYERS = (
    "core",
    "theory",
    "data",
    "models",
    "estimators",
    "training",
    "plots",
    "report",
    "pipeline",
    "ops",
)
# listed file by file, not whole: a stage lists only its own module of these
FILE_LAYERS = ("pipeline",)


def module_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The file of the project module `name` (dotted), or None if it is not one."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """The dotted name of a project file (a package's ``__init__.py`` names the package)."""
    rel = path.resolve().relative_to(package_dir).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _with_parents(name: str) -> list[str]:
    """`name` and every package above it: a.b.c -> a, a.b, a.b.c."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def imported_names(source: str, current: str | None, is_package: bool = False) -> set[str]:
    """Every module name `source` imports or names in a string literal (dotted; not checked
    to exist). `current` is the dotted name of the module itself, for relative imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if current is None:
                    continue
                base = current.split(".")
                keep = len(base) - node.level + (1 if is_package else 0)
                base = base[:keep]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id.endswith("_MODULES") for t in node.targets
        ):
            for const in ast.walk(node.value):  # a registry that importlib loads from
                if isinstance(const, ast.Constant) and str(const.value).startswith(PACKAGE + "."):
                    names.add(const.value)
    return names


def reached(starts: Iterable[Path], package_dir: Path = PACKAGE_DIR) -> set[Path]:
    """Every project file reached from the files `starts` (themselves included; a file
    outside the package, like a stage script, is followed too)."""
    package_dir = package_dir.resolve()
    seen: set[Path] = set()
    todo = [Path(p).resolve() for p in starts]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        inside = path.is_relative_to(package_dir)
        current = module_name(path, package_dir) if inside else None
        for name in imported_names(path.read_text(), current, path.name == "__init__.py"):
            for part in _with_parents(name):
                found = module_file(part, package_dir)
                if found is not None and found not in seen:
                    todo.append(found)
    return seen


def reached_from_module(name: str, package_dir: Path = PACKAGE_DIR) -> set[Path]:
    """Every project file that importing the module `name` and running its code reaches."""
    start = module_file(name, package_dir)
    if start is None:
        raise ValueError(f"{name!r} is not a module of {PACKAGE}")
    parents = [module_file(p, package_dir) for p in _with_parents(name)[:-1]]
    return reached([start, *(p for p in parents if p is not None)], package_dir)


def fingerprint(name: str, package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 (16 hex digits) of the project files the deps of module `name` cover (the
    layer folders it reaches, whole: :func:`deps_of`), by relative path."""
    digest = hashlib.sha256()
    covered = files_of(deps_of(reached_from_module(name, package_dir), package_dir))
    for path in sorted(covered):
        rel = path.relative_to(package_dir).as_posix()
        digest.update(rel.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def layer_of(path: Path, package_dir: Path = PACKAGE_DIR) -> str | None:
    """The layer folder a package file lies in, or None (the package root, outside)."""
    path = path.resolve()
    if not path.is_relative_to(package_dir.resolve()):
        return None
    parts = path.relative_to(package_dir.resolve()).parts
    return parts[0] if len(parts) > 1 and parts[0] in LAYERS else None


def deps_of(reached_files: Iterable[Path], package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The dep paths that cover `reached_files`: each layer folder with a reached file, whole
    (but the FILE_LAYERS, file by file), and every other file itself; sorted."""
    out: set[Path] = set()
    for path in reached_files:
        layer = layer_of(path, package_dir)
        if layer is None or layer in FILE_LAYERS:
            out.add(path.resolve())
        else:
            out.add(package_dir.resolve() / layer)
    return sorted(out)


def files_of(deps: Iterable[Path]) -> set[Path]:
    """Every .py file the dep paths name (a folder names all of its own)."""
    files: set[Path] = set()
    for d in deps:
        d = Path(d)
        files |= set(d.rglob("*.py")) if d.is_dir() else {d}
    return {f.resolve() for f in files if "__pycache__" not in f.parts}


def stage_deps(script: Path, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The code deps of the stage whose script is `script`: the script, then :func:`deps_of`
    everything it reaches."""
    script = Path(script).resolve()
    return [
        script,
        *(p for p in deps_of(reached([script], package_dir), package_dir) if p != script),
    ]
