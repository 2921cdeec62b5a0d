"""`surrogap doctor` and the torchvision import guard: the decision on given version
strings (fakes, no install changed), the command on this install, and a torchvision that
does not load turned into one line naming the pair and `surrogap doctor`."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from surrogap import cli
from surrogap.core.errors import UserError
from surrogap.models import vision
from surrogap.ops import doctor, dvcapi


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("torch_v", "expected"),
    [("2.14.1+cpu", "0.29"), ("2.4.0", "0.19"), ("2.10.0+cu128", "0.25"), ("1.13.1", None)],
)
def test_the_pairing_rule(torch_v, expected):
    assert vision.torchvision_pair(torch_v) == expected


def problems(found):
    return [f.text for f in found if not f.ok]


def test_a_matching_cpu_pair_is_fine():
    assert problems(doctor.check_torch_pair("2.14.1+cpu", "0.29.1+cpu", None, None)) == []
    # torchvision may spell its CUDA version as an integer
    assert problems(doctor.check_torch_pair("2.14.1+cu130", "0.29.1+cu130", "13.0", "13000")) == []


def test_a_mismatched_pair_says_which_torchvision_and_the_fix():
    (text,) = problems(doctor.check_torch_pair("2.14.1+cpu", "0.28.0+cpu", None, None))
    assert text == (
        "torchvision 0.28.0+cpu does not pair with torch 2.14.1+cpu (it needs torchvision "
        '0.29.x); fix: pip install "torchvision==0.29.*" --index-url '
        "https://download.pytorch.org/whl/cpu"
    )


def test_cpu_and_cuda_builds_mixed_are_a_problem():
    (text,) = problems(doctor.check_torch_pair("2.14.1+cpu", "0.29.1+cu128", None, "12.8"))
    assert "torch is a CPU build but torchvision 0.29.1+cu128 a CUDA 12.8 build" in text
    (text,) = problems(doctor.check_torch_pair("2.14.1+cu128", "0.29.1", "12.8", "13.0"))
    assert "CUDA 12.8 build" in text and "whl/cu128" in text


def test_a_torchvision_that_does_not_load_is_a_problem():
    error = "operator torchvision::nms does not exist"
    found = doctor.check_torch_pair("2.14.1", "0.29.1", None, None, error)
    (text,) = problems(found)
    assert text.startswith(f"torchvision does not load: {error}; fix: pip install")
    assert problems(doctor.check_torch_pair("2.14.1", None, None, None)) == [
        'torchvision is not installed; fix: pip install "torchvision==0.29.*" --index-url '
        "https://download.pytorch.org/whl/cpu"
    ]


def test_doctor_command_on_this_install(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    venv = str(Path(sys.executable).parent)  # where `pip install -e .` put dvc
    monkeypatch.setenv("PATH", f"{venv}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "params.yaml").write_text("dataset: [circle]\nk: [1]\nseed: [0]\nlr: []\n")
    rc, out, _ = run_cli(["doctor"])
    lines = out.splitlines()
    assert lines[0].startswith("ok: torch ") and lines[-1] == "ok: params.yaml parses"
    # a note (a CUDA build without a GPU) is no problem
    assert rc == 0 and all(line.startswith(("ok: ", "note: ")) for line in lines), out
    (tmp_path / "params.yaml").write_text("k: [1\n")
    rc, out, _ = run_cli(["doctor"])
    assert rc == 1 and out.splitlines()[-1].startswith("problem: params.yaml does not parse")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dvc, no git
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    rc, out, _ = run_cli(["doctor", "--params", "nowhere.yaml"])
    assert rc == 1
    assert "problem: dvc is not on PATH; fix: " in out and "problem: git is not on PATH" in out
    assert "problem: no nowhere.yaml here; fix: run `surrogap doctor` in the project's root" in out


def test_a_torchvision_that_does_not_load_stops_the_stage_with_one_line(monkeypatch):
    def broken(name):
        raise RuntimeError("operator torchvision::nms does not exist\nmore")

    monkeypatch.setattr(vision.importlib, "import_module", broken)
    with pytest.raises(UserError) as info:
        vision.ResNet18(3, head=True, hidden=8, out_dim=4)
    message = str(info.value)
    assert "\n" not in message and message.endswith("run `surrogap doctor`")
    assert "operator torchvision::nms does not exist" in message
    assert f"with torch {vision.torch.__version__}" in message


def test_help_lists_every_subcommand():
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    rc, out, _ = 0, parser.format_help(), ""
    for name in sub.choices:
        assert f"    {name} " in out, name
    assert {"bounds", "bench", "evaluate", "sweep", "compare", "doctor"} <= set(sub.choices)
    first = out.split("\n\n")[1]  # the description: the docstring's first line
    assert all(name in first for name in sub.choices) and rc == 0


def test_the_pretrain_stage_stops_on_a_torchvision_that_does_not_load(
    tmp_path, monkeypatch, capsys
):
    from conftest import pretrain_args, stage, tiny_params, write_params

    from surrogap.pipeline import prepare

    params = tiny_params()
    params["dataset"] = ["digits"]
    params["digits"] = {
        "data": {"kind": "digits", "val_fraction": 0.2, "test_fraction": 0.2, "seed": 0},
        "encoder": {"name": "resnet18", "hidden": 8, "out_dim": 4},
        "train": {**params.pop("circle")["train"], "epochs": 1},
    }
    prepare.run(params, "digits", tmp_path / "prepared", tmp_path / "raw")
    path = write_params(tmp_path / "params.yaml", params)

    real = vision.importlib.import_module

    def broken(name, *args):  # torchvision alone fails, as a mismatched pair does
        if name.startswith("torchvision"):
            raise RuntimeError("operator torchvision::nms does not exist")
        return real(name, *args)

    monkeypatch.setattr(vision.importlib, "import_module", broken)
    argv = pretrain_args(
        path, tmp_path / "prepared", tmp_path / "run", tmp_path / "ckpt", "digits", 1
    )
    assert stage("pretrain").main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("stage pretrain: torchvision ")
    assert err.endswith("operator torchvision::nms does not exist; run `surrogap doctor`")
    assert not (tmp_path / "run").exists() and not (tmp_path / "ckpt").exists()


def test_the_command_line_stays_light_with_the_new_subcommands():
    """compare (pandas, the report's code) and doctor (torch) import only when they run, so
    `surrogap bounds` starts as fast as before."""
    import subprocess

    code = (
        "import sys; from surrogap import cli; cli.build_parser(); "
        "print(sorted(m for m in ('pandas', 'torch', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- CUDA without GPU
def test_a_cuda_build_without_a_gpu_is_a_note_with_the_readme_cpu_line():
    note = doctor.check_cuda_without_gpu("2.14.1+cu130", "13.0", gpus=0)
    assert note.ok and note.note and note.line().startswith("note: torch 2.14.1+cu130 is a CUDA ")
    line = 'pip install torch==2.14.1 "torchvision==0.29.*" --index-url ' + doctor.CPU_INDEX
    assert note.text.endswith(line)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.index("**On a machine without an NVIDIA GPU**")
    assert f"--index-url {doctor.CPU_INDEX}\n" in readme[section : section + 600]
    assert "On a machine without an NVIDIA GPU" in note.text
    assert doctor.check_cuda_without_gpu("2.14.1+cu130", "13.0", gpus=1) is None
    assert doctor.check_cuda_without_gpu("2.14.1+cpu", None, gpus=0) is None


def test_a_note_leaves_the_exit_status_at_0(monkeypatch, capsys):
    note = doctor.check_cuda_without_gpu("2.14.1+cu130", "13.0", gpus=0)
    monkeypatch.setattr(doctor, "findings", lambda params: [doctor.Finding(True, "x"), note])
    assert doctor.run_command(argparse.Namespace(params="params.yaml")) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("note: ")


# --------------------------------------------------------------------------- DVC
def test_dvc_outside_the_tested_range_is_a_problem():
    spec = ">=3.63,<4"
    for version in ("3.62.0", "4.0.0", "4.1.0rc1"):
        found = doctor.check_dvc(version, spec, [])
        assert not found.ok, version
        assert found.text == (
            f"dvc {version} is outside the range surrogap is tested with (dvc>=3.63,<4): "
            '`surrogap sweep` drives DVC\'s private API; fix: pip install "dvc>=3.63,<4"'
        )
    assert (
        doctor.check_dvc("3.67.1", spec, []).line() == "ok: dvc 3.67.1 (tested range dvc>=3.63,<4)"
    )
    lacking = doctor.check_dvc("3.67.1", spec, ["dvc.stage.run._make_cmd: missing"])
    assert (
        not lacking.ok
        and "lacks what `surrogap sweep` uses: dvc.stage.run._make_cmd" in lacking.text
    )
    assert not doctor.check_dvc(None, spec, []).ok


def test_pyproject_bounds_dvc_at_both_ends_and_the_install_is_inside():
    import re
    from importlib.metadata import version

    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parents[1]
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    (req,) = [Requirement(d) for d in re.findall(r'^  "(dvc[<>=~!][^"]*)",', text, re.M)]
    ops = {s.operator for s in req.specifier}
    assert ops == {">=", "<"}, req  # both ends
    assert dvcapi.requirement() == ">=3.63,<4" and req.specifier == SpecifierSet(">=3.63,<4")
    assert dvcapi.in_range(version("dvc"), dvcapi.requirement())


def test_the_installed_dvc_has_every_internal_the_sweep_uses():
    """Fails on an install whose DVC lacks an entry of dvcapi.INTERNALS or has it with
    another call shape: `surrogap sweep` would fail mid-run there."""
    assert dvcapi.missing() == []


def test_a_missing_or_changed_internal_is_named(monkeypatch):
    import dvc.dvcfile
    import dvc.stage.run

    for cls in dvc.dvcfile.ProjectFile.__mro__:  # as in DVC before 3.63
        if "dump_stages" in vars(cls):
            monkeypatch.delattr(cls, "dump_stages")
    monkeypatch.setattr(dvc.stage.run, "_make_cmd", lambda cmd: cmd)  # one argument, not two
    assert dvcapi.missing() == [
        "dvc.stage.run._make_cmd(cmd): the call surrogap sweep makes does not fit (too many "
        "positional arguments)",
        "dvc.dvcfile.ProjectFile.dump_stages: missing",
    ]


def test_every_dvc_name_the_sweep_imports_is_listed():
    """Each name imported from dvc in the sweep's modules, and each private attribute they
    call on a DVC object, is an entry of dvcapi.INTERNALS (or one of DVC's public names)."""
    import re

    public = {"DvcException", "NotDvcRepoError", "Repo"}
    listed = {(i.module, i.name.split(".")[-1]) for i in dvcapi.INTERNALS}
    ops = Path(doctor.__file__).parent
    for name in ("sweep.py", "recording.py", "dvcstate.py", "workers.py"):
        text = (ops / name).read_text(encoding="utf-8")
        for module, names in re.findall(r"from (dvc[\w.]*) import ([^\n(]+)", text):
            for item in (n.strip() for n in names.split(",")):
                assert item in public or (module, item) in listed, (name, module, item)
        for attr in re.findall(r"repo\.(_\w+)\(", text):
            assert ("dvc.repo", attr) in listed, (name, attr)
