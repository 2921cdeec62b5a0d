"""`surrogap compare`: a reproduced reports/ against a reference one. The reference is the
committed reports/ (results.csv, selected.csv, report.md) with params.yaml; the reproduced
side is a seeded perturbation of a copy. Run through the command line (`cli.main`, and once
as a subprocess against a git revision)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from surrogap import cli
from surrogap.core.columns import COLUMNS, tolerances
from surrogap.core.schema import RESULT_COLUMNS
from surrogap.report import compare

ROOT = Path(__file__).resolve().parents[1]
FILES = ("results.csv", "selected.csv", "report.md")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def copy_reports(dest: Path) -> Path:
    """dest/reports/ with the committed tables and report.md, and dest/params.yaml."""
    (dest / "reports").mkdir(parents=True)
    for name in FILES:
        shutil.copy(ROOT / "reports" / name, dest / "reports" / name)
    shutil.copy(ROOT / "params.yaml", dest / "params.yaml")
    return dest / "reports"


def edit_tables(reports: Path, change) -> None:
    """Apply `change(frame)` to results.csv and selected.csv alike (no lr grid: same rows);
    a change that returns a frame replaces the table with it."""
    for name in ("results.csv", "selected.csv"):
        frame = pd.read_csv(reports / name)
        changed = change(frame)
        frame = frame if changed is None else changed
        frame.to_csv(reports / name, index=False, float_format="%.10g")


def oracle(reports: Path) -> tuple[dict, dict]:
    """The verdicts the report's own code gives a reports/ folder's selected.csv: ({claim:
    status}, {(claim, dataset, test): status}) for the claims compare recomputes (no
    trajectories: Claim 4 left out)."""
    import yaml

    from surrogap.report import claims as report_claims
    from surrogap.report import load

    section = yaml.safe_load((reports.parent / "params.yaml").read_text()).get("report")
    params = load.parse_params(section)
    table = load.load_results(reports / "selected.csv")
    found = [
        c for c in report_claims.claims(table, pd.DataFrame(), params, points={}) if c.number != 4
    ]
    return (
        {c.number: c.status for c in found},
        {(c.number, v.dataset, v.test): v.status for c in found for v in c.verdicts},
    )


def flips(a: dict, b: dict) -> set:
    return {key for key in a.keys() | b.keys() if a.get(key) != b.get(key)}


def hard_flips(a: dict, b: dict) -> set:
    """The flips with no fragile side: those compare counts (a fragile one may move)."""
    return {key for key in flips(a, b) if "fragile" not in (a.get(key), b.get(key))}


def machine_noise(noise: dict):
    def change(frame):
        r = np.random.default_rng(0)
        for col, size in noise.items():
            frame[col] += r.uniform(-size, size, len(frame))
        frame["mean_acc"] = frame["mean_acc"].clip(
            0, 1
        )  # an accuracy stays one (the reader checks)

    return change


def test_machine_noise_within_tolerance_changes_no_verdict(tmp_path):
    """Loss noise of the measured size (another thread count) moves no verdict: exit 0.
    (Accuracy noise of that size flips per-dataset verdicts: the next test.)"""
    ref = copy_reports(tmp_path / "ref")
    rep = copy_reports(tmp_path / "rep")
    edit_tables(rep, machine_noise({"contrastive_loss": 6e-4, "supervised_loss": 8.5e-4}))
    rc, out, err = run_cli(["compare", str(rep), str(ref)])
    assert rc == 0, out + err
    summary = out.rstrip("\n").split("\n")[-1]
    assert summary.startswith("no verdict changed; largest differences: R_cont ")
    assert summary.endswith("within tolerance")
    got = float(re.search(r"R_mu (\S+),", summary).group(1))
    assert 0 < got <= 8.5e-4
    table = {line.split()[0]: line.split() for line in out.splitlines()[3:18]}
    assert table["mean_acc"][5] == "0" and table["lower_gap"][1] == "0.0e+00"
    assert (
        "per-dataset verdicts (Claims 3 and 5, recomputed from the tables): 30 compared, "
        "none flipped" in out
    )


def test_a_per_dataset_flip_without_a_headline_change_exits_1(tmp_path):
    """One dataset's mean-classifier accuracy turned into a clean curve of the other verdict
    (improving and saturating where the reference's is not confirmed, declining where it is
    confirmed) flips that one per-dataset verdict while every claim's headline stays (the
    report's own code, the oracle, says so first): the flip is named and the exit status
    is 1."""
    ref = copy_reports(tmp_path / "ref")
    heads, per = oracle(ref)
    test = "mean-classifier accuracy"
    for (claim, dataset, name), status in sorted(per.items()):
        if claim != 3 or name != test or status == "fragile":  # a fragile one may move
            continue
        rep = copy_reports(tmp_path / f"rep-{dataset}")

        def curve(frame, dataset=dataset, status=status):
            rows = frame["dataset"] == dataset
            k, seed = frame.loc[rows, "k"].astype(float), frame.loc[rows, "seed"]
            rise = 0.2 * (1 - 1 / np.sqrt(k)) if status != "confirmed" else -0.01 * np.log(k)
            frame.loc[rows, "mean_acc"] = (0.5 + rise + 0.002 * seed).clip(0, 1)

        edit_tables(rep, curve)
        heads_rep, per_rep = oracle(rep)
        if heads_rep == heads and flips(per_rep, per) == {(3, dataset, test)}:
            break
    else:
        pytest.fail("no dataset's mean-classifier accuracy flips alone on the committed tables")
    rc, out, err = run_cli(["compare", str(rep), str(ref), "--json"])
    result = json.loads(out)
    assert rc == 1 and not result["ok"], err
    assert not any(v["changed"] for v in result["verdicts"])  # no headline moved
    (flip,) = [v for v in result["per_dataset_verdicts"] if v["changed"]]
    assert (flip["claim"], flip["dataset"], flip["test"]) == (3, dataset, test)
    assert (flip["reference"], flip["reproduced"]) == (
        per[(3, dataset, test)],
        per_rep[(3, dataset, test)],
    )
    assert len(result["per_dataset_verdicts"]) == len(per)  # every one compared
    assert result["summary"].startswith(
        f"no claim verdict changed; 1 per-dataset verdicts flipped: Claim 3 {dataset} "
        f"{test} {flip['reference']} -> {flip['reproduced']}; largest differences: "
    )
    rc, text, _ = run_cli(["compare", str(rep), str(ref)])
    assert rc == 1
    assert (
        f"  Claim 3, {dataset}, {test}: FLIPPED {flip['reference']} -> {flip['reproduced']}" in text
    )


def accuracy_noise(seed: int):
    """Noise within compare's tolerances (R_mu 8e-4 nats, accuracy 5e-3): of the size
    another machine gives, enough to move a verdict whose interval sits near a threshold."""

    def change(frame):
        r = np.random.default_rng(seed)
        frame["supervised_loss"] += r.uniform(-8e-4, 8e-4, len(frame))
        frame["mean_acc"] = (frame["mean_acc"] + r.uniform(-5e-3, 5e-3, len(frame))).clip(0, 1)

    return change


def noisy_flips(tmp_path, want_fragile: bool):
    """A copy of the committed reports/ with noise within tolerance whose per-dataset flips
    (by the report's own code, the oracle) all have a fragile side (want_fragile) or
    include one with no fragile side, and no headline change: (folder, reference folder,
    the flips {key: (reference, reproduced)})."""
    ref = copy_reports(tmp_path / "ref")
    heads, per = oracle(ref)
    for seed in range(60):
        rep = copy_reports(tmp_path / f"rep{seed}")
        edit_tables(rep, accuracy_noise(seed))
        heads_rep, per_rep = oracle(rep)
        moved = {k: (per.get(k), per_rep.get(k)) for k in flips(per_rep, per)}
        fragile = {k for k, pair in moved.items() if "fragile" in pair}
        if not moved or heads_rep != heads:
            continue
        if (fragile == set(moved)) == want_fragile:
            return rep, ref, moved
    pytest.fail("no noise within tolerance gives the flips this test needs")


def test_a_flip_with_a_fragile_side_is_expected_to_move_and_exits_0(tmp_path):
    rep, ref, moved = noisy_flips(tmp_path, want_fragile=True)
    rc, out, err = run_cli(["compare", str(rep), str(ref), "--json"])
    result = json.loads(out)
    assert rc == 0 and result["ok"], out + err
    listed = {(v["claim"], v["dataset"], v["test"]) for v in result["expected_to_move"]}
    assert listed == set(moved)
    assert (
        f"{len(moved)} verdicts moved where a side is fragile (expected to move: "
        in (result["summary"])
    )
    rc, text, _ = run_cli(["compare", str(rep), str(ref)])
    assert rc == 0 and "none flipped" in text
    assert f"{compare.EXPECTED}: {len(moved)}" in text
    for (claim, dataset, test), (a, b) in moved.items():
        assert f"  Claim {claim} {dataset} {test} {a} -> {b}" in text


def test_a_flip_with_no_fragile_side_still_exits_1(tmp_path):
    rep, ref, moved = noisy_flips(tmp_path, want_fragile=False)
    rc, out, err = run_cli(["compare", str(rep), str(ref), "--json"])
    result = json.loads(out)
    assert rc == 1 and not result["ok"], out + err
    hard = {k for k, pair in moved.items() if "fragile" not in pair}
    flipped = {
        (v["claim"], v["dataset"], v["test"])
        for v in result["per_dataset_verdicts"]
        if v["changed"] and not v["fragile"]
    }
    assert flipped == hard
    assert all(c["outside"] == 0 for c in result["columns"])  # the flip alone exits 1
    assert f"{len(hard)} per-dataset verdicts flipped" in result["summary"]


def test_a_flipped_verdict_is_named_and_exits_1(tmp_path):
    ref = copy_reports(tmp_path / "ref")
    rep = copy_reports(tmp_path / "rep")

    def violate(frame):  # one run's R_mu far above its upper bound
        frame.loc[0, "supervised_loss"] = frame.loc[0, "bao_upper"] + 1.0
        frame.loc[0, "holds"] = False

    edit_tables(rep, violate)
    rc, out, _ = run_cli(["compare", str(rep), str(ref), "--json"])
    result = json.loads(out)
    assert rc == 1 and not result["ok"]
    assert result["summary"].startswith(
        "verdict changed: Claim 1 consistent (theorem check) -> violated (theorem check)"
    )
    (r_mu,) = [c for c in result["columns"] if c["column"] == "supervised_loss"]
    assert r_mu["outside"] == 1 and r_mu["row"] == "circle K=1 seed 0"
    assert result["holds_flipped"] == ["circle K=1 seed 0"]


def test_another_design_is_said_first_and_its_verdict_changes_are_marked(tmp_path):
    """A reproduction with one seed and 5 epochs on circle against the committed three
    seeds: the output says first that params, grid and seeds differ; Claims 3 and 5 turn
    inconclusive because one seed is below report.min_seeds: 'from the design', with the
    rule's reason on each per-dataset flip; a Claim 1 violation in a run both sides hold is
    a change in the numbers."""
    ref = copy_reports(tmp_path / "ref")
    rep = copy_reports(tmp_path / "rep")
    params = (tmp_path / "rep" / "params.yaml").read_text(encoding="utf-8")
    committed = yaml.safe_load(params)
    seeds, epochs = ", ".join(map(str, committed["seed"])), committed["circle"]["train"]["epochs"]
    assert f"\nseed: [{seeds}]\n" in params and f"    epochs: {epochs} " in params
    params = params.replace(f"\nseed: [{seeds}]\n", "\nseed: [0]\n")
    (tmp_path / "rep" / "params.yaml").write_text(
        params.replace(f"    epochs: {epochs} ", "    epochs: 5 ", 1)
    )
    grid = ", ".join(map(str, sorted(set(pd.read_csv(ref / "results.csv")["seed"]))))
    per_k = pd.read_csv(ref / "results.csv").groupby(["dataset", "k"]).size()

    def one_seed(frame):
        frame = frame[frame["seed"] == 0].copy()
        frame.loc[0, "supervised_loss"] = frame.loc[0, "bao_upper"] + 1.0  # circle K=1 seed 0
        frame.loc[0, "holds"] = False
        return frame

    edit_tables(rep, one_seed)
    rc, out, _ = run_cli(["compare", str(rep), str(ref)])
    assert rc == 1
    lines = out.splitlines()
    assert lines[2].startswith("DESIGN DIFFERS: the two sides are not the same experiment")
    assert (
        lines[3]
        == f"  params differ (2 keys): circle.train.epochs 5 against {epochs}; seed [0] against [{seeds}]"
    )
    assert lines[4] == f"  grid differs: seed 0 against {grid}"
    n_circle, n_digits = per_k["circle"].iloc[0], per_k["digits"].iloc[0]
    assert lines[5].startswith(
        f"  seeds per (dataset, K) differ: circle 1 against {n_circle}; digits 1 against {n_digits}"
    )
    summary = lines[-1]
    heads_ref, per_ref = oracle(ref)
    heads_rep, per_rep = oracle(rep)
    changed = [
        n
        for n in sorted(heads_ref)
        if heads_ref[n] != heads_rep.get(n) and "fragile" not in (heads_ref[n], heads_rep.get(n))
    ]
    assert summary.startswith(
        "design differs: params (2 keys), grid (seed), seeds per (dataset, K); verdict changed: "
    )
    for n in changed:  # each claim whose verdict the report's own code changes is named
        assert f"Claim {n} {heads_ref[n]} -> {heads_rep[n]} (" in summary, (n, summary)
    assert f"{len(hard_flips(per_rep, per_ref))} per-dataset verdicts flipped" in summary
    was = per_ref[(3, "circle", "R_mu")]
    if was == "fragile":  # the reference's own label: listed as expected to move
        assert "  Claim 3 circle R_mu fragile -> inconclusive" in out
    else:
        assert (
            f"  Claim 3, circle, R_mu: FLIPPED {was} -> inconclusive "
            "(reproduced: 1 seed with every K, fewer than 3: no interval from one seed); from "
            "the design\n" in out
        )
    rc, out, _ = run_cli(["compare", str(rep), str(ref), "--json"])
    result = json.loads(out)
    flipped = [v for v in result["per_dataset_verdicts"] if v["changed"]]
    assert flipped and all(
        f["reproduced"] == "inconclusive" and f["cause"] == "design" for f in flipped
    )
    assert {f["reason_reproduced"] for f in flipped} == {
        "1 seed with every K, fewer than 3: no interval from one seed"
    }
    causes = {v["claim"]: v.get("cause") for v in result["verdicts"] if v["changed"]}
    # the violated run is in both sides' tables: a change in the numbers; the trend claims
    # turn inconclusive for want of seeds: from the design
    assert causes[1] == "numbers"
    assert {n: c for n, c in causes.items() if n in (3, 5)} == {
        n: "design" for n in (3, 5) if n in changed
    }


def test_other_report_thresholds_alone_are_a_design_difference(tmp_path):
    """The same tables judged with report.min_seeds one more than the run's seeds on one side:
    every trend verdict is inconclusive there, and each change is marked as following from the
    params."""
    ref = copy_reports(tmp_path / "ref")
    rep = copy_reports(tmp_path / "rep")
    more = pd.read_csv(ref / "results.csv")["seed"].nunique() + 1
    params = (tmp_path / "rep" / "params.yaml").read_text(encoding="utf-8")
    assert "  min_seeds: 3 " in params
    (tmp_path / "rep" / "params.yaml").write_text(
        params.replace("  min_seeds: 3 ", f"  min_seeds: {more} ")
    )
    rc, out, _ = run_cli(["compare", str(rep), str(ref), "--json"])
    result = json.loads(out)
    assert rc == 1 and result["design"]["params"] == [
        {"key": "report.min_seeds", "reproduced": more, "reference": 3}
    ]
    assert result["design"]["grid"] == result["design"]["seeds"] == []
    flips = [v for v in result["per_dataset_verdicts"] if v["changed"]]
    assert flips and {f["cause"] for f in flips} == {"design"}
    assert result["summary"].startswith("design differs: params (1 keys); verdict changed: Claim 3")


def test_a_params_section_on_one_side_only_is_one_difference(tmp_path):
    import yaml

    ref = copy_reports(tmp_path / "ref")
    rep = copy_reports(tmp_path / "rep")
    params = yaml.safe_load((tmp_path / "rep" / "params.yaml").read_text(encoding="utf-8"))
    del params["digits"]
    (tmp_path / "rep" / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    rc, out, _ = run_cli(["compare", str(rep), str(ref)])
    assert rc == 1
    assert "  params differ (1 keys): digits absent against (a section)\n" in out
    assert out.rstrip().split("\n")[-1].startswith("design differs: params (1 keys); no verdict")


def test_runs_in_one_side_only_are_listed_and_exit_1(tmp_path):
    ref = copy_reports(tmp_path / "ref")
    rep = copy_reports(tmp_path / "rep")
    frame = pd.read_csv(rep / "results.csv")
    frame.iloc[1:].to_csv(rep / "results.csv", index=False, float_format="%.10g")
    rc, out, _ = run_cli(["compare", str(rep / "results.csv"), str(ref / "results.csv")])
    assert rc == 1
    assert "runs only in the reference: circle K=1 seed 0" in out
    assert out.rstrip().endswith("0 runs only in the reproduced, 1 only in the reference")


def test_a_bound_defined_on_one_side_only_is_outside_tolerance(tmp_path):
    ref = copy_reports(tmp_path / "ref")
    rep = copy_reports(tmp_path / "rep")
    frame = pd.read_csv(rep / "results.csv")
    assert np.isnan(frame.loc[0, "arora"])  # circle K=1: undefined (K + 1 < C)
    frame.loc[0, "arora"] = 5.0
    frame.to_csv(rep / "results.csv", index=False, float_format="%.10g")
    rc, out, _ = run_cli(["compare", str(rep), str(ref), "--json"])
    result = json.loads(out)  # strict JSON: no Infinity
    (arora,) = [c for c in result["columns"] if c["column"] == "arora"]
    assert rc == 1 and arora["max_abs"] is None and arora["outside"] == 1
    assert arora["row"] == "circle K=1 seed 0"
    assert result["summary"].endswith("outside tolerance: arora (1 rows)")


def test_every_numeric_column_has_a_tolerance():
    numeric = [c for c in RESULT_COLUMNS if COLUMNS[c].type in ("finite", "number", "number?")]
    assert list(tolerances()) == numeric


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def compare_ref_head(repo: Path, text: bool = True) -> subprocess.CompletedProcess:
    """`surrogap compare --ref HEAD` in the new git repository `repo`: the committed reports
    are the reference, the working tree's lower every linear_acc by 0.02."""
    reports = copy_reports(repo)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "reference")
    edit_tables(reports, lambda f: f.__setitem__("linear_acc", f["linear_acc"] - 0.02))
    return subprocess.run(
        [sys.executable, "-m", "surrogap.cli", "compare", "--ref", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=text,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


def test_ref_head_reads_the_committed_reports(tmp_path):
    done = compare_ref_head(tmp_path / "repo")
    assert done.returncode == 1, done.stderr
    assert "reproduced reports against reference HEAD:reports/" in done.stdout
    last = done.stdout.rstrip().split("\n")[-1]
    # every linear-probe accuracy 0.02 lower: the flips the report's own code finds, named
    heads_now, per_now = oracle(tmp_path / "repo" / "reports")
    committed = tmp_path / "committed"
    committed.mkdir()
    shutil.copytree(ROOT / "reports", committed / "reports", dirs_exist_ok=True)
    shutil.copy(ROOT / "params.yaml", committed / "params.yaml")
    heads_ref, per_ref = oracle(committed / "reports")
    n = len(hard_flips(per_now, per_ref))
    if heads_now != heads_ref:
        head = "verdict changed"
    else:
        head = "no claim verdict changed" if n else "no verdict changed"
    assert last.startswith(head) and (f"{n} per-dataset verdicts flipped" in last or n == 0)
    rows = len(pd.read_csv(ROOT / "reports" / "results.csv"))
    assert f"linear_acc ({rows} rows)" in last and "outside tolerance" in last


def test_ref_outside_git_or_without_reports_is_one_line(tmp_path, monkeypatch):
    ref = copy_reports(tmp_path / "plain")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(tmp_path / "plain")  # no git repository here
    rc, out, err = run_cli(["compare", "--ref", "HEAD", str(ref)])
    assert (rc, out) == (2, "") and err.count("\n") == 1
    assert "--ref HEAD: " in err and "is not inside a git repository" in err
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README").write_text("no reports here\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "none")
    monkeypatch.chdir(repo)
    rc, out, err = run_cli(["compare", "--ref", "HEAD", str(ref)])
    assert (rc, out) == (2, "") and err.count("\n") == 1
    assert "--ref HEAD: the revision has no reports/results.csv" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare"], "give REPRODUCED and REFERENCE"),
        (["compare", "{tmp}/nowhere.csv", "{ref}"], "nowhere.csv' does not exist"),
        (["compare", "{tmp}", "{ref}"], "holds no results.csv"),
        (["compare", "--ref", "no-such-revision-xyz", "{ref}"], "unknown revision"),
        (["compare", "{extra}", "{ref}"], "the two tables' columns differ: extra only in"),
        (["compare", "{lacking}", "{ref}"], "lacks the columns supervised_loss"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, argv, message):
    ref = copy_reports(tmp_path / "ref")
    frame = pd.read_csv(ref / "results.csv")
    frame.assign(extra=1.0).to_csv(tmp_path / "extra.csv", index=False)
    frame.drop(columns="supervised_loss").to_csv(tmp_path / "lacking.csv", index=False)
    names = {"tmp": tmp_path, "ref": ref, "extra": tmp_path / "extra.csv"}
    names["lacking"] = tmp_path / "lacking.csv"
    monkeypatch.chdir(ROOT)
    rc, out, err = run_cli([a.format(**names) for a in argv])
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err
    assert err.startswith("surrogap")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "is not a readable CSV: No columns to parse from file"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00garbage\n"), "is not a readable CSV"),
        (lambda p: os.mkfifo(p), "is a FIFO, not a regular file; a side"),
        (lambda p: p.symlink_to("/dev/zero"), "is a character device, not a regular file"),
    ],
    ids=["empty", "binary", "fifo", "dev-zero"],
)
def test_an_empty_binary_or_special_file_is_one_line_and_exit_2(tmp_path, make, message):
    ref = copy_reports(tmp_path / "ref")
    bad = tmp_path / "bad.csv"
    make(bad)
    for argv in (["compare", str(bad), str(ref)], ["compare", str(ref), str(bad)]):
        rc, out, err = run_cli(argv)
        assert (rc, out) == (2, ""), err
        assert err.count("\n") == 1 and message in err and "bad.csv" in err, err
    if message.startswith("is a"):  # a folder whose results.csv is the special file
        folder = tmp_path / "side"
        folder.mkdir()
        (folder / "results.csv").symlink_to(bad)
        rc, out, err = run_cli(["compare", str(folder), str(ref)])
        assert (rc, out) == (2, "") and err.count("\n") == 1 and message[:-20] in err, err


def test_ref_head_in_a_project_path_that_is_not_utf8(tmp_path):
    """git names the top folder in bytes; the path's bytes are kept as the OS gives them."""
    done = compare_ref_head(Path(os.fsdecode(bytes(tmp_path) + b"/proj\xff")), text=False)
    assert done.returncode == 1, done.stderr
    assert b"reproduced reports against reference HEAD:reports/" in done.stdout
    rows = len(pd.read_csv(ROOT / "reports" / "results.csv"))
    assert f"linear_acc ({rows} rows)".encode() in done.stdout and done.stderr == b""


def test_scaling_md_tolerance_table_is_the_codes():
    text = (ROOT / "docs" / "SCALING.md").read_text(encoding="utf-8")
    start = text.index("## Reproducing: what is bit-identical and what is compared with tolerances")
    section = text[start : text.index("\n## ", start + 1)]
    rows = re.findall(r"^\| (`.+?`) \| ([\d.e-]+) \| ([\d.e-]+) \|", section, re.MULTILINE)
    documented = {
        name: (float(atol), float(rtol))
        for cell, atol, rtol in rows
        for name in re.findall(r"`(\w+)`", cell)
    }
    assert documented == {c: (t.atol, t.rtol) for c, t in tolerances().items()}
    assert "surrogap compare --ref HEAD" in section
