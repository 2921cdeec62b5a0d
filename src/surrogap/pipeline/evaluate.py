"""The `evaluate` stage: `surrogap evaluate` over every entry of params `evaluate.features`
(bring your own representation), one row per (entry, K) in reports/external.csv."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from pydantic import Field

from surrogap.core import io
from surrogap.core.config import ONE_LINE, distinct, model, parse, section, spec
from surrogap.core.errors import UserError
from surrogap.estimators.external import PRIORS, STAGE_COLUMNS, evaluate, read_features


@model
class FeatureEntry:
    """One feature set of params `evaluate.features`."""

    name: str = spec(pattern=ONE_LINE, allowed="a non-empty one-line string")
    path: str = spec(pattern=ONE_LINE, allowed="a path to a features file or datasets folder")
    labels: str | None = spec(
        None, pattern=ONE_LINE, allowed="a path to a .npy, .txt or .csv labels file"
    )
    features_key: str | None = spec(None, pattern=ONE_LINE, allowed="an npz key or column name")
    labels_key: str | None = spec(None, pattern=ONE_LINE, allowed="an npz key or column name")
    split_column: str | None = spec(None, pattern=ONE_LINE, allowed="an npz key or column name")


@model
class EvaluateParams:
    """The `evaluate` section of params.yaml."""

    features: tuple[FeatureEntry, ...] = spec(factory=tuple)
    k: tuple[Annotated[int, Field(ge=1)], ...] = spec(
        (1, 4, 16, 64, 256),
        min_length=1,
        check=distinct,
        allowed="a non-empty list of distinct integers >= 1",
    )
    repeats: int = spec(10, ge=1)
    seed: int = spec(0, ge=0)
    test_fraction: float = spec(0.3, gt=0, lt=1)
    prior: Literal[PRIORS] = spec("uniform", allowed=", ".join(PRIORS))

    def validate(self, where: str) -> None:
        names = [e.name for e in self.features]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise UserError(
                    f"{where}.features[{i}].name: got {name!r} twice, allowed: distinct names"
                )


def parse_params(params: Mapping) -> EvaluateParams:
    """The `evaluate` section, strictly (an unknown key is one line, nothing runs)."""
    return parse(EvaluateParams, section(params, "evaluate"), "evaluate")


def check_inside(path: str, inputs: Path, where: str) -> None:
    """`path` lies inside the folder `inputs` (the stage's declared dep in dvc.yaml)."""
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(inputs.resolve()):
        raise UserError(
            f"{where}: got {path!r}, allowed: a path inside {str(inputs)!r} (the folder the "
            "evaluate stage depends on in dvc.yaml, so that a changed file re-runs it)"
        )


def run(params: Mapping, out: str | Path, inputs: str | Path) -> None:
    """The `evaluate` stage: one row per (entry, K) in `out` (CSV, header only for no entries).

    Every entry's files must lie inside the folder `inputs`, the stage's dep in dvc.yaml.
    Every entry is read and evaluated before anything is written; a failure names the entry.
    """
    p = parse_params(params)
    inputs = Path(inputs)
    for i, entry in enumerate(p.features):
        check_inside(entry.path, inputs, f"evaluate.features[{i}].path")
        if entry.labels is not None:
            check_inside(entry.labels, inputs, f"evaluate.features[{i}].labels")
    rows = []
    for i, entry in enumerate(p.features):
        try:
            fs = read_features(
                entry.path,
                labels_path=entry.labels,
                features_key=entry.features_key,
                labels_key=entry.labels_key,
                split_column=entry.split_column,
            )
            records = evaluate(fs, p.k, p.repeats, p.seed, p.test_fraction, p.prior)
        except UserError as exc:
            raise UserError(f"evaluate.features[{i}] ({entry.name!r}): {exc}") from None
        rows += [{"dataset": entry.name, **r} for r in records]
    # after the entries' own checks (each names its entry): any other FIFO or device there
    io.refuse_special_files(inputs, "the folder the evaluate stage depends on in dvc.yaml")
    df = pd.DataFrame(rows, columns=list(STAGE_COLUMNS))
    io.write_with(out, lambda tmp: df.to_csv(tmp, index=False, float_format="%.10g"), suffix=".csv")
