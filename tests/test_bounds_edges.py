"""Tests of surrogap.theory.bounds at its edges: the two-sided bound itself on random finite
feature sets on the unit sphere (R_mu exact, R_cont by Monte Carlo, and exact for K = 1 to
validate the estimator), bad input named in one line, and every size answered (no hangs;
each form of the coverage probability against the recursion and exact arithmetic).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from bounds_oracles import (
    FUNCTIONS_OF_K,
    col_naive,
    harmonic_exact,
    log_cosh,
)

from surrogap.theory import bounds as B
from surrogap.theory import records
from surrogap.theory import special as S


# --------------------------------------------------------------------------- the two-sided bound on random features
def make_features(rng, num_classes, dim, concentration):
    """Finite class-conditional sets of unit vectors: class c is uniform over its set."""
    sets = []
    for _ in range(num_classes):
        center = rng.normal(size=dim)
        center /= np.linalg.norm(center)
        size = int(rng.integers(2, 7))
        pts = concentration * center + rng.normal(size=(size, dim))
        sets.append(pts / np.linalg.norm(pts, axis=1, keepdims=True))
    return sets


def r_mu_exact(sets, prior):
    means = np.stack([s.mean(axis=0) for s in sets])
    total = 0.0
    for c, s in enumerate(sets):
        logits = s @ means.T
        ce = np.logaddexp.reduce(logits, axis=1) - logits[:, c]
        total += prior[c] * ce.mean()
    return float(total)


def flatten(sets):
    points = np.concatenate(sets)
    sizes = np.array([len(s) for s in sets])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return points, sizes, offsets


def r_cont_monte_carlo(rng, sets, prior, k, samples):
    points, sizes, offsets = flatten(sets)
    gram = points @ points.T

    def draw(classes):
        return offsets[classes] + np.floor(rng.random(classes.shape) * sizes[classes]).astype(int)

    c = rng.choice(len(sets), size=samples, p=prior)
    anchor, positive = draw(c), draw(c)
    neg = draw(rng.choice(len(sets), size=(samples, k), p=prior))
    s_pos = gram[anchor, positive]
    s_all = np.concatenate([s_pos[:, None], gram[anchor[:, None], neg]], axis=1)
    losses = np.logaddexp.reduce(s_all, axis=1) - s_pos
    return float(losses.mean()), float(losses.std(ddof=1) / math.sqrt(samples))


def r_cont_exact_k1(sets, prior):
    """Exact E over (anchor class, anchor, positive, negative class, negative) for K = 1."""
    points, sizes, _ = flatten(sets)
    gram = points @ points.T
    labels = np.repeat(np.arange(len(sets)), sizes)
    weight = np.asarray(prior)[labels] / sizes[labels]  # P(a point) under c ~ prior, x ~ D_c
    total = 0.0
    for a in range(len(points)):
        same = np.nonzero(labels == labels[a])[0]
        s_pos = gram[a, same][:, None]  # positive over the anchor's class
        s_neg = gram[a][None, :]  # negative over every point
        loss = np.logaddexp(s_pos, s_neg) - s_pos
        total += weight[a] * ((1.0 / len(same)) * loss.sum(axis=0) @ weight)
    return float(total)


def skewed_prior(num_classes):
    p = 0.5 ** np.arange(num_classes) + 0.05
    return p / p.sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monte_carlo_matches_exact_r_cont_for_k1(seed):
    rng = np.random.default_rng(seed)
    sets = make_features(rng, 4, 5, 1.5)
    prior = skewed_prior(4)
    mean, se = r_cont_monte_carlo(rng, sets, prior, 1, 200_000)
    exact = r_cont_exact_k1(sets, prior)
    assert abs(mean - exact) < 5 * se + 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("num_classes", [3, 4, 6])
@pytest.mark.parametrize("prior_kind", ["uniform", "skewed"])
def test_two_sided_bound_holds_on_random_unit_features(seed, num_classes, prior_kind):
    rng = np.random.default_rng(1000 * seed + num_classes)
    concentration = [0.3, 1.0, 3.0, 8.0][seed]
    sets = make_features(rng, num_classes, 4, concentration)
    prior = (
        np.full(num_classes, 1.0 / num_classes)
        if prior_kind == "uniform"
        else skewed_prior(num_classes)
    )
    r_mu = r_mu_exact(sets, prior)
    for k in (1, 2, 5, 10):
        r_cont, se = r_cont_monte_carlo(rng, sets, prior, k, 60_000)
        tol = 5 * se + 1e-12
        if prior_kind == "uniform":
            lo, up = B.lower_gap(k, num_classes), B.upper_gap(k, num_classes)
        else:
            lo, up = B.lower_gap(k, prior=prior), B.upper_gap(k, prior=prior)
        assert r_cont + lo <= r_mu + tol, (k, r_cont, lo, r_mu)
        assert r_mu <= r_cont + up + tol, (k, r_cont, up, r_mu)


def test_two_sided_bound_holds_for_the_ideal_encoder():
    for c in (2, 3, 10, 100):
        r_mu = B.optimal_supervised_loss(c)
        ks = np.arange(1, 200)
        r_cont = B.optimal_contrastive_loss(ks, c)
        assert np.all(r_cont + B.lower_gap(ks, c) <= r_mu)
        assert np.all(r_mu <= r_cont + B.upper_gap(ks, c))


# --------------------------------------------------------------------------- bad input
BAD_K = [
    0,
    -3,
    2.5,
    float("nan"),
    True,
    "3",
    [1, 0],
    np.array([1.0, 2.5]),
    [1, 10**31],
    np.array([B.MAX_K + 1]),
]


@pytest.mark.parametrize("name", sorted(FUNCTIONS_OF_K))
@pytest.mark.parametrize("k", [0, -3, 2.5, B.MAX_K + 1, 10**30])
def test_bad_k_names_the_value(name, k):
    # the value may be shown as Python (2.5) or numpy (np.float64(2.5)) renders it
    allowed = re.escape(B.K_ALLOWED)
    named = rf"k must be {allowed}, got (np\.\w+\()?{re.escape(repr(k))}\b"
    with pytest.raises(ValueError, match=named):
        FUNCTIONS_OF_K[name](k)


@pytest.mark.parametrize("k", BAD_K)
def test_bad_k_variants_raise(k):
    with pytest.raises(ValueError, match="k must"):
        B.upper_gap(k, 10)
    with pytest.raises(ValueError, match="k must"):
        B.loss_coefficients(k, 10)


BAD_CLASSES = [1, 0, -5, 2.5, True, "10", B.MAX_CLASSES + 1, 10**31]


@pytest.mark.parametrize("c", BAD_CLASSES)
@pytest.mark.parametrize(
    "fn",
    [
        lambda c: B.upper_gap(3, c),
        lambda c: B.lower_gap(3, c),
        lambda c: B.optimal_contrastive_loss(3, c),
        lambda c: B.optimal_supervised_loss(c),
        lambda c: B.collision_probability(3, c),
        lambda c: B.collision_term(3, c),
        lambda c: B.coverage_probability(3, c),
        lambda c: B.arora_bound(1.0, 3, c),
        lambda c: B.nozawa_sato_bound(1.0, 3, c),
        lambda c: B.ash_bound(1.0, 3, c),
        lambda c: B.loss_coefficients(3, c),
    ],
)
def test_bad_num_classes_names_the_value(fn, c):
    with pytest.raises(
        ValueError,
        match=rf"num_classes must be {re.escape(B.CLASSES_ALLOWED)}, got {re.escape(repr(c))}",
    ):
        fn(c)


@pytest.mark.parametrize("fn", [B.upper_gap, B.lower_gap])
def test_bad_prior(fn):
    with pytest.raises(ValueError, match=r"prior must hold finite probabilities >= 0, got \[-0.2"):
        fn(3, prior=[-0.2, 0.6, 0.6])
    with pytest.raises(ValueError, match=r"prior must sum to 1 .*got a sum of 1.1"):
        fn(3, prior=[0.5, 0.6])
    with pytest.raises(ValueError, match=r"sum of 1.00000001"):
        fn(3, prior=[0.5, 0.50000001])
    fn(3, prior=[0.5, 0.5 + 1e-12])  # inside the 1e-9 tolerance: accepted
    with pytest.raises(ValueError, match=r"prior has 2 entries but num_classes is 3"):
        fn(3, 3, prior=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"prior has 3 entries but num_classes is 2"):
        fn(3, 2, prior=[0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"probability > 0"):
        fn(3, prior=[0.0, 0.5, 0.5])
    with pytest.raises(ValueError, match=r"nan"):
        fn(3, prior=[float("nan"), 0.5])
    with pytest.raises(ValueError, match=r"num_classes"):
        fn(3)


@pytest.mark.parametrize("b", [0, 0.0, -1.0, float("nan"), float("inf"), "x"])
@pytest.mark.parametrize(
    "fn",
    [
        lambda b: B.upper_gap(3, 10, b=b),
        lambda b: B.lower_gap(3, 10, b=b),
        lambda b: B.optimal_contrastive_loss(3, 10, b),
        lambda b: B.optimal_supervised_loss(10, b),
        lambda b: B.bao_upper_bound(1.0, 3, 10, b=b),
        lambda b: B.bao_lower_bound(1.0, 3, 10, b=b),
    ],
)
def test_bad_b_names_the_value(fn, b):
    with pytest.raises(
        ValueError, match=rf"b must be a finite number > 0, got {re.escape(repr(b))}"
    ):
        fn(b)


@pytest.mark.parametrize("fn", [B.arora_bound, B.nozawa_sato_bound, B.ash_bound, B.bao_upper_bound])
def test_bad_loss(fn):
    with pytest.raises(ValueError, match=r"loss must be a finite number >= 0.*got nan"):
        fn(float("nan"), 10, 10)
    with pytest.raises(ValueError, match=r"loss must be a finite number >= 0.*got -5\.0"):
        fn(np.array([1.0, -5.0]), 10, 10)
    with pytest.raises(ValueError, match="must broadcast"):
        fn(np.ones(3), np.array([10, 11]), 10)


@pytest.mark.parametrize("n", [-1, 2.5, True])
def test_bad_n(n):
    with pytest.raises(ValueError, match="n must be"):
        B.coverage_probability(n, 3)
    with pytest.raises(ValueError, match="n must be"):
        B.log_coverage_probability(n, 3)


@pytest.mark.parametrize("n", [-1, 2.5, "3", None])
def test_bad_harmonic_n(n):
    with pytest.raises(ValueError, match=rf"n must be an integer >= 0, got {re.escape(repr(n))}"):
        B.harmonic_number(n)


@pytest.mark.parametrize(("valid", "invalid"), [(np.int64(2), 2.0), (np.int64(1), True)])
def test_harmonic_number_validation_not_bypassed_by_cache(valid, invalid):
    B.harmonic_number(valid)
    with pytest.raises(ValueError, match="n must be"):
        B.harmonic_number(invalid)


def test_bounds_at_equals_each_bound_and_blanks_earlier_bounds_for_a_prior():
    ks = np.array([1, 4, 9, 64])
    at = B.bounds_at(2.3, ks, num_classes=10)
    assert np.allclose(at["bao_upper"], B.bao_upper_bound(2.3, ks, num_classes=10), rtol=0, atol=0)
    assert np.allclose(at["bao_lower"], B.bao_lower_bound(2.3, ks, num_classes=10), rtol=0, atol=0)
    np.testing.assert_array_equal(at["arora"], B.arora_bound(2.3, ks, 10))
    np.testing.assert_array_equal(at["ash"], B.ash_bound(2.3, ks, 10))
    assert np.isnan(at["nozawa_sato"][:2]).all() and np.isfinite(at["nozawa_sato"][2:]).all()
    skewed = B.bounds_at(2.3, ks, prior=[0.5, 0.3, 0.2])
    assert np.isnan(skewed["arora"]).all() and np.isnan(skewed["ash"]).all()
    np.testing.assert_array_equal(skewed["upper_gap"], B.upper_gap(ks, prior=[0.5, 0.3, 0.2]))


# --------------------------------------------------------------------------- every size (issue: no hangs)
def log_v_close(got, want, rel=1e-9):
    """v agrees to `rel` relative (|log v_a - log v_b| <= rel), and log v itself to `rel`."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert np.array_equal(np.isneginf(got), np.isneginf(want))
    fin = np.isfinite(want)
    diff = np.abs(got[fin] - want[fin])
    assert np.all(diff <= rel * np.maximum(1.0, np.abs(want[fin]))), diff.max()
    assert np.all(diff <= rel), diff.max()


@pytest.mark.parametrize("c", [2, 3, 5, 10, 37, 120, 1000, 4000])
def test_coverage_default_equals_the_recursion_for_every_n_it_runs(c):
    n = np.arange(0, 5001)
    recursion = S.log_coverage_table(5000, c)
    log_v_close(B.log_coverage_probability(n, c), recursion)


@pytest.mark.parametrize("c", [2, 3, 10, 37, 120, 400])
def test_alternating_form_equals_the_recursion_from_its_switch_point(c):
    # the alternating form is used where t1 = C (1 - 1/C)^n <= 1/2; check it there, from
    # the first such n on, and that the default picks it there
    n = np.arange(c, 5001)
    t1 = c * (1 - 1 / c) ** n.astype(float)
    assert (t1 <= S.ALTERNATING_MAX_T1).any()
    first = int(n[np.argmax(t1 <= S.ALTERNATING_MAX_T1)])
    ns = np.arange(first, min(first + 400, 5001))
    alternating = S.log_coverage(ns, c, "alternating")
    log_v_close(alternating, S.log_coverage_table(5000, c)[ns], rel=1e-12)
    log_v_close(B.log_coverage_probability(ns, c), alternating, rel=0.0)
    # just below the switch the default takes an exact mid-range method instead
    if first > c:
        below = np.array([first - 1])
        log_v_close(B.log_coverage_probability(below, c), S.log_coverage_table(first, c)[below])


@pytest.mark.parametrize(
    ("c", "ns"),
    [
        (2, [2, 3, 4, 50]),
        (3, [3, 4, 5, 9, 30]),
        (10, [10, 11, 12, 25, 40, 80]),
        (37, [37, 38, 60, 150, 400]),
        (120, [120, 121, 300, 500, 700, 1500]),
        (1000, [1000, 1001, 1500, 3000, 7000, 9999]),
        (3000, [3000, 3001, 5000, 9999]),
    ],
)
def test_saddle_form_equals_the_recursion(c, ns):
    ns = np.array(ns)
    want = S.log_coverage_table(int(ns.max()), c)[ns]
    log_v_close(S.log_coverage(ns, c, "saddle"), want)


@pytest.mark.parametrize("c", [3, 10, 50])
@pytest.mark.parametrize("n_over_c", [1.5, 4.0, 9.0])
def test_saddle_form_equals_exact_inclusion_exclusion(c, n_over_c):
    import mpmath

    n = int(c * n_over_c)
    num = sum((-1) ** i * math.comb(c, i) * (c - i) ** n for i in range(c + 1))
    with mpmath.workdps(60):
        want = float(mpmath.log(mpmath.mpf(num) / mpmath.mpf(c) ** n))
    assert S.log_coverage(np.array([n]), c, "saddle")[0] == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("c", [10**4, 10**5, 10**7, 10**9])
def test_large_c_closed_forms_near_n_equal_c(c):
    """v_C = C!/C^C, v_{C+1} = v_C (C+1)/2, v_{C+2} = v_C (C+2)(C+1)(3C+1)/(24 C)
    (S(C+1, C) = binom(C+1, 2), S(C+2, C) = binom(C+2, 3)(3C+1)/4), at 50 digits."""
    import mpmath

    with mpmath.workdps(50):
        log_vc = mpmath.loggamma(c + 1) - c * mpmath.log(c)
        want = [
            float(log_vc),
            float(log_vc + mpmath.log(mpmath.mpf(c + 1) / 2)),
            float(log_vc + mpmath.log(mpmath.mpf(c + 2) * (c + 1) * (3 * c + 1) / (24 * c))),
        ]
    got = B.log_coverage_probability(np.array([c, c + 1, c + 2]), c)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize(("c", "n"), [(10**5, 2 * 10**6), (10**7, 2 * 10**8), (10**9, 25 * 10**9)])
def test_saddle_and_alternating_agree_where_both_hold(c, n):
    # two independent exact methods, in the range (t1 <= 1/2) where the alternating one holds
    assert c * (1 - 1 / c) ** n <= 0.5
    alternating = S.log_coverage(np.array([n]), c, "alternating")[0]
    saddle = S.log_coverage(np.array([n]), c, "saddle")[0]
    assert saddle == pytest.approx(alternating, rel=1e-9)


@pytest.mark.parametrize(("c", "n"), [(2, 10**12), (10, 10**12), (10**9, 10**12)])
def test_coverage_at_the_largest_n(c, n):
    # v_n = 1 - C (1 - 1/C)^n + ... : log v_n = -C (1 - 1/C)^n to first order
    t1 = math.exp(math.log(c) + n * math.log1p(-1 / c))
    got = B.log_coverage_probability(n, c)
    assert got == pytest.approx(-t1, rel=1e-6, abs=1e-300)


def test_moment_series_equals_the_pmf_sum_where_both_run():
    for k, c, q in [
        (10**6, 2, 0.0),
        (10**6, 3, math.exp(-2)),
        (4 * 10**6, 10, 0.0),
        (10**8, 1000, 0.3),
    ]:
        p = 1 / c
        lo, hi = S.pmf_window(k, p)
        assert hi - lo + 1 > S.PMF_WINDOW_MAX  # the moment series is what runs here
        by_pmf = S.expectation_by_pmf(k, p, q, lo, hi)
        by_moments = S.expectation_by_moments(k, p, q)
        assert by_moments == pytest.approx(by_pmf, rel=1e-13)


@pytest.mark.parametrize(("k", "c"), [(3000, 2), (20_000, 3), (50_000, 10)])
def test_collision_term_equals_exact_sum_for_large_k(k, c):
    # exact binomial weights (Fraction) at the window the pmf sum uses
    want = col_naive(k, c) if k <= 3000 else None
    got = B.collision_term(k, c)
    if want is not None:
        assert got == pytest.approx(want, rel=1e-13)
    # log(1 + m) is concave: Col <= log(1 + K/C) (Jensen), within var / (2 (1 + K/C)^2)
    mu, var = k / c, k / c * (1 - 1 / c)
    assert math.log1p(mu) - var / (1 + mu) ** 2 <= got <= math.log1p(mu)


@pytest.mark.parametrize("n", [2000, 2001, 2500])
def test_harmonic_number_both_paths_exact(n):
    assert B.harmonic_number(n) == float(harmonic_exact(n))


@pytest.mark.parametrize("c", [2, 10, 1000, 10**5, 10**7, 10**9])
@pytest.mark.parametrize("k", [1, 9, 5000, 10**6, 10**9, 10**12])
def test_every_size_answers_finite_or_an_honest_overflow(c, k):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        at = B.bounds_at(2.3, k, c)
        ideal = B.optimal_contrastive_loss(k, c)
    assert math.isfinite(ideal) and 0 < ideal
    # R_cont* grows like log(1 + K (1/C + e^-2)) at most, and at least like log(1 + K/C)
    assert math.log1p(k / c) - 1e-9 <= ideal <= math.log1p(k / c + k * math.exp(-2)) + 1e-9
    for name in ("lower_gap", "upper_gap", "bao_lower", "bao_upper"):
        assert math.isfinite(float(at[name]))
    for name in ("arora", "nozawa_sato"):
        assert math.isnan(float(at[name])) == (k + 1 < c)
    assert not math.isnan(float(at["ash"]))


def test_log_cosh_never_overflows():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for b in (1.4e154, 1e200, 1e308):
            assert B.upper_gap(5, 10, b=b) == math.inf
            assert B.lower_gap(5, 10, b=b) == -math.inf
            assert B.upper_gap(5, prior=[0.5, 0.3, 0.2], b=b) == math.inf
            assert B.optimal_supervised_loss(10, b=b) == 0.0
        # finite where 2 log cosh(b^2) ~ 2 b^2 still fits: b = 1e150
        assert B.upper_gap(5, 10, b=1e150) == pytest.approx(2e300, rel=1e-12)


def test_huge_loss_overflows_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        at = B.bounds_at(1e308, np.array([1, 9, 100]), 10)
    assert np.all(at["nozawa_sato"][1:] == math.inf)
    assert np.all(at["bao_upper"] == 1e308 + at["upper_gap"])


# --------------------------------------------------------------------------- records and holds
def test_holds_is_the_two_sided_rule():
    assert B.holds(1.0, 1.5, 2.0) and B.holds(1.0, 1.0, 1.0)
    assert not B.holds(1.0, 0.9, 2.0) and not B.holds(1.0, 2.1, 2.0)
    assert B.holds(None, -1e300, None) and B.holds(-math.inf, 5.0, math.inf)
    with pytest.raises(ValueError, match="NaN"):
        B.holds(1.0, float("nan"), 2.0)


def test_records_say_why_a_value_is_null():
    # issue example: K = 10000, C = 10, loss 12: Arora and Ash overflow, they are defined
    rec = records.bounds_records([10_000, 5], 10, [12.0])
    assert B.arora_bound(12.0, 10_000, 10) == math.inf and B.ash_bound(12.0, 10_000, 10) == math.inf
    assert rec[0]["arora"] is None and rec[0]["ash"] is None
    assert rec[0]["why_null"] == {"arora": "inf", "ash": "inf"}
    assert rec[1]["why_null"] == {"arora": "undefined", "nozawa_sato": "undefined"}
    skew = records.bounds_records([3], None, [1.0], prior=[0.5, 0.3, 0.2], b=1e200)[0]
    assert skew["why_null"] == {
        "lower_gap": "-inf",
        "upper_gap": "inf",
        "bao_lower": "-inf",
        "bao_upper": "inf",
        "arora": "uniform prior only",
        "nozawa_sato": "uniform prior only",
        "ash": "uniform prior only",
        "below_ideal": "uniform prior only",
        "optimal_contrastive_loss": "uniform prior only",
    }
    ideal = records.bounds_records([3], None, None, prior=[0.5, 0.3, 0.2])[0]
    assert ideal["why_null"] == dict.fromkeys(
        ("optimal_contrastive_loss", "optimal_supervised_loss"), "uniform prior only"
    )
    # every other value is a finite float
    for r in (*rec, skew, ideal):
        for key, value in r.items():
            if key not in ("k", "classes", "why_null"):
                assert (value is None) == (key in r["why_null"])
                assert value is None or math.isfinite(value)


# --------------------------------------------------------------------------- non-uniform priors: both families valid
def paper_gaps(k, prior, b=1.0):
    """The paper's general forms (its official plotting code)."""
    c, lc = len(prior), 2 * log_cosh(b * b)
    entropy = -sum(p * math.log(p) for p in prior)
    upper = math.log(max(prior) * c * c / k) + lc
    lower = entropy + math.log(k) - 2 * math.log1p(k) - lc
    return lower, upper


def derived_gaps(k, prior, b=1.0):
    """The derived forms (docs/THEORY.md)."""
    lc = 2 * log_cosh(b * b)
    return -lc - math.log1p(k * max(prior)), lc - math.log(k * min(prior))


def skewed_feature_sets(rng, kind, prior, dim=4):
    """Unit-vector sets per class: `clustered` (tight, random centers), `spread` (nearly
    uniform on the sphere), `collapsed` (every class on one point, up to tiny noise),
    `rare_on_common` (the rare classes sit on the most likely class's points), `antipodal`
    (the most likely class split between u and -u, its mean near 0; the others at u)."""
    c = len(prior)
    common = int(np.argmax(prior))
    u = rng.normal(size=dim)
    u /= np.linalg.norm(u)

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    sets = []
    for y in range(c):
        size = int(rng.integers(3, 8))
        if kind == "clustered":
            center = unit(rng.normal(size=(1, dim)))
            pts = unit(6.0 * center + rng.normal(size=(size, dim)))
        elif kind == "spread":
            pts = unit(rng.normal(size=(size, dim)))
        elif kind == "collapsed":
            pts = unit(u + 1e-3 * rng.normal(size=(size, dim)))
        elif kind == "rare_on_common":
            base = unit(3.0 * u + rng.normal(size=(size, dim)))
            pts = base if y == common else unit(base + 0.05 * rng.normal(size=(size, dim)))
        else:  # antipodal
            if y == common:
                sign = np.where(np.arange(size) % 2 == 0, 1.0, -1.0)[:, None]
                pts = unit(sign * u + 0.05 * rng.normal(size=(size, dim)))
            else:
                pts = unit(u + 0.05 * rng.normal(size=(size, dim)))
        sets.append(pts)
    return sets


FEATURE_KINDS = ["clustered", "spread", "collapsed", "rare_on_common", "antipodal"]


def prior_band_slacks(seed, c, alpha, kind, ks=(1, 4, 16, 64), samples=40_000):
    """Per K: R_mu, R_cont (MC mean, se) and each family's gaps, on one random setting."""
    rng = np.random.default_rng([seed, c, int(alpha * 100), FEATURE_KINDS.index(kind)])
    prior = rng.dirichlet(np.full(c, alpha))
    prior = np.maximum(prior, 1e-3)
    prior /= prior.sum()
    sets = skewed_feature_sets(rng, kind, prior)
    r_mu = r_mu_exact(sets, prior)
    rows = []
    for k in ks:
        r_cont, se = r_cont_monte_carlo(rng, sets, prior, k, samples)
        rows.append((k, prior, r_mu, r_cont, se, paper_gaps(k, prior), derived_gaps(k, prior)))
    return rows


@pytest.mark.parametrize("kind", FEATURE_KINDS)
@pytest.mark.parametrize("alpha", [0.3, 1.0])
@pytest.mark.parametrize("c", [3, 5, 10])
def test_both_prior_families_valid_on_skewed_priors(c, alpha, kind):
    for seed in (0, 1):
        for k, prior, r_mu, r_cont, se, paper, derived in prior_band_slacks(seed, c, alpha, kind):
            tol = 5 * se + 1e-12
            for name, (lower, upper) in (("paper", paper), ("derived", derived)):
                assert r_cont + lower <= r_mu + tol, (name, "lower", seed, k, r_cont, lower, r_mu)
                assert r_mu <= r_cont + upper + tol, (name, "upper", seed, k, r_cont, upper, r_mu)
            # the library takes the tightest of the two, so it is valid too
            assert B.lower_gap(k, prior=prior) == pytest.approx(
                max(paper[0], derived[0]), rel=1e-12
            )
            assert B.upper_gap(k, prior=prior) == pytest.approx(
                min(paper[1], derived[1]), rel=1e-12
            )


def test_upper_bound_vacuity_thresholds_are_log_c_and_the_largest_r_mu():
    # the largest R_mu at norm b: true logit -b^2, the other C - 1 at +b^2
    assert B.max_supervised_loss(3, b=2.0) == pytest.approx(math.log(1 + 2 * math.exp(8.0)))
    assert B.max_supervised_loss(3, b=30.0) == pytest.approx(1800.0 + math.log(2.0), rel=1e-15)
    c, top = 10, math.log(1 + 9 * math.e**2)
    cases = [(2.0, "no"), (math.log(c) + 1e-9, "above_log_c"), (top + 1e-9, "vacuous")]
    for upper, want in [*cases, (None, "vacuous"), (math.inf, "vacuous")]:
        assert B.upper_bound_vacuity(upper, c) == want, upper
    assert B.upper_bound_vacuity(math.nan, c) is None
    assert B.upper_bound_vacuity(top - 1e-9, c) == "above_log_c"
