"""The report trusts nothing it reads (docs/FAULTS.md, "Files between stages checked against
their neighbours"): each row of the results table agrees with its run, every run has its
trajectory as a regular file with plausible values, the external table holds numbers in
their ranges and names that are escaped in the Markdown, and each refusal names the stage
that writes the file. Each test runs the real stage script (stages/report.py) on the
synthetic run of test_report.py."""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import one_line
from test_report import KS, STAGE, argv, external_table, write_run

from surrogap.core.schema import run_dir, run_name

AGAIN_BOUNDS = "rerun the bounds stage"


def _with_runs(paths: dict[str, Path]) -> pd.DataFrame:
    """results.csv as the bounds stage writes it: with its lr and run columns."""
    frame = pd.read_csv(paths["results"])
    frame["lr"] = math.nan
    frame["run"] = [run_name(int(k), int(s)) for k, s in zip(frame["k"], frame["seed"])]
    frame.to_csv(paths["results"], index=False, float_format="%.10g")
    return frame


def _refused(capsys, paths: dict[str, Path]) -> str:
    """The report must exit 2 with one stderr line and leave no report: that line."""
    capsys.readouterr()
    assert STAGE.main(argv(paths)) == 2
    assert not paths["out"].exists() and not paths["figures"].exists()
    return one_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- a valid run
@pytest.mark.filterwarnings("error")
def test_a_valid_run_with_a_hostile_external_name_reports_escaped_and_warns_nothing(tmp_path):
    """The baseline of every refusal below (a table with its run column reads), with no
    warning let through, and a name of the external table escaped in report.md."""
    paths = write_run(tmp_path, fail=False)
    _with_runs(paths)
    ext = external_table()
    ext["dataset"] = "<script>alert(1)</script>|x`y`\nz"
    ext.to_csv(paths["external"], index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert STAGE.main(argv(paths)) == 0
    md = paths["out"].read_text()
    assert "<script>" not in md and "|x`" not in md
    assert "### &lt;script&gt;alert(1)&lt;/script&gt;\\|x\\`y\\` z (C = 5)" in md
    assert "![surrogate gap, &lt;script&gt;alert(1)&lt;/script&gt;\\|x\\`y\\` z](" in md


@pytest.mark.filterwarnings("error")
def test_no_seed_with_every_k_reports_without_a_numpy_warning(tmp_path, capsys):
    """Seed s run at K = KS[s] only: no seed has every K (the trend claims have no
    replicate); numpy's "Mean of empty slice" used to leak out of the report."""
    paths = write_run(tmp_path, fail=False)
    frame = _with_runs(paths)
    keep = [KS.index(k) == s for k, s in zip(frame["k"], frame["seed"])]
    frame[keep].to_csv(paths["results"], index=False, float_format="%.10g")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert STAGE.main(argv(paths)) == 0, capsys.readouterr().err
    assert "0 seeds with every K" in paths["out"].read_text()


# --------------------------------------------------------------------------- results table
@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("seed", 5, "column 'seed': 5, allowed: 0, the seed of its run k1-s0"),
        ("k", 4, "column 'k': 4, allowed: 1, the k of its run k1-s0"),
        ("lr", 0.03, "column 'lr': 0.03, allowed: empty, the lr of its run k1-s0"),
        ("run", "k1-s0-lr../../x", "column 'run': 'k1-s0-lr../../x', allowed: a run name like"),
        ("run", "s0", "column 'run': 's0', allowed: a run name like k4-s0 or k4-s0-lr0.03"),
        ("dataset", "../x", "column 'dataset': '../x', allowed: a dataset name as params.yaml"),
        ("kind", "<b>", "column 'kind': '<b>', allowed: a kind name as params.yaml writes it"),
        ("mean_acc", 1.5, "column 'mean_acc': 1.5, allowed: a number in [0, 1]"),
        ("supervised_loss", -0.5, "column 'supervised_loss': -0.5, allowed: a number >= 0"),
        ("classes", 1, "column 'classes': 1, allowed: an integer >= 2"),
        ("holds", False, "column 'holds': False, allowed: True (bao_lower "),
        # a gap or a Bao bound is finite for a finite loss: inf used to pass (a matplotlib
        # traceback for the gaps, a report written for bao_upper)
        ("upper_gap", math.inf, "column 'upper_gap': inf, allowed: a finite number"),
        ("lower_gap", -math.inf, "column 'lower_gap': -inf, allowed: a finite number"),
        ("bao_upper", math.inf, "column 'bao_upper': inf, allowed: a finite number"),
    ],
)
def test_a_results_row_disagreeing_with_its_run_or_its_ranges_is_refused(
    tmp_path, capsys, column, value, says
):
    """A row edited to another seed used to borrow the trajectory of the run its `run`
    column names (report.md said "Seeds: 0, 1" and cited seed 5 with seed 0's data)."""
    paths = write_run(tmp_path, fail=False)
    frame = _with_runs(paths)
    frame[column] = frame[column].astype(object)
    frame.loc[0, column] = value
    frame.to_csv(paths["results"], index=False, float_format="%.10g")
    msg = _refused(capsys, paths)
    assert msg.startswith(f"stage report: results file {str(paths['results'])!r} row 1, "), msg
    assert says in msg and msg.endswith(AGAIN_BOUNDS), msg


@pytest.mark.parametrize("content", ["", "header"])
def test_an_empty_selected_csv_names_the_select_lr_stage(tmp_path, capsys, content):
    paths = write_run(tmp_path, fail=False)
    selected = paths["results"].with_name("selected.csv")
    header = paths["results"].read_text().splitlines()[0] + "\n"
    selected.write_text(header if content else "")
    paths["results"] = selected
    msg = _refused(capsys, paths)
    assert msg.startswith(f"stage report: results file {str(selected)!r} "), msg
    assert msg.endswith("; rerun the select_lr stage"), msg


# --------------------------------------------------------------------------- trajectories
def _trajectory(paths: dict[str, Path]) -> Path:
    return paths["pretrain"] / "topics_c20" / run_dir(4, 1) / "trajectory.csv"


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo", "device"])
def test_a_trajectory_missing_or_not_a_file_is_refused(tmp_path, capsys, kind):
    """It used to be skipped ("Runs without a trajectory file"), Claim 4 then counted the
    other runs' points only."""
    paths = write_run(tmp_path, fail=False)
    path = _trajectory(paths)
    path.unlink()
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/null")
    msg = _refused(capsys, paths)
    says = {
        "missing": f"trajectory {str(path)!r} of run topics_c20 k4/s1 does not exist; "
        "rerun the pretrain stage of this run",
        "folder": f"{str(path)!r} is a folder, not a regular file; the trajectory of run "
        "topics_c20 k4/s1 must be a regular file",
        "fifo": f"{str(path)!r} is a FIFO, not a regular file",
        "device": f"{str(path)!r} is a character device, not a regular file",
    }[kind]
    assert msg.startswith("stage report: ") and says in msg, msg


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda t: t.loc.__setitem__((2, "train_loss"), math.nan), "row 3, column 'train_loss': "
         "NaN or empty, allowed: a number >= 0 (empty at epoch 0 only)"),
        (lambda t: t.loc.__setitem__((2, "train_loss"), -1.0), "row 3, column 'train_loss': "
         "-1.0, allowed: a number >= 0"),
        (lambda t: t.loc.__setitem__((1, "lr"), -0.01), "row 2, column 'lr': -0.01, allowed: "
         "a number >= 0"),
        (lambda t: t.loc.__setitem__((1, "lr"), math.nan), "row 2, column 'lr': NaN or empty"),
        (lambda t: t.loc.__setitem__(len(t), t.iloc[-1]), "row 6 repeats epoch 4"),
    ],
)  # fmt: skip
def test_a_trajectory_with_an_implausible_value_or_a_repeated_epoch_is_refused(
    tmp_path, capsys, edit, says
):
    paths = write_run(tmp_path, fail=False)
    path = _trajectory(paths)
    traj = pd.read_csv(path)
    edit(traj)
    traj.to_csv(path, index=False)
    msg = _refused(capsys, paths)
    assert msg.startswith(f"stage report: trajectory {str(path)!r}"), msg
    assert says in msg and msg.endswith("rerun the pretrain stage of this run"), msg


def test_a_trajectory_of_many_rows_is_refused_at_once(tmp_path, capsys):
    """200,000 rows appended to a 2-epoch trajectory: the repeat scan was quadratic (a
    million rows ran for minutes); it is one pass now."""
    paths = write_run(tmp_path, fail=False)
    path = _trajectory(paths)
    traj = pd.read_csv(path)
    many = pd.concat([traj, pd.DataFrame([traj.iloc[-1]] * 200_000)], ignore_index=True)
    many.to_csv(path, index=False)
    started = time.perf_counter()
    msg = _refused(capsys, paths)
    assert "repeats epoch" in msg, msg
    assert time.perf_counter() - started < 60  # a hang guard, not a timing target


# --------------------------------------------------------------------------- external table
@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("classes", 1, "column 'classes': 1, allowed: an integer >= 2"),
        ("contrastive_loss", -0.5, "column 'contrastive_loss': -0.5, allowed: a number >= 0"),
        ("mean_acc", 1.5, "column 'mean_acc': 1.5, allowed: a number in [0, 1]"),
        ("n_train", -100, "column 'n_train': -100, allowed: an integer >= 0"),
        ("vacuity", "garbage", "column 'vacuity': 'garbage', allowed: one of no, above_log_c, "
         "vacuous"),
        ("holds", False, "column 'holds': False, allowed: True (bao_lower "),
    ],
)  # fmt: skip
def test_an_external_row_out_of_its_range_is_refused(tmp_path, capsys, column, value, says):
    paths = write_run(tmp_path, fail=False)
    ext = external_table()
    assert ext["holds"].all()  # R_mu inside the band
    ext[column] = ext[column].astype(object)
    ext.loc[0, column] = value
    ext.to_csv(paths["external"], index=False)
    msg = _refused(capsys, paths)
    assert msg.startswith(f"stage report: external table {str(paths['external'])!r} row 1, "), msg
    assert says in msg and msg.endswith("; rerun the evaluate stage"), msg
