"""`surrogap compare`: a reproduced reports/ against a reference one (two paths, or the files
committed at a git revision), column by column against documented tolerances, and the
report's claim verdicts recomputed from both with the report's own code.

A side is a results.csv, or the reports/ folder holding it; beside it, selected.csv (the
table the report reads; results.csv where there is none) and report.md are read when
present, and the `report` section of params.yaml in the folder above (each side its own;
the defaults where there is none). `--ref REV` reads the same files as committed at REV
(`git show REV:reports/results.csv`). The tolerances and why: docs/SCALING.md,
"Reproducing: what is bit-identical and what is compared with tolerances".

Exit status: 0 when no verdict changed, every column is within its tolerance and both
sides hold the same runs; 1 otherwise; 2 for bad input (one line).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from surrogap.core.errors import UserError
from surrogap.core.io import regular_file
from surrogap.core.schema import RESULT_COLUMNS, RUN_KEYS
from surrogap.report import claims as report_claims
from surrogap.report import load
from surrogap.report.stats import run_label


@dataclass(frozen=True)
class Tolerance:
    """A difference d is within when |d| <= atol + rtol * |reference| (numpy.isclose)."""

    atol: float
    rtol: float
    why: str


_LOSS = Tolerance(5e-3, 0.0, "a loss in nats; another thread count moved it by up to 9.9e-4")
_PROBE_LOSS = Tolerance(
    1e-2, 0.0, "the linear probe's loss, a fit that amplifies feature noise: moved by up to 4.1e-3"
)
_ACC = Tolerance(1e-2, 0.0, "an accuracy; another thread count moved it by up to 5.6e-3")
_EARLIER = Tolerance(0.0, 5e-3, "affine in R_cont with coefficients up to hundreds")
_EXACT = Tolerance(0.0, 1e-9, "a function of K, C and the prior only: no training noise")
# every numeric column of reports/results.csv, in its order (tests/test_compare.py checks
# this covers them all, and that docs/SCALING.md's table is this one)
TOLERANCES: dict[str, Tolerance] = {
    "contrastive_loss": _LOSS,
    "contrastive_loss_se": Tolerance(1e-3, 0.0, "a standard error over pairings, ~1.7e-3"),
    "supervised_loss": _LOSS,
    "mean_acc": _ACC,
    "linear_acc": _ACC,
    "linear_loss": _PROBE_LOSS,
    "val_supervised_loss": _LOSS,
    "val_mean_acc": _ACC,
    "lower_gap": _EXACT,
    "upper_gap": _EXACT,
    "bao_lower": _LOSS,
    "bao_upper": _LOSS,
    "arora": _EARLIER,
    "nozawa_sato": _EARLIER,
    "ash": _EARLIER,
}
NICKNAMES = {"contrastive_loss": "R_cont", "supervised_loss": "R_mu"}
SUMMARY = ("contrastive_loss", "supervised_loss", "mean_acc", "linear_acc", "linear_loss")
NOT_NUMERIC = ("dataset", "kind", "classes", "k", "seed", "holds", "lr", "run")
CLAIM_LINE = re.compile(r"^- \*\*Claim (\d+) \((.*?)\):\*\* (.+?): ", re.MULTILINE)
# Claim 4 needs the trajectories (data/pretrain/), which reports/ does not hold
NEEDS_TRAJECTORIES = (4,)


@dataclass
class Side:
    """One side of the comparison, read into memory."""

    name: str  # what the user gave: a path, or REV:reports/
    results: pd.DataFrame
    columns: tuple[str, ...]
    selected: pd.DataFrame | None
    params: load.ReportParams
    report_md: str | None


# --------------------------------------------------------------------------- reading
def _side_from_folder(folder: Path, results: Path, name: str) -> Side:
    frame = load.load_results(results)  # an empty, cut or binary file: one line
    header = tuple(frame.columns)  # as the file orders them (load keeps every column)
    selected_path = folder / "selected.csv"
    selected = load.load_results(selected_path) if selected_path.is_file() else None
    params_path = folder.parent / "params.yaml"
    section = None
    if params_path.is_file():
        try:
            section = (yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}).get("report")
        except (yaml.YAMLError, AttributeError, OSError, UnicodeDecodeError) as exc:
            raise UserError(
                f"{str(params_path)!r} is not a params file ({type(exc).__name__})"
            ) from None
    report = folder / "report.md"
    try:
        text = report.read_text(encoding="utf-8") if report.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{str(report)!r} is unreadable ({type(exc).__name__})") from None
    return Side(name, frame, header, selected, load.parse_params(section), text)


def read_path(path: str | Path) -> Side:
    """A results.csv, or a folder holding one (reports/)."""
    path = Path(path)
    what = "a side (a results.csv or a reports/ folder)"
    # from its stat, never opened: a FIFO would block, /dev/zero never end
    regular_file(path, what, folder=True, missing=True)
    if path.is_dir():
        results = path / "results.csv"
        if not os.path.lexists(results):
            raise UserError(f"{str(path)!r} holds no results.csv (give a results.csv or reports/)")
        regular_file(results, "results.csv")
        return _side_from_folder(path, results, str(path))
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist (give a results.csv or a reports/ folder)")
    return _side_from_folder(path.parent, path, str(path))


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True)
    except FileNotFoundError:
        raise UserError("--ref needs git, which is not installed (or not on PATH)") from None


def read_revision(rev: str, cwd: str | Path = ".") -> Side:
    """reports/ and params.yaml as committed at `rev` in the git repository of `cwd`."""
    cwd = Path(cwd)
    top = _git(["rev-parse", "--show-toplevel"], cwd)
    if top.returncode != 0:
        raise UserError(f"--ref {rev}: {str(cwd.resolve())!r} is not inside a git repository")
    root = Path(os.fsdecode(top.stdout.rstrip(b"\r\n")))  # any bytes, as the OS names it
    if _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], root).returncode != 0:
        raise UserError(f"--ref {rev}: unknown revision (give a commit, branch or tag, e.g. HEAD)")
    with tempfile.TemporaryDirectory(prefix="surrogap-compare-") as tmp:
        folder = Path(tmp) / "reports"
        folder.mkdir()
        for rel, required in (
            ("reports/results.csv", True),
            ("reports/selected.csv", False),
            ("reports/report.md", False),
            ("params.yaml", False),
        ):
            shown = _git(["show", f"{rev}:{rel}"], root)
            if shown.returncode != 0:
                if required:
                    raise UserError(f"--ref {rev}: the revision has no {rel}")
                continue
            (Path(tmp) / rel).write_bytes(shown.stdout)
        return _side_from_folder(folder, folder / "results.csv", f"{rev}:reports/")


# --------------------------------------------------------------------------- comparing
def _keys(a: Side, b: Side) -> list[str]:
    both = "run" in a.columns and "run" in b.columns
    return [*RUN_KEYS, "run"] if both else list(RUN_KEYS)


def _label(row) -> str:
    label = run_label(row["dataset"], row["k"], row["seed"])
    run = row.get("run")
    return f"{label} ({run})" if isinstance(run, str) and "-lr" in run else label


def compare_columns(
    rep: Side, ref: Side
) -> tuple[list[dict], list[str], list[str], list[str], list[str]]:
    """Per numeric column its largest differences and where; the runs in one side only;
    the runs whose `holds` flipped; the runs whose data kind differs."""
    if set(rep.columns) != set(ref.columns):
        only_rep = sorted(set(rep.columns) - set(ref.columns))
        only_ref = sorted(set(ref.columns) - set(rep.columns))
        raise UserError(
            f"the two tables' columns differ: {', '.join(only_rep) or 'none'} only in "
            f"{rep.name}, {', '.join(only_ref) or 'none'} only in {ref.name}"
        )
    keys = _keys(rep, ref)
    merged = rep.results.merge(
        ref.results, on=keys, how="outer", suffixes=("", "_ref"), indicator=True
    )
    only_rep = [_label(r) for _, r in merged[merged["_merge"] == "left_only"].iterrows()]
    only_ref = [_label(r) for _, r in merged[merged["_merge"] == "right_only"].iterrows()]
    both = merged[merged["_merge"] == "both"].reset_index(drop=True)
    flipped = [_label(r) for _, r in both[both["holds"] != both["holds_ref"]].iterrows()]
    kinds = [
        f"{_label(r)}: kind {r['kind']!r} against {r['kind_ref']!r}"
        for _, r in both[both["kind"] != both["kind_ref"]].iterrows()
    ]
    rows = []
    for col in [c for c in RESULT_COLUMNS if c not in NOT_NUMERIC]:
        tol = TOLERANCES[col]
        a = both[col].to_numpy(dtype=float)
        b = both[f"{col}_ref"].to_numpy(dtype=float)
        same_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(same_nan, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), np.inf, diff)  # defined on one side only
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(diff == 0, 0.0, np.where(np.isnan(b), np.inf, diff / np.abs(b)))
        bound = tol.atol + tol.rtol * np.nan_to_num(np.abs(b), nan=0.0)
        outside = diff > bound
        i = int(np.argmax(diff)) if len(diff) else 0
        rows.append(
            {
                "column": col,
                "max_abs": float(diff[i]) if len(diff) else 0.0,
                "max_rel": float(np.max(rel)) if len(rel) else 0.0,
                "row": _label(both.iloc[i]) if len(diff) and diff[i] > 0 else "",
                "atol": tol.atol,
                "rtol": tol.rtol,
                "outside": int(outside.sum()),
            }
        )
    return rows, only_rep, only_ref, flipped, kinds


def _stated(report_md: str | None) -> dict[int, tuple[str, str]]:
    """{claim: (name, status)} as a report.md states them."""
    if report_md is None:
        return {}
    return {int(n): (name, status) for n, name, status in CLAIM_LINE.findall(report_md)}


def recompute(side: Side) -> dict[int, tuple[str, str]]:
    """{claim: (name, status)} from the table the report reads (selected.csv, else
    results.csv) and the side's report params, with the report's own code."""
    table = side.selected if side.selected is not None else side.results
    found = report_claims.claims(table, pd.DataFrame(), side.params, points={})
    return {c.number: (c.name, c.status) for c in found if c.number not in NEEDS_TRAJECTORIES}


def compare_verdicts(rep: Side, ref: Side) -> list[dict]:
    """Each claim's verdict on both sides: recomputed from the tables, and as each side's
    report.md states it where both have one."""
    out = []
    a, b = recompute(rep), recompute(ref)
    said_a, said_b = _stated(rep.report_md), _stated(ref.report_md)
    for number in sorted({*a, *b, *(said_a.keys() & said_b.keys())}):
        named = a.get(number) or b.get(number) or said_a.get(number) or ("", "")
        entry = {"claim": number, "name": named[0]}
        if number in a and number in b:
            entry.update(reproduced=a[number][1], reference=b[number][1], source="tables")
        if number in said_a and number in said_b:
            entry.update(report_reproduced=said_a[number][1], report_reference=said_b[number][1])
        entry["changed"] = entry.get("reproduced") != entry.get("reference") or entry.get(
            "report_reproduced"
        ) != entry.get("report_reference")
        out.append(entry)
    return out


def _selection_changes(rep: Side, ref: Side) -> list[str]:
    if rep.selected is None or ref.selected is None or "run" not in rep.selected:
        return []
    if "run" not in ref.selected:
        return []
    keys = list(RUN_KEYS)
    m = rep.selected[[*keys, "run"]].merge(
        ref.selected[[*keys, "run"]], on=keys, suffixes=("", "_ref")
    )
    return [
        f"{run_label(r.dataset, r.k, r.seed)}: {r.run} against {r.run_ref}"
        for r in m[m["run"] != m["run_ref"]].itertuples()
    ]


def compare(rep: Side, ref: Side) -> dict:
    """Everything `surrogap compare` prints, as one JSON-ready dict with `ok` and `summary`."""
    columns, only_rep, only_ref, flipped, kinds = compare_columns(rep, ref)
    verdicts = compare_verdicts(rep, ref)
    selection = _selection_changes(rep, ref)
    changed = [v for v in verdicts if v["changed"]]
    outside = [c for c in columns if c["outside"]]
    ok = not (changed or outside or only_rep or only_ref or selection or kinds)
    listed = [c for c in columns if c["column"] in SUMMARY or c["outside"]]
    largest = ", ".join(
        f"{NICKNAMES.get(c['column'], c['column'])} {_number(c['max_abs'])}" for c in listed
    )
    if changed:
        head = "verdict changed: " + "; ".join(
            f"Claim {v['claim']} {_verdict_change(v)}" for v in changed
        )
    else:
        head = "no verdict changed"
    tail = (
        "within tolerance"
        if not outside
        else (
            "outside tolerance: "
            + ", ".join(f"{c['column']} ({c['outside']} rows)" for c in outside)
        )
    )
    extra = []
    if only_rep or only_ref:
        extra.append(
            f"{len(only_rep)} runs only in the reproduced, {len(only_ref)} only in the reference"
        )
    if selection:
        extra.append(f"the lr selection changed for {len(selection)} runs")
    if kinds:
        extra.append(f"the data kind differs for {len(kinds)} runs")
    summary = "; ".join([head, f"largest differences: {largest}", tail, *extra])
    return {
        "reproduced": rep.name,
        "reference": ref.name,
        "columns": columns,
        "only_reproduced": only_rep,
        "only_reference": only_ref,
        "holds_flipped": flipped,
        "kind_changed": kinds,
        "selection_changed": selection,
        "verdicts": verdicts,
        "ok": ok,
        "summary": summary,
    }


def _verdict_change(v: Mapping) -> str:
    if v.get("reproduced") != v.get("reference"):
        return f"{v.get('reference')} -> {v.get('reproduced')}"
    return f"{v.get('report_reference')} -> {v.get('report_reproduced')} (report.md)"


def _number(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.1e}"


def format_text(result: Mapping) -> str:
    """The table of columns, the verdicts, the lists, then the one summary line."""
    lines = [f"reproduced {result['reproduced']} against reference {result['reference']}", ""]
    head = ("column", "max |diff|", "max rel", "tolerance", "outside", "largest at")
    cells = [
        (
            c["column"],
            _number(c["max_abs"]),
            _number(c["max_rel"]),
            (f"{c['atol']:g} abs" if c["atol"] else "")
            + (f"{c['rtol']:g} rel" if c["rtol"] else ""),
            str(c["outside"]),
            c["row"],
        )
        for c in result["columns"]
    ]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(head)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    lines.append("")
    for v in result["verdicts"]:
        pairs = []
        if "reproduced" in v:
            pairs.append((v["reference"], v["reproduced"], "recomputed from the tables"))
        if "report_reproduced" in v:
            pairs.append((v["report_reference"], v["report_reproduced"], "as report.md states"))
        if v["changed"]:
            said = "; ".join(f"{a} -> {b} ({how})" for a, b, how in pairs if a != b)
            lines.append(f"Claim {v['claim']} ({v['name']}): CHANGED: {said}")
        else:
            how = " and ".join(how for *_, how in pairs)
            lines.append(f"Claim {v['claim']} ({v['name']}): {pairs[0][0]} on both sides ({how})")
    for title, key in (
        ("runs only in the reproduced", "only_reproduced"),
        ("runs only in the reference", "only_reference"),
        ("holds flipped", "holds_flipped"),
        ("lr selection changed", "selection_changed"),
        ("data kind differs", "kind_changed"),
    ):
        if result[key]:
            lines.append(f"{title}: {', '.join(result[key])}")
    lines += ["", result["summary"]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line
def run_command(paths: list[str], ref_rev: str | None, as_json: bool) -> int:
    """`surrogap compare`: 0 when no verdict changed and all is within tolerance, 1
    otherwise (bad input raises UserError: 2)."""
    import json

    if ref_rev is not None:
        if len(paths) > 1:
            raise UserError("surrogap compare: with --ref give at most one PATH (the reproduced)")
        rep = read_path(paths[0] if paths else "reports")
        ref = read_revision(ref_rev)
    elif len(paths) == 2:
        rep, ref = read_path(paths[0]), read_path(paths[1])
    else:
        raise UserError(
            "surrogap compare: give REPRODUCED and REFERENCE (each a results.csv or a reports/ "
            "folder), or --ref REV (e.g. --ref HEAD) to compare reports/ with a commit"
        )
    result = compare(rep, ref)
    if as_json:  # strict JSON: a difference with a value on one side only is null
        finite = [
            {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in c.items()
            }
            for c in result["columns"]
        ]
        print(json.dumps({**result, "columns": finite}, indent=2, allow_nan=False))
    else:
        print(format_text(result))
    return 0 if result["ok"] else 1
