"""The report's first screen and its per-dataset trend tables.

The first screen answers before it explains: a paragraph with the answer on this run, one
row per claim (the paper's statement as docs/THEORY.md section 7 words it, the kind of
check, the verdict with what holds and what fails, the key number with its interval, the
figure that shows it), then the headline figure (plots.headline). Each dataset's section
then holds the numbers behind Claims 3 and 5 as one table (value per K, slope with its
interval, verdicts, seeds needed), and the fixed-encoder null of the fixed_null stage
beside the gap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from surrogap.report import claims as claims_module
from surrogap.report import stats as S
from surrogap.report.claims import (
    BEYOND_FIXED,
    EMPIRICAL,
    FIXED_GAP,
    FORMULA,
    THEOREM,
    Claim,
    ClaimSpec,
    TrendRow,
    fixed_null_trends,
)
from surrogap.report.load import ReportParams
from surrogap.report.stats import format_number

__all__ = [
    "answer",
    "claim_table",
    "fixed_null_trends",
    "slack_trend",
    "spec_of",
    "trend_table",
]


def spec_of(number: int) -> ClaimSpec:
    """The registered claim `number` (claims.CLAIMS, read at each call)."""
    return next(c for c in claims_module.CLAIMS if c.number == number)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short_reason(why: str) -> str:
    """The reason a verdict is undecided, in a few words."""
    if "ceiling" in why:
        return "at the ceiling"
    if "seed" in why and "fewer than" in why:
        return "too few seeds"
    if "three K" in why or "single K" in why:
        return "too few K"
    if "fixed-encoder null" in why:
        return "no fixed-encoder null"
    return why


def parts(results: pd.DataFrame, trends: Sequence[TrendRow]) -> dict[str, list[str]]:
    """{'holds' | 'fails' | 'fragile' | 'undecided' | 'under-powered': ['R_mu: improves,
    saturates', ...]} over data families, one entry per metric: a part holds where every
    family confirms it, fails where one does not confirm it (how many of the families, and
    the datasets that do not), is fragile where none fails and one is fragile (its interval
    straddles 0 and reaches the effect of interest: a rerun can flip it), else undecided (and
    why). Under-powered: the parts whose power for the effect of interest at this run's n is
    below `report.power`, on the datasets named."""
    # per (metric, part): each dataset's (dataset, status, why, needed)
    seen: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
    for r in trends:
        for what, status, why, needed in r.verdicts:
            seen.setdefault((r.trend.metric, what), []).append((r.dataset, status, why, needed))
    words = ("holds", "fails", "fragile", "undecided", "under-powered")
    grouped: dict[str, dict[str, list[str]]] = {w: {} for w in words}
    for (metric, what), rows in seen.items():
        fam = S.by_family(results, {ds: status for ds, status, _, _ in rows})
        no, shaky = fam.count(S.NOT_CONFIRMED), fam.count(S.FRAGILE)
        if fam.count(S.CONFIRMED) == len(fam):
            word, text = "holds", what
        elif no:
            names = ", ".join(ds for ds, status, _, _ in rows if status == S.NOT_CONFIRMED)
            word, text = "fails", f"{what} ({no}/{len(fam)} families; not confirmed on {names})"
        elif shaky:
            fragile = (f"{ds}: {why}" for ds, status, why, _ in rows if status == S.FRAGILE and why)
            why = next(fragile, "a rerun can flip it")  # the first fragile dataset's reason
            word, text = "fragile", f"{what} ({shaky}/{len(fam)} families; {why})"
        else:
            undecided = [why for _, status, why, _ in rows if status == S.INCONCLUSIVE and why]
            why = ", ".join(sorted({_short_reason(w) for w in undecided})) or "interval straddles 0"
            word, text = "undecided", f"{what} ({why})"
        grouped[word].setdefault(metric, []).append(text)
        weak = [ds for ds, _, _, needed in rows if "under-powered" in needed]
        if weak:
            grouped["under-powered"].setdefault(metric, []).append(f"{what} ({', '.join(weak)})")
    return {
        word: [f"{metric}: {', '.join(whats)}" for metric, whats in by_metric.items()]
        for word, by_metric in grouped.items()
    }


def _verdict_cell(c: Claim, results: pd.DataFrame) -> str:
    cell = f"**{c.status}**"
    if c.trends:
        found = parts(results, c.trends)
        bits = [f"{word}: {'; '.join(found[word])}" for word in found if found[word]]
        return cell + "<br>" + "<br>".join(bits)
    if c.status.startswith(S.INCONCLUSIVE):
        cell += "<br>undecided: a violation within the estimator's noise"
    return cell


def claim_table(
    items: Sequence[Claim],
    results: pd.DataFrame,
    figures_rel: str,
    null_key: str = "",
) -> list[str]:
    """The claim table: one row per claim."""
    first = str(pd.unique(results["dataset"])[0])
    md = [
        "| claim | the paper's statement (docs/THEORY.md) | check | verdict on this run | "
        "key number [interval] | figure |",
        "|---|---|---|---|---|---|",
    ]
    for c in items:
        spec = spec_of(c.number)
        name, label = spec.figure
        link = f"[{label}]({figures_rel.rstrip('/')}/{name.format(ds=first)})"
        if "{ds}" in name:
            link += f" ({first}; each dataset's section)"
        key = c.key + (f"; {null_key}" if c.number == 5 and null_key else "")
        md.append(
            f'| {c.number}. {_cell(c.name)} | "{_cell(spec.statement)}" | '
            f"{spec.check} | {_cell(_verdict_cell(c, results))} | {_cell(key)} | {link} |"
        )
    md += [
        "",
        f"A {THEOREM} or {FORMULA} cannot fail for a correct implementation: it checks the "
        f"code and the estimators (Claim 2's ordering holds for any encoder at these K and C). "
        f"An {EMPIRICAL} can fail. Intervals: seed-level one-sided "
        "bounds (How this was made); a part holds where every data family confirms it; "
        "*fragile*: its interval straddles 0 and reaches the pre-registered effect of "
        "interest, or a bound lies within one standard error of its threshold, so a rerun "
        "can flip it (no finding either way); *under-powered*: this "
        "run's seeds detect the effect of interest with less than `report.power`.",
    ]
    return md


# --------------------------------------------------------------------------- the null
def null_key(trends: Mapping[str, tuple[S.Trend, S.Trend]], p: ReportParams) -> str:
    """The fixed encoder's gap slopes and the learned part's, for Claim 5's key number."""
    if not trends:
        return ""
    d = p.decimals
    fixed = [t.slope for t, _ in trends.values()]
    learned = [t.slope for _, t in trends.values()]
    return (
        f"the fixed smallest-K encoder's gap slope {S.signed(min(fixed), d)} to "
        f"{S.signed(max(fixed), d)}; training at each K adds {S.signed(min(learned), d)} to "
        f"{S.signed(max(learned), d)} per unit log K"
    )


# --------------------------------------------------------------------------- per dataset
SLACK = "slack (Bao's upper bound - R_mu)"
DESCRIPTIVE = "descriptive (no verdict)"


def slack_trend(results: pd.DataFrame, ds: str, p: ReportParams) -> S.Trend | None:
    """How far Bao's upper bound sits above the measured R_mu against K on one dataset
    (per-run values, seed-level interval): descriptive, no verdict. None below two K."""
    rows = results[results["dataset"] == ds]
    ks = sorted(int(k) for k in rows["k"].unique())
    if len(ks) < 2:
        return None
    rows = rows.assign(_slack=rows["bao_upper"] - rows["supervised_loss"])
    per = S.per_seed_values(rows, ks, {}, "", "_slack")
    return S.trend(per, ks, -1, SLACK, p.confidence)


def trend_table(
    ds: str,
    items: Sequence[Claim],
    null: Mapping[str, tuple[S.Trend, S.Trend]],
    p: ReportParams,
    results: pd.DataFrame | None = None,
) -> list[str]:
    """Claims 3 and 5 on one dataset: one row per quantity; the fixed encoder's gap and
    the gap beyond it where Claim 5 does not already hold them; and, given `results`, the
    slack of Bao's upper bound (descriptive)."""
    rows = [r for c in items for r in c.trends if r.dataset == ds]
    have = {r.trend.metric for r in rows}
    extra = [(t, ()) for t in null.get(ds, ()) if t.metric not in have]
    slack = slack_trend(results, ds, p) if results is not None else None
    if slack is not None:
        extra.append((slack, ()))
    if not rows:
        return []
    d = p.decimals
    ks = rows[0].trend.ks
    md = [
        f"Seeds: {S.n_text(rows[0].trend)}.",
        "",
        "| quantity | " + " | ".join(f"K = {k}" for k in ks) + " | slope per unit log K "
        "[interval] | verdicts | early minus late gain [interval] | seeds needed | why "
        "undecided |",
        "|---|" + "---:|" * len(ks) + "---:|---|---:|---|---|",
    ]
    for t, verdicts in [(r.trend, r.verdicts) for r in rows] + extra:
        if t.ks != ks:
            continue
        values = " | ".join(format_number(v, d) for v in t.values)
        dd = S.distinct_decimals(*t.slope_ci, d)  # the value as the interval prints it
        slope = f"{S.signed(t.slope_est.value, dd)} {S.interval(*t.slope_ci, d)}"
        if not verdicts and t.metric == BEYOND_FIXED:
            status, why = S.verdict(t, p, "improves")
            verdicts = (("decays beyond the fixed encoder", status, why, ""),)
        said = "; ".join(f"{what}: {status}" for what, status, _, _ in verdicts) or (
            DESCRIPTIVE if t.metric == SLACK else "the null" if t.metric == FIXED_GAP else ""
        )
        sat = (
            S.interval(*t.saturation_ci, d)
            if t.saturation_est is not None and any(w == "saturates" for w, *_ in verdicts)
            else ""
        )
        needed = ", ".join(f"{w} {m}" for w, _, _, m in verdicts if m)
        why = "; ".join(dict.fromkeys(w for _, _, w, _ in verdicts if w))
        md.append(
            f"| {_cell(t.metric)} | {values} | {slope} | {said} | {sat} | {needed} | {_cell(why)} |"
        )
    return md


def _span_pct(values: Sequence[float]) -> str:
    lo, hi = f"{100 * min(values):.0f}", f"{100 * max(values):.0f}"
    return f"{lo}%" if lo == hi else f"{lo}-{hi}%"


def answer(
    items: Sequence[Claim],
    results: pd.DataFrame,
    null: Mapping[str, tuple[S.Trend, S.Trend]],
    p: ReportParams,
    chance: pd.Series | None = None,
) -> str:
    """The answer on this run, in a few sentences, from the verdicts and numbers of the
    runs that are evidence: `chance` marks the runs at chance (claims.at_chance_runs),
    left out of every number here (`null` is computed without them too); where every run
    is at chance, the answer says only that, and concludes nothing."""
    by = {c.number: c for c in items}
    n_ds = results["dataset"].nunique()
    ks = sorted(int(k) for k in results["k"].unique())
    seeds = int(results.groupby(["dataset", "k"])["seed"].nunique().min())
    text = [
        f"**On this run** ({len(results)} runs: {n_ds} datasets, K = "
        f"{', '.join(map(str, ks))}, {seeds} seeds each):"
    ]
    n_chance = 0 if chance is None else int(chance.sum())
    if n_chance and n_chance == len(results):
        text.append(
            "every run is at chance (test accuracy within noise of 1/C, or R_mu = log C: the "
            "features carry nothing of the class), so nothing is concluded: every claim is "
            "inconclusive (Runs at chance, below)."
        )
        return " ".join(text)
    if n_chance:
        text.append(
            f"{n_chance} run{'s' if n_chance > 1 else ''} at chance "
            f"{'are' if n_chance > 1 else 'is'} left out of every number below (Runs at "
            "chance)."
        )
        results = results[~chance]
    theorems = [c for c in items if spec_of(c.number).check != EMPIRICAL]
    text.append(
        "the checks that cannot fail for a correct implementation come out "
        + ", ".join(f"Claim {c.number} {c.status.split(' (')[0]}" for c in theorems)
        + "."
    )
    if 3 in by:
        found = parts(results, by[3].trends)
        mu_holds = [x for x in found["holds"] if x.startswith("R_mu:") and "improves" in x]
        lowers = "lowers" if mu_holds else "does not lower"
        partly = found["fails"] or found["fragile"] or found["undecided"]
        but = "; not every part of Claim 3 holds (its row below says which)" if partly else ""
        text.append(f"A larger K {lowers} R_mu on every data family ({by[3].key}){but}.")
    if null:
        d = p.decimals
        share = [
            abs(learned.slope) / abs(learned.slope + fixed.slope)
            for fixed, learned in null.values()
            if learned.slope + fixed.slope
        ]
        added = f"training at each K adds {_span_pct(share)} of the measured slope" if share else ""
        how = "mostly mechanically" if share and max(share) < 0.5 else "partly mechanically"
        text.append(
            f"Why the gap falls: {how}. The encoder trained at the smallest K, held fixed "
            "(its R_mu cannot change with K), still has a gap that falls at "
            + ", ".join(f"{ds} {S.signed(f.slope, d)}" for ds, (f, _) in null.items())
            + " per unit log K, because R_cont rises with K for any encoder"
            + (f"; {added}" if added else "")
            + " (headline figure, bottom row)."
        )
    return " ".join(text)
