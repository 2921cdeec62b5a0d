"""The report stage on a small synthetic run: links resolve, claim numbers come from the
data, a violated bound is reported as such, bad params and missing inputs are one line."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from surrogap import bounds
from surrogap import report as rep

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {"topics_c5": ("topics", 5), "topics_c20": ("topics", 20)}
KS = (1, 4, 16)
SEEDS = (0, 1)
EPOCHS = 5
DECIMALS = 3
FAIL = ("topics_c5", 4, 1)  # (dataset, K, seed) whose R_mu is put above Bao's upper bound
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?%?")


def _stage():
    spec = importlib.util.spec_from_file_location("report_stage", ROOT / "stages" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STAGE = _stage()


# --------------------------------------------------------------------------- synthetic run
def make_results(fail: bool) -> pd.DataFrame:
    """R_mu set first (falls like 1/sqrt(K), saturating), R_cont so that R_mu sits in the
    middle of [R_cont + Delta_L, R_cont + Delta_U]; the bounds from surrogap.bounds."""
    rows = []
    for ds, (kind, c) in DATASETS.items():
        for k in KS:
            lo, hi = bounds.lower_gap(k, c), bounds.upper_gap(k, c)
            for s in SEEDS:
                sup = bounds.optimal_supervised_loss(c) + 0.2 + 1.0 / math.sqrt(k) + 0.02 * s
                cont = sup - (lo + hi) / 2
                if fail and (ds, k, s) == FAIL:
                    sup = cont + hi + 0.25
                acc = 0.5 + 0.3 * (1 - 1 / math.sqrt(k)) + 0.01 * s - 0.002 * c
                rows.append(
                    {
                        "dataset": ds,
                        "kind": kind,
                        "classes": c,
                        "k": k,
                        "seed": s,
                        "contrastive_loss": cont,
                        "contrastive_loss_se": 0.01,
                        "supervised_loss": sup,
                        "mean_acc": acc,
                        "linear_acc": acc + 0.05,
                        "linear_loss": sup - 0.1,
                        "val_supervised_loss": sup + 0.01,
                        "val_mean_acc": acc,
                        "lower_gap": lo,
                        "upper_gap": hi,
                        "bao_lower": cont + lo,
                        "bao_upper": cont + hi,
                        "arora": bounds.arora_bound(cont, k, c),
                        "nozawa_sato": bounds.nozawa_sato_bound(cont, k, c),
                        "ash": bounds.ash_bound(cont, k, c),
                        "holds": bool(cont + lo <= sup <= cont + hi),
                    }
                )
    return pd.DataFrame(rows)


def make_trajectory(results_row: pd.Series, outside: bool) -> pd.DataFrame:
    """Moves down the line R_mu - R_cont = mid-gap toward the final test values."""
    mid = (results_row["lower_gap"] + results_row["upper_gap"]) / 2
    final_cont = (
        results_row["supervised_loss"] - mid if not outside else results_row["contrastive_loss"]
    )
    shift = np.linspace(0.6, 0.0, EPOCHS)
    cont = final_cont + shift
    sup = cont + mid
    if outside:
        sup[0] = cont[0] + results_row["upper_gap"] + 0.1
    return pd.DataFrame(
        {
            "epoch": np.arange(EPOCHS),
            "train_loss": cont + 0.05,
            "val_contrastive_loss": cont,
            "val_supervised_loss": sup,
            "val_mean_acc": np.linspace(0.3, results_row["mean_acc"], EPOCHS),
            "lr": 0.01,
        }
    )


def write_run(root: Path, fail: bool, report_params: dict | None = None) -> dict[str, Path]:
    results = make_results(fail)
    paths = {
        "params": root / "params.yaml",
        "results": root / "reports" / "results.csv",
        "pretrain": root / "data" / "pretrain",
        "theory": root / "reports" / "theory",
        "out": root / "reports" / "report.md",
        "figures": root / "reports" / "figures",
        "external": root / "reports" / "external.csv",
    }
    paths["results"].parent.mkdir(parents=True)
    results.to_csv(paths["results"], index=False)
    for _, row in results.iterrows():
        traj = make_trajectory(
            row, outside=fail and (row["dataset"], row["k"], row["seed"]) == FAIL
        )
        folder = paths["pretrain"] / row["dataset"] / f"k{row['k']}-s{row['seed']}"
        folder.mkdir(parents=True)
        traj.to_csv(folder / "trajectory.csv", index=False)
    paths["theory"].mkdir(parents=True)
    (paths["theory"] / "fig3.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # fig4 left absent
    params = {"dataset": list(DATASETS), "report": report_params or {"dpi": 60}}
    paths["params"].write_text(yaml.safe_dump(params))
    return paths


def argv(paths: dict[str, Path]) -> list[str]:
    return [
        "--params", str(paths["params"]),
        "--results", str(paths["results"]),
        "--pretrain-dir", str(paths["pretrain"]),
        "--theory-dir", str(paths["theory"]),
        "--out", str(paths["out"]),
        "--figures-dir", str(paths["figures"]),
        "--external", str(paths["external"]),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    paths = write_run(tmp_path_factory.mktemp("good"), fail=False)
    return paths, STAGE.main(argv(paths))


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    paths = write_run(tmp_path_factory.mktemp("bad"), fail=True)
    return paths, STAGE.main(argv(paths))


# --------------------------------------------------------------------------- helpers
def summary_lines(markdown: str) -> list[str]:
    section = markdown.split("## Summary", 1)[1].split("\n## ", 1)[0]
    return [ln for ln in section.splitlines() if ln.startswith(("- **Claim", "  - "))]


def claim_line(markdown: str, number: int) -> str:
    (line,) = [ln for ln in summary_lines(markdown) if ln.startswith(f"- **Claim {number} (")]
    return line


def numbers_in(line: str) -> list[str]:
    line = re.sub(r"\*\*Claim \d+ \([^)]*\):\*\*", "", line)
    return NUMBER.findall(line)


def table_numbers(markdown: str) -> list[float]:
    found = []
    for ln in markdown.splitlines():
        if ln.startswith("| ") and not ln.startswith("| K "):
            found += [float(t) for t in NUMBER.findall(ln)]
    return found


def oracle(results: pd.DataFrame, pretrain: Path) -> list[float]:
    """Every number a claim line may quote, computed here straight from the CSV files."""
    r = results
    n = len(r)
    values: list[float] = [n, int(r["holds"].sum()), 3 * n, len(DATASETS), *KS, *SEEDS, 0]
    margin = np.minimum(
        r["supervised_loss"] - r["bao_lower"], r["bao_upper"] - r["supervised_loss"]
    )
    values += [margin.min(), -margin.min()]
    excess = r["bao_upper"] - r["supervised_loss"]
    values += [excess.max(), int((excess > 5.0).sum())]
    earlier = r[["arora", "nozawa_sato", "ash"]].to_numpy()
    ratios = earlier / r["supervised_loss"].to_numpy()[:, None]
    defined = ratios[~np.isnan(ratios)]
    values += [int(np.isnan(earlier).sum()), defined.size, defined.min(), int((defined < 10).sum())]
    means = r.groupby(["dataset", "k"])[["supervised_loss", "mean_acc", "linear_acc"]].mean()
    for ds in DATASETS:
        m = means.loc[ds]
        values += list(m.to_numpy().ravel())
        values += [m["supervised_loss"].iloc[1] - m["supervised_loss"].iloc[0]]
        values += [m["supervised_loss"].iloc[-1] - m["supervised_loss"].iloc[-2]]
        values += [m["mean_acc"].iloc[1] - m["mean_acc"].iloc[0]]
        values += [m["mean_acc"].iloc[-1] - m["mean_acc"].iloc[-2]]
    inside = right = above = points = 0
    for row in r.itertuples():
        t = pd.read_csv(pretrain / row.dataset / f"k{row.k}-s{row.seed}" / "trajectory.csv")
        gap = t["val_supervised_loss"] - t["val_contrastive_loss"]
        inside += int(((row.lower_gap <= gap) & (gap <= row.upper_gap)).sum())
        right += int(
            (t["val_contrastive_loss"] >= bounds.optimal_contrastive_loss(row.k, row.classes)).sum()
        )
        above += int(
            (t["val_supervised_loss"] >= bounds.optimal_supervised_loss(row.classes)).sum()
        )
        points += len(t)
        values += list(t["epoch"])
        values += [int((~((row.lower_gap <= gap) & (gap <= row.upper_gap))).sum())]
    values += [inside, right, above, points, 100.0 * inside / points]
    return values


def matches(token: str, allowed: list[float]) -> bool:
    v = float(token.rstrip("%"))
    tol = 0.06 if token.endswith("%") else 10.0**-DECIMALS
    return any(abs(v - a) <= tol + 1e-3 * abs(a) for a in allowed)


# --------------------------------------------------------------------------- the tests
def test_report_written_and_every_image_link_resolves(good):
    paths, rc = good
    assert rc == 0
    md = paths["out"].read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links, "the report embeds no image"
    for link in links:
        assert not link.startswith("/"), link
        assert (paths["out"].parent / link).is_file(), link
    assert "theory/fig3.png" in links
    assert "Fig. 4: coefficients of the contrastive loss: not found" in md
    for ds in DATASETS:
        for fig in ("fig1", "gap", "fig5", "fig6"):
            assert f"figures/{fig}_{ds}.png" in links
    assert "figures/fig7_8_topics.png" in links
    # one table row per (dataset, K), every verdict positive
    assert md.count("| yes (2/2 seeds) |") == len(DATASETS) * len(KS)
    assert "## How this was made" in md and "K: 1, 4, 16. Seeds: 0, 1." in md


def test_claims_confirmed_with_numbers_from_the_data(good):
    paths, _ = good
    md = paths["out"].read_text()
    results = pd.read_csv(paths["results"])
    allowed = oracle(results, paths["pretrain"]) + table_numbers(md)
    lines = summary_lines(md)
    assert len([ln for ln in lines if ln.startswith("- **Claim")]) == 4
    for line in lines:
        for token in numbers_in(line):
            assert matches(token, allowed), f"{token} in {line!r} comes from no table value"
    c1 = claim_line(md, 1)
    margin = np.minimum(
        results["supervised_loss"] - results["bao_lower"],
        results["bao_upper"] - results["supervised_loss"],
    ).min()
    assert "confirmed: holds on 12/12 runs" in c1
    assert f"smallest margin {margin:.3f} nats" in c1
    assert "confirmed: 60/60 held-out trajectory points (100.0%)" in claim_line(md, 4)
    assert claim_line(md, 3).startswith(
        "- **Claim 3 (downstream improves with K and saturates):** confirmed"
    )


def test_violated_bound_is_not_confirmed(bad):
    paths, rc = bad
    assert rc == 0
    md = paths["out"].read_text()
    results = pd.read_csv(paths["results"])
    allowed = oracle(results, paths["pretrain"]) + table_numbers(md)
    for line in summary_lines(md):
        for token in numbers_in(line):
            assert matches(token, allowed), f"{token} in {line!r} comes from no table value"
    c1 = claim_line(md, 1)
    assert "not confirmed: holds on 11/12 runs" in c1
    assert "topics_c5 K=4 seed 1" in c1
    assert "| no (1/2 seeds) |" in md
    assert "not confirmed: 59/60 held-out trajectory points" in claim_line(md, 4)


@pytest.mark.parametrize(
    ("section", "needles"),
    [
        ({"title": 3}, ["report.title", "3", "string"]),
        ({"colour": "red"}, ["colour", "red", "allowed keys"]),
        ({"dpi": 10}, ["report.dpi", "10", "[50, 600]"]),
    ],
)
def test_bad_params_one_line_exit_2_nothing_written(tmp_path, capsys, section, needles):
    paths = write_run(tmp_path, fail=False, report_params=section)
    assert STAGE.main(argv(paths)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    for needle in needles:
        assert needle in err
    assert not paths["out"].exists()
    assert not paths["figures"].exists()


def test_missing_results_is_one_clear_line(tmp_path, capsys):
    paths = write_run(tmp_path, fail=False)
    paths["results"].unlink()
    assert STAGE.main(argv(paths)) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(paths["results"]) in err and "does not exist" in err


def test_a_failure_leaves_the_previous_report_intact(tmp_path, capsys):
    paths = write_run(tmp_path, fail=False)
    paths["out"].write_text("previous report\n")
    broken = paths["pretrain"] / "topics_c20" / "k4-s0" / "trajectory.csv"
    broken.write_text("epoch,lr\n0,0.1\n")
    assert STAGE.main(argv(paths)) == 2
    assert "lacks the columns" in capsys.readouterr().err
    assert paths["out"].read_text() == "previous report\n"
    assert not paths["figures"].exists()


@pytest.mark.parametrize("rows_per_k", [1, 3])
def test_plot_surrogate_gap_single_c(rows_per_k):
    c, ks = 10, [1, 8, 64]
    frame = pd.DataFrame(
        [
            {
                "k": k,
                "classes": c,
                "contrastive_loss": 2.0 + 0.1 * i,
                "supervised_loss": 2.0
                + 0.1 * i
                + (bounds.lower_gap(k, c) + bounds.upper_gap(k, c)) / 2,
            }
            for k in ks
            for i in range(rows_per_k)
        ]
    )
    fig = rep.plot_surrogate_gap(frame)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert "nats" in ax.get_ylabel()
    with pytest.raises(ValueError, match="contrastive_loss"):
        rep.plot_surrogate_gap(frame.drop(columns="contrastive_loss"))


def test_no_heat_map_without_a_class_sweep():
    results = make_results(fail=False)
    one = results[results["dataset"] == "topics_c5"]
    traj = pd.DataFrame(columns=["dataset", "k", "seed", "epoch"])
    report = rep.build_report(one, traj, rep.ReportParams())
    assert "there are no heat maps" in report.markdown
    assert not any(name.startswith("fig7") for name in report.figures)
    assert "- **Claim 4 (trajectories stay inside the band):** not tested" in report.markdown


def test_external_representations_join_the_report(tmp_path):
    paths = write_run(tmp_path, fail=False)
    ks = [1, 4, 16]
    c = 5
    rows = []
    for k in ks:
        loss = float(bounds.optimal_contrastive_loss(k, c)) + 0.3
        rows.append(
            {
                "dataset": "clip-vit",
                "classes": c,
                "k": k,
                "contrastive_loss": loss,
                "contrastive_loss_se": 0.01,
                "supervised_loss": 1.2,
                "mean_acc": 0.8,
                "bao_lower": loss + bounds.lower_gap(k, c),
                "bao_upper": loss + bounds.upper_gap(k, c),
                "holds": True,
            }
        )
    pd.DataFrame(rows).to_csv(paths["external"], index=False)
    assert STAGE.main(argv(paths)) == 0
    md = paths["out"].read_text()
    assert "## External representations (`evaluate` stage)" in md
    assert "### clip-vit (C = 5)" in md
    assert (paths["figures"] / "gap_external_clip-vit.png").is_file()
    table = [line for line in md.splitlines() if line.startswith("| ") and line.endswith("| yes |")]
    assert [int(line.split("|")[1]) for line in table] == ks


def test_no_external_section_without_external_rows(good):
    paths, _ = good
    assert "External representations" not in paths["out"].read_text()
