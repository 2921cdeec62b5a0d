"""The private DVC API that `surrogap sweep` drives (ops/sweep.py, recording.py,
dvcstate.py, workers.py), each entry with the call shape it is used with, and the DVC
versions the project allows (pyproject.toml's `dvc` requirement, read from the installed
package's metadata). `surrogap doctor` reports a DVC outside that range or one that lacks
an entry; tests/test_doctor.py fails on such an install.

The lower bound: 3.63.0 is the first release with `ProjectFile.dump_stages` (the sweep's
batched dvc.lock writes). `missing()` run on the code of each release (its wheel on the
path, the other packages those of 3.67.1) named only that entry for 3.50.0, 3.60.0 and
3.62.0 and nothing for 3.63.0, 3.66.0 and 3.67.1; the test suite runs on 3.67.1. The upper
bound: DVC 4 may change any entry.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

ANY = None  # an entry that is only read (a class, a constant, a property): no call shape


@dataclass(frozen=True)
class Internal:
    """`module`.`name` (a dotted name inside the module: Class.method), called with
    `positional` positional arguments (self counted) and the keywords `keywords`; ANY: only
    its presence is needed."""

    module: str
    name: str
    positional: int | None = ANY
    keywords: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.module}.{self.name}"


INTERNALS = (
    Internal("dvc.repo.reproduce", "_reproduce_stage", 1, ("upstream",)),
    Internal("dvc.repo.reproduce", "collect_stages", 2),
    Internal("dvc.repo.reproduce", "get_active_graph", 1),
    Internal("dvc.repo.reproduce", "plan_repro", 2),
    Internal("dvc.stage.run", "_enforce_cmd_list", 1),
    Internal("dvc.stage.run", "_make_cmd", 2),
    Internal("dvc.stage.run", "get_executable", 0),
    Internal("dvc.stage.cache", "RunCacheNotFoundError"),
    Internal("dvc.stage.cache", "StageCache.restore", 2, ("run_cache",)),
    Internal("dvc.stage", "Stage.changed", 3),
    Internal("dvc.stage", "Stage.remove_outs", 1, ("ignore_remove", "force")),
    Internal("dvc.stage", "Stage.save", 1, ("run_cache",)),
    Internal("dvc.stage", "Stage.commit", 1),
    Internal("dvc.stage", "Stage.addressing"),
    Internal("dvc.output", "Output.ignore", 1),
    Internal("dvc.output", "Output.use_scm_ignore"),
    Internal("dvc.dvcfile", "PROJECT_FILE"),
    Internal("dvc.dvcfile", "ProjectFile.dump_stages", 2, ("update_pipeline",)),
    Internal("dvc.dvcfile", "ProjectFile._lockfile"),
    Internal("dvc.dvcfile", "Lockfile", 3),
    Internal("dvc.dvcfile", "Lockfile.dump_stages", 2),
    Internal("dvc.repo", "Repo._reset", 1),
    Internal("dvc.repo", "Repo.scm_context"),
    Internal("dvc.repo", "Repo.index"),
    Internal("dvc.repo", "lock_repo", 1),
    Internal("dvc.lock", "LockError"),
    Internal("dvc.rwlock", "rwlock", 6),
    Internal("dvc.dependency.db", "AbstractDependency"),
    Internal("dvc.dependency.repo", "RepoDependency"),
    Internal("dvc.utils", "fix_env", 1),
)


def problem(item: Internal) -> str | None:
    """Why the installed DVC cannot serve `item` (None: it can)."""
    try:
        obj = importlib.import_module(item.module)
    except ImportError as exc:
        return f"{item.where}: {item.module} does not import ({exc})"
    for part in item.name.split("."):
        try:  # a property or cached property read from its class, never run
            obj = inspect.getattr_static(obj, part)
        except AttributeError:
            return f"{item.where}: missing"
    if item.positional is ANY:
        return None
    func = getattr(obj, "__func__", obj)  # a staticmethod or classmethod
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return f"{item.where}: not a function"
    try:
        sig.bind(*[None] * item.positional, **dict.fromkeys(item.keywords))
    except TypeError as exc:
        return f"{item.where}{sig}: the call surrogap sweep makes does not fit ({exc})"
    return None


def missing() -> list[str]:
    """One line per internal the installed DVC lacks or has with another call shape."""
    return [p for p in map(problem, INTERNALS) if p is not None]


def requirement() -> str:
    """The `dvc` version range surrogap's installed metadata declares (pyproject.toml), e.g.
    '>=3.63,<4'; '' when surrogap's metadata is not installed."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    try:
        found = requires("surrogap") or []
    except PackageNotFoundError:
        return ""
    for line in found:
        req = Requirement(line)
        if req.name == "dvc" and not req.marker:  # lower bound first
            return ",".join(sorted(map(str, req.specifier), key=lambda x: not x.startswith(">")))
    return ""


def in_range(version: str, spec: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(spec).contains(version, prereleases=True)
