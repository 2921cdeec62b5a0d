"""The paper's claims, tested on this run: each verdict is confirmed, not confirmed or
inconclusive, and carries the numbers behind it.

Claims (Bao, Nagano & Nozawa, ICML 2022):
1. Bao lower <= R_mu <= Bao upper on every run. A theorem: the test checks the
   implementation and the estimators, so its margin is given in standard errors.
2. Bao et al.'s upper bound is defined at every K, holds, and is the smallest of the four
   upper bounds; the earlier bounds are undefined for K + 1 < C and large near that edge.
3. Downstream quality improves with K and saturates: R_mu (primary), mean-classifier and
   linear-probe accuracy (secondary); slopes against log K with bootstrap intervals.
4. Held-out trajectories stay inside the band (above R_mu*, right of R_cont*); a theorem
   as well.
5. The surrogate gap R_mu - R_cont decays with K, at the log(C / K) rate of Delta_U (the
   paper's central message).

Intervals come from a seeded paired bootstrap: seeds are resampled, and within each seed
the test points (the same test split at every K, so K values are paired); R_cont's
pairing noise enters through its standard error. Every threshold is a field of
ReportParams (params `report`).
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from surrogap.report.load import ReportParams
from surrogap.theory import bounds

__all__ = [
    "BOUND_NAMES",
    "Claim",
    "Trend",
    "claims",
    "claims_markdown",
    "collapsed_runs",
    "format_number",
    "run_label",
    "trajectory_checks",
    "trend",
]

STATUSES = ("confirmed", "not confirmed", "inconclusive")
EARLIER = ("arora", "nozawa_sato", "ash")
BOUND_NAMES = {"arora": "Arora et al.", "nozawa_sato": "Nozawa & Sato", "ash": "Ash et al."}
Points = Mapping[tuple[str, int, int], Mapping[str, np.ndarray]]


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


def run_label(dataset: str, k: int, seed: int) -> str:
    return f"{dataset} K={int(k)} seed {int(seed)}"


@dataclass(frozen=True)
class Claim:
    """One claim and what this run shows."""

    number: int
    name: str
    status: str  # one of STATUSES
    text: str
    details: tuple[str, ...] = field(default_factory=tuple)


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


def _margin_verdict(z_min: float, violated: int, z_crit: float) -> str:
    if violated == 0:
        return "confirmed"
    return "inconclusive" if -z_min <= z_crit else "not confirmed"


def _claim_sandwich(results: pd.DataFrame, points: Points, p: ReportParams) -> Claim:
    d, r, n = p.decimals, results, len(results)
    lower = (r["supervised_loss"] - r["bao_lower"]).to_numpy()
    upper = (r["bao_upper"] - r["supervised_loss"]).to_numpy()
    margin = np.minimum(lower, upper)
    se = np.sqrt(r["contrastive_loss_se"].to_numpy() ** 2 + _mu_se(points, r) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, margin / se, np.where(margin >= 0, np.inf, -np.inf))
    held = int((margin >= 0).sum())
    i = int(np.argmin(z))
    worst = r.iloc[i]
    z_crit = _z(p.confidence)
    status = _margin_verdict(float(z[i]), n - held, z_crit)
    text = (
        f"holds on {held}/{n} runs; smallest margin {format_number(float(z[i]), 1)} standard "
        f"errors ({format_number(float(margin[i]), d)} nats, "
        f"{run_label(worst['dataset'], worst['k'], worst['seed'])})"
    )
    details = [
        "a theorem: this checks the implementation and the estimators; the standard error "
        "combines R_cont's (over pairings) and R_mu's (over test points, where per-point "
        "arrays exist)"
    ]
    if held < n:
        bad = [run_label(x.dataset, x.k, x.seed) for x in r[margin < 0].itertuples()]
        where = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        text += f"; violated on {where}"
        details.append(
            f"a violation within {format_number(z_crit, 2)} standard errors (one-sided "
            f"{100 * p.confidence:g}%) may be estimator noise: inconclusive; a larger one is not"
        )
    return Claim(1, "two-sided bound", status, text, tuple(details))


# --------------------------------------------------------------------------- claim 2
def bound_ratios(results: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, K): Bao's upper bound, R_mu and log C (means over seeds), each earlier
    bound over Bao's and over R_mu (ratio of the means; NaN where undefined), and the
    number of seeds."""
    rows = []
    for (ds, k), g in results.groupby(["dataset", "k"], sort=False):
        c = int(g["classes"].iloc[0])
        row = {
            "dataset": ds,
            "k": int(k),
            "classes": c,
            "n": len(g),
            "bao_upper": float(g["bao_upper"].mean()),
            "supervised_loss": float(g["supervised_loss"].mean()),
            "log_c": math.log(c),
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


def _claim_tightest(results: pd.DataFrame, p: ReportParams) -> Claim:
    d, r, n = p.decimals, results, len(results)
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
    status = "confirmed" if ok else "not confirmed"
    if ok and not valid.any():
        status = "inconclusive"
    text = (
        f"Bao et al.'s upper bound is defined on {int(defined.sum())}/{n} runs, holds on "
        f"{int(holds.sum())}/{n} and is the smallest of the upper bounds that hold on "
        f"{int(smallest.sum())}/{n}; the earlier bounds are defined on {n_def}/{3 * n} "
        "(bound, run) pairs"
    )
    if valid.any():
        ratio = np.where(valid, earlier / bao[:, None], np.nan)
        i, j = np.unravel_index(np.nanargmin(ratio), ratio.shape)
        row = r.iloc[i]
        text += (
            f", those that hold at least {format_number(float(ratio[i, j]), 2)} times Bao's "
            f"({BOUND_NAMES[EARLIER[j]]}, {run_label(row['dataset'], row['k'], row['seed'])})"
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
        vac = g[g["bao_upper"] > g["log_c"]]["k"].tolist()
        line = f"{ds} (C = {c}): " + "; ".join(parts)
        if vac:
            line += (
                f"; Bao's upper bound lies above log C = {format_number(math.log(c), d)} nats "
                f"(the uniform predictor's loss) at K = {', '.join(map(str, vac))}: vacuous "
                "there, it says nothing about R_mu"
            )
        else:
            line += (
                f"; Bao's upper bound is below log C = {format_number(math.log(c), d)} at every K"
            )
        details.append(line)
    return Claim(
        2,
        "Bao et al.'s upper bound is defined at every K and the tightest",
        status,
        text,
        tuple(details),
    )


# --------------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class Trend:
    """A quantity against log K: point estimate, bootstrap interval and verdicts.

    slope: OLS slope of the per-K mean over seeds against log K (per unit of log K).
    slope_ci: (lower, upper), each end a one-sided bound at the params' confidence.
    early / late: slopes over the first and last halves of the K values; saturation_ci the
    interval of (early gain - late gain), gain = slope in the improving direction; late_ci
    the interval of the late slope. Saturation is a gain that levels off, not one that
    turns into a loss: a late slope whose interval lies on the worsening side declines,
    and a decline is not confirmed as saturation however large early minus late is.
    """

    metric: str
    ks: tuple[int, ...]
    values: tuple[float, ...]
    seeds: tuple[int, ...]  # seeds per K
    points: int  # test points per run (0: seeds only)
    direction: int  # +1: larger is better, -1: smaller is better
    slope: float
    slope_ci: tuple[float, float]
    early: float = math.nan
    late: float = math.nan
    saturation_ci: tuple[float, float] = (math.nan, math.nan)
    late_ci: tuple[float, float] = (math.nan, math.nan)
    at_ceiling: tuple[int, ...] = ()  # the K values whose mean is at the ceiling

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


def _slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean()
    return (y - y.mean(axis=-1, keepdims=True)) @ xc / float(xc @ xc)


def _halves(n: int) -> tuple[slice, slice]:
    """The early and late halves of n K values (an odd n shares the middle one)."""
    return slice(0, math.ceil(n / 2)), slice(n // 2, n)


@functools.lru_cache(maxsize=32)
def _point_counts(stream: str, seed: int, n: int, replicates: int, base: int) -> np.ndarray:
    """(replicates, n) resampling counts of n test points, one draw per (stream, seed):
    every metric of a (dataset, seed), and the re-test without collapsed runs, resample
    the same test points (paired)."""
    rng = np.random.default_rng([base, zlib.crc32(stream.encode()), seed])
    idx = rng.integers(0, n, size=(replicates, n))
    flat = (np.arange(replicates)[:, None] * n + idx).ravel()
    counts = np.bincount(flat, minlength=replicates * n).reshape(replicates, n)
    counts = counts.astype(np.float64)
    counts.flags.writeable = False
    return counts


def trend(
    per_seed: Mapping[int, np.ndarray],
    ks: Sequence[int],
    direction: int,
    metric: str,
    p: ReportParams,
    *,
    stream: str = "",
    offsets: Mapping[int, tuple[np.ndarray, np.ndarray]] | None = None,
    ceiling: float | None = None,
) -> Trend:
    """Bootstrap the slope of a per-K quantity against log K.

    per_seed: {seed: array (n_K, n_points)} per-point values (the quantity at K is their
    mean) with a NaN row for a K this seed lacks; or (n_K, 1) per-run values (seeds only).
    stream: names the data (the dataset), so that its draws are shared by every metric.
    offsets: {seed: (value, se) arrays of n_K} subtracted from the mean, redrawn as
    value + se * N(0, 1) in each replicate (R_cont for the surrogate gap).
    """
    B, ks = p.bootstrap, np.asarray(ks, dtype=float)
    rng = np.random.default_rng([p.bootstrap_seed, zlib.crc32(stream.encode()), 2**31])
    x = np.log(ks)
    seeds = sorted(per_seed)
    # seeds resampled first: the same draws for every metric of this stream
    w = rng.multinomial(len(seeds), np.full(len(seeds), 1.0 / len(seeds)), size=B)  # (B, S)
    reps, avail, point = [], [], []
    n_points = min(a.shape[1] for a in per_seed.values())
    for s in seeds:
        a = np.asarray(per_seed[s], dtype=float)
        have = ~np.isnan(a).any(axis=1)
        filled = np.where(have[:, None], a, 0.0)
        n = a.shape[1]
        if n > 1:
            m = _point_counts(stream, int(s), n, B, p.bootstrap_seed) @ filled.T / n
        else:
            m = np.repeat(filled.T, B, axis=0)
        full = filled.mean(axis=1)
        if offsets is not None:
            value, se = offsets[s]
            m = m - (value + se * rng.standard_normal((B, len(ks))))
            full = full - value
        reps.append(m)
        avail.append(have)
        point.append(np.where(have, full, np.nan))
    reps_a, avail_a = np.stack(reps), np.stack(avail).astype(float)  # (S, B, K), (S, K)
    num = np.einsum("bs,sbk,sk->bk", w, reps_a, avail_a)
    den = w @ avail_a
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = num / den
    boot = boot[np.isfinite(boot).all(axis=1)]
    values = np.nanmean(np.stack(point), axis=0)
    alpha = 1.0 - p.confidence

    def ci(v: np.ndarray) -> tuple[float, float]:
        if v.size == 0:
            return math.nan, math.nan
        return float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))

    kw: dict = {}
    nk = len(ks)
    if nk >= 3:
        e, l_ = _halves(nk)
        gain_e = direction * _slopes(x[e], boot[:, e])
        gain_l = direction * _slopes(x[l_], boot[:, l_])
        kw = dict(
            early=float(_slopes(x[e], values[e])),
            late=float(_slopes(x[l_], values[l_])),
            saturation_ci=ci(gain_e - gain_l),
            late_ci=ci(_slopes(x[l_], boot[:, l_])),
        )
    return Trend(
        metric=metric,
        ks=tuple(int(k) for k in ks),
        values=tuple(float(v) for v in values),
        seeds=tuple(int(v) for v in avail_a.sum(axis=0)),
        points=int(n_points) if n_points > 1 else 0,
        direction=direction,
        slope=float(_slopes(x, values)),
        slope_ci=ci(_slopes(x, boot)),
        at_ceiling=tuple(
            int(k) for k, v in zip(ks, values, strict=True) if ceiling is not None and v >= ceiling
        ),
        **kw,
    )


# --------------------------------------------------------------------------- claims 3 and 5
METRICS = (  # (name, per-point array, results column, direction)
    ("R_mu", "mean_loss", "supervised_loss", -1),
    ("mean-classifier accuracy", "mean_correct", "mean_acc", +1),
    ("linear-probe accuracy", "linear_correct", "linear_acc", +1),
)


def _per_seed(rows: pd.DataFrame, ks: list[int], points: Points, array: str, column: str):
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


def _verdict(t: Trend, p: ReportParams, which: str) -> tuple[str, str]:
    """(status, reason) of 'improves' or 'saturates' for one trend."""
    if min(t.seeds) < p.min_seeds:
        return "inconclusive", f"{min(t.seeds)} seeds at some K, fewer than {p.min_seeds}"
    if which == "improves":
        if t.at_ceiling and t.at_ceiling[0] == t.ks[0]:
            return "inconclusive", f"at the ceiling ({p.ceiling:g}) already at K = {t.ks[0]}"
        return ("confirmed", "") if t.improves else ("not confirmed", "")
    if len(t.ks) < 3:
        return "inconclusive", "fewer than three K values"
    if t.at_ceiling:
        return (
            "inconclusive",
            f"at the ceiling ({p.ceiling:g}) at K = {', '.join(map(str, t.at_ceiling))}",
        )
    if t.declines:
        late = t.ks[_halves(len(t.ks))[1]]
        lo, hi = t.late_ci
        d = p.decimals
        return "not confirmed", (
            f"declines from K = {late[0]} to {late[-1]}: late slope "
            f"[{signed(lo, d)}, {signed(hi, d)}]"
        )
    return ("confirmed", "") if t.saturates else ("not confirmed", "")


def _trend_line(
    t: Trend, p: ReportParams, with_saturation: bool = True, verb: str = "improves"
) -> str:
    """The numbers of one trend and its verdicts, each reason said once."""
    d = p.decimals
    lo, hi = t.slope_ci
    seeds = f"{min(t.seeds)}-{max(t.seeds)}" if min(t.seeds) != max(t.seeds) else f"{t.seeds[0]}"
    n = f"n = {seeds} seeds" + (f" x {t.points} test points" if t.points else ", per-run values")
    text = (
        f"{t.metric} {', '.join(format_number(v, d) for v in t.values)} at K = "
        f"{', '.join(map(str, t.ks))} ({n}): slope {signed(t.slope, d)} per unit log K "
        f"[{signed(lo, d)}, {signed(hi, d)}]"
    )
    verdicts = [(verb, *_verdict(t, p, "improves"))]
    if with_saturation and len(t.ks) >= 3:
        slo, shi = t.saturation_ci
        text += (
            f", early {signed(t.early, d)}, late {signed(t.late, d)} (early minus late gain "
            f"[{signed(slo, d)}, {signed(shi, d)}])"
        )
        verdicts.append(("saturates", *_verdict(t, p, "saturates")))
    reasons = list(dict.fromkeys(why for *_, why in verdicts if why))
    if t.at_ceiling and not any("ceiling" in r for r in reasons):
        reasons.append(f"at the ceiling ({p.ceiling:g}) at K = {', '.join(map(str, t.at_ceiling))}")
    text += "; " + ", ".join(f"{what}: {status}" for what, status, _ in verdicts)
    return text + (f" ({'; '.join(reasons)})" if reasons else "")


def _combine(statuses: Sequence[str]) -> str:
    if not statuses:
        return "inconclusive"
    if "not confirmed" in statuses:
        return "not confirmed"
    return "confirmed" if all(s == "confirmed" for s in statuses) else "inconclusive"


def _downstream(results: pd.DataFrame, points: Points, p: ReportParams):
    """Per dataset: (status, lines) of Claim 3."""
    out = []
    for ds, rows in results.groupby("dataset", sort=False):
        ks = sorted(int(k) for k in rows["k"].unique())
        if len(ks) < 2:
            out.append((ds, "inconclusive", [f"{ds}: a single K, no trend to test"]))
            continue
        lines, status = [], "inconclusive"
        for name, array, column, direction in METRICS:
            per = _per_seed(rows, ks, points, array, column)
            t = trend(
                per, ks, direction, name, p, stream=ds, ceiling=None if direction < 0 else p.ceiling
            )
            if name == "R_mu":
                status = _combine([_verdict(t, p, "improves")[0], _verdict(t, p, "saturates")[0]])
            lines.append(_trend_line(t, p))
        out.append((ds, status, [f"{ds} ({status} on R_mu): " + lines[0], *lines[1:]]))
    return out


def _gap(results: pd.DataFrame, points: Points, p: ReportParams):
    """Per dataset: (status, line) of Claim 5."""
    out = []
    d = p.decimals
    for ds, rows in results.groupby("dataset", sort=False):
        ks = sorted(int(k) for k in rows["k"].unique())
        if len(ks) < 2:
            out.append((ds, "inconclusive", f"{ds}: a single K, no trend to test"))
            continue
        per = _per_seed(rows, ks, points, "mean_loss", "supervised_loss")
        offsets = {}
        for s, g in rows.groupby("seed"):
            by_k = {int(r.k): r for r in g.itertuples()}
            value = np.array([by_k[k].contrastive_loss if k in by_k else 0.0 for k in ks])
            se = np.array([by_k[k].contrastive_loss_se if k in by_k else 0.0 for k in ks])
            offsets[int(s)] = (value, np.nan_to_num(se))
        t = trend(per, ks, -1, "R_mu - R_cont", p, stream=ds, offsets=offsets)
        x = np.log(np.asarray(ks, dtype=float))
        gaps = rows.groupby("k")[["upper_gap", "lower_gap"]].mean().loc[ks]
        s_up = float(_slopes(x, gaps["upper_gap"].to_numpy()))
        s_lo = float(_slopes(x, gaps["lower_gap"].to_numpy()))
        status, _ = _verdict(t, p, "improves")
        line = _trend_line(t, p, with_saturation=False, verb="decays")
        lo, hi = t.slope_ci
        inside = lo <= s_up <= hi
        line = (
            f"{ds} ({status}): {line}; Delta_U's slope over the same K {signed(s_up, d)} "
            f"(log(C/K) falls at -1), Delta_L's {signed(s_lo, d)}; measured over Delta_U's slope "
            f"{format_number(t.slope / s_up if s_up else math.nan, 2)}, Delta_U's slope "
            f"{'inside' if inside else 'outside'} the interval"
        )
        out.append((ds, status, line))
    return out


# --------------------------------------------------------------------------- claim 4
def trajectory_checks(traj: pd.DataFrame) -> pd.DataFrame:
    """Per trajectory point, margins (nats; >= 0 means the check passes): `inside_margin`
    (distance into the band), `right_margin` (R_cont - R_cont*(K, C)), `above_margin`
    (R_mu - R_mu*(C)); and booleans `inside`, `right`, `above` (b = 1)."""
    out = traj.copy()
    gap = out["val_supervised_loss"] - out["val_contrastive_loss"]
    out["inside_margin"] = np.minimum(gap - out["lower_gap"], out["upper_gap"] - gap)
    rc = np.array(
        [
            bounds.optimal_contrastive_loss(int(k), int(c))
            for k, c in zip(out["k"], out["classes"], strict=True)
        ],
        dtype=float,
    )
    rm = np.array([bounds.optimal_supervised_loss(int(c)) for c in out["classes"]], dtype=float)
    out["right_margin"] = out["val_contrastive_loss"].to_numpy(dtype=float) - rc
    out["above_margin"] = out["val_supervised_loss"].to_numpy(dtype=float) - rm
    for name in ("inside", "right", "above"):
        out[name] = out[f"{name}_margin"] >= 0
    return out


def _claim_trajectories(traj: pd.DataFrame, missing: Sequence[str], p: ReportParams) -> Claim:
    name = "trajectories stay inside the band"
    if traj.empty:
        return Claim(4, name, "inconclusive", "no trajectory file was found")
    t = trajectory_checks(traj)
    n = len(t)
    inside, right, above = int(t["inside"].sum()), int(t["right"].sum()), int(t["above"].sum())
    margin = t[["inside_margin", "right_margin", "above_margin"]].min(axis=1).to_numpy()
    se = (
        t["contrastive_loss_se"].to_numpy(dtype=float)
        if "contrastive_loss_se" in t
        else np.full(n, np.nan)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, margin / se, np.where(margin >= 0, np.inf, -np.inf))
    i = int(np.argmin(z))
    w = t.iloc[i]
    violated = int((margin < 0).sum())
    status = _margin_verdict(float(z[i]), violated, _z(p.confidence))
    text = (
        f"{inside}/{n} held-out trajectory points ({100.0 * inside / n:.1f}%) lie inside the "
        f"band; {right}/{n} are right of R_cont\\*, {above}/{n} above R_mu\\*; smallest margin "
        f"{format_number(float(z[i]), 1)} standard errors ({format_number(float(margin[i]), p.decimals)} "
        f"nats, {run_label(w['dataset'], w['k'], w['seed'])}, epoch {w['epoch']:g})"
    )
    if missing:
        text += f" ({len(missing)} runs have no trajectory file)"
    details = [
        "a theorem: this checks the implementation and the estimators; the scale is the "
        "run's test-set standard error of R_cont"
    ]
    for (ds, k), grp in t[~(t["inside"] & t["right"] & t["above"])].groupby(
        ["dataset", "k"], sort=True
    ):
        details.append(
            f"{ds} K={k}: {len(grp)} point{'s' if len(grp) > 1 else ''} outside, the first at "
            f"epoch {grp['epoch'].min():g}"
        )
    return Claim(4, name, status, text, tuple(details))


# --------------------------------------------------------------------------- all claims
def _tally(statuses: Sequence[str]) -> str:
    """'confirmed on 3/4 datasets, inconclusive on 1/4' (only the outcomes that occur)."""
    n = len(statuses)
    return ", ".join(f"{st} on {statuses.count(st)}/{n}" for st in STATUSES if st in statuses)


def _trend_claims(results: pd.DataFrame, points: Points, p: ReportParams) -> tuple[Claim, Claim]:
    down = _downstream(results, points, p)
    s3 = [s for _, s, _ in down]
    c3 = Claim(
        3,
        "downstream improves with K and saturates",
        _combine(s3),
        f"on R_mu (primary: improves and saturates), {_tally(s3)} datasets; the accuracies are "
        "secondary and do not decide",
        tuple(line for _, _, lines in down for line in lines),
    )
    gap = _gap(results, points, p)
    s5 = [s for _, s, _ in gap]
    c5 = Claim(
        5,
        "the surrogate gap decays with K",
        _combine(s5),
        f"R_mu - R_cont against log K: {_tally(s5)} datasets",
        tuple(line for _, _, line in gap),
    )
    return c3, c5


def claims(
    results: pd.DataFrame,
    trajectories: pd.DataFrame,
    params: ReportParams | None = None,
    missing: Sequence[str] = (),
    points: Points | None = None,
) -> list[Claim]:
    """Claims 1-5 on the results table, the trajectories and the per-point arrays.

    Runs that collapsed (collapsed_runs) stay in; Claims 3 and 5 say whether their verdict
    changes without them.
    """
    p = params or ReportParams()
    points = points or {}
    c3, c5 = _trend_claims(results, points, p)
    flagged = collapsed_runs(results, p.collapse_drop)
    if flagged.any():
        names = ", ".join(run_label(r.dataset, r.k, r.seed) for r in results[flagged].itertuples())
        kept = results[~flagged]
        a3, a5 = _trend_claims(kept, points, p)
        changed = []
        for c, a in ((c3, a3), (c5, a5)):
            same = "unchanged" if a.status == c.status else f"changes from {c.status}"
            note = f"without the collapsed runs ({names}): {a.status} ({same}); {a.text}"
            changed.append(Claim(c.number, c.name, c.status, c.text, (*c.details, note)))
        c3, c5 = changed
    return [
        _claim_sandwich(results, points, p),
        _claim_tightest(results, p),
        c3,
        _claim_trajectories(trajectories, missing, p),
        c5,
    ]


def claims_markdown(items: Sequence[Claim]) -> str:
    """One bullet per claim, its evidence in sub-bullets."""
    lines = []
    for c in items:
        lines.append(f"- **Claim {c.number} ({c.name}):** {c.status}: {c.text}.")
        lines += [f"  - {d}." for d in c.details]
    return "\n".join(lines)
