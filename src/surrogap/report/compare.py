"""`surrogap compare`: a reproduced reports/ against a reference one (two paths, or the files
committed at a git revision), column by column against documented tolerances, and the
report's claim verdicts recomputed from both with the report's own code.

A side is a results.csv, or the reports/ folder holding it; beside it, selected.csv (the
table the report reads; results.csv where there is none), report.md and null.csv (without
it Claim 5's decay is inconclusive on that side) are read when present, and the `report`
section of params.yaml in the folder above (the defaults where there is none). `--ref REV`
reads the same files as committed at REV. What is compared, the design differences said
first and the tolerances: docs/SCALING.md, "Reproducing: what is bit-identical and what is
compared with tolerances". A change where either side is *fragile* (docs/THEORY.md section
8) is listed apart, as expected to move. Exit status: see run_command.
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

from surrogap.core.columns import tolerances
from surrogap.core.errors import UserError
from surrogap.core.io import regular_file
from surrogap.core.schema import RUN_KEYS
from surrogap.report import claims as report_claims
from surrogap.report import load
from surrogap.report.stats import FRAGILE, run_label

NICKNAMES = {"contrastive_loss": "R_cont", "supervised_loss": "R_mu"}
SUMMARY = ("contrastive_loss", "supervised_loss", "mean_acc", "linear_acc", "linear_loss")
CLAIM_LINE = re.compile(r"^- \*\*Claim (\d+) \((.*?)\):\*\* (.+?): ", re.MULTILINE)


@dataclass
class Side:
    """One side of the comparison, read into memory."""

    name: str  # what the user gave: a path, or REV:reports/
    results: pd.DataFrame
    selected: pd.DataFrame | None
    params: load.ReportParams
    report_md: str | None
    all_params: dict | None = None  # the params.yaml beside it, parsed; None: there is none
    null: pd.DataFrame | None = None  # the fixed_null stage's null.csv beside it, if any


# --------------------------------------------------------------------------- reading
def _side_from_folder(folder: Path, results: Path, name: str) -> Side:
    frame = load.load_results(results)  # an empty, cut or binary file: one line
    selected_path = folder / "selected.csv"
    selected = load.load_results(selected_path) if selected_path.is_file() else None
    params_path = folder.parent / "params.yaml"
    section, everything = None, None
    if params_path.is_file():
        try:
            everything = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
            section = everything.get("report")
        except (yaml.YAMLError, AttributeError, OSError, UnicodeDecodeError) as exc:
            raise UserError(
                f"{str(params_path)!r} is not a params file ({type(exc).__name__})"
            ) from None
    report = folder / "report.md"
    try:
        text = report.read_text(encoding="utf-8") if report.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{str(report)!r} is unreadable ({type(exc).__name__})") from None
    null = load.load_null(folder / "null.csv")  # Claim 5's decay is tested against it
    return Side(name, frame, selected, load.parse_params(section), text, everything, null)


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
        names = ("results.csv", "selected.csv", "report.md", "null.csv")
        for rel in (*(f"reports/{name}" for name in names), "params.yaml"):
            shown = _git(["show", f"{rev}:{rel}"], root)
            if shown.returncode == 0:
                (Path(tmp) / rel).write_bytes(shown.stdout)
            elif rel == "reports/results.csv":  # the one file a side needs
                raise UserError(f"--ref {rev}: the revision has no {rel}")
        return _side_from_folder(folder, folder / "results.csv", f"{rev}:reports/")


# --------------------------------------------------------------------------- comparing
def _label(row) -> str:
    label = run_label(row["dataset"], row["k"], row["seed"])
    run = row.get("run")
    return f"{label} ({run})" if isinstance(run, str) and "-lr" in run else label


def compare_columns(
    rep: Side, ref: Side
) -> tuple[list[dict], list[str], list[str], list[str], list[str]]:
    """Per numeric column its largest differences and where; the runs in one side only;
    the runs whose `holds` flipped; the runs whose data kind differs."""
    columns, columns_ref = set(rep.results.columns), set(ref.results.columns)
    if columns != columns_ref:
        only_rep, only_ref = sorted(columns - columns_ref), sorted(columns_ref - columns)
        raise UserError(
            f"the two tables' columns differ: {', '.join(only_rep) or 'none'} only in "
            f"{rep.name}, {', '.join(only_ref) or 'none'} only in {ref.name}"
        )
    keys = [*RUN_KEYS, "run"] if "run" in columns else list(RUN_KEYS)  # the same on both sides
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
    for col, tol in tolerances().items():  # every compared column (core.columns)
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


# --------------------------------------------------------------------------- the design
GRID = ("dataset", "k", "seed", "lr")
OWN_LR = "own"  # an empty lr cell: the run of the dataset section's own train.lr


def _param_diff(a, b, prefix: str = "") -> list[dict]:
    """{key, reproduced, reference} for each params key whose value differs ('circle.train.
    epochs'); a section on one side only is one entry (the other side's value None)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return [
            entry
            for key in sorted(a.keys() | b.keys(), key=str)
            for entry in _param_diff(
                a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key)
            )
        ]
    return [] if a == b else [{"key": prefix, "reproduced": a, "reference": b}]


def _table(side: Side) -> pd.DataFrame:
    """The table the report reads: selected.csv, else results.csv."""
    return side.selected if side.selected is not None else side.results


def _grid(table: pd.DataFrame) -> dict[str, list[str]]:
    """The values of each sweep list the table holds, sorted as numbers where they are."""
    out = {}
    for name in GRID:
        if name not in table:
            continue
        values = {OWN_LR if pd.isna(v) else v for v in table[name]}
        out[name] = [str(v) for v in sorted(values, key=lambda v: (isinstance(v, str), v))]
    return out


def _seed_counts(table: pd.DataFrame) -> dict[str, str]:
    """{dataset: '3' or '1-3'}: its seeds per K (the fewest to the most)."""
    n = table.groupby(["dataset", "k"])["seed"].nunique().groupby(level=0)
    return {
        str(ds): f"{lo}" if lo == hi else f"{lo}-{hi}"
        for ds, lo, hi in zip(n.min().index, n.min(), n.max(), strict=True)
    }


def compare_design(rep: Side, ref: Side) -> dict:
    """What differs in the two sides' design: `params` (each params.yaml key whose value
    differs: {key, reproduced, reference}, None where absent), `params_missing` (the sides
    without a params.yaml beside them when the other has one), `grid` ({list, reproduced,
    reference} for each sweep list whose values in the tables differ) and `seeds` ({dataset,
    reproduced, reference}: seeds per K, where they differ)."""
    params, missing = [], []
    if rep.all_params is not None and ref.all_params is not None:
        params = _param_diff(rep.all_params, ref.all_params)
    elif rep.all_params is not None or ref.all_params is not None:
        missing = [s.name for s in (rep, ref) if s.all_params is None]
    ga, gb = _grid(_table(rep)), _grid(_table(ref))
    grid = [
        {"list": name, "reproduced": ga.get(name, []), "reference": gb.get(name, [])}
        for name in GRID
        if ga.get(name, []) != gb.get(name, [])
    ]
    sa, sb = _seed_counts(_table(rep)), _seed_counts(_table(ref))
    seeds = [
        {"dataset": ds, "reproduced": sa.get(ds, "0"), "reference": sb.get(ds, "0")}
        for ds in sorted(sa.keys() | sb.keys())
        if sa.get(ds) != sb.get(ds)
    ]
    return {"params": params, "params_missing": missing, "grid": grid, "seeds": seeds}


def design_differs(design: Mapping) -> bool:
    return any(design[key] for key in ("params", "params_missing", "grid", "seeds"))


def _design_lines(design: Mapping, most: int = 8) -> list[str]:
    """One line per kind of design difference, each naming both sides' values."""
    lines = []
    if design["params"]:
        shown = [
            f"{p['key']} {_value(p['reproduced'])} against {_value(p['reference'])}"
            for p in design["params"][:most]
        ]
        more = len(design["params"]) - most
        lines.append(
            f"params differ ({len(design['params'])} keys): "
            + "; ".join(shown)
            + (f"; and {more} more (--json lists them all)" if more > 0 else "")
        )
    if design["params_missing"]:
        lines.append(f"params unknown: no params.yaml beside {', '.join(design['params_missing'])}")
    for g in design["grid"]:
        lines.append(
            f"grid differs: {g['list']} {', '.join(g['reproduced']) or 'none'} against "
            f"{', '.join(g['reference']) or 'none'}"
        )
    if design["seeds"]:
        lines.append(
            "seeds per (dataset, K) differ: "
            + "; ".join(
                f"{s['dataset']} {s['reproduced']} against {s['reference']}"
                for s in design["seeds"]
            )
        )
    return lines


def _value(v) -> str:
    if isinstance(v, Mapping):
        return "(a section)"
    return "absent" if v is None else str(v)


# --------------------------------------------------------------------------- the verdicts
@dataclass(frozen=True)
class Recomputed:
    """One side's verdicts: {claim: (name, status)} and {(claim, dataset, test): Verdict}."""

    headlines: dict[int, tuple[str, str]]
    per_dataset: dict[tuple[int, str, str], report_claims.Verdict]


def recompute(
    table: pd.DataFrame, params: load.ReportParams, null: pd.DataFrame | None = None
) -> Recomputed:
    """The claims' verdicts on a table (the report's, see _table) with `report` params and
    the fixed-encoder null (null.csv; without it Claim 5's decay is inconclusive), by the
    report's own code; no runs: no verdicts."""
    if table.empty:
        return Recomputed({}, {})
    found = report_claims.claims(table, pd.DataFrame(), params, points={}, null=null)
    # a claim that needs the trajectories (data/pretrain/, not in reports/) is not recomputed
    lacks = {c.number for c in report_claims.CLAIMS if c.needs_trajectories}
    kept = [c for c in found if c.number not in lacks]
    return Recomputed(
        {c.number: (c.name, c.status) for c in kept},
        {(c.number, v.dataset, v.test): v for c in kept for v in c.verdicts},
    )


def _on_common_runs(rep: Side, ref: Side) -> tuple[Recomputed, Recomputed]:
    """Both sides' verdicts on the runs both hold, with the reference's thresholds: what
    is left of a verdict change when the designs are made the same."""
    keys = list(RUN_KEYS)
    a, b = _table(rep), _table(ref)
    common = a[keys].drop_duplicates().merge(b[keys].drop_duplicates(), on=keys)
    return (
        recompute(a.merge(common, on=keys), ref.params, rep.null),
        recompute(b.merge(common, on=keys), ref.params, ref.null),
    )


def _stated(report_md: str | None) -> dict[int, tuple[str, str]]:
    """{claim: (name, status)} as a report.md states them."""
    if report_md is None:
        return {}
    return {int(n): (name, status) for n, name, status in CLAIM_LINE.findall(report_md)}


def _cause(same_on_common: bool, differs: bool) -> str:
    return "design" if differs and same_on_common else "numbers"


def compare_verdicts(rep: Side, ref: Side, design: Mapping) -> tuple[list, list]:
    """Each claim's verdict on both sides (recomputed from the tables, and as each side's
    report.md states it where both have one), and every per-dataset verdict the claims tally
    ({claim, dataset, test, reproduced, reference, reasons, changed}). A recomputed change
    carries `cause`: 'design' when `design` (compare_design's) differs and the change vanishes
    on the runs both sides hold with the reference's thresholds, else 'numbers'."""
    differs = design_differs(design)
    a, b = (recompute(_table(side), side.params, side.null) for side in (rep, ref))
    ca, cb = _on_common_runs(rep, ref) if differs else (a, b)
    said_a, said_b = _stated(rep.report_md), _stated(ref.report_md)
    out = []
    for number in sorted({*a.headlines, *b.headlines, *(said_a.keys() & said_b.keys())}):
        named = a.headlines.get(number) or b.headlines.get(number) or said_a.get(number) or ("", "")
        entry = {"claim": number, "name": named[0]}
        if number in a.headlines and number in b.headlines:
            entry.update(
                reproduced=a.headlines[number][1], reference=b.headlines[number][1], source="tables"
            )
            if entry["reproduced"] != entry["reference"]:
                same = ca.headlines.get(number) == cb.headlines.get(number)
                entry["cause"] = _cause(same, differs)
        if number in said_a and number in said_b:
            entry.update(report_reproduced=said_a[number][1], report_reference=said_b[number][1])
        out.append(_mark_changed(entry))
    per = []
    for key in sorted(a.per_dataset.keys() | b.per_dataset.keys()):
        va, vb = a.per_dataset.get(key), b.per_dataset.get(key)
        entry = {
            "claim": key[0],
            "dataset": key[1],
            "test": key[2],
            "reproduced": _status(va),
            "reference": _status(vb),
            "reason_reproduced": va.reason if va else "",
            "reason_reference": vb.reason if vb else "",
        }
        if _mark_changed(entry)["changed"]:
            same = _status(ca.per_dataset.get(key)) == _status(cb.per_dataset.get(key))
            entry["cause"] = _cause(same, differs)
        per.append(entry)
    return out, per


def _status(v: report_claims.Verdict | None) -> str:
    return v.status if v else ABSENT


def _mark_changed(entry: dict) -> dict:
    """`entry` with `changed` (its recomputed or its report.md verdicts differ) and `fragile`."""
    entry["changed"] = any(
        entry.get(f"{how}reproduced") != entry.get(f"{how}reference") for how in ("", "report_")
    )
    entry["fragile"] = entry["changed"] and _fragile_side(entry)
    return entry


ABSENT = "absent"  # a dataset one side does not hold
EXPECTED = (
    "expected to move (a side is fragile: its interval straddles 0 and reaches the effect of "
    "interest, so a rerun can flip it; not a change of finding)"
)


def _fragile_side(v: Mapping) -> bool:
    """Whether either side of a changed verdict is fragile (stats.FRAGILE): such a verdict
    is expected to move between runs and does not by itself make the exit status 1."""
    keys = ("reproduced", "reference", "report_reproduced", "report_reference")
    return any(str(v.get(k, "")).startswith(FRAGILE) for k in keys)


NAMED_FLIPS = 3  # the summary line names this many per-dataset flips; the text above, all


def _selection_changes(rep: Side, ref: Side) -> list[str]:
    if any(side.selected is None or "run" not in side.selected for side in (rep, ref)):
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
    design = compare_design(rep, ref)
    verdicts, per_dataset = compare_verdicts(rep, ref, design)
    selection = _selection_changes(rep, ref)
    changed = [v for v in verdicts if v["changed"] and not v["fragile"]]
    flips = [v for v in per_dataset if v["changed"] and not v["fragile"]]
    moved = [v for v in (*verdicts, *per_dataset) if v["fragile"]]
    outside = [c for c in columns if c["outside"]]
    differs = design_differs(design)
    ok = not (changed or flips or outside or only_rep or only_ref or selection or kinds or differs)
    listed = [c for c in columns if c["column"] in SUMMARY or c["outside"]]
    largest = ", ".join(
        f"{NICKNAMES.get(c['column'], c['column'])} {_number(c['max_abs'])}" for c in listed
    )
    if changed:
        head = "verdict changed: " + "; ".join(
            f"Claim {v['claim']} {_verdict_change(v, differs)}" for v in changed
        )
    else:
        head = "no claim verdict changed" if flips else "no verdict changed"
    if flips:
        by = {c: sum(f.get("cause") == c for f in flips) for c in ("design", "numbers")}
        notes = (
            [f"{by['design']} from the design, {by['numbers']} in the numbers"] if differs else []
        )
        if len(flips) > NAMED_FLIPS:
            notes.append("each named above")
        named = (
            ": " + "; ".join(_flip(f, differs) for f in flips) if len(flips) <= NAMED_FLIPS else ""
        )
        causes = f" ({'; '.join(notes)})" if notes else ""
        head += f"; {len(flips)} per-dataset verdicts flipped{causes}{named}"
    if differs:
        said = {
            "params": f"params ({len(design['params'])} keys)",
            "params_missing": "params unknown",
            "grid": "grid (" + ", ".join(g["list"] for g in design["grid"]) + ")",
            "seeds": "seeds per (dataset, K)",
        }
        kinds_of = ", ".join(what for key, what in said.items() if design[key])
        head = f"design differs: {kinds_of}; " + head
    beyond = ", ".join(f"{c['column']} ({c['outside']} rows)" for c in outside)
    tail = f"outside tolerance: {beyond}" if outside else "within tolerance"
    extra = []
    if only_rep or only_ref:
        extra.append(
            f"{len(only_rep)} runs only in the reproduced, {len(only_ref)} only in the reference"
        )
    if selection:
        extra.append(f"the lr selection changed for {len(selection)} runs")
    if kinds:
        extra.append(f"the data kind differs for {len(kinds)} runs")
    if moved:
        extra.append(
            f"{len(moved)} verdicts moved where a side is fragile (expected to move: "
            + "; ".join(_moved(v) for v in moved[:NAMED_FLIPS])
            + (", each named above" if len(moved) > NAMED_FLIPS else "")
            + ")"
        )
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
        "design": design,
        "verdicts": verdicts,
        "per_dataset_verdicts": per_dataset,
        "expected_to_move": moved,
        "ok": ok,
        "summary": summary,
    }


def _verdict_change(v: Mapping, differs: bool) -> str:
    if v.get("reproduced") != v.get("reference"):
        return f"{v.get('reference')} -> {v.get('reproduced')}{_cause_note(v, differs)}"
    return f"{v.get('report_reference')} -> {v.get('report_reproduced')} (report.md)"


def _moved(v: Mapping) -> str:
    """'Claim 3 digits R_mu fragile -> confirmed' (a headline: 'Claim 3 fragile -> ...')."""
    where = f" {v['dataset']} {v['test']}" if "dataset" in v else ""
    old, new = (v.get(side, v.get(f"report_{side}")) for side in ("reference", "reproduced"))
    return f"Claim {v['claim']}{where} {old} -> {new}"


def _flip(f: Mapping, differs: bool) -> str:
    """'Claim 3 digits mean-classifier accuracy confirmed -> not confirmed'."""
    verdicts = f"{f['reference']} -> {f['reproduced']}{_cause_note(f, differs)}"
    return f"Claim {f['claim']} {f['dataset']} {f['test']} {verdicts}"


def _flip_line(f: Mapping, differs: bool) -> str:
    """A flip with each side's reason, where a rule decided it, and its cause."""
    why = [
        f"{side}: {f[f'reason_{side}']}"
        for side in ("reference", "reproduced")
        if f[f"reason_{side}"]
    ]
    return (
        f"Claim {f['claim']}, {f['dataset']}, {f['test']}: FLIPPED {f['reference']} -> "
        f"{f['reproduced']}" + (f" ({'; '.join(why)})" if why else "") + _cause_text(f, differs)
    )


def _cause_text(v: Mapping, differs: bool) -> str:
    if not differs or "cause" not in v:
        return ""
    return "; from the design" if v["cause"] == "design" else "; in the numbers"


def _cause_note(v: Mapping, differs: bool) -> str:
    """_cause_text in parentheses: ' (from the design)'."""
    return f" ({_cause_text(v, differs)[2:]})" if _cause_text(v, differs) else ""


def _number(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.1e}"


def format_text(result: Mapping) -> str:
    """The table of columns, the verdicts, the lists, then the one summary line."""
    lines = [f"reproduced {result['reproduced']} against reference {result['reference']}", ""]
    design = _design_lines(result["design"])
    differs = bool(design)
    if differs:
        lines += [
            "DESIGN DIFFERS: the two sides are not the same experiment. A verdict change marked "
            "'from the design' follows from this, not from the numbers (it vanishes on the runs "
            "both sides hold, judged with the reference's report thresholds); one marked 'in the "
            "numbers' stays there",
            *(f"  {line}" for line in design),
            "",
        ]
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
    for row in (head, ["-" * w for w in widths], *cells):
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    lines.append("")
    for v in result["verdicts"]:
        pairs = []
        if "reproduced" in v:
            pairs.append((v["reference"], v["reproduced"], "recomputed from the tables"))
        if "report_reproduced" in v:
            pairs.append((v["report_reference"], v["report_reproduced"], "as report.md states"))
        if v["changed"] and v.get("fragile"):
            lines.append(f"Claim {v['claim']} ({v['name']}): moved, a side fragile (below)")
        elif v["changed"]:
            said = "; ".join(f"{a} -> {b} ({how})" for a, b, how in pairs if a != b)
            said += _cause_text(v, differs)
            lines.append(f"Claim {v['claim']} ({v['name']}): CHANGED: {said}")
        else:
            how = " and ".join(how for *_, how in pairs)
            lines.append(f"Claim {v['claim']} ({v['name']}): {pairs[0][0]} on both sides ({how})")
    per = result["per_dataset_verdicts"]
    flips = [f for f in per if f["changed"] and not f.get("fragile")]
    lines.append(
        f"per-dataset verdicts (Claims 3 and 5, recomputed from the tables): {len(per)} compared, "
        + (f"{len(flips)} flipped" if flips else "none flipped")
    )
    lines += [f"  {_flip_line(f, differs)}" for f in flips]
    moved = result.get("expected_to_move", [])
    if moved:
        lines.append(f"{EXPECTED}: {len(moved)}")
        lines += [f"  {_moved(v)}" for v in moved]
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
def _finite_or_none(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def run_command(paths: list[str], ref_rev: str | None, as_json: bool) -> int:
    """`surrogap compare`: 0 when the design is the same, no claim or per-dataset verdict
    changed (a change with a fragile side is expected to move: listed, not counted) and all
    is within tolerance, 1 otherwise (bad input raises UserError: 2)."""
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
        finite = [{k: _finite_or_none(v) for k, v in c.items()} for c in result["columns"]]
        print(json.dumps({**result, "columns": finite}, indent=2, allow_nan=False, default=str))
    else:
        print(format_text(result))
    return 0 if result["ok"] else 1
