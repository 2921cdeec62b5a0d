"""The report's figures of measured runs: Fig. 1 (upper bounds), Fig. 5 / 6 (trajectories,
learning curves), each a pure function DataFrame -> matplotlib `Figure`."""

from __future__ import annotations

import math

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from surrogap.plots.style import (
    EARLIER_BOUNDS,
    figure_style,
    k_axis,
    k_colors,
    mean_band,
    plain_log_label,
    reference_lines,
    require,
    title_of,
)
from surrogap.theory import bounds


def plot_upper_bounds(df: pd.DataFrame) -> Figure:
    """Fig. 1 / 9: the four upper bounds on R_mu and the measured R_mu against K.

    df: results rows of one dataset (columns k, supervised_loss, bao_upper, arora,
    nozawa_sato, ash; optional dataset, classes). Mean over seeds, log-log. Points that a
    log axis cannot show are absent and the legend says why: undefined (NaN, K + 1 < C),
    overflowing float64 (inf), or not positive (an earlier bound at a measured loss below
    its collision term).
    """
    require(df, ["k", "supervised_loss", "bao_upper", *EARLIER_BOUNDS], "plot_upper_bounds")
    series = [
        (
            "supervised_loss",
            r"measured $R_\mu$ (test set)",
            dict(color="black", marker="o", lw=2.2),
        ),
        ("bao_upper", "Bao et al. 2022 (this paper)", dict(color="C0", marker="s", lw=1.8)),
        ("arora", EARLIER_BOUNDS["arora"], dict(color="C1", marker="^", ls="--")),
        ("nozawa_sato", EARLIER_BOUNDS["nozawa_sato"], dict(color="C2", marker="v", ls="-.")),
        ("ash", EARLIER_BOUNDS["ash"], dict(color="C3", marker="D", ls=":")),
    ]
    means = df.groupby("k")[[s[0] for s in series]].mean().sort_index()  # NaN stays NaN
    values = means.to_numpy(dtype=float)
    shown = values[np.isfinite(values) & (values > 0)]
    with figure_style():
        fig = Figure(figsize=(6.0, 4.2), layout="constrained")
        ax = fig.add_subplot()
        for col, label, style in series:
            y = means[col].to_numpy(dtype=float)
            ok = np.isfinite(y) & (y > 0)
            notes = []
            for bad, why in (
                (np.isnan(y), "undefined"),
                (np.isinf(y), "overflows"),
                (np.isfinite(y) & (y <= 0), "not positive"),
            ):
                if bad.all():
                    notes.append(f"{why} at every K")
                elif bad.any():
                    notes.append(f"{why} at some K")
            if notes:
                label += f" ({'; '.join(notes)})"
            ax.plot(means.index[ok], y[ok], label=label, ms=5, **style)
        if "classes" in df.columns and df["classes"].nunique() == 1:
            shown = np.append(shown, reference_lines(ax, int(df["classes"].iloc[0])))
        k_axis(ax, means.index)
        ax.set_yscale("log")
        if shown.size and math.log10(shown.max() / shown.min()) < 2:
            # under two decades: label 1, 2, 3, 5 x 10^n instead of powers of ten only
            ax.yaxis.set_major_formatter(mticker.FuncFormatter(plain_log_label))
            ax.yaxis.set_minor_formatter(mticker.FuncFormatter(plain_log_label))
        ax.set_xlabel("K (number of negatives, log scale)")
        ax.set_ylabel(r"upper bound on $R_\mu$, measured $R_\mu$ (nats, log scale)")
        ax.set_title(f"Upper bounds on the supervised loss ({title_of(df)})")
        fig.legend(loc="outside lower center", ncol=2, frameon=False)
    return fig


def plot_trajectories(traj: pd.DataFrame) -> Figure:
    """Fig. 5 / 6 (left): held-out (R_cont, R_mu) during training, one panel per K.

    traj: one dataset's trajectory rows (columns k, seed, epoch, val_contrastive_loss,
    val_supervised_loss, classes; lower_gap / upper_gap if the bounds stage wrote them,
    else the uniform-prior gaps). Each panel shades the band between the lines
    R_mu = R_cont + Delta_L(K) and R_mu = R_cont + Delta_U(K), marks R_cont*(K, C)
    (vertical) and R_mu*(C) (horizontal), b = 1, and draws one line per seed.
    """
    require(
        traj,
        ["k", "seed", "epoch", "val_contrastive_loss", "val_supervised_loss", "classes"],
        "plot_trajectories",
    )
    ks = sorted(int(k) for k in traj["k"].unique())
    colors = k_colors(ks)
    c = int(traj["classes"].iloc[0])
    ideal_mu = bounds.optimal_supervised_loss(c)
    ncols = min(len(ks), 3)
    nrows = math.ceil(len(ks) / ncols)
    with figure_style():
        fig = Figure(figsize=(3.6 * ncols, 3.2 * nrows + 0.6), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for ax, k in zip(axes, ks, strict=False):
            sub = traj[traj["k"] == k]
            if "lower_gap" in sub.columns and "upper_gap" in sub.columns:
                lo_gap, hi_gap = float(sub["lower_gap"].iloc[0]), float(sub["upper_gap"].iloc[0])
            else:
                lo_gap, hi_gap = bounds.lower_gap(k, c), bounds.upper_gap(k, c)
            ideal_cont = bounds.optimal_contrastive_loss(k, c)
            x, y = sub["val_contrastive_loss"].to_numpy(), sub["val_supervised_loss"].to_numpy()
            x0, x1 = min(x.min(), ideal_cont), x.max()
            pad = 0.06 * max(x1 - x0, 1e-3)
            x0, x1 = x0 - pad, x1 + pad
            xs = np.array([x0, x1])
            ax.fill_between(xs, xs + lo_gap, xs + hi_gap, color=colors[k], alpha=0.18, lw=0)
            ax.plot(xs, xs + hi_gap, color=colors[k], ls="--", lw=1)
            ax.plot(xs, xs + lo_gap, color=colors[k], ls=":", lw=1)
            ax.axvline(ideal_cont, color="0.35", lw=1)
            ax.axhline(ideal_mu, color="0.35", lw=1, ls="-.")
            for _, run in sub.groupby("seed"):
                run = run.sort_values("epoch")
                rx, ry = run["val_contrastive_loss"], run["val_supervised_loss"]
                ax.plot(rx, ry, color=colors[k], lw=1.2, marker=".", ms=3)
                ax.plot(rx.iloc[0], ry.iloc[0], "o", ms=6, mfc="white", mec=colors[k])
                ax.plot(rx.iloc[-1], ry.iloc[-1], "*", ms=10, color=colors[k], mec="black", mew=0.5)
            y0 = min(y.min(), ideal_mu, x0 + lo_gap)
            y1 = max(y.max(), x1 + hi_gap)
            ypad = 0.04 * (y1 - y0)
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0 - ypad, y1 + ypad)
            ax.set_title(f"K = {k}")
            ax.set_xlabel(r"held-out $R_{\mathrm{cont}}$ (nats)")
            ax.set_ylabel(r"held-out $R_\mu$ (nats)")
        for ax in axes[len(ks) :]:
            ax.set_visible(False)
        gray = "0.35"
        legend = {  # label -> handle
            "band between the bounds": Patch(color="0.6", alpha=0.4),
            r"$R_\mu = R_{\mathrm{cont}} + \Delta_U(K)$": Line2D([], [], color=gray, ls="--"),
            r"$R_\mu = R_{\mathrm{cont}} + \Delta_L(K)$": Line2D([], [], color=gray, ls=":"),
            r"$R^*_{\mathrm{cont}}(K, C)$ (ideal encoder)": Line2D([], [], color=gray, lw=1),
            r"$R^*_\mu(C)$ (ideal encoder)": Line2D([], [], color=gray, lw=1, ls="-."),
            "trajectory, one line per seed": Line2D([], [], color=gray, marker=".", lw=1.2),
            "first evaluation": Line2D([], [], ls="none", marker="o", mfc="white", mec=gray),
            "last evaluation": Line2D(
                [], [], ls="none", marker="*", ms=10, color=gray, mec="black", mew=0.5
            ),
        }
        fig.legend(
            list(legend.values()), list(legend), loc="outside lower center", ncol=4, frameon=False
        )
        fig.suptitle(f"Held-out trajectories during training ({title_of(traj)}; b = 1)")
    return fig


def seed_curves(ax, sub: pd.DataFrame, y: str, color, label: str, limits) -> None:
    """One K's curve of `y` against the epoch: mean ± s.e. over seeds up to the epoch where
    its first seed stopped (a mean over the seeds still training would jump where one
    stops), then each seed that trains on as a thin line; a tick where each seed stopped."""
    last = sub.groupby("seed")["epoch"].max()
    common = last.min()
    mean_band(ax, sub[sub["epoch"] <= common], "epoch", y, color, label, limits)
    for seed, end in last.items():
        run = sub[(sub["seed"] == seed) & (sub["epoch"] >= common)].sort_values("epoch")
        if end > common:
            ax.plot(run["epoch"], run[y], color=color, lw=0.8, alpha=0.6)
        ax.plot(run["epoch"].iloc[-1:], run[y].iloc[-1:], "|", color=color, ms=8, mew=1.2)


def plot_learning_curves(traj: pd.DataFrame) -> Figure:
    """Fig. 5 / 6 (right): held-out R_mu and mean-classifier accuracy per K against the
    epoch (:func:`seed_curves`), and the best (minimum over epochs) held-out R_mu against K
    with every seed shown.

    traj: one dataset's trajectory rows (columns k, seed, epoch, val_supervised_loss,
    val_mean_acc).
    """
    require(
        traj, ["k", "seed", "epoch", "val_supervised_loss", "val_mean_acc"], "plot_learning_curves"
    )
    ks = sorted(int(k) for k in traj["k"].unique())
    colors = k_colors(ks)
    with figure_style():
        fig = Figure(figsize=(12.0, 3.9), layout="constrained")
        ax_loss, ax_acc, ax_best = fig.subplots(1, 3)
        for k in ks:
            sub = traj[traj["k"] == k]
            for ax, y, limits in (
                (ax_loss, "val_supervised_loss", (-np.inf, np.inf)),
                (ax_acc, "val_mean_acc", (0.0, 1.0)),
            ):
                seed_curves(ax, sub, y, colors[k], f"K = {k}", limits)
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel(r"held-out $R_\mu$ (nats)")
        ax_loss.set_title(r"Held-out $R_\mu$ (mean ± s.e. while every seed trains)")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel("held-out mean-classifier accuracy (fraction)")
        ax_acc.set_title("Held-out accuracy (mean ± s.e. while every seed trains)")
        ax_acc.legend(title="negatives", loc="best", frameon=True)
        best = traj.groupby(["k", "seed"])["val_supervised_loss"].min().reset_index()
        stats = best.groupby("k")["val_supervised_loss"].agg(["mean", "sem"]).sort_index()
        ax_best.errorbar(
            stats.index,
            stats["mean"],
            yerr=stats["sem"].fillna(0.0),
            color="black",
            marker="o",
            capsize=3,
            lw=1.4,
            label="mean ± s.e. over seeds",
        )
        ax_best.scatter(
            best["k"],
            best["val_supervised_loss"],
            c=[colors[int(k)] for k in best["k"]],
            s=18,
            alpha=0.8,
            zorder=3,
        )
        ax_best.scatter([], [], color="0.45", s=18, label="one seed")
        k_axis(ax_best, ks)
        ax_best.set_xlabel("K (number of negatives, log scale)")
        ax_best.set_ylabel(r"best held-out $R_\mu$ over epochs (nats)")
        ax_best.set_title(r"Best held-out $R_\mu$ against K (every seed)")
        ax_best.legend(loc="best", frameon=True)
        fig.suptitle(f"Learning curves ({title_of(traj)})")
    return fig
