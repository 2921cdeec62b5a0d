"""Seed-level inference (surrogap.report.stats) and the verdicts built on it: the t
interval holds its level at n = 3 and 5 seeds where a percentile bootstrap over the seeds
does not; Claim 5 is not confirmed for an untrained-encoder-like grid (R_cont rising
mechanically, R_mu flat); Claim 3's headline names the one metric that improves; datasets
that share their draws count once; the power line is the t test's."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from test_claims import KS, claim, no_traj, points, table
from test_report import make_null

from surrogap.report import claims as CL
from surrogap.report import stats as S
from surrogap.report.load import ReportParams
from surrogap.theory import bounds

P = ReportParams()


# --------------------------------------------------------------------------- calibration
def simulate(n: int, sims: int, rng: np.random.Generator, between: float, within: float):
    """Per-seed estimates of a contrast whose true value is 0: a between-seed effect plus
    each seed's own measurement noise, which the seed reports as its standard error."""
    own_se = within * rng.uniform(0.5, 1.5, size=(sims, n))
    values = between * rng.standard_normal((sims, n)) + own_se * rng.standard_normal((sims, n))
    return values, own_se


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize(("between", "within"), [(1.0, 0.1), (0.3, 1.0), (0.0, 1.0)])
def test_a_one_sided_95_percent_test_rejects_a_true_null_at_most_6_percent(n, between, within):
    rng = np.random.default_rng([20, n, int(10 * between), int(10 * within)])
    values, own_se = simulate(n, 20_000, rng, between, within)
    _, lo, hi, _ = S.t_bounds(values, own_se, 0.95)
    for reject in (hi < 0, lo > 0):  # either one-sided test
        rate = float(reject.mean())
        assert rate <= 0.06, rate
    # it is a test, not a procedure that never rejects: where the seeds' spread carries
    # the noise, its size is close to the nominal 5%
    if within <= between:
        assert float((hi < 0).mean()) >= 0.04


def test_a_percentile_bootstrap_over_three_seeds_does_not_hold_its_level():
    """The procedure the report used before (resample the seeds): the same simulation
    rejects a true null far more often than 5%, which is what the t interval fixes."""
    rng = np.random.default_rng(3)
    values, _ = simulate(3, 4000, rng, 1.0, 0.0)
    idx = rng.integers(0, 3, size=(500, 3))
    boot = values[:, idx].mean(axis=2)  # (sims, replicates)
    rate = float((np.quantile(boot, 0.95, axis=1) < 0).mean())
    assert rate > 0.15


def test_t_bounds_are_the_textbook_interval_and_the_noise_floor():
    v = np.array([1.0, 2.0, 4.0])
    mean, lo, hi, se = S.t_bounds(v, None, 0.95)
    q = sps.t.ppf(0.95, 2)
    assert se == pytest.approx(v.std(ddof=1) / math.sqrt(3))
    assert (lo, hi) == pytest.approx((mean - q * se, mean + q * se))
    # identical seeds with noisy measurements: the seeds' own standard errors set the scale
    own = np.array([0.3, 0.4, 1.2])
    _, lo, hi, se = S.t_bounds(np.ones(3), own, 0.95)
    assert se == pytest.approx(math.sqrt((own**2).sum()) / 3)
    assert lo < 1 < hi


def test_seeds_needed_is_the_t_tests_power_for_the_pre_registered_effect():
    # observed effect -0.5, but the test is sized for the effect of interest 0.5 at per-seed
    # s.d. 0.5 (d = 1), whatever the observed value: the observed one never enters. The
    # confirming test's bound must clear 0 by the rerun margin (one standard error): its
    # critical value is the t quantile plus RERUN_MARGIN_SE
    m = S.RERUN_MARGIN_SE
    assert m == 1.0
    for observed in (-0.5, +3.0, 0.0):
        est = S.Estimate(observed, math.nan, math.nan, 0.5 / math.sqrt(3), 0, n=3)
        n = S.seeds_needed(est, 0.5, 0.95, 0.8)
        crit = sps.t.ppf(0.95, n - 1) + m
        assert sps.nct.sf(crit, n - 1, math.sqrt(n)) >= 0.8
        crit = sps.t.ppf(0.95, n - 2) + m
        assert sps.nct.sf(crit, n - 2, math.sqrt(n - 1)) < 0.8
        assert n == 14
    # the power at this n: the noncentral t at d sqrt(n); d = 1, n = 3
    assert S.power_at(0.5, 0.5, 3, 0.95) == pytest.approx(
        sps.nct.sf(sps.t.ppf(0.95, 2) + m, 2, math.sqrt(3))
    )
    one = S.Estimate(-0.5, math.nan, math.nan, math.nan, 0, n=1)
    assert S.seeds_needed(one, 0.5, 0.95, 0.8) is None  # no spread: nothing to size from


@pytest.mark.parametrize(
    ("lo", "hi", "se", "expected"),
    [
        (0.02, 0.06, 0.005, "confirmed"),  # clears 0 by more than one s.e.
        (0.004, 0.04, 0.005, "fragile"),  # excludes 0, but within one s.e. of it
        (-0.03, 0.005, 0.005, "not confirmed"),  # below the effect (0.015) by more than one s.e.
        (-0.03, 0.012, 0.005, "fragile"),  # below the effect, but within one s.e. of it
        (-0.01, 0.03, 0.005, "fragile"),  # straddles 0 and reaches the effect
    ],
)
def test_a_verdict_within_one_standard_error_of_its_threshold_is_fragile(lo, hi, se, expected):
    est = S.Estimate((lo + hi) / 2, lo, hi, se, 0, n=5)
    assert S.three_way(est, +1, 0.015)[0] == expected
    # the same on the other side: a quantity that improves by falling
    assert S.three_way(S.Estimate(-est.value, -hi, -lo, se, 0, n=5), -1, 0.015)[0] == expected


def test_a_confirmed_effect_is_not_said_to_need_two_seeds():
    # the old power line took the observed effect as true: a confirmed effect far beyond
    # its spread "needed 2 seeds"; sized for the effect of interest it needs what it needs
    p = ReportParams(effect_r_mu=0.015, min_seeds=2)
    est = S.Estimate(-1.0, -1.02, -0.98, 0.01, 0, n=3)  # per-seed s.d. 0.0173
    n = S.seeds_needed(est, p.effect_r_mu, p.confidence, p.power)
    d = 0.015 / (0.01 * math.sqrt(3))
    assert sps.nct.sf(sps.t.ppf(0.95, n - 1) + 1, n - 1, d * math.sqrt(n)) >= 0.8
    assert sps.nct.sf(sps.t.ppf(0.95, n - 2) + 1, n - 2, d * math.sqrt(n - 1)) < 0.8
    assert n > 2
    text = S.needed(est, "R_mu", p)
    power = S.power_at(0.01 * math.sqrt(3), 0.015, 3, 0.95)
    assert text == f"{n} (power at n = 3: {power:.2f}, under-powered)"


# --------------------------------------------------------------------------- three-way
@pytest.mark.parametrize(
    ("lo", "hi", "direction", "status"),
    [
        (-0.030, -0.010, -1, "confirmed"),  # the bound excludes 0 on the claimed side
        (-0.010, +0.005, -1, "not confirmed"),  # straddles 0, below the effect 0.015
        (+0.010, +0.030, -1, "not confirmed"),  # wholly on the wrong side
        (-0.020, +0.005, -1, "fragile"),  # straddles 0 and reaches -0.015
        (-0.015, +0.005, -1, "fragile"),  # reaches it exactly
        (-0.005, +0.020, +1, "fragile"),  # an accuracy, claimed side +
        (-0.005, +0.010, +1, "not confirmed"),
        (+0.001, +0.004, +1, "confirmed"),  # any effect excluding 0 is confirmed
    ],
)
def test_three_way_verdict_against_the_effect_of_interest(lo, hi, direction, status):
    # a standard error far below the distances to 0 and the effect: the rerun margin
    # (test_a_verdict_within_one_standard_error_of_its_threshold_is_fragile) decides nothing
    est = S.Estimate((lo + hi) / 2, lo, hi, 1e-5, 0, n=3)
    got, why = S.three_way(est, direction, 0.015)
    assert got == status
    if status == "fragile":
        assert why == (
            f"interval {S.interval(lo, hi, 3)} straddles 0 and reaches the effect of interest "
            f"{S.signed(direction * 0.015, 3)}: a rerun can flip it"
        )
    else:
        assert why == ""


def test_a_headline_combines_parts_not_confirmed_then_fragile_then_inconclusive():
    c, n, f, i = S.CONFIRMED, S.NOT_CONFIRMED, S.FRAGILE, S.INCONCLUSIVE
    assert S.combine([c, f, n, i]) == n
    assert S.combine([c, f, i]) == f
    assert S.combine([c, i]) == i
    assert S.combine([c, c]) == c
    assert S.combine([]) == i


@pytest.mark.parametrize(
    ("lo", "hi", "want"),
    [
        (-0.0024, -0.0016, "[-0.0024, -0.0016]"),  # 3 decimals print both as -0.002
        (-0.027, -0.005, "[-0.027, -0.005]"),
        (0.15, 0.25, "[+0.150, +0.250]"),
        (-0.000123, -0.000121, "[-0.000123, -0.000121]"),
    ],
)
def test_an_interval_prints_bounds_that_differ(lo, hi, want):
    assert S.interval(lo, hi, 3) == want


# --------------------------------------------------------------------------- Claim 5
UNTRAINED = {1: 0.695, 4: 1.613, 16: 2.837, 64: 4.175}  # R_cont of an untrained encoder


def untrained(seeds=range(3), noise: float = 0.003) -> pd.DataFrame:
    """C = 20, R_mu flat at 2.991 (the encoder does not change with K), R_cont rising as
    more negatives make it larger: the gap falls with log K mechanically."""
    r = table(lambda k, s: 2.991, lambda k, s: 0.3, seeds=seeds)
    rng = np.random.default_rng(5)
    r["supervised_loss"] = 2.991 + noise * rng.standard_normal(len(r))
    r["contrastive_loss"] = r["k"].map(UNTRAINED) + noise * rng.standard_normal(len(r))
    r["contrastive_loss_se"] = 0.002
    r["bao_lower"] = r["contrastive_loss"] + r["lower_gap"]
    r["bao_upper"] = r["contrastive_loss"] + r["upper_gap"]
    return r


@pytest.mark.parametrize("seeds", [range(3), range(8)])
def test_an_untrained_encoders_gap_is_not_confirmed_to_decay(seeds):
    r = untrained(seeds)
    gap = (r["supervised_loss"] - r["contrastive_loss"]).groupby(r["k"]).mean().loc[list(KS)]
    assert np.polyfit(np.log(KS), gap.to_numpy(), 1)[0] == pytest.approx(-0.84, abs=0.01)
    c5 = claim(CL.claims(r, no_traj(), P, null=make_null(r)), 5)
    assert c5.status == "not confirmed"
    line, rate, _ = c5.details
    # the gap falls, but no faster than the fixed encoder's: as mechanics say
    assert "decays beyond the fixed encoder not confirmed" in line
    # -0.84 lies between Delta_U's -1 and Delta_L's -0.683: the rate the theorem implies,
    # reached by a fixed encoder too (why the rate is no evidence of learning)
    assert "between Delta_U's and Delta_L's rates confirmed" in rate
    assert "the interval inside [Delta_U's, Delta_L's] slopes" in rate
    assert "not confirmed on 1/1 data families" in c5.text


def test_a_trained_encoder_beats_the_null_and_the_rate_is_its_own_verdict():
    r = untrained()
    r["supervised_loss"] = r["supervised_loss"] - 0.05 * np.log(r["k"])  # R_mu improves
    c5 = claim(CL.claims(r, no_traj(), P, null=make_null(r)), 5)
    assert c5.status == "confirmed"
    line, rate, _ = c5.details
    # the fixed encoder keeps K = 1's R_mu: the gap beyond it is R_mu's slope, -0.05
    assert "decays beyond the fixed encoder confirmed" in line
    assert "minus the gap of the smallest-K encoder held fixed, slope -0.050" in line
    assert "between Delta_U's and Delta_L's rates confirmed" in rate  # -0.89


def test_without_a_fixed_encoder_null_the_decay_is_inconclusive():
    r = untrained()
    c5 = claim(CL.claims(r, no_traj(), P), 5)
    assert c5.status == "inconclusive"
    (v,) = [v for v in c5.verdicts if v.test == "decays beyond the fixed encoder"]
    assert v.status == "inconclusive" and "no fixed-encoder null" in v.reason


def test_a_small_decay_beyond_the_fixed_encoder_with_noisy_seeds_is_fragile():
    # R_mu falls at -0.03, -0.01, +0.01 per unit log K on the three seeds: mean -0.01, s.e.
    # 0.02 / sqrt(3), one-sided 95% bounds -0.01 -+ 2.92 s.e. = [-0.044, +0.024]: the
    # interval straddles 0 and reaches the effect of interest -0.015
    r = untrained(noise=0.0)
    per_seed = {0: -0.03, 1: -0.01, 2: +0.01}
    r["supervised_loss"] = r["supervised_loss"] + r["seed"].map(per_seed) * np.log(r["k"])
    c5 = claim(CL.claims(r, no_traj(), P, null=make_null(r)), 5)
    (v,) = [v for v in c5.verdicts if v.test == "decays beyond the fixed encoder"]
    assert v.status == "fragile"
    assert v.reason == (
        "interval [-0.044, +0.024] straddles 0 and reaches the effect of interest -0.015: "
        "a rerun can flip it"
    )
    assert c5.status == "fragile"


@pytest.mark.parametrize(
    ("times", "verdict", "where"),
    [
        (1.0, "inconclusive", "straddles an end"),  # at Delta_U's slope: the range's end
        (0.85, "confirmed", "inside [Delta_U's, Delta_L's]"),  # -0.85: between -1 and -0.683
        (1.5, "not confirmed", "wholly outside"),  # falls faster than Delta_U
        (0.3, "not confirmed", "wholly outside"),  # slower than Delta_L
    ],
)
def test_the_rate_is_tested_between_delta_us_and_delta_ls_slopes(times, verdict, where):
    # the theorem puts the gap between Delta_L and Delta_U at every K: its slope in log K
    # is tested against the range of theirs (no tuned margin), not against Delta_U's alone
    r = table(lambda k, s: 4.5 + 0.3 / math.sqrt(k) + 0.01 * s, lambda k, s: 0.8)
    up = r["k"].map(lambda k: bounds.upper_gap(k, 20))
    r["contrastive_loss"] = r["supervised_loss"] - times * up + 0.01
    rate = claim(CL.claims(r, no_traj(), P, points=points(r)), 5).details[1]
    assert f"between Delta_U's and Delta_L's rates {verdict}:" in rate and where in rate
    assert f"ratio to Delta_U's {times:.2f}" in rate


# --------------------------------------------------------------------------- Claim 3
def test_only_one_of_three_metrics_improving_is_named_in_the_headline():
    r = table(lambda k, s: 3.0 + 0.01 * s, lambda k, s: 0.7 + 0.005 * s)  # flat R_mu, flat acc
    r["linear_acc"] = (
        0.5 + 0.2 * (1 - 1 / np.sqrt(r["k"])) + 0.005 * r["seed"]
    )  # only the linear probe improves and saturates
    c3 = claim(CL.claims(r, no_traj(), P, points=points(r)), 3)
    assert c3.status == "not confirmed"
    assert "confirmed on linear-probe accuracy only, not on R_mu and mean-classifier accuracy" in (
        c3.text
    )
    assert (
        "linear-probe accuracy confirmed (improves: confirmed on 1/1 data families; "
        "saturates: confirmed on 1/1 data families)" in c3.text
    )
    assert "R_mu not confirmed" in c3.text


def test_datasets_that_share_their_draws_count_as_one_family():
    parts = []
    for ds, c in (("topics_c5", 5), ("topics_c20", 20)):
        part = table(
            lambda k, s: 2.0 + 0.5 / math.sqrt(k) + 0.01 * s,
            lambda k, s: 0.6 + 0.2 * (1 - 1 / math.sqrt(k)) + 0.005 * s,
            c=c,
            dataset=ds,
        )
        part["kind"] = "topics"
        parts.append(part)
    circle = table(lambda k, s: 3.0 + 0.01 * s, lambda k, s: 0.7 + 0.005 * s, dataset="ring")
    r = pd.concat([*parts, circle], ignore_index=True)
    assert S.data_families(r) == {"topics": ["topics_c5", "topics_c20"], "ring": ["ring"]}
    c3 = claim(CL.claims(r, no_traj(), P, points=points(r)), 3)
    assert (
        "R_mu not confirmed (improves: confirmed on 1/2, not confirmed on 1/2 data families"
        in c3.text
    )
    assert (
        "topics_c5, topics_c20 (generated topics, a stand-in for Wiki-3029; one data family: "
        "the same (seed, topic) draws)" in c3.text
    )
    assert "ring (generated 2-D data)" in c3.text
    assert any(line.startswith("n = 5 seeds; power: ") for line in c3.details)


def test_vacuity_is_judged_per_seed():
    r = table(lambda k, s: 2.0 + 0.5 / math.sqrt(k), lambda k, s: 0.7, c=20)
    c = math.log(20)
    at64 = r.index[r["k"] == 64]
    r.loc[at64, "bao_upper"] = [c + 0.01, c + 0.02, c - 0.01, c - 0.02, c - 0.03]  # mean < log C
    assert r.loc[at64, "bao_upper"].mean() < c
    line = claim(CL.claims(r, no_traj(), P), 2).details[0]
    assert "2/5 seeds at K = 64" in line
    assert "yet below log(1 + (C - 1) e^2) = 4.952, the largest R_mu possible at b = 1" in line
    assert bounds.max_supervised_loss(20) == pytest.approx(math.log(1 + 19 * math.e**2))


def test_a_spread_of_rounding_noise_has_full_power():
    # identical seeds give a standard error of rounding noise (1e-17): the noncentral t
    # would return NaN there; the power is 1 and two seeds suffice
    est = S.Estimate(-0.1, -0.1, -0.1, 7e-18, 0.0, n=5)
    assert S.seeds_needed(est, 0.015, 0.95, 0.8) == 2
    assert S.power_of(est, "R_mu", P) == 1.0
    assert S.interval(-0.10369370606389426, -0.10369370606389423, 3) == "[-0.104, -0.104]"


def test_the_tables_say_fragile_with_the_reason_and_give_the_slack():
    from surrogap.report import front

    r = untrained(noise=0.0)
    per_seed = {0: -0.03, 1: -0.01, 2: +0.01}  # as the fragile test above
    r["supervised_loss"] = r["supervised_loss"] + r["seed"].map(per_seed) * np.log(r["k"])
    r["bao_upper"] = r["contrastive_loss"] + r["upper_gap"]
    items = CL.claims(r, no_traj(), P, null=make_null(r))
    table = front.trend_table("d", items, {}, P, r)
    (row,) = [x for x in table if x.startswith("| gap minus the fixed encoder's |")]
    assert "decays beyond the fixed encoder: fragile" in row
    assert "interval [-0.044, +0.024] straddles 0 and reaches the effect of interest -0.015" in row
    (slack,) = [x for x in table if x.startswith("| slack (Bao's upper bound - R_mu) |")]
    assert "descriptive (no verdict)" in slack
    means = (r["bao_upper"] - r["supervised_loss"]).groupby(r["k"]).mean().loc[list(KS)]
    want = np.polyfit(np.log(KS), means.to_numpy(), 1)[0]
    assert f"| {want:+.3f} [" in slack
    cells = front.claim_table(items, r, "figures")
    (c5,) = [x for x in cells if x.startswith("| 5. ")]
    assert "**fragile**" in c5
    assert (
        "fragile: gap minus the fixed encoder's: decays beyond the fixed encoder (1/1 families; "
        "d: interval [-0.044, +0.024] straddles 0 and reaches the effect of interest -0.015: a "
        "rerun can flip it)" in c5
    )
