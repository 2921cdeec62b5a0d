"""The report's headline figure: does a larger K help, and why? Per dataset (one column),
R_mu against K with the seeds' spread (top), and the surrogate gap R_mu - R_cont against K
beside the mechanical null (bottom): the encoder trained at the smallest K, held fixed and
evaluated at every K (the fixed_null stage). The fixed encoder's R_mu does not move with
K, yet its gap falls, because R_cont rises with K for any encoder: the part of the gap's
decay that no learning explains. Losses in nats, b = 1."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from surrogap.plots.style import figure_style, k_axis, require

__all__ = ["plot_headline"]

LEARNED, NULL = "C0", "0.45"


def _spread(ax, frame: pd.DataFrame, column: str, color, ls="-", marker="o") -> None:
    """Each seed a faint dot, the mean over seeds a line, min-max over seeds a band."""
    stats = frame.groupby("k")[column].agg(["mean", "min", "max"]).sort_index()
    ax.scatter(frame["k"], frame[column], color=color, s=9, alpha=0.45, lw=0)
    ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.18, lw=0)
    ax.plot(stats.index, stats["mean"], color=color, ls=ls, marker=marker, ms=4, lw=1.6)


def _with_gap(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the surrogate gap R_mu - R_cont as a column `gap`."""
    return frame.assign(gap=frame["supervised_loss"] - frame["contrastive_loss"])


def plot_headline(results: pd.DataFrame, null: pd.DataFrame | None = None) -> Figure:
    """Two rows, one column per dataset of `results` (in its order).

    results: columns dataset, classes, k, seed, supervised_loss, contrastive_loss,
    lower_gap, upper_gap. null: the fixed_null stage's table (columns dataset, k, seed,
    supervised_loss, contrastive_loss) or None, then the bottom row has no null."""
    need = ["dataset", "classes", "k", "seed", "supervised_loss", "contrastive_loss"]
    require(results, [*need, "lower_gap", "upper_gap"], "plot_headline")
    datasets = list(pd.unique(results["dataset"]))
    n = len(datasets)
    with figure_style():
        fig = Figure(figsize=(max(2.3 * n, 4.6), 5.0), layout="constrained")
        axes = fig.subplots(2, n, squeeze=False)
        for j, ds in enumerate(datasets):
            rows = _with_gap(results[results["dataset"] == ds])
            fixed = None if null is None else _with_gap(null[null["dataset"] == ds])
            top, bottom = axes[0, j], axes[1, j]
            band = rows.groupby("k")[["lower_gap", "upper_gap"]].mean().sort_index()
            bottom.fill_between(
                band.index, band["lower_gap"], band["upper_gap"], color="C2", alpha=0.08, lw=0
            )
            for ax, column in ((top, "supervised_loss"), (bottom, "gap")):
                _spread(ax, rows, column, LEARNED)
                if fixed is not None and len(fixed):
                    _spread(ax, fixed, column, NULL, ls="--", marker="s")
            bottom.axhline(0.0, color="0.6", lw=0.7)
            top.set_title(f"{ds} (C = {int(rows['classes'].iloc[0])})")
            for ax in (top, bottom):
                k_axis(ax, rows["k"].unique())
            bottom.set_xlabel("K (log scale)")
            if j == 0:
                top.set_ylabel(r"$R_\mu$ (nats; lower is better)")
                bottom.set_ylabel(r"gap $R_\mu - R_{\mathrm{cont}}$ (nats)")
        handles = [
            Line2D([], [], color=LEARNED, marker="o", ms=4, label="trained at each K"),
            Patch(color=LEARNED, alpha=0.3, label="min-max over seeds (dots: seeds)"),
            Patch(color="C2", alpha=0.15, label=r"band $[\Delta_L, \Delta_U]$"),
        ]
        if null is not None:
            handles.insert(
                1,
                Line2D(
                    [], [], color=NULL, ls="--", marker="s", ms=4,
                    label="mechanical null: the smallest-K encoder, fixed, at every K",
                ),
            )  # fmt: skip
        fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
        fig.suptitle(
            "Does a larger K help? Top: R_mu of the encoder trained at each K. "
            "Bottom: the gap, against the null that learns nothing",
            fontsize=9,
        )
    return fig
