"""Fig. 3 / 4 of the paper: the theory stage's ideal curves and the four upper bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from surrogap.plots.style import BOUND_LABELS, THEORY_STYLE, new_figure
from surrogap.theory import bounds
from surrogap.theory.curves import BOUND_NAMES


def plot_fig3(df: pd.DataFrame) -> Figure:
    """Per C, two panels: R_cont* + Delta_U beside R_mu*, and R_mu* - Delta_L beside R_cont*."""
    classes = list(dict.fromkeys(df["classes"].tolist()))
    fig, axes = new_figure(len(classes), 2, (11.0, 3.9 * len(classes)))
    upper_label = r"$R^*_\mathrm{cont} + \Delta_U$ (upper bound on $R_\mu$)"
    mu_label = r"$R^*_\mu$"
    lower_label = r"$R^*_\mu - \Delta_L$ (upper bound on $R_\mathrm{cont}$)"
    cont_label = r"$R^*_\mathrm{cont}$"
    palette = sns.color_palette("deep")
    with sns.axes_style("whitegrid", THEORY_STYLE), sns.plotting_context("notebook"):
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


# the largest value fig. 4 draws on its log axes: the earlier bounds grow like e^{K/C} and
# reach ~1e308 (still finite) near K = 6700 at C = 3, where matplotlib's 5% log margins and
# its tick formatter overflow to inf (an OverflowError); above this a curve leaves the chart
PLOT_MAX = 1e200


def plot_fig4(df: pd.DataFrame) -> Figure:
    """Left: the coefficient of the contrastive loss per bound; right: the bounds at R_cont*.
    Values above PLOT_MAX (and infinite ones) are not drawn: the curve leaves the chart,
    and a note says so (fig4.csv keeps every value)."""
    fig, axes = new_figure(1, 2, (12.0, 5.0))
    data = df.replace([np.inf, -np.inf], np.nan).copy()
    beyond = {}
    for column in ("coefficient", "value"):
        big = data[column] > PLOT_MAX
        beyond[column] = bool(big.any() or np.isinf(df[column]).any())
        data.loc[big, column] = np.nan
    data["bound"] = data["bound"].map(lambda n: BOUND_LABELS.get(n, n))
    order = [BOUND_LABELS[n] for n in BOUND_NAMES if n in set(df["bound"])]
    classes = df.attrs.get("classes")
    b = df.attrs.get("b")
    with sns.axes_style("whitegrid", THEORY_STYLE), sns.plotting_context("notebook"):
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
            if beyond[column]:
                ax.text(0.01, 0.99, f"values above {PLOT_MAX:.0e} not drawn", transform=ax.transAxes,
                        ha="left", va="top", fontsize="small", color="0.4")  # fmt: skip
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
