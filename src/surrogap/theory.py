"""The ideal curves of Bao, Nagano & Nozawa (ICML 2022, arXiv:2110.02501), Fig. 3 and Fig. 4.

Fig. 3: for the ideal normalized encoder, R_cont* + Delta_U (the upper bound on R_mu)
beside R_mu*, and R_mu* - Delta_L (the upper bound on R_cont) beside R_cont*, against K.
Fig. 4: the coefficient of the contrastive loss in each upper bound on R_mu (Bao et al.,
Arora et al. 2019, Nozawa & Sato 2021, Ash et al. 2022), and each bound evaluated at
R_cont*, against K; the earlier bounds are undefined (NaN) for K + 1 < C.

Pure functions returning tidy pandas frames, figure functions returning matplotlib
Figures (drawn with seaborn, Agg canvas, no pyplot state), the `theory` section of the
params file as a frozen dataclass, and an atomic file writer for the `theory` stage.
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
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from surrogap import bounds, config, io
from surrogap.errors import UserError

__all__ = [
    "BOUND_LABELS",
    "BOUND_NAMES",
    "TheoryParams",
    "fig3_frame",
    "fig4_frame",
    "plot_fig3",
    "plot_fig4",
    "read_params",
    "write_atomic",
    "write_outputs",
]

BOUND_NAMES = ("bao", "arora", "nozawa_sato", "ash")
BOUND_LABELS = {
    "bao": "Bao et al. (2022)",
    "arora": "Arora et al. (2019)",
    "nozawa_sato": "Nozawa & Sato (2021)",
    "ash": "Ash et al. (2022)",
}
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


# --------------------------------------------------------------------------- figures
_STYLE = {"axes.spines.right": False, "axes.spines.top": False}


def _new_figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    with sns.axes_style("whitegrid", _STYLE), sns.plotting_context("notebook"):
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def plot_fig3(df: pd.DataFrame) -> Figure:
    """Per C, two panels: R_cont* + Delta_U beside R_mu*, and R_mu* - Delta_L beside R_cont*."""
    classes = list(dict.fromkeys(df["classes"].tolist()))
    fig, axes = _new_figure(len(classes), 2, (11.0, 3.9 * len(classes)))
    upper_label = r"$R^*_\mathrm{cont} + \Delta_U$ (upper bound on $R_\mu$)"
    mu_label = r"$R^*_\mu$"
    lower_label = r"$R^*_\mu - \Delta_L$ (upper bound on $R_\mathrm{cont}$)"
    cont_label = r"$R^*_\mathrm{cont}$"
    palette = sns.color_palette("deep")
    with sns.axes_style("whitegrid", _STYLE), sns.plotting_context("notebook"):
        for row, c in enumerate(classes):
            sub = df[df["classes"] == c]
            panels = (
                (axes[row, 0], [("upper", upper_label), ("optimal_supervised_loss", mu_label)],
                 rf"$C = {c}$: supervised loss $R_\mu$ and its upper bound"),
                (axes[row, 1], [("lower_supervised", lower_label), ("optimal_contrastive_loss", cont_label)],
                 rf"$C = {c}$: contrastive loss $R_\mathrm{{cont}}$ and its upper bound"),
            )  # fmt: skip
            for ax, series, title in panels:
                long = sub.melt(id_vars="k", value_vars=[s for s, _ in series], var_name="curve")
                long["curve"] = long["curve"].map(dict(series))
                sns.lineplot(
                    data=long,
                    x="k",
                    y="value",
                    hue="curve",
                    style="curve",
                    hue_order=[lab for _, lab in series],
                    style_order=[lab for _, lab in series],
                    palette=[palette[0], palette[3]],
                    errorbar=None,
                    linewidth=2,
                    ax=ax,
                )
                ax.set_title(title, fontsize="medium")
                ax.set_xlabel(r"number of negatives $K$")
                ax.set_ylabel("loss (nats)")
                ax.set_xlim(0, int(sub["k"].max()) + 1)
                ax.legend(title=None, fontsize="small", loc="best")
    b = df.attrs.get("b")
    fig.suptitle(
        "Ideal normalized encoder: the surrogate gap (Bao et al. 2022, Fig. 3)"
        + (f", $b = {b:g}$" if b is not None else ""),
        fontsize="large",
    )
    return fig


def plot_fig4(df: pd.DataFrame) -> Figure:
    """Left: the coefficient of the contrastive loss per bound; right: the bounds at R_cont*."""
    fig, axes = _new_figure(1, 2, (12.0, 5.0))
    data = df.replace([np.inf, -np.inf], np.nan).copy()
    data["bound"] = data["bound"].map(lambda n: BOUND_LABELS.get(n, n))
    order = [BOUND_LABELS[n] for n in BOUND_NAMES if n in set(df["bound"])]
    classes = df.attrs.get("classes")
    b = df.attrs.get("b")
    with sns.axes_style("whitegrid", _STYLE), sns.plotting_context("notebook"):
        for ax, column, ylabel, title in (
            (axes[0, 0], "coefficient", "coefficient of $R_\\mathrm{cont}$ (log scale)",
             "Coefficient of the contrastive loss"),
            (axes[0, 1], "value", "upper bound on $R_\\mu$ (nats, log scale)",
             "Upper bounds evaluated at $R^*_\\mathrm{cont}$"),
        ):  # fmt: skip
            sns.lineplot(
                data=data.dropna(subset=[column]),
                x="k",
                y=column,
                hue="bound",
                style="bound",
                hue_order=order,
                style_order=order,
                errorbar=None,
                linewidth=2,
                ax=ax,
            )
            ax.set_yscale("log")
            ax.set_xlabel(r"number of negatives $K$")
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize="medium")
            ax.set_xlim(0, int(df["k"].max()) + 1)
            if classes is not None and classes - 1 <= df["k"].max():
                ax.axvline(
                    classes - 1, color="0.5", linestyle=":", linewidth=1, label=r"$K + 1 = C$"
                )
        if classes is not None:
            r_mu = bounds.optimal_supervised_loss(classes, 1.0 if b is None else b)
            axes[0, 1].axhline(
                r_mu, color="black", linestyle="--", linewidth=1.2, label=r"$R^*_\mu$"
            )
        # one legend below both panels: inside, it would hide the steep curves
        handles, labels = axes[0, 1].get_legend_handles_labels()
        for ax in axes[0]:
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=len(labels),
            fontsize="small",
            frameon=False,
        )
    fig.suptitle(
        "Upper bounds on the supervised loss (Bao et al. 2022, Fig. 4)"
        + (f", $C = {classes}$" if classes is not None else "")
        + (f", $b = {b:g}$" if b is not None else ""),
        fontsize="large",
    )
    return fig


# --------------------------------------------------------------------------- output
def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then os.replace it into place.

    (``surrogap.io.write_with``: fsynced, a plain file mode, UserError naming the path on an
    OSError, the old file untouched on any failure.)
    """
    io.write_with(path, write)


def _save_png(fig: Figure) -> Callable[[Path], None]:
    return lambda tmp: fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")


def _save_csv(df: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: df.to_csv(tmp, index=False)


def write_outputs(params: TheoryParams, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Compute both frames and figures, then write fig3/fig4 .csv/.png atomically."""
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
