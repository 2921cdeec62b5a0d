"""The exact special sums behind the earlier bounds (docs/THEORY.md, section 6).

The coverage probability v_n(C) of the coupon collector, by three exact-enough methods (an
alternating complementary sum, the recursion over distinct classes, a saddle-point contour
integral), binomial expectations E[log(A0 + B m)] (a finite sum or a moment series) and
harmonic numbers. Arguments are already validated by surrogap.theory.bounds, which is the public
interface; every routine costs bounded time and memory for K <= 1e12 and C <= 1e9.
"""

from __future__ import annotations

import decimal
import math
from functools import lru_cache

import mpmath
import numpy as np

HARMONIC_SUM_MAX = 2000


@lru_cache(maxsize=64)
def harmonic(n: int) -> float:
    if n > HARMONIC_SUM_MAX:
        with mpmath.workdps(40):
            return float(mpmath.harmonic(n))
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        one = decimal.Decimal(1)
        return float(sum((one / i for i in range(1, n + 1)), decimal.Decimal(0)))


PMF_WINDOW_MAX = 4_000  # beyond this many binomial terms, the moment series is used
MOMENT_ORDER = 16


def log_affine_expectation(k: np.ndarray, num_classes: int, q: float) -> np.ndarray:
    """E_{m ~ Binom(K, 1/C)}[log(1 + m + (K - m) q)] for each K (q in [0, 1)).

    Col is q = 0, R_cont* is q = e^{-2 b^2}. Written as E[log(A0 + B m)] with A0 = 1 + K q,
    B = 1 - q. Where the pmf window (below) has at most PMF_WINDOW_MAX terms it is summed
    exactly (`expectation_by_pmf`); beyond, sd / mean < 0.02 and the Taylor series in the
    central moments converges to float64 precision within 16 orders
    (`expectation_by_moments`).
    """
    flat = [affine_expectation(int(kk), num_classes, q) for kk in k.ravel()]
    return np.array(flat, dtype=np.float64).reshape(k.shape)


@lru_cache(maxsize=8192)
def affine_expectation(k: int, num_classes: int, q: float) -> float:
    """One K of `log_affine_expectation` (cached: Col serves three bounds)."""
    p = 1.0 / num_classes
    lo, hi = pmf_window(k, p)
    if hi - lo + 1 <= PMF_WINDOW_MAX:
        return expectation_by_pmf(k, p, q, lo, hi)
    return expectation_by_moments(k, p, q)


def pmf_window(k: int, p: float) -> tuple[int, int]:
    """[mean - 40 sd - 20, mean + 40 sd + 20] within [0, K]: the mass outside is < 1e-300."""
    mean = k * p
    sd = math.sqrt(k * p * (1.0 - p))
    return max(0, math.floor(mean - 40.0 * sd - 20.0)), min(k, math.ceil(mean + 40.0 * sd + 20.0))


def expectation_by_pmf(k: int, p: float, q: float, lo: int, hi: int) -> float:
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
def bernoulli_cumulant_polys() -> tuple[np.polynomial.Polynomial, ...]:
    """Cumulants of Bernoulli(p) as polynomials in p: k_1 = p, k_{j+1} = p (1 - p) k_j'(p)."""
    poly = np.polynomial.Polynomial
    out = [poly([0.0, 1.0])]
    pq = poly([0.0, 1.0, -1.0])
    for _ in range(MOMENT_ORDER - 1):
        out.append(pq * out[-1].deriv())
    return tuple(out)


def expectation_by_moments(k: int, p: float, q: float) -> float:
    """E[log(A0 + B m)] = log A + sum_{j>=2} (-1)^{j-1} mu_j (B / A)^j / j, A = A0 + B K p.

    mu_j are the central moments of Binom(K, p), from its cumulants (K times Bernoulli's) by
    mu_n = sum_{j=2}^{n} binom(n-1, j-1) kappa_j mu_{n-j}. The series is the Taylor expansion
    of the log around the mean (radius A / B, beyond 2 K p: mass < e^-1000 there); it is used
    only where sd * B / A < 0.02, so the 16 orders kept leave a remainder near
    17!! 0.02^18 / 18 < 1e-23, far below float64 rounding.
    """
    kappa = [0.0] + [k * float(c(p)) for c in bernoulli_cumulant_polys()]
    mu = [1.0, 0.0]
    for n in range(2, MOMENT_ORDER + 1):
        mu.append(sum(math.comb(n - 1, j - 1) * kappa[j] * mu[n - j] for j in range(2, n + 1)))
    a = 1.0 + k * q + (1.0 - q) * k * p
    u = (1.0 - q) / a
    series = [(-1.0) ** (j - 1) * mu[j] * u**j / j for j in range(MOMENT_ORDER, 1, -1)]
    return math.log(a) + math.fsum(series)


TINY = 1e-280  # below this, v_n from the probability-space pass is recomputed in log space


def coverage_table(
    n_max: int, num_classes: int, snapshot: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """v_n(C) for n = 0..n_max in probability space (entries below TINY are not trusted).

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
def log_coverage_table(n_max: int, num_classes: int) -> np.ndarray:
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
    table, state = coverage_table(n_max, c, snapshot=t0 if t0 >= 1 else None)
    with np.errstate(divide="ignore"):
        out = np.log(table)
    out[: min(c, n_max + 1)] = -np.inf
    tiny = np.flatnonzero(~(out[c:] > math.log(TINY))) + c  # empty for n_max < C
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


RECURSION_MAX_N = 5_000  # the exact recursion always runs up to this n (and C)
RECURSION_CAP_N = 2_000_000  # and never beyond this n (its table holds n floats)
ALTERNATING_MAX_T1 = 0.5  # the alternating form runs where C (1 - 1/C)^n <= this


def log_coverage_alternating(n: np.ndarray, num_classes: int) -> np.ndarray:
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


def log_modulus_bound(r: float, theta: float) -> float:
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
def log_coverage_saddle(n: int, num_classes: int) -> float:
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
        if last == half or c * (log_modulus_bound(r, float(theta[-1])) - log_ref) < -90.0:
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


def log_coverage(nn: np.ndarray, c: int, method: str | None = None) -> np.ndarray:
    """log v_n(C) for an int64 array n; `method` forces one of 'alternating', 'recursion',
    'saddle' (tests compare them), else each n takes the cheap exact one."""
    out = np.full(nn.shape, -np.inf)
    covered = nn >= c
    if method is None:
        log_t1 = math.log(c) + nn.astype(np.float64) * math.log1p(-1.0 / c)
        alt = covered & (log_t1 <= math.log(ALTERNATING_MAX_T1))
    else:
        alt = covered if method == "alternating" else np.zeros(nn.shape, dtype=bool)
    mid = covered & ~alt
    mid_method = "saddle" if method is None else method
    if method is None and mid.any():
        # one recursion pass serves every n up to its end (~10 us a step); the saddle form
        # costs ~25 ms per distinct n: take the cheaper, within the recursion's memory cap
        # (its work per step grows with C: only for C <= RECURSION_MAX_N)
        n_end, count = int(nn[mid].max()), int(np.unique(nn[mid]).size)
        cheap = n_end <= min(RECURSION_CAP_N, max(RECURSION_MAX_N, 2000 * count))
        if cheap and c <= RECURSION_MAX_N:
            mid_method = "recursion"
    if alt.any():
        out[alt] = log_coverage_alternating(nn[alt], c)
    if mid.any():
        if mid_method == "recursion":
            out[mid] = log_coverage_table(int(nn[mid].max()), c)[nn[mid]]  # a copy
        else:
            values = {int(v): log_coverage_saddle(int(v), c) for v in np.unique(nn[mid])}
            out[mid] = [values[int(v)] for v in nn[mid]]
    return out
