"""The fixed_null stage: the encoder of the smallest K, held fixed, evaluated at every K with
the probe stage's own estimators and pairing, so its row at a K is what the probe stage
would record for those features at that K."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_params

from surrogap.core.errors import UserError
from surrogap.core.prepared import read_labels
from surrogap.core.schema import NULL_COLUMNS
from surrogap.pipeline import fixed_null, prepare, probe
from surrogap.report.load import load_null


def write_features(prepared, features, seeds, k: int = 1, dim: int = 8) -> None:
    """Features of the K-`k` encoder of every seed: random rows, the prepared labels."""
    folder = features / "circle" / f"k{k}"
    folder.mkdir(parents=True)
    for s in seeds:
        _, labels = read_labels(prepared / "circle" / f"s{s}")
        rng = np.random.default_rng(s)
        arrays = {}
        for split, y in labels.items():
            arrays[f"{split}_x"] = (
                rng.standard_normal((y.size, dim)).astype(np.float32) + y[:, None]
            )
            arrays[f"{split}_y"] = y
        np.savez(folder / f"s{s}.npz", **arrays)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("null")
    params = {**tiny_params(), "dataset": ["circle"], "k": [1, 4, 16], "seed": [0, 1]}
    prepare.run(params, "circle", root / "prepared" / "circle", root / "raw")
    write_features(root / "prepared", root / "features", params["seed"])
    out = root / "null.csv"
    fixed_null.run(params, root / "features", root / "prepared", out)
    return root, params, out


def test_one_row_per_dataset_k_seed_read_back_by_the_report(run):
    _, params, out = run
    table = load_null(out)
    assert list(table.columns) == list(NULL_COLUMNS)
    assert len(table) == len(params["k"]) * len(params["seed"])
    assert set(table["encoder_k"]) == {1}


def test_r_mu_is_constant_and_r_cont_rises_so_the_gap_falls_with_no_learning(run):
    _, _, out = run
    table = pd.read_csv(out)
    for _, g in table.groupby("seed"):
        g = g.sort_values("k")
        assert g["supervised_loss"].nunique() == 1
        assert (np.diff(g["contrastive_loss"]) > 0).all()
        gap = g["supervised_loss"] - g["contrastive_loss"]
        assert (np.diff(gap) < 0).all()


def test_each_row_is_what_the_probe_stage_records_at_that_k(run):
    root, params, out = run
    table = pd.read_csv(out)
    cfg = probe.ProbeConfig()
    for k in params["k"]:
        for s in params["seed"]:
            record = root / f"probe-k{k}-s{s}.json"
            probe.probe_seed(
                cfg, "circle", k, s, root / "prepared" / "circle" / f"s{s}",
                root / "features" / "circle" / "k1" / f"s{s}.npz", record,
            )  # fmt: skip
            want = json.loads(record.read_text())
            (row,) = table[(table["k"] == k) & (table["seed"] == s)].itertuples()
            for col in ("contrastive_loss", "contrastive_loss_se", "supervised_loss", "mean_acc"):
                assert getattr(row, col) == pytest.approx(want[col], rel=1e-9), (k, s, col)


def test_missing_features_are_one_line(tmp_path, run):
    root, params, _ = run
    with pytest.raises(UserError, match=r"features .*k1/s2\.npz' are missing"):
        fixed_null.run(
            {**params, "seed": [0, 2]}, root / "features", root / "prepared", tmp_path / "n.csv"
        )
