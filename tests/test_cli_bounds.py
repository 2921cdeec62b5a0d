"""Tests of the calculator `surrogap bounds` (surrogap.cli) against surrogap.theory.bounds."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from surrogap.cli import main
from surrogap.core.schema import BOUND_COLUMNS
from surrogap.theory import bounds as B
from surrogap.theory import records

SRC = Path(B.__file__).resolve().parents[1]

RECORD_KEYS = {
    "k",
    "classes",
    "b",
    "loss",
    "below_ideal",
    "optimal_contrastive_loss",
    *BOUND_COLUMNS,
    "why_null",
}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(out: str) -> list[list[str]]:
    """The data rows of the printed table (after the header and the dashes)."""
    lines = out.strip().splitlines()
    dash = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"})
    return [line.split() for line in lines[dash + 1 :]]


def same(got, want):
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None
    return got == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("ks", [["1"], ["1", "5", "9", "10", "64"]])
def test_table_one_row_per_k_undefined_where_undefined(capsys, ks):
    code, out, err = run(capsys, "bounds", "--k", *ks, "--classes", "10", "--loss", "3.0")
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0].startswith("C = 10")
    header = lines[1].split()
    assert header == ["k", "loss", *BOUND_COLUMNS]
    rows = table_rows(out)
    assert [r[0] for r in rows] == ks
    for row in rows:
        k = int(row[0])
        cells = dict(zip(header, row, strict=True))
        for name in ("arora", "nozawa_sato"):
            assert (cells[name] == "undefined") == (k + 1 < 10), (k, name)
        assert cells["ash"] != "undefined"
        assert float(cells["upper_gap"]) == pytest.approx(B.upper_gap(k, 10), rel=1e-5)
        assert float(cells["bao_upper"]) == pytest.approx(3.0 + B.upper_gap(k, 10), rel=1e-5)
        if k + 1 >= 10:
            assert float(cells["arora"]) == pytest.approx(B.arora_bound(3.0, k, 10), rel=1e-5)


@pytest.mark.parametrize(
    ("ks", "classes", "losses"),
    [
        ([1, 2, 3, 4, 9, 10, 100], 10, [3.5]),
        ([1, 4, 16], 3, [0.5, 1.5, 2.5]),
        ([1, 64, 1024], 100, [5.5]),
        ([1, 2], 2, [1.0, 7.0]),
    ],
)
def test_json_records_equal_library(capsys, ks, classes, losses):
    argv = [
        "bounds",
        "--k",
        *map(str, ks),
        "--classes",
        str(classes),
        "--loss",
        *map(str, losses),
        "--json",
    ]
    code, out, err = run(capsys, *argv)
    assert code == 0 and err == ""
    records = json.loads(out)
    assert len(records) == len(ks)
    karr = np.array(ks)
    loss = np.broadcast_to(np.array(losses, dtype=float), karr.shape)
    want = {
        "lower_gap": B.lower_gap(karr, classes),
        "upper_gap": B.upper_gap(karr, classes),
        "bao_lower": B.bao_lower_bound(loss, karr, classes),
        "bao_upper": B.bao_upper_bound(loss, karr, classes),
        "arora": B.arora_bound(loss, karr, classes),
        "nozawa_sato": B.nozawa_sato_bound(loss, karr, classes),
        "ash": B.ash_bound(loss, karr, classes),
    }
    for i, rec in enumerate(records):
        assert set(rec) == RECORD_KEYS
        assert rec["k"] == ks[i] and rec["classes"] == classes and rec["b"] == 1.0
        assert rec["loss"] == loss[i]
        assert rec["below_ideal"] is False  # every loss here is reachable
        assert same(rec["optimal_contrastive_loss"], B.optimal_contrastive_loss(ks[i], classes))
        for name, values in want.items():
            assert same(rec[name], float(values[i])), (name, ks[i])
        assert (rec["arora"] is None) == (ks[i] + 1 < classes)
        assert (rec["nozawa_sato"] is None) == (ks[i] + 1 < classes)
        undefined = {"arora": "undefined", "nozawa_sato": "undefined"}
        assert rec["why_null"] == (undefined if ks[i] + 1 < classes else {})


def test_json_null_where_undefined_is_valid_json(capsys):
    code, out, _ = run(capsys, "bounds", "--k", "1", "--classes", "50", "--loss", "2", "--json")
    assert code == 0
    assert '"arora": null' in out and "NaN" not in out
    assert json.loads(out)[0]["nozawa_sato"] is None


def test_json_with_prior_and_b(capsys):
    prior = [0.5, 0.3, 0.2]
    code, out, _ = run(
        capsys,
        "bounds",
        "--k",
        "1",
        "8",
        "--prior",
        "0.5,0.3,0.2",
        "--loss",
        "1.2",
        "--b",
        "0.7",
        "--json",
    )
    assert code == 0
    records = json.loads(out)
    for rec, k in zip(records, (1, 8), strict=True):
        assert set(rec) == RECORD_KEYS and rec["classes"] == 3 and rec["b"] == 0.7
        assert same(rec["lower_gap"], B.lower_gap(k, prior=prior, b=0.7))
        assert same(rec["upper_gap"], B.upper_gap(k, prior=prior, b=0.7))
        assert same(rec["bao_upper"], B.bao_upper_bound(1.2, k, prior=prior, b=0.7))
        # the earlier bounds assume a uniform prior: not given for a skewed one
        assert rec["arora"] is None and rec["nozawa_sato"] is None and rec["ash"] is None
        # nor R_cont* (uniform prior only), so nothing says whether the loss is reachable
        assert rec["below_ideal"] is None and rec["optimal_contrastive_loss"] is None
        assert rec["why_null"] == dict.fromkeys(
            ("arora", "nozawa_sato", "ash", "below_ideal", "optimal_contrastive_loss"),
            "uniform prior only",
        )


def test_uniform_prior_equals_classes(capsys):
    _, by_classes, _ = run(
        capsys, "bounds", "--k", "3", "7", "--classes", "4", "--loss", "2", "--json"
    )
    _, by_prior, _ = run(
        capsys, "bounds", "--k", "3", "7", "--prior", "0.25,0.25,0.25,0.25", "--loss", "2", "--json"
    )
    assert json.loads(by_classes) == json.loads(by_prior)


def test_without_loss_prints_gaps_and_ideal_values(capsys):
    ks = [1, 5, 99]
    code, out, err = run(capsys, "bounds", "--k", *map(str, ks), "--classes", "100")
    assert code == 0 and err == ""
    header = out.strip().splitlines()[1].split()
    assert header == [
        "k",
        "lower_gap",
        "upper_gap",
        "optimal_contrastive_loss",
        "optimal_supervised_loss",
    ]
    rows = table_rows(out)
    assert [int(r[0]) for r in rows] == ks
    for row, k in zip(rows, ks, strict=True):
        assert float(row[1]) == pytest.approx(B.lower_gap(k, 100), rel=1e-5)
        assert float(row[2]) == pytest.approx(B.upper_gap(k, 100), rel=1e-5)
        assert float(row[3]) == pytest.approx(B.optimal_contrastive_loss(k, 100), rel=1e-5)
        assert float(row[4]) == pytest.approx(B.optimal_supervised_loss(100), rel=1e-5)

    code, out, _ = run(capsys, "bounds", "--k", *map(str, ks), "--classes", "100", "--json")
    assert code == 0
    for rec, k in zip(json.loads(out), ks, strict=True):
        assert same(rec["lower_gap"], B.lower_gap(k, 100))
        assert same(rec["upper_gap"], B.upper_gap(k, 100))
        assert same(rec["optimal_contrastive_loss"], B.optimal_contrastive_loss(k, 100))
        assert same(rec["optimal_supervised_loss"], B.optimal_supervised_loss(100))


def test_without_loss_skewed_prior_ideal_values_undefined(capsys):
    code, out, _ = run(capsys, "bounds", "--k", "2", "--prior", "0.7,0.3")
    assert code == 0
    assert table_rows(out)[0][3:] == ["n/a", "n/a"]  # the ideal values assume a uniform prior


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--k", "0", "--classes", "3"], "'0'"),
        (["--k", "2.5", "--classes", "3"], "'2.5'"),
        (["--k", "1", "--classes", "1"], "got '1'"),
        (["--k", "1", "--prior", "0.5,0.6"], "1.1"),
        (["--k", "1", "--classes", "3", "--b", "0"], "got 0.0"),
        (["--k", "1", "--classes", "3", "--prior", "0.5,0.5"], "num_classes is 3"),
        (
            ["--k", "1", "--classes", "2", "--prior", "0.2,0.3,0.5", "--loss", "1"],
            "num_classes is 2",
        ),
        (["--k", "1", "--classes", "3", "--prior=-0.5,0.5,1.0"], "-0.5"),
        (["--k", "1", "--classes", "3", "--b", "nan"], "'nan'"),
        (["--k", "1", "--classes", "3", "--loss", "1", "2"], "got 2"),
        (["--k", "1"], "--classes"),
        (["--k", "1", "--classes", "three"], "'three'"),
        (["--k", "1", "--classes", "3", "--prior", "a,b"], "'a,b'"),
        (["--classes", "3"], "--k"),
        # inexact or out-of-range exponent forms of k and classes
        (["--k", "1.5", "--classes", "10"], "k must be an integer in 1..1e12, got '1.5'"),
        (["--k", "1e-3", "--classes", "10"], "k must be an integer in 1..1e12, got '1e-3'"),
        (["--k", "1e13", "--classes", "10"], "k must be an integer in 1..1e12, got '1e13'"),
        (["--k", "1e999999999", "--classes", "10"], "got '1e999999999'"),
        (["--k", "inf", "--classes", "10"], "got 'inf'"),
        (["--k", "5", "--classes", "2.5e0"], "classes must be an integer in 2..1e9, got '2.5e0'"),
        (["--k", "5", "--classes", "1e10"], "classes must be an integer in 2..1e9, got '1e10'"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, argv, named):
    code, out, err = run(capsys, "bounds", *argv)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert named in lines[0]
    assert lines[0].startswith("surrogap")


def test_console_script_runs():
    exe = shutil.which("surrogap") or str(Path(sys.executable).with_name("surrogap"))
    assert Path(exe).exists(), "the surrogap console script is not installed"
    done = subprocess.run(
        [exe, "bounds", "--k", "1", "9", "--classes", "10", "--loss", "2.0", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert [r["k"] for r in records] == [1, 9]
    assert records[0]["arora"] is None
    assert records[1]["arora"] == pytest.approx(B.arora_bound(2.0, 9, 10), rel=1e-12)

    bad = subprocess.run(
        [exe, "bounds", "--k", "0", "--classes", "10"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (
        bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "Traceback" not in bad.stderr
    )


def test_negative_prior_without_equals_names_the_value(capsys):
    code, _, err = run(capsys, "bounds", "--k", "1", "--prior", "-0.5,0.5,1.0")
    assert code == 2
    assert "-0.5" in err


# --------------------------------------------------------------------------- sizes, overflow, pipes
def run_module(*argv, stdin_cmd: str | None = None) -> subprocess.CompletedProcess:
    """The calculator as a user runs it, in a fresh interpreter with warnings shown."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-W", "default", "-m", "surrogap.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def strict_json(text: str):
    """json.loads that refuses NaN / Infinity tokens (not JSON)."""

    def refuse(token):
        raise AssertionError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--k", "1" * 31, "--classes", "10"], "1" * 31),
        (["--k", str(10**12 + 1), "--classes", "10"], str(10**12 + 1)),
        (["--k", "5", "--classes", "1" * 31], "1" * 31),
        (["--k", "5", "--classes", str(10**9 + 1), "--loss", "2.3"], str(10**9 + 1)),
        (["--k", "5", "--classes", "10", "--loss", "-5"], "'-5'"),
        (["--k", "5", "--classes", "10", "--loss", "2", "-0.1"], "'-0.1'"),
    ],
)
def test_sizes_and_negative_loss_refused_in_one_line(capsys, argv, named):
    code, out, err = run(capsys, "bounds", *argv)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert named in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--k", "1000000000", "--classes", "10", "--loss", "2.3"],
        ["--k", "1000000000000", "--classes", "10", "--loss", "2.3"],
        ["--k", "1", "20000000000", "1000000000000", "--classes", "1000000000", "--loss", "2.3"],
        ["--k", "5", "50000", "200000", "--classes", "10000000", "--loss", "2.3"],
        ["--k", "1000000000000", "--classes", "2"],
    ],
)
def test_largest_sizes_answer_and_equal_the_library(capsys, argv):
    # 2.3 lies below R_cont* at the large K: the flag prints the bounds anyway
    code, out, err = run(capsys, "bounds", *argv, "--json", "--allow-below-ideal")
    assert code == 0 and err == ""
    ks = [int(x) for x in argv[argv.index("--k") + 1 : argv.index("--classes")]]
    c = int(argv[argv.index("--classes") + 1])
    for rec, k in zip(strict_json(out), ks, strict=True):
        assert same(rec["upper_gap"], B.upper_gap(k, c))
        if "--loss" in argv:
            for name, fn in (("arora", B.arora_bound), ("ash", B.ash_bound)):
                want = fn(2.3, k, c)
                if math.isfinite(want):
                    assert same(rec[name], want)
                else:
                    assert rec[name] is None and name in rec["why_null"]


def test_huge_b_json_is_valid_and_says_overflow(capsys):
    code, out, err = run(
        capsys,
        "bounds",
        "--k",
        "1",
        "10",
        "--classes",
        "10",
        "--loss",
        "2.3",
        "--b",
        "1e154",
        "--json",
    )
    assert code == 0 and err == ""
    assert "Infinity" not in out and "NaN" not in out
    first, second = strict_json(out)
    assert first["upper_gap"] is None and first["why_null"]["upper_gap"] == "inf"
    assert first["why_null"]["lower_gap"] == "-inf" and first["why_null"]["bao_lower"] == "-inf"
    assert first["why_null"]["arora"] == "undefined"  # K + 1 < C: a different answer
    assert "arora" not in second["why_null"] and second["arora"] == pytest.approx(
        B.arora_bound(2.3, 10, 10), rel=1e-12
    )


def test_table_says_inf_where_a_bound_overflowed_and_undefined_where_undefined(capsys):
    code, out, _ = run(capsys, "bounds", "--k", "10000", "5", "--classes", "10", "--loss", "12")
    assert code == 0
    header = out.strip().splitlines()[1].split()
    big, small = (dict(zip(header, row, strict=True)) for row in table_rows(out))
    assert big["arora"] == "inf" and big["ash"] == "inf" and big["nozawa_sato"] != "inf"
    assert small["arora"] == "undefined" and small["nozawa_sato"] == "undefined"
    code, out, err = run(capsys, "bounds", "--k", "3", "--classes", "10", "--b", "1e200")
    assert code == 0 and err == "" and "Traceback" not in out
    row = dict(zip(out.strip().splitlines()[1].split(), table_rows(out)[0], strict=True))
    assert row["lower_gap"] == "-inf" and row["upper_gap"] == "inf"


def test_huge_loss_and_huge_b_print_no_warning():
    for argv in (
        ["bounds", "--k", "1", "9", "100", "--classes", "10", "--loss", "1e308"],
        ["bounds", "--k", "1", "9", "--classes", "10", "--loss", "1e308", "--json"],
        ["bounds", "--k", "3", "--classes", "10", "--b", "1e200", "--loss", "2"],
    ):
        done = run_module(*argv)
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr


def test_closed_pipe_ends_quietly():
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    ks = " ".join(str(k) for k in range(1, 3001))
    done = subprocess.run(
        [
            "bash",
            "-c",
            f"{sys.executable} -m surrogap.cli bounds --k {ks} --classes 10 --loss 20 | head -3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.stdout.splitlines()[0] == "C = 10, b = 1"
    assert len(done.stdout.splitlines()) == 3
    assert done.stderr == ""


def test_internal_error_is_not_disguised_as_a_user_error(monkeypatch):
    # cli.main turns UserError into one line; any other exception is a bug: its traceback shows
    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(records, "bounds_records", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["bounds", "--k", "3", "--classes", "10"])


# --------------------------------------------------------------------------- a loss no encoder reaches
@pytest.mark.parametrize(
    ("argv", "k", "classes", "loss"),
    [
        (["--k", "1000000000000", "--classes", "1000000000", "--loss", "3"], 10**12, 10**9, 3.0),
        (["--k", "1", "4", "64", "--classes", "10", "--loss", "2.3"], 64, 10, 2.3),
        (["--k", "4", "--classes", "10", "--loss", "1", "--b", "0.5"], 4, 10, 1.0),
    ],
)
def test_loss_below_the_ideal_loss_is_refused_in_one_line(capsys, argv, k, classes, loss):
    # R_cont*(K, C, b) is the lowest contrastive loss of any encoder with norm <= b
    # (docs/THEORY.md, section 4): below it the bounds describe no encoder (bao_upper was
    # -3.04 and Arora -inf for the first case)
    b = float(argv[argv.index("--b") + 1]) if "--b" in argv else 1.0
    ideal = float(B.optimal_contrastive_loss(k, classes, b))
    assert loss < ideal
    for extra in ([], ["--json"]):
        code, out, err = run(capsys, "bounds", *argv, *extra)
        assert code == 2 and out == ""
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert f"loss {loss:g} at K = {k} is below R_cont* = {ideal:.6g}" in err
        assert "--allow-below-ideal" in err


def test_allow_below_ideal_prints_the_rows_marked(capsys):
    argv = ["bounds", "--k", "1", "4", "64", "--classes", "10", "--loss", "2.3"]
    code, out, err = run(capsys, *argv, "--allow-below-ideal")
    assert code == 0 and err == ""
    header = out.splitlines()[1].split()
    assert header == ["k", "loss", "below_ideal", *BOUND_COLUMNS]
    marks = {int(r[0]): r[2] for r in table_rows(out.rsplit("\n", 2)[0])}
    assert marks == {1: "False", 4: "False", 64: "True"}
    ideal = float(B.optimal_contrastive_loss(64, 10))
    assert f"R_cont*(K, C, b) = {ideal:.6g} (K = 64)" in out.splitlines()[-1]
    code, out, _ = run(capsys, *argv, "--allow-below-ideal", "--json")
    recs = json.loads(out)
    assert [r["below_ideal"] for r in recs] == [False, False, True]
    assert same(recs[2]["optimal_contrastive_loss"], ideal)
    assert same(recs[2]["bao_upper"], B.bao_upper_bound(2.3, 64, 10))


def test_a_loss_at_the_ideal_loss_is_reachable(capsys):
    ideal = float(B.optimal_contrastive_loss(64, 10))
    code, out, err = run(capsys, "bounds", "--k", "64", "--classes", "10", "--loss", repr(ideal))
    assert code == 0 and err == "" and "below_ideal" not in out
    low = repr(ideal * (1 - 1e-6))
    code, out, err = run(capsys, "bounds", "--k", "64", "--classes", "10", "--loss", low)
    assert code == 2 and out == "" and "K = 64" in err


def test_records_refuse_a_loss_below_the_ideal_loss_unless_allowed():
    with pytest.raises(ValueError, match=r"loss 2.3 at K = 64 is below R_cont\* = 2.71169"):
        records.bounds_records([1, 64], 10, [2.3])
    recs = records.bounds_records([1, 64], 10, [2.3], allow_below_ideal=True)
    assert [r["below_ideal"] for r in recs] == [False, True]


# --------------------------------------------------------------------------- K and C in exponent form
def test_k_and_classes_take_exact_exponent_forms(capsys):
    code, out, err = run(
        capsys,
        "bounds",
        "--k",
        "1e3",
        "2.5e3",
        "1E12",
        "--classes",
        "1e1",
        "--loss",
        "30",
        "--json",
    )
    assert code == 0 and err == ""
    recs = json.loads(out)
    assert [r["k"] for r in recs] == [1000, 2500, 10**12]
    assert {r["classes"] for r in recs} == {10}
    assert same(recs[1]["upper_gap"], B.upper_gap(2500, 10))
