"""Tests of surrogap.theory.curves (Fig. 3 / Fig. 4 frames) and the `theory` stage; the figures
themselves are tested in test_figures.py."""

from __future__ import annotations

import errno
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from surrogap.core import config
from surrogap.core.errors import UserError
from surrogap.pipeline import theory as P
from surrogap.theory import bounds as B
from surrogap.theory import curves as T

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "stages" / "theory.py"
OUTPUTS = {"fig3.csv", "fig3.png", "fig4.csv", "fig4.png"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_stage():
    spec = importlib.util.spec_from_file_location("stage_theory", STAGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stage():
    return load_stage()


def write_params(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(body, encoding="utf-8")
    return path


SMALL = "theory:\n  classes_fig3: [5, 12]\n  classes_fig4: 6\n  k_max: 20\n  b: 1.0\n"


# --------------------------------------------------------------------------- frames
@pytest.mark.parametrize(
    ("classes", "k_max", "b"), [((50, 100), 99, 1.0), ((3,), 7, 0.5), ((10, 2), 15, 2.0)]
)
def test_fig3_frame_equals_library(classes, k_max, b):
    df = T.fig3_frame(classes, k_max, b)
    assert list(df.columns) == [
        "classes",
        "k",
        "optimal_contrastive_loss",
        "optimal_supervised_loss",
        "upper",
        "lower_supervised",
    ]
    assert len(df) == len(classes) * k_max
    for c in classes:
        sub = df[df["classes"] == c]
        ks = np.arange(1, k_max + 1)
        np.testing.assert_array_equal(sub["k"].to_numpy(), ks)
        r_cont = B.optimal_contrastive_loss(ks, c, b)
        r_mu = B.optimal_supervised_loss(c, b)
        np.testing.assert_array_equal(sub["optimal_contrastive_loss"].to_numpy(), r_cont)
        assert (sub["optimal_supervised_loss"] == r_mu).all()
        np.testing.assert_allclose(sub["upper"], r_cont + B.upper_gap(ks, c, b=b), rtol=1e-15)
        np.testing.assert_allclose(
            sub["lower_supervised"], r_mu - B.lower_gap(ks, c, b=b), rtol=1e-15
        )
        # the ideal encoder sits inside the band: R_mu* <= upper, R_cont* <= R_mu* - Delta_L
        assert (sub["upper"] >= sub["optimal_supervised_loss"]).all()
        assert (sub["lower_supervised"] >= sub["optimal_contrastive_loss"]).all()


@pytest.mark.parametrize(("classes", "k_max", "b"), [(10, 99, 1.0), (4, 12, 0.7), (30, 40, 1.0)])
def test_fig4_frame_equals_library(classes, k_max, b):
    df = T.fig4_frame(classes, k_max, b)
    assert list(df.columns) == ["k", "bound", "coefficient", "value"]
    assert len(df) == 4 * k_max
    assert list(dict.fromkeys(df["bound"])) == ["bao", "arora", "nozawa_sato", "ash"]
    ks = np.arange(1, k_max + 1)
    r_cont = B.optimal_contrastive_loss(ks, classes, b)
    coef = B.loss_coefficients(ks, classes)
    want = {
        "bao": B.bao_upper_bound(r_cont, ks, classes, b=b),
        "arora": B.arora_bound(r_cont, ks, classes),
        "nozawa_sato": B.nozawa_sato_bound(r_cont, ks, classes),
        "ash": B.ash_bound(r_cont, ks, classes),
    }
    for name in T.BOUND_NAMES:
        sub = df[df["bound"] == name]
        np.testing.assert_array_equal(sub["k"].to_numpy(), ks)
        np.testing.assert_array_equal(sub["coefficient"].to_numpy(), coef[name])
        np.testing.assert_array_equal(sub["value"].to_numpy(), want[name])
        undefined = (
            (ks + 1 < classes) if name in ("arora", "nozawa_sato") else np.zeros(k_max, bool)
        )
        assert np.array_equal(sub["value"].isna().to_numpy(), undefined)
        assert np.array_equal(sub["coefficient"].isna().to_numpy(), undefined)
    assert (df.loc[df["bound"] == "bao", "coefficient"] == 1.0).all()
    assert df.attrs == {"classes": classes, "b": b}


def test_frames_reject_bad_input():
    with pytest.raises(ValueError, match="k_max"):
        T.fig3_frame((10,), 0)
    with pytest.raises(ValueError, match="num_classes"):
        T.fig4_frame(1, 10)
    with pytest.raises(ValueError, match="b must"):
        T.fig3_frame((10,), 5, b=0.0)


# --------------------------------------------------------------------------- params
def parse(section):
    return config.parse(P.TheoryParams, section, "theory")


def test_params_defaults_and_values():
    assert parse({}) == parse(None) == P.TheoryParams((50, 100), 10, 99, 1.0)
    p = parse({"classes_fig3": [5, 12], "classes_fig4": 6, "k_max": 20, "b": 2})
    assert p == P.TheoryParams((5, 12), 6, 20, 2.0)
    assert isinstance(p.b, float) and isinstance(p.classes_fig3, tuple)
    with pytest.raises(AttributeError):
        p.k_max = 3  # type: ignore[misc]
    # the edges of every range are allowed
    edge = parse({"classes_fig3": [2], "classes_fig4": 2, "k_max": T.K_MAX_LIMIT, "b": 1e-9})
    assert edge == P.TheoryParams((2,), 2, T.K_MAX_LIMIT, 1e-9)
    assert parse({"k_max": 1}).k_max == 1


@pytest.mark.parametrize(
    ("section", "named"),
    [
        (
            {"k_maxx": 10},
            ["theory", "'k_maxx'", "did you mean 'k_max'", "allowed keys", "classes_fig4"],
        ),
        ({"k_max": 0}, ["theory.k_max", "got 0", "[1, 100000]"]),
        ({"k_max": 2.5}, ["theory.k_max", "2.5", "integer"]),
        ({"k_max": True}, ["theory.k_max", "True"]),
        ({"k_max": "99"}, ["theory.k_max", "'99'"]),
        ({"k_max": 10**7}, ["theory.k_max", "10000000", "100000"]),
        ({"k_max": T.K_MAX_LIMIT + 1}, ["theory.k_max", "100001", "[1, 100000]"]),
        ({"classes_fig3": []}, ["theory.classes_fig3", "[]", "non-empty"]),
        ({"classes_fig3": [50, 1]}, ["theory.classes_fig3", "[50, 1]", ">= 2"]),
        ({"classes_fig3": [50, 50]}, ["theory.classes_fig3", "distinct"]),
        ({"classes_fig3": 50}, ["theory.classes_fig3", "got 50", "list"]),
        ({"classes_fig3": [50, 2.5]}, ["theory.classes_fig3", "2.5", "integer"]),
        ({"classes_fig4": 1}, ["theory.classes_fig4", "got 1", ">= 2"]),
        ({"classes_fig4": [10]}, ["theory.classes_fig4", "[10]"]),
        ({"b": 0}, ["theory.b", "got 0", "> 0"]),
        ({"b": -1.5}, ["theory.b", "-1.5"]),
        ({"b": float("nan")}, ["theory.b", "nan"]),
        ({"b": float("inf")}, ["theory.b", "inf", "finite"]),
        ({"b": "one"}, ["theory.b", "'one'"]),
        ([1, 2], ["theory", "[1, 2]", "mapping"]),
    ],
)
def test_params_errors_name_key_value_and_allowed(section, named):
    with pytest.raises(UserError) as info:
        parse(section)
    message = str(info.value)
    assert "\n" not in message
    for part in named:
        assert part in message, (part, message)


# --------------------------------------------------------------------------- the stage
def test_stage_writes_the_four_files(tmp_path, stage, capsys):
    params = write_params(tmp_path, SMALL)
    out = tmp_path / "reports" / "theory"
    out.mkdir(parents=True)
    (out / "fig3.csv").write_text("old\n")  # an earlier output is replaced
    assert stage.main(["--params", str(params), "--out-dir", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS  # no temporary files left behind
    df3 = pd.read_csv(out / "fig3.csv")
    want3 = T.fig3_frame((5, 12), 20, 1.0)
    pd.testing.assert_frame_equal(df3, want3, check_dtype=False, rtol=1e-15)
    df4 = pd.read_csv(out / "fig4.csv")
    want4 = T.fig4_frame(6, 20, 1.0)
    pd.testing.assert_frame_equal(df4, want4, check_dtype=False, rtol=1e-15)
    assert df4.loc[(df4["bound"] == "arora") & (df4["k"] < 5), "value"].isna().all()
    for name in ("fig3.png", "fig4.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    for path in out.iterdir():  # readable by others as a normal file, not mkstemp's 0600
        assert path.stat().st_mode & 0o044, path
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("theory:\n  k_max: 0\n", "theory.k_max: got 0"),
        ("theory:\n  classes_fig3: [50, 1]\n", "[50, 1]"),
        ("theory:\n  classes_fig4: 1\n", "theory.classes_fig4: got 1"),
        ("theory:\n  b: -1\n", "theory.b: got -1"),
        (f"theory:\n  k_max: {T.K_MAX_LIMIT + 1}\n", "theory.k_max: got 100001"),
        ("theory:\n  colour: red\n", "'colour'"),
        ("k: [1, 4]\n", "section 'theory' is missing"),
        ("other:\n  k_max: 5\n", "unknown params key 'other'"),
        ("theory: [1, 2\n", "not valid YAML"),
    ],
)
def test_stage_bad_params_exit_2_one_line_nothing_written(tmp_path, stage, capsys, body, named):
    params = write_params(tmp_path, body)
    out = tmp_path / "out"
    assert stage.main(["--params", str(params), "--out-dir", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and named in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()


def test_stage_missing_params_file_and_bad_argument(tmp_path, stage, capsys):
    assert (
        stage.main(["--params", str(tmp_path / "nope.yaml"), "--out-dir", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "nope.yaml" in err
    assert stage.main(["--bogus", "--out-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--bogus" in err
    assert not (tmp_path / "o").exists()


def test_stage_failing_write_keeps_the_previous_folder(tmp_path, stage, capsys, monkeypatch):
    params = write_params(tmp_path, SMALL)
    out = tmp_path / "theory"
    assert stage.main(["--params", str(params), "--out-dir", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    save_png = P._save_png
    calls = []

    def second_png_fails(fig):
        calls.append(fig)
        if len(calls) < 2:
            return save_png(fig)

        def write(tmp: Path) -> None:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

        return write

    monkeypatch.setattr(P, "_save_png", second_png_fails)
    changed = write_params(tmp_path, SMALL.replace("k_max: 20", "k_max: 9"))
    assert stage.main(["--params", str(changed), "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "fig4.png" in err and "disk is full" in err, err
    assert len(calls) == 2  # three of the four files were written before the failure
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old folder, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "theory"]


def test_stage_runs_as_a_script_from_the_repo_root(tmp_path):
    params = write_params(tmp_path, "theory:\n  classes_fig3: [4]\n  classes_fig4: 3\n  k_max: 6\n")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "stages/theory.py", "--params", str(params), "--out-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == OUTPUTS
    df4 = pd.read_csv(out / "fig4.csv")
    assert len(df4) == 4 * 6
    assert math.isnan(df4.loc[(df4["bound"] == "arora") & (df4["k"] == 1), "value"].iloc[0])
