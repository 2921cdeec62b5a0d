"""The ideal curves of Bao, Nagano & Nozawa (ICML 2022, arXiv:2110.02501), Fig. 3 and Fig. 4.

Fig. 3: for the ideal normalized encoder, R_cont* + Delta_U (the upper bound on R_mu)
beside R_mu*, and R_mu* - Delta_L (the upper bound on R_cont) beside R_cont*, against K.
Fig. 4: the coefficient of the contrastive loss in each upper bound on R_mu (Bao et al.,
Arora et al. 2019, Nozawa & Sato 2021, Ash et al. 2022), and each bound evaluated at
R_cont*, against K; the earlier bounds are undefined (NaN) for K + 1 < C.

Pure functions returning tidy pandas frames (the figures are drawn by
surrogap.report.figures.plot_fig3 / plot_fig4), the `theory` section of the params file
as a frozen dataclass, and an atomic file writer for the `theory` stage.
All losses in nats.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from surrogap import bounds, config, io
from surrogap.errors import UserError

__all__ = [
    "BOUND_NAMES",
    "TheoryParams",
    "fig3_frame",
    "fig4_frame",
    "read_params",
    "write_atomic",
    "write_outputs",
]

BOUND_NAMES = ("bao", "arora", "nozawa_sato", "ash")
K_MAX_LIMIT = 100_000


# --------------------------------------------------------------------------- params
@dataclass(frozen=True)
class TheoryParams:
    """The `theory` section of params.yaml."""

    classes_fig3: tuple[int, ...] = (50, 100)
    classes_fig4: int = 10
    k_max: int = 99
    b: float = 1.0

    @classmethod
    def from_dict(cls, section: Any) -> TheoryParams:
        """Validate a mapping; missing keys take the defaults, unknown keys are errors.

        Raises UserError with one line naming the key, the value and what is allowed.
        """
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise UserError(
                f"theory: got {section!r}; allowed: a mapping with keys {', '.join(_KEYS)}"
            )
        for key, value in section.items():
            if key not in _KEYS:
                raise UserError(
                    f"theory: unknown key {key!r} (value {value!r}); allowed keys: {', '.join(_KEYS)}"
                )
        values: dict[str, Any] = {}
        if "classes_fig3" in section:
            values["classes_fig3"] = _classes_list(section["classes_fig3"])
        if "classes_fig4" in section:
            values["classes_fig4"] = _int_at_least("classes_fig4", section["classes_fig4"], 2)
        if "k_max" in section:
            values["k_max"] = _int_at_least("k_max", section["k_max"], 1, K_MAX_LIMIT)
        if "b" in section:
            values["b"] = _positive_number("b", section["b"])
        return cls(**values)


_KEYS = tuple(f.name for f in fields(TheoryParams))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _int_at_least(key: str, value: Any, low: int, high: int | None = None) -> int:
    if not _is_int(value) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise UserError(f"theory.{key}: got {value!r}; allowed: {allowed}")
    return int(value)


def _classes_list(value: Any) -> tuple[int, ...]:
    allowed = "a non-empty list of distinct integers >= 2, like [50, 100]"
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(_is_int(v) and v >= 2 for v in value)
        or len(set(value)) != len(value)
    ):
        raise UserError(f"theory.classes_fig3: got {value!r}; allowed: {allowed}")
    return tuple(int(v) for v in value)


def _positive_number(key: str, value: Any) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:
        raise UserError(f"theory.{key}: got {value!r}; allowed: a finite number > 0")
    return float(value)


def read_params(path: str | os.PathLike) -> TheoryParams:
    """Read the `theory` section of a YAML params file (UserError if absent or invalid)."""
    params = config.load_params(path)
    config.check_top_level(params)
    return TheoryParams.from_dict(config.section(params, "theory"))


# --------------------------------------------------------------------------- frames
def _ks(k_max: int) -> np.ndarray:
    return np.arange(1, _int_at_least("k_max", k_max, 1) + 1)


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
def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then os.replace it into place.

    (``surrogap.io.write_with``: fsynced, a plain file mode, UserError naming the path on an
    OSError, the old file untouched on any failure.)
    """
    io.write_with(path, write)


def _save_png(fig) -> Callable[[Path], None]:
    return lambda tmp: fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")


def _save_csv(df: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: df.to_csv(tmp, index=False)


def write_outputs(params: TheoryParams, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Compute both frames and figures, then write fig3/fig4 .csv/.png atomically."""
    from surrogap.report.figures import plot_fig3, plot_fig4

    df3 = fig3_frame(params.classes_fig3, params.k_max, params.b)
    df4 = fig4_frame(params.classes_fig4, params.k_max, params.b)
    fig3, fig4 = plot_fig3(df3), plot_fig4(df4)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("fig3.csv", "fig3.png", "fig4.csv", "fig4.png")}
    write_atomic(paths["fig3.csv"], _save_csv(df3))
    write_atomic(paths["fig3.png"], _save_png(fig3))
    write_atomic(paths["fig4.csv"], _save_csv(df4))
    write_atomic(paths["fig4.png"], _save_png(fig4))
    return paths
