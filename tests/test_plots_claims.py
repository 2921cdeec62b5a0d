"""The claims' close-up figures (surrogap.plots.claims): Fig. 9 on a linear scale with
standard-error bars over seeds and log C; heat maps that print mean ± s.d. per cell."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from surrogap.plots.claims import plot_accuracy_spread, plot_bao_close


def test_fig9_error_bars_are_standard_errors_on_a_linear_scale():
    rows = [
        dict(dataset="d", classes=20, k=k, seed=s, supervised_loss=2.0 + 0.1 * s - 0.01 * k,
             bao_upper=3.5 - 0.1 * math.log(k) + 0.05 * s)
        for k in (1, 4, 16) for s in (0, 1, 2)
    ]  # fmt: skip
    df = pd.DataFrame(rows)
    fig = plot_bao_close(df)
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "4", "16"]
    # the error bar of R_mu at K = 4: mean ± s.d. / sqrt(3) over the seeds
    v = df.loc[df["k"] == 4, "supervised_loss"]
    se = v.std(ddof=1) / math.sqrt(3)
    segments = [seg for coll in ax.collections for seg in getattr(coll, "get_segments", list)()]
    spans = {round(float(s[0][1]), 9): round(float(s[1][1]), 9) for s in segments}
    assert spans[round(v.mean() - se, 9)] == pytest.approx(v.mean() + se)
    assert any(math.isclose(line.get_ydata()[0], math.log(20)) for line in ax.get_lines())
    assert "n = 3" in ax.get_title()


def test_heat_map_cells_print_mean_and_sd_over_seeds():
    rows = [
        dict(kind="topics", classes=c, k=k, seed=s, mean_acc=0.5 + 0.01 * k / c + 0.02 * s,
             linear_acc=0.6)
        for c in (10, 30, 100) for k in (1, 4) for s in (0, 1, 2)
    ]  # fmt: skip
    fig = plot_accuracy_spread(pd.DataFrame(rows))
    texts = {t.get_text() for t in fig.axes[0].texts}
    acc = np.array([0.5 + 0.01 * 4 / 10 + 0.02 * s for s in range(3)])
    assert f"{acc.mean():.3f}\n± {acc.std(ddof=1):.3f}" in texts
    assert "0.600\n± 0.000" in {t.get_text() for t in fig.axes[1].texts}
    assert "mean ± s.d. over n = 3 seeds" in fig._suptitle.get_text()
