"""The report's Markdown: summary of the claims, per-dataset sections with figures and
tables, the scale of this run against the paper's, and how the report was made.

`build_report` is a pure function: it returns the text and the figures it links; the
report stage writes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from surrogap.core.columns import COLUMNS
from surrogap.core.kinds import KINDS
from surrogap.plots import results as F
from surrogap.plots.claims import plot_accuracy_spread, plot_bao_close
from surrogap.plots.gap import plot_surrogate_gap
from surrogap.plots.headline import plot_headline
from surrogap.plots.style import VACUITY_WORDS
from surrogap.report import front
from surrogap.report.claims import (
    BOUND_NAMES,
    EARLIER,
    Claim,
    at_chance_runs,
    bound_ratios,
    claims,
    collapsed_runs,
    format_number,
    run_label,
)
from surrogap.report.load import ReportParams
from surrogap.report.names import file_name as _safe
from surrogap.report.names import md_text
from surrogap.report.stats import RERUN_MARGIN_SE
from surrogap.theory import bounds

__all__ = ["Report", "build_report", "scale_rows", "seed_summary", "table_markdown"]

SUMMARY_WORDS = 400  # the summary's length at most (tests/test_report.py counts)

SUMMARY_METRICS = (
    "contrastive_loss", "supervised_loss", "bao_lower", "bao_upper", "arora",
    "nozawa_sato", "ash", "mean_acc", "linear_acc",
)  # fmt: skip
# the per-dataset table: the summary's columns that core.columns labels, with their labels
TABLE_COLUMNS = tuple((c, COLUMNS[c].label) for c in SUMMARY_METRICS if COLUMNS[c].label)
UNKNOWN = ("unknown", "not stated")
SCALE_FIELDS = (
    ("classes", "C"), ("per_class", "samples per class"), ("batch", "batch"),
    ("epochs", "epochs"), ("k", "K"), ("seeds", "seeds"),
)  # fmt: skip


@dataclass
class Report:
    """The Markdown text and the figures it links, by file name inside the figures folder."""

    markdown: str
    figures: dict[str, Figure]


def _link(alt: str, path: str) -> str:
    return f"![{alt}]({path.replace(' ', '%20')})"


# --------------------------------------------------------------------------- tables
def _mean_se(values: pd.Series) -> tuple[float, float]:
    """Mean and standard error over seeds of the defined values (NaN s.e. for one value)."""
    v = values.to_numpy(dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    if np.isinf(v).any() or v.size == 1:
        return float(np.mean(v)), math.nan
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


def seed_summary(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, K): n (seeds), holds (seeds on which the two-sided bound
    holds), `<metric>_mean` and `<metric>_se` (standard error over seeds) of each of
    SUMMARY_METRICS, and `cont_pairing_se`: the standard error of the mean R_cont from the
    pairing noise alone (the runs' contrastive_loss_se combined)."""
    rows = []
    for (ds, k), grp in results.groupby(["dataset", "k"], sort=False):
        se = grp["contrastive_loss_se"].to_numpy(dtype=float)
        row: dict[str, Any] = {
            "dataset": ds,
            "kind": grp["kind"].iloc[0],
            "classes": int(grp["classes"].iloc[0]),
            "k": int(k),
            "n": len(grp),
            "holds": int(grp["holds"].sum()),
            "cont_pairing_se": float(np.sqrt(np.nansum(se**2)) / len(se)),
        }
        for metric in SUMMARY_METRICS:
            row[f"{metric}_mean"], row[f"{metric}_se"] = _mean_se(grp[metric])
        rows.append(row)
    return pd.DataFrame(rows)


def table_markdown(summary: pd.DataFrame, decimals: int = 3) -> str:
    """The per-K results table of one dataset: mean ± s.e. over n seeds."""
    labels = [label for _, label in TABLE_COLUMNS]
    header = ["K", "n", *labels, "R_cont pairing s.e.", "bound holds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * (len(header) - 1) + ":---|"]
    for row in summary.sort_values("k").itertuples(index=False):
        cells = [str(row.k), str(row.n)]
        for metric, _ in TABLE_COLUMNS:
            mean, se = getattr(row, f"{metric}_mean"), getattr(row, f"{metric}_se")
            text = format_number(mean, decimals)
            if not math.isnan(mean) and not math.isnan(se):
                text += f" ± {format_number(se, decimals)}"
            cells.append(text)
        cells.append(format_number(row.cont_pairing_se, decimals))
        verdict = "yes" if row.holds == row.n else "no"
        cells.append(f"{verdict} ({row.holds}/{row.n} seeds)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bounds_table(results: pd.DataFrame, decimals: int = 3) -> str:
    """Claim 2 per K: Bao's upper bound against log C and each earlier bound's ratio to
    Bao's and to R_mu (means over seeds)."""
    header = ["K", "n", "R_mu", "Bao upper", "log C", "Bao upper vs log C"]
    for name in EARLIER:
        header += [f"{BOUND_NAMES[name]} / Bao", f"{BOUND_NAMES[name]} / R_mu"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * 5 + ":---|" + "---:|" * 6]
    for r in bound_ratios(results).itertuples(index=False):
        # the words of the vacuity rule, as the figures' legends say them
        vac = f"{VACUITY_WORDS[bounds.ABOVE_LOG_C]} (above) on {r.above_log_c}/{r.n} seeds" + (
            f", {VACUITY_WORDS[bounds.VACUOUS]} (above the largest R_mu) on {r.above_max}"
            if r.above_max
            else ""
        )
        cells = [str(r.k), str(r.n), format_number(r.supervised_loss, decimals)]
        cells += [format_number(r.bao_upper, decimals), format_number(r.log_c, decimals), vac]
        for name in EARLIER:
            for suffix in ("over_bao", "over_mu"):
                v = getattr(r, f"{name}_{suffix}")
                cells.append("undefined" if math.isnan(v) else format_number(v, 2))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- scale
def _span(values: Sequence[float]) -> str:
    """One value, or `lo-hi` where they differ; a whole number without a decimal point, a
    fraction (a per-class mean over unequal classes) as `N.N (mean)`; `unknown` for none."""
    if len(values) == 0:
        return "unknown"

    def text(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else f"{float(v):.1f} (mean)"

    lo, hi = min(values), max(values)
    return text(lo) if lo == hi else f"{text(lo)}-{text(hi)}"


def scale_rows(
    results: pd.DataFrame, scale: Mapping[str, Mapping[str, Sequence[float]]] | None
) -> list[dict[str, str]]:
    """Per dataset: this run's C, K range and seeds (results.csv), samples per class, batch
    and epochs (`scale`: what the stages recorded, load.load_scale), and the paper's
    (core.kinds.KINDS)."""
    scale = scale or {}
    rows = []
    for ds, g in results.groupby("dataset", sort=False):
        recorded = scale.get(str(ds)) or {}
        kind = str(g["kind"].iloc[0])
        paper = KINDS[kind].paper if kind in KINDS else None
        run = dict(
            classes=str(int(g["classes"].iloc[0])),
            per_class=_span(recorded.get("per_class", ())),
            batch=_span(recorded.get("batch", ())),
            epochs=epochs_cell(recorded),
            k=_span(g["k"]),
            seeds=str(g.groupby("k")["seed"].nunique().min()),
        )
        rows.append({"dataset": ds, "kind": kind, "run": run, "paper": paper})
    return rows


def epochs_cell(recorded: Mapping[str, Sequence]) -> str:
    """The epochs a dataset's runs trained: '40 (cap 40)', '38-120 (cap 150)' where each run
    recorded where it stopped and its cap, else the epochs recorded ('unknown': none)."""
    stop, cap = recorded.get("stop_epoch", ()), recorded.get("max_epochs", ())
    if stop and cap:
        return f"{_span(stop)} (cap {_span(cap)})"
    return _span(recorded.get("epochs", ()))


def stopping_line(recorded: Mapping[str, Sequence] | None) -> str:
    """How a dataset's runs stopped (training.stopping): the stopping epochs (min-max over
    runs), the cap, the reasons counted, and the largest flatness of the last evaluations;
    '' where no run recorded it."""
    recorded = recorded or {}
    reasons = list(recorded.get("stop_reason", ()))
    if not reasons:
        return ""
    counts = {r: reasons.count(r) for r in dict.fromkeys(reasons)}
    said = ", ".join(f"{r} on {n}/{len(reasons)} runs" for r, n in counts.items())
    flat = list(recorded.get("flatness", ()))
    how_flat = (
        f"the last evaluations' flatness (relative improvement of the best validation "
        f"contrastive loss over the last `stop_patience` evaluations, training.stopping) is "
        f"at most {max(flat):.3g}"
        if flat
        else "no flatness recorded (the convergence rule is off: `stop_patience` null)"
    )
    return f"Stopping: the runs stopped at epoch {epochs_cell(recorded)}; {said}; {how_flat}."


def scale_markdown(
    results: pd.DataFrame, scale: Mapping[str, Mapping[str, Sequence[float]]] | None
) -> list[str]:
    md = [
        "## Scale: this run against the paper's",
        "",
        "Each cell reads *this run / the paper*; the offline stand-ins are set against the "
        "data they stand in for (digits for CIFAR-10, topics for Wiki-3029). Samples per "
        "class, batch and epochs are what the stages recorded (the prepared data's "
        "meta.json, each run's train_info.json); samples per class count the whole data "
        "before the train/val/test split.",
        "",
        "| dataset | paper's data | " + " | ".join(label for _, label in SCALE_FIELDS) + " |",
        "|---|---|" + "---|" * len(SCALE_FIELDS),
    ]
    differs = []
    for row in scale_rows(results, scale):
        run, paper = row["run"], row["paper"] or {}  # no paper run: every value unknown
        data = paper.get("data", f"(kind {row['kind']}: no paper run)")
        said = {f: paper.get(f, "unknown") for f, _ in SCALE_FIELDS}
        cells = [f"{run[f]} / {said[f]}" for f, _ in SCALE_FIELDS]
        md.append(f"| {row['dataset']} | {data} | " + " | ".join(cells) + " |")
        diff = [
            f"{label} {run[f]} (paper {said[f]})"
            for f, label in SCALE_FIELDS
            if run[f] != said[f] and run[f] not in UNKNOWN and said[f] not in UNKNOWN
        ]
        if diff:
            differs.append(f"- {row['dataset']}: " + ", ".join(diff) + ".")
    md.append("")
    if differs:
        md += ["Where this run differs from the paper:", "", *differs, ""]
    else:
        md += ["This run matches the paper's scale on every listed quantity.", ""]
    return md


# --------------------------------------------------------------------------- sections
def _external_markdown(
    external: pd.DataFrame, d: int, add: Callable[[str, Figure, str], str]
) -> list[str]:
    md = [
        "## External representations (`evaluate` stage)",
        "",
        "Features of other encoders, evaluated per K as the pipeline's own runs: test "
        "contrastive loss ± standard error (over pairings), R_mu and accuracy of the mean "
        "classifier (class means from the train split), and Bao et al.'s bounds at the "
        "measured loss.",
        "",
    ]
    for name in pd.unique(external["dataset"]):
        rows = external[external["dataset"] == name].sort_values("k")
        c = int(rows["classes"].iloc[0])
        shown = md_text(name)  # any name `surrogap evaluate` was given
        md += [f"### {shown} (C = {c})", ""]
        fig = plot_surrogate_gap(rows)
        md += [add(f"gap_external_{_safe(str(name))}.png", fig, f"surrogate gap, {shown}"), ""]
        md += [
            "| K | R_cont ± s.e. | R_mu | Bao lower | Bao upper | log C | mean acc. | holds |",
            "|---:|---:|---:|---:|---:|---:|---:|:---|",
        ]
        for r in rows.itertuples():
            md.append(
                f"| {int(r.k)} | {format_number(r.contrastive_loss, d)} ± "
                f"{format_number(r.contrastive_loss_se, d)} | {format_number(r.supervised_loss, d)} "
                f"| {format_number(r.bao_lower, d)} | {format_number(r.bao_upper, d)} "
                f"| {format_number(math.log(c), d)} | {format_number(r.mean_acc, d)} "
                f"| {'yes' if r.holds else 'no'} |"
            )
        md.append("")
    return md


def _dataset_markdown(
    ds, results, trajectories, summary, missing, d, add, items, nulls, p, scale=None
):
    rows = results[results["dataset"] == ds]
    c, kind, tag = int(rows["classes"].iloc[0]), rows["kind"].iloc[0], _safe(ds)
    md = [f"## {ds} (kind {kind}, C = {c})", ""]
    stopped = stopping_line((scale or {}).get(str(ds)))
    if stopped:
        md += [stopped, ""]
    table = front.trend_table(ds, items, nulls, p, results)
    if table:
        md += [
            "### Claims 3 and 5: trends against K",
            "",
            "Means over seeds per K; the slope is a seed-level estimate with its one-sided "
            "bounds; *seeds needed*: to detect the pre-registered effect of interest at "
            "`report.power`, with the power this run's n has for it. The fixed encoder is the "
            "one trained at the smallest K, evaluated at every K (the mechanical null, "
            "fixed_null stage); Claim 5 tests the gap minus its gap. The slack is "
            "descriptive.",
            "",
            *table,
            "",
            *[f"Claim 5 on {line}." for line in _dataset_lines(items, 5, ds)],
            "",
        ]
    md += ["### Upper bounds against K (Fig. 1 / 9)", ""]
    md += [add(f"fig1_{tag}.png", F.plot_upper_bounds(rows), f"upper bounds, {ds}"), ""]
    md += [add(f"fig9_{tag}.png", plot_bao_close(rows), f"R_mu against Bao's bound, {ds}"), ""]
    md += [
        "Test-set R_mu and the upper bounds at the measured contrastive loss, mean over "
        "seeds; a bound absent at some K is undefined there (K + 1 < C). The dashed line "
        "is log C, the loss of the uniform predictor: an upper bound above it is "
        f"{VACUITY_WORDS[bounds.ABOVE_LOG_C]}; the dotted line is log(1 + (C - 1) e^2), the "
        "largest R_mu possible at b = 1: an upper bound above it is "
        f"{VACUITY_WORDS[bounds.VACUOUS]}. The second figure (the paper's Fig. 9) is R_mu and Bao's upper bound on a "
        "linear scale, mean ± s.e. over seeds, each seed's R_mu a dot.",
        "",
        "Claim 2 per K (means over the n seeds; ratios of means):",
        "",
        bounds_table(rows, d),
        "",
        *[f"Claim 2 on {line}." for line in _dataset_lines(items, 2, ds)],
        "",
        "### Surrogate gap against K",
        "",
        add(f"gap_{tag}.png", plot_surrogate_gap(rows), f"surrogate gap, {ds}"),
        "",
        "R_mu − R_cont on the test set against K, mean ± standard error over seeds; the "
        "shaded band is [Δ_L, Δ_U] as the bounds stage computed them (results.csv's "
        "lower_gap, upper_gap).",
        "",
        "### Training trajectories (Fig. 5 / 6)",
        "",
    ]
    traj = trajectories[trajectories["dataset"] == ds] if not trajectories.empty else None
    if traj is None or traj.empty:
        md += ["No trajectory file was found for this dataset.", ""]
    else:
        md += [add(f"fig5_{tag}.png", F.plot_trajectories(traj), f"trajectories, {ds}"), ""]
        md += [
            "Validation (R_cont, R_mu) at every evaluation, one panel per K: the band "
            "between R_mu = R_cont + Δ_L(K) and R_mu = R_cont + Δ_U(K), the ideal "
            "R_cont\\*(K, C) (vertical) and R_mu\\*(C) (horizontal).",
            "",
            add(f"fig6_{tag}.png", F.plot_learning_curves(traj), f"learning curves, {ds}"),
            "",
        ]
        lacking = [m for m in missing if m.startswith(f"{ds} ")]
        if lacking:
            md += [f"Runs without a trajectory file: {', '.join(lacking)}.", ""]
    md += [
        "### Test-set results per K",
        "",
        "Mean ± standard error over the n seeds (losses and bounds in nats, accuracies as "
        "fractions); *R_cont pairing s.e.* is the standard error of the mean R_cont from the "
        "random pairings alone; the last column says on how many seeds Bao lower ≤ R_mu ≤ "
        "Bao upper.",
        "",
        table_markdown(summary[summary["dataset"] == ds], d),
        "",
    ]
    return md


def _how_made(results, trajectories, p: ReportParams, sources, n_points: int) -> list[str]:
    first = results.groupby("dataset", sort=False)[["kind", "classes"]].first()
    listing = ", ".join(f"{r.Index} ({r.kind}, C = {int(r.classes)})" for r in first.itertuples())
    ks = sorted(int(k) for k in results["k"].unique())
    seeds = sorted(int(s) for s in results["seed"].unique())
    n_traj = 0 if trajectories.empty else trajectories.groupby(["dataset", "k", "seed"]).ngroups
    a = 100 * (1 - p.confidence)
    return [
        "## How this was made",
        "",
        f"- Generated by `stages/report.py` from `{sources.get('results', 'reports/results.csv')}` "
        f"({len(results)} runs), {n_traj} trajectory files under "
        f"`{sources.get('pretrain_dir', 'data/pretrain')}`, {n_points} per-test-point files "
        f"under `{sources.get('probe_dir', 'data/probe')}` and the theory stage's figures; "
        "it reads nothing else and trains nothing.",
        f"- Datasets: {listing}.",
        f"- K: {', '.join(map(str, ks))}. Seeds: {', '.join(map(str, seeds))}.",
        "- Two-sided bound: Bao lower = R_cont + Δ_L(K, C), Bao upper = R_cont + Δ_U(K, C), "
        "with the gaps the bounds stage computed (uniform prior unless the dataset sets one); "
        "the earlier bounds are undefined where K + 1 < C (Arora et al., Nozawa & Sato).",
        "- Intervals (docs/THEORY.md, section 8): the seed is the unit of replication. A trend "
        "is a contrast of each seed's per-K values (slope against log K; early and late "
        "halves), with the seed's own s.e. (test points, R_cont's pairings); the interval is a "
        "t interval over seeds (n - 1 df), its s.e. at least what the seeds' own imply.",
        f"- `report.confidence` = {p.confidence:g}: each printed end is a one-sided "
        f"{100 * p.confidence:g}% bound ({100 - 2 * a:g}% together). Claims 1 and 4 call a "
        "violation within the normal quantile of the run's (point's) own s.e. inconclusive. "
        "Claim 3: each metric improves (slope) and saturates (early minus late gain, late "
        "slope not worsening), each part its own verdict.",
        f"- Three-way verdicts (docs/THEORY.md, section 8), against the smallest effects of "
        f"interest fixed in docs/PROTOCOL.md's pre-registration, per unit log K: "
        f"`report.effect_r_mu` = {p.effect_r_mu:g} (R_mu, the gap, the slack) and "
        f"`report.effect_accuracy` = {p.effect_accuracy:g} (the accuracies), each bound "
        f"moved {RERUN_MARGIN_SE:g} standard error towards its threshold (a rerun moves an "
        "estimate by about that much). *Confirmed*: the one-sided bound excludes 0 on the "
        "claimed side by more than that; *not confirmed*: the interval lies below the effect "
        "of interest on the claimed side by more than that (a decline stays not confirmed); "
        "*fragile*: otherwise, so a rerun can flip it (no finding either way); "
        "*inconclusive*: the design decides "
        "nothing (too few seeds, the ceiling, too few K, no null). A claim is not confirmed if "
        "any part is, else fragile if any is, else inconclusive if any is, else confirmed.",
        "- Claim 5: per seed, the gap of the encoder trained at each K minus the gap of the "
        "smallest-K encoder held fixed (the fixed_null stage's reports/null.csv) must fall "
        "with log K (three-way, `report.effect_r_mu`). Its rate: confirmed when the gap "
        "slope's interval lies between Delta_U's and Delta_L's slopes over the same K (the "
        "theorem puts the gap between them at every K), not confirmed when it lies wholly "
        "outside, inconclusive when it straddles an end (no tuned margin). Tallies count "
        "data families (topics at every C: the same (seed, topic) draws, one family).",
        f"- `report.power` = {p.power:g}: the seeds a one-sided t test needs to detect the "
        "effect of interest (not the observed effect) with this probability, from the "
        "observed per-seed spread, and the power this run's n has for it (under-powered "
        f"below {p.power:g}). Claim 4 scales a one-pairing point by R_cont's s.e. x "
        "sqrt(probe.repeats), the pairings behind it (results.csv's contrastive_repeats).",
        f"- `report.min_seeds` = {p.min_seeds}: with fewer seeds with every K a trend verdict "
        "is inconclusive (too little power).",
        f"- `report.ceiling` = {p.ceiling:g}: an accuracy at or above it is at the ceiling; an "
        "improvement from a ceiling, or a saturation that reaches it, is inconclusive.",
        f"- `report.collapse_drop` = {p.collapse_drop:g}: a run collapsed when its validation "
        "mean-classifier accuracy lies more than this below the median of the other seeds "
        "of its dataset and K (validation data only).",
        "",
    ]


def build_report(
    results: pd.DataFrame,
    trajectories: pd.DataFrame,
    params: ReportParams | None = None,
    *,
    figures_rel: str = "figures",
    theory_links: Mapping[str, str | None] | None = None,
    missing_trajectories: Sequence[str] = (),
    sources: Mapping[str, str] | None = None,
    external: pd.DataFrame | None = None,
    points: Mapping | None = None,
    scale: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    null: pd.DataFrame | None = None,
) -> Report:
    """The whole report: Markdown and figures, nothing written.

    figures_rel: the figures folder relative to report.md (POSIX separators).
    theory_links: {"fig3": "theory/fig3.png" or None when the theory stage's file is absent}.
    sources: {"results", "pretrain_dir", "probe_dir": paths as given}, for the footer.
    external: the `evaluate` stage's table, or None.
    points: the per-test-point arrays, {(dataset, K, seed): arrays} (load.load_points).
    scale: per dataset, the recorded samples per class, batch and epochs
        (load.load_scale), for the Scale section.
    """
    p = params or ReportParams()
    d = p.decimals
    theory_links = dict(theory_links or {})
    sources = dict(sources or {})
    points = dict(points or {})
    rel = figures_rel.rstrip("/")
    figures: dict[str, Figure] = {}
    summary = seed_summary(results)
    items = claims(results, trajectories, p, missing_trajectories, points, null)

    def add(name: str, fig: Figure, alt: str) -> str:
        figures[name] = fig
        return _link(alt, f"{rel}/{name}")

    # the front paragraph's numbers come from the runs that are evidence (not at chance)
    chance = at_chance_runs(results, points, p.confidence)
    nulls = front.fixed_null_trends(null, results[~chance], p)
    md = [f"# {p.title}", ""]
    md += [
        'Checks the claims of Bao, Nagano & Nozawa, "On the Surrogate Gap between '
        'Contrastive and Supervised Losses" (ICML 2022, arXiv:2110.02501). '
        + front.answer(items, results, nulls, p, chance),
        "",
        "## The claims on this run",
        "",
        *front.claim_table(items, results, rel, front.null_key(nulls, p)),
        "",
        add("headline.png", plot_headline(results, null), "does a larger K help, and why"),
        "",
        "Top: R_mu of the encoder trained at each K (lower is better), each seed a dot, the "
        "band its min-max over seeds. Bottom: the gap R_mu − R_cont inside [Δ_L, Δ_U]"
        + (
            "; dashed grey: the mechanical null, the smallest-K encoder held fixed and "
            "evaluated at every K: its R_mu stays put while its gap falls."
            if null is not None and not null.empty
            else "; no fixed-encoder null was given (the fixed_null stage's reports/null.csv)."
        ),
        "",
        *_summary(items, results, p, chance),
    ]
    md += scale_markdown(results, scale)
    for ds in pd.unique(results["dataset"]):
        md += _dataset_markdown(
            ds, results, trajectories, summary, missing_trajectories, d, add, items, nulls, p, scale
        )
    if external is not None and not external.empty:
        md += _external_markdown(external, d, add)
    md += ["## Accuracy over C × K (Fig. 7 / 8)", ""]
    swept = [kind for kind, g in results.groupby("kind", sort=True) if g["classes"].nunique() >= 3]
    if not swept:
        md += [
            "No kind of data was run at three or more values of C, so there are no heat maps.",
            "",
        ]
    for kind in swept:
        rows = results[results["kind"] == kind]
        cs = ", ".join(str(c) for c in sorted(rows["classes"].unique()))
        fig = plot_accuracy_spread(rows)
        md += [
            add(f"fig7_8_{_safe(kind)}.png", fig, f"accuracy over C and K, {kind}"),
            "",
            f"Kind {kind} at C = {cs}: test accuracy of the mean classifier (Fig. 7) and the linear probe (Fig. 8), mean ± s.d. over seeds in each cell.",
            "",
        ]
    md += ["## Ideal curves (Fig. 3 / 4)", ""]
    for key, what in (
        ("fig3", "Fig. 3: ideal losses and bounds"),
        ("fig4", "Fig. 4: coefficients of the contrastive loss"),
    ):
        link = theory_links.get(key)
        md += [_link(what, link) if link else f"{what}: not found (run the theory stage).", ""]
    md += _notes(items, [str(x) for x in pd.unique(results["dataset"])])
    md += _how_made(results, trajectories, p, sources, len(points))
    return Report("\n".join(md), figures)


def _headline(c: Claim) -> str:
    """A claim's headline without the data note (the summary states the data once)."""
    return c.text.replace(f"; {c.data}", "") if c.data else c.text


def _summary(
    items: Sequence[Claim], results: pd.DataFrame, p: ReportParams, chance: pd.Series
) -> list[str]:
    """The verdicts in words: one bullet per claim, the data once, the collapsed runs and
    the runs at chance (at most SUMMARY_WORDS words: each dataset's numbers are in its
    section's tables)."""
    md = ["## Summary", ""]
    md += [f"- **Claim {c.number} ({c.name}):** {c.status}: {_headline(c)}." for c in items]
    data = next((c.data for c in items if c.data), "")
    if data:
        md += ["", f"Data: {data.removeprefix('data: ')}."]
    md.append("")
    flagged = collapsed_runs(results, p.collapse_drop)
    if not flagged.any():
        md += ["No run collapsed (`report.collapse_drop` below).", ""]
    else:
        md += [
            "Collapsed runs (validation accuracy far below their sibling seeds; kept in every "
            "table and figure, and Claims 3 and 5 say what changes without them):",
            "",
        ]
        for r in results[flagged].itertuples():
            siblings = results[(results["dataset"] == r.dataset) & (results["k"] == r.k)]
            others = siblings.drop(index=r.Index)
            md.append(
                f"- {run_label(r.dataset, r.k, r.seed)}: validation accuracy "
                f"{format_number(r.val_mean_acc, p.decimals)}, the other seeds' median "
                f"{format_number(float(others['val_mean_acc'].median()), p.decimals)}."
            )
        md.append("")
    return md + _chance_markdown(results, chance, p)


def _chance_markdown(results: pd.DataFrame, chance: pd.Series, p: ReportParams) -> list[str]:
    """The runs at chance (`chance`: claims.at_chance_runs), each with its accuracy against
    1/C and its R_mu against log C; nothing where no run is at chance."""
    if not chance.any():
        return []
    d = p.decimals
    md = [
        "Runs at chance (test mean-classifier accuracy within binomial noise of 1/C, or "
        "R_mu = log C: the encoder's features carry nothing of the class; kept in every "
        "table and figure, but no claim counts them as evidence"
        + ("; every run is at chance, so every claim is inconclusive" if chance.all() else "")
        + "):",
        "",
    ]
    for r in results[chance].itertuples():
        md.append(
            f"- {run_label(r.dataset, r.k, r.seed)}: test accuracy "
            f"{format_number(r.mean_acc, d)} (1/C = {format_number(1 / r.classes, d)}), "
            f"R_mu {format_number(r.supervised_loss, d)} "
            f"(log C = {format_number(math.log(r.classes), d)})."
        )
    return [*md, ""]


def _dataset_lines(items: Sequence[Claim], number: int, ds: str) -> list[str]:
    """The lines of a claim's details that one dataset's section states: Claim 2's bounds
    ('<ds> (C = ...') and Claim 5's rate ('<ds>, at ...'); Claims 3 and 5's trend lines are
    the dataset's table instead."""
    return [
        x
        for c in items
        if c.number == number
        for x in c.details
        if x.startswith((f"{ds} (C = ", f"{ds}, "))
    ]


def _notes(items: Sequence[Claim], datasets: Sequence[str]) -> list[str]:
    """What each claim's check is and its power; its per-dataset lines are in each
    dataset's section (a table, or a line under it)."""
    md = ["## Notes on the claims", ""]
    heads = tuple(f"{ds}{sep}" for ds in datasets for sep in (" ", ", "))
    for c in items:
        notes = [x for x in c.details if not x.startswith(heads)]
        if notes:
            md.append(f"- Claim {c.number} ({c.name}): " + "; ".join(notes) + ".")
    return [*md, ""]
