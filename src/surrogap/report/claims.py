"""The paper's claims, tested on this run; each verdict names the data it stands on and
carries its numbers. docs/THEORY.md section 8 states every claim's statistic, null, interval
and thresholds (the trends' seed-level inference: surrogap.report.stats).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np
import pandas as pd

from surrogap.core.schema import EARLIER_BOUNDS
from surrogap.report import stats as S
from surrogap.report.load import ReportParams
from surrogap.report.stats import format_number, run_label, trend
from surrogap.theory import bounds

__all__ = [
    "BOUND_NAMES",
    "CLAIMS",
    "EMPIRICAL",
    "FORMULA",
    "THEOREM",
    "Claim",
    "ClaimSpec",
    "Evidence",
    "TrendRow",
    "Verdict",
    "at_chance_runs",
    "claims",
    "collapsed_runs",
    "fixed_null_trends",
    "format_number",
    "run_label",
    "trajectory_checks",
]

EARLIER = EARLIER_BOUNDS
BOUND_NAMES = {"arora": "Arora et al.", "nozawa_sato": "Nozawa & Sato", "ash": "Ash et al."}
Points = Mapping[tuple[str, int, int], Mapping[str, np.ndarray]]
NOT_SEED_LEVEL = "power: not a seed-level test (each run is checked on its own)"


@dataclass(frozen=True)
class TrendRow:
    """One per-dataset trend of Claims 3 and 5, for the dataset's table: its numbers and
    its verdicts (what, status, why undecided, seeds needed), as stats.trend_line gives."""

    dataset: str
    trend: S.Trend
    verdicts: tuple[tuple[str, str, str, str], ...]


@dataclass(frozen=True)
class Verdict:
    """One dataset's verdict on one test of a claim (Claim 3: a metric; Claim 5: the decay,
    the rate), and why where a rule rather than the interval decided it (too few seeds, a
    single K, the ceiling)."""

    dataset: str
    test: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class Claim:
    """One claim and what this run shows. `key`: its key number with its interval (the
    claim table); `why`: where it is inconclusive, why, in a few words; `data`: the data it
    stands on; `trends`: the per-dataset trends behind it (Claims 3 and 5), for the
    dataset tables; `verdicts`: the per-dataset verdicts its headline tallies (Claims 3
    and 5), which `surrogap compare` diffs."""

    number: int
    name: str
    status: str
    text: str
    details: tuple[str, ...] = field(default_factory=tuple)
    key: str = ""
    why: str = ""
    data: str = ""
    trends: tuple[TrendRow, ...] = field(default_factory=tuple)
    verdicts: tuple[Verdict, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Evidence:
    """What the claims are tested on: the results table, the trajectories, the per-point
    arrays, the runs without a trajectory file and the fixed-encoder null."""

    results: pd.DataFrame
    trajectories: pd.DataFrame
    points: Points = field(default_factory=dict)
    missing: Sequence[str] = ()
    null: pd.DataFrame | None = None


THEOREM, FORMULA, EMPIRICAL = "theorem check", "formula check", "empirical test"


@dataclass(frozen=True)
class ClaimSpec:
    """One claim, described once: CLAIMS registers them, and the report's claim table, its
    answer paragraph, `surrogap compare`, the docs check and the claim count read it from
    there. docs/ARCHITECTURE.md ("Adding a claim") describes the fields; `figure` is (file
    name, {ds} the first dataset; its words)."""

    number: int
    name: str
    statement: str
    check: str
    figure: tuple[str, str]
    params: tuple[str, ...]
    test: Callable[[ClaimSpec, Evidence, ReportParams], Claim]
    trend: bool = False
    needs_trajectories: bool = False

    def found(self, status: str, text: str, details: Sequence[str] = (), **kw) -> Claim:
        """This claim's verdict on a run (keywords: Claim's key, why, data, trends, verdicts)."""
        return Claim(self.number, self.name, status, text, tuple(details), **kw)


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(confidence)


# --------------------------------------------------------------------------- collapsed runs
def collapsed_runs(results: pd.DataFrame, drop: float) -> pd.Series:
    """True for a run whose validation mean-classifier accuracy lies more than `drop` below
    the median of the other seeds of its (dataset, K). Validation data only: the test
    numbers the claims use play no part. A run without siblings is never flagged."""
    out = pd.Series(False, index=results.index)
    for _, grp in results.groupby(["dataset", "k"]):
        acc = grp["val_mean_acc"]
        for i in grp.index:
            others = acc.drop(index=i).dropna()
            if len(others) and not math.isnan(acc[i]):
                out[i] = bool(acc[i] < float(others.median()) - drop)
    return out


# --------------------------------------------------------------------------- runs at chance
CHANCE_FLOOR = 1e-6  # the rounding of results.csv (10 significant digits), and a little
# R_mu of a run whose logits all tie (features collapsed) is log C up to float32 rounding
TIED_LOGITS = 1e-6


def at_chance_runs(results: pd.DataFrame, points: Points, confidence: float) -> pd.Series:
    """True for a run at chance: its features carry nothing of the class. Unlike
    `collapsed_runs` this needs no sibling seed, so a grid whose every run failed is
    flagged too. The rule, at z the two-sided normal quantile of `confidence`
    (`report.confidence`; 1.96 at 0.95):

    - its test mean-classifier accuracy lies within noise of 1/C:
      |acc - 1/C| <= z * sqrt((1/C) (1 - 1/C) / n) + 1/(2n), the binomial standard error
      of the accuracy of n test points predicted at chance (normal approximation with
      continuity correction), n the run's test points from its per-point arrays
      (load.load_points); without them n is unknown and only acc = 1/C (within
      CHANCE_FLOOR, the table's rounding) counts;
    - or its test R_mu equals log C within TIED_LOGITS nats: every logit tied, the mean
      classifier's prediction is uniform (features collapsed to one point).

    R_mu merely *near* log C is not taken as chance: at b = 1 the logits span at most 2,
    so the R_mu of encoders well above chance also lies close to log C (the committed
    topics_c10 runs: 0.05 nats below log 10 at accuracy 0.6, where chance is 0.1)."""
    z = _z(0.5 + confidence / 2)
    out = pd.Series(False, index=results.index)
    for i, r in zip(results.index, results.itertuples(index=False), strict=True):
        c = int(r.classes)
        noise = CHANCE_FLOOR
        arr = points.get((r.dataset, int(r.k), int(r.seed)))
        if arr is not None and arr["mean_loss"].size > 1:
            n = int(arr["mean_loss"].size)
            noise += z * math.sqrt((1 / c) * (1 - 1 / c) / n) + 1 / (2 * n)
        acc, mu = float(r.mean_acc), float(r.supervised_loss)
        out[i] = bool(abs(acc - 1 / c) <= noise or abs(mu - math.log(c)) <= TIED_LOGITS)
    return out


def _at_chance_note(results: pd.DataFrame, chance: pd.Series) -> str:
    names = ", ".join(run_label(r.dataset, r.k, r.seed) for r in results[chance].itertuples())
    return (
        f"runs at chance (test accuracy within noise of 1/C, or R_mu = log C), not counted as "
        f"evidence: {names}"
    )


# --------------------------------------------------------------------------- claim 1
def _mu_se(points: Points, results: pd.DataFrame) -> np.ndarray:
    """Standard error of each run's R_mu over its test points (0 without per-point data)."""
    out = np.zeros(len(results))
    for i, r in enumerate(results.itertuples(index=False)):
        arr = points.get((r.dataset, int(r.k), int(r.seed)))
        if arr is not None and arr["mean_loss"].size > 1:
            loss = arr["mean_loss"]
            out[i] = float(loss.std(ddof=1) / math.sqrt(loss.size))
    return out


def _smallest_margin(
    margin: np.ndarray, se: np.ndarray, violated: int, p: ReportParams
) -> tuple[str, str, int, str]:
    """A theorem check's smallest margin in standard errors (printed), in nats (printed), its
    index and the verdict: consistent without a violation, else inconclusive within
    z_{conf} standard errors, else violated."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, margin / se, np.where(margin >= 0, np.inf, -np.inf))
    i = int(np.argmin(z))
    status = S.CONSISTENT
    if violated:
        status = S.INCONCLUSIVE if -float(z[i]) <= _z(p.confidence) else S.VIOLATED
    return format_number(float(z[i]), 1), format_number(float(margin[i]), p.decimals), i, status


def _claim_sandwich(spec: ClaimSpec, ev: Evidence, p: ReportParams) -> Claim:
    r, n = ev.results, len(ev.results)
    lower = (r["supervised_loss"] - r["bao_lower"]).to_numpy()
    upper = (r["bao_upper"] - r["supervised_loss"]).to_numpy()
    margin = np.minimum(lower, upper)
    se = np.sqrt(r["contrastive_loss_se"].to_numpy() ** 2 + _mu_se(ev.points, r) ** 2)
    held = int((margin >= 0).sum())
    z, nats, i, status = _smallest_margin(margin, se, n - held, p)
    worst = r.iloc[i]
    text = (
        f"holds on {held}/{n} runs; smallest margin {z} standard errors ({nats} nats, "
        f"{run_label(worst['dataset'], worst['k'], worst['seed'])}); {S.data_note(r)}"
    )
    key = f"smallest margin {nats} nats = {z} s.e. ({held}/{n} runs hold)"
    details = [
        "a theorem: this checks the implementation and the estimators; the standard error "
        "is each run's own, R_cont's (over pairings) and R_mu's (over test points, where "
        "per-point arrays exist) combined"
    ]
    if held < n:
        bad = [run_label(x.dataset, x.k, x.seed) for x in r[margin < 0].itertuples()]
        where = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        text += f"; violated on {where}"
        details.append(
            f"a violation within {format_number(_z(p.confidence), 2)} standard errors (one-sided "
            f"{100 * p.confidence:g}%) may be estimator noise: inconclusive; a larger one is not"
        )
    details.append(NOT_SEED_LEVEL)
    return spec.found(status, text, details, key=key, data=S.data_note(r))


# --------------------------------------------------------------------------- claim 2
def bound_ratios(results: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, K): Bao's upper bound, R_mu and log C (means over seeds), each earlier
    bound over Bao's and over R_mu (ratio of the means; NaN where undefined), the number of
    seeds, and `above_log_c`: on how many seeds Bao's upper bound lies above log C."""
    rows = []
    for (ds, k), g in results.groupby(["dataset", "k"], sort=False):
        c = int(g["classes"].iloc[0])
        vacuity = [bounds.upper_bound_vacuity(u, c) for u in g["bao_upper"]]  # the one rule
        row = {
            "dataset": ds,
            "k": int(k),
            "classes": c,
            "n": len(g),
            "bao_upper": float(g["bao_upper"].mean()),
            "supervised_loss": float(g["supervised_loss"].mean()),
            "log_c": math.log(c),
            "above_log_c": sum(v in (bounds.ABOVE_LOG_C, bounds.VACUOUS) for v in vacuity),
            "above_max": sum(v == bounds.VACUOUS for v in vacuity),
        }
        for name in EARLIER:
            v = g[name].to_numpy(dtype=float)
            m = float(v.mean()) if not np.isnan(v).any() else math.nan
            row[name] = m
            row[f"{name}_over_bao"] = m / row["bao_upper"]
            row[f"{name}_over_mu"] = m / row["supervised_loss"]
        rows.append(row)
    return pd.DataFrame(rows)


def _range(values: pd.Series) -> str:
    lo, hi = float(values.min()), float(values.max())
    text = format_number(lo, 2)
    return text if format_number(hi, 2) == text else f"{text} to {format_number(hi, 2)}"


def _per_k_counts(g: pd.DataFrame, column: str) -> str:
    """'3/3 seeds at K = 1, 4 and 2/3 at K = 64' for the K with a non-zero count."""
    groups: dict[tuple[int, int], list[str]] = {}
    for r in g[g[column] > 0].itertuples():
        groups.setdefault((int(getattr(r, column)), int(r.n)), []).append(str(r.k))
    parts = [f"{a}/{n} seeds at K = {', '.join(ks)}" for (a, n), ks in groups.items()]
    return "; ".join(parts)


def _vacuity(g: pd.DataFrame, d: int) -> str:
    c = int(g["classes"].iloc[0])
    log_c = math.log(c)
    if not (g["above_log_c"] > 0).any():
        return (
            f"Bao's upper bound is below log C = {format_number(log_c, d)} on every seed at every K"
        )
    text = (
        f"Bao's upper bound lies above log C = {format_number(log_c, d)} nats (the uniform "
        f"predictor's loss) on {_per_k_counts(g, 'above_log_c')}: there it is weaker than "
        "predicting uniformly"
    )
    top = (
        f"log(1 + (C - 1) e^2) = {format_number(bounds.max_supervised_loss(c), d)}, the largest "
        "R_mu possible at b = 1"
    )
    if (g["above_max"] > 0).any():
        return text + f", and above {top}, on {_per_k_counts(g, 'above_max')}: vacuous there"
    return text + f", yet below {top}, so it still excludes some values of R_mu"


def _claim_tightest(spec: ClaimSpec, ev: Evidence, p: ReportParams) -> Claim:
    d, r, n = p.decimals, ev.results, len(ev.results)
    bao = r["bao_upper"].to_numpy(dtype=float)
    defined = np.isfinite(bao)
    holds = r["supervised_loss"].to_numpy() <= bao
    earlier = r[list(EARLIER)].to_numpy(dtype=float)
    mu = r["supervised_loss"].to_numpy(dtype=float)
    is_def = ~np.isnan(earlier)
    # an earlier bound below the measured R_mu does not hold there (a measured loss below its
    # collision term makes it negative): said, and left out of the comparison
    failing = is_def & (earlier < mu[:, None])
    valid = is_def & ~failing
    below = np.where(valid, earlier > bao[:, None], True)  # nothing valid: nothing to beat
    smallest = below.all(axis=1) & defined
    n_def = int(is_def.sum())
    ok = bool(defined.all() and holds.all() and smallest.all())
    status = (S.CONFIRMED if valid.any() else S.INCONCLUSIVE) if ok else S.NOT_CONFIRMED
    text = (
        f"Bao et al.'s upper bound is defined on {int(defined.sum())}/{n} runs, holds on "
        f"{int(holds.sum())}/{n} and is the smallest of the upper bounds that hold on "
        f"{int(smallest.sum())}/{n}; the earlier bounds are defined on {n_def}/{3 * n} "
        "(bound, run) pairs"
    )
    key = "no earlier bound holds to compare with"
    if valid.any():
        ratio = np.where(valid, earlier / bao[:, None], np.nan)
        i, j = np.unravel_index(np.nanargmin(ratio), ratio.shape)
        row = r.iloc[i]
        text += (
            f", those that hold at least {format_number(float(ratio[i, j]), 2)} times Bao's "
            f"({BOUND_NAMES[EARLIER[j]]}, {run_label(row['dataset'], row['k'], row['seed'])})"
        )
        key = (
            f"the tightest earlier bound is {format_number(float(ratio[i, j]), 2)} x Bao's "
            "(no interval: a ratio of formulas)"
        )
    if failing.any():
        i, j = np.argwhere(failing)[0]
        row = r.iloc[i]
        text += (
            f"; {int(failing.sum())} earlier values lie below R_mu, so that bound fails there "
            f"(first: {BOUND_NAMES[EARLIER[j]]}, {run_label(row['dataset'], row['k'], row['seed'])}, "
            f"{format_number(float(earlier[i, j]), d)} nats)"
        )
    elif ok and not valid.any():
        text += ": no earlier bound that holds to compare with"
    above = defined & (bao > np.log(r["classes"].to_numpy(dtype=float)))
    text += (
        f"; it lies above log C, the uniform predictor's loss, on {int(above.sum())}/{n} runs "
        f"(weaker there than predicting uniformly: see each dataset); {S.data_note(r)}"
    )
    details = []
    for ds, g in bound_ratios(r).groupby("dataset", sort=False):
        c = int(g["classes"].iloc[0])
        parts = []
        for name in EARLIER:
            undef = g.loc[g[name].isna(), "k"].tolist()
            dg = g[g[name].notna()]
            bit = f"{BOUND_NAMES[name]} "
            if undef:
                bit += f"undefined at K = {', '.join(map(str, undef))}"
                bit += " (K + 1 < C)" if name != "ash" else ""
            if len(dg):
                bit += ("; " if undef else "") + (
                    f"{_range(dg[f'{name}_over_bao'])} times Bao's "
                    f"({_range(dg[f'{name}_over_mu'])} times R_mu)"
                )
            parts.append(bit)
        details.append(f"{ds} (C = {c}): " + "; ".join(parts) + "; " + _vacuity(g, d))
    details.append(NOT_SEED_LEVEL)
    return spec.found(status, text, details, key=key, data=S.data_note(r))


# --------------------------------------------------------------------------- claims 3 and 5
METRICS = (  # (name, per-point array, results column, direction)
    ("R_mu", "mean_loss", "supervised_loss", -1),
    ("mean-classifier accuracy", "mean_correct", "mean_acc", +1),
    ("linear-probe accuracy", "linear_correct", "linear_acc", +1),
)


SINGLE_K = "a single K, no trend to test"
GAP_TESTS = ("decays beyond the fixed encoder", "between Delta_U's and Delta_L's rates")


def _downstream(results: pd.DataFrame, points: Points, p: ReportParams):
    """{metric: {dataset: status}}, the detail lines, the per-dataset Verdicts and the
    per-dataset TrendRows of Claim 3."""
    status: dict[str, dict[str, str]] = {name: {} for name, *_ in METRICS}
    lines, found, rows_found = [], [], []
    for ds, rows in results.groupby("dataset", sort=False):
        ks = sorted(int(k) for k in rows["k"].unique())
        data = S.kind_name(str(rows["kind"].iloc[0]), str(rows["kind"].iloc[0]))
        if len(ks) < 2:
            for name, *_ in METRICS:
                status[name][ds] = S.INCONCLUSIVE
                found.append(Verdict(str(ds), name, S.INCONCLUSIVE, SINGLE_K))
            lines.append(f"{ds} ({data}): {SINGLE_K}")
            continue
        for name, array, column, direction in METRICS:
            per = S.per_seed_values(rows, ks, points, array, column)
            ceiling = None if direction < 0 else p.ceiling
            t = trend(per, ks, direction, name, p.confidence, ceiling=ceiling)
            text, verdicts = S.trend_line(t, p)
            status[name][ds] = S.combine([s for _, s, _, _ in verdicts])
            why = "; ".join(dict.fromkeys(w for _, _, w, _ in verdicts if w))
            found.append(Verdict(str(ds), name, status[name][ds], why))
            lines.append(f"{ds} ({data}), {name} {status[name][ds]}: {text}")
            rows_found.append(TrendRow(str(ds), t, tuple(verdicts)))
    return status, lines, found, rows_found


# --------------------------------------------------------------------------- the null
def _seed_gaps(frame: pd.DataFrame, seed: int, ks: Sequence[int]) -> np.ndarray:
    """One seed's R_mu - R_cont at each K (n_K, 1), NaN where it lacks a K."""
    g = frame[frame["seed"] == seed].set_index("k")
    gap = g["supervised_loss"] - g["contrastive_loss"]
    return np.array([gap.get(k, np.nan) for k in ks], dtype=float)[:, None]


FIXED_GAP, BEYOND_FIXED = "fixed encoder's gap", "gap minus the fixed encoder's"


def fixed_null_trends(
    null: pd.DataFrame | None, results: pd.DataFrame, p: ReportParams
) -> dict[str, tuple[S.Trend, S.Trend]]:
    """Per dataset with a fixed-encoder null (reports/null.csv, the fixed_null stage): the
    trend of the fixed smallest-K encoder's gap, and the trend of the measured gap minus
    the fixed encoder's (per seed, paired on K): the part of the decay that training at
    each K adds, which Claim 5 tests."""
    out: dict[str, tuple[S.Trend, S.Trend]] = {}
    if null is None or null.empty:
        return out
    for ds, rows in results.groupby("dataset", sort=False):
        fixed = null[null["dataset"] == ds]
        ks = sorted(int(k) for k in rows["k"].unique())
        if fixed.empty or len(ks) < 2:
            continue
        seeds = sorted(int(v) for v in rows["seed"].unique())
        per_null = {s: _seed_gaps(fixed, s, ks) for s in seeds}
        per_diff = {s: _seed_gaps(rows, s, ks) - per_null[s] for s in seeds}
        out[str(ds)] = (
            trend(per_null, ks, -1, FIXED_GAP, p.confidence),
            trend(per_diff, ks, -1, BEYOND_FIXED, p.confidence),
        )
    return out


NO_NULL = "no fixed-encoder null for this dataset (reports/null.csv, the fixed_null stage)"


def _gap(results: pd.DataFrame, points: Points, p: ReportParams, null: pd.DataFrame | None):
    """({dataset: decay status}, {dataset: rate status}, lines, Verdicts, TrendRows) of
    Claim 5: the decay is the gap minus the fixed encoder's (slope < 0, three-way); the
    rate the gap's slope against Delta_U's and Delta_L's."""
    decay, rate, lines, found, rows_found = {}, {}, [], [], []
    d = p.decimals
    nulls = fixed_null_trends(null, results, p)
    for ds, rows in results.groupby("dataset", sort=False):
        ks = sorted(int(k) for k in rows["k"].unique())
        data = S.kind_name(str(rows["kind"].iloc[0]), str(rows["kind"].iloc[0]))
        if len(ks) < 2:
            decay[ds] = rate[ds] = S.INCONCLUSIVE
            found += [Verdict(str(ds), t, S.INCONCLUSIVE, SINGLE_K) for t in GAP_TESTS]
            lines.append(f"{ds} ({data}): {SINGLE_K}")
            continue
        per = S.per_seed_values(rows, ks, points, "mean_loss", "supervised_loss")
        offsets = {}
        for s, g in rows.groupby("seed"):
            by_k = g.set_index("k").reindex(ks)  # NaN where the seed lacks a K (se: 0)
            se = np.nan_to_num(by_k["contrastive_loss_se"].to_numpy(dtype=float))
            offsets[int(s)] = (by_k["contrastive_loss"].to_numpy(dtype=float), se)
        gap = trend(per, ks, -1, "R_mu - R_cont", p.confidence, offsets=offsets)
        x = np.log(np.asarray(ks, dtype=float))
        gaps = rows.groupby("k")[["upper_gap", "lower_gap"]].mean().loc[ks]
        s_up = float(S.slope(x, gaps["upper_gap"].to_numpy()))
        s_lo = float(S.slope(x, gaps["lower_gap"].to_numpy()))
        rate[ds] = S.rate_verdict(gap, s_up, s_lo, p)
        trends_ds = nulls.get(str(ds))
        rows_found.append(TrendRow(str(ds), gap, ((GAP_TESTS[1], rate[ds], "", ""),)))
        if trends_ds is None:
            decay[ds], why = S.INCONCLUSIVE, NO_NULL
            decay_line = f"{ds} ({data}), {GAP_TESTS[0]} {decay[ds]}: {NO_NULL}"
        else:
            fixed, diff = trends_ds
            decay[ds], why = S.verdict(diff, p, "improves")
            need = S.needed(diff.slope_est, diff.metric, p)
            rows_found += [
                TrendRow(str(ds), fixed, ()),
                TrendRow(str(ds), diff, ((GAP_TESTS[0], decay[ds], why, need),)),
            ]
            e = diff.slope_est
            decay_line = (
                f"{ds} ({data}), {GAP_TESTS[0]} {decay[ds]}: the gap of the encoder trained at "
                f"each K minus the gap of the smallest-K encoder held fixed, slope "
                f"{S.signed(e.value, S.distinct_decimals(*e.ci, d))} per unit log K "
                f"{S.ci_text(e, d)} ({S.n_text(diff)}; the fixed encoder's gap "
                f"{S.signed(fixed.slope, d)}, the measured gap {S.signed(gap.slope, d)})"
                + (f" ({why})" if why else "")
                + f"; seeds to detect the effect of interest {S.signed(-p.effect_r_mu, d)}: "
                f"{need}"
            )
        found += [
            Verdict(str(ds), GAP_TESTS[0], decay[ds], why),
            Verdict(str(ds), GAP_TESTS[1], rate[ds], S.too_few(gap, p)),
        ]
        ratio = gap.slope / s_up if s_up else math.nan
        lo, hi = gap.slope_ci
        a, b = sorted((s_up, s_lo))
        if gap.slope_est.n < 2:
            where = f"no interval from {gap.slope_est.n} seed with every K, so no test of the rate"
        elif a <= lo and hi <= b:
            where = "the interval inside [Delta_U's, Delta_L's] slopes"
        elif hi < a or lo > b:
            where = "the interval wholly outside them"
        else:
            where = "the interval straddles an end of them"
        lines.append(decay_line)
        lines.append(
            f"{ds}, {GAP_TESTS[1]} {rate[ds]}: measured slope {S.signed(gap.slope, d)} "
            f"{S.ci_text(gap.slope_est, d)} against Delta_U's {S.signed(s_up, d)} and "
            f"Delta_L's {S.signed(s_lo, d)} over the same K (the theorem puts the gap between "
            f"them at every K; log(C/K) falls at -1), ratio to Delta_U's "
            f"{format_number(ratio, 2)}; {where}"
        )
    return decay, rate, lines, found, rows_found


# --------------------------------------------------------------------------- claim 4
def trajectory_checks(traj: pd.DataFrame) -> pd.DataFrame:
    """Per trajectory point, margins (nats; >= 0 means the check passes): `inside_margin`
    (distance into the band), `right_margin` (R_cont - R_cont*(K, C)), `above_margin`
    (R_mu - R_mu*(C)); and booleans `inside`, `right`, `above` (b = 1)."""
    out = traj.copy()
    gap = out["val_supervised_loss"] - out["val_contrastive_loss"]
    out["inside_margin"] = np.minimum(gap - out["lower_gap"], out["upper_gap"] - gap)
    pairs = zip(out["k"], out["classes"], strict=True)
    rc = np.array([bounds.optimal_contrastive_loss(int(k), int(c)) for k, c in pairs])
    rm = np.array([bounds.optimal_supervised_loss(int(c)) for c in out["classes"]], dtype=float)
    out["right_margin"] = out["val_contrastive_loss"].to_numpy(dtype=float) - rc
    out["above_margin"] = out["val_supervised_loss"].to_numpy(dtype=float) - rm
    for name in ("inside", "right", "above"):
        out[name] = out[f"{name}_margin"] >= 0
    return out


def _claim_trajectories(spec: ClaimSpec, ev: Evidence, p: ReportParams) -> Claim:
    traj, missing = ev.trajectories, ev.missing
    if traj.empty:
        return spec.found(S.INCONCLUSIVE, "no trajectory file was found", (NOT_SEED_LEVEL,))
    t = trajectory_checks(traj)
    n = len(t)
    inside, right, above = int(t["inside"].sum()), int(t["right"].sum()), int(t["above"].sum())
    margin = t[["inside_margin", "right_margin", "above_margin"]].min(axis=1).to_numpy()
    # a trajectory point is one pairing: its scale is one pairing's standard deviation,
    # the run's test-set s.e. of the mean over its pairings times sqrt(pairings)
    se = (
        t["contrastive_loss_se"].to_numpy(dtype=float)
        * np.sqrt(t["contrastive_repeats"].to_numpy(dtype=float))
        if "contrastive_loss_se" in t
        else np.full(n, np.nan)
    )
    z, nats, i, status = _smallest_margin(margin, se, int((margin < 0).sum()), p)
    w = t.iloc[i]
    text = (
        f"{inside}/{n} held-out trajectory points ({100.0 * inside / n:.1f}%) lie inside the "
        f"band; {right}/{n} are right of R_cont\\*, {above}/{n} above R_mu\\*; smallest margin "
        f"{z} standard deviations of one pairing ({nats} nats, "
        f"{run_label(w['dataset'], w['k'], w['seed'])}, epoch {w['epoch']:g}); {S.data_note(traj)}"
    )
    if missing:
        text += f" ({len(missing)} runs have no trajectory file)"
    details = [
        "a theorem: this checks the implementation and the estimators; each point is one "
        "pairing of the validation split, so its scale is one pairing's standard deviation: "
        "the run's test-set s.e. of R_cont (a mean over probe.repeats pairings, results.csv's "
        "contrastive_repeats) times sqrt(contrastive_repeats); R_mu's noise at the point is "
        "not recorded and not included",
        NOT_SEED_LEVEL,
    ]
    outside = t[~(t["inside"] & t["right"] & t["above"])]
    for (ds, k), grp in outside.groupby(["dataset", "k"], sort=True):
        details.append(
            f"{ds} K={k}: {len(grp)} point{'s' if len(grp) > 1 else ''} outside, the first at "
            f"epoch {grp['epoch'].min():g}"
        )
    key = f"smallest margin {nats} nats = {z} s.d. of one pairing ({inside}/{n} points inside)"
    return spec.found(status, text, details, key=key, data=S.data_note(traj))


# --------------------------------------------------------------------------- all claims
def _agreement(overall: Mapping[str, str]) -> str:
    """'the three metrics agree' or 'confirmed on R_mu only, not on ...'."""
    yes = [m for m, s in overall.items() if s == S.CONFIRMED]
    no = " and ".join(m for m, s in overall.items() if s != S.CONFIRMED)
    if len(set(overall.values())) == 1:
        return f"the three metrics agree ({next(iter(overall.values()))})"
    if not yes:
        return f"confirmed on no metric ({no} not confirmed, fragile or inconclusive)"
    return f"confirmed on {' and '.join(yes)}{' only' if len(yes) == 1 else ''}, not on {no}"


def _parts(results: pd.DataFrame, rows: Sequence[TrendRow], metric: str) -> str:
    """'improves: confirmed on 4/4 data families; saturates: not confirmed on 2/4, ...':
    each part of one metric's verdict tallied on its own, so a headline names what holds
    and what fails."""
    parts: dict[str, dict[str, str]] = {}
    for r in rows:
        if r.trend.metric == metric:
            for what, status, _, _ in r.verdicts:
                parts.setdefault(what, {})[r.dataset] = status
    if not parts:
        return "a single K, no trend to test"
    return "; ".join(f"{what}: {S.tally(S.by_family(results, st))}" for what, st in parts.items())


def _weakest(rows: Sequence[TrendRow], metric: str, p: ReportParams) -> str:
    """The slope of `metric` on the dataset where it is weakest (its interval's bound
    nearest the worsening side), with its interval."""
    mine = [r for r in rows if r.trend.metric == metric and r.trend.n >= 2]
    if not mine:
        return "no slope with an interval (fewer than two seeds with every K)"

    def worst_end(r: TrendRow) -> float:  # the end on the worsening side, larger is weaker
        lo, hi = r.trend.slope_ci
        return hi if r.trend.direction < 0 else -lo

    w = max(mine, key=worst_end)
    t = w.trend
    d = S.distinct_decimals(*t.slope_ci, p.decimals)
    return (
        f"{metric} slope {S.signed(t.slope_est.value, d)} {S.interval(*t.slope_ci, d)} per unit "
        f"log K ({w.dataset}, the weakest of {len(mine)})"
    )


def _gap_key(rows5: Sequence[TrendRow], p: ReportParams) -> str:
    """The gap's slopes and, where weakest, the gap beyond the fixed encoder's (the tested
    quantity)."""
    slopes = [r.trend.slope for r in rows5 if r.trend.metric == "R_mu - R_cont"]
    if not slopes:
        return "no trend to test"
    d = p.decimals
    beyond = (
        _weakest(rows5, BEYOND_FIXED, p)
        if any(r.trend.metric == BEYOND_FIXED for r in rows5)
        else "no fixed-encoder null (reports/null.csv)"
    )
    return (
        f"gap slope {S.signed(min(slopes), d)} to {S.signed(max(slopes), d)} per unit log K; "
        f"tested: {beyond}"
    )


def power_note(p: ReportParams) -> str:
    """What the power line says (Claims 3 and 5)."""
    return (
        f"power: 'seeds to detect the effect of interest' is the number a one-sided "
        f"{100 * p.confidence:g}% t test needs to detect the pre-registered smallest effect of "
        f"interest (`report.effect_r_mu` = {p.effect_r_mu:g} per unit log K for R_mu, the gap "
        f"and the slack; `report.effect_accuracy` = {p.effect_accuracy:g} for the accuracies; "
        f"not the observed effect) with probability {p.power:g} (`report.power`), taking the "
        f"observed per-seed spread as true, never fewer than `report.min_seeds` = "
        f"{p.min_seeds}; beside it, the power this run's n has for that effect (under-powered "
        "below `report.power`); at n = 1 there is no spread, so no interval and no count"
    )


def _claim_downstream(spec: ClaimSpec, ev: Evidence, p: ReportParams) -> Claim:
    results = ev.results
    per_metric, lines3, verdicts3, rows3 = _downstream(results, ev.points, p)
    fam = {m: S.by_family(results, st) for m, st in per_metric.items()}
    overall = {m: S.combine(s) for m, s in fam.items()}
    return spec.found(
        S.combine(list(overall.values())),
        "; ".join(f"{m} {overall[m]} ({_parts(results, rows3, m)})" for m in overall)
        + f": {_agreement(overall)}; {S.data_note(results)}",
        (
            *lines3,
            f"n = {int(results.groupby(['dataset', 'k'])['seed'].nunique().min())} seeds; "
            + power_note(p),
        ),
        verdicts=tuple(verdicts3),
        key=_weakest(rows3, "R_mu", p),
        data=S.data_note(results),
        trends=tuple(rows3),
    )


def _claim_gap(spec: ClaimSpec, ev: Evidence, p: ReportParams) -> Claim:
    results = ev.results
    decay, rate, lines5, verdicts5, rows5 = _gap(results, ev.points, p, ev.null)
    s5, r5 = S.by_family(results, decay), S.by_family(results, rate)
    return spec.found(
        S.combine([*s5, *r5]),
        "R_mu - R_cont of the encoder trained at each K falls faster than that of the "
        "smallest-K encoder held fixed (the gap minus the fixed encoder's, slope < 0): "
        f"{S.tally(s5)}; at a rate between Delta_U's and Delta_L's, as the theorem implies: "
        f"{S.tally(r5)}; {S.data_note(results)}",
        (*lines5, "power: as Claim 3's, for the gap minus the fixed encoder's"),
        verdicts=tuple(verdicts5),
        key=_gap_key(rows5, p),
        data=S.data_note(results),
        trends=tuple(rows5),
    )


def claims(
    results: pd.DataFrame,
    trajectories: pd.DataFrame,
    params: ReportParams | None = None,
    missing: Sequence[str] = (),
    points: Points | None = None,
    null: pd.DataFrame | None = None,
) -> list[Claim]:
    """Every claim of CLAIMS on the results table, the trajectories and the per-point arrays.

    Runs that collapsed (collapsed_runs) stay in; Claims 3 and 5 say whether their verdict
    changes without them. Runs at chance (at_chance_runs) are no evidence: every claim is
    tested without them (and says so), and where every run is at chance, every claim is
    inconclusive with that reason.
    """
    p = params or ReportParams()
    points = points or {}
    ev = Evidence(results, trajectories, points, missing, null)
    chance = at_chance_runs(results, points, p.confidence)
    if chance.any():
        note = _at_chance_note(results, chance)
        if chance.all():
            reason = (
                f"every run is at chance ({int(chance.sum())} runs: test accuracy within noise "
                "of 1/C, or R_mu = log C), so no run is evidence for or against it"
            )
            return [
                replace(
                    c,
                    status=S.INCONCLUSIVE,
                    text=reason,
                    details=(note,),
                    why="every run is at chance",
                    verdicts=(),
                    trends=(),
                )
                for c in _claims(ev, p)
            ]
        at = {(r.dataset, int(r.k), int(r.seed)) for r in results[chance].itertuples()}
        keys = zip(
            trajectories.get("dataset", []),
            trajectories.get("k", []),
            trajectories.get("seed", []),
            strict=True,
        )
        keep = [(ds, int(k), int(s)) not in at for ds, k, s in keys]
        kept = replace(
            ev, results=results[~chance], trajectories=trajectories[keep] if keep else trajectories
        )
        return [replace(c, details=(*c.details, note)) for c in _claims(kept, p)]
    return _claims(ev, p)


def _claims(ev: Evidence, p: ReportParams) -> list[Claim]:
    """Every claim of CLAIMS on `ev`; a trend claim says whether its verdict changes
    without the collapsed runs."""
    found = [spec.test(spec, ev, p) for spec in CLAIMS]
    flagged = collapsed_runs(ev.results, p.collapse_drop)
    if not flagged.any():
        return found
    names = ", ".join(run_label(r.dataset, r.k, r.seed) for r in ev.results[flagged].itertuples())
    kept = replace(ev, results=ev.results[~flagged])
    for i, (spec, c) in enumerate(zip(CLAIMS, found, strict=True)):
        if spec.trend:
            a = spec.test(spec, kept, p)
            same = "unchanged" if a.status == c.status else f"changes from {c.status}"
            note = f"without the collapsed runs ({names}): {a.status} ({same}); {a.text}"
            found[i] = replace(c, details=(*c.details, note))
    return found


# --------------------------------------------------------------------------- the registry
# Each claim once: the paper's statement is quoted from docs/THEORY.md section 7 (a test
# checks every quote against the file). A new claim is one entry here (its test function
# above, and its report.* params in report.load.ReportParams and params.yaml).
CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        1,
        "two-sided bound",
        "for every trained encoder and every K, the test-set estimates satisfy the two-sided "
        "bound (lower <= R_mu <= upper)",
        THEOREM,
        ("gap_{ds}.png", "gap and band"),
        ("confidence", "decimals"),
        _claim_sandwich,
    ),
    ClaimSpec(
        2,
        "Bao et al.'s upper bound is defined at every K and the tightest",
        "Bao et al.'s upper bound is defined at every K and the tightest: of the four upper bounds",
        FORMULA,
        ("fig1_{ds}.png", "Fig. 1"),
        ("decimals",),
        _claim_tightest,
    ),
    ClaimSpec(
        3,
        "downstream improves with K and saturates",
        "downstream quality (lower R_mu, higher mean-classifier and linear-probe accuracy) "
        "improves as K grows, and the improvement saturates",
        EMPIRICAL,
        ("headline.png", "headline figure"),
        ("confidence", "ceiling", "min_seeds", "effect_r_mu", "effect_accuracy", "power"),
        _claim_downstream,
        trend=True,
    ),
    ClaimSpec(
        4,
        "trajectories stay inside the band",
        "during training, the trajectory of (R_cont, R_mu) on held-out data stays inside the "
        "band between the two bounds",
        THEOREM,
        ("fig5_{ds}.png", "Fig. 5"),
        ("confidence", "decimals"),
        _claim_trajectories,
        needs_trajectories=True,
    ),
    ClaimSpec(
        5,
        "the surrogate gap decays with K",
        "R_mu - R_cont falls with K faster than the mechanical fall that a growing R_cont "
        "alone gives",
        EMPIRICAL,
        ("headline.png", "headline figure"),
        ("confidence", "min_seeds", "effect_r_mu", "power"),
        _claim_gap,
        trend=True,
    ),
)
