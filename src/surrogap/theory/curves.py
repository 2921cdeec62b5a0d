"""The ideal curves of Bao, Nagano & Nozawa (ICML 2022, arXiv:2110.02501), Fig. 3 and Fig. 4.

Fig. 3: for the ideal normalized encoder, R_cont* + Delta_U (the upper bound on R_mu)
beside R_mu*, and R_mu* - Delta_L (the upper bound on R_cont) beside R_cont*, against K.
Fig. 4: the coefficient of the contrastive loss in each upper bound on R_mu (Bao et al.,
Arora et al. 2019, Nozawa & Sato 2021, Ash et al. 2022), and each bound evaluated at
R_cont*, against K; the earlier bounds are undefined (NaN) for K + 1 < C.

Pure functions returning tidy pandas frames, drawn by surrogap.plots.theory and written by
the theory stage (surrogap.pipeline.theory). All losses in nats.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from surrogap.core.schema import EARLIER_BOUNDS
from surrogap.theory import bounds

__all__ = [
    "BOUND_NAMES",
    "K_MAX_LIMIT",
    "fig3_frame",
    "fig4_frame",
]

BOUND_NAMES = ("bao", *EARLIER_BOUNDS)
K_MAX_LIMIT = 100_000


# --------------------------------------------------------------------------- frames
def _ks(k_max: int) -> np.ndarray:
    if isinstance(k_max, (bool, np.bool_)) or not isinstance(k_max, (int, np.integer)) or k_max < 1:
        raise ValueError(f"k_max must be an integer >= 1, got {k_max!r}")
    return np.arange(1, int(k_max) + 1)


def fig3_frame(classes: Iterable[int] = (50, 100), k_max: int = 99, b: float = 1.0) -> pd.DataFrame:
    """One row per (C, K), K = 1..k_max.

    Columns: classes, k, optimal_contrastive_loss (R_cont*), optimal_supervised_loss
    (R_mu*), upper (R_cont* + Delta_U, the bound on R_mu), lower_supervised
    (R_mu* - Delta_L, the bound on R_cont).
    """
    ks = _ks(k_max)
    parts = []
    for c in classes:
        r_cont = np.asarray(bounds.optimal_contrastive_loss(ks, c, b))
        r_mu = bounds.optimal_supervised_loss(c, b)
        parts.append(
            pd.DataFrame(
                {
                    "classes": np.full(ks.shape, int(c)),
                    "k": ks,
                    "optimal_contrastive_loss": r_cont,
                    "optimal_supervised_loss": np.full(ks.shape, r_mu),
                    "upper": r_cont + np.asarray(bounds.upper_gap(ks, c, b=b)),
                    "lower_supervised": r_mu - np.asarray(bounds.lower_gap(ks, c, b=b)),
                }
            )
        )
    if not parts:
        raise ValueError("classes must name at least one number of classes, got none")
    df = pd.concat(parts, ignore_index=True)
    df.attrs["b"] = float(b)
    return df


def fig4_frame(classes: int = 10, k_max: int = 99, b: float = 1.0) -> pd.DataFrame:
    """One row per (K, bound), K = 1..k_max, bound in bao, arora, nozawa_sato, ash.

    ``coefficient`` is the coefficient of the contrastive loss in the bound
    (``bounds.loss_coefficients``), ``value`` the bound evaluated at R_cont*(K, C, b);
    NaN where a bound is undefined (K + 1 < C for Arora and Nozawa-Sato).
    """
    ks = _ks(k_max)
    r_cont = np.asarray(bounds.optimal_contrastive_loss(ks, classes, b))
    coef = bounds.loss_coefficients(ks, classes)
    values = {"bao": np.asarray(bounds.bao_upper_bound(r_cont, ks, classes, b=b))}
    for name, fn in bounds.EARLIER_FUNCTIONS.items():
        values[name] = np.asarray(fn(r_cont, ks, classes))
    df = pd.concat(
        [
            pd.DataFrame(
                {
                    "k": ks,
                    "bound": name,
                    "coefficient": np.asarray(coef[name], dtype=np.float64),
                    "value": values[name],
                }
            )
            for name in BOUND_NAMES
        ],
        ignore_index=True,
    )
    df.attrs.update(classes=int(classes), b=float(b))
    return df
