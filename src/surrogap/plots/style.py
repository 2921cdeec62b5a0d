"""The figures' shared look: seaborn's white grid with compact fonts while a figure is
built (no pyplot, nothing global touched), one colour per K, a log-K axis, the bound labels.

All losses in nats; every bound uses L2-normalized features, so b = 1."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import matplotlib as mpl
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from surrogap.theory import bounds

EARLIER_BOUNDS = {
    "arora": "Arora et al. 2019",
    "nozawa_sato": "Nozawa & Sato 2021",
    "ash": "Ash et al. 2022",
}


# how much an upper bound on R_mu says, in the words of every legend and of the report's
# text: the one rule is theory.bounds.upper_bound_vacuity (tests/test_figures.py)
VACUITY_WORDS = {
    bounds.NOT_VACUOUS: "below log C",
    bounds.ABOVE_LOG_C: "weaker than uniform",
    bounds.VACUOUS: "vacuous",
}


def reference_lines(ax, c: int, log_c: bool = True) -> list[float]:
    """The two levels of the vacuity rule as dashed lines, labelled in its words: log C
    (the uniform predictor's loss; a bound above it is weaker than uniform) and
    log(1 + (C - 1) e^2), the largest R_mu at b = 1 (a bound above it is vacuous).
    Returns the levels drawn."""
    top = bounds.max_supervised_loss(c)
    levels = []
    if log_c:
        levels.append(math.log(c))
        ax.axhline(
            math.log(c), color="0.4", lw=1.0, ls=(0, (6, 3)),
            label=rf"$\log C$ = {math.log(c):.3f}, the uniform predictor's loss: a bound "
            f"above it is {VACUITY_WORDS[bounds.ABOVE_LOG_C]}",
        )  # fmt: skip
    levels.append(top)
    ax.axhline(
        top, color="0.2", lw=1.0, ls=(0, (1, 2)),
        label=rf"$\log(1 + (C-1)e^2)$ = {top:.3f}, the largest $R_\mu$: a bound above it "
        f"is {VACUITY_WORDS[bounds.VACUOUS]}",
    )  # fmt: skip
    return levels


BOUND_LABELS = {
    "bao": "Bao et al. (2022)",
    "arora": "Arora et al. (2019)",
    "nozawa_sato": "Nozawa & Sato (2021)",
    "ash": "Ash et al. (2022)",
}


# --------------------------------------------------------------------------- results figures
COMPACT_FONTS = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Seaborn's white grid and compact fonts, only while a figure is being built."""
    rc = {**COMPACT_FONTS, "legend.title_fontsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8}
    with sns.axes_style("whitegrid"), mpl.rc_context(rc):
        yield


def k_colors(ks: Sequence[int]) -> dict[int, tuple]:
    """One colour per K, dark to light along viridis (the lightest yellow left out)."""
    ks = sorted(set(int(k) for k in ks))
    cmap = mpl.colormaps["viridis"]
    if len(ks) == 1:
        return {ks[0]: cmap(0.35)}
    return {k: cmap(0.05 + 0.8 * i / (len(ks) - 1)) for i, k in enumerate(ks)}


def require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """A ValueError naming `what` and the columns `df` lacks, or saying it has no rows."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs the columns {', '.join(missing)}")
    if df.empty:
        raise ValueError(f"{what} needs at least one row")


def k_axis(ax, ks: Sequence[int]) -> None:
    """A log K axis that labels the measured K values themselves."""
    ks = sorted(set(int(k) for k in ks))
    ax.set_xscale("log")
    if len(ks) > 8:  # too many to label each: plain numbers at the powers of ten
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
        return
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    if len(ks) == 1:
        ax.set_xlim(ks[0] / 2, ks[0] * 2)


def title_of(df: pd.DataFrame) -> str:
    parts = []
    if "dataset" in df.columns and df["dataset"].nunique() == 1:
        parts.append(str(df["dataset"].iloc[0]))
    if "classes" in df.columns and df["classes"].nunique() == 1:
        parts.append(f"C = {int(df['classes'].iloc[0])}")
    return ", ".join(parts)


def plain_log_label(value: float, _pos: int) -> str:
    """'2', '30', '0.5' on a log axis, but only for the mantissas 1, 2, 3 and 5."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if mantissa in (1.0, 2.0, 3.0, 5.0) else ""


THEORY_STYLE = {"axes.spines.right": False, "axes.spines.top": False}


def new_figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    with sns.axes_style("whitegrid", THEORY_STYLE), sns.plotting_context("notebook"):
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def mean_band(
    ax, frame: pd.DataFrame, x: str, y: str, color, label: str, limits=(-np.inf, np.inf)
) -> None:
    """Mean over seeds with a ± s.e. band, the band clipped to `limits` (e.g. [0, 1])."""
    stats = frame.groupby(x)[y].agg(["mean", "sem"]).sort_index()
    ax.plot(stats.index, stats["mean"], color=color, lw=1.6, label=label)
    if stats["sem"].notna().any():
        sd = stats["sem"].fillna(0.0)
        low = (stats["mean"] - sd).clip(*limits)
        high = (stats["mean"] + sd).clip(*limits)
        ax.fill_between(stats.index, low, high, color=color, alpha=0.2, lw=0)
