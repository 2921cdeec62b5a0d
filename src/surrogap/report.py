"""The report: every figure and table of Bao, Nagano & Nozawa (ICML 2022), from what the
pipeline wrote.

    H. Bao, Y. Nagano, K. Nozawa. "On the Surrogate Gap between Contrastive and Supervised
    Losses." ICML 2022, PMLR 162:1585-1606 (arXiv:2110.02501).

Inputs are tidy DataFrames read from `reports/results.csv` (one row per dataset, classes,
K, seed; docs/ARCHITECTURE.md) and from the pretrain trajectories (one row per dataset, K,
seed, epoch). Every figure is a pure function DataFrame -> matplotlib `Figure` (built
without pyplot, so nothing global is touched); the Markdown builder and the claims summary
are pure functions too. Writing files is the stage's job (stages/report.py).

All losses are in nats; every bound uses L2-normalized features, so b = 1.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from surrogap import bounds
from surrogap.config import parse, spec
from surrogap.errors import UserError
from surrogap.schema import REPORT_EXTERNAL_COLUMNS, REPORT_TRAJECTORY_COLUMNS, RESULT_COLUMNS

__all__ = [
    "RESULTS_COLUMNS",
    "TRAJECTORY_COLUMNS",
    "Claim",
    "Report",
    "ReportParams",
    "build_report",
    "claims",
    "claims_markdown",
    "format_number",
    "load_results",
    "load_trajectories",
    "parse_params",
    "plot_accuracy_heatmaps",
    "plot_learning_curves",
    "plot_surrogate_gap",
    "plot_trajectories",
    "plot_upper_bounds",
    "seed_summary",
    "table_markdown",
]

RESULTS_COLUMNS = RESULT_COLUMNS  # the bounds stage's table, docs/ARCHITECTURE.md
# the columns of trajectory.csv this module reads (train_loss and lr are ignored)
TRAJECTORY_COLUMNS = REPORT_TRAJECTORY_COLUMNS  # the columns read from each trajectory.csv

EARLIER_BOUNDS = {
    "arora": "Arora et al. 2019",
    "nozawa_sato": "Nozawa & Sato 2021",
    "ash": "Ash et al. 2022",
}
# the same without years, for claim lines (every number there comes from the data)
BOUND_NAMES = {"arora": "Arora et al.", "nozawa_sato": "Nozawa & Sato", "ash": "Ash et al."}
# Claim 2: "orders of magnitude larger" is read as at least this ratio to the measured R_mu
ORDER_OF_MAGNITUDE = 10.0


# --------------------------------------------------------------------------- params
def _one_line(s: str) -> bool:
    return bool(s.strip()) and "\n" not in s


@dataclass(frozen=True)
class ReportParams:
    """The `report` section of params.yaml."""

    title: str = spec(
        "Surrogate gap between contrastive and supervised losses: reproduction report",
        check=_one_line,
        allowed="a non-empty one-line string",
    )
    dpi: int = spec(150, check=lambda v: 50 <= v <= 600, allowed="an integer in [50, 600]")
    decimals: int = spec(3, check=lambda v: 1 <= v <= 6, allowed="an integer in [1, 6]")
    # Claim 2: Bao et al.'s upper bound counts as tight when it is at most this far above R_mu
    upper_within_nats: float = spec(
        5.0, check=lambda v: 0 < v < math.inf, allowed="a finite number of nats > 0"
    )
    # Claim 4: the fraction of held-out trajectory points that must lie inside the band
    min_inside_fraction: float = spec(
        1.0, check=lambda v: 0 <= v <= 1, allowed="a number in [0, 1]"
    )


def parse_params(section: Any) -> ReportParams:
    """Validate the `report` section (None: all defaults); one line names a bad key."""
    if isinstance(section, Mapping):
        allowed = [f.name for f in ReportParams.__dataclass_fields__.values()]
        for key, value in section.items():
            if key not in allowed:
                raise UserError(
                    f"report: unknown key {key!r} (value {value!r}); allowed keys: "
                    + ", ".join(allowed)
                )
    return parse(ReportParams, section, "report")


# --------------------------------------------------------------------------- loading
def _numeric(frame: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    for col in columns:
        try:
            frame[col] = pd.to_numeric(frame[col], errors="raise").astype(np.float64)
        except (ValueError, TypeError):
            raise UserError(f"{where}: column {col!r} holds values that are not numbers") from None


def _as_bool(series: pd.Series, where: str) -> pd.Series:
    if series.dtype == bool:
        return series
    table = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    mapped = series.astype(str).str.strip().str.lower().map(table)
    if mapped.isna().any():
        bad = series[mapped.isna()].iloc[0]
        raise UserError(f"{where}: column 'holds' must be true/false, got {bad!r}")
    return mapped.astype(bool)


def load_results(path: str | Path) -> pd.DataFrame:
    """reports/results.csv as a typed DataFrame; a missing or malformed file is one line."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise UserError(f"results file {where!r} does not exist (run the bounds stage first)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"results file {where!r} is not a readable CSV: {first}") from None
    missing = [c for c in RESULTS_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"results file {where!r} lacks the columns {', '.join(missing)}")
    if frame.empty:
        raise UserError(f"results file {where!r} has no rows")
    frame = frame.copy()
    frame["dataset"] = frame["dataset"].astype(str)
    frame["kind"] = frame["kind"].astype(str)
    _numeric(frame, [c for c in RESULTS_COLUMNS if c not in ("dataset", "kind", "holds")], where)
    for col in ("classes", "k", "seed"):
        values = frame[col]
        if values.isna().any() or (values != np.round(values)).any():
            raise UserError(f"{where}: column {col!r} must hold integers")
        frame[col] = values.astype(np.int64)
    frame["holds"] = _as_bool(frame["holds"], where)
    per_dataset = frame.groupby("dataset")["classes"].nunique()
    if (per_dataset > 1).any():
        ds = per_dataset[per_dataset > 1].index[0]
        raise UserError(
            f"{where}: dataset {ds!r} has several classes values; each dataset section has one C"
        )
    if frame.duplicated(["dataset", "k", "seed"]).any():
        row = frame[frame.duplicated(["dataset", "k", "seed"])].iloc[0]
        raise UserError(
            f"{where}: more than one row for dataset {row['dataset']!r}, "
            f"k {row['k']}, seed {row['seed']}"
        )
    order = {ds: i for i, ds in enumerate(pd.unique(frame["dataset"]))}
    frame = frame.assign(_order=frame["dataset"].map(order))
    frame = frame.sort_values(["_order", "k", "seed"]).drop(columns="_order")
    return frame.reset_index(drop=True)


def trajectory_path(pretrain_dir: str | Path, dataset: str, k: int, seed: int) -> Path:
    """`<pretrain-dir>/<dataset>/k<K>-s<seed>/trajectory.csv` (docs/ARCHITECTURE.md)."""
    return Path(pretrain_dir) / dataset / f"k{k}-s{seed}" / "trajectory.csv"


def load_trajectories(
    pretrain_dir: str | Path, results: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """The held-out trajectory of every run in `results`, as one tidy frame.

    Returns (frame, missing): frame has the columns dataset, kind, classes, k, seed, epoch,
    val_contrastive_loss, val_supervised_loss, val_mean_acc, lower_gap, upper_gap (the gaps
    are the bounds stage's, from results.csv, so a non-uniform prior is respected); rows
    with a missing value are dropped. `missing` names the runs without a trajectory file.
    """
    frames, missing = [], []
    for row in results.itertuples(index=False):
        path = trajectory_path(pretrain_dir, row.dataset, int(row.k), int(row.seed))
        if not path.is_file():
            missing.append(f"{row.dataset} K={row.k} seed {row.seed}")
            continue
        try:
            traj = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            raise UserError(f"trajectory {str(path)!r} is not a readable CSV") from None
        lacking = [c for c in TRAJECTORY_COLUMNS if c not in traj.columns]
        if lacking:
            raise UserError(f"trajectory {str(path)!r} lacks the columns {', '.join(lacking)}")
        traj = traj[list(TRAJECTORY_COLUMNS)].copy()
        _numeric(traj, TRAJECTORY_COLUMNS, str(path))
        traj = traj.dropna()
        for col in ("dataset", "kind", "classes", "k", "seed", "lower_gap", "upper_gap"):
            traj[col] = getattr(row, col)
        frames.append(traj)
    columns = [
        "dataset",
        "kind",
        "classes",
        "k",
        "seed",
        *TRAJECTORY_COLUMNS,
        "lower_gap",
        "upper_gap",
    ]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns}), missing
    frame = pd.concat(frames, ignore_index=True)[columns]
    return frame.sort_values(["dataset", "k", "seed", "epoch"]).reset_index(drop=True), missing


# --------------------------------------------------------------------------- numbers
def format_number(x: float, decimals: int = 3) -> str:
    """One number as the report prints it: fixed point, scientific from 1e4, 'undefined'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "undefined"
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if abs(x) >= 1e4:
        return f"{x:.{max(decimals - 1, 1)}e}"
    return f"{x:.{decimals}f}"


def _signed(x: float, decimals: int) -> str:
    """A change, with its sign always written (+0.150, -0.250)."""
    text = format_number(x, decimals)
    return text if text.startswith(("-", "u")) else f"+{text}"


def _mean_std(values: pd.Series) -> tuple[float, float]:
    """Mean and sample std over seeds of the defined values (NaN when none / one)."""
    v = values.to_numpy(dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    if np.isinf(v).any():
        return float(np.mean(v)), math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


SUMMARY_METRICS = (
    "contrastive_loss",
    "supervised_loss",
    "bao_lower",
    "bao_upper",
    "arora",
    "nozawa_sato",
    "ash",
    "mean_acc",
    "linear_acc",
)


def seed_summary(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, K): mean and std over seeds of every reported quantity.

    Columns: dataset, kind, classes, k, seeds, holds (count of seeds on which the
    two-sided bound holds), and `<metric>_mean`, `<metric>_std` for each of
    SUMMARY_METRICS.
    """
    rows = []
    order = {ds: i for i, ds in enumerate(pd.unique(results["dataset"]))}
    keys = sorted(results.groupby(["dataset", "k"]).groups, key=lambda t: (order[t[0]], t[1]))
    for ds, k in keys:
        grp = results[(results["dataset"] == ds) & (results["k"] == k)]
        row: dict[str, Any] = {
            "dataset": ds,
            "kind": grp["kind"].iloc[0],
            "classes": int(grp["classes"].iloc[0]),
            "k": int(k),
            "seeds": len(grp),
            "holds": int(grp["holds"].sum()),
        }
        for metric in SUMMARY_METRICS:
            row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std(grp[metric])
        rows.append(row)
    return pd.DataFrame(rows)


TABLE_COLUMNS = (
    ("contrastive_loss", "R_cont (nats)"),
    ("supervised_loss", "R_mu (nats)"),
    ("bao_lower", "Bao lower"),
    ("bao_upper", "Bao upper"),
    ("arora", "Arora et al."),
    ("nozawa_sato", "Nozawa & Sato"),
    ("ash", "Ash et al."),
    ("mean_acc", "mean-classifier acc."),
    ("linear_acc", "linear-probe acc."),
)


def table_markdown(summary: pd.DataFrame, decimals: int = 3) -> str:
    """The per-K table of one dataset (rows of `seed_summary`), mean ± std over seeds."""
    header = ["K", *(label for _, label in TABLE_COLUMNS), "bound holds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * (len(header) - 1) + ":---|"]
    for row in summary.sort_values("k").itertuples(index=False):
        cells = [str(row.k)]
        for metric, _ in TABLE_COLUMNS:
            mean = getattr(row, f"{metric}_mean")
            std = getattr(row, f"{metric}_std")
            text = format_number(mean, decimals)
            if not math.isnan(mean) and not math.isnan(std):
                text += f" ± {format_number(std, decimals)}"
            cells.append(text)
        verdict = "yes" if row.holds == row.seeds else "no"
        cells.append(f"{verdict} ({row.holds}/{row.seeds} seeds)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- claims
@dataclass(frozen=True)
class Claim:
    """One of the paper's claims (docs/THEORY.md, last section) and what the run shows."""

    number: int
    name: str
    status: str  # "confirmed", "not confirmed" or "not tested"
    text: str
    details: tuple[str, ...] = field(default_factory=tuple)


def _claim_sandwich(results: pd.DataFrame, d: int) -> Claim:
    n = len(results)
    held = int(results["holds"].sum())
    r = results
    margin = np.minimum(
        r["supervised_loss"] - r["bao_lower"], r["bao_upper"] - r["supervised_loss"]
    )
    text = f"holds on {held}/{n} runs"
    if held == n:
        i = int(np.argmin(margin.to_numpy()))
        worst = r.iloc[i]
        text += (
            f"; smallest margin {format_number(float(margin.iloc[i]), d)} nats "
            f"({worst['dataset']}, K={worst['k']})"
        )
        return Claim(1, "two-sided bound", "confirmed", text)
    failed = r[~r["holds"]]
    where = ", ".join(f"{x.dataset} K={x.k} seed {x.seed}" for x in failed.head(5).itertuples())
    if len(failed) > 5:
        where += f" and {len(failed) - 5} more"
    worst = float(-margin[~r["holds"]].min())
    text += f"; violated on {where}; largest violation {format_number(worst, d)} nats"
    return Claim(1, "two-sided bound", "not confirmed", text)


def _claim_tightness(results: pd.DataFrame, p: ReportParams) -> Claim:
    d = p.decimals
    n = len(results)
    excess = results["bao_upper"] - results["supervised_loss"]
    i = int(np.argmax(excess.to_numpy()))
    worst = results.iloc[i]
    text = (
        f"Bao et al.'s upper bound is at most {format_number(float(excess.iloc[i]), d)} nats "
        f"above R_mu ({worst['dataset']}, K={worst['k']}) over {n} runs"
    )
    tight = bool(excess.max() <= p.upper_within_nats)
    pairs = []
    for name in EARLIER_BOUNDS:
        for row in results.itertuples(index=False):
            pairs.append((name, row.dataset, row.k, getattr(row, name), row.supervised_loss))
    undefined = sum(1 for *_, v, _ in pairs if math.isnan(v))
    defined = [(nm, ds, k, v / r) for nm, ds, k, v, r in pairs if not math.isnan(v) and r > 0]
    text += f"; the earlier bounds are undefined on {undefined}/{len(pairs)} (bound, run) pairs"
    loose = True
    if defined:
        nm, ds, k, ratio = min(defined, key=lambda t: t[3])
        short = sum(1 for *_, q in defined if q < ORDER_OF_MAGNITUDE)
        text += (
            f" and at least {format_number(ratio, d)} times R_mu on the other {len(defined)} "
            f"(smallest: {BOUND_NAMES[nm]}, {ds}, K={k})"
        )
        if short:
            loose = False
            text += f"; {short} of them are less than an order of magnitude above R_mu"
    if not tight:
        over = int((excess > p.upper_within_nats).sum())
        text += f"; Bao et al.'s bound is further above R_mu than allowed on {over} runs"
    status = "confirmed" if tight and loose else "not confirmed"
    return Claim(2, "Bao et al.'s upper bound is tight, the earlier ones are not", status, text)


def _claim_downstream(summary: pd.DataFrame, d: int) -> Claim:
    details, tested, good = [], 0, 0
    for ds in pd.unique(summary["dataset"]):
        grp = summary[summary["dataset"] == ds].sort_values("k")
        ks = grp["k"].tolist()
        if len(ks) < 2:
            details.append(f"{ds}: a single K; not testable")
            continue
        tested += 1
        first, last = grp.iloc[0], grp.iloc[-1]
        r0, r1 = first["supervised_loss_mean"], last["supervised_loss_mean"]
        a0, a1 = first["mean_acc_mean"], last["mean_acc_mean"]
        l0, l1 = first["linear_acc_mean"], last["linear_acc_mean"]
        worse = [
            name
            for name, better in (
                ("R_mu", r1 < r0),
                ("mean-classifier accuracy", a1 > a0),
                ("linear-probe accuracy", l1 > l0),
            )
            if not better
        ]
        improves = not worse
        line = (
            f"{ds}: from K={ks[0]} to K={ks[-1]}, R_mu {format_number(r0, d)} → "
            f"{format_number(r1, d)} nats, mean-classifier accuracy {format_number(a0, d)} → "
            f"{format_number(a1, d)}, linear-probe accuracy {format_number(l0, d)} → "
            f"{format_number(l1, d)}"
        )
        saturates = True
        if len(ks) >= 3:
            r = grp["supervised_loss_mean"].to_numpy()
            a = grp["mean_acc_mean"].to_numpy()
            # change = value at the larger K minus value at the smaller K
            first_r, last_r = float(r[1] - r[0]), float(r[-1] - r[-2])
            first_a, last_a = float(a[1] - a[0]), float(a[-1] - a[-2])
            saturates = bool(-last_r < -first_r)  # the last step gains less than the first
            line += (
                f"; change of R_mu over the first K step (K={ks[0]}→{ks[1]}) "
                f"{_signed(first_r, d)} nats, over the last (K={ks[-2]}→{ks[-1]}) "
                f"{_signed(last_r, d)} nats; of mean-classifier accuracy {_signed(first_a, d)} "
                f"and {_signed(last_a, d)}"
            )
        else:
            line += "; saturation not testable with two K values"
        verdict = []
        if not improves:
            verdict.append(f"{' and '.join(worse)} does not improve")
        if not saturates:
            verdict.append("does not saturate")
        line += f" ({' and '.join(verdict) if verdict else 'improves and saturates'})"
        good += improves and saturates
        details.append(line)
    if tested == 0:
        return Claim(
            3,
            "downstream improves with K and saturates",
            "not tested",
            "every dataset was run with a single K",
            tuple(details),
        )
    status = "confirmed" if good == tested else "not confirmed"
    text = f"improves and saturates on {good}/{tested} datasets"
    return Claim(3, "downstream improves with K and saturates", status, text, tuple(details))


def trajectory_checks(traj: pd.DataFrame) -> pd.DataFrame:
    """Per trajectory point: inside the band, right of R_cont*(K, C), above R_mu*(C).

    Adds boolean columns `inside`, `right`, `above` (b = 1).
    """
    out = traj.copy()
    gap = out["val_supervised_loss"] - out["val_contrastive_loss"]
    out["inside"] = (out["lower_gap"] <= gap) & (gap <= out["upper_gap"])
    ideal_cont = {}
    for (k, c), _ in out.groupby(["k", "classes"]):
        ideal_cont[(k, c)] = bounds.optimal_contrastive_loss(int(k), int(c))
    rc = np.array(
        [ideal_cont[(k, c)] for k, c in zip(out["k"], out["classes"], strict=True)], dtype=float
    )
    rm = np.array([bounds.optimal_supervised_loss(int(c)) for c in out["classes"]], dtype=float)
    out["right"] = out["val_contrastive_loss"].to_numpy() >= rc
    out["above"] = out["val_supervised_loss"].to_numpy() >= rm
    return out


def _claim_trajectories(traj: pd.DataFrame, missing: Sequence[str], p: ReportParams) -> Claim:
    name = "trajectories stay inside the band"
    if traj.empty:
        return Claim(4, name, "not tested", "no trajectory file was found")
    t = trajectory_checks(traj)
    n = len(t)
    inside, right, above = int(t["inside"].sum()), int(t["right"].sum()), int(t["above"].sum())
    text = (
        f"{inside}/{n} held-out trajectory points ({100.0 * inside / n:.1f}%) lie inside the "
        f"band; {right}/{n} are right of R_cont\\*, {above}/{n} above R_mu\\*"
    )
    if missing:
        text += f" ({len(missing)} runs have no trajectory file)"
    details = []
    for (ds, k), grp in t[~t["inside"]].groupby(["dataset", "k"], sort=True):
        first = float(grp["epoch"].min())
        when = str(int(first)) if first.is_integer() else format_number(first, p.decimals)
        details.append(
            f"{ds} K={k}: {len(grp)} point{'s' if len(grp) > 1 else ''} outside the band, "
            f"the first at epoch {when}"
        )
    ok = inside / n >= p.min_inside_fraction and right == n and above == n
    return Claim(4, name, "confirmed" if ok else "not confirmed", text, tuple(details))


def claims(
    results: pd.DataFrame,
    trajectories: pd.DataFrame,
    params: ReportParams | None = None,
    missing: Sequence[str] = (),
) -> list[Claim]:
    """Claims 1-4 of docs/THEORY.md checked on the results table and the trajectories."""
    p = params or ReportParams()
    return [
        _claim_sandwich(results, p.decimals),
        _claim_tightness(results, p),
        _claim_downstream(seed_summary(results), p.decimals),
        _claim_trajectories(trajectories, missing, p),
    ]


def claims_markdown(items: Sequence[Claim]) -> str:
    """One bullet per claim, its evidence in sub-bullets."""
    lines = []
    for c in items:
        lines.append(f"- **Claim {c.number} ({c.name}):** {c.status}: {c.text}.")
        lines += [f"  - {d}." for d in c.details]
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures
@contextlib.contextmanager
def _style() -> Iterator[None]:
    """Seaborn's white grid and compact fonts, only while a figure is being built."""
    rc = {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "legend.fontsize": 8,
        "legend.title_fontsize": 8,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
    }
    with sns.axes_style("whitegrid"), mpl.rc_context(rc):
        yield


def _k_colors(ks: Sequence[int]) -> dict[int, tuple]:
    """One colour per K, dark to light along viridis (the lightest yellow left out)."""
    ks = sorted(set(int(k) for k in ks))
    cmap = mpl.colormaps["viridis"]
    if len(ks) == 1:
        return {ks[0]: cmap(0.35)}
    return {k: cmap(0.05 + 0.8 * i / (len(ks) - 1)) for i, k in enumerate(ks)}


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs the columns {', '.join(missing)}")
    if df.empty:
        raise ValueError(f"{what} needs at least one row")


def _k_axis(ax, ks: Sequence[int]) -> None:
    """A log K axis that labels the measured K values themselves."""
    ks = sorted(set(int(k) for k in ks))
    ax.set_xscale("log")
    if len(ks) > 8:  # too many to label each: plain numbers at the powers of ten
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
        return
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.minorticks_off()
    if len(ks) == 1:
        ax.set_xlim(ks[0] / 2, ks[0] * 2)


def _title_of(df: pd.DataFrame) -> str:
    parts = []
    if "dataset" in df.columns and df["dataset"].nunique() == 1:
        parts.append(str(df["dataset"].iloc[0]))
    if "classes" in df.columns and df["classes"].nunique() == 1:
        parts.append(f"C = {int(df['classes'].iloc[0])}")
    return ", ".join(parts)


def _plain_log_label(value: float, _pos: int) -> str:
    """'2', '30', '0.5' on a log axis, but only for the mantissas 1, 2, 3 and 5."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if mantissa in (1.0, 2.0, 3.0, 5.0) else ""


def plot_upper_bounds(df: pd.DataFrame) -> Figure:
    """Fig. 1 / 9: the four upper bounds on R_mu and the measured R_mu against K.

    df: results rows of one dataset (columns k, supervised_loss, bao_upper, arora,
    nozawa_sato, ash; optional dataset, classes). Mean over seeds, log-log. Points that a
    log axis cannot show are absent and the legend says why: undefined (NaN, K + 1 < C),
    overflowing float64 (inf), or not positive (an earlier bound at a measured loss below
    its collision term).
    """
    _require(df, ["k", "supervised_loss", "bao_upper", *EARLIER_BOUNDS], "plot_upper_bounds")
    series = [
        (
            "supervised_loss",
            r"measured $R_\mu$ (test set)",
            dict(color="black", marker="o", lw=2.2),
        ),
        ("bao_upper", "Bao et al. 2022 (this paper)", dict(color="C0", marker="s", lw=1.8)),
        ("arora", EARLIER_BOUNDS["arora"], dict(color="C1", marker="^", ls="--")),
        ("nozawa_sato", EARLIER_BOUNDS["nozawa_sato"], dict(color="C2", marker="v", ls="-.")),
        ("ash", EARLIER_BOUNDS["ash"], dict(color="C3", marker="D", ls=":")),
    ]
    means = df.groupby("k")[[s[0] for s in series]].mean().sort_index()  # NaN stays NaN
    values = means.to_numpy(dtype=float)
    shown = values[np.isfinite(values) & (values > 0)]
    with _style():
        fig = Figure(figsize=(6.0, 4.2), layout="constrained")
        ax = fig.add_subplot()
        for col, label, style in series:
            y = means[col].to_numpy(dtype=float)
            ok = np.isfinite(y) & (y > 0)
            notes = []
            for bad, why in (
                (np.isnan(y), "undefined"),
                (np.isinf(y), "overflows"),
                (np.isfinite(y) & (y <= 0), "not positive"),
            ):
                if bad.all():
                    notes.append(f"{why} at every K")
                elif bad.any():
                    notes.append(f"{why} at some K")
            if notes:
                label += f" ({'; '.join(notes)})"
            ax.plot(means.index[ok], y[ok], label=label, ms=5, **style)
        _k_axis(ax, means.index)
        ax.set_yscale("log")
        if shown.size and math.log10(shown.max() / shown.min()) < 2:
            # under two decades: label 1, 2, 3, 5 x 10^n instead of powers of ten only
            ax.yaxis.set_major_formatter(mticker.FuncFormatter(_plain_log_label))
            ax.yaxis.set_minor_formatter(mticker.FuncFormatter(_plain_log_label))
        ax.set_xlabel("K (number of negatives, log scale)")
        ax.set_ylabel(r"upper bound on $R_\mu$, measured $R_\mu$ (nats, log scale)")
        ax.set_title(f"Upper bounds on the supervised loss ({_title_of(df)})")
        fig.legend(loc="outside lower center", ncol=2, frameon=False)
    return fig


def _gap_grid(ks: np.ndarray) -> np.ndarray:
    lo, hi = int(ks.min()), int(ks.max())
    if lo == hi:
        lo, hi = max(1, lo // 2), hi * 2
    grid = np.unique(np.round(np.geomspace(lo, hi, 200)).astype(np.int64))
    return np.union1d(grid, ks.astype(np.int64))


def plot_surrogate_gap(df: pd.DataFrame) -> Figure:
    """The measured surrogate gap R_mu - R_cont against K inside [Delta_L, Delta_U].

    df: columns k, classes, supervised_loss, contrastive_loss (nats); one or many rows per
    K (seeds), one or several C. For each C: the band between Delta_L(K, C) and
    Delta_U(K, C) (uniform prior, b = 1, bounds.lower_gap / upper_gap) on a dense K grid,
    and the measured gap as mean ± std over the rows of each K, every row a faint dot.
    Both the band and the gap fall like -log K.
    """
    _require(df, ["k", "classes", "supervised_loss", "contrastive_loss"], "plot_surrogate_gap")
    data = df[["k", "classes", "supervised_loss", "contrastive_loss"]].copy()
    data["gap"] = data["supervised_loss"] - data["contrastive_loss"]
    cs = sorted(int(c) for c in data["classes"].unique())
    with _style():
        fig = Figure(figsize=(6.0, 4.2), layout="constrained")
        ax = fig.add_subplot()
        for i, c in enumerate(cs):
            color = f"C{i}"
            sub = data[data["classes"] == c]
            grid = _gap_grid(sub["k"].to_numpy())
            lo = np.asarray(bounds.lower_gap(grid, c), dtype=float)
            hi = np.asarray(bounds.upper_gap(grid, c), dtype=float)
            suffix = f", C = {c}" if len(cs) > 1 else ""
            ax.fill_between(
                grid,
                lo,
                hi,
                color=color,
                alpha=0.15,
                lw=0,
                label=rf"band $[\Delta_L(K), \Delta_U(K)]${suffix}",
            )
            ax.plot(grid, hi, color=color, ls="--", lw=1)
            ax.plot(grid, lo, color=color, ls=":", lw=1)
            stats = sub.groupby("k")["gap"].agg(["mean", "std", "count"]).sort_index()
            ax.scatter(sub["k"], sub["gap"], color=color, s=10, alpha=0.35, lw=0)
            ax.errorbar(
                stats.index,
                stats["mean"],
                yerr=stats["std"].fillna(0.0),
                color=color,
                marker="o",
                ms=5,
                capsize=3,
                lw=1.6,
                label=rf"measured $R_\mu - R_{{\mathrm{{cont}}}}$ (mean ± std){suffix}",
            )
        ax.axhline(0.0, color="0.5", lw=0.8)
        _k_axis(ax, data["k"].unique())
        ax.set_xlabel("K (number of negatives, log scale)")
        ax.set_ylabel(r"surrogate gap $R_\mu - R_{\mathrm{cont}}$ (nats)")
        title = _title_of(df) if len(cs) == 1 else "several C"
        ax.set_title(f"Surrogate gap against K ({title}; b = 1)")
        handles, labels = ax.get_legend_handles_labels()
        handles += [Line2D([], [], color="0.3", ls="--"), Line2D([], [], color="0.3", ls=":")]
        labels += [r"$\Delta_U(K, C)$: upper gap", r"$\Delta_L(K, C)$: lower gap"]
        fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)
    return fig


def plot_trajectories(traj: pd.DataFrame) -> Figure:
    """Fig. 5 / 6 (left): held-out (R_cont, R_mu) during training, one panel per K.

    traj: one dataset's trajectory rows (columns k, seed, epoch, val_contrastive_loss,
    val_supervised_loss, classes; lower_gap / upper_gap if the bounds stage wrote them,
    else the uniform-prior gaps). Each panel shades the band between the lines
    R_mu = R_cont + Delta_L(K) and R_mu = R_cont + Delta_U(K), marks R_cont*(K, C)
    (vertical) and R_mu*(C) (horizontal), b = 1, and draws one line per seed.
    """
    _require(
        traj,
        ["k", "seed", "epoch", "val_contrastive_loss", "val_supervised_loss", "classes"],
        "plot_trajectories",
    )
    ks = sorted(int(k) for k in traj["k"].unique())
    colors = _k_colors(ks)
    c = int(traj["classes"].iloc[0])
    ideal_mu = bounds.optimal_supervised_loss(c)
    ncols = min(len(ks), 3)
    nrows = math.ceil(len(ks) / ncols)
    with _style():
        fig = Figure(figsize=(3.6 * ncols, 3.2 * nrows + 0.6), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, k in zip(axes, ks, strict=False):
            sub = traj[traj["k"] == k]
            if "lower_gap" in sub.columns and "upper_gap" in sub.columns:
                lo_gap, hi_gap = float(sub["lower_gap"].iloc[0]), float(sub["upper_gap"].iloc[0])
            else:
                lo_gap, hi_gap = bounds.lower_gap(k, c), bounds.upper_gap(k, c)
            ideal_cont = bounds.optimal_contrastive_loss(k, c)
            x, y = sub["val_contrastive_loss"].to_numpy(), sub["val_supervised_loss"].to_numpy()
            x0, x1 = min(x.min(), ideal_cont), x.max()
            pad = 0.06 * max(x1 - x0, 1e-3)
            x0, x1 = x0 - pad, x1 + pad
            xs = np.array([x0, x1])
            ax.fill_between(xs, xs + lo_gap, xs + hi_gap, color=colors[k], alpha=0.18, lw=0)
            ax.plot(xs, xs + hi_gap, color=colors[k], ls="--", lw=1)
            ax.plot(xs, xs + lo_gap, color=colors[k], ls=":", lw=1)
            ax.axvline(ideal_cont, color="0.35", lw=1)
            ax.axhline(ideal_mu, color="0.35", lw=1, ls="-.")
            for _, run in sub.groupby("seed"):
                run = run.sort_values("epoch")
                rx, ry = run["val_contrastive_loss"], run["val_supervised_loss"]
                ax.plot(rx, ry, color=colors[k], lw=1.2, marker=".", ms=3)
                ax.plot(
                    rx.iloc[0], ry.iloc[0], ls="none", marker="o", ms=6, mfc="white", mec=colors[k]
                )
                ax.plot(
                    rx.iloc[-1],
                    ry.iloc[-1],
                    ls="none",
                    marker="*",
                    ms=10,
                    color=colors[k],
                    mec="black",
                    mew=0.5,
                )
            y0 = min(y.min(), ideal_mu, x0 + lo_gap)
            y1 = max(y.max(), x1 + hi_gap)
            ypad = 0.04 * (y1 - y0)
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0 - ypad, y1 + ypad)
            ax.set_title(f"K = {k}")
            ax.set_xlabel(r"held-out $R_{\mathrm{cont}}$ (nats)")
            ax.set_ylabel(r"held-out $R_\mu$ (nats)")
        for ax in axes[len(ks) :]:
            ax.set_visible(False)
        gray = "0.35"
        handles = [
            Patch(color="0.6", alpha=0.4),
            Line2D([], [], color=gray, ls="--"),
            Line2D([], [], color=gray, ls=":"),
            Line2D([], [], color=gray, lw=1),
            Line2D([], [], color=gray, lw=1, ls="-."),
            Line2D([], [], color=gray, marker=".", lw=1.2),
            Line2D([], [], ls="none", marker="o", mfc="white", mec=gray),
            Line2D([], [], ls="none", marker="*", ms=10, color=gray, mec="black", mew=0.5),
        ]
        labels = [
            "band between the bounds",
            r"$R_\mu = R_{\mathrm{cont}} + \Delta_U(K)$",
            r"$R_\mu = R_{\mathrm{cont}} + \Delta_L(K)$",
            r"$R^*_{\mathrm{cont}}(K, C)$ (ideal encoder)",
            r"$R^*_\mu(C)$ (ideal encoder)",
            "trajectory, one line per seed",
            "first evaluation",
            "last evaluation",
        ]
        fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False)
        fig.suptitle(f"Held-out trajectories during training ({_title_of(traj)}; b = 1)")
    return fig


def _mean_band(
    ax, frame: pd.DataFrame, x: str, y: str, color, label: str, limits=(-np.inf, np.inf)
) -> None:
    """Mean over seeds with a ± std band, the band clipped to `limits` (e.g. [0, 1])."""
    stats = frame.groupby(x)[y].agg(["mean", "std"]).sort_index()
    ax.plot(stats.index, stats["mean"], color=color, lw=1.6, label=label)
    if stats["std"].notna().any():
        sd = stats["std"].fillna(0.0)
        low = (stats["mean"] - sd).clip(*limits)
        high = (stats["mean"] + sd).clip(*limits)
        ax.fill_between(stats.index, low, high, color=color, alpha=0.2, lw=0)


def plot_learning_curves(traj: pd.DataFrame) -> Figure:
    """Fig. 5 / 6 (right): held-out R_mu and mean-classifier accuracy per K against the
    epoch (mean ± std over seeds), and the best (minimum over epochs) held-out R_mu
    against K with every seed shown.

    traj: one dataset's trajectory rows (columns k, seed, epoch, val_supervised_loss,
    val_mean_acc).
    """
    _require(
        traj, ["k", "seed", "epoch", "val_supervised_loss", "val_mean_acc"], "plot_learning_curves"
    )
    ks = sorted(int(k) for k in traj["k"].unique())
    colors = _k_colors(ks)
    with _style():
        fig = Figure(figsize=(12.0, 3.9), layout="constrained")
        ax_loss, ax_acc, ax_best = fig.subplots(1, 3)
        for k in ks:
            sub = traj[traj["k"] == k]
            _mean_band(ax_loss, sub, "epoch", "val_supervised_loss", colors[k], f"K = {k}")
            _mean_band(ax_acc, sub, "epoch", "val_mean_acc", colors[k], f"K = {k}", (0.0, 1.0))
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel(r"held-out $R_\mu$ (nats)")
        ax_loss.set_title(r"Held-out $R_\mu$ (mean ± std over seeds)")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel("held-out mean-classifier accuracy (fraction)")
        ax_acc.set_title("Held-out accuracy (mean ± std over seeds)")
        ax_acc.legend(title="negatives", loc="best", frameon=True)
        best = traj.groupby(["k", "seed"])["val_supervised_loss"].min().reset_index()
        stats = best.groupby("k")["val_supervised_loss"].agg(["mean", "std"]).sort_index()
        ax_best.errorbar(
            stats.index,
            stats["mean"],
            yerr=stats["std"].fillna(0.0),
            color="black",
            marker="o",
            capsize=3,
            lw=1.4,
            label="mean ± std",
        )
        ax_best.scatter(
            best["k"],
            best["val_supervised_loss"],
            c=[colors[int(k)] for k in best["k"]],
            s=18,
            alpha=0.8,
            zorder=3,
        )
        ax_best.scatter([], [], color="0.45", s=18, label="one seed")
        _k_axis(ax_best, ks)
        ax_best.set_xlabel("K (number of negatives, log scale)")
        ax_best.set_ylabel(r"best held-out $R_\mu$ over epochs (nats)")
        ax_best.set_title(r"Best held-out $R_\mu$ against K (every seed)")
        ax_best.legend(loc="best", frameon=True)
        fig.suptitle(f"Learning curves ({_title_of(traj)})")
    return fig


def plot_accuracy_heatmaps(df: pd.DataFrame) -> Figure:
    """Fig. 7 / 8: test accuracy over C x K (mean over seeds), mean classifier and linear
    probe side by side, on one colour scale.

    df: results rows of one `kind` (columns classes, k, mean_acc, linear_acc).
    """
    _require(df, ["classes", "k", "mean_acc", "linear_acc"], "plot_accuracy_heatmaps")
    tables = {
        col: df.pivot_table(index="classes", columns="k", values=col, aggfunc="mean")
        .sort_index()
        .sort_index(axis=1)
        for col in ("mean_acc", "linear_acc")
    }
    values = np.concatenate([t.to_numpy().ravel() for t in tables.values()])
    values = values[np.isfinite(values)]
    vmin, vmax = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if vmax - vmin < 1e-6:
        vmin, vmax = vmin - 0.05, vmax + 0.05
    ncol = max(t.shape[1] for t in tables.values())
    nrow = max(t.shape[0] for t in tables.values())
    kind = str(df["kind"].iloc[0]) if "kind" in df.columns else ""
    with _style():
        fig = Figure(figsize=(max(7.0, 1.6 + 1.3 * ncol), 1.8 + 0.5 * nrow), layout="constrained")
        axes = fig.subplots(1, 2)
        titles = {"mean_acc": "mean classifier", "linear_acc": "linear probe"}
        for i, (ax, (col, table)) in enumerate(zip(axes, tables.items(), strict=True)):
            sns.heatmap(
                table.iloc[::-1],
                ax=ax,
                annot=True,
                fmt=".3f",
                cmap="viridis",
                vmin=vmin,
                vmax=vmax,
                cbar=i == 1,
                cbar_kws={"label": "test accuracy (fraction)"},
                linewidths=0.5,
                linecolor="white",
            )
            ax.set_xlabel("K (number of negatives)")
            ax.set_ylabel("C (number of classes)")
            ax.set_title(f"Test accuracy, {titles[col]}")
        fig.suptitle(f"Accuracy over C × K (kind {kind}; mean over seeds)")
    return fig


# --------------------------------------------------------------------------- the report
@dataclass
class Report:
    """The Markdown text and the figures it links, by file name inside the figures folder."""

    markdown: str
    figures: dict[str, Figure]


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _safe(name: str) -> str:
    return _SAFE.sub("-", name).strip("-") or "unnamed"


def _link(alt: str, path: str) -> str:
    return f"![{alt}]({path.replace(' ', '%20')})"


EXTERNAL_COLUMNS = REPORT_EXTERNAL_COLUMNS  # the columns read from reports/external.csv


def load_external(path: str | Path) -> pd.DataFrame | None:
    """The `evaluate` stage's table, or None where the file is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{str(path)!r} is not a readable CSV ({type(exc).__name__})") from None
    if df.empty:
        return df
    _require(df, EXTERNAL_COLUMNS, str(path))
    _numeric(df, EXTERNAL_COLUMNS[1:-1], str(path))
    df["holds"] = _as_bool(df["holds"], f"{path} column holds")
    return df


def external_markdown(external: pd.DataFrame, d: int, add) -> list[str]:
    """The section for representations evaluated by the `evaluate` stage."""
    md = ["## External representations (`evaluate` stage)", ""]
    md += [
        "Features of other encoders, evaluated per K exactly as the pipeline's own runs: test "
        "contrastive loss ± standard error, R_mu and accuracy of the mean classifier (class "
        "means from the train split), and Bao et al.'s bounds at the measured loss.",
        "",
    ]
    for name in pd.unique(external["dataset"]):
        rows = external[external["dataset"] == name].sort_values("k")
        c = int(rows["classes"].iloc[0])
        md += [f"### {name} (C = {c})", ""]
        md += [
            add(
                f"gap_external_{_safe(str(name))}.png",
                plot_surrogate_gap(rows),
                f"surrogate gap, {name}",
            ),
            "",
        ]
        md += [
            "| K | R_cont | R_mu | Bao lower | Bao upper | mean acc. | holds |",
            "|---:|---:|---:|---:|---:|---:|:---|",
        ]
        for r in rows.itertuples():
            md.append(
                f"| {int(r.k)} | {format_number(r.contrastive_loss, d)} ± {format_number(r.contrastive_loss_se, d)} "
                f"| {format_number(r.supervised_loss, d)} | {format_number(r.bao_lower, d)} "
                f"| {format_number(r.bao_upper, d)} | {format_number(r.mean_acc, d)} | {'yes' if r.holds else 'no'} |"
            )
        md.append("")
    return md


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
) -> Report:
    """The whole report: Markdown and figures, nothing written.

    figures_rel: the figures folder relative to report.md (POSIX separators).
    theory_links: {"fig3": "theory/fig3.png" or None when the theory stage's file is absent}.
    sources: {"results": path, "pretrain_dir": path} as given on the command line, for the
    footer.
    external: the `evaluate` stage's table (features of other encoders), or None.
    """
    p = params or ReportParams()
    d = p.decimals
    theory_links = dict(theory_links or {})
    sources = dict(sources or {})
    figures: dict[str, Figure] = {}
    summary = seed_summary(results)
    items = claims(results, trajectories, p, missing_trajectories)

    def add(name: str, fig: Figure, alt: str) -> str:
        figures[name] = fig
        return _link(alt, f"{figures_rel.rstrip('/')}/{name}")

    md = [f"# {p.title}", ""]
    md += [
        'Checks the four claims of Bao, Nagano & Nozawa, "On the Surrogate Gap between '
        'Contrastive and Supervised Losses" (ICML 2022, arXiv:2110.02501) on this run. '
        "Losses in nats; every bound uses L2-normalized features (b = 1).",
        "",
        "## Summary",
        "",
        claims_markdown(items),
        "",
    ]
    datasets = list(pd.unique(results["dataset"]))
    for ds in datasets:
        rows = results[results["dataset"] == ds]
        c = int(rows["classes"].iloc[0])
        kind = rows["kind"].iloc[0]
        tag = _safe(ds)
        md += [f"## {ds} (kind {kind}, C = {c})", ""]
        md += ["### Upper bounds against K (Fig. 1 / 9)", ""]
        md += [add(f"fig1_{tag}.png", plot_upper_bounds(rows), f"upper bounds, {ds}"), ""]
        md += [
            "Test-set R_mu and the upper bounds evaluated at the measured contrastive loss, "
            "mean over seeds; a bound absent at some K is undefined there (K + 1 < C).",
            "",
        ]
        md += ["### Surrogate gap against K", ""]
        md += [add(f"gap_{tag}.png", plot_surrogate_gap(rows), f"surrogate gap, {ds}"), ""]
        md += [
            "R_mu − R_cont on the test set against K; the shaded band is [Δ_L(K, C), "
            "Δ_U(K, C)] for a uniform prior and b = 1.",
            "",
        ]
        md += ["### Training trajectories (Fig. 5 / 6)", ""]
        traj = trajectories[trajectories["dataset"] == ds] if not trajectories.empty else None
        if traj is None or traj.empty:
            md += ["No trajectory file was found for this dataset.", ""]
        else:
            md += [add(f"fig5_{tag}.png", plot_trajectories(traj), f"trajectories, {ds}"), ""]
            md += [
                "Validation (R_cont, R_mu) at every evaluation, one panel per K: the band "
                "between R_mu = R_cont + Δ_L(K) and R_mu = R_cont + Δ_U(K), the ideal "
                "R_cont\\*(K, C) (vertical) and R_mu\\*(C) (horizontal).",
                "",
            ]
            md += [add(f"fig6_{tag}.png", plot_learning_curves(traj), f"learning curves, {ds}")]
            md += [""]
        lacking = [m for m in missing_trajectories if m.startswith(f"{ds} ")]
        if lacking and traj is not None and not traj.empty:
            md += [f"Runs without a trajectory file: {', '.join(lacking)}.", ""]
        md += ["### Test-set results per K (mean ± std over seeds)", ""]
        md += [
            "Losses and bounds in nats, accuracies as fractions; the last column says on "
            "how many seeds Bao lower ≤ R_mu ≤ Bao upper.",
            "",
        ]
        md += [table_markdown(summary[summary["dataset"] == ds], d), ""]
    if external is not None and not external.empty:
        md += external_markdown(external, d, add)
    md += ["## Accuracy over C × K (Fig. 7 / 8)", ""]
    swept = [
        kind for kind, grp in results.groupby("kind", sort=True) if grp["classes"].nunique() >= 2
    ]
    if not swept:
        md += ["No kind of data was run with several values of C, so there are no heat maps.", ""]
    for kind in swept:
        rows = results[results["kind"] == kind]
        name = f"fig7_8_{_safe(kind)}.png"
        md += [add(name, plot_accuracy_heatmaps(rows), f"accuracy over C and K, {kind}"), ""]
    md += ["## Ideal curves (Fig. 3 / 4)", ""]
    for key, what in (
        ("fig3", "Fig. 3: ideal losses and bounds"),
        ("fig4", "Fig. 4: coefficients of the contrastive loss"),
    ):
        link = theory_links.get(key)
        md += [_link(what, link) if link else f"{what}: not found (run the theory stage).", ""]
    ks = sorted(int(k) for k in results["k"].unique())
    seeds = sorted(int(s) for s in results["seed"].unique())
    listing = ", ".join(
        f"{ds} ({results.loc[results['dataset'] == ds, 'kind'].iloc[0]}, "
        f"C = {int(results.loc[results['dataset'] == ds, 'classes'].iloc[0])})"
        for ds in datasets
    )
    n_traj = 0 if trajectories.empty else trajectories.groupby(["dataset", "k", "seed"]).ngroups
    md += [
        "## How this was made",
        "",
        f"- Generated by `stages/report.py` from `{sources.get('results', 'reports/results.csv')}` "
        f"({len(results)} runs), {n_traj} trajectory files under "
        f"`{sources.get('pretrain_dir', 'data/pretrain')}` and the theory stage's figures; "
        "it reads nothing else and trains nothing.",
        f"- Datasets: {listing}.",
        f"- K: {', '.join(map(str, ks))}. Seeds: {', '.join(map(str, seeds))}.",
        "- Two-sided bound: Bao lower = R_cont + Δ_L(K, C), Bao upper = R_cont + Δ_U(K, C), "
        "with the gaps the bounds stage computed (uniform prior unless the dataset sets one); "
        "the earlier bounds are undefined where K + 1 < C (Arora et al., Nozawa & Sato).",
        f"- Claim thresholds (params `report`): Bao's upper bound within "
        f"{p.upper_within_nats:g} nats of R_mu; earlier bounds at least "
        f"{ORDER_OF_MAGNITUDE:g} times R_mu; at least {100 * p.min_inside_fraction:g}% of "
        "the trajectory points inside the band.",
        "",
    ]
    return Report("\n".join(md), figures)
