"""The report stage on a small synthetic run (three C of one kind, three seeds, per-point
arrays, trajectories): links resolve, verdicts and thresholds come from the data and the
params, a violated bound and a collapsed run are reported as such, bad params and missing
inputs are one line, nothing is half-written."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import stage

from surrogap.core.errors import UserError
from surrogap.core.schema import NULL_COLUMNS, run_dir, seed_dir
from surrogap.report import front
from surrogap.report.claims import CLAIMS
from surrogap.report.load import ReportParams, load_scale, points_path
from surrogap.report.markdown import SUMMARY_WORDS, build_report, scale_rows, stopping_line
from surrogap.theory import bounds

DATASETS = {"topics_c5": ("topics", 5), "topics_c20": ("topics", 20), "topics_c50": ("topics", 50)}
KS = (1, 4, 16)
SEEDS = (0, 1, 2)
EPOCHS = 5
POSITION = 0.25  # where R_mu sits inside [R_cont + Delta_L, R_cont + Delta_U]
N_TEST = 400  # enough test points that the accuracies' trends clear the rerun margin
FAIL = ("topics_c5", 4, 1)  # (dataset, K, seed) whose R_mu is put above Bao's upper bound
COLLAPSED = ("topics_c20", 1, 2)  # a run whose validation accuracy is far below its siblings'
REPORT = {
    "dpi": 60,
    "confidence": 0.9,
    "power": 0.9,
    "min_seeds": 3,
    "ceiling": 0.98,
    "collapse_drop": 0.25,
}


STAGE = stage("report")


# --------------------------------------------------------------------------- synthetic run
def make_results(fail: bool) -> pd.DataFrame:
    """R_mu falls like 1/sqrt(K), R_cont puts it a quarter into the band (right of
    R_cont*); accuracies in steps of 1/N_TEST."""
    rows = []
    for ds, (kind, c) in DATASETS.items():
        for k in KS:
            lo, hi = bounds.lower_gap(k, c), bounds.upper_gap(k, c)
            for s in SEEDS:
                sup = bounds.optimal_supervised_loss(c) + 0.2 + 1.0 / math.sqrt(k) + 0.02 * s
                cont = sup - (lo + POSITION * (hi - lo))
                if fail and (ds, k, s) == FAIL:
                    sup = cont + hi + 0.25
                acc = round(0.5 + 0.3 * (1 - 1 / math.sqrt(k)) + 0.01 * s - 0.002 * c, 2)
                val = 0.1 if (ds, k, s) == COLLAPSED else acc
                rows.append(
                    {
                        "dataset": ds,
                        "kind": kind,
                        "classes": c,
                        "k": k,
                        "seed": s,
                        "contrastive_loss": cont,
                        "contrastive_loss_se": 0.01,
                        "contrastive_repeats": 10,
                        "supervised_loss": sup,
                        "mean_acc": acc,
                        "linear_acc": acc + 0.05,
                        "linear_loss": sup - 0.1,
                        "val_supervised_loss": sup + 0.01,
                        "val_mean_acc": val,
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


def make_null(results: pd.DataFrame) -> pd.DataFrame:
    """The fixed_null stage's table: the K = 1 encoder of each (dataset, seed) at every K,
    its R_mu that of K = 1 and its R_cont that measured at each K (the mechanical part)."""
    rows = []
    for _, g in results.groupby(["dataset", "seed"]):
        first = g.sort_values("k").iloc[0]
        for r in g.itertuples():
            rows.append(
                {
                    **{c: getattr(r, c) for c in ("dataset", "kind", "classes", "k", "seed")},
                    "encoder_k": int(first["k"]),
                    "contrastive_loss": r.contrastive_loss,
                    "contrastive_loss_se": r.contrastive_loss_se,
                    "supervised_loss": first["supervised_loss"],
                    "mean_acc": first["mean_acc"],
                }
            )
    return pd.DataFrame(rows, columns=list(NULL_COLUMNS))


def make_trajectory(row: pd.Series, outside: bool) -> pd.DataFrame:
    """Moves down a line of constant R_mu - R_cont inside the band to the test values."""
    mid = row["lower_gap"] + POSITION * (row["upper_gap"] - row["lower_gap"])
    final_cont = row["supervised_loss"] - mid if not outside else row["contrastive_loss"]
    cont = final_cont + np.linspace(0.6, 0.0, EPOCHS)
    sup = cont + mid
    if outside:
        sup[0] = cont[0] + row["upper_gap"] + 0.1
    return pd.DataFrame(
        {
            "epoch": np.arange(EPOCHS),
            "train_loss": cont + 0.05,
            "val_contrastive_loss": cont,
            "val_supervised_loss": sup,
            "val_mean_acc": np.linspace(0.3, row["mean_acc"], EPOCHS),
            "lr": 0.01,
        }
    )


def write_points(probe: Path, row: pd.Series) -> None:
    """Arrays that average exactly to the row's R_mu and accuracies; one test split per
    (dataset, seed)."""
    rng = np.random.default_rng([int(row["classes"]), int(row["seed"])])
    y = rng.integers(0, int(row["classes"]), N_TEST)
    base = rng.standard_normal(N_TEST)
    order = rng.permutation(N_TEST)
    noise = np.random.default_rng([int(row["k"]), int(row["seed"])]).standard_normal(N_TEST)
    loss = 0.4 * base + 0.05 * noise
    loss += row["supervised_loss"] - loss.mean()

    def correct(acc):
        m = np.zeros(N_TEST, bool)
        m[order[: round(acc * N_TEST)]] = True
        return m

    path = points_path(probe, row["dataset"], int(row["k"]), int(row["seed"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        y=y,
        mean_loss=loss,
        mean_correct=correct(row["mean_acc"]),
        linear_loss=loss - 0.1,
        linear_correct=correct(row["linear_acc"]),
    )


def prepared_meta(classes: int, sizes: dict[str, int]) -> dict:
    """A prepared dataset's meta.json as the prepare stage writes it (topics: text)."""
    return {
        "kind": "topics",
        "modality": "text",
        "num_classes": classes,
        "input_shape": [32],
        "vocab_size": 500,
        "sizes": sizes,
    }


def write_prepared_meta(folder: Path, meta: dict) -> None:
    """meta.json and splits whose arrays agree with it (the report checks them: text
    splits of one token per sample, labels cycling through the classes)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.joinpath("meta.json").write_text(json.dumps(meta))
    for split, n in meta["sizes"].items():
        np.savez(
            folder / f"{split}.npz",
            tokens=np.zeros(n, np.int64),
            offsets=np.arange(n),
            y=np.arange(n) % meta["num_classes"],
        )


def write_run(root: Path, fail: bool, report_params: dict | None = None) -> dict[str, Path]:
    results = make_results(fail)
    paths = {
        "params": root / "params.yaml",
        "results": root / "reports" / "results.csv",
        "pretrain": root / "data" / "pretrain",
        "prepared": root / "data" / "prepared",
        "probe": root / "data" / "probe",
        "theory": root / "reports" / "theory",
        "out": root / "reports" / "report.md",
        "figures": root / "reports" / "figures",
        "external": root / "reports" / "external.csv",
        "null": root / "reports" / "null.csv",
    }
    paths["results"].parent.mkdir(parents=True)
    results.to_csv(paths["results"], index=False)
    make_null(results).to_csv(paths["null"], index=False)
    for _, row in results.iterrows():
        key = (row["dataset"], row["k"], row["seed"])
        traj = make_trajectory(row, outside=fail and key == FAIL)
        folder = paths["pretrain"] / row["dataset"] / run_dir(int(row["k"]), int(row["seed"]))
        folder.mkdir(parents=True)
        traj.to_csv(folder / "trajectory.csv", index=False)
        if row["dataset"] == "topics_c20":  # the others' runs recorded no train_info.json
            info = {"global_batch": 64, "epochs": EPOCHS - 1, "lr_used": 0.01}
            (folder / "train_info.json").write_text(json.dumps(info))
        write_points(paths["probe"], row)
    for ds, (_, c) in DATASETS.items():
        for seed in SEEDS:
            sizes = {"train": 140 * c, "val": 20 * c, "test": 40 * c}  # 200 per class
            write_prepared_meta(paths["prepared"] / ds / seed_dir(seed), prepared_meta(c, sizes))
    paths["theory"].mkdir(parents=True)
    (paths["theory"] / "fig3.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # fig4 left absent
    params = {
        "dataset": list(DATASETS),
        # what the params say now is not what the Scale section reports: the recorded runs
        "topics_c20": {
            "data": {"kind": "topics", "classes": 20, "sentences_per_class": 999},
            "train": {"batch_size": 512, "epochs": 99},
        },
        "report": REPORT if report_params is None else report_params,
    }
    paths["params"].write_text(yaml.safe_dump(params))
    return paths


def argv(paths: dict[str, Path], probe: bool = True) -> list[str]:
    args = [
        "--params", str(paths["params"]),
        "--results", str(paths["results"]),
        "--pretrain-dir", str(paths["pretrain"]),
        "--prepared-dir", str(paths["prepared"]),
        "--theory-dir", str(paths["theory"]),
        "--out", str(paths["out"]),
        "--figures-dir", str(paths["figures"]),
        "--external", str(paths["external"]),
        "--null", str(paths["null"]),
    ]  # fmt: skip
    return [*args, "--probe-dir", str(paths["probe"])] if probe else args


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    paths = write_run(tmp_path_factory.mktemp("good"), fail=False)
    return paths, STAGE.main(argv(paths))


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    paths = write_run(tmp_path_factory.mktemp("bad"), fail=True)
    return paths, STAGE.main(argv(paths, probe=False))


def claim_line(markdown: str, number: int) -> str:
    (line,) = [ln for ln in markdown.splitlines() if ln.startswith(f"- **Claim {number} (")]
    return line


def section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


# --------------------------------------------------------------------------- the tests
def test_report_written_and_every_image_link_resolves(good):
    paths, rc = good
    assert rc == 0
    md = paths["out"].read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    for link in links:
        assert not link.startswith("/"), link
        assert (paths["out"].parent / link).is_file(), link
    assert "theory/fig3.png" in links
    assert "Fig. 4: coefficients of the contrastive loss: not found" in md
    for ds in DATASETS:
        for fig in ("fig1", "fig9", "gap", "fig5", "fig6"):
            assert f"figures/{fig}_{ds}.png" in links
    assert "figures/fig7_8_topics.png" in links  # one kind at three values of C
    assert "Kind topics at C = 5, 20, 50" in md
    # one results row per (dataset, K), with n and every verdict positive
    assert md.count("| yes (3/3 seeds) |") == len(DATASETS) * len(KS)
    assert "K: 1, 4, 16. Seeds: 0, 1, 2." in md
    assert f"{len(DATASETS) * len(KS) * len(SEEDS)} per-test-point files" in md


def test_first_screen_is_the_claim_table_then_the_headline_figure(good):
    paths, _ = good
    md = paths["out"].read_text()
    title, rest = md.split("\n## ", 1)
    heading, body = rest.split("\n", 1)
    assert heading == "The claims on this run"  # the first section after the title
    lines = [ln for ln in body.split("\n## ", 1)[0].splitlines() if ln.strip()]
    assert lines[0].startswith("| claim | the paper's statement (docs/THEORY.md) | check |")
    rows = [ln for ln in lines if re.match(r"\| \d\. ", ln)]
    assert [int(r[2]) for r in rows] == [c.number for c in CLAIMS] == [1, 2, 3, 4, 5]
    for row in rows:
        n = int(row[2])
        assert f'"{front.spec_of(n).statement}"' in row
        assert f"| {front.spec_of(n).check} |" in row
        for link in re.findall(r"\]\(([^)]+\.png)\)", row):
            assert (paths["out"].parent / link).is_file(), link
    kinds = {int(r[2]): r for r in rows}
    assert "theorem check" in kinds[1] and "theorem check" in kinds[4]
    assert "formula check" in kinds[2] and "empirical test" in kinds[3]
    # the answer comes before the table, the headline figure after it, before any dataset
    assert "**On this run**" in title
    headline = md.index("![does a larger K help, and why](figures/headline.png)")
    assert md.index("| 5. ") < headline < md.index("\n## topics_c5 ")
    assert (paths["figures"] / "headline.png").is_file()


def test_the_claims_quote_docs_theory():
    theory = " ".join(
        (Path(__file__).resolve().parents[1] / "docs" / "THEORY.md")
        .read_text(encoding="utf-8")
        .replace("**", "")
        .split()
    )
    for c in CLAIMS:
        assert c.statement in theory, c.number


def test_each_registered_claim_names_report_params_that_exist():
    fields = {f.name for f in dataclasses.fields(ReportParams)}
    assert [c.number for c in CLAIMS] == list(range(1, len(CLAIMS) + 1))
    for c in CLAIMS:
        assert c.params and set(c.params) <= fields, (c.number, set(c.params) - fields)
        assert c.check in ("theorem check", "formula check", "empirical test")


def test_summary_is_at_most_400_words_and_per_dataset_numbers_are_tables(good):
    paths, _ = good
    md = paths["out"].read_text()
    summary = section(md, "Summary")
    assert len(summary.split()) <= SUMMARY_WORDS == 400
    assert "seeds to detect the effect of interest" not in summary  # numbers: the tables
    for ds in DATASETS:
        part = md.split(f"\n## {ds} ", 1)[1].split("\n## ", 1)[0]
        table = part.split("### Claims 3 and 5: trends against K", 1)[1]
        for quantity in (
            "R_mu",
            "mean-classifier accuracy",
            "linear-probe accuracy",
            "R_mu - R_cont",
            "fixed encoder's gap",
            "gap minus the fixed encoder's",
        ):
            (row,) = [ln for ln in table.splitlines() if ln.startswith(f"| {quantity} |")]
            assert row.count("|") == 7 + len(KS), row  # name, a value per K, five more cells


def test_the_fixed_encoder_null_is_drawn_and_read(good):
    paths, _ = good
    md = paths["out"].read_text()
    assert "Why the gap falls: mostly mechanically" in md  # 41% of the slope learned
    part = md.split("\n## topics_c20 ", 1)[1].split("\n## ", 1)[0]
    (row,) = [ln for ln in part.splitlines() if ln.startswith("| fixed encoder's gap |")]
    null = pd.read_csv(paths["null"])
    at = null[(null["dataset"] == "topics_c20") & (null["k"] == KS[-1])]
    gap = float((at["supervised_loss"] - at["contrastive_loss"]).mean())
    assert f"| {gap:.3f} |" in row


def test_verdicts_follow_the_data(good):
    paths, _ = good
    md = paths["out"].read_text()
    results = pd.read_csv(paths["results"])
    for number in (1, 4):
        assert "** consistent (theorem check):" in claim_line(md, number), claim_line(md, number)
    for number in (2, 3, 5):
        assert "** confirmed:" in claim_line(md, number), claim_line(md, number)
    assert "the three metrics agree (confirmed)" in claim_line(md, 3)
    # the data each claim stands on, said once in the summary
    assert "generated topics, a stand-in for Wiki-3029; one data family" in section(md, "Summary")
    margin = np.minimum(
        results["supervised_loss"] - results["bao_lower"],
        results["bao_upper"] - results["supervised_loss"],
    )
    mu_se = []
    for row in results.itertuples():
        with np.load(points_path(paths["probe"], row.dataset, row.k, row.seed)) as npz:
            mu_se.append(npz["mean_loss"].std(ddof=1) / math.sqrt(N_TEST))
    z = margin / np.sqrt(results["contrastive_loss_se"] ** 2 + np.square(mu_se))
    i = int(np.argmin(z))
    assert (
        f"holds on 27/27 runs; smallest margin {z[i]:.1f} standard errors ({margin[i]:.3f} nats"
        in claim_line(md, 1)
    )
    points = len(DATASETS) * len(KS) * len(SEEDS) * EPOCHS
    assert f"{points}/{points} held-out trajectory points (100.0%)" in claim_line(md, 4)
    assert f"each a mean over {N_TEST} test points" in md


def test_collapsed_run_is_flagged_from_validation_data(good):
    paths, _ = good
    md = paths["out"].read_text()
    assert "- topics_c20 K=1 seed 2: validation accuracy 0.100" in md
    assert "without the collapsed runs (topics_c20 K=1 seed 2): inconclusive" in md


def test_every_threshold_is_stated_from_its_param(good):
    paths, _ = good
    how = section(paths["out"].read_text(), "How this was made")
    for key in ("confidence", "power", "min_seeds", "ceiling"):
        assert f"`report.{key}` = {REPORT[key]:g}" in how, key
    assert f"`report.collapse_drop` = {REPORT['collapse_drop']:g}" in how


def test_scale_lists_every_difference_from_the_paper(good):
    paths, _ = good
    scale = section(paths["out"].read_text(), "Scale: this run against the paper's")
    assert (
        "| topics_c20 | Wiki-3029 | 20 / 500-3029 | 200 / 200 | 64 / 2048 | 4 / not stated |"
        in scale
    )
    line = next(ln for ln in scale.splitlines() if ln.startswith("- topics_c20:"))
    # equal values (samples per class, seeds) and the paper's unstated epochs are left out
    assert line == (
        "- topics_c20: C 20 (paper 500-3029), batch 64 (paper 2048), K 1-16 (paper 8-1024)."
    )


def test_scale_reads_what_each_run_recorded(tmp_path):
    results = make_results(fail=False)
    results = results[results["dataset"] == "topics_c5"]
    prepared, pretrain = tmp_path / "prepared", tmp_path / "pretrain"
    for seed, total in zip(SEEDS, (1797, 1797, 1800), strict=True):  # digits: not divisible
        meta = prepared_meta(10, {"train": total - 700, "val": 350, "test": 350})
        write_prepared_meta(prepared / "topics_c5" / seed_dir(seed), meta)
    for row in results.itertuples():
        folder = pretrain / "topics_c5" / run_dir(row.k, row.seed)
        folder.mkdir(parents=True)
        info = {"global_batch": 128 if row.k < 16 else 256, "epochs": 10}
        (folder / "train_info.json").write_text(json.dumps(info))

    def shown(scale):
        (row,) = scale_rows(results, scale)
        return {f: row["run"][f] for f in ("per_class", "batch", "epochs")}

    assert shown(load_scale(pretrain, prepared, results)) == {
        "per_class": "179.7 (mean)-180", "batch": "128-256", "epochs": "10"
    }  # fmt: skip
    # nothing recorded: unknown, never a guess
    assert shown(load_scale(tmp_path / "none", None, results)) == {
        "per_class": "unknown", "batch": "unknown", "epochs": "unknown"
    }  # fmt: skip
    (prepared / "topics_c5" / seed_dir(0) / "meta.json").write_text(
        json.dumps(prepared_meta(10, {}))
    )  # fmt: skip
    with pytest.raises(UserError, match=re.escape("sizes is {}, allowed: {train, val, test}")):
        load_scale(pretrain, prepared, results)
    (pretrain / "topics_c5" / run_dir(1, 0) / "train_info.json").write_text("{not json")
    with pytest.raises(UserError, match=r"train info .*k1/s0/train_info\.json' is unreadable"):
        load_scale(pretrain, None, results)
    (pretrain / "topics_c5" / run_dir(1, 0) / "train_info.json").write_text('{"epochs": 10}')
    with pytest.raises(UserError, match="global_batch is None, allowed: an integer >= 1"):
        load_scale(pretrain, None, results)


def test_stopping_is_stated_per_dataset_and_in_the_epochs_cell(tmp_path):
    results = make_results(fail=False)
    results = results[results["dataset"] == "topics_c5"]
    pretrain = tmp_path / "pretrain"
    flats = []
    for i, row in enumerate(results.itertuples()):
        folder = pretrain / "topics_c5" / run_dir(row.k, row.seed)
        folder.mkdir(parents=True)
        converged = i % 3 != 0  # every third run reaches the cap
        flat = 1e-4 * (i + 1) if converged else 0.02
        flats.append(flat)
        info = {
            "global_batch": 64,
            "epochs": 150,
            "max_epochs": 150,
            "stop_epoch": 37 + i if converged else 150,  # the first converged: 38
            "stop_reason": (
                f"converged: val contrastive loss improved {flat:.3g} <= 0.001 (relative) over "
                "the last 3 evaluations"
                if converged
                else "cap: reached epochs (150)"
            ),
            "flatness": flat,
        }
        (folder / "train_info.json").write_text(json.dumps(info))
    n = len(results)
    capped = len(range(0, n, 3))
    scale = load_scale(pretrain, None, results)
    (row,) = scale_rows(results, scale)
    assert row["run"]["epochs"] == "38-150 (cap 150)"
    line = stopping_line(scale["topics_c5"])
    assert line.startswith("Stopping: the runs stopped at epoch 38-150 (cap 150); ")
    assert f"cap on {capped}/{n} runs" in line and f"converged on {n - capped}/{n} runs" in line
    assert f"is at most {max(flats):.3g}." in line
    # no early stopping: every run at its cap, flatness null
    for path in pretrain.rglob("train_info.json"):
        info = json.loads(path.read_text())
        info.update(stop_epoch=150, stop_reason="cap: reached epochs (150)", flatness=None)
        path.write_text(json.dumps(info))
    scale = load_scale(pretrain, None, results)
    assert scale_rows(results, scale)[0]["run"]["epochs"] == "150 (cap 150)"
    assert stopping_line(scale["topics_c5"]) == (
        f"Stopping: the runs stopped at epoch 150 (cap 150); cap on {n}/{n} runs; no flatness "
        "recorded (the convergence rule is off: `stop_patience` null)."
    )
    path.write_text(json.dumps({**info, "flatness": "flat"}))
    with pytest.raises(UserError, match="flatness is 'flat', allowed: a finite number or null"):
        load_scale(pretrain, None, results)


def test_bounds_table_says_where_bao_is_vacuous(good):
    paths, _ = good
    md = paths["out"].read_text()
    results = pd.read_csv(paths["results"])
    part = md.split("## topics_c5 ", 1)[1].split("### Surrogate gap", 1)[0]
    rows = [ln for ln in part.splitlines() if re.match(r"\| \d+ \| 3 \|", ln)]
    assert len(rows) == len(KS)
    for row, k in zip(rows, KS, strict=True):
        at = results[(results["dataset"] == "topics_c5") & (results["k"] == k)]["bao_upper"]
        above = int((at > math.log(5)).sum())
        word = f"weaker than uniform (above) on {above}/3 seeds"
        assert f"| {at.mean():.3f} | {math.log(5):.3f} | {word}" in row


def test_violated_bound_is_not_confirmed(bad):
    paths, rc = bad
    assert rc == 0
    md = paths["out"].read_text()
    c1 = claim_line(md, 1)
    assert "** violated (theorem check): holds on 26/27 runs" in c1
    assert "violated on topics_c5 K=4 seed 1" in c1
    assert "| no (2/3 seeds) |" in md
    assert "violated (theorem check): 134/135 held-out trajectory points" in claim_line(md, 4)
    # without per-point files the seeds carry the intervals alone, and the report says so
    assert "0 per-test-point files" in md and "per-run values" in md


@pytest.mark.parametrize(
    ("section_", "needles"),
    [
        ({"title": 3}, ["report.title", "3", "string"]),
        ({"colour": "red"}, ["report: unknown key 'colour'", "allowed keys", "title"]),
        ({"dpi": 10}, ["report.dpi", "10", "[50, 600]"]),
        ({"confidence": 2}, ["report.confidence", "2", "(0.5, 1)"]),
    ],
)
def test_bad_params_one_line_exit_2_nothing_written(tmp_path, capsys, section_, needles):
    paths = write_run(tmp_path, fail=False, report_params=section_)
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
    assert STAGE.main(argv(paths)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(paths["results"]) in err and "does not exist" in err


@pytest.mark.parametrize("broken", ["trajectory", "points"])
def test_a_failure_leaves_the_previous_report_intact(tmp_path, capsys, broken):
    paths = write_run(tmp_path, fail=False)
    paths["out"].write_text("previous report\n")
    if broken == "trajectory":
        (paths["pretrain"] / "topics_c20" / run_dir(4, 0) / "trajectory.csv").write_text(
            "epoch,lr\n0,0\n"
        )
        needle = "lacks the columns"
    else:
        points_path(paths["probe"], "topics_c20", 4, 0).write_bytes(b"not an npz")
        needle = "is unreadable (ValueError: not a .npz or cut short)"
    assert STAGE.main(argv(paths)) == 2
    assert needle in capsys.readouterr().err
    assert paths["out"].read_text() == "previous report\n"
    assert not paths["figures"].exists()


def test_no_heat_map_below_three_values_of_c():
    results = make_results(fail=False)
    two = results[results["dataset"] != "topics_c50"]
    traj = pd.DataFrame(columns=["dataset", "k", "seed", "epoch"])
    report = build_report(two, traj, ReportParams())
    assert "no kind of data was run at three or more values of c" in report.markdown.lower()
    assert not any(name.startswith("fig7") for name in report.figures)
    assert "- **Claim 4 (trajectories stay inside the band):** inconclusive" in report.markdown


def external_table(dataset: str = "clip", c: int = 5) -> pd.DataFrame:
    """reports/external.csv as the evaluate stage writes it (every column)."""
    rows = []
    for k in KS:
        loss = float(bounds.optimal_contrastive_loss(k, c)) + 0.3
        lo, hi = bounds.lower_gap(k, c), bounds.upper_gap(k, c)
        rows.append(
            {
                "dataset": dataset,
                "classes": c,
                "k": k,
                "contrastive_loss": loss,
                "contrastive_loss_se": 0.01,
                "supervised_loss": 1.2,
                "mean_acc": 0.8,
                "lower_gap": lo,
                "upper_gap": hi,
                "bao_lower": loss + lo,
                "bao_upper": loss + hi,
                "arora": math.nan,
                "nozawa_sato": math.nan,
                "ash": math.nan,
                "holds": bounds.holds(loss + lo, 1.2, loss + hi),
                "vacuity": bounds.upper_bound_vacuity(loss + hi, c),
                "n_train": 100,
                "n_test": 50,
                "dim": 16,
            }
        )
    return pd.DataFrame(rows)


def test_external_representations_join_the_report(tmp_path):
    paths = write_run(tmp_path, fail=False)
    external_table("clip-vit").to_csv(paths["external"], index=False)
    assert STAGE.main(argv(paths)) == 0
    md = paths["out"].read_text()
    assert "## External representations (`evaluate` stage)" in md
    assert "### clip-vit (C = 5)" in md
    assert (paths["figures"] / "gap_external_clip-vit.png").is_file()
    table = [line for line in md.splitlines() if line.startswith("| ") and line.endswith("| yes |")]
    assert [int(line.split("|")[1]) for line in table] == list(KS)


def test_no_external_section_without_external_rows(good):
    paths, _ = good
    assert "External representations" not in paths["out"].read_text()


def test_a_claim_registered_in_one_place_reaches_the_report_and_compare(
    tmp_path, monkeypatch, capsys
):
    """A new claim is one ClaimSpec in claims.CLAIMS: the claim table (its statement, kind
    of check and key number), the Summary, and `surrogap compare`'s recomputed verdicts
    all find it, with nothing else edited."""
    from surrogap import cli
    from surrogap.report import claims as C
    from surrogap.report import stats as S

    def test(spec, ev, p):
        n = len(ev.results)
        return spec.found(S.CONFIRMED, f"seen {n} runs at level {p.confidence:g}", key="fake 1.5")

    fake = C.ClaimSpec(
        6, "a fake claim", "a statement no paper makes", C.EMPIRICAL,
        ("headline.png", "headline figure"), ("confidence",), test,
    )  # fmt: skip
    monkeypatch.setattr(C, "CLAIMS", (*C.CLAIMS, fake))
    paths = write_run(tmp_path, fail=False)
    assert STAGE.main(argv(paths)) == 0
    md = paths["out"].read_text()
    (row,) = [ln for ln in md.splitlines() if ln.startswith("| 6. a fake claim |")]
    assert '"a statement no paper makes" | empirical test | **confirmed**' in row
    assert "| fake 1.5 | [headline figure](figures/headline.png) |" in row
    n = len(pd.read_csv(paths["results"]))
    level = yaml.safe_load(paths["params"].read_text())["report"]["confidence"]
    assert f"- **Claim 6 (a fake claim):** confirmed: seen {n} runs at level {level:g}." in md
    reports = str(paths["results"].parent)
    capsys.readouterr()
    assert cli.main(["compare", reports, reports, "--json"]) == 0
    verdicts = json.loads(capsys.readouterr().out)["verdicts"]
    assert {"claim": 6, "name": "a fake claim"}.items() <= verdicts[-1].items()
