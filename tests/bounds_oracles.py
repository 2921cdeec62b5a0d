"""Naive oracles of surrogap.theory.bounds, written from docs/THEORY.md: exact binomial sums
(math.comb, Fraction), brute-force enumeration of every sequence of draws for the coverage
probability, exact-integer inclusion-exclusion, the plain O(n C) recursion, exact harmonic
numbers, and the bounds' formulas term by term. Shared by test_bounds.py and
test_bounds_edges.py."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

from surrogap.theory import bounds as B


def binom_pmf_exact(m: int, k: int, c: int) -> Fraction:
    """P(m of K draws hit the anchor's class), 1/C each, exactly."""
    return Fraction(math.comb(k, m) * (c - 1) ** (k - m), c**k)


def r_cont_star_naive(k: int, c: int, b: float) -> float:
    q = math.exp(-2.0 * b * b)
    return math.fsum(
        float(binom_pmf_exact(m, k, c)) * math.log(1.0 + m + (k - m) * q) for m in range(k + 1)
    )


def col_naive(k: int, c: int) -> float:
    return math.fsum(float(binom_pmf_exact(m, k, c)) * math.log(1.0 + m) for m in range(k + 1))


def r_mu_star_naive(c: int, b: float) -> float:
    return math.log(1.0 + (c - 1) * math.exp(-2.0 * b * b))


def coverage_brute(n: int, c: int) -> Fraction:
    """Enumerate all C^n sequences of draws; count those that see every class."""
    hits = sum(1 for seq in itertools.product(range(c), repeat=n) if len(set(seq)) == c)
    return Fraction(hits, c**n)


def log_coverage_exact(n: int, c: int) -> float:
    """log v_n(C) from inclusion-exclusion in exact integer arithmetic (no cancellation)."""
    num = sum((-1) ** i * math.comb(c, i) * (c - i) ** n for i in range(c + 1))
    return math.log(num) - n * math.log(c) if num > 0 else -math.inf


def coverage_recursion(n: int, c: int) -> float:
    """The plain O(n C) recursion over the number of distinct classes seen."""
    p = [1.0] + [0.0] * c
    for t in range(1, n + 1):
        for j in range(min(t, c), 0, -1):
            p[j] = p[j] * j / c + p[j - 1] * (c - j + 1) / c
        p[0] = 0.0
    return p[c]


def harmonic_exact(n: int) -> Fraction:
    return sum((Fraction(1, i) for i in range(1, n + 1)), Fraction(0))


def log_cosh(x: float) -> float:
    return math.log(math.cosh(x))


def upper_gap_naive(k, c=None, prior=None, b=1.0) -> float:
    """Uniform: log(C / K) + 2 log cosh(b^2). Prior: min of the paper's
    log(pi_max C^2 cosh^2(b^2) / K) and the derived 2 log cosh(b^2) - log(K pi_min)."""
    if prior is None:
        return math.log(c / k) + 2 * log_cosh(b * b)
    c = len(prior)
    paper = math.log(max(prior) * c * c * math.cosh(b * b) ** 2 / k)
    derived = 2 * log_cosh(b * b) - math.log(k * min(prior))
    return min(paper, derived)


def lower_gap_naive(k, c=None, prior=None, b=1.0) -> float:
    """max of the paper's H(pi) + log K - 2 log(1 + K) - 2 log cosh(b^2) (H = log C when
    uniform) and the derived -2 log cosh(b^2) - log(1 + K pi_max)."""
    lc = 2 * log_cosh(b * b)
    if prior is None:
        entropy, pi_max = math.log(c), 1 / c
    else:
        entropy, pi_max = -sum(p * math.log(p) for p in prior), max(prior)
    paper = entropy + math.log(k) - 2 * math.log(k + 1) - lc
    derived = -lc - math.log(1 + k * pi_max)
    return max(paper, derived)


def one_minus_tau_naive(k, c) -> float:
    return float(Fraction(c - 1, c) ** k)


def coverage_float(n, c) -> float:
    return math.exp(log_coverage_exact(n, c))


def arora_naive(loss, k, c):
    if k + 1 < c:
        return math.nan
    return (loss - col_naive(k, c)) / (one_minus_tau_naive(k, c) * coverage_float(k + 1, c))


def nozawa_sato_naive(loss, k, c):
    if k + 1 < c:
        return math.nan
    return (2 * loss - col_naive(k, c)) / coverage_float(k + 1, c)


def ash_naive(loss, k, c):
    h = float(harmonic_exact(c - 1))
    return 2 * max(1.0, 2 * (c - 1) * h / k) / one_minus_tau_naive(k, c) * (loss - col_naive(k, c))


def close(got, want, rel=1e-12, abs_=1e-13):
    if math.isnan(want):
        return math.isnan(got)
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_)


# every public function of K, at fixed C (or prior) and loss
FUNCTIONS_OF_K = {
    "upper_gap": lambda k: B.upper_gap(k, 10),
    "lower_gap": lambda k: B.lower_gap(k, 10),
    "upper_gap_prior": lambda k: B.upper_gap(k, prior=[0.5, 0.3, 0.2]),
    "lower_gap_prior": lambda k: B.lower_gap(k, prior=[0.5, 0.3, 0.2]),
    "optimal_contrastive_loss": lambda k: B.optimal_contrastive_loss(k, 10),
    "collision_probability": lambda k: B.collision_probability(k, 10),
    "collision_term": lambda k: B.collision_term(k, 10),
    "arora": lambda k: B.arora_bound(3.0, k, 10),
    "nozawa_sato": lambda k: B.nozawa_sato_bound(3.0, k, 10),
    "ash": lambda k: B.ash_bound(3.0, k, 10),
    "bao_upper": lambda k: B.bao_upper_bound(3.0, k, 10),
    "bao_lower": lambda k: B.bao_lower_bound(3.0, k, 10),
}
