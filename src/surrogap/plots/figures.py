"""Every figure of the report, each a pure function DataFrame -> matplotlib `Figure`
(built without pyplot, so nothing global is touched): Fig. 1 / 9 (upper bounds), the
surrogate gap (also `surrogap evaluate --plot`), Fig. 3 / 4 (the theory stage's ideal
curves), Fig. 5 / 6 (trajectories, learning curves) and Fig. 7 / 8 (accuracy over C x K).

All losses in nats; every bound uses L2-normalized features, so b = 1.
"""

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
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from surrogap.theory import bounds

__all__ = [
    "BOUND_LABELS",
    "plot_accuracy_heatmaps",
    "plot_fig3",
    "plot_fig4",
    "plot_learning_curves",
    "plot_surrogate_gap",
    "plot_trajectories",
    "plot_upper_bounds",
]

EARLIER_BOUNDS = {
    "arora": "Arora et al. 2019",
    "nozawa_sato": "Nozawa & Sato 2021",
    "ash": "Ash et al. 2022",
}
# the theory figures' bound names, in drawing order
BOUND_ORDER = ("bao", "arora", "nozawa_sato", "ash")
BOUND_LABELS = {
    "bao": "Bao et al. (2022)",
    "arora": "Arora et al. (2019)",
    "nozawa_sato": "Nozawa & Sato (2021)",
    "ash": "Ash et al. (2022)",
}


# --------------------------------------------------------------------------- results figures
@contextlib.contextmanager
def _style() -> Iterator[None]:
    """Seaborn's white grid and compact fonts, only while a figure is being built."""
    rc = {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "legend.fontsize": 8,
        "legend.title_fontsize": 8,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
    }
    with sns.axes_style("whitegrid"), mpl.rc_context(rc):
        yield


def _k_colors(ks: Sequence[int]) -> dict[int, tuple]:
    """One colour per K, dark to light along viridis (the lightest yellow left out)."""
    ks = sorted(set(int(k) for k in ks))
    cmap = mpl.colormaps["viridis"]
    if len(ks) == 1:
        return {ks[0]: cmap(0.35)}
    return {k: cmap(0.05 + 0.8 * i / (len(ks) - 1)) for i, k in enumerate(ks)}


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs the columns {', '.join(missing)}")
    if df.empty:
        raise ValueError(f"{what} needs at least one row")


def _k_axis(ax, ks: Sequence[int]) -> None:
    """A log K axis that labels the measured K values themselves."""
    ks = sorted(set(int(k) for k in ks))
    ax.set_xscale("log")
    if len(ks) > 8:  # too many to label each: plain numbers at the powers of ten
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
        return
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.minorticks_off()
    if len(ks) == 1:
        ax.set_xlim(ks[0] / 2, ks[0] * 2)


def _title_of(df: pd.DataFrame) -> str:
    parts = []
    if "dataset" in df.columns and df["dataset"].nunique() == 1:
        parts.append(str(df["dataset"].iloc[0]))
    if "classes" in df.columns and df["classes"].nunique() == 1:
        parts.append(f"C = {int(df['classes'].iloc[0])}")
    return ", ".join(parts)


def _plain_log_label(value: float, _pos: int) -> str:
    """'2', '30', '0.5' on a log axis, but only for the mantissas 1, 2, 3 and 5."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if mantissa in (1.0, 2.0, 3.0, 5.0) else ""


def plot_upper_bounds(df: pd.DataFrame) -> Figure:
    """Fig. 1 / 9: the four upper bounds on R_mu and the measured R_mu against K.

    df: results rows of one dataset (columns k, supervised_loss, bao_upper, arora,
    nozawa_sato, ash; optional dataset, classes). Mean over seeds, log-log. Points that a
    log axis cannot show are absent and the legend says why: undefined (NaN, K + 1 < C),
    overflowing float64 (inf), or not positive (an earlier bound at a measured loss below
    its collision term).
    """
    _require(df, ["k", "supervised_loss", "bao_upper", *EARLIER_BOUNDS], "plot_upper_bounds")
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
    with _style():
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
            log_c = math.log(int(df["classes"].iloc[0]))
            ax.axhline(
                log_c,
                color="0.4",
                lw=1.0,
                ls=(0, (6, 3)),
                label=r"$\log C$: the uniform predictor's loss (a bound above it is vacuous)",
            )
            shown = np.append(shown, log_c)
        _k_axis(ax, means.index)
        ax.set_yscale("log")
        if shown.size and math.log10(shown.max() / shown.min()) < 2:
            # under two decades: label 1, 2, 3, 5 x 10^n instead of powers of ten only
            ax.yaxis.set_major_formatter(mticker.FuncFormatter(_plain_log_label))
            ax.yaxis.set_minor_formatter(mticker.FuncFormatter(_plain_log_label))
        ax.set_xlabel("K (number of negatives, log scale)")
        ax.set_ylabel(r"upper bound on $R_\mu$, measured $R_\mu$ (nats, log scale)")
        ax.set_title(f"Upper bounds on the supervised loss ({_title_of(df)})")
        fig.legend(loc="outside lower center", ncol=2, frameon=False)
    return fig


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
    _require(df, need, "plot_surrogate_gap")
    data = df.copy()
    data["gap"] = data["supervised_loss"] - data["contrastive_loss"]
    cs = sorted(int(c) for c in data["classes"].unique())
    with _style():
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
        _k_axis(ax, data["k"].unique())
        ax.set_xlabel("K (number of negatives, log scale)")
        ax.set_ylabel(r"surrogate gap $R_\mu - R_{\mathrm{cont}}$ (nats)")
        title = _title_of(df) if len(cs) == 1 else "several C"
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


def plot_trajectories(traj: pd.DataFrame) -> Figure:
    """Fig. 5 / 6 (left): held-out (R_cont, R_mu) during training, one panel per K.

    traj: one dataset's trajectory rows (columns k, seed, epoch, val_contrastive_loss,
    val_supervised_loss, classes; lower_gap / upper_gap if the bounds stage wrote them,
    else the uniform-prior gaps). Each panel shades the band between the lines
    R_mu = R_cont + Delta_L(K) and R_mu = R_cont + Delta_U(K), marks R_cont*(K, C)
    (vertical) and R_mu*(C) (horizontal), b = 1, and draws one line per seed.
    """
    _require(
        traj,
        ["k", "seed", "epoch", "val_contrastive_loss", "val_supervised_loss", "classes"],
        "plot_trajectories",
    )
    ks = sorted(int(k) for k in traj["k"].unique())
    colors = _k_colors(ks)
    c = int(traj["classes"].iloc[0])
    ideal_mu = bounds.optimal_supervised_loss(c)
    ncols = min(len(ks), 3)
    nrows = math.ceil(len(ks) / ncols)
    with _style():
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
                ax.plot(
                    rx.iloc[0], ry.iloc[0], ls="none", marker="o", ms=6, mfc="white", mec=colors[k]
                )
                ax.plot(
                    rx.iloc[-1],
                    ry.iloc[-1],
                    ls="none",
                    marker="*",
                    ms=10,
                    color=colors[k],
                    mec="black",
                    mew=0.5,
                )
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
        handles = [
            Patch(color="0.6", alpha=0.4),
            Line2D([], [], color=gray, ls="--"),
            Line2D([], [], color=gray, ls=":"),
            Line2D([], [], color=gray, lw=1),
            Line2D([], [], color=gray, lw=1, ls="-."),
            Line2D([], [], color=gray, marker=".", lw=1.2),
            Line2D([], [], ls="none", marker="o", mfc="white", mec=gray),
            Line2D([], [], ls="none", marker="*", ms=10, color=gray, mec="black", mew=0.5),
        ]
        labels = [
            "band between the bounds",
            r"$R_\mu = R_{\mathrm{cont}} + \Delta_U(K)$",
            r"$R_\mu = R_{\mathrm{cont}} + \Delta_L(K)$",
            r"$R^*_{\mathrm{cont}}(K, C)$ (ideal encoder)",
            r"$R^*_\mu(C)$ (ideal encoder)",
            "trajectory, one line per seed",
            "first evaluation",
            "last evaluation",
        ]
        fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False)
        fig.suptitle(f"Held-out trajectories during training ({_title_of(traj)}; b = 1)")
    return fig


def _mean_band(
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


def plot_learning_curves(traj: pd.DataFrame) -> Figure:
    """Fig. 5 / 6 (right): held-out R_mu and mean-classifier accuracy per K against the
    epoch (mean ± s.e. over seeds), and the best (minimum over epochs) held-out R_mu
    against K with every seed shown.

    traj: one dataset's trajectory rows (columns k, seed, epoch, val_supervised_loss,
    val_mean_acc).
    """
    _require(
        traj, ["k", "seed", "epoch", "val_supervised_loss", "val_mean_acc"], "plot_learning_curves"
    )
    ks = sorted(int(k) for k in traj["k"].unique())
    colors = _k_colors(ks)
    with _style():
        fig = Figure(figsize=(12.0, 3.9), layout="constrained")
        ax_loss, ax_acc, ax_best = fig.subplots(1, 3)
        for k in ks:
            sub = traj[traj["k"] == k]
            _mean_band(ax_loss, sub, "epoch", "val_supervised_loss", colors[k], f"K = {k}")
            _mean_band(ax_acc, sub, "epoch", "val_mean_acc", colors[k], f"K = {k}", (0.0, 1.0))
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel(r"held-out $R_\mu$ (nats)")
        ax_loss.set_title(r"Held-out $R_\mu$ (mean ± s.e. over seeds)")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel("held-out mean-classifier accuracy (fraction)")
        ax_acc.set_title("Held-out accuracy (mean ± s.e. over seeds)")
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
        _k_axis(ax_best, ks)
        ax_best.set_xlabel("K (number of negatives, log scale)")
        ax_best.set_ylabel(r"best held-out $R_\mu$ over epochs (nats)")
        ax_best.set_title(r"Best held-out $R_\mu$ against K (every seed)")
        ax_best.legend(loc="best", frameon=True)
        fig.suptitle(f"Learning curves ({_title_of(traj)})")
    return fig


def plot_accuracy_heatmaps(df: pd.DataFrame) -> Figure:
    """Fig. 7 / 8: test accuracy over C x K (mean over seeds), mean classifier and linear
    probe side by side, on one colour scale.

    df: results rows of one `kind` (columns classes, k, mean_acc, linear_acc).
    """
    _require(df, ["classes", "k", "mean_acc", "linear_acc"], "plot_accuracy_heatmaps")
    tables = {
        col: df.pivot_table(index="classes", columns="k", values=col, aggfunc="mean")
        .sort_index()
        .sort_index(axis=1)
        for col in ("mean_acc", "linear_acc")
    }
    values = np.concatenate([t.to_numpy().ravel() for t in tables.values()])
    values = values[np.isfinite(values)]
    vmin, vmax = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if vmax - vmin < 1e-6:
        vmin, vmax = vmin - 0.05, vmax + 0.05
    ncol = max(t.shape[1] for t in tables.values())
    nrow = max(t.shape[0] for t in tables.values())
    kind = str(df["kind"].iloc[0]) if "kind" in df.columns else ""
    with _style():
        fig = Figure(figsize=(max(7.0, 1.6 + 1.3 * ncol), 1.8 + 0.5 * nrow), layout="constrained")
        axes = fig.subplots(1, 2)
        titles = {"mean_acc": "mean classifier", "linear_acc": "linear probe"}
        for i, (ax, (col, table)) in enumerate(zip(axes, tables.items(), strict=True)):
            sns.heatmap(
                table.iloc[::-1],
                ax=ax,
                annot=True,
                fmt=".3f",
                cmap="viridis",
                vmin=vmin,
                vmax=vmax,
                cbar=i == 1,
                cbar_kws={"label": "test accuracy (fraction)"},
                linewidths=0.5,
                linecolor="white",
            )
            ax.set_xlabel("K (number of negatives)")
            ax.set_ylabel("C (number of classes)")
            ax.set_title(f"Test accuracy, {titles[col]}")
        n = df.groupby(["classes", "k"]).size()
        seeds = f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"
        fig.suptitle(
            f"Fig. 7 / 8: test accuracy over C × K (kind {kind}; mean over n = {seeds} seeds)"
        )
    return fig


# --------------------------------------------------------------------------- theory figures (the theory stage)
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
    order = [BOUND_LABELS[n] for n in BOUND_ORDER if n in set(df["bound"])]
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
