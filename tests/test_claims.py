"""The claim tests on constructed tables whose right verdict is known: a clear improvement,
a flat metric, too few seeds, accuracy at the ceiling, a collapsed run, undefined earlier
bounds, a violated bound inside and outside the estimator's noise, the surrogate gap."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from surrogap.core.errors import UserError
from surrogap.report import claims as CL
from surrogap.report import load
from surrogap.report.load import ReportParams
from surrogap.theory import bounds

from test_report import make_null  # isort: skip

KS = (1, 4, 16, 64)
P = ReportParams()


def table(
    r_mu,
    acc,
    *,
    c: int = 20,
    ks=KS,
    seeds=range(5),
    dataset: str = "d",
    val_acc=None,
    se: float = 0.005,
    position: float = 0.5,
) -> pd.DataFrame:
    """One row per (K, seed): R_mu = r_mu(k, s), accuracies acc(k, s); R_cont puts R_mu at
    `position` inside [R_cont + Delta_L, R_cont + Delta_U]; every bound from the library."""
    rows = []
    for k in ks:
        lo, hi = float(bounds.lower_gap(k, c)), float(bounds.upper_gap(k, c))
        for s in seeds:
            sup = float(r_mu(k, s))
            cont = sup - (lo + position * (hi - lo))
            a = float(acc(k, s))
            rows.append(
                dict(
                    dataset=dataset,
                    kind="circle",
                    classes=c,
                    k=k,
                    seed=s,
                    contrastive_loss=cont,
                    contrastive_loss_se=se,
                    contrastive_repeats=10,
                    supervised_loss=sup,
                    mean_acc=a,
                    linear_acc=min(a + 0.02, 1.0),
                    linear_loss=sup - 0.2,
                    val_supervised_loss=sup,
                    val_mean_acc=a if val_acc is None else float(val_acc(k, s)),
                    lower_gap=lo,
                    upper_gap=hi,
                    bao_lower=cont + lo,
                    bao_upper=cont + hi,
                    arora=float(bounds.arora_bound(cont, k, c)),
                    nozawa_sato=float(bounds.nozawa_sato_bound(cont, k, c)),
                    ash=float(bounds.ash_bound(cont, k, c)),
                    holds=bool(cont + lo <= sup <= cont + hi),
                )
            )
    return pd.DataFrame(rows)


def points(results: pd.DataFrame, n: int = 400, spread: float = 0.5, jitter: float = 0.05):
    """Per-point arrays that average exactly to each run's R_mu and accuracies: a per-point
    loss shared by every K of a seed (so K values are paired) plus centred K-specific noise,
    and nested sets of correct points."""
    out = {}
    for r in results.itertuples():
        base_rng = np.random.default_rng([7, int(r.seed)])
        y = base_rng.integers(0, int(r.classes), n)
        base = base_rng.standard_normal(n)
        order = base_rng.permutation(n)
        noise = np.random.default_rng([8, int(r.seed), int(r.k)]).standard_normal(n)
        loss = spread * base + jitter * noise
        loss = loss - loss.mean() + r.supervised_loss

        def correct(acc, order=order):
            m = np.zeros(n, bool)
            m[order[: round(acc * n)]] = True
            return m

        out[(r.dataset, int(r.k), int(r.seed))] = dict(
            y=y,
            mean_loss=loss,
            mean_correct=correct(r.mean_acc),
            linear_loss=loss - 0.2,
            linear_correct=correct(r.linear_acc),
        )
    return out


def claim(items, number):
    (c,) = [c for c in items if c.number == number]
    return c


def improving(k, s):
    return 2.0 + 0.5 / math.sqrt(k) + 0.01 * s


def rising(k, s):
    return 0.6 + 0.2 * (1 - 1 / math.sqrt(k)) + 0.005 * s


def no_traj():
    return pd.DataFrame(columns=["dataset", "k", "seed", "epoch"])


# --------------------------------------------------------------------------- Claim 3
def test_clear_improvement_that_saturates_is_confirmed():
    r = table(improving, rising)
    c3 = claim(CL.claims(r, no_traj(), P, points=points(r)), 3)
    assert c3.status == "confirmed"
    rmu, mean_acc, linear = c3.details[:3]
    assert rmu.startswith("d (generated 2-D data), R_mu confirmed: R_mu ")
    assert "improves: confirmed, saturates: confirmed" in rmu
    assert "n = 5 seeds, each a mean over 400 test points" in rmu
    assert "the three metrics agree (confirmed)" in c3.text
    assert "improves: confirmed" in mean_acc and "improves: confirmed" in linear


def test_a_late_decline_is_not_saturation():
    """Early minus late gain is large when the metric turns down at large K, but a decline
    is not a gain that levels off: saturation is not confirmed, and the reason says so."""
    peak = {1: 0.6, 4: 0.8, 16: 0.8, 64: 0.62}
    r = table(improving, lambda k, s: peak[k] + 0.005 * s)
    c3 = claim(CL.claims(r, no_traj(), P, points=points(r)), 3)
    assert c3.status == "not confirmed"  # every metric has its verdict
    assert "confirmed on R_mu only, not on mean-classifier accuracy" in c3.text
    mean_acc = c3.details[1]
    assert mean_acc.startswith("d (generated 2-D data), mean-classifier accuracy not confirmed")
    assert "saturates: not confirmed" in mean_acc
    assert "declines from K = 16 to 64: late slope [" in mean_acc
    per = CL.S.per_seed_values(r, list(KS), points(r), "mean_correct", "mean_acc")
    t = CL.trend(per, KS, +1, "acc", P.confidence)
    assert t.saturation_ci[0] > 0  # what the early-minus-late test alone would confirm
    assert t.declines and not t.saturates and t.late_ci[1] < 0


def test_r_mu_rising_again_at_large_k_does_not_confirm_claim_3():
    worse = {1: 2.5, 4: 2.2, 16: 2.2, 64: 2.45}
    r = table(lambda k, s: worse[k] + 0.01 * s, rising)
    c3 = claim(CL.claims(r, no_traj(), P, points=points(r)), 3)
    assert c3.status == "not confirmed"
    assert "saturates: not confirmed" in c3.details[0]
    assert "declines from K = 16 to 64" in c3.details[0]


def test_slope_is_the_least_squares_slope_of_the_seed_means():
    r = table(improving, rising)
    per = CL.S.per_seed_values(r, list(KS), points(r), "mean_loss", "supervised_loss")
    t = CL.trend(per, KS, -1, "R_mu", P.confidence)
    means = r.groupby("k")["supervised_loss"].mean().loc[list(KS)]
    want = np.polyfit(np.log(KS), means.to_numpy(), 1)[0]
    assert t.slope == pytest.approx(want, abs=1e-9)
    assert t.slope_ci[0] <= t.slope <= t.slope_ci[1]
    early = np.polyfit(np.log(KS[:2]), means.to_numpy()[:2], 1)[0]
    late = np.polyfit(np.log(KS[2:]), means.to_numpy()[2:], 1)[0]
    assert (t.early, t.late) == pytest.approx((early, late), abs=1e-9)
    assert t.improves and t.saturates


def test_paired_contrasts_see_no_point_noise_in_a_common_shift():
    """Per-point values that differ across K by a constant, identical seeds: every point's
    slope is the same and so is every seed's, so the interval collapses onto the estimate
    (the K values are paired on the test points)."""
    base = np.random.default_rng(0).standard_normal(300)
    a = np.stack([base - 0.1 * math.log(k) for k in KS])
    t = CL.trend({0: a, 1: a.copy(), 2: a.copy()}, KS, -1, "x", P.confidence)
    assert t.slope == pytest.approx(-0.1, abs=1e-12)
    assert t.slope_ci == pytest.approx((-0.1, -0.1), abs=1e-12)


def test_claims_are_deterministic_and_follow_the_confidence():
    r = table(improving, rising)
    pts = points(r)
    one = CL.claims(r, no_traj(), P, points=pts)
    assert one == CL.claims(r, no_traj(), P, points=pts)
    other = CL.claims(r, no_traj(), ReportParams(confidence=0.99), points=pts)
    assert claim(other, 3).details != claim(one, 3).details


def test_flat_metric_is_not_confirmed():
    r = table(lambda k, s: 3.5 + 0.01 * s, lambda k, s: 0.7 + 0.005 * s)
    c3 = claim(CL.claims(r, no_traj(), P, points=points(r)), 3)
    assert c3.status == "not confirmed"
    assert "improves: not confirmed" in c3.details[0]
    lo, hi = (float(x) for x in re.search(r"\[([-+.\d]+), ([-+.\d]+)\]", c3.details[0]).groups())
    assert lo < 0 < hi


def test_two_seeds_are_inconclusive():
    r = table(improving, rising, seeds=range(2))
    c3 = claim(CL.claims(r, no_traj(), P, points=points(r)), 3)
    assert c3.status == "inconclusive"
    assert "2 seeds with every K, fewer than 3" in c3.details[0]
    assert "improves: inconclusive" in c3.details[0]
    # the same runs decide once the threshold allows two seeds
    p2 = ReportParams(min_seeds=2)
    line = claim(CL.claims(r, no_traj(), p2, points=points(r)), 3).details[0]
    assert "R_mu confirmed" in line and "improves: confirmed" in line


def test_one_seed_has_no_interval_and_says_what_n_is_needed():
    """At n = 1 there is no spread: no interval, no seed count, never 'the effect is not on
    the claimed side' for an effect that is on it; Claim 5's rate line says there is no
    interval rather than that Delta_U's slope lies outside it. Even with min_seeds = 1 no
    verdict is drawn from one seed."""
    r = table(improving, rising, seeds=range(1))  # every metric improves with K
    for p in (P, ReportParams(min_seeds=1)):
        found = CL.claims(r, no_traj(), p, points=points(r))
        c3, c5 = claim(found, 3), claim(found, 5)
        text = "\n".join((*c3.details, *c5.details))
        assert "not on the claimed side" not in text and "undefined" not in text
        assert "outside the interval" not in text and "inside the interval" not in text
        assert c3.status == c5.status == "inconclusive"
        assert {v.status for v in (*c3.verdicts, *c5.verdicts)} == {"inconclusive"}
        rmu = c3.details[0]
        assert "slope -0.104 per unit log K (no interval: 1 seed with every K)" in rmu
        need = f"run at least {max(2, p.min_seeds)} seeds"
        assert "seeds to detect the effect of interest: improves unknown at n = 1 (no spread" in rmu
        assert need in rmu
        assert "no interval from 1 seed with every K, so no test of the rate" in c5.details[1]
        assert all("no interval from one seed" in v.reason for v in c3.verdicts)


def test_two_seeds_never_need_fewer_seeds_than_min_seeds():
    """At n = 2 (below min_seeds = 3) the verdict is inconclusive by rule, so a decisive
    verdict needs at least min_seeds, whatever the power computation says."""
    r = table(improving, rising, seeds=range(2))
    c3 = claim(CL.claims(r, no_traj(), P, points=points(r)), 3)
    counts = [
        int(n)
        for line in c3.details[:3]
        for n in re.findall(r"(?:improves|saturates) (\d+)", line.split("effect of interest:")[1])
    ]
    assert len(counts) == 6 and min(counts) == 3, c3.details[:3]
    assert "2 seeds with every K, fewer than 3" in c3.details[0]


def test_accuracy_at_the_ceiling_is_inconclusive_and_does_not_decide():
    r = table(improving, lambda k, s: 0.993 + 0.0005 * math.log(k))
    c3 = claim(CL.claims(r, no_traj(), P, points=points(r)), 3)
    assert c3.status == "inconclusive"  # R_mu confirmed, the accuracies cannot tell
    assert (
        "R_mu confirmed (improves: confirmed on 1/1 data families; saturates: confirmed on "
        "1/1 data families)" in c3.text
    )
    assert "confirmed on R_mu only, not on mean-classifier accuracy" in c3.text
    mean_acc = c3.details[1]
    assert "mean-classifier accuracy inconclusive" in mean_acc
    assert "improves: inconclusive" in mean_acc
    assert "at the ceiling (0.99) already at K = 1" in mean_acc


def test_headline_names_what_holds_and_what_fails_when_r_mu_improves_without_saturating():
    # R_mu falls at a constant rate in log K: it improves, and does not saturate
    r = table(lambda k, s: 2.5 - 0.1 * math.log(k) + 0.01 * s, rising)
    c3 = claim(CL.claims(r, no_traj(), P, points=points(r)), 3)
    assert c3.status == "not confirmed"
    assert (
        "R_mu not confirmed (improves: confirmed on 1/1 data families; saturates: not "
        "confirmed on 1/1 data families)" in c3.text
    )
    assert "R_mu not confirmed (not confirmed" not in c3.text
    # the per-dataset rows carry the same two verdicts for the dataset's table
    (row,) = [t for t in c3.trends if t.trend.metric == "R_mu"]
    assert [(what, status) for what, status, _, _ in row.verdicts] == [
        ("improves", "confirmed"),
        ("saturates", "not confirmed"),
    ]
    assert c3.key.startswith("R_mu slope -0.100 [")


def test_without_per_point_arrays_the_seeds_carry_every_interval():
    r = table(improving, rising)
    c3 = claim(CL.claims(r, no_traj(), P), 3)
    assert "n = 5 seeds, per-run values" in c3.details[0]
    assert c3.status == "confirmed"


# --------------------------------------------------------------------------- collapsed runs
def test_collapse_is_decided_on_validation_accuracy_against_siblings():
    r = table(
        improving, rising, seeds=range(3), val_acc=lambda k, s: 0.3 if (k, s) == (1, 2) else 0.9
    )
    flagged = CL.collapsed_runs(r, 0.2)
    assert r[flagged][["k", "seed"]].values.tolist() == [[1, 2]]
    # a test accuracy far off but a normal validation accuracy: not flagged
    r2 = r.copy()
    r2["val_mean_acc"] = 0.9
    r2.loc[(r2["k"] == 4) & (r2["seed"] == 0), "mean_acc"] = 0.1
    assert not CL.collapsed_runs(r2, 0.2).any()
    # a run without siblings is never flagged
    assert not CL.collapsed_runs(r[r["seed"] == 0], 0.2).any()


def test_collapsed_run_is_flagged_and_the_verdict_says_whether_it_changes():
    r = table(
        improving, rising, seeds=range(3), val_acc=lambda k, s: 0.3 if (k, s) == (1, 2) else 0.9
    )
    items = CL.claims(r, no_traj(), P, points=points(r))
    c3 = claim(items, 3)
    assert c3.status == "confirmed"
    assert (
        "without the collapsed runs (d K=1 seed 2): inconclusive (changes from confirmed)"
        in c3.details[-1]
    )
    p2 = ReportParams(min_seeds=2)
    c3 = claim(CL.claims(r, no_traj(), p2, points=points(r)), 3)
    # without it seed 2 lacks K = 1: two seeds with every K (t with 1 degree of freedom)
    note = c3.details[-1]
    assert note.startswith("without the collapsed runs (d K=1 seed 2): ")
    assert "R_mu confirmed" in note
    assert "without the collapsed runs" in claim(items, 5).details[-1]


# --------------------------------------------------------------------------- Claim 2
def test_claim2_headline_counts_the_runs_where_the_bound_is_above_log_c():
    r = table(improving, rising, c=20)
    above = int((r["bao_upper"] > np.log(r["classes"])).sum())
    c2 = claim(CL.claims(r, no_traj(), P), 2)
    assert f"above log C, the uniform predictor's loss, on {above}/{len(r)} runs" in c2.text


def test_claim2_with_undefined_earlier_bounds():
    r = table(improving, rising, c=20)  # Arora, Nozawa & Sato undefined for K + 1 < 20
    c2 = claim(CL.claims(r, no_traj(), P), 2)
    assert c2.status == "confirmed"
    assert "defined on 20/20 runs, holds on 20/20" in c2.text
    assert "smallest of the upper bounds that hold on 20/20" in c2.text
    assert "the earlier bounds are defined on 30/60 (bound, run) pairs" in c2.text
    line, power = c2.details
    assert power.startswith("power: not a seed-level test")
    assert "Arora et al. undefined at K = 1, 4, 16 (K + 1 < C)" in line
    assert "Nozawa & Sato undefined at K = 1, 4, 16 (K + 1 < C)" in line
    at64 = r[r["k"] == 64]
    want = at64["arora"].mean() / at64["bao_upper"].mean()
    want_mu = at64["arora"].mean() / at64["supervised_loss"].mean()
    assert want > 1
    assert (
        f"Arora et al. undefined at K = 1, 4, 16 (K + 1 < C); {want:.2f} times Bao's "
        f"({want_mu:.2f} times R_mu)" in line
    )
    ratios = CL.bound_ratios(r)
    assert ratios.loc[ratios["k"] == 64, "arora_over_bao"].iloc[0] == pytest.approx(want)
    assert ratios.loc[ratios["k"] < 64, "arora_over_bao"].isna().all()


def test_claim2_not_confirmed_when_an_earlier_bound_is_below_bao():
    r = table(improving, rising, c=5)
    i = r.index[(r["k"] == 16) & (r["seed"] == 3)][0]
    r.loc[i, "nozawa_sato"] = r.loc[i, "bao_upper"] - 0.1
    c2 = claim(CL.claims(r, no_traj(), P), 2)
    assert c2.status == "not confirmed"
    assert "smallest of the upper bounds that hold on 19/20" in c2.text


def test_claim2_says_where_bao_is_vacuous():
    r = table(improving, rising, c=5)  # Bao's upper bound is far above log 5 at K = 1
    line = claim(CL.claims(r, no_traj(), P), 2).details[0]
    top = math.log(1 + 4 * math.e**2)  # the largest R_mu at b = 1, C = 5
    vac = sorted(r.loc[r["bao_upper"] > top, "k"].unique())
    assert vac, "the table should have a vacuous bound"
    assert f"on 5/5 seeds at K = {', '.join(map(str, vac))}: vacuous there" in line
    assert f"log(1 + (C - 1) e^2) = {top:.3f}" in line


# --------------------------------------------------------------------------- Claims 1 and 4
def test_claim1_margin_in_standard_errors():
    r = table(improving, rising, position=0.1)
    r["contrastive_loss_se"] = 0.01 * (
        1 + r["seed"]
    )  # the run nearest in nats is not nearest in s.e.
    c1 = claim(CL.claims(r, no_traj(), P), 1)
    margin = np.minimum(
        r["supervised_loss"] - r["bao_lower"], r["bao_upper"] - r["supervised_loss"]
    )
    z = margin / r["contrastive_loss_se"]
    i = int(np.argmin(z))
    assert int(np.argmin(margin)) != i
    assert c1.status == "consistent (theorem check)"
    assert (
        f"smallest margin {z[i]:.1f} standard errors ({margin[i]:.3f} nats, "
        f"d K={r['k'][i]} seed {r['seed'][i]})" in c1.text
    )
    assert "a theorem" in c1.details[0]
    # with per-point arrays, R_mu's standard error over test points joins R_cont's
    pts = points(r)
    c1 = claim(CL.claims(r, no_traj(), P, points=pts), 1)
    mu_se = [
        pts[(ds, k, s)]["mean_loss"].std(ddof=1) / math.sqrt(400)
        for ds, k, s in zip(r["dataset"], r["k"], r["seed"], strict=True)
    ]
    z = margin / np.sqrt(r["contrastive_loss_se"] ** 2 + np.square(mu_se))
    assert f"smallest margin {z.min():.1f} standard errors" in c1.text


@pytest.mark.parametrize(
    ("excess", "status"), [(0.005, "inconclusive"), (0.5, "violated (theorem check)")]
)
def test_claim1_violation_inside_or_outside_the_noise(excess, status):
    r = table(improving, rising, se=0.01)
    i = r.index[(r["k"] == 4) & (r["seed"] == 1)][0]
    r.loc[i, "supervised_loss"] = r.loc[i, "bao_upper"] + excess
    r.loc[i, "holds"] = False
    c1 = claim(CL.claims(r, no_traj(), P), 1)
    assert c1.status == status
    assert "holds on 19/20 runs" in c1.text and "violated on d K=4 seed 1" in c1.text


def test_claim4_margin_and_outside_points():
    r = table(improving, rising, seeds=range(2), ks=(4,), se=0.01)
    rows = []
    for row in r.itertuples():
        mid = (row.lower_gap + row.upper_gap) / 2
        cont = np.array([3.0, 2.5, 2.2])
        sup = cont + mid
        if row.seed == 1:
            sup[1] = cont[1] + row.upper_gap + 0.3  # outside, far beyond the noise
        for e, (x, y) in enumerate(zip(cont, sup, strict=True)):
            rows.append(
                dict(dataset="d", kind="circle", classes=20, k=4, seed=row.seed, epoch=e,
                     val_contrastive_loss=x, val_supervised_loss=y, val_mean_acc=0.5,
                     contrastive_loss_se=0.01, contrastive_repeats=10, lower_gap=row.lower_gap, upper_gap=row.upper_gap)
            )  # fmt: skip
    traj = pd.DataFrame(rows)
    c4 = claim(CL.claims(r, traj, P), 4)
    assert c4.status == "violated (theorem check)"
    assert c4.text.startswith("5/6 held-out trajectory points (83.3%) lie inside the band")
    # one pairing's scale: the s.e. of a mean over 10 pairings times sqrt(10)
    z = -0.3 / (0.01 * math.sqrt(10))
    assert (
        f"smallest margin {z:.1f} standard deviations of one pairing (-0.300 nats, d K=4 seed 1, "
        "epoch 1)" in c4.text
    )
    assert "generated 2-D data" in c4.text
    assert "d K=4: 1 point outside, the first at epoch 1" in c4.details


# --------------------------------------------------------------------------- Claim 5
def test_surrogate_gap_decays_and_is_compared_with_delta_u_and_delta_l():
    r = table(improving, rising)
    c5 = claim(CL.claims(r, no_traj(), P, points=points(r), null=make_null(r)), 5)
    assert c5.status == "confirmed"
    line, rate, _power = c5.details
    gap = (r["supervised_loss"] - r["contrastive_loss"]).groupby(r["k"]).mean().loc[list(KS)]
    slope = np.polyfit(np.log(KS), gap.to_numpy(), 1)[0]
    s_up = np.polyfit(np.log(KS), [bounds.upper_gap(k, 20) for k in KS], 1)[0]
    assert f"the measured gap {slope:+.3f}" in line
    assert f"measured slope {slope:+.3f}" in rate
    s_lo = np.polyfit(np.log(KS), [bounds.lower_gap(k, 20) for k in KS], 1)[0]
    assert f"against Delta_U's {s_up:+.3f} and Delta_L's {s_lo:+.3f} over the same K" in rate
    # the fixed encoder keeps R_mu at K = 1 with the measured R_cont: the gap beyond its
    # gap is R_mu(K) - R_mu(1), whose slope is R_mu's
    mu = r.groupby("k")["supervised_loss"].mean().loc[list(KS)]
    beyond = np.polyfit(np.log(KS), mu.to_numpy() - mu.iloc[0], 1)[0]
    assert f"held fixed, slope {beyond:+.3f} per unit log K" in line
    assert "decays beyond the fixed encoder confirmed" in line


def test_gap_that_does_not_decay_is_not_confirmed():
    r = table(improving, rising)
    r["contrastive_loss"] = r["supervised_loss"] - 1.0  # a constant gap
    c5 = claim(CL.claims(r, no_traj(), P, points=points(r), null=make_null(r)), 5)
    # R_mu falls, so the gap falls beyond the fixed encoder's (whose gap rises with this
    # falling R_cont), but the gap itself is flat: slope 0, outside [Delta_U's, Delta_L's]
    assert c5.status == "not confirmed"
    assert "decays beyond the fixed encoder confirmed" in c5.details[0]
    assert "between Delta_U's and Delta_L's rates not confirmed" in c5.details[1]


# --------------------------------------------------------------------------- per-point files
def write_points(folder, results, pts):
    for (ds, k, s), arrays in pts.items():
        path = load.points_path(folder, ds, k, s)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)


def test_load_points_round_trip_and_checks(tmp_path):
    r = table(improving, rising, seeds=range(2))
    pts = points(r, n=200)
    write_points(tmp_path, r, pts)
    got, missing = load.load_points(tmp_path, r)
    assert missing == [] and set(got) == set(pts)
    key = ("d", 4, 1)
    assert got[key]["mean_correct"].dtype == bool
    np.testing.assert_array_equal(got[key]["mean_loss"], pts[key]["mean_loss"])
    load.points_path(tmp_path, "d", 64, 0).unlink()
    assert load.load_points(tmp_path, r)[1] == ["d K=64 seed 0"]
    # another test split at one K
    bad = dict(pts[key], y=pts[key]["y"][::-1].copy())
    np.savez(load.points_path(tmp_path, *key), **bad)
    with pytest.raises(UserError, match="test labels differ"):
        load.load_points(tmp_path, r)
    # a stale file: its losses average to another R_mu
    np.savez(
        load.points_path(tmp_path, *key), **dict(pts[key], mean_loss=pts[key]["mean_loss"] + 1)
    )
    with pytest.raises(UserError, match="stale"):
        load.load_points(tmp_path, r)
    np.savez(load.points_path(tmp_path, *key), y=pts[key]["y"])
    with pytest.raises(UserError, match="lacks the arrays mean_loss"):
        load.load_points(tmp_path, r)


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"bootstrap": 10}, "unknown key 'bootstrap'"),
        ({"power": 1.0}, "report.power"),
        ({"confidence": 1.0}, "report.confidence"),
        ({"ceiling": 0}, "report.ceiling"),
        ({"min_seeds": 0}, "report.min_seeds"),
        ({"collapse_drop": 1.5}, "report.collapse_drop"),
    ],
)
def test_threshold_params_are_checked(section, needle):
    with pytest.raises(UserError, match=re.escape(needle)):
        load.parse_params(section)


def test_claim2_an_earlier_bound_below_r_mu_fails_and_is_left_out():
    r = table(improving, rising, c=5)
    i = r.index[(r["k"] == 4) & (r["seed"] == 0)][0]
    r.loc[i, "ash"] = -0.5  # a measured loss below the collision term
    c2 = claim(CL.claims(r, no_traj(), P), 2)
    assert c2.status == "confirmed"
    assert "1 earlier values lie below R_mu, so that bound fails there" in c2.text
    assert "(first: Ash et al., d K=4 seed 0, -0.500 nats)" in c2.text
