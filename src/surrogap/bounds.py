"""Every quantity of the surrogate-gap theory, exactly, in float64 and vectorized over K.

Implements the two-sided bound of

    H. Bao, Y. Nagano, K. Nozawa. "On the Surrogate Gap between Contrastive and Supervised
    Losses." ICML 2022, PMLR 162:1585-1606 (arXiv:2110.02501),

    R_cont(f) + Delta_L  <=  R_mu(f)  <=  R_cont(f) + Delta_U,

its non-uniform-prior form, the ideal losses of normalized features, and the earlier upper
bounds it is compared with (Arora et al. 2019, Nozawa & Sato 2021, Ash et al. 2022).
All losses are in nats. Pure numpy/scipy: this module never imports torch.

Conventions
-----------
``k`` is the number of negatives K >= 1 (an integer or an array of integers; results take
its shape). ``num_classes`` is C >= 2. ``prior`` is an optional probability vector over
the C classes that replaces a uniform prior. ``b`` bounds the feature norm (b = 1 for
L2-normalized features). Invalid input raises ``UserError`` (a ``ValueError``) naming the value and what is
allowed. Every size up to ``MAX_K`` negatives and ``MAX_CLASSES`` classes is answered in
bounded time and memory (well under a second per call); larger sizes are refused.
The formulas, their sources and the numerics are in docs/THEORY.md.
"""

from __future__ import annotations

import decimal
import math
from functools import lru_cache

import mpmath
import numpy as np

from surrogap.errors import UserError

__all__ = [
    "MAX_CLASSES",
    "MAX_K",
    "arora_bound",
    "ash_bound",
    "bao_lower_bound",
    "bao_upper_bound",
    "bounds_at",
    "bounds_records",
    "collision_probability",
    "collision_term",
    "coverage_probability",
    "harmonic_number",
    "holds",
    "log_coverage_probability",
    "loss_coefficients",
    "lower_gap",
    "nozawa_sato_bound",
    "optimal_contrastive_loss",
    "optimal_supervised_loss",
    "upper_gap",
]

PRIOR_TOLERANCE = 1e-9


# --------------------------------------------------------------------------- validation
MAX_K = 10**12  # the largest number of negatives answered (bounded time and memory)
MAX_CLASSES = 10**9  # the largest number of classes answered
K_ALLOWED = "an integer in 1..1e12"
CLASSES_ALLOWED = "an integer in 2..1e9"


def _as_k(k) -> np.ndarray:
    """K as an int64 array; every entry an integer in 1..MAX_K."""
    allowed = K_ALLOWED
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and not 1 <= k <= MAX_K:
        raise UserError(f"k must be {allowed}, got {k!r}")
    try:
        arr = np.asarray(k)
    except (OverflowError, ValueError):
        raise UserError(f"k must be {allowed}, got {k!r}") from None
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise UserError(f"k must be {allowed}, got {k!r}")
    if arr.size == 0:
        raise UserError("k must hold at least one value, got an empty array")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise UserError(f"k must be {allowed}, got {arr[bad].flat[0].item()!r}")
    bad = (arr < 1) | (arr > MAX_K)
    if bad.any():
        raise UserError(f"k must be {allowed}, got {arr[bad].flat[0].item()!r}")
    return arr.astype(np.int64)


def _as_classes(num_classes) -> int:
    allowed = CLASSES_ALLOWED
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        if isinstance(num_classes, (float, np.floating)) and float(num_classes).is_integer():
            num_classes = int(num_classes)
        else:
            raise UserError(f"num_classes must be {allowed}, got {num_classes!r}")
    if not 2 <= num_classes <= MAX_CLASSES:
        raise UserError(f"num_classes must be {allowed}, got {num_classes!r}")
    return int(num_classes)


def _as_b(b) -> float:
    try:
        value = float(b)
    except (TypeError, ValueError):
        raise UserError(f"b must be a finite number > 0, got {b!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"b must be a finite number > 0, got {b!r}")
    return value


def _as_prior(prior, num_classes) -> np.ndarray:
    try:
        p = np.asarray(prior, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"prior must be a vector of probabilities, got {prior!r}") from None
    if p.size > MAX_CLASSES:
        raise UserError(f"prior must have at most {MAX_CLASSES} entries, got {p.size}")
    if p.ndim != 1 or p.size < 2:
        raise UserError(f"prior must be a vector of at least 2 probabilities, got {prior!r}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise UserError(f"prior must hold finite probabilities >= 0, got {prior!r}")
    total = math.fsum(p.tolist())
    if abs(total - 1.0) > PRIOR_TOLERANCE:
        raise UserError(f"prior must sum to 1 (within {PRIOR_TOLERANCE:g}), got a sum of {total!r}")
    if num_classes is not None and _as_classes(num_classes) != p.size:
        raise UserError(
            f"prior has {p.size} entries but num_classes is {num_classes!r}; they must agree"
        )
    if (p == 0).any():
        raise UserError(
            "prior must give every class a probability > 0 (Delta_U uses min_c pi_c), "
            f"got {prior!r}"
        )
    return p


def _class_setting(num_classes, prior) -> tuple[int, np.ndarray | None]:
    """Resolve (C, prior); prior is None when it is uniform."""
    if prior is None:
        if num_classes is None:
            raise UserError("give num_classes (an integer >= 2) or prior (a probability vector)")
        return _as_classes(num_classes), None
    p = _as_prior(prior, num_classes)
    if np.allclose(p, 1.0 / p.size, rtol=0.0, atol=PRIOR_TOLERANCE):
        return p.size, None
    return p.size, p


def _shape_out(values: np.ndarray, like) -> np.ndarray | float:
    """Return a Python float for scalar input, an array otherwise."""
    if np.ndim(like) == 0:
        return float(np.asarray(values).reshape(()))
    return values


# --------------------------------------------------------------------------- helpers
def _b_squared(b) -> float:
    """b^2 as a float; +inf where it exceeds float64 (b > ~1.34e154), never OverflowError."""
    value = _as_b(b)
    return value * value  # float multiplication overflows to inf; ** would raise


def _log_cosh(x: float) -> float:
    """log cosh(x) = |x| + log1p(e^{-2|x|}) - log 2: no overflow for any x (inf -> inf)."""
    x = abs(x)
    return x + math.log1p(math.exp(-2.0 * x)) - math.log(2.0)


def harmonic_number(n: int) -> float:
    """H_n = 1 + 1/2 + ... + 1/n, correctly rounded to float64 (H_0 = 0).

    Up to n = 2000 summed in 40-digit decimal arithmetic; beyond, digamma(n + 1) + gamma
    evaluated by mpmath at 40 digits. Either way the only rounding that matters is the final
    one, and the cost is bounded for every n.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise UserError(f"n must be an integer >= 0, got {n!r}")
    return _harmonic(int(n))


_HARMONIC_SUM_MAX = 2000


@lru_cache(maxsize=64)
def _harmonic(n: int) -> float:
    if n > _HARMONIC_SUM_MAX:
        with mpmath.workdps(40):
            return float(mpmath.harmonic(n))
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        one = decimal.Decimal(1)
        return float(sum((one / i for i in range(1, n + 1)), decimal.Decimal(0)))


def _log_one_minus_tau(k: np.ndarray, num_classes: int) -> np.ndarray:
    """log (1 - 1/C)^K, exact in log space (never 1 - tau_K)."""
    return k * math.log1p(-1.0 / num_classes)


_PMF_WINDOW_MAX = 4_000  # beyond this many binomial terms, the moment series is used
_MOMENT_ORDER = 16


def _log_affine_expectation(k: np.ndarray, num_classes: int, q: float) -> np.ndarray:
    """E_{m ~ Binom(K, 1/C)}[log(1 + m + (K - m) q)] for each K (q in [0, 1)).

    Col is q = 0, R_cont* is q = e^{-2 b^2}. Written as E[log(A0 + B m)] with A0 = 1 + K q,
    B = 1 - q. Where the pmf window (below) has at most _PMF_WINDOW_MAX terms it is summed
    exactly (`_expectation_by_pmf`); beyond, sd / mean < 0.02 and the Taylor series in the
    central moments converges to float64 precision within 16 orders
    (`_expectation_by_moments`).
    """
    flat = [_affine_expectation(int(kk), num_classes, q) for kk in k.ravel()]
    return np.array(flat, dtype=np.float64).reshape(k.shape)


@lru_cache(maxsize=8192)
def _affine_expectation(k: int, num_classes: int, q: float) -> float:
    """One K of `_log_affine_expectation` (cached: Col serves three bounds)."""
    p = 1.0 / num_classes
    lo, hi = _pmf_window(k, p)
    if hi - lo + 1 <= _PMF_WINDOW_MAX:
        return _expectation_by_pmf(k, p, q, lo, hi)
    return _expectation_by_moments(k, p, q)


def _pmf_window(k: int, p: float) -> tuple[int, int]:
    """[mean - 40 sd - 20, mean + 40 sd + 20] within [0, K]: the mass outside is < 1e-300."""
    mean = k * p
    sd = math.sqrt(k * p * (1.0 - p))
    return max(0, math.floor(mean - 40.0 * sd - 20.0)), min(k, math.ceil(mean + 40.0 * sd + 20.0))


def _expectation_by_pmf(k: int, p: float, q: float, lo: int, hi: int) -> float:
    """sum_m pmf(m) log(1 + K q + m (1 - q)) over the window, the pmf normalized over it.

    log pmf is built from the mode by cumulative sums of log pmf(m+1)/pmf(m) =
    log((K - m) p / ((m + 1) (1 - p))): no log-gamma of K (whose rounding error grows with
    K), so the weights are accurate for every K; the normalization divides out the constant.
    """
    m = np.arange(lo, hi + 1, dtype=np.float64)
    step = np.log(k - m[:-1]) - np.log(m[:-1] + 1.0) + (math.log(p) - math.log1p(-p))
    mode = int(np.clip(math.floor((k + 1) * p), lo, hi)) - lo
    log_w = np.zeros(m.size)
    log_w[mode + 1 :] = np.cumsum(step[mode:])
    log_w[:mode] = -np.cumsum(step[:mode][::-1])[::-1]
    w = np.exp(log_w - log_w.max())
    values = np.log1p(k * q + m * (1.0 - q))
    # every term is >= 0: numpy's pairwise sums lose no more than ~1e-15 relative
    return float(np.sum(w * values) / np.sum(w))


@lru_cache(maxsize=1)
def _bernoulli_cumulant_polys() -> tuple[np.polynomial.Polynomial, ...]:
    """Cumulants of Bernoulli(p) as polynomials in p: k_1 = p, k_{j+1} = p (1 - p) k_j'(p)."""
    poly = np.polynomial.Polynomial
    out = [poly([0.0, 1.0])]
    pq = poly([0.0, 1.0, -1.0])
    for _ in range(_MOMENT_ORDER - 1):
        out.append(pq * out[-1].deriv())
    return tuple(out)


def _expectation_by_moments(k: int, p: float, q: float) -> float:
    """E[log(A0 + B m)] = log A + sum_{j>=2} (-1)^{j-1} mu_j (B / A)^j / j, A = A0 + B K p.

    mu_j are the central moments of Binom(K, p), from its cumulants (K times Bernoulli's) by
    mu_n = sum_{j=2}^{n} binom(n-1, j-1) kappa_j mu_{n-j}. The series is the Taylor expansion
    of the log around the mean (radius A / B, beyond 2 K p: mass < e^-1000 there); it is used
    only where sd * B / A < 0.02, so the 16 orders kept leave a remainder near
    17!! 0.02^18 / 18 < 1e-23, far below float64 rounding.
    """
    kappa = [0.0] + [k * float(c(p)) for c in _bernoulli_cumulant_polys()]
    mu = [1.0, 0.0]
    for n in range(2, _MOMENT_ORDER + 1):
        mu.append(sum(math.comb(n - 1, j - 1) * kappa[j] * mu[n - j] for j in range(2, n + 1)))
    a = 1.0 + k * q + (1.0 - q) * k * p
    u = (1.0 - q) / a
    series = [(-1.0) ** (j - 1) * mu[j] * u**j / j for j in range(_MOMENT_ORDER, 1, -1)]
    return math.log(a) + math.fsum(series)


# --------------------------------------------------------------------------- the gaps
def upper_gap(k, num_classes=None, prior=None, b=1.0):
    """Delta_U: R_mu <= R_cont + Delta_U.

    Uniform prior: log(C / K) + 2 log cosh(b^2). Prior pi: the smaller of the two valid forms,
    the paper's log(max_c pi_c C^2 cosh^2(b^2) / K) and the derived
    2 log cosh(b^2) - log(K min_c pi_c) (docs/THEORY.md, "Non-uniform prior"); both equal
    the uniform form for a uniform prior. +inf where 2 log cosh(b^2) exceeds float64.
    """
    kk = _as_k(k)
    c, p = _class_setting(num_classes, prior)
    lc = 2.0 * _log_cosh(_b_squared(b))
    log_k = np.log(kk.astype(np.float64))
    if p is None:
        gap = math.log(c) + lc - log_k
    else:
        derived = lc - math.log(float(p.min())) - log_k
        paper = math.log(float(p.max())) + 2.0 * math.log(c) + lc - log_k
        gap = np.minimum(derived, paper)
    return _shape_out(gap, k)


def lower_gap(k, num_classes=None, prior=None, b=1.0):
    """Delta_L: R_cont + Delta_L <= R_mu.

    The larger of two valid forms (docs/THEORY.md): the paper's
    H(pi) + log K - 2 log(1 + K) - 2 log cosh(b^2) (H(pi) = log C for a uniform prior) and
    the derived -2 log cosh(b^2) - log(1 + K max_c pi_c). -inf where 2 log cosh(b^2) exceeds
    float64.
    """
    kk = _as_k(k).astype(np.float64)
    c, p = _class_setting(num_classes, prior)
    lc = 2.0 * _log_cosh(_b_squared(b))
    if p is None:
        pi_max, entropy = 1.0 / c, math.log(c)
    else:
        pi_max = float(p.max())
        entropy = -math.fsum((p * np.log(p)).tolist())
    derived = -lc - np.log1p(kk * pi_max)
    paper = entropy + np.log(kk) - 2.0 * np.log1p(kk) - lc
    return _shape_out(np.maximum(paper, derived), k)


# --------------------------------------------------------------------------- ideal values
def optimal_contrastive_loss(k, num_classes, b=1.0):
    """R_cont*(K, C, b) = sum_m Binom(m; K, 1/C) log(1 + m + (K - m) e^{-2 b^2}).

    The contrastive loss when every same-class inner product is b^2 and every cross-class
    one is -b^2 (the ideal normalized encoder).
    """
    kk = _as_k(k)
    c = _as_classes(num_classes)
    q = math.exp(-2.0 * _b_squared(b))
    values = _log_affine_expectation(kk, c, q)
    return _shape_out(values, k)


def optimal_supervised_loss(num_classes, b=1.0):
    """R_mu*(C, b) = log(1 + (C - 1) e^{-2 b^2}) of the ideal normalized encoder."""
    c = _as_classes(num_classes)
    return math.log1p((c - 1) * math.exp(-2.0 * _b_squared(b)))


# --------------------------------------------------------------------------- helpers of the earlier bounds
def collision_probability(k, num_classes):
    """tau_K = 1 - (1 - 1/C)^K: at least one of K negatives shares the anchor's class."""
    kk = _as_k(k)
    c = _as_classes(num_classes)
    return _shape_out(-np.expm1(_log_one_minus_tau(kk, c)), k)


def collision_term(k, num_classes):
    """Col(K, C) = E_{m ~ Binom(K, 1/C)}[log(1 + m)]."""
    kk = _as_k(k)
    c = _as_classes(num_classes)
    return _shape_out(_log_affine_expectation(kk, c, 0.0), k)


_TINY = 1e-280  # below this, v_n from the probability-space pass is recomputed in log space


def _coverage_table(
    n_max: int, num_classes: int, snapshot: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """v_n(C) for n = 0..n_max in probability space (entries below _TINY are not trusted).

    State j = distinct classes seen after t draws: P_{t+1}(j) = P_t(j) j/C +
    P_t(j-1) (C-j+1)/C, vectorized over j. States below the bulk whose mass is under 1e-300
    of the largest are dropped: mass only moves up, so their share of any later state stays
    under 1e-300 of the bulk's. Every term is a product of probabilities: no cancellation.
    Returns (v_n for n = 0..n_max, a copy of P_t at t = `snapshot` or None).
    """
    c = num_classes
    state = None
    out = np.zeros(n_max + 1)
    j = np.arange(c + 1, dtype=np.float64)
    stay = j / c  # (C+1,)  the draw hits a seen class
    move = (c - j + 1) / c  # (C+1,)  move j-1 -> j: a new class
    p = np.zeros(c + 1)
    p[0] = 1.0
    lo = 0
    buf = np.empty(c + 1)
    for t in range(1, n_max + 1):
        hi = min(t, c)
        moved = buf[: hi - lo]
        np.multiply(p[lo:hi], move[lo + 1 : hi + 1], out=moved)  # old P(j-1) (C-j+1)/C
        window = p[lo : hi + 1]
        np.multiply(window, stay[lo : hi + 1], out=window)  # P(j) j/C, in place
        np.add(p[lo + 1 : hi + 1], moved, out=p[lo + 1 : hi + 1])
        out[t] = p[c]
        if t == snapshot:
            state = p.copy()
        if t % 32 == 0:
            window = p[lo : hi + 1]
            keep = np.flatnonzero(window > window.max() * 1e-300)
            if keep.size and keep[0] > 0:
                p[lo : lo + keep[0]] = 0.0
                lo += int(keep[0])
    return out, state


@lru_cache(maxsize=4)  # arora, nozawa_sato and loss_coefficients ask for the same table
def _log_coverage_table(n_max: int, num_classes: int) -> np.ndarray:
    """log v_n(C) for n = 0..n_max, -inf for n < C.

    The probability-space pass gives every v_n that float64 holds with full relative
    precision; where v_n < 1e-280 (n just above C for large C) the same recursion is rerun in
    log space up to the last such n, so log v_n stays exact far below the smallest float.
    """
    c = num_classes
    # Up to step t0 every state j <= t0 keeps P_t(j) >= P_t(t) = prod_{i<t} (C-i)/C, which
    # stays far above the smallest float while sum_{i<t} -log(1 - i/C) < 600: there the
    # probability pass is exact and the log pass can start from its state.
    steps = np.arange(min(c, n_max + 1))
    all_new = np.cumsum(-np.log1p(-steps / c))  # -log P_{t+1}(t+1)
    t0 = int(np.searchsorted(all_new, 600.0))  # all_new[t0 - 1] < 600
    table, state = _coverage_table(n_max, c, snapshot=t0 if t0 >= 1 else None)
    with np.errstate(divide="ignore"):
        out = np.log(table)
    out[: min(c, n_max + 1)] = -np.inf
    tiny = (
        np.flatnonzero(~(out[c:] > math.log(_TINY))) + c
        if n_max >= c
        else np.array([], dtype=np.int64)
    )
    if tiny.size == 0:
        return out
    n_log = int(tiny.max())
    j = np.arange(c + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_stay = np.log(j / c)
        log_move = np.log((c - j + 1) / c)
    # only states that can still reach C by step n_log matter: j >= C - (n_log - t)
    if state is None:
        t_start = 0
        logp = np.full(c + 1, -np.inf)
        logp[0] = 0.0
    else:
        t_start = t0
        with np.errstate(divide="ignore"):
            logp = np.log(state)
    stay_buf, move_buf = np.empty(c + 1), np.empty(c + 1)
    for t in range(t_start + 1, n_log + 1):
        hi = min(t, c)
        lo = max(0, c - (n_log - t))
        stay = stay_buf[: hi + 1 - lo]
        move = move_buf[: hi + 1 - lo]
        np.add(logp[lo : hi + 1], log_stay[lo : hi + 1], out=stay)
        if lo == 0:
            move[0] = -np.inf
            np.add(logp[:hi], log_move[1 : hi + 1], out=move[1:])
        else:
            np.add(logp[lo - 1 : hi], log_move[lo : hi + 1], out=move)
        np.logaddexp(stay, move, out=logp[lo : hi + 1])
        if t >= c:
            out[t] = logp[c]
    return out


_RECURSION_MAX_N = 5_000  # the exact recursion always runs up to this n (and C)
_RECURSION_CAP_N = 2_000_000  # and never beyond this n (its table holds n floats)
_ALTERNATING_MAX_T1 = 0.5  # the alternating form runs where C (1 - 1/C)^n <= this


def _log_coverage_alternating(n: np.ndarray, num_classes: int) -> np.ndarray:
    """log v_n(C) = log1p(-S), S = sum_{j>=1} (-1)^{j+1} binom(C, j) (1 - j/C)^n.

    Used only where t_1 = C (1 - 1/C)^n <= 1/2. Then t_{j+1} / t_j <= t_1 / (j + 1) (the
    factor ((C-j-1)/(C-j))^n is at most (1 - 1/C)^n), so the terms fall faster than
    2^-j / j!: the sum is alternating and decreasing, S >= t_1 - t_2 >= 3 t_1 / 4 (no
    cancellation worth the name), and stopping once a term is below 1e-18 S leaves an
    error below that term. Each term is exp(log binom(C, j) + n log1p(-j/C)), formed in log
    space; at most ~20 terms, for any n and C. Relative accuracy of log v_n: ~1e-15.
    """
    c = num_classes
    nf = n.astype(np.float64)
    total = np.zeros(n.shape)
    log_binom = 0.0
    for j in range(1, c):
        log_binom += math.log((c - j + 1) / j)
        term = np.exp(log_binom + nf * math.log1p(-j / c))
        total += term if j % 2 == 1 else -term
        if not (term > 1e-18 * total).any():
            break
    return np.log1p(-total)


def _log_modulus_bound(r: float, theta: float) -> float:
    """An upper bound on log|e^z - 1| over every z = r e^{i t} with theta <= t <= pi.

    With a = r cos t and b = r sin t (b^2 = r^2 - a^2),
    |e^z - 1|^2 = (e^a - 1)^2 + 2 e^a (1 - cos b) <= g(a) = (e^a - 1)^2 + e^a (r^2 - a^2).
    g increases on a >= 0 (g' = e^a (2 (e^a - 1 - a) - a^2 + r^2) and e^a - 1 - a >= a^2/2),
    so over the t with a >= 0 the bound is g(r cos theta)^(1/2); where a < 0,
    |e^z - 1|^2 <= (1 - e^a)^2 + b^2 <= a^2 + b^2 = r^2 and |e^z - 1| <= e^a + 1 < 2.
    """
    a = max(r * math.cos(theta), 0.0)
    log_g = 2.0 * a + math.log(math.expm1(-a) ** 2 + math.exp(-a) * (r * r - a * a))
    return max(0.5 * log_g, math.log(min(2.0, r)))


@lru_cache(maxsize=256)
def _log_coverage_saddle(n: int, num_classes: int) -> float:
    """log v_n(C) for n >= C by an exact contour integral, evaluated at 40 digits.

    v_n = n! a_n / C^n with a_n = [z^n] (e^z - 1)^C (a_n = C! S(n, C) / n!). On the circle
    |z| = r the M-point trapezoid rule gives sum_{j = n mod M} a_j r^{j - n} exactly; r is
    the saddle point (C r / (1 - e^{-r}) = n), so a_j r^j / (e^r - 1)^C is the law of a sum
    of C zero-truncated Poisson(r) counts (log-concave, mean n, sd sigma) and with
    M >= 40 sigma + 64 the aliased terms are below 1e-30 of a_n. Only the nodes where
    |(e^z - 1) / (e^r - 1)|^C is above e^-90 are summed (the others add < 1e-35):
    about 200 nodes for any n and C. Relative accuracy of v_n: ~1e-30 before the final
    rounding to float64.
    """
    c = num_classes
    if n == c:
        with mpmath.workdps(40):
            return float(mpmath.loggamma(c + 1) - c * mpmath.log(c))
    rho = n / c
    # Newton on h(r) = r / (1 - e^-r) = rho; h is convex and increasing, start right of the root
    r = max(2.0 * (rho - 1.0), rho)
    for _ in range(100):
        em = -math.expm1(-r)
        h = r / em
        dh = (em - r * math.exp(-r)) / (em * em)
        step = (h - rho) / dh
        r -= step
        if abs(step) <= 1e-14 * r:
            break
    r = max(r, 1e-300)
    mean = rho  # the tilted mean per class
    var = max(mean * (1.0 + r - mean), 0.0)
    sigma = math.sqrt(c * var)
    m_nodes = math.ceil(40.0 * sigma) + 64
    # log-modulus of the integrand relative to theta = 0, cheaply in float64
    half = m_nodes // 2
    # near theta = 0 the log-modulus is -sigma^2 theta^2 / 2 + O(theta^4): nodes beyond twice
    # the theta where that reaches -90 are not needed; checked below, else all are taken
    cut = 8 + math.ceil(2.0 * math.sqrt(180.0) / max(sigma, 1e-300) * m_nodes / (2 * math.pi))
    cut = min(half, cut)
    for last in (cut, half):
        theta = 2.0 * math.pi * np.arange(0, last + 1) / m_nodes
        zr, zi = r * np.cos(theta), r * np.sin(theta)
        # 1 - e^{-z} = -expm1(-z): expm1(a + ib) = expm1(a) cos b - 2 sin^2(b/2) + i e^a sin b
        re_part = np.expm1(-zr) * np.cos(zi) - 2.0 * np.sin(0.5 * zi) ** 2
        im_part = -np.exp(-zr) * np.sin(zi)
        log_mod = zr + 0.5 * np.log(re_part**2 + im_part**2)  # log|e^z - 1|
        log_ref = r + math.log(-math.expm1(-r))  # log(e^r - 1)
        rel = c * (log_mod - log_ref)
        if last == half or c * (_log_modulus_bound(r, float(theta[-1])) - log_ref) < -90.0:
            break
    keep = np.flatnonzero(rel > -90.0)
    with mpmath.workdps(40):
        mc, mn = mpmath.mpf(c), mpmath.mpf(n)
        two_pi_over_m = 2 * mpmath.pi / m_nodes
        rr = mpmath.mpf(r)
        ref = mc * mpmath.log(mpmath.expm1(rr)) - mn * mpmath.log(rr)
        total = mpmath.mpf(0)
        for idx in keep.tolist():
            th = idx * two_pi_over_m
            z = rr * mpmath.expj(th)
            value = mc * mpmath.log(mpmath.expm1(z)) - mn * mpmath.log(rr) - ref
            term = mpmath.exp(value) * mpmath.expj(-mn * th)
            # nodes m and M - m are complex conjugates: count the pair once, doubled
            weight = 1 if idx == 0 or (2 * idx == m_nodes) else 2
            total += weight * mpmath.re(term)
        log_v = mpmath.loggamma(mn + 1) - mn * mpmath.log(mc) + ref + mpmath.log(total / m_nodes)
        return float(log_v)


def log_coverage_probability(n, num_classes):
    """log v_n(C), accurate where v_n itself underflows; -inf for n < C.

    Three exact-enough methods, each where it is cheap (docs/THEORY.md, "Coverage"):
    C (1 - 1/C)^n <= 1/2: the alternating complementary sum (`_log_coverage_alternating`);
    otherwise the recursion over the number of distinct classes (`_log_coverage_table`),
    one pass for every n, where C <= 5 000 and max(n) <= 5 000 or the pass is cheaper than
    the per-n alternative, the saddle-point contour integral (`_log_coverage_saddle`,
    ~25 ms per distinct n). Every n up to MAX_K and C up to MAX_CLASSES costs bounded time and memory
    per requested n.
    """
    c = _as_classes(num_classes)
    arr = np.asarray(n)
    if arr.dtype == bool or arr.dtype.kind not in "iuf" or arr.size == 0:
        raise UserError(f"n must be integers >= 0, got {n!r}")
    if arr.dtype.kind == "f" and (~np.isfinite(arr) | (arr != np.round(arr))).any():
        raise UserError(f"n must be integers >= 0, got {n!r}")
    if (arr < 0).any():
        raise UserError(f"n must be integers >= 0, got {arr[arr < 0].flat[0].item()!r}")
    if (arr > MAX_K + 1).any():
        raise UserError(
            f"n must be at most {MAX_K + 1}, got {arr[arr > MAX_K + 1].flat[0].item()!r}"
        )
    nn = arr.astype(np.int64)
    return _shape_out(_log_coverage(nn, c), n)


def _log_coverage(nn: np.ndarray, c: int, method: str | None = None) -> np.ndarray:
    """log v_n(C) for an int64 array n; `method` forces one of 'alternating', 'recursion',
    'saddle' (tests compare them), else each n takes the cheap exact one."""
    out = np.full(nn.shape, -np.inf)
    covered = nn >= c
    if method is None:
        log_t1 = math.log(c) + nn.astype(np.float64) * math.log1p(-1.0 / c)
        alt = covered & (log_t1 <= math.log(_ALTERNATING_MAX_T1))
        mid = covered & ~alt
        mid_method = "saddle"
        if mid.any():
            # one recursion pass serves every n up to its end (~10 us a step); the saddle form
            # costs ~25 ms per distinct n: take the cheaper, within the recursion's memory cap
            # (its work per step grows with C: only for C <= _RECURSION_MAX_N)
            n_end, count = int(nn[mid].max()), int(np.unique(nn[mid]).size)
            cheap = n_end <= min(_RECURSION_CAP_N, max(_RECURSION_MAX_N, 2000 * count))
            if cheap and c <= _RECURSION_MAX_N:
                mid_method = "recursion"
    else:
        alt = covered if method == "alternating" else np.zeros(nn.shape, dtype=bool)
        mid = covered & ~alt
        mid_method = method
    if alt.any():
        out[alt] = _log_coverage_alternating(nn[alt], c)
    if mid.any():
        if mid_method == "recursion":
            out[mid] = _log_coverage_table(int(nn[mid].max()), c)[nn[mid]]  # a copy
        else:
            values = {int(v): _log_coverage_saddle(int(v), c) for v in np.unique(nn[mid])}
            out[mid] = [values[int(v)] for v in nn[mid]]
    return out


def coverage_probability(n, num_classes):
    """v_n(C): probability that n uniform draws from C classes cover all C of them.

    exp of `log_coverage_probability`: v_n = 0 for n < C and v_C = C! / C^C.
    """
    log_v = log_coverage_probability(n, num_classes)
    return _shape_out(np.exp(np.asarray(log_v)), n)


# --------------------------------------------------------------------------- the bounds
def _scaled(numerator: np.ndarray, log_factor: np.ndarray) -> np.ndarray:
    """numerator * exp(log_factor), overflowing to +-inf only where the value exceeds float64."""
    with np.errstate(divide="ignore", over="ignore"):
        mag = np.exp(np.log(np.abs(numerator)) + log_factor)
    return np.where(numerator == 0, 0.0, np.sign(numerator) * mag)


def _loss_and_k(loss, k):
    kk = _as_k(k)
    try:
        arr = np.asarray(loss, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"loss must be a finite number >= 0, got {loss!r}") from None
    if not np.isfinite(arr).all() or (arr < 0).any():
        bad = arr[~(np.isfinite(arr) & (arr >= 0))].flat[0].item()
        raise UserError(
            f"loss must be a finite number >= 0 (a contrastive loss is never negative), got {bad!r}"
        )
    try:
        lb, kb = np.broadcast_arrays(arr, kk)
    except ValueError:
        raise UserError(
            f"loss (shape {arr.shape}) and k (shape {kk.shape}) must broadcast together"
        ) from None
    return lb, kb, np.ndim(loss) == 0 and np.ndim(k) == 0


def _finish(values: np.ndarray, scalar: bool):
    return float(values.reshape(())) if scalar else values


def arora_bound(loss, k, num_classes):
    """Arora et al. (2019): (L - Col) / ((1 - tau_K) v_{K+1}); NaN where K + 1 < C."""
    lb, kb, scalar = _loss_and_k(loss, k)
    c = _as_classes(num_classes)
    log_v = np.asarray(log_coverage_probability(kb + 1, c))
    valid = kb + 1 >= c
    log_factor = np.where(valid, -_log_one_minus_tau(kb, c) - np.where(valid, log_v, 0.0), 0.0)
    values = _scaled(lb - np.asarray(collision_term(kb, c)), log_factor)
    return _finish(np.where(valid, values, np.nan), scalar)


def nozawa_sato_bound(loss, k, num_classes):
    """Nozawa & Sato (2021): (2 L - Col) / v_{K+1}; NaN where K + 1 < C."""
    lb, kb, scalar = _loss_and_k(loss, k)
    c = _as_classes(num_classes)
    log_v = np.asarray(log_coverage_probability(kb + 1, c))
    valid = kb + 1 >= c
    with np.errstate(over="ignore"):  # 2 L beyond float64 is +inf, an overflowed bound
        numerator = 2.0 * lb - np.asarray(collision_term(kb, c))
    values = _scaled(numerator, np.where(valid, -log_v, 0.0))
    return _finish(np.where(valid, values, np.nan), scalar)


def ash_bound(loss, k, num_classes):
    """Ash et al. (2022): 2 max(1, 2 (C-1) H_{C-1} / K) / (1 - tau_K) * (L - Col)."""
    lb, kb, scalar = _loss_and_k(loss, k)
    c = _as_classes(num_classes)
    coef = 2.0 * np.maximum(1.0, 2.0 * (c - 1) * harmonic_number(c - 1) / kb)
    log_factor = np.log(coef) - _log_one_minus_tau(kb, c)
    values = _scaled(lb - np.asarray(collision_term(kb, c)), log_factor)
    return _finish(values, scalar)


def bao_upper_bound(loss, k, num_classes=None, prior=None, b=1.0):
    """Bao et al. (2022): R_mu <= L + Delta_U."""
    lb, kb, scalar = _loss_and_k(loss, k)
    return _finish(lb + np.asarray(upper_gap(kb, num_classes, prior, b)), scalar)


def bao_lower_bound(loss, k, num_classes=None, prior=None, b=1.0):
    """Bao et al. (2022): R_mu >= L + Delta_L."""
    lb, kb, scalar = _loss_and_k(loss, k)
    return _finish(lb + np.asarray(lower_gap(kb, num_classes, prior, b)), scalar)


def loss_coefficients(k, num_classes):
    """The coefficient of L in each upper bound (the paper's Fig. 4, left): a dict of arrays.

    Bao et al.: 1. Arora et al.: 1 / ((1 - tau_K) v_{K+1}). Nozawa & Sato: 2 / v_{K+1}.
    Ash et al.: 2 max(1, 2 (C-1) H_{C-1} / K) / (1 - tau_K). NaN where undefined.
    """
    kk = _as_k(k)
    c = _as_classes(num_classes)
    log_v = np.asarray(log_coverage_probability(kk + 1, c))
    valid = kk + 1 >= c
    log_omt = _log_one_minus_tau(kk, c)
    with np.errstate(over="ignore"):
        arora = np.where(valid, np.exp(-log_omt - np.where(valid, log_v, 0.0)), np.nan)
        nozawa = np.where(valid, 2.0 * np.exp(-np.where(valid, log_v, 0.0)), np.nan)
        ash = 2.0 * np.maximum(1.0, 2.0 * (c - 1) * harmonic_number(c - 1) / kk) * np.exp(-log_omt)
    return {
        "bao": np.ones(kk.shape),
        "arora": arora,
        "nozawa_sato": nozawa,
        "ash": ash,
    }


def bounds_at(loss, k, num_classes=None, prior=None, b=1.0) -> dict[str, np.ndarray]:
    """Every bound at a measured contrastive loss, per K: a dict of arrays (k's shape).

    Keys: lower_gap, upper_gap, bao_lower, bao_upper, arora, nozawa_sato, ash. The earlier
    bounds are uniform-prior results: NaN with a non-uniform prior, as where undefined.
    """
    lb, kb, _ = _loss_and_k(loss, k)
    c, p = _class_setting(num_classes, prior)
    lower = np.asarray(lower_gap(kb, num_classes, prior, b), dtype=np.float64)
    upper = np.asarray(upper_gap(kb, num_classes, prior, b), dtype=np.float64)
    out = {"lower_gap": lower, "upper_gap": upper, "bao_lower": lb + lower, "bao_upper": lb + upper}
    for name, fn in (
        ("arora", arora_bound),
        ("nozawa_sato", nozawa_sato_bound),
        ("ash", ash_bound),
    ):
        out[name] = (
            np.asarray(fn(lb, kb, c), dtype=np.float64) if p is None else np.full(kb.shape, np.nan)
        )
    return out


# --------------------------------------------------------------------------- records and the holds rule
def holds(lower, supervised_loss, upper) -> bool:
    """The one rule for "the two-sided bound holds": lower <= R_mu <= upper.

    `lower` and `upper` are Bao et al.'s bounds (floats; None or +-inf where the value left
    float64, which then bounds nothing: None as a lower bound is -inf, as an upper +inf).
    """
    lo = -math.inf if lower is None else float(lower)
    up = math.inf if upper is None else float(upper)
    r_mu = float(supervised_loss)
    if math.isnan(lo) or math.isnan(up) or math.isnan(r_mu):
        raise UserError(f"holds: got NaN in ({lower!r}, {supervised_loss!r}, {upper!r})")
    return bool(lo <= r_mu <= up)


# why a record field is None (JSON null): docs in README ("The calculator")
UNDEFINED = "undefined"  # an earlier bound where K + 1 < C
UNIFORM_ONLY = "uniform prior only"  # an earlier bound or ideal value with a skewed prior
OVERFLOW = "inf"  # the value is above the largest float64 (about 1.8e308)
NEGATIVE_OVERFLOW = "-inf"  # the value is below minus the largest float64


def _field(value, nan_reason: str) -> tuple[float | None, str | None]:
    """A record value and, where it is None, why."""
    if value is None:
        return None, nan_reason
    value = float(value)
    if math.isnan(value):
        return None, nan_reason
    if math.isinf(value):
        return None, OVERFLOW if value > 0 else NEGATIVE_OVERFLOW
    return value, None


def bounds_records(
    k,
    classes: int | None,
    loss=None,
    prior=None,
    b: float = 1.0,
) -> list[dict]:
    """One record per K: the gaps, and the bounds at `loss` (or the ideal values without it).

    Every value is a finite float or None; `why_null` maps each None field to its reason:
    "undefined" (an earlier bound where K + 1 < C), "uniform prior only" (the earlier bounds
    and the ideal values assume a uniform prior), "inf" or "-inf" (the value is beyond
    float64, e.g. Delta_U for b > 1.3e154). The records are valid JSON as they are.
    """
    ks = _as_k(k).reshape(-1)
    c, p = _class_setting(classes, prior)
    uniform = p is None
    lower = np.atleast_1d(lower_gap(ks, c, p, b))
    upper = np.atleast_1d(upper_gap(ks, c, p, b))
    b_value = _as_b(b)
    records = []
    if loss is None:
        ideal_cont = np.atleast_1d(optimal_contrastive_loss(ks, c, b)) if uniform else None
        ideal_mu = optimal_supervised_loss(c, b) if uniform else None
        for i, kk in enumerate(ks):
            values = {
                "lower_gap": float(lower[i]),
                "upper_gap": float(upper[i]),
                "optimal_contrastive_loss": None if ideal_cont is None else float(ideal_cont[i]),
                "optimal_supervised_loss": ideal_mu,
            }
            records.append(_record(int(kk), c, b_value, None, values, UNIFORM_ONLY))
        return records
    losses = np.atleast_1d(np.asarray(loss, dtype=np.float64))
    if losses.size not in (1, ks.size):
        raise UserError(f"loss takes one value or one per k value ({ks.size}), got {losses.size}")
    losses = np.broadcast_to(losses, ks.shape)
    at = bounds_at(losses, ks, c, p, b)
    for i, kk in enumerate(ks):
        values = {name: float(v[i]) for name, v in at.items()}
        reason = UNDEFINED if uniform else UNIFORM_ONLY
        records.append(_record(int(kk), c, b_value, float(losses[i]), values, reason))
    return records


def _record(k: int, c: int, b: float, loss, values: dict, nan_reason: str) -> dict:
    rec: dict = {"k": k, "classes": c, "b": b}
    if loss is not None:
        rec["loss"] = loss
    why: dict[str, str] = {}
    for name, value in values.items():
        rec[name], reason = _field(value, nan_reason)
        if reason is not None:
            why[name] = reason
    rec["why_null"] = why
    return rec
