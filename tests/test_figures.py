"""The figures (surrogap.plots: theory, gap, results, claims, style): the theory stage's
Fig. 3 / 4, the surrogate-gap plot the report and `surrogap evaluate --plot` share, Fig. 1
with log C, Fig. 7 / 8."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from surrogap.plots import claims as claims_plots
from surrogap.plots import gap, results, style
from surrogap.plots import theory as plots_theory
from surrogap.theory import bounds
from surrogap.theory import curves as T


# --------------------------------------------------------------------------- theory figures
def test_plot_fig3_panels_and_labels():
    fig = plots_theory.plot_fig3(T.fig3_frame((5, 12), 20))
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert len(axes) == 4
    for ax in axes:
        assert "nats" in ax.get_ylabel() and "K" in ax.get_xlabel()
        legend = ax.get_legend()
        assert legend is not None and len(legend.get_texts()) == 2
        assert len(ax.get_lines()) >= 2
    titles = [ax.get_title() for ax in axes]
    assert sum("C = 5" in t for t in titles) == 2 and sum("C = 12" in t for t in titles) == 2


def test_plot_fig4_log_scale_and_legend():
    fig = plots_theory.plot_fig4(T.fig4_frame(6, 20))
    axes = fig.get_axes()
    assert len(axes) == 2
    for ax in axes:
        assert ax.get_yscale() == "log"
        assert "K" in ax.get_xlabel()
    assert "nats" in axes[1].get_ylabel()
    texts = {t.get_text() for legend in fig.legends for t in legend.get_texts()}
    assert {style.BOUND_LABELS[n] for n in T.BOUND_NAMES} <= texts


def test_plot_fig4_at_a_large_k_max_draws_without_overflow():
    # at C = 3 the earlier bounds pass 1e308 (finite) near K = 6700: on a log axis
    # matplotlib's margins and tick formatter overflowed (OverflowError at draw); values
    # above PLOT_MAX are left off the chart, and a note says so
    df = T.fig4_frame(3, 20000)
    assert df["coefficient"].replace(np.inf, np.nan).max() > 1e300  # the case that failed
    with np.errstate(all="raise"):
        fig = plots_theory.plot_fig4(df)
        fig.canvas.draw()
    for ax in fig.get_axes():
        top = ax.get_ylim()[1]
        assert math.isfinite(top) and top < 1e250
        notes = [t.get_text() for t in ax.texts]
        assert f"values above {plots_theory.PLOT_MAX:.0e} not drawn" in notes
    # a small k_max draws every value and says nothing of it
    small = plots_theory.plot_fig4(T.fig4_frame(6, 20))
    assert all(not ax.texts for ax in small.get_axes())


# --------------------------------------------------------------------------- the gap plot
def gap_frame(rows_per_k: int, c: int = 10, ks=(1, 8, 64), shift: float = 0.0) -> pd.DataFrame:
    """Rows with gaps `shift` nats off the uniform prior's, as a non-uniform prior gives."""
    out = []
    for k in ks:
        lo, hi = bounds.lower_gap(k, c) + shift, bounds.upper_gap(k, c) + shift
        for i in range(rows_per_k):
            out.append(
                dict(
                    k=k,
                    classes=c,
                    contrastive_loss=2.0 + 0.1 * i,
                    contrastive_loss_se=0.02,
                    supervised_loss=2.0 + 0.1 * i + (lo + hi) / 2 + 0.05 * i,
                    lower_gap=lo,
                    upper_gap=hi,
                )
            )
    return pd.DataFrame(out)


def band_vertices(fig: Figure) -> np.ndarray:
    (ax,) = fig.axes
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    return band.get_paths()[0].vertices


@pytest.mark.parametrize("rows_per_k", [1, 3])
def test_gap_band_is_read_from_the_rows_not_redrawn(rows_per_k):
    frame = gap_frame(rows_per_k, shift=0.7)
    fig = gap.plot_surrogate_gap(frame)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and "nats" in ax.get_ylabel()
    verts = band_vertices(fig)
    for k in (1, 8, 64):
        ys = verts[np.isclose(verts[:, 0], k), 1]
        want = {bounds.lower_gap(k, 10) + 0.7, bounds.upper_gap(k, 10) + 0.7}
        assert all(any(math.isclose(y, w, abs_tol=1e-9) for y in ys) for w in want), (k, ys)


def test_gap_error_bars_are_standard_errors():
    fig = gap.plot_surrogate_gap(gap_frame(3))
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any("mean ± s.e. over seeds" in t for t in labels)
    assert not any("std" in t for t in labels)
    (ax,) = fig.axes
    (bars,) = [c for c in ax.collections if type(c).__name__ == "LineCollection"]
    seg = bars.get_segments()[0]  # K = 1: gaps 0.5 * (lo + hi) + 0.05 * i, i = 0, 1, 2
    half = (seg[1, 1] - seg[0, 1]) / 2
    assert half == pytest.approx(np.std([0.0, 0.05, 0.1], ddof=1) / math.sqrt(3))
    one = gap.plot_surrogate_gap(gap_frame(1))
    labels = [t.get_text() for legend in one.legends for t in legend.get_texts()]
    assert any("s.e. of" in t for t in labels)
    (bars,) = [c for c in one.axes[0].collections if type(c).__name__ == "LineCollection"]
    seg = bars.get_segments()[0]
    assert (seg[1, 1] - seg[0, 1]) / 2 == pytest.approx(0.02)


def test_gap_plot_requires_the_gap_columns():
    with pytest.raises(ValueError, match="upper_gap"):
        gap.plot_surrogate_gap(gap_frame(1).drop(columns="upper_gap"))


def test_evaluate_plot_names_its_input_file():
    frame = gap_frame(1)
    records = frame.to_dict("records")
    fig = gap.surrogate_gap_figure(records, source="feats/clip.npz")
    assert "feats/clip.npz" in fig.axes[0].get_title()
    long = "/a/very/long/folder/name/that/goes/on/and/on/features-of-clip.npz"
    assert "features-of-clip.npz" in gap.surrogate_gap_figure(records, long).axes[0].get_title()


# --------------------------------------------------------------------------- Fig. 1, Fig. 7 / 8
def test_upper_bounds_figure_draws_log_c():
    c, rows = 5, []
    for k in (1, 4, 16):
        loss = 1.0 + 0.3 * math.log(k + 1)
        rows.append(
            dict(
                k=k,
                classes=c,
                supervised_loss=1.2,
                bao_upper=float(bounds.bao_upper_bound(loss, k, c)),
                arora=float(bounds.arora_bound(loss, k, c)),
                nozawa_sato=float(bounds.nozawa_sato_bound(loss, k, c)),
                ash=float(bounds.ash_bound(loss, k, c)),
            )
        )
    fig = results.plot_upper_bounds(pd.DataFrame(rows))
    (ax,) = fig.axes
    flat = [ln for ln in ax.get_lines() if np.allclose(ln.get_ydata(), math.log(c))]
    assert len(flat) == 1
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any("log C" in t and "weaker than uniform" in t for t in labels)
    assert any("Arora" in t and "undefined at some K" in t for t in labels)


def legend_texts(fig: Figure) -> list[str]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def test_no_legend_contradicts_the_vacuity_rule():
    """Every labelled level line of Fig. 1 and Fig. 9 that names a vacuity word sits where
    theory.bounds.upper_bound_vacuity starts to give that word, and no other legend entry
    uses one: log C is 'weaker than uniform', log(1 + (C - 1) e^2) 'vacuous'."""
    c, rows = 5, []
    for k in (1, 4, 16):
        loss = 1.0 + 0.3 * math.log(k + 1)
        for seed in range(2):
            rows.append(
                dict(
                    k=k, seed=seed, classes=c, supervised_loss=1.2 + 0.01 * seed,
                    bao_upper=float(bounds.bao_upper_bound(loss, k, c)),
                    arora=float(bounds.arora_bound(loss, k, c)),
                    nozawa_sato=float(bounds.nozawa_sato_bound(loss, k, c)),
                    ash=float(bounds.ash_bound(loss, k, c)),
                )
            )  # fmt: skip
    frame = pd.DataFrame(rows)
    word_of = {word: rule for rule, word in style.VACUITY_WORDS.items()}
    for fig in (results.plot_upper_bounds(frame), claims_plots.plot_bao_close(frame)):
        levels = [
            (float(ln.get_ydata()[0]), ln.get_label())
            for ax in fig.axes
            for ln in ax.get_lines()
            # a level drawn across the axes (axhline), labelled
            if list(ln.get_xdata()) == [0, 1] and not ln.get_label().startswith("_")
        ]
        found = set()
        for y, label in levels:
            words = [w for w in word_of if w in label]
            assert len(words) == 1, label
            rule = word_of[words[0]]
            assert bounds.upper_bound_vacuity(y + 1e-9, c) == rule, (label, y)
            assert bounds.upper_bound_vacuity(y - 1e-9, c) != rule, (label, y)
            found.add(rule)
        assert found == {bounds.ABOVE_LOG_C, bounds.VACUOUS}
        for text in legend_texts(fig):
            if text not in {label for _, label in levels}:
                assert not any(w in text for w in word_of), text


def test_learning_curve_mean_stops_where_the_first_seed_stops():
    """Fig. 6: seeds 0 and 1 stop at epochs 4 and 8. The mean ± s.e. is drawn over epochs
    0-4 only (a mean over the one seed left would jump), seed 1 goes on alone as a thin line
    over 4-8, and each seed's stop has a tick at its last value."""
    epochs = np.arange(0, 9, 2)
    rows = [
        {
            "k": 4,
            "seed": s,
            "epoch": int(e),
            "val_supervised_loss": 3.0 - 0.1 * e - s,
            "val_mean_acc": 0.5,
        }
        for s, end in ((0, 4), (1, 8))
        for e in epochs[epochs <= end]
    ]
    fig = Figure()
    ax = fig.subplots()
    results.seed_curves(
        ax, pd.DataFrame(rows), "val_supervised_loss", "C0", "K = 4", (-np.inf, np.inf)
    )
    mean, tick0, alone, tick1 = ax.get_lines()
    assert list(mean.get_xdata()) == [0, 2, 4] and mean.get_label() == "K = 4"
    np.testing.assert_allclose(mean.get_ydata(), [2.5, 2.3, 2.1])  # mean of 3 - 0.1 e - s
    assert list(alone.get_xdata()) == [4, 6, 8]
    assert (list(tick0.get_xdata()), list(tick1.get_xdata())) == ([4], [8])
    assert tick0.get_marker() == "|" and list(tick1.get_ydata()) == [pytest.approx(1.2)]
