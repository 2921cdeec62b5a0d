"""One truth per fact: what the documents state about selection rules, the report's claims
and the DVC recipes is checked against the code (its constants, its behaviour) and against
DVC's own column filter, so a change to one without the other fails here."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
import yaml

from surrogap.core.schema import RESULTS_CSV_COLUMNS
from surrogap.pipeline import select_lr
from surrogap.report import claims, load

ROOT = Path(__file__).resolve().parents[1]
DOCS = {
    name: (ROOT / path).read_text(encoding="utf-8")
    for name, path in {
        "README": "README.md",
        "ARCHITECTURE": "docs/ARCHITECTURE.md",
        "PROTOCOL": "docs/PROTOCOL.md",
        "SCALING": "docs/SCALING.md",
        "THEORY": "docs/THEORY.md",
    }.items()
}


def flat(text: str) -> str:
    """Whitespace collapsed, Markdown emphasis and code marks dropped."""
    return " ".join(text.replace("**", "").replace("`", "").split())


# --------------------------------------------------------------------------- linear probe
def test_linear_probe_selection_in_the_docs_is_the_codes_key():
    source = (ROOT / "src/surrogap/estimators/evaluation.py").read_text(encoding="utf-8")
    (key,) = re.findall(r"key = \(([^)]*)\)", source)
    words = {
        "val_loss": "lowest validation cross-entropy",
        "-val_acc": "higher validation accuracy",
    }
    first, tie = (words[part.strip()] for part in key.split(","))  # the code's key, in words
    assert "best[0]" in source and "key < best[0]" in source  # strict: the first in the grid
    stated = f"{first} is kept (ties: {tie}, then the first in the grid)"
    assert stated in flat(DOCS["PROTOCOL"])
    assert f"{first} (ties: {tie}, then the first in the grid)" in flat(DOCS["ARCHITECTURE"])
    assert "best validation accuracy is kept" not in flat(DOCS["PROTOCOL"])


# --------------------------------------------------------------------------- select_lr
TIES = "ties: the lower validation R_mu, then the section's own lr, then the smaller lr"


def _runs(rows: list[tuple]) -> pd.DataFrame:
    """Runs of one (dataset, classes, k, seed): (lr or None, val_mean_acc, val_supervised_loss)."""
    out = []
    for i, (lr, acc, loss) in enumerate(rows):
        row = dict.fromkeys(RESULTS_CSV_COLUMNS, 0.0)
        row.update(dataset="circle", kind="circle", classes=20, k=4, seed=0, lr=lr)
        row.update(val_mean_acc=acc, val_supervised_loss=loss, run=f"r{i}")
        out.append(row)
    return pd.DataFrame(out)


@pytest.mark.parametrize(
    ("rows", "kept"),
    [
        ([(None, 0.8, 1.0), (0.1, 0.9, 2.0)], "r1"),  # the best validation accuracy
        ([(None, 0.9, 1.0), (0.1, 0.9, 0.5)], "r1"),  # tie: the lower validation R_mu
        ([(0.01, 0.9, 1.0), (None, 0.9, 1.0)], "r1"),  # then the section's own lr
        ([(0.3, 0.9, 1.0), (0.1, 0.9, 1.0)], "r1"),  # then the smaller lr
    ],
)
def test_select_lr_ties_are_what_every_document_says(rows, kept):
    assert select_lr.select(_runs(rows))["run"].tolist() == [kept]
    for name in ("PROTOCOL", "ARCHITECTURE", "SCALING"):
        text = flat(DOCS[name]).replace(", where validation R_mu is val_supervised_loss", "")
        assert TIES in text, name
    assert TIES in flat(select_lr.__doc__)


# --------------------------------------------------------------------------- claims
def test_theory_lists_the_reports_claims_by_number_and_name():
    results = load.load_results(ROOT / "reports" / "selected.csv")
    code = [(c.number, c.name) for c in claims.claims(results, pd.DataFrame(), points={})]
    text = DOCS["THEORY"]
    seven = text[text.index("## 7. ") : text.index("## 8. ")]
    listed = [(int(n), name) for n, name in re.findall(r"^(\d+)\. \*\*(.+?)\*\*", seven, re.M)]
    assert listed == code
    eight = text[text.index("## 8. ") :]
    assert [int(n) for n in re.findall(r"^(\d+)\. \*\*", eight, re.M)] == [n for n, _ in code]
    words = {4: "four", 5: "five", 6: "six"}
    assert f"The report tests {words[len(code)]} claims" in flat(seven)


# --------------------------------------------------------------------------- DVC recipes
def code_lines(text: str) -> list[str]:
    """Lines of fenced blocks and of 4-space indented blocks."""
    fenced = re.findall(r"^```\w*\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    indented = [line.strip() for line in text.splitlines() if line.startswith("    ")]
    return [line for block in fenced for line in block.splitlines()] + indented


def test_run_cache_recipes_say_repro_pull_and_queued_runs_reuse_it():
    for name in ("README", "SCALING"):
        lines = code_lines(DOCS[name])
        assert not [line for line in lines if "dvc pull --run-cache" in line], name
        assert "dvc repro --pull" in flat(DOCS[name]), name
        assert "queued -S 'k=[1,2,4,16,64]' " in flat(DOCS[name]), name
        assert "trains only the K = 2 groups" in flat(DOCS[name]), name
        # a new seed re-runs every (dataset, K) group: no document may promise otherwise
        assert "trains only the seed-3 runs" not in flat(DOCS[name]), name


def test_readme_exp_show_recipes_show_k_and_fit_a_normal_terminal():
    """Each README `dvc exp show` line, as DVC applies --drop and --keep (--keep protects,
    both re.match the column's name), on the default grid's columns: it shows the
    experiment and the K list, no dependency hash, and fits 100 columns (each shown column
    as wide as its name or its widest value, plus DVC's 3 of padding; the metric columns:
    reports/metrics/<file>.json:<key>, several files sharing their keys)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    metrics = [
        f"reports/metrics/{path.name}:{key}"
        for path in sorted((ROOT / "reports" / "metrics").glob("*.json"))
        for key in json.loads(path.read_text())
    ]
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    deps = sorted({d for s in stages.values() for d in s.get("deps", []) if "$" not in d})
    width = {"Experiment": len("└── 967bfb2 [lucky-tiff]"), "Created": 8}
    width.update({m: max(len(m), 8) for m in metrics})
    width.update({d: max(len(d), 32) for d in deps})  # a dependency's hash
    width.update(
        {key: max(len(key), len(str(params[key]))) for key in ("dataset", "k", "seed", "lr")}
    )
    lines = [x for x in code_lines(DOCS["README"]) if x.startswith("dvc exp show")]
    assert len(lines) >= 2
    metrics_shown = []
    for line in lines:
        argv = shlex.split(line.split("#")[0])
        drop = re.compile(argv[argv.index("--drop") + 1])
        keep = re.compile(argv[argv.index("--keep") + 1])
        shown = [c for c in width if keep.match(c) or not drop.match(c)]
        assert shown[0] == "Experiment" and "k" in shown, line
        assert not [d for d in deps if d in shown], line
        assert sum(width[c] + 3 for c in shown) <= 100, (line, shown)
        metrics_shown += [m for m in metrics if m in shown]
    assert metrics_shown  # a metric by K list
