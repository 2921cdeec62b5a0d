"""One home per fact: a results column is one entry of surrogap.core.columns.COLUMNS and a
dataset kind one entry of surrogap.core.kinds.KINDS (and its module in surrogap.data). A fake of each, added in that one place
only, reaches every reader: results.csv's reader (types and ranges), compare's tolerances,
docs/SCALING.md's generated table, and the report's naming and scale table of the data."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from surrogap.core import columns, files, kinds
from surrogap.core.columns import Column, Tolerance
from surrogap.core.errors import UserError
from surrogap.core.schema import RESULTS_CSV_COLUMNS
from surrogap.report import compare, markdown, stats

ROOT = Path(__file__).resolve().parents[1]
FAKE = Column(
    "fake_acc",
    "finite",
    (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    Tolerance(0.0, 1e-6, "a fake estimator's accuracy, compared almost exactly"),
    writer="probe stage (a fake estimator)",
    label="fake acc.",
)


def docs_tables():
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "tools" / "docs_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results_with_fake(folder: Path, fake: float) -> Path:
    """folder/results.csv: the committed table's first rows with a fake_acc column."""
    folder.mkdir()
    frame = pd.read_csv(ROOT / "reports" / "results.csv").head(3)
    frame["fake_acc"] = [0.5, 0.25, fake]
    frame.to_csv(folder / "results.csv", index=False, float_format="%.10g")
    return folder / "results.csv"


def test_a_column_declared_once_reaches_every_reader(tmp_path, monkeypatch):
    monkeypatch.setitem(columns.COLUMNS, "fake_acc", FAKE)
    assert columns.result_columns()[-1] == "fake_acc"
    # the reader of results.csv types the column and checks its range
    path = results_with_fake(tmp_path / "rep", 0.75)
    table = files.read_csv(path, [*RESULTS_CSV_COLUMNS, "fake_acc"], "results file")
    assert table["fake_acc"].dtype == float and table["fake_acc"].iloc[2] == 0.75
    bad = results_with_fake(tmp_path / "bad", 1.5)
    with pytest.raises(UserError, match=r"column 'fake_acc': 1\.5, allowed: a number in \[0, 1\]"):
        files.read_csv(bad, [*RESULTS_CSV_COLUMNS, "fake_acc"], "results file")
    # compare allows it its tolerance, column by column
    assert columns.tolerances()["fake_acc"] == FAKE.tol
    ref = compare.read_path(results_with_fake(tmp_path / "ref", 0.75 + 1e-3))
    rows, *_ = compare.compare_columns(compare.read_path(path), ref)
    (row,) = [r for r in rows if r["column"] == "fake_acc"]
    assert row["outside"] == 1 and row["rtol"] == 1e-6
    # docs/SCALING.md's tolerance table, generated, holds it (the committed one does not)
    assert f"| `fake_acc` | 0 | 1e-6 | {FAKE.tol.why} |" in docs_tables().tolerance_table()


def test_a_kind_declared_once_reaches_the_report(monkeypatch):
    paper = dict(data="Fake-1", classes="7", per_class="9", batch="64", epochs="5", k="2-4", seeds="2")  # fmt: skip
    monkeypatch.setitem(kinds.KINDS, "fake", kinds.Kind("synthetic", "fake data", paper))
    results = pd.read_csv(ROOT / "reports" / "results.csv")
    results = results[results["dataset"] == "circle"].assign(kind="fake")
    assert stats.data_note(results) == "data: circle (fake data)"
    (row,) = markdown.scale_rows(results, None)
    assert row["kind"] == "fake" and row["paper"] == paper
    assert "Fake-1" in "\n".join(markdown.scale_markdown(results, None))


def test_a_kind_without_an_entry_is_named_as_such(monkeypatch):
    results = pd.read_csv(ROOT / "reports" / "results.csv")
    results = results[results["dataset"] == "circle"].assign(kind="nokind")
    assert stats.data_note(results) == "data: circle (kind nokind)"
    (row,) = markdown.scale_rows(results, None)
    assert row["paper"] is None


def test_every_kind_of_the_table_is_built_by_its_module():
    """core.kinds.KINDS names, for each kind, the module of surrogap.data whose own KINDS
    holds its config class and builder; no module builds a kind the table lacks."""
    modules = {entry.module for entry in kinds.KINDS.values()}
    built = {}
    for name in modules:
        built.update(importlib.import_module(f"surrogap.data.{name}").KINDS)
    assert set(built) == set(kinds.KINDS)
    for kind, entry in kinds.KINDS.items():
        assert kind in importlib.import_module(f"surrogap.data.{entry.module}").KINDS
