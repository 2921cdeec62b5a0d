"""Seed-level inference for the report's claims: each seed gives one linear contrast of its
per-K values and its own standard error, and every interval is a t interval over the seeds
(docs/THEORY.md, section 8, "Unit of replication: the seed").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from surrogap.core.kinds import kind_name
from surrogap.report.load import ReportParams

__all__ = [
    "CONFIRMED",
    "FRAGILE",
    "INCONCLUSIVE",
    "NOT_CONFIRMED",
    "Estimate",
    "Trend",
    "combine",
    "contrast_weights",
    "data_families",
    "data_note",
    "effect_for",
    "format_number",
    "power_at",
    "seed_contrasts",
    "seed_interval",
    "seeds_needed",
    "signed",
    "slope",
    "t_bounds",
    "three_way",
    "trend",
    "trend_line",
    "verdict",
]


def slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of y (..., n) against x (n,)."""
    xc = x - x.mean()
    return (y - y.mean(axis=-1, keepdims=True)) @ xc / float(xc @ xc)


def halves(n: int) -> tuple[slice, slice]:
    """The early and late halves of n K values (an odd n shares the middle one)."""
    return slice(0, math.ceil(n / 2)), slice(n // 2, n)


def contrast_weights(x: np.ndarray, part: slice | None = None) -> np.ndarray:
    """Weights w (len(x),) with w @ y the least-squares slope of y[part] against x[part]
    (zero outside part)."""
    part = slice(None) if part is None else part
    xc = x[part] - x[part].mean()
    w = np.zeros(len(x))
    w[part] = xc / float(xc @ xc)
    return w


def t_bounds(values: np.ndarray, own_se: np.ndarray | None, confidence: float):
    """Seed-level t bounds over the last axis of values (..., n).

    Returns (mean, lower, upper, se): lower and upper are each a one-sided bound at
    `confidence` (t quantile, n - 1 degrees of freedom); se = max(s / sqrt(n),
    sqrt(sum own_se^2) / n). NaN bounds for n < 2."""
    values = np.asarray(values, dtype=float)
    n = values.shape[-1]
    if n == 0:  # no seed: everything NaN (numpy's mean would warn of an empty slice)
        nan = np.full(values.shape[:-1], np.nan)
        return nan, nan, nan, nan
    mean = values.mean(axis=-1)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan, nan
    spread = values.std(axis=-1, ddof=1) / math.sqrt(n)
    if own_se is not None:
        noise = np.sqrt(np.sum(np.square(own_se), axis=-1)) / n
        spread = np.maximum(spread, noise)
    q = float(sps.t.ppf(confidence, n - 1))
    return mean, mean - q * spread, mean + q * spread, spread


@dataclass(frozen=True)
class Estimate:
    """A seed-level estimate: the mean over n seeds, its one-sided bounds (lo, hi) at the
    confidence, its standard error (se) and the share of it that the seeds' own standard
    errors imply (noise_se)."""

    value: float
    lo: float
    hi: float
    se: float
    noise_se: float
    n: int

    @property
    def ci(self) -> tuple[float, float]:
        return self.lo, self.hi


def seed_interval(values, own_se=None, confidence: float = 0.95) -> Estimate:
    """The t interval of one contrast over seeds (values (n,), own_se (n,) or None)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    se = None if own_se is None else np.asarray(own_se, dtype=float)
    mean, lo, hi, spread = t_bounds(v, se, confidence)
    noise = math.nan if se is None else float(np.sqrt(np.sum(se**2)) / v.size)
    return Estimate(float(mean), float(lo), float(hi), float(spread), noise, int(v.size))


def _per_seed_sd(est: Estimate) -> float:
    """The per-seed standard deviation behind an estimate: se * sqrt(n) (NaN below 2 seeds)."""
    return est.se * math.sqrt(est.n) if est.n >= 2 else math.nan


# The rerun margin (three_way): a verdict within one standard error of its threshold is
# fragile, not a finding. Pre-registered in docs/PROTOCOL.md, explained in docs/THEORY.md.
RERUN_MARGIN_SE = 1.0


def power_at(sd: float, effect: float, n: int, confidence: float) -> float:
    """Power of the confirming test with n seeds when the true mean is `effect` (> 0) and
    the per-seed standard deviation sd (noncentral t): the one-sided t bound at
    `confidence`, moved RERUN_MARGIN_SE standard errors towards 0, excludes 0."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    return float(_power(sd, effect, np.array([n]), confidence)[0])


# beyond this noncentrality the power is 1 to double precision at every n >= 2 (and
# scipy's noncentral t returns NaN far beyond it, where the spread is rounding noise)
MAX_NONCENTRALITY = 1e3


def _power(sd: float, effect: float, n: np.ndarray, confidence: float) -> np.ndarray:
    if sd == 0:
        return np.ones(len(n))
    nc = effect / sd * np.sqrt(n)
    crit = sps.t.ppf(confidence, n - 1) + RERUN_MARGIN_SE
    got = sps.nct.sf(crit, n - 1, np.minimum(nc, MAX_NONCENTRALITY))
    return np.where(nc >= MAX_NONCENTRALITY, 1.0, got)


def seeds_needed(
    est: Estimate, effect: float, confidence: float, power: float, cap: int = 1000
) -> int | None:
    """Seeds the confirming test (power_at) needs to detect the pre-registered `effect` (> 0,
    never the observed one) with probability `power`, per-seed s.d. se * sqrt(n). None where
    the spread is unknown (n < 2); cap + 1 where more than `cap` would be needed."""
    sd = _per_seed_sd(est)
    if not math.isfinite(sd) or not effect > 0:
        return None
    n = np.arange(2, cap + 1)
    ok = np.flatnonzero(_power(sd, effect, n, confidence) >= power)
    return int(n[ok[0]]) if ok.size else cap + 1


# --------------------------------------------------------------------------- per seed
def seed_contrasts(
    per_seed: Mapping[int, np.ndarray],
    weights: np.ndarray,
    offsets: Mapping[int, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Each complete seed's contrasts and their own standard errors.

    per_seed: {seed: (n_K, n_points)} per-point values (the quantity at K is their mean;
    n_points = 1: the per-run value, no point noise known), NaN rows where a K is missing.
    weights: (m, n_K) contrasts. offsets: {seed: (value, se) of n_K} subtracted from the
    per-K means (R_cont, whose pairings are independent across K).
    Returns (values (S, m), se (S, m), seeds) over the seeds that have every K.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    vals, ses, used = [], [], []
    for s in sorted(per_seed):
        a = np.asarray(per_seed[s], dtype=float)
        if np.isnan(a).any():
            continue
        c = w @ a  # (m, n_points): each point's contrast (K values paired on test points)
        n = a.shape[1]
        value = c.mean(axis=1)
        var = c.var(axis=1, ddof=1) / n if n > 1 else np.zeros(len(w))
        if offsets is not None:
            off, off_se = (np.asarray(v, dtype=float) for v in offsets[s])
            value = value - w @ off
            var = var + np.square(w) @ np.square(np.nan_to_num(off_se))
        vals.append(value)
        ses.append(np.sqrt(var))
        used.append(int(s))
    m = len(w)
    if not used:
        return np.empty((0, m)), np.empty((0, m)), []
    return np.stack(vals), np.stack(ses), used


# --------------------------------------------------------------------------- trends
@dataclass(frozen=True)
class Trend:
    """A quantity against log K: point estimates, seed-level intervals and verdicts.

    slope: least-squares slope of the per-K mean over seeds against log K (per unit of log
    K); slope_est its seed-level estimate (the mean of the complete seeds' slopes) with
    one-sided bounds at the params' confidence. early / late: slopes over the first and
    last halves of the K values; saturation_est the estimate of (early gain - late gain),
    gain = slope in the improving direction; late_est the late slope's (a late slope on the
    worsening side declines, and a decline is not saturation: docs/THEORY.md, claim 3).
    """

    metric: str
    ks: tuple[int, ...]
    values: tuple[float, ...]
    seeds: tuple[int, ...]  # seeds per K
    n: int  # seeds with every K: the replicates of every interval
    points: int  # test points per run (0: per-run values, no point noise known)
    direction: int  # +1: larger is better, -1: smaller is better
    slope: float
    slope_est: Estimate
    early: float = math.nan
    late: float = math.nan
    saturation_est: Estimate | None = None
    late_est: Estimate | None = None
    at_ceiling: tuple[int, ...] = ()  # the K values whose mean is at the ceiling

    @property
    def slope_ci(self) -> tuple[float, float]:
        return self.slope_est.ci

    @property
    def saturation_ci(self) -> tuple[float, float]:
        return self.saturation_est.ci if self.saturation_est else (math.nan, math.nan)

    @property
    def late_ci(self) -> tuple[float, float]:
        return self.late_est.ci if self.late_est else (math.nan, math.nan)

    @property
    def improves(self) -> bool:
        lo, hi = self.slope_ci
        return (lo > 0) if self.direction > 0 else (hi < 0)

    @property
    def declines(self) -> bool:
        """The quantity gets worse over the last half of the K values (one-sided bound)."""
        lo, hi = self.late_ci
        return (hi < 0) if self.direction > 0 else (lo > 0)

    @property
    def saturates(self) -> bool:
        return self.saturation_ci[0] > 0 and not self.declines


def trend(
    per_seed: Mapping[int, np.ndarray],
    ks: Sequence[int],
    direction: int,
    metric: str,
    confidence: float,
    *,
    offsets: Mapping[int, tuple[np.ndarray, np.ndarray]] | None = None,
    ceiling: float | None = None,
) -> Trend:
    """The slope of a per-K quantity against log K, with seed-level t intervals.

    per_seed and offsets as in seed_contrasts (offsets: R_cont for the surrogate gap).
    """
    x = np.log(np.asarray(ks, dtype=float))
    nk = len(ks)
    arrays = {s: np.asarray(a, dtype=float) for s, a in per_seed.items()}
    means = []
    for i in range(nk):
        col = [a[i].mean() for a in arrays.values()]
        if offsets is not None:
            col = [v - offsets[s][0][i] for v, s in zip(col, arrays, strict=True)]
        means.append(float(np.nanmean(col)) if not np.isnan(col).all() else math.nan)
    m = np.asarray(means)
    rows = [contrast_weights(x)]
    kw: dict = {}
    if nk >= 3:
        e, late = halves(nk)
        we, wl = contrast_weights(x, e), contrast_weights(x, late)
        rows += [direction * (we - wl), wl]
        kw = dict(early=float(slope(x[e], m[e])), late=float(slope(x[late], m[late])))
    values, ses, used = seed_contrasts(per_seed, np.stack(rows), offsets)
    ests = [seed_interval(values[:, j], ses[:, j], confidence) for j in range(len(rows))]
    # the saturation's and the late slope's estimates, where there are three K or more
    kw.update(zip(("saturation_est", "late_est"), ests[1:], strict=False))
    n_points = min(a.shape[1] for a in arrays.values())
    return Trend(
        metric=metric,
        ks=tuple(int(k) for k in ks),
        values=tuple(float(v) for v in m),
        seeds=tuple(int(sum(not np.isnan(a[i]).any() for a in arrays.values())) for i in range(nk)),
        n=len(used),
        points=int(n_points) if n_points > 1 else 0,
        direction=direction,
        slope=float(slope(x, m)),
        slope_est=ests[0],
        at_ceiling=tuple(
            int(k) for k, v in zip(ks, m, strict=True) if ceiling is not None and v >= ceiling
        ),
        **kw,
    )


def run_label(dataset: str, k: int, seed: int) -> str:
    return f"{dataset} K={int(k)} seed {int(seed)}"


# --------------------------------------------------------------------------- verdicts
CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE = "confirmed", "not confirmed", "inconclusive"
# the interval straddles 0 and reaches the effect of interest: a rerun can flip it
FRAGILE = "fragile"
CONSISTENT, VIOLATED = "consistent (theorem check)", "violated (theorem check)"
STATUSES = (CONFIRMED, NOT_CONFIRMED, FRAGILE, INCONCLUSIVE)
# kinds whose datasets are drawn from the same (seed, class) draws: one data family per kind
SHARED_DRAWS = {"topics": "the same (seed, topic) draws"}


# --------------------------------------------------------------------------- numbers
def format_number(x: float | None, decimals: int = 3) -> str:
    """One number as the report prints it: fixed point, scientific from 1e4, 'undefined'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "undefined"
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if abs(x) >= 1e4:
        return f"{x:.{max(decimals - 1, 1)}e}"
    return f"{x:.{decimals}f}"


def signed(x: float, decimals: int = 3) -> str:
    """A change, its sign always written (+0.150, -0.250)."""
    text = format_number(x, decimals)
    return text if text.startswith(("-", "u")) else f"+{text}"


def distinct_decimals(lo: float, hi: float, d: int, most: int = 10) -> int:
    """Decimals (at least d) that show two significant digits of the larger bound beyond
    its leading zeros, and more until the two bounds print differently (at most `most`)."""
    big = max(abs(lo), abs(hi)) if math.isfinite(lo) and math.isfinite(hi) else 0.0
    if big == 0 or big >= 1e4:
        return d
    out = max(d, 1 - math.floor(math.log10(big)))
    if abs(hi - lo) <= 1e-9 * big:  # equal up to rounding: no digits tell them apart
        return out
    while out < most and format_number(lo, out) == format_number(hi, out):
        out += 1
    return min(out, most)


def interval(lo: float, hi: float, d: int) -> str:
    """'[lo, hi]' with at least d decimals, more where d would print both bounds alike."""
    d = distinct_decimals(lo, hi, d)
    return f"[{signed(lo, d)}, {signed(hi, d)}]"


def ci_text(est: Estimate, d: int) -> str:
    """An estimate's interval, or why it has none (one seed: no spread)."""
    if est.n < 2:
        return f"(no interval: {est.n} seed{'s' if est.n != 1 else ''} with every K)"
    return interval(*est.ci, d)


# --------------------------------------------------------------------------- data
def kind_of(results: pd.DataFrame, ds: str) -> str:
    return str(results.loc[results["dataset"] == ds, "kind"].iloc[0])


def data_families(results: pd.DataFrame) -> dict[str, list[str]]:
    """{family: datasets}: a dataset is its own family unless its kind shares its draws
    (SHARED_DRAWS), then every dataset of that kind is one family named after the kind."""
    out: dict[str, list[str]] = {}
    for ds in pd.unique(results["dataset"]):
        kind = kind_of(results, ds)
        out.setdefault(kind if kind in SHARED_DRAWS else str(ds), []).append(str(ds))
    return out


def data_note(results: pd.DataFrame) -> str:
    """'data: circle, norm (generated 2-D data), digits (digits 8x8, a stand-in for ...)'."""
    kinds = {str(ds): kind_of(results, ds) for ds in pd.unique(results["dataset"])}
    groups: dict[str, list[str]] = {}
    for ds, kind in kinds.items():
        groups.setdefault(kind_name(kind), []).append(ds)
    parts = []
    for name, members in groups.items():
        shared = [SHARED_DRAWS[kinds[ds]] for ds in members if kinds[ds] in SHARED_DRAWS]
        extra = f"; one data family: {shared[0]}" if shared and len(members) > 1 else ""
        parts.append(f"{', '.join(members)} ({name}{extra})")
    return "data: " + "; ".join(parts)


def tally(statuses: Sequence[str], unit: str = "data families") -> str:
    """'confirmed on 3/4 data families, inconclusive on 1/4' (only the outcomes that occur)."""
    n = len(statuses)
    parts = [f"{st} on {statuses.count(st)}/{n}" for st in STATUSES if st in statuses]
    return ", ".join(parts) + f" {unit}"


def combine(statuses: Sequence[str]) -> str:
    """Not confirmed if any part is, else fragile if any is, else inconclusive if any is
    (or there is none), else confirmed."""
    if not statuses:
        return INCONCLUSIVE
    for status in (NOT_CONFIRMED, FRAGILE):
        if status in statuses:
            return status
    return CONFIRMED if all(s == CONFIRMED for s in statuses) else INCONCLUSIVE


def by_family(results: pd.DataFrame, per_dataset: Mapping[str, str]) -> list[str]:
    """One status per data family: its datasets' statuses combined."""
    return [
        combine([per_dataset[ds] for ds in members if ds in per_dataset])
        for members in data_families(results).values()
    ]


def per_seed_values(rows: pd.DataFrame, ks: list[int], points: Mapping, array: str, column: str):
    """{seed: (n_K, n) values} from per-point arrays when every run has them, else the
    per-run column (n = 1); a NaN row where a seed lacks a K."""
    ds = str(rows["dataset"].iloc[0])
    keys = [(ds, int(k), int(s)) for k, s in zip(rows["k"], rows["seed"], strict=True)]
    values = dict(zip(keys, rows[column].to_numpy(dtype=float), strict=True))
    use_points = all(key in points for key in keys)
    out = {}
    for s in sorted({key[2] for key in keys}):
        have = [(i, (ds, k, s)) for i, k in enumerate(ks) if (ds, k, s) in values]
        n = points[have[0][1]][array].size if use_points else 1
        a = np.full((len(ks), n), np.nan)
        for i, key in have:
            a[i] = points[key][array] if use_points else values[key]
        out[s] = a
    return out


def too_few(t: Trend, p: ReportParams) -> str:
    """Why a trend has no verdict whatever its numbers ('' when it has one): fewer seeds
    with every K than `report.min_seeds`, or a single one (no spread: no interval)."""
    n = min(min(t.seeds), t.n)
    if n < p.min_seeds:
        tail = ": no interval from one seed" if n == 1 else ""
        return f"{n} seed{'s' if n != 1 else ''} with every K, fewer than {p.min_seeds}{tail}"
    if n < 2:
        return f"{n} seed with every K: no interval from one seed (an interval needs 2)"
    return ""


def effect_for(metric: str, p: ReportParams) -> float:
    """The pre-registered smallest effect of interest of a quantity, per unit log K: an
    accuracy's `report.effect_accuracy`, a loss's (R_mu, the gap, the gap beyond the fixed
    encoder, the slack) `report.effect_r_mu`."""
    return p.effect_accuracy if "accuracy" in metric else p.effect_r_mu


def three_way(est: Estimate, direction: int, effect: float, d: int = 3) -> tuple[str, str]:
    """(status, reason) of the one-sided test that the effect lies on the `direction` side
    of 0, against the smallest effect of interest `effect` (> 0), each bound moved
    RERUN_MARGIN_SE standard errors towards its threshold: confirmed, not confirmed or
    fragile as docs/THEORY.md section 8 ("Three-way verdicts") defines them."""
    lo, hi = est.ci
    gain_lo, gain_hi = sorted((direction * lo, direction * hi))
    margin = RERUN_MARGIN_SE * est.se if math.isfinite(est.se) else 0.0
    if gain_lo - margin > 0:
        return CONFIRMED, ""
    if gain_hi + margin < effect:
        return NOT_CONFIRMED, ""
    if gain_lo > 0 or gain_hi < effect:
        near = "0" if gain_lo > 0 else f"the effect of interest {signed(direction * effect, d)}"
        return FRAGILE, (
            f"interval {interval(lo, hi, d)} lies within one standard error "
            f"({format_number(est.se, d)}) of {near}: a rerun can flip it"
        )
    return FRAGILE, (
        f"interval {interval(lo, hi, d)} straddles 0 and reaches the effect of interest "
        f"{signed(direction * effect, d)}: a rerun can flip it"
    )


def verdict(t: Trend, p: ReportParams, which: str) -> tuple[str, str]:
    """(status, reason) of 'improves' or 'saturates' for one trend: three-way (three_way)
    against the metric's effect of interest (effect_for), inconclusive where the design
    decides nothing (too few seeds, the ceiling at the smallest K, fewer than three K)."""
    if why := too_few(t, p):
        return INCONCLUSIVE, why
    effect = effect_for(t.metric, p)
    if which == "improves":
        if t.at_ceiling and t.at_ceiling[0] == t.ks[0]:
            return INCONCLUSIVE, f"at the ceiling ({p.ceiling:g}) already at K = {t.ks[0]}"
        return three_way(t.slope_est, t.direction, effect, p.decimals)
    if len(t.ks) < 3:
        return INCONCLUSIVE, "fewer than three K values"
    if t.at_ceiling:
        at = ", ".join(map(str, t.at_ceiling))
        return INCONCLUSIVE, f"at the ceiling ({p.ceiling:g}) at K = {at}"
    if t.declines:
        late = t.ks[halves(len(t.ks))[1]]
        return NOT_CONFIRMED, (
            f"declines from K = {late[0]} to {late[-1]}: late slope {interval(*t.late_ci, p.decimals)}"
        )
    return three_way(t.saturation_est, 1, effect, p.decimals)


def power_of(est: Estimate | None, metric: str, p: ReportParams) -> float:
    """The power this run's n has to detect the metric's effect of interest (NaN below 2
    seeds)."""
    if est is None or est.n < 2:
        return math.nan
    return power_at(_per_seed_sd(est), effect_for(metric, p), est.n, p.confidence)


def needed(est: Estimate | None, metric: str, p: ReportParams) -> str:
    """The power line's text: seeds_needed for the metric's effect of interest (effect_for),
    never fewer than `report.min_seeds`, and power_of this run's n; with one seed, why there
    is no count (docs/THEORY.md section 8, "Power line")."""
    if est is None or est.n < 2:
        n = 0 if est is None else est.n
        return (
            f"unknown at n = {n} (no spread between seeds to size a test from; run at least "
            f"{max(2, p.min_seeds)} seeds)"
        )
    m = seeds_needed(est, effect_for(metric, p), p.confidence, p.power)
    count = (
        "unknown" if m is None else f"more than {m - 1}" if m > 1000 else str(max(m, p.min_seeds))
    )
    pw = power_of(est, metric, p)
    low = ", under-powered" if pw < p.power else ""
    return f"{count} (power at n = {est.n}: {pw:.2f}{low})"


def n_text(t: Trend) -> str:
    seeds = f"{min(t.seeds)}-{max(t.seeds)}" if min(t.seeds) != max(t.seeds) else f"{t.seeds[0]}"
    tail = f", each a mean over {t.points} test points" if t.points else ", per-run values"
    return f"n = {seeds} seeds{tail}"


def trend_line(t: Trend, p: ReportParams, with_saturation: bool = True, verb: str = "improves"):
    """(text, [(what, status, seeds needed)]): one trend's numbers and verdicts."""
    d = p.decimals
    text = (
        f"{t.metric} {', '.join(format_number(v, d) for v in t.values)} at K = "
        f"{', '.join(map(str, t.ks))} ({n_text(t)}): slope {signed(t.slope, d)} per unit "
        f"log K {ci_text(t.slope_est, d)}"
    )
    verdicts = [(verb, *verdict(t, p, "improves"), needed(t.slope_est, t.metric, p))]
    if with_saturation and len(t.ks) >= 3:
        text += (
            f", early {signed(t.early, d)}, late {signed(t.late, d)} (early minus late gain "
            f"{ci_text(t.saturation_est, d)})"
        )
        verdicts.append(
            ("saturates", *verdict(t, p, "saturates"), needed(t.saturation_est, t.metric, p))
        )
    reasons = list(dict.fromkeys(why for _, _, why, _ in verdicts if why))
    if t.at_ceiling and not any("ceiling" in r for r in reasons):
        reasons.append(f"at the ceiling ({p.ceiling:g}) at K = {', '.join(map(str, t.at_ceiling))}")
    text += "; " + ", ".join(f"{what}: {status}" for what, status, _, _ in verdicts)
    text += f" ({'; '.join(reasons)})" if reasons else ""
    text += "; seeds to detect the effect of interest: " + ", ".join(
        f"{w} {m}" for w, _, _, m in verdicts
    )
    return text, verdicts


def rate_verdict(gap: Trend, upper: float, lower: float, p: ReportParams) -> str:
    """Claim 5's rate: the gap slope's interval against Delta_U's slope `upper` and Delta_L's
    `lower` over the same K (inside: confirmed, wholly outside: not confirmed, else or with
    too few seeds: inconclusive; docs/THEORY.md section 8, claim 5)."""
    lo, hi = gap.slope_ci
    if too_few(gap, p):
        return INCONCLUSIVE
    a, b = min(upper, lower), max(upper, lower)
    if a <= lo and hi <= b:
        return CONFIRMED
    if hi < a or lo > b:
        return NOT_CONFIRMED
    return INCONCLUSIVE
