"""The surrogate gap against K (the report, and `surrogap evaluate --plot`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from surrogap.core import io
from surrogap.plots.style import figure_style, k_axis, require, title_of


def plot_surrogate_gap(df: pd.DataFrame, source: str | None = None) -> Figure:
    """The measured surrogate gap R_mu - R_cont against K inside [Delta_L, Delta_U].

    df: columns k, classes, supervised_loss, contrastive_loss, lower_gap, upper_gap (nats;
    the gaps as the bounds stage or `evaluate` computed them, so a non-uniform prior is
    respected), optional contrastive_loss_se; one or many rows per K (seeds), one or
    several C. For each C: the band between the rows' Delta_L and Delta_U at the measured
    K, and the measured gap as mean ± standard error over the rows of each K (one row per
    K: ± the standard error of its R_cont estimate), every row a faint dot.
    source: the input file, named in the title.
    """
    need = ["k", "classes", "supervised_loss", "contrastive_loss", "lower_gap", "upper_gap"]
    require(df, need, "plot_surrogate_gap")
    data = df.copy()
    data["gap"] = data["supervised_loss"] - data["contrastive_loss"]
    cs = sorted(int(c) for c in data["classes"].unique())
    with figure_style():
        fig = Figure(figsize=(6.0, 4.4), layout="constrained")
        ax = fig.add_subplot()
        for i, c in enumerate(cs):
            color = f"C{i}"
            sub = data[data["classes"] == c]
            band = sub.groupby("k")[["lower_gap", "upper_gap"]].mean().sort_index()
            suffix = f", C = {c}" if len(cs) > 1 else ""
            ks = band.index.to_numpy()
            ax.fill_between(
                ks,
                band["lower_gap"],
                band["upper_gap"],
                color=color,
                alpha=0.15,
                lw=0,
                label=rf"band $[\Delta_L(K), \Delta_U(K)]${suffix}",
            )
            ax.plot(ks, band["upper_gap"], color=color, ls="--", lw=1)
            ax.plot(ks, band["lower_gap"], color=color, ls=":", lw=1)
            stats = sub.groupby("k")["gap"].agg(["mean", "std", "count"]).sort_index()
            if (stats["count"] > 1).any():
                err = (stats["std"] / np.sqrt(stats["count"])).fillna(0.0)
                what = "mean ± s.e. over seeds"
            elif "contrastive_loss_se" in sub.columns:
                err = sub.groupby("k")["contrastive_loss_se"].mean().sort_index().fillna(0.0)
                what = r"± s.e. of $R_{\mathrm{cont}}$"
            else:
                err, what = stats["mean"] * 0.0, "one value per K"
            ax.scatter(sub["k"], sub["gap"], color=color, s=10, alpha=0.35, lw=0)
            ax.errorbar(
                stats.index,
                stats["mean"],
                yerr=err,
                color=color,
                marker="o",
                ms=5,
                capsize=3,
                lw=1.6,
                label=rf"measured $R_\mu - R_{{\mathrm{{cont}}}}$ ({what}){suffix}",
            )
        ax.axhline(0.0, color="0.5", lw=0.8)
        k_axis(ax, data["k"].unique())
        ax.set_xlabel("K (number of negatives, log scale)")
        ax.set_ylabel(r"surrogate gap $R_\mu - R_{\mathrm{cont}}$ (nats)")
        title = title_of(df) if len(cs) == 1 else "several C"
        if source:  # the input file as given, or its name where the path is long
            name = source if len(source) <= 48 else source.replace("\\", "/").rsplit("/", 1)[-1]
            ax.set_title(f"Surrogate gap of {name} against K ({title}; b = 1)")
        else:
            ax.set_title(f"Surrogate gap against K ({title}; b = 1)")
        handles, labels = ax.get_legend_handles_labels()
        handles += [Line2D([], [], color="0.3", ls="--"), Line2D([], [], color="0.3", ls=":")]
        labels += [r"$\Delta_U(K, C)$: upper gap", r"$\Delta_L(K, C)$: lower gap"]
        fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)
    return fig


def surrogate_gap_figure(records: Sequence[dict], source: str | None = None):
    """The figure of :func:`plot_surrogate_gap` for evaluate records;
    `source` (the features file) is named in the title."""
    columns = ["k", "classes", "supervised_loss", "contrastive_loss", "contrastive_loss_se"]
    df = pd.DataFrame(records, columns=[*columns, "lower_gap", "upper_gap"])
    return plot_surrogate_gap(df, source=source)


def save_plot(records: Sequence[dict], path: str | Path, source: str | None = None) -> None:
    """Write the surrogate-gap figure to `path` as PNG, atomically."""
    fig = surrogate_gap_figure(records, source)
    io.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=150), suffix=".png")
