"""Every quantity of the surrogate-gap theory, exactly, in float64 and vectorized over K.

Implements the two-sided bound of

    H. Bao, Y. Nagano, K. Nozawa. "On the Surrogate Gap between Contrastive and Supervised
    Losses." ICML 2022, PMLR 162:1585-1606 (arXiv:2110.02501),

    R_cont(f) + Delta_L  <=  R_mu(f)  <=  R_cont(f) + Delta_U,

its non-uniform-prior form, the ideal losses of normalized features, and the earlier upper
bounds it is compared with (Arora et al. 2019, Nozawa & Sato 2021, Ash et al. 2022).
All losses are in nats. Pure numpy (and mpmath, in surrogap.theory.special): never imports torch.

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

import math

import numpy as np

from surrogap.core.columns import VACUITY
from surrogap.core.errors import UserError
from surrogap.theory import special

__all__ = [
    "MAX_CLASSES",
    "MAX_K",
    "arora_bound",
    "ash_bound",
    "bao_lower_bound",
    "bao_upper_bound",
    "bounds_at",
    "collision_probability",
    "collision_term",
    "coverage_probability",
    "harmonic_number",
    "holds",
    "log_coverage_probability",
    "loss_coefficients",
    "lower_gap",
    "max_supervised_loss",
    "nozawa_sato_bound",
    "optimal_contrastive_loss",
    "optimal_supervised_loss",
    "upper_bound_vacuity",
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
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and not 1 <= k <= MAX_K:
        raise UserError(f"k must be {K_ALLOWED}, got {k!r}")
    try:
        arr = np.asarray(k)
    except (OverflowError, ValueError):
        raise UserError(f"k must be {K_ALLOWED}, got {k!r}") from None
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise UserError(f"k must be {K_ALLOWED}, got {k!r}")
    if arr.size == 0:
        raise UserError("k must hold at least one value, got an empty array")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise UserError(f"k must be {K_ALLOWED}, got {arr[bad].flat[0].item()!r}")
    bad = (arr < 1) | (arr > MAX_K)
    if bad.any():
        raise UserError(f"k must be {K_ALLOWED}, got {arr[bad].flat[0].item()!r}")
    return arr.astype(np.int64)


def _as_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        if isinstance(num_classes, (float, np.floating)) and float(num_classes).is_integer():
            num_classes = int(num_classes)
        else:
            raise UserError(f"num_classes must be {CLASSES_ALLOWED}, got {num_classes!r}")
    if not 2 <= num_classes <= MAX_CLASSES:
        raise UserError(f"num_classes must be {CLASSES_ALLOWED}, got {num_classes!r}")
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
    return special.harmonic(int(n))


def _log_one_minus_tau(k: np.ndarray, num_classes: int) -> np.ndarray:
    """log (1 - 1/C)^K, exact in log space (never 1 - tau_K)."""
    return k * math.log1p(-1.0 / num_classes)


# --------------------------------------------------------------------------- the gaps
def upper_gap(k, num_classes=None, prior=None, b=1.0):
    """Delta_U: R_mu <= R_cont + Delta_U.

    Uniform prior: log(C / K) + 2 log cosh(b^2). Prior pi: the smaller of the two valid forms,
    the paper's log(max_c pi_c C^2 cosh^2(b^2) / K) and the derived
    2 log cosh(b^2) - log(K min_c pi_c) (docs/THEORY.md, section 3.2); both equal
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
    return _shape_out(special.log_affine_expectation(kk, c, q), k)


def optimal_supervised_loss(num_classes, b=1.0):
    """R_mu*(C, b) = log(1 + (C - 1) e^{-2 b^2}) of the ideal normalized encoder."""
    c = _as_classes(num_classes)
    return math.log1p((c - 1) * math.exp(-2.0 * _b_squared(b)))


def max_supervised_loss(num_classes, b=1.0) -> float:
    """The largest R_mu possible at feature norm b: every logit f(x)^T mu_y lies in
    [-b^2, b^2], worst with the true one at -b^2 and the other C - 1 at +b^2:
    log(1 + (C - 1) e^{2 b^2}) (inf where it leaves float64)."""
    c = _as_classes(num_classes)
    b2 = _b_squared(b)
    if 2.0 * b2 < 700.0:
        return math.log1p((c - 1) * math.exp(2.0 * b2))
    return 2.0 * b2 + math.log(c - 1)  # e^{2 b^2} (C - 1) >> 1: the log1p is exact here


# how much an upper bound on R_mu says (`upper_bound_vacuity`)
# no: below log C, better than predicting uniformly; above_log_c: above log C, the uniform
# predictor's loss, weaker than it; vacuous: above the largest R_mu possible at norm b,
# excludes nothing (the words core.columns.VACUITY allows in a table)
NOT_VACUOUS, ABOVE_LOG_C, VACUOUS = VACUITY


def upper_bound_vacuity(upper, num_classes, b=1.0) -> str | None:
    """The one rule for a vacuous upper bound on R_mu (docs/THEORY.md, section 8, claim 2):
    VACUOUS above `max_supervised_loss(C, b)`, ABOVE_LOG_C above log C (weaker than
    predicting uniformly), else NOT_VACUOUS. None as `upper` is +inf (it bounds nothing,
    as in `holds`); NaN gives None."""
    up = math.inf if upper is None else float(upper)
    if math.isnan(up):
        return None
    if up > max_supervised_loss(num_classes, b):
        return VACUOUS
    return ABOVE_LOG_C if up > math.log(_as_classes(num_classes)) else NOT_VACUOUS


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
    return _shape_out(special.log_affine_expectation(kk, c, 0.0), k)


def log_coverage_probability(n, num_classes):
    """log v_n(C), accurate where v_n itself underflows; -inf for n < C.

    By the cheapest of three exact-enough methods (docs/THEORY.md, section 6;
    surrogap.theory.special.log_coverage): bounded time and memory per requested n for
    every n up to MAX_K + 1 and C up to MAX_CLASSES.
    """
    c = _as_classes(num_classes)
    try:
        arr = np.asarray(n)
    except (OverflowError, ValueError):
        raise UserError(f"n must be integers in 0..{MAX_K + 1}, got {n!r}") from None
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
    return _shape_out(special.log_coverage(arr.astype(np.int64), c), n)


def coverage_probability(n, num_classes):
    """v_n(C): probability that n uniform draws from C classes cover all C of them.

    exp of `log_coverage_probability`: v_n = 0 for n < C and v_C = C! / C^C.
    """
    return _shape_out(np.exp(np.asarray(log_coverage_probability(n, num_classes))), n)


def _log_v_next(k: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(log v_{K+1}(C) where K + 1 >= C and 0 elsewhere, where K + 1 >= C): the earlier
    bounds' coverage factor, defined only where K + 1 negatives can cover every class."""
    valid = k + 1 >= num_classes
    log_v = np.asarray(log_coverage_probability(k + 1, num_classes))
    return np.where(valid, log_v, 0.0), valid


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
    log_v, valid = _log_v_next(kb, c)
    log_factor = np.where(valid, -_log_one_minus_tau(kb, c) - log_v, 0.0)
    values = _scaled(lb - np.asarray(collision_term(kb, c)), log_factor)
    return _finish(np.where(valid, values, np.nan), scalar)


def nozawa_sato_bound(loss, k, num_classes):
    """Nozawa & Sato (2021): (2 L - Col) / v_{K+1}; NaN where K + 1 < C."""
    lb, kb, scalar = _loss_and_k(loss, k)
    c = _as_classes(num_classes)
    log_v, valid = _log_v_next(kb, c)
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


# the earlier bounds by their results.csv column (surrogap.core.schema.EARLIER_BOUNDS)
EARLIER_FUNCTIONS = {"arora": arora_bound, "nozawa_sato": nozawa_sato_bound, "ash": ash_bound}


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
    log_v, valid = _log_v_next(kk, c)
    log_omt = _log_one_minus_tau(kk, c)
    with np.errstate(over="ignore"):
        arora = np.where(valid, np.exp(-log_omt - log_v), np.nan)
        nozawa = np.where(valid, 2.0 * np.exp(-log_v), np.nan)
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
    for name, fn in EARLIER_FUNCTIONS.items():
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
