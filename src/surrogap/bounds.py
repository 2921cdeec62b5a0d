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
L2-normalized features). Invalid input raises ``ValueError`` naming the value.
"""

from __future__ import annotations

import decimal
import math
from functools import lru_cache

import numpy as np
from scipy.special import gammaln

__all__ = [
    "arora_bound",
    "ash_bound",
    "bao_lower_bound",
    "bao_upper_bound",
    "bounds_at",
    "collision_probability",
    "collision_term",
    "coverage_probability",
    "harmonic_number",
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
def _as_k(k) -> np.ndarray:
    """K as an int64 array; every entry an integer >= 1."""
    arr = np.asarray(k)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if arr.size == 0:
        raise ValueError("k must hold at least one value, got an empty array")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise ValueError(f"k must be an integer >= 1, got {arr[bad].flat[0].item()!r}")
    if (arr < 1).any():
        raise ValueError(f"k must be an integer >= 1, got {arr[arr < 1].flat[0].item()!r}")
    return arr.astype(np.int64)


def _as_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        if isinstance(num_classes, (float, np.floating)) and float(num_classes).is_integer():
            num_classes = int(num_classes)
        else:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return int(num_classes)


def _as_b(b) -> float:
    try:
        value = float(b)
    except (TypeError, ValueError):
        raise ValueError(f"b must be a finite number > 0, got {b!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"b must be a finite number > 0, got {b!r}")
    return value


def _as_prior(prior, num_classes) -> np.ndarray:
    p = np.asarray(prior, dtype=np.float64)
    if p.ndim != 1 or p.size < 2:
        raise ValueError(f"prior must be a vector of at least 2 probabilities, got {prior!r}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"prior must hold finite probabilities >= 0, got {prior!r}")
    total = math.fsum(p.tolist())
    if abs(total - 1.0) > PRIOR_TOLERANCE:
        raise ValueError(
            f"prior must sum to 1 (within {PRIOR_TOLERANCE:g}), got a sum of {total!r}"
        )
    if num_classes is not None and _as_classes(num_classes) != p.size:
        raise ValueError(
            f"prior has {p.size} entries but num_classes is {num_classes!r}; they must agree"
        )
    if (p == 0).any():
        raise ValueError(
            "prior must give every class a probability > 0 (Delta_U uses min_c pi_c), "
            f"got {prior!r}"
        )
    return p


def _class_setting(num_classes, prior) -> tuple[int, np.ndarray | None]:
    """Resolve (C, prior); prior is None when it is uniform."""
    if prior is None:
        if num_classes is None:
            raise ValueError("give num_classes (an integer >= 2) or prior (a probability vector)")
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
def _log_cosh(x: float) -> float:
    """log cosh(x), stable for large x."""
    x = abs(x)
    return x + math.log1p(math.exp(-2.0 * x)) - math.log(2.0)


def harmonic_number(n: int) -> float:
    """H_n = 1 + 1/2 + ... + 1/n, correctly rounded to float64 (H_0 = 0).

    Summed in 40-digit decimal arithmetic, so the only rounding is the final one.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    return _harmonic(int(n))


@lru_cache(maxsize=64)
def _harmonic(n: int) -> float:
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        one = decimal.Decimal(1)
        return float(sum((one / i for i in range(1, n + 1)), decimal.Decimal(0)))


def _log_one_minus_tau(k: np.ndarray, num_classes: int) -> np.ndarray:
    """log (1 - 1/C)^K, exact in log space (never 1 - tau_K)."""
    return k * math.log1p(-1.0 / num_classes)


def _binomial_expectation(k: np.ndarray, num_classes: int, fn) -> np.ndarray:
    """E_{m ~ Binom(K, 1/C)}[fn(m, K)] for each K, summing the pmf where it is not negligible.

    The pmf is summed over m in [mean - 40 sd - 20, mean + 40 sd + 20] intersected with
    [0, K]; the mass left out is below 1e-300, so the result equals the full finite sum to
    float64 precision while costing O(sqrt(K / C)) terms for large K.
    """
    p = 1.0 / num_classes
    out = np.empty(k.shape, dtype=np.float64)
    flat_k = k.ravel()
    flat_out = out.ravel()
    for i, kk in enumerate(flat_k):
        kk = int(kk)
        mean = kk * p
        sd = math.sqrt(kk * p * (1.0 - p))
        lo = max(0, math.floor(mean - 40.0 * sd - 20.0))
        hi = min(kk, math.ceil(mean + 40.0 * sd + 20.0))
        m = np.arange(lo, hi + 1, dtype=np.float64)
        log_pmf = (
            gammaln(kk + 1.0)
            - gammaln(m + 1.0)
            - gammaln(kk - m + 1.0)
            + m * math.log(p)
            + (kk - m) * math.log1p(-p)
        )
        pmf = np.exp(log_pmf)
        flat_out[i] = math.fsum((pmf * fn(m, kk)).tolist())
    return flat_out.reshape(k.shape)


# --------------------------------------------------------------------------- the gaps
def upper_gap(k, num_classes=None, prior=None, b=1.0):
    """Delta_U: R_mu <= R_cont + Delta_U.

    Uniform prior: log(C / K) + 2 log cosh(b^2). Prior pi: 2 log cosh(b^2) - log(K min_c pi_c).
    """
    kk = _as_k(k)
    c, p = _class_setting(num_classes, prior)
    b2 = _as_b(b) ** 2
    pi_min = 1.0 / c if p is None else float(p.min())
    gap = 2.0 * _log_cosh(b2) - np.log(kk * pi_min)
    return _shape_out(gap, k)


def lower_gap(k, num_classes=None, prior=None, b=1.0):
    """Delta_L: R_cont + Delta_L <= R_mu.

    Uniform prior: the larger of the paper's log C + log K - 2 log(K + 1) - 2 log cosh(b^2)
    and the derived -2 log cosh(b^2) - log(1 + K / C). Prior pi: the derived form with
    max_c pi_c, -2 log cosh(b^2) - log(1 + K max_c pi_c).
    """
    kk = _as_k(k).astype(np.float64)
    c, p = _class_setting(num_classes, prior)
    lc = 2.0 * _log_cosh(_as_b(b) ** 2)
    pi_max = 1.0 / c if p is None else float(p.max())
    derived = -lc - np.log1p(kk * pi_max)
    if p is None:
        paper = math.log(c) + np.log(kk) - 2.0 * np.log1p(kk) - lc
        derived = np.maximum(paper, derived)
    return _shape_out(derived, k)


# --------------------------------------------------------------------------- ideal values
def optimal_contrastive_loss(k, num_classes, b=1.0):
    """R_cont*(K, C, b) = sum_m Binom(m; K, 1/C) log(1 + m + (K - m) e^{-2 b^2}).

    The contrastive loss when every same-class inner product is b^2 and every cross-class
    one is -b^2 (the ideal normalized encoder).
    """
    kk = _as_k(k)
    c = _as_classes(num_classes)
    q = math.exp(-2.0 * _as_b(b) ** 2)
    values = _binomial_expectation(kk, c, lambda m, n: np.log1p(m + (n - m) * q))
    return _shape_out(values, k)


def optimal_supervised_loss(num_classes, b=1.0):
    """R_mu*(C, b) = log(1 + (C - 1) e^{-2 b^2}) of the ideal normalized encoder."""
    c = _as_classes(num_classes)
    return math.log1p((c - 1) * math.exp(-2.0 * _as_b(b) ** 2))


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
    return _shape_out(_binomial_expectation(kk, c, lambda m, n: np.log1p(m)), k)


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


def log_coverage_probability(n, num_classes):
    """log v_n(C), accurate where v_n itself underflows; -inf for n < C."""
    c = _as_classes(num_classes)
    arr = np.asarray(n)
    if arr.dtype == bool or arr.dtype.kind not in "iuf" or arr.size == 0:
        raise ValueError(f"n must be integers >= 0, got {n!r}")
    if arr.dtype.kind == "f" and (~np.isfinite(arr) | (arr != np.round(arr))).any():
        raise ValueError(f"n must be integers >= 0, got {n!r}")
    if (arr < 0).any():
        raise ValueError(f"n must be integers >= 0, got {arr[arr < 0].flat[0].item()!r}")
    nn = arr.astype(np.int64)
    table = _log_coverage_table(int(nn.max()), c)
    return _shape_out(table[nn], n)


def coverage_probability(n, num_classes):
    """v_n(C): probability that n uniform draws from C classes cover all C of them.

    One call computes every requested n (an array) in a single pass of the recursion up to
    max(n): O(max(n) * C) vectorized work. v_n = 0 for n < C and v_C = C! / C^C.
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
    arr = np.asarray(loss, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"loss must be finite, got {loss!r}")
    try:
        lb, kb = np.broadcast_arrays(arr, kk)
    except ValueError:
        raise ValueError(
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
    values = _scaled(2.0 * lb - np.asarray(collision_term(kb, c)), np.where(valid, -log_v, 0.0))
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
