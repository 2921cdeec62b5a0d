"""Faults a user meets first: bad params (each stage refuses them in one line before any
work) and failed writes (a full disk, a read-only folder, a kill mid-write: the previous
output survives byte for byte). Each test proves one row of docs/FAULTS.md; how a full disk
is simulated when the tests run as root: test_faults.py. The faults of what the stages
read (NaN/inf, untrusted or tampered files) are there too.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import (
    cli_args,
    files_under,
    leftovers,
    one_line,
    pretrain_args,
    stage,
    tiny_params,
    write_params,
)

from surrogap.core import config, io
from surrogap.core.errors import UserError
from surrogap.pipeline import pretrain

torch.set_num_threads(1)


GROUP = {"dataset": "circle", "k": 4}  # the tiny params' (dataset, K) of extract and probe


# --------------------------------------------------------------------------- 1. params
def _set(params: dict, dotted: str, value) -> dict:
    *head, last = dotted.split(".")
    node = params
    for key in head:
        node = node.setdefault(key, {})
    node[last] = value
    return params


# (stage, params change, expected message start, argv; {t} is the tmp dir)
PARAMS = "{t}/params.yaml"
STAGE_CASES = [
    (
        "prepare",
        ("circle.data.per_class", "many"),
        "stage prepare: circle.data.per_class: got 'many', expected an integer",
        cli_args(params=PARAMS, dataset="circle", out="{t}/out/prepared", root="{t}/out/raw"),
    ),
    (
        "pretrain",
        ("circle.train.lr", -1),
        "stage pretrain: circle.train.lr: got -1, allowed: a number > 0",
        pretrain_args(PARAMS, "{t}/none", "{t}/out/run", "{t}/out/ckpt"),
    ),
    (
        "extract",
        ("extract.batch_size", 0),
        "stage extract: extract.batch_size: got 0, allowed: an integer >= 1",
        cli_args(params=PARAMS, **GROUP, data="{t}/none", models="{t}/none", out="{t}/out/f"),
    ),
    (
        "probe",
        ("probe.repeats", 3),
        "stage probe: probe.repeats: got 3, allowed: an integer >= 10",
        cli_args(params=PARAMS, **GROUP, data="{t}/none", features="{t}/none", out="{t}/out/p"),
    ),
    (
        "bounds",
        ("seeds", [0]),
        "stage bounds: unknown params key 'seeds' (did you mean 'seed'?)",
        cli_args(
            params=PARAMS,
            probe_dir="{t}/none",
            results="{t}/out/results.csv",
            metrics="{t}/out/metrics",
        ),
    ),
    (
        "theory",
        ("theory.k_max", 0),
        "stage theory: theory.k_max: got 0, allowed: an integer in [1,",
        cli_args(params=PARAMS, out_dir="{t}/out/theory"),
    ),
    (
        "report",
        ("report.dpi", 10),
        "stage report: report.dpi: got 10, allowed: an integer in [50, 600]",
        cli_args(
            params=PARAMS,
            results="{t}/none/results.csv",
            pretrain_dir="{t}/none",
            theory_dir="{t}/none",
            out="{t}/out/report.md",
            figures_dir="{t}/out/fig",
            external="{t}/none/external.csv",
        ),
    ),
    (
        "evaluate",
        ("evaluate.repeat", 5),
        "stage evaluate: evaluate: unknown key 'repeat' (did you mean 'repeats'?)",
        cli_args(params=PARAMS, out="{t}/out/external.csv", inputs="{t}"),
    ),
]


@pytest.mark.parametrize(
    "name, change, message, argv", STAGE_CASES, ids=[c[0] for c in STAGE_CASES]
)
def test_every_stage_refuses_bad_params_before_any_work(
    tmp_path, capsys, name, change, message, argv
):
    write_params(tmp_path / "params.yaml", _set(tiny_params(), *change))
    code = stage(name).main([a.format(t=tmp_path) for a in argv])
    captured = capsys.readouterr()
    assert code == 2
    assert one_line(captured.err).startswith(message), captured.err
    assert files_under(tmp_path) == ["params.yaml"]  # nothing written, not even a folder


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "circle:\n  data: {kind: circle}\n  data: {kind: norm}\n",
            r"line 3: duplicate key 'data' \(first at line 2\)",
        ),
        ("k: [1, 4\n", r"is not valid YAML at line 2"),
        ("- 1\n- 2\n", r"must hold a mapping of sections"),
    ],
)
def test_malformed_params_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as err:
        config.load_params(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_params_file_unreadable_is_one_line(tmp_path, capsys):
    assert (
        stage("extract").main(
            cli_args(params=str(tmp_path), **GROUP, data="x", models="y", out=str(tmp_path / "f"))
        )
        == 2
    )
    assert "cannot be read: Is a directory" in one_line(capsys.readouterr().err)
    (tmp_path / "latin1.yaml").write_bytes(b"report:\n  title: caf\xe9\n")
    with pytest.raises(UserError, match=r"is not UTF-8 text"):
        config.load_params(tmp_path / "latin1.yaml")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_params_file_that_is_a_fifo_a_device_or_huge_is_one_line(tmp_path):
    """A FIFO as params.yaml used to hang every stage and `surrogap sweep` (opening it waits
    for a writer); /dev/zero used to read until memory ran out."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    fifo = tmp_path / "params.yaml"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.yaml"
    huge.write_text("report:\n  title: x\n" + "# padding\n" * 120_000)  # 1.2 MB
    cases = {
        str(fifo): "is not a regular file (a FIFO, device or socket): give a file",
        "/dev/zero": "is not a regular file (a FIFO, device or socket): give a file",
        str(huge): "is larger than 1 MiB: refused",
    }
    for path, says in cases.items():
        done = subprocess.run(
            [
                sys.executable,
                str(root / "stages/theory.py"),
                "--params",
                path,
                "--out-dir",
                str(tmp_path / "theory"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("stage theory: params file "), lines
        assert says in lines[0], lines[0]
    assert not (tmp_path / "theory").exists()
    doctor = subprocess.run(
        [sys.executable, "-m", "surrogap.cli", "doctor", "--params", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert "params.yaml does not parse: params file" in doctor.stdout, doctor.stdout
    assert "is not a regular file" in doctor.stdout


def test_exponent_numbers_are_numbers_as_in_dvc(tmp_path):
    # PyYAML alone reads 1e-3 as the string '1e-3'; DVC (YAML 1.2) reads a number
    path = tmp_path / "params.yaml"
    path.write_text(
        "circle:\n  train:\n    lr: 1e-3\n    weight_decay: 5E-4\n  data: {kind: circle}\n"
        "  encoder: {name: mlp}\n"
    )
    params = config.load_params(path)
    assert params["circle"]["train"] == {"lr": 1e-3, "weight_decay": 5e-4}
    assert pretrain.setup(params, "circle").train.lr == 1e-3


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(value):
    params = _set(tiny_params(), "circle.train.lr", value)
    with pytest.raises(
        UserError, match=r"circle\.train\.lr: got (nan|inf|-inf), expected a finite number"
    ):
        pretrain.setup(params, "circle")


def test_wrong_types_and_lists_name_the_key_and_the_type():
    params = _set(tiny_params(), "circle.train.epochs", 2.5)
    with pytest.raises(UserError, match=r"^circle\.train\.epochs: got 2\.5, expected an integer$"):
        pretrain.setup(params, "circle")
    params = _set(tiny_params(), "circle.train.epochs", True)
    with pytest.raises(UserError, match=r"circle\.train\.epochs: got True, expected an integer"):
        pretrain.setup(params, "circle")
    with pytest.raises(UserError, match=r"^k: got 4, expected a list of integers$"):
        config.grid({**tiny_params(), "k": 4})
    with pytest.raises(UserError, match=r"^seed: got \[0, 0\], allowed: a list without repeats$"):
        config.grid({**tiny_params(), "seed": [0, 0]})


# --------------------------------------------------------------------------- 2. atomic io
def test_atomic_path_exception_keeps_previous_output_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    io.write_text(target, "previous\n")
    with pytest.raises(KeyboardInterrupt), io.atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise KeyboardInterrupt  # as if interrupted mid-write
    assert target.read_text() == "previous\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "where, err, reason",
    [
        ("writer", errno.ENOSPC, "the disk is full"),
        ("replace", errno.ENOSPC, "the disk is full"),
        ("replace", errno.EROFS, "the file system is read-only"),
        ("mkstemp", errno.EACCES, "permission denied"),
        ("mkstemp", errno.EROFS, "the file system is read-only"),
    ],
)
def test_write_with_failure_is_one_line_naming_the_path(tmp_path, monkeypatch, where, err, reason):
    target = tmp_path / "results.csv"
    io.write_text(target, "old,complete\n")

    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    def writer(p):
        p.write_text("new,partial")
        if where == "writer":
            fail()

    if where == "replace":
        monkeypatch.setattr(io.os, "replace", fail)
    if where == "mkstemp":
        monkeypatch.setattr(io.tempfile, "mkstemp", fail)
    with pytest.raises(UserError) as exc:
        io.write_with(target, writer, suffix=".csv")
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg == f"cannot write {str(target)!r}: {reason}; earlier outputs are left as they were"
    assert target.read_text() == "old,complete\n"
    assert leftovers(tmp_path) == []


def test_torch_save_on_a_full_disk_is_a_clear_message(tmp_path):
    # torch.save reports ENOSPC as a RuntimeError of its zip writer; /dev/full is a real
    # always-full device, so this is the error a full disk gives
    target = tmp_path / "last.pt"
    io.write_with(target, lambda p: torch.save({"w": torch.ones(3)}, p))
    with pytest.raises(
        UserError, match=r"cannot write .*last\.pt.*the write failed .*free disk space"
    ):
        io.write_with(target, lambda p: torch.save({"w": torch.zeros(10**5)}, "/dev/full"))
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(3))
    assert leftovers(tmp_path) == []


def test_plain_write_to_full_device_gives_enospc():
    # the premise of the patched ENOSPC cases above: what the kernel raises on a full disk
    with pytest.raises(OSError) as exc, open("/dev/full", "w") as fh:
        fh.write("x" * 10000)
        fh.flush()
    assert exc.value.errno == errno.ENOSPC


def test_atomic_dir_failures_keep_the_previous_folder(tmp_path, monkeypatch):
    target = tmp_path / "prepared"
    with io.atomic_dir(target) as tmp:
        (tmp / "meta.json").write_text("{}\n")
    # the writer fails: previous folder intact
    with pytest.raises(UserError, match=r"disk is full"), io.atomic_dir(target) as tmp:
        (tmp / "meta.json").write_text('{"new"')
        raise OSError(errno.ENOSPC, "No space left on device")
    assert files_under(target) == ["meta.json"] and (target / "meta.json").read_text() == "{}\n"
    assert leftovers(tmp_path) == []
    # the swap fails after the previous folder stepped aside: it is put back
    real = os.replace
    calls = []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", second_fails)
    with pytest.raises(UserError, match=r"read-only"), io.atomic_dir(target) as tmp:
        (tmp / "meta.json").write_text('{"new": 1}\n')
    monkeypatch.setattr(io.os, "replace", real)
    assert len(calls) == 3 and calls[2] == target  # aside, the failed swap, put back
    assert (target / "meta.json").read_text() == "{}\n"
    assert leftovers(tmp_path) == []


def _write_then_sigkill(target: Path) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        f"""
        import os, signal
        from surrogap.core import io
        def writer(p):
            p.write_text("partial")
            os.kill(os.getpid(), signal.SIGKILL)
        io.write_with({str(target)!r}, writer)
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_sigkill_mid_write_leaves_previous_file_and_next_write_sweeps(tmp_path):
    target = tmp_path / "metrics.json"
    io.write_json(target, {"old": 1})
    result = _write_then_sigkill(target)
    assert result.returncode == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"old": 1}  # never a truncated file
    stale = leftovers(tmp_path)
    assert len(stale) == 1 and stale[0].startswith(".metrics.json.part-")  # SIGKILL: no cleanup
    io.write_json(target, {"new": 2})  # the next write removes the dead writer's temporary
    assert json.loads(target.read_text()) == {"new": 2}
    assert leftovers(tmp_path) == []


def test_sweep_keeps_temporaries_of_live_writers(tmp_path):
    target = tmp_path / "a.csv"
    live = tmp_path / f".a.csv.part-{os.getppid()}-xyz.tmp"  # our parent: alive
    other = tmp_path / ".a.csv.1.tmp"  # not a surrogap temporary name
    live.write_text("busy")
    other.write_text("keep")
    io.write_text(target, "x")
    assert live.exists() and other.exists()
