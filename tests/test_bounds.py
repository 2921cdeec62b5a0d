"""Tests of surrogap.theory.bounds against oracles written naively from docs/THEORY.md
(bounds_oracles.py): exact binomial sums, brute-force coverage, exact inclusion-exclusion,
the plain recursion, exact harmonic numbers; then closed forms, invariants and numerical
stability at C ~ 10^4, K ~ 10^5. The two-sided bound on random features, bad input and
every size: test_bounds_edges.py.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from bounds_oracles import (
    FUNCTIONS_OF_K,
    arora_naive,
    ash_naive,
    close,
    col_naive,
    coverage_brute,
    coverage_float,
    coverage_recursion,
    harmonic_exact,
    log_cosh,
    log_coverage_exact,
    lower_gap_naive,
    nozawa_sato_naive,
    one_minus_tau_naive,
    r_cont_star_naive,
    r_mu_star_naive,
    upper_gap_naive,
)

from surrogap.theory import bounds as B

FLOAT_MAX_LOG = math.log(np.finfo(np.float64).max)


# --------------------------------------------------------------------------- oracles: ideal values
@pytest.mark.parametrize("c", [2, 3, 10, 100])
@pytest.mark.parametrize("k", [1, 2, 7, 50, 300])
@pytest.mark.parametrize("b", [0.5, 1.0, 2.0])
def test_optimal_contrastive_loss_matches_binomial_sum(k, c, b):
    assert close(B.optimal_contrastive_loss(k, c, b), r_cont_star_naive(k, c, b), rel=1e-12)


@pytest.mark.parametrize("c", [2, 3, 10, 100, 3029])
@pytest.mark.parametrize("k", [1, 4, 99, 500])
def test_collision_term_matches_binomial_sum(k, c):
    assert close(B.collision_term(k, c), col_naive(k, c), rel=1e-12, abs_=1e-15)


@pytest.mark.parametrize("c", [2, 5, 50, 100, 10_000])
@pytest.mark.parametrize("b", [0.3, 1.0, 3.0])
def test_optimal_supervised_loss_formula(c, b):
    assert close(B.optimal_supervised_loss(c, b), r_mu_star_naive(c, b), rel=1e-14)


def test_ideal_losses_at_b1_paper_values():
    # R_mu*(C, 1) = log(1 + (C - 1) e^{-2}) and R_cont*(1, C, 1) by hand for C = 2
    assert B.optimal_supervised_loss(2) == pytest.approx(math.log1p(math.exp(-2)), rel=1e-15)
    by_hand = 0.5 * math.log(2.0) + 0.5 * math.log1p(math.exp(-2.0))
    assert B.optimal_contrastive_loss(1, 2) == pytest.approx(by_hand, rel=1e-14)


# --------------------------------------------------------------------------- oracles: coverage
@pytest.mark.parametrize("c", [2, 3, 4])
def test_coverage_matches_brute_force_enumeration(c):
    n = np.arange(0, 8)
    got = B.coverage_probability(n, c)
    for i, nn in enumerate(n):
        want = coverage_brute(int(nn), c)
        assert got[i] == pytest.approx(float(want), rel=1e-13, abs=0.0), (c, nn)


@pytest.mark.parametrize(("c", "n_max"), [(5, 40), (37, 200), (120, 700)])
def test_coverage_matches_plain_recursion(c, n_max):
    n = np.arange(1, n_max + 1)
    got = B.coverage_probability(n, c)
    for nn in (c - 1, c, c + 1, (c + n_max) // 2, n_max):
        assert got[nn - 1] == pytest.approx(coverage_recursion(nn, c), rel=1e-11, abs=0.0)


@pytest.mark.parametrize(
    ("c", "n"),
    [(50, 60), (50, 200), (300, 301), (300, 900), (1000, 1000), (1000, 1050), (1000, 3000)],
)
def test_log_coverage_matches_exact_inclusion_exclusion(c, n):
    # v_n is as small as e^-990 here: the log form must keep its relative precision
    want = log_coverage_exact(n, c)
    got = B.log_coverage_probability(n, c)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_coverage_vectorized_over_n_equals_pointwise():
    c = 23
    ns = np.array([0, 5, 22, 23, 24, 60, 200, 61])
    together = B.coverage_probability(ns, c)
    for i, nn in enumerate(ns):
        assert together[i] == B.coverage_probability(int(nn), c)
    assert together.shape == ns.shape
    assert isinstance(B.coverage_probability(30, c), float)


# --------------------------------------------------------------------------- oracles: harmonic
@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 99, 1000, 3028, 9999])
def test_harmonic_number_exact(n):
    want = float(harmonic_exact(n))
    # within one ulp of the exact value (correct rounding is tested below)
    assert abs(B.harmonic_number(n) - want) <= math.ulp(want)
    assert isinstance(B.harmonic_number(np.int64(n)), float)


@pytest.mark.parametrize("n", [19, 3028])
def test_harmonic_number_correctly_rounded(n):
    assert B.harmonic_number(n) == float(harmonic_exact(n))


# --------------------------------------------------------------------------- oracles: gaps and earlier bounds
PRIORS = [
    [0.5, 0.3, 0.2],
    [0.1, 0.2, 0.3, 0.4],
    [0.05] + [0.95 / 9] * 9,
]


@pytest.mark.parametrize("c", [2, 3, 10, 100, 3029])
@pytest.mark.parametrize("k", [1, 2, 9, 64, 1024])
@pytest.mark.parametrize("b", [0.5, 1.0, 1.7])
def test_gaps_uniform_match_formulas(k, c, b):
    assert close(B.upper_gap(k, c, b=b), upper_gap_naive(k, c, b=b))
    assert close(B.lower_gap(k, c, b=b), lower_gap_naive(k, c, b=b))


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("k", [1, 3, 16, 256])
@pytest.mark.parametrize("b", [0.5, 1.0])
def test_gaps_prior_match_the_tightest_forms(prior, k, b):
    assert close(B.upper_gap(k, prior=prior, b=b), upper_gap_naive(k, prior=prior, b=b))
    assert close(B.lower_gap(k, prior=prior, b=b), lower_gap_naive(k, prior=prior, b=b))
    # num_classes may be given alongside when it agrees
    assert B.upper_gap(k, len(prior), prior, b) == B.upper_gap(k, prior=prior, b=b)


def test_prior_gaps_take_each_family_where_it_is_tighter():
    lc = 2 * log_cosh(1.0)
    # pi_max pi_min C^2 < 1: the paper's upper form is the smaller
    skewed = [0.9, 0.05, 0.05]
    assert B.upper_gap(4, prior=skewed) == pytest.approx(math.log(0.9 * 9 / 4) + lc, rel=1e-14)
    # pi_max pi_min C^2 > 1: the derived one is
    flat = [0.36, 0.32, 0.32]
    assert B.upper_gap(4, prior=flat) == pytest.approx(lc - math.log(4 * 0.32), rel=1e-14)
    # lower: derived at K = 1 for C = 2, the paper's (entropy) form at large K
    two = [0.6, 0.4]
    assert B.lower_gap(1, prior=two) == pytest.approx(-lc - math.log(1.6), rel=1e-14)
    h = -(0.6 * math.log(0.6) + 0.4 * math.log(0.4))
    want = h + math.log(1000) - 2 * math.log(1001) - lc
    assert B.lower_gap(1000, prior=two) == pytest.approx(want, rel=1e-14)


def test_lower_gap_uniform_uses_the_larger_form():
    # C = 2: the derived form is the larger; C >= 3: the paper's (docs/THEORY.md)
    lc = 2 * log_cosh(1.0)
    for k in (1, 5, 50):
        derived2 = -lc - math.log1p(k / 2)
        assert B.lower_gap(k, 2) == pytest.approx(derived2, rel=1e-14)
        for c in (3, 10, 100):
            paper = math.log(c) + math.log(k) - 2 * math.log(k + 1) - lc
            assert B.lower_gap(k, c) == pytest.approx(paper, rel=1e-14, abs=1e-15)


@pytest.mark.parametrize(
    ("c", "k"),
    [(2, 1), (2, 40), (3, 1), (3, 2), (4, 2), (4, 3), (4, 6), (10, 8), (10, 9), (10, 99)],
)
@pytest.mark.parametrize("loss", [0.4, 2.0, 7.5])
def test_earlier_bounds_match_naive(c, k, loss):
    assert close(B.arora_bound(loss, k, c), arora_naive(loss, k, c), rel=1e-11)
    assert close(B.nozawa_sato_bound(loss, k, c), nozawa_sato_naive(loss, k, c), rel=1e-11)
    assert close(B.ash_bound(loss, k, c), ash_naive(loss, k, c), rel=1e-11)


@pytest.mark.parametrize(("c", "k"), [(3, 1), (3, 5), (10, 8), (10, 9), (10, 30)])
def test_bao_bounds_and_coefficients(c, k):
    loss = 1.3
    assert B.bao_upper_bound(loss, k, c) == pytest.approx(loss + upper_gap_naive(k, c), rel=1e-14)
    assert B.bao_lower_bound(loss, k, c) == pytest.approx(loss + lower_gap_naive(k, c), rel=1e-14)
    coef = B.loss_coefficients(k, c)
    assert set(coef) == {"bao", "arora", "nozawa_sato", "ash"}
    assert float(coef["bao"]) == 1.0
    h = float(harmonic_exact(c - 1))
    omt, v = one_minus_tau_naive(k, c), coverage_float(k + 1, c)
    want = {
        "arora": 1 / (omt * v) if k + 1 >= c else math.nan,
        "nozawa_sato": 2 / v if k + 1 >= c else math.nan,
        "ash": 2 * max(1.0, 2 * (c - 1) * h / k) / omt,
    }
    for name, fn in (
        ("arora", B.arora_bound),
        ("nozawa_sato", B.nozawa_sato_bound),
        ("ash", B.ash_bound),
    ):
        assert close(float(coef[name]), want[name], rel=1e-11), name
        # every earlier bound is affine in L with the reported coefficient
        slope = fn(loss + 1.0, k, c) - fn(loss, k, c)
        assert close(slope, want[name], rel=1e-9), name


# --------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("c", [2, 3, 7, 50, 1000, 10_000])
def test_coverage_closed_forms(c):
    ns = np.array([0, 1, c - 1, c, c + 1, c + 2])
    log_v = B.log_coverage_probability(ns, c)
    assert np.all(np.isneginf(log_v[:3]))
    assert np.all(B.coverage_probability(ns[:3], c) == 0.0)
    lg = math.lgamma(c + 1)
    # v_C = C!/C^C; v_{C+1} = C! C(C+1)/2 / C^{C+1}; v_{C+2} = C! (binom(C+2,3) + 3 binom(C+2,4)) / C^{C+2}
    want = [
        lg - c * math.log(c),
        lg + math.log(c * (c + 1) / 2) - (c + 1) * math.log(c),
        lg + math.log(math.comb(c + 2, 3) + 3 * math.comb(c + 2, 4)) - (c + 2) * math.log(c),
    ]
    assert log_v[3:] == pytest.approx(want, rel=1e-12)
    if c <= 100:
        assert B.coverage_probability(c, c) == pytest.approx(math.factorial(c) / c**c, rel=1e-12)


@pytest.mark.parametrize("c", [2, 3, 10, 3029])
@pytest.mark.parametrize("k", [1, 2, 17, 500])
def test_collision_probability_closed_form(c, k):
    want = 1.0 - float(Fraction(c - 1, c) ** k)
    assert B.collision_probability(k, c) == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("c", [3, 10])
def test_uniform_prior_vector_equals_num_classes(c):
    ks = np.array([1, 2, 5, 50])
    prior = [1.0 / c] * c
    np.testing.assert_array_equal(B.upper_gap(ks, prior=prior), B.upper_gap(ks, c))
    np.testing.assert_array_equal(B.lower_gap(ks, prior=prior), B.lower_gap(ks, c))
    np.testing.assert_array_equal(
        B.bao_lower_bound(2.0, ks, prior=prior), B.bao_lower_bound(2.0, ks, c)
    )
    # within the tolerance 1e-9 it still counts as uniform (the paper's Delta_L applies)
    wobbly = np.full(c, 1.0 / c)
    wobbly[0] += 1e-12
    wobbly[1] -= 1e-12
    np.testing.assert_allclose(B.lower_gap(ks, prior=wobbly), B.lower_gap(ks, c), rtol=1e-14)


@pytest.mark.parametrize("name", sorted(FUNCTIONS_OF_K))
def test_scalar_and_array_k_agree(name):
    fn = FUNCTIONS_OF_K[name]
    ks = np.array([1, 2, 8, 9, 10, 40, 99])
    arr = fn(ks)
    assert isinstance(arr, np.ndarray) and arr.shape == ks.shape
    for i, kk in enumerate(ks):
        scalar = fn(int(kk))
        assert isinstance(scalar, float)
        assert close(scalar, float(arr[i]), rel=1e-15, abs_=0.0)
    # a 2-D K keeps its shape, a list behaves as an array, a float integer as an integer
    grid = ks[:6].reshape(2, 3)
    np.testing.assert_array_equal(fn(grid), arr[:6].reshape(2, 3))
    np.testing.assert_array_equal(fn(ks.tolist()), arr)
    assert close(fn(9.0), float(arr[3]), rel=0.0, abs_=0.0)


def test_loss_coefficients_vectorized():
    ks = np.arange(1, 30)
    coef = B.loss_coefficients(ks, 10)
    for name, values in coef.items():
        assert values.shape == ks.shape, name
    for i, kk in enumerate(ks):
        one = B.loss_coefficients(int(kk), 10)
        for name in coef:
            assert close(float(np.asarray(one[name])), float(coef[name][i]), rel=1e-15, abs_=0.0)


def test_loss_array_broadcasts_with_k():
    ks = np.array([9, 10, 20])
    losses = np.array([2.0, 3.0, 4.0])
    got = B.arora_bound(losses, ks, 10)
    for i in range(3):
        assert got[i] == B.arora_bound(float(losses[i]), int(ks[i]), 10)


# --------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("c", [2, 3, 10, 100, 3029])
@pytest.mark.parametrize("b", [0.5, 1.0, 2.0])
def test_gaps_decrease_in_k_and_lower_below_upper(c, b):
    ks = np.arange(1, 2001)
    up = B.upper_gap(ks, c, b=b)
    lo = B.lower_gap(ks, c, b=b)
    assert np.all(np.diff(up) < 0)
    assert np.all(np.diff(lo) < 0)
    assert np.all(lo < up)
    # the band's width is 4 log cosh(b^2) + 2 log((K+1)/K) where the paper's Delta_L wins
    if c >= 3:
        width = 4 * np.log(np.cosh(b * b)) + 2 * np.log((ks + 1) / ks)
        np.testing.assert_allclose(up - lo, width, rtol=1e-12)


@pytest.mark.parametrize("prior", PRIORS)
def test_prior_gaps_decrease_and_are_ordered(prior):
    ks = np.arange(1, 500)
    up = B.upper_gap(ks, prior=prior)
    lo = B.lower_gap(ks, prior=prior)
    assert np.all(np.diff(up) < 0) and np.all(np.diff(lo) < 0) and np.all(lo < up)
    # a non-uniform prior only widens the band compared with the uniform one
    c = len(prior)
    assert np.all(up >= B.upper_gap(ks, c)) and np.all(lo <= B.lower_gap(ks, c))


@pytest.mark.parametrize("c", [2, 3, 5, 10, 31])
def test_earlier_bounds_nan_exactly_where_undefined(c):
    ks = np.arange(1, 3 * c + 5)
    undefined = ks + 1 < c
    for fn in (B.arora_bound, B.nozawa_sato_bound):
        values = fn(4.0, ks, c)
        assert np.array_equal(np.isnan(values), undefined), fn.__name__
    coef = B.loss_coefficients(ks, c)
    assert np.array_equal(np.isnan(coef["arora"]), undefined)
    assert np.array_equal(np.isnan(coef["nozawa_sato"]), undefined)
    # Ash and Bao are defined for every K
    assert not np.isnan(B.ash_bound(4.0, ks, c)).any()
    assert not np.isnan(coef["ash"]).any()
    assert not np.isnan(B.bao_upper_bound(4.0, ks, c)).any()


def test_coefficients_blow_up_toward_k_equal_c_minus_1():
    c = 10
    ks = np.arange(c - 1, 200)
    coef = B.loss_coefficients(ks, c)
    # huge at K + 1 = C (v_C = C!/C^C), then falling; Nozawa-Sato's 2 / v_{K+1} keeps falling
    # toward 2, Arora's 1 / ((1 - tau_K) v_{K+1}) turns up again as (1 - 1/C)^-K grows
    assert np.all(np.diff(coef["nozawa_sato"]) < 0)
    assert coef["nozawa_sato"][-1] == pytest.approx(2.0, rel=1e-6)
    assert np.all(np.diff(coef["arora"][:5]) < 0) and np.all(np.diff(coef["arora"][-50:]) > 0)
    assert coef["nozawa_sato"][0] == pytest.approx(2 * c**c / math.factorial(c), rel=1e-12)
    assert np.all(coef["arora"] > 1) and np.all(coef["nozawa_sato"] > 1) and np.all(coef["ash"] > 1)


def test_stability_large_c_and_k():
    """C = 10^4, K up to 10^5: no NaN where defined, inf only where truly beyond float max."""
    c = 10_000
    ks = np.array([1, 10, 1000, c - 2, c - 1, c, c + 1, 15_000, 30_000, 50_000, 100_000])
    loss = 12.0
    log_v = B.log_coverage_probability(ks + 1, c)
    assert np.all(log_v <= 0.0) and not np.isnan(log_v).any()
    assert np.array_equal(np.isneginf(log_v), ks + 1 < c)  # v_n = 0 exactly for n < C
    assert np.all(np.diff(log_v[ks + 1 >= c]) > 0)  # v_n increases in n from n = C on
    # closed forms at the edge of the range: K + 1 = C and C + 1 (v_C = C!/C^C etc.)
    lg = math.lgamma(c + 1)
    assert log_v[4] == pytest.approx(lg - c * math.log(c), rel=1e-12)
    assert log_v[5] == pytest.approx(
        lg + math.log(c * (c + 1) / 2) - (c + 1) * math.log(c), rel=1e-12
    )
    v = B.coverage_probability(ks + 1, c)
    assert np.all((v >= 0) & (v <= 1))
    # near 1 for n = 10^5 + 1: inclusion-exclusion converges quickly there (terms < 1)
    n = 100_001
    terms = [
        (-1) ** i
        * math.exp(
            math.lgamma(c + 1)
            - math.lgamma(i + 1)
            - math.lgamma(c - i + 1)
            + n * math.log1p(-i / c)
        )
        for i in range(60)
    ]
    assert v[-1] == pytest.approx(math.fsum(terms), rel=1e-11)

    col = B.collision_term(ks, c)
    omt_log = ks * math.log1p(-1.0 / c)
    tau = B.collision_probability(ks, c)
    assert np.all((tau > 0) & (tau <= 1)) and np.all(np.isfinite(col)) and np.all(col >= 0)
    # each call reruns the O(max(K) C) recursion, which log_v above ran up to K = 10^5:
    # to keep the test short, the two bounds that use it see K <= 3 10^4
    upto = 9
    for fn, numer, log_extra in (
        (B.arora_bound, loss - col, -omt_log),
        (B.nozawa_sato_bound, 2 * loss - col, np.zeros(ks.shape)),
    ):
        values = fn(loss, ks[:upto], c)
        defined = ks[:upto] + 1 >= c
        assert np.array_equal(np.isnan(values), ~defined)
        log_true = (np.log(numer) + log_extra - log_v)[:upto]
        for i in np.nonzero(defined)[0]:
            if log_true[i] < FLOAT_MAX_LOG - 1:
                assert np.isfinite(values[i]) and values[i] > 0
                assert math.log(values[i]) == pytest.approx(log_true[i], rel=1e-10, abs=1e-10)
            elif log_true[i] > FLOAT_MAX_LOG + 1:
                assert values[i] == math.inf
    ash = B.ash_bound(loss, ks, c)
    assert np.all(np.isfinite(ash)) and np.all(ash > 0)
    for fn in (B.upper_gap, B.lower_gap, B.optimal_contrastive_loss):
        assert np.all(np.isfinite(fn(ks, c)))
    r = B.optimal_contrastive_loss(ks, c)
    assert np.all(np.diff(r) > 0)  # more negatives, larger ideal loss


@pytest.mark.parametrize("k", [100, 500, 1000, 1020, 1022, 1024, 1030, 2000])
def test_one_minus_tau_without_cancellation_small_c(k):
    """C = 2: tau_K rounds to 1 long before (1/2)^K underflows; the Ash bound stays exact."""
    c, loss = 2, 12.0
    col = col_naive(k, c) if k <= 1000 else float(B.collision_term(k, c))
    log_true = math.log(2.0) + math.log(max(1.0, 2.0 * (c - 1) * 1.0 / k)) + k * math.log(2.0)
    log_true += math.log(loss - col)
    got = B.ash_bound(loss, k, c)
    if log_true < FLOAT_MAX_LOG - 1e-9:
        assert math.isfinite(got) and got > 0
        assert math.log(got) == pytest.approx(log_true, rel=1e-12)
    else:  # the documented behaviour: +inf only where the value itself exceeds float64
        assert got == math.inf
    coef = float(B.loss_coefficients(k, c)["ash"])
    assert math.isinf(coef) == (log_true - math.log(loss - col) > FLOAT_MAX_LOG)
    assert 1.0 - B.collision_probability(k, c) == 0.0 or k < 60  # why 1 - tau must not be used


def test_ash_bound_at_c2_k2000_is_inf_not_nan():
    with np.errstate(divide="raise", invalid="raise"):
        value = B.ash_bound(10.0, 2000, 2)
    assert value == math.inf  # 2 * 2^2000 * (L - Col) > float max: truly beyond
