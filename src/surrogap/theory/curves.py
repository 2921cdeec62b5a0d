"""The ideal curves of Bao, Nagano & Nozawa (ICML 2022, arXiv:2110.02501), Fig. 3 and Fig. 4.

Fig. 3: for the ideal normalized encoder, R_cont* + Delta_U (the upper bound on R_mu)
beside R_mu*, and R_mu* - Delta_L (the upper bound on R_cont) beside R_cont*, against K.
Fig. 4: the coefficient of the contrastive loss in each upper bound on R_mu (Bao et al.,
Arora et al. 2019, Nozawa & Sato 2021, Ash et al. 2022), and each bound evaluated at
R_cont*, against K; the earlier bounds are undefined (NaN) for K + 1 < C.

Pure functions returning tidy pandas frames (the figures are drawn by
surrogap.plots.figures.plot_fig3 / plot_fig4), the `theory` section of the params file
as a frozen dataclass parsed by surrogap.core.config.parse, and the writer of the `theory`
stage's four files. All losses in nats.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from surrogap.core import config, io
from surrogap.core.config import at_least, positive, spec
from surrogap.theory import bounds

__all__ = [
    "BOUND_NAMES",
    "K_MAX_LIMIT",
    "TheoryParams",
    "fig3_frame",
    "fig4_frame",
    "read_params",
    "write_outputs",
]

BOUND_NAMES = ("bao", "arora", "nozawa_sato", "ash")
K_MAX_LIMIT = 100_000


# --------------------------------------------------------------------------- params
def _distinct_classes(value: tuple[int, ...]) -> bool:
    return len(value) > 0 and all(c >= 2 for c in value) and len(set(value)) == len(value)


@dataclass(frozen=True)
class TheoryParams:
    """The `theory` section of params.yaml (``config.parse(TheoryParams, section, "theory")``:
    missing keys take these defaults; an unknown key, a wrong type or a value out of range is
    one UserError line naming the key, the value and what is allowed)."""

    # the numbers of classes C of Fig. 3, one curve pair each
    classes_fig3: tuple[int, ...] = spec(
        (50, 100),
        check=_distinct_classes,
        allowed="a non-empty list of distinct integers >= 2, like [50, 100]",
    )
    # the number of classes C of Fig. 4
    classes_fig4: int = spec(10, check=at_least(2), allowed="an integer >= 2")
    # both figures run over K = 1..k_max
    k_max: int = spec(
        99, check=lambda v: 1 <= v <= K_MAX_LIMIT, allowed=f"an integer in [1, {K_MAX_LIMIT}]"
    )
    # the feature norm b of the ideal encoder: same-class inner products b^2, others -b^2
    b: float = spec(1.0, check=positive, allowed="a finite number > 0")


def read_params(path: str | os.PathLike) -> TheoryParams:
    """Read the `theory` section of a YAML params file (UserError if absent or invalid),
    after checking every top-level key."""
    params = config.load_params(path)
    config.check_top_level(params)
    return config.parse(TheoryParams, config.section(params, "theory"), "theory")


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
    values = {
        "bao": np.asarray(bounds.bao_upper_bound(r_cont, ks, classes, b=b)),
        "arora": np.asarray(bounds.arora_bound(r_cont, ks, classes)),
        "nozawa_sato": np.asarray(bounds.nozawa_sato_bound(r_cont, ks, classes)),
        "ash": np.asarray(bounds.ash_bound(r_cont, ks, classes)),
    }
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


# --------------------------------------------------------------------------- output
def _save_png(fig) -> Callable[[Path], None]:
    return lambda tmp: fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")


def _save_csv(df: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: df.to_csv(tmp, index=False)


def write_outputs(params: TheoryParams, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Compute both frames and figures, then write fig3/fig4 .csv/.png, each atomically
    (``io.write_with``); the stage replaces the whole folder (``io.atomic_dir``)."""
    from surrogap.plots.figures import plot_fig3, plot_fig4

    df3 = fig3_frame(params.classes_fig3, params.k_max, params.b)
    df4 = fig4_frame(params.classes_fig4, params.k_max, params.b)
    fig3, fig4 = plot_fig3(df3), plot_fig4(df4)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("fig3.csv", "fig3.png", "fig4.csv", "fig4.png")}
    io.write_with(paths["fig3.csv"], _save_csv(df3))
    io.write_with(paths["fig3.png"], _save_png(fig3))
    io.write_with(paths["fig4.csv"], _save_csv(df4))
    io.write_with(paths["fig4.png"], _save_png(fig4))
    return paths
