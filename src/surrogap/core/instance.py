"""Which instance of a matrix stage of dvc.yaml this process runs, from DVC's `DVC_STAGE`.

No params value reaches a shell: every matrix stage's `cmd` in dvc.yaml is a constant
(`python stages/pretrain.py`), and DVC names the instance it runs in the environment
variable DVC_STAGE (dvc/stage/run.py, `prepare_kwargs`: the stage's addressing, e.g.
``pretrain@circle-4``). The script reads params.yaml, enumerates the instances of its
stage from the same sweep lists dvc.yaml's `matrix` expands (:data:`MATRIX`), builds each
one's key as DVC does (dvc/parsing/__init__.py, ``MatrixDefinition.normalized_iterable``:
one fragment per matrix key, joined by "-"; a scalar value's fragment is
``dvc.parsing.interpolate.to_str`` of it, a list or mapping value's is ``<key><index>``) and
requires exactly one match. Every path then comes from :func:`surrogap.core.schema.stage_paths`,
which spells dvc.yaml's deps and outs (tests/test_deps.py checks both against DVC's own
expansion). DVC itself is not imported (start-up cost).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from surrogap.core import config, schema
from surrogap.core.errors import UserError

# dvc.yaml's matrix stages and the params lists each one's `matrix` expands, in order
MATRIX: dict[str, tuple[str, ...]] = {
    "prepare": ("dataset",),
    "pretrain": ("dataset", "k"),
    "extract": ("dataset", "k"),
    "probe": ("dataset", "k"),
    "pretrain-lr": ("dataset", "k", "lr"),
    "extract-lr": ("dataset", "k", "lr"),
    "probe-lr": ("dataset", "k", "lr"),
}
# the stages each script of stages/ runs
SCRIPT_STAGES: dict[str, tuple[str, ...]] = {
    script: tuple(name for name in MATRIX if name.removesuffix("-lr") == script)
    for script in ("prepare", "pretrain", "extract", "probe")
}


def to_str(value: Any) -> str:
    """DVC's text of a scalar matrix value (dvc.parsing.interpolate.to_str): true/false for a
    boolean, Python's str otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fragment(name: str, index: int, value: Any) -> str:
    """One value's part of a matrix key: ``<name><index>`` for a list or mapping, else its text."""
    return f"{name}{index}" if isinstance(value, (list, tuple, dict)) else to_str(value)


def combinations(lists: Mapping[str, Sequence]) -> list[tuple[str, dict]]:
    """(DVC's key, the values by name) of every combination of a matrix over `lists`
    (name -> values), in DVC's order."""
    out: list[tuple[str, dict]] = [("", {})]
    for name, values in lists.items():
        out = [
            (f"{head}-{frag}" if head else frag, {**chosen, name: value})
            for head, chosen in out
            for frag, value in ((fragment(name, i, v), v) for i, v in enumerate(values))
        ]
    return out if lists else []


def keys(lists: Mapping[str, Sequence]) -> list[str]:
    """Every key of a matrix over `lists` (name -> values), in DVC's order."""
    return [key for key, _ in combinations(lists)]


def matches(lists: Mapping[str, Sequence], key: str) -> list[dict]:
    """The combinations of `lists` whose DVC key is `key`: the same answer as comparing `key`
    with every entry of :func:`keys`, without building the whole product."""
    names = list(lists)
    found: list[dict] = []

    def walk(i: int, rest: str, chosen: dict) -> None:
        name, last = names[i], i == len(names) - 1
        for index, value in enumerate(lists[name]):
            frag = fragment(name, index, value)
            if last:
                if rest == frag:
                    found.append({**chosen, name: value})
            elif rest.startswith(frag + "-"):
                walk(i + 1, rest[len(frag) + 1 :], {**chosen, name: value})

    if names:
        walk(0, key, {})
    return found


@dataclass(frozen=True)
class Instance:
    """One instance of a matrix stage: its values as params.yaml holds them."""

    stage: str
    dataset: str
    k: int | None = None
    lr: Any = None

    def paths(self) -> dict[str, str]:
        return schema.stage_paths(self.stage, self.dataset, self.k, self.lr)


def resolve(params: Mapping, script: str, addressing: str) -> Instance:
    """The instance of `script`'s stages that DVC's `addressing` names, from the sweep lists
    of `params` (checked first: names, types, ranges); one UserError line otherwise."""
    stages = SCRIPT_STAGES[script]
    name = addressing.rpartition(":")[2]  # "<dvc.yaml path>:" precedes it outside the root
    stage, at, key = name.partition("@")
    if stage not in stages or not at:
        expected = " or ".join(f"{s}@<{'>-<'.join(MATRIX[s])}>" for s in stages)
        raise UserError(
            f"DVC_STAGE is {config.shown(addressing)}, expected {expected} "
            f"(set by dvc repro; by hand, give --dataset and the paths: see --help)"
        )
    config.grid(params)  # the lists DVC expanded: well-formed, names safe, no repeats
    lists = {key_name: list(params.get(key_name) or []) for key_name in MATRIX[stage]}
    found = matches(lists, key)
    if len(found) != 1:
        how = "no instance" if not found else f"{len(found)} instances"
        raise UserError(
            f"DVC_STAGE is {config.shown(addressing)}: {how} of {stage} in the "
            f"params lists {', '.join(MATRIX[stage])} has the key {config.shown(key)}; "
            "DVC expanded dvc.yaml from other params lists: run `dvc repro` again"
        )
    return Instance(stage, **found[0])


def current(params: Mapping, script: str, environ: Mapping[str, str] | None = None) -> Instance:
    """The instance DVC runs now (`DVC_STAGE`), or one line saying how to run by hand."""
    addressing = (os.environ if environ is None else environ).get("DVC_STAGE")
    if not addressing:
        raise UserError(
            "no --dataset given and DVC_STAGE is not set: run it with `dvc repro "
            f"{script}` or give --dataset and the paths by hand (see --help)"
        )
    return resolve(params, script, addressing)
