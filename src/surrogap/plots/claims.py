"""The claims' close-up figures: Fig. 9 of the paper (R_mu with error bars against Bao et
al.'s upper bound per K, linear scale) and heat maps that show the spread over seeds (mean
and s.d. per cell, as the paper prints them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from surrogap.plots.style import COMPACT_FONTS, reference_lines, require

__all__ = ["plot_accuracy_spread", "plot_bao_close"]


def _mean_sd(df: pd.DataFrame, by: list[str], column: str) -> pd.DataFrame:
    g = df.groupby(by)[column]
    return pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.size()})


def plot_bao_close(df: pd.DataFrame) -> Figure:
    """Fig. 9: per K (equally spaced, labelled), R_mu and Bao et al.'s upper bound on a
    linear scale, mean ± standard error over seeds, with each seed's R_mu as a dot and
    log C (the uniform predictor's loss) as a dashed line.

    df: results rows of one dataset (columns k, seed, classes, supervised_loss, bao_upper).
    """
    require(df, ("k", "classes", "supervised_loss", "bao_upper"), "plot_bao_close")
    ks = sorted(int(k) for k in df["k"].unique())
    x = {k: i for i, k in enumerate(ks)}
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", rc=COMPACT_FONTS):
        fig = Figure(figsize=(5.5, 3.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for col, label, colour, dx in (
            ("supervised_loss", "R_mu (test)", "C0", -0.08),
            ("bao_upper", "Bao et al. upper bound", "C3", 0.08),
        ):
            s = _mean_sd(df, ["k"], col).loc[ks]
            se = (s["sd"] / np.sqrt(s["n"])).fillna(0.0)
            xs = np.array([x[k] for k in ks]) + dx
            ax.errorbar(xs, s["mean"], yerr=se, fmt="o-", color=colour, capsize=4, label=label)
            if col == "supervised_loss":
                ax.scatter(df["k"].map(x) + dx, df[col], s=8, color=colour, alpha=0.4, zorder=3)
        c = int(df["classes"].iloc[0])
        reference_lines(ax, c)
        ax.set_xticks(range(len(ks)), [str(k) for k in ks])
        ax.set_xlabel("K (number of negatives)")
        ax.set_ylabel("loss (nats)")
        n = df.groupby("k").size()
        seeds = f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"
        name = str(df["dataset"].iloc[0]) if "dataset" in df.columns else ""
        ax.set_title(f"Fig. 9: R_mu against Bao's upper bound, {name} (C = {c}; n = {seeds})")
        fig.legend(loc="outside lower center", ncol=1, frameon=False)
    return fig


def plot_accuracy_spread(df: pd.DataFrame) -> Figure:
    """Fig. 7 / 8 with the spread: test accuracy over C x K, each cell 'mean ± s.d.' over
    seeds (colour: the mean), mean classifier and linear probe side by side.

    df: results rows of one kind (columns classes, k, mean_acc, linear_acc).
    """
    require(df, ("classes", "k", "mean_acc", "linear_acc"), "plot_accuracy_spread")
    stats = {col: _mean_sd(df, ["classes", "k"], col) for col in ("mean_acc", "linear_acc")}
    values = np.concatenate([s["mean"].to_numpy() for s in stats.values()])
    vmin, vmax = float(np.nanmin(values)), float(np.nanmax(values))
    if vmax - vmin < 1e-6:
        vmin, vmax = vmin - 0.05, vmax + 0.05
    titles = {"mean_acc": "mean classifier", "linear_acc": "linear probe"}
    with sns.axes_style("white"), sns.plotting_context("paper", rc=COMPACT_FONTS):
        n_c, n_k = df["classes"].nunique(), df["k"].nunique()
        fig = Figure(figsize=(max(8.0, 2.0 + 2.4 * n_k), 2.0 + 0.6 * n_c), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, 2)
        for i, (ax, (col, s)) in enumerate(zip(axes, stats.items(), strict=True)):
            mean = s["mean"].unstack("k").sort_index(ascending=False)
            sd = s["sd"].unstack("k").reindex_like(mean)
            text = mean.map(lambda v: f"{v:.3f}") + sd.map(
                lambda v: "" if pd.isna(v) else f"\n± {v:.3f}"
            )
            sns.heatmap(
                mean, ax=ax, annot=text.to_numpy(), fmt="", cmap="viridis", vmin=vmin,
                vmax=vmax, cbar=i == 1, cbar_kws={"label": "test accuracy (mean)"},
                linewidths=0.5, linecolor="white", annot_kws={"fontsize": 7},
            )  # fmt: skip
            ax.set_xlabel("K (number of negatives)")
            ax.set_ylabel("C (number of classes)")
            ax.set_title(f"Test accuracy, {titles[col]}")
        n = df.groupby(["classes", "k"]).size()
        seeds = f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"
        kind = str(df["kind"].iloc[0]) if "kind" in df.columns else ""
        fig.suptitle(
            f"Fig. 7 / 8: test accuracy over C × K (kind {kind}; mean ± s.d. over n = {seeds} seeds)"
        )
    return fig
