"""Issue 29: what the one writer refuses to replace, the boundary of every command and
stage (stdout closed or full, Ctrl-C, a data file that does not decode), a cut dvc.lock
named with its fix, runs at chance flagged, and messages that name the real cause.

Every test runs the real command (`python -m surrogap.cli`) or stage script in a
subprocess, or the function the stage calls, on files in a temporary folder: no real
device is ever written (device nodes are made with os.mknod in the temporary folder,
checked with os.stat and never opened)."""

from __future__ import annotations

import math
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, tiny_params, write_params

from surrogap.core import dvclock, io
from surrogap.core.errors import EXIT_INTERRUPTED, EXIT_OUTPUT, UserError

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
ENV.pop("DVC_STAGE", None)
ENV.pop("DVC_ROOT", None)


def surrogap(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "surrogap.cli", *args],
        capture_output=kw.pop("capture_output", "stdout" not in kw),
        text=True,
        timeout=120,
        env=ENV,
        cwd=cwd,
        **kw,
    )


def script(name: str, *args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{name}.py"), *args],
        capture_output=kw.pop("capture_output", "stdout" not in kw),
        text=True,
        timeout=120,
        env=ENV,
        cwd=cwd,
        **kw,
    )


def features(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    path = folder / "good.npz"
    x = rng.normal(size=(120, 6)).astype("float32")
    np.savez(path, x=x, y=np.repeat(np.arange(4), 30))
    return path


def device(path: Path) -> Path:
    """A character device 1:3 (what /dev/null is) at `path`, or skip where mknod is not
    permitted; never opened."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    return path


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# --------------------------------------------------------------------------- the writer
def test_the_writer_never_replaces_a_device_fifo_socket_or_symlink(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.png"
    (tmp_path / "target.png").write_bytes(b"mine")
    link.symlink_to("target.png")
    dev = device(tmp_path / "fakenull")
    for path, kind in ((fifo, "a FIFO"), (link, "a symbolic link"), (dev, "a character device")):
        with pytest.raises(UserError, match=f"'{path}': it is {kind}") as err:
            io.write_text(path, "x")
        assert "\n" not in str(err.value)
        with pytest.raises(UserError, match="it is"):
            io.write_with(path, lambda tmp: tmp.write_text("x"))
    with pytest.raises(UserError, match="it is a symbolic link"):
        with io.atomic_dir(link):
            pass
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISCHR(os.lstat(dev).st_mode)
    assert link.is_symlink() and (tmp_path / "target.png").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fakenull",
        "fifo",
        "link.png",
        "target.png",
    ]


def test_evaluate_plot_at_a_device_fifo_or_symlink_is_refused_before_any_work(tmp_path):
    good = features(tmp_path)
    dev = device(tmp_path / "fakenull")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link.png").symlink_to("elsewhere.png")
    for name, kind in (
        ("fakenull", "character device"),
        ("fifo", "FIFO"),
        ("link.png", "symbolic link"),
    ):
        done = surrogap("evaluate", str(good), "--k", "1", "--plot", name, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        line = one_line(done.stderr)
        assert f"'{name}'" in line and kind in line, line
        assert done.stdout == ""  # refused at parsing: no table printed
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    assert (tmp_path / "link.png").is_symlink() and not (tmp_path / "elsewhere.png").exists()


def test_a_plot_outside_the_project_needs_an_existing_folder(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "dvc.yaml").write_text("stages: {}\n")
    good = features(project)
    outside = tmp_path / "nowhere" / "dir" / "x.png"
    done = surrogap("evaluate", str(good), "--k", "1", "--plot", str(outside), cwd=project)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "does not exist" in line and "only inside the project" in line, line
    assert not (tmp_path / "nowhere").exists()
    inside = surrogap("evaluate", str(good), "--k", "1", "--plot", "figs/x.png", cwd=project)
    assert inside.returncode == 0, inside.stderr
    assert (project / "figs" / "x.png").stat().st_size > 0


def test_a_stage_out_at_a_device_or_outside_the_project_is_refused(tmp_path):
    write_params(tmp_path / "params.yaml", tiny_params())
    results = tmp_path / "results.csv"
    results.write_text("dataset\n")
    dev = device(tmp_path / "selected.csv")
    done = script("select_lr", "--results", str(results), "--out", str(dev), cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith("stage select_lr: argument --out: ") and "character device" in line
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    far = tmp_path.parent / f"{tmp_path.name}-missing" / "selected.csv"
    done = script("select_lr", "--results", str(results), "--out", str(far), cwd=tmp_path)
    assert done.returncode == 2 and "only inside the project" in one_line(done.stderr)
    assert not far.parent.exists()


def test_a_prepared_folder_that_is_a_symlink_is_named_as_one(tmp_path):
    write_params(tmp_path / "params.yaml", tiny_params())
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (tmp_path / "data" / "prepared").mkdir(parents=True)
    link = tmp_path / "data" / "prepared" / "circle"
    link.symlink_to(elsewhere)
    done = script("prepare", "--dataset", "circle", "--out", str(link), cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "it is a symbolic link" in line and "Is a directory" not in line, line
    assert link.is_symlink() and [p.name for p in elsewhere.iterdir()] == ["keep.txt"]


def test_a_file_size_limit_is_named_not_the_disk(tmp_path):
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "from surrogap.core import io\n"
        "from surrogap.core.errors import UserError\n"
        "try:\n"
        f"    io.write_text({str(tmp_path / 'big.txt')!r}, 'x' * 100000)\n"
        "except UserError as exc:\n"
        "    print(exc)\n"
        "import torch\n"
        "try:\n"
        f"    io.write_with({str(tmp_path / 'big.pt')!r}, lambda p: torch.save(torch.zeros(10000), p))\n"
        "except UserError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    plain, torch_save = done.stdout.strip().splitlines()
    assert "file-size limit (ulimit -f: 1000 bytes)" in plain and "disk" not in plain, plain
    # torch's zip writer names no errno: the limit is named beside the disk
    assert "the file-size limit (ulimit -f: 1000 bytes)" in torch_save, torch_save
    assert not (tmp_path / "big.txt").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary left


# --------------------------------------------------------------------------- the boundary
@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    return ROOT / "reports" / "results.csv"


@pytest.mark.parametrize(
    "name, args",
    [
        ("bounds", ["bounds", "--k", "4", "--classes", "10", "--loss", "3"]),
        ("bounds", ["bounds", "--k", "4", "--classes", "10", "--loss", "3", "--json"]),
        ("evaluate", ["evaluate", "{good}", "--k", "1"]),
        ("compare", ["compare", "{results}", "{results}"]),
        ("doctor", ["doctor"]),
    ],
)
def test_a_full_stdout_is_one_line_and_exit_74(tmp_path, name, args):
    good = features(tmp_path)
    write_params(tmp_path / "params.yaml", tiny_params())
    results = ROOT / "reports" / "results.csv"
    argv = [a.format(good=good, results=results) for a in args]
    with open("/dev/full", "w") as full:  # the kernel's always-full device, read as stdout
        done = surrogap(*argv, cwd=tmp_path, stdout=full, stderr=subprocess.PIPE)
    assert done.returncode == EXIT_OUTPUT == 74, done.stderr
    assert one_line(done.stderr) == (
        f"surrogap {name}: cannot write to stdout: No space left on device"
    )


def test_a_closed_stdout_is_one_line_and_exit_74(tmp_path):
    write_params(tmp_path / "params.yaml", tiny_params())
    for argv, run in (
        (["bounds", "--k", "4", "--classes", "10"], surrogap),
        (["--out-dir", "theory"], lambda *a, **k: script("theory", *a, **k)),
    ):
        done = run(
            *argv,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: os.close(1),
        )
        assert done.returncode == 74, done.stderr
        assert "stdout is closed" in one_line(done.stderr)
    assert not (tmp_path / "theory").exists()


def _default_sigint() -> None:
    """In the child: SIGINT's default action, whatever the test runner inherited (a shell
    starts a background job with SIGINT ignored, and Python then installs no handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(cmd: list[str], cwd: Path, after: float) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.parametrize(
    "after",
    [0.3, 4.0],
)  # while the modules load; while it works
def test_ctrl_c_in_a_stage_is_one_line_and_exit_130(tmp_path, after):
    params = tiny_params()
    params["theory"]["k_max"] = 20000  # seconds of work
    write_params(tmp_path / "params.yaml", params)
    cmd = [sys.executable, str(ROOT / "stages/theory.py"), "--out-dir", "theory"]
    done = _interrupt(cmd, tmp_path, after)
    assert done.returncode in (EXIT_INTERRUPTED, -signal.SIGINT), done.stderr
    assert "Traceback" not in done.stderr
    assert "interrupted (Ctrl-C)" in one_line(done.stderr)
    assert one_line(done.stderr).startswith("stage theory: ")
    assert not (tmp_path / "theory").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]  # no temporary left


def test_ctrl_c_in_a_command_is_one_line_and_exit_130(tmp_path):
    # 50,000 K: a long table; the interrupt lands while it is computed or printed
    code = (
        "import signal, threading, os\n"
        "threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
        "import sys; from surrogap.cli import main\n"
        "sys.exit(main(['bounds', '--k', *map(str, range(1, 200001)), '--classes', '10']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        preexec_fn=_default_sigint,
    )
    assert done.returncode == EXIT_INTERRUPTED, done.stderr[-2000:]
    assert one_line(done.stderr).startswith("surrogap bounds: interrupted (Ctrl-C)")


def test_a_pickle_naming_a_missing_codec_is_one_line_naming_the_file(tmp_path):
    from surrogap.data.cifar import read_pickle

    path = tmp_path / "data_batch_1"
    # _codecs.encode('x', 'no-such-codec'): what numpy's own pickles call, with a codec
    # that does not exist (LookupError when unpickled)
    path.write_bytes(
        b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00xq\x01X\r\x00\x00\x00"
        b"no-such-codecq\x02\x86q\x03Rq\x04."
    )
    with pytest.raises(UserError) as err:
        read_pickle(path)
    assert str(path) in str(err.value) and "LookupError" in str(err.value)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- dvc.lock
CUT = "schema: '2.0'\nstages:\n  theory:\n    cmd: python stages/theory.py\n    deps:\n    - path: \"src/sur"


def test_a_cut_dvc_lock_is_named_with_its_fix(tmp_path, monkeypatch):
    (tmp_path / "dvc.lock").write_text(CUT)
    with pytest.raises(UserError, match=r"is not valid YAML.*git checkout dvc\.lock && dvc repro"):
        dvclock.read(tmp_path)
    write_params(tmp_path / "params.yaml", tiny_params())
    doctor = surrogap("doctor", cwd=tmp_path)
    lines = [x for x in doctor.stdout.splitlines() if "dvc.lock" in x]
    assert doctor.returncode == 1 and len(lines) == 1, doctor.stdout
    assert lines[0].startswith("problem: ") and "git checkout dvc.lock && dvc repro" in lines[0]
    # the pretrain stage's check of its completed checkpoint reads dvc.lock too
    from surrogap.training import checkpoint

    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    with pytest.raises(UserError, match=r"dvc\.lock' is not valid YAML"):
        checkpoint.recorded_by_dvc(tmp_path / "data" / "pretrain", "0" * 32)


def test_the_sweep_writes_dvc_lock_atomically(tmp_path, monkeypatch):
    """A Ctrl-C inside DVC's own rewrite of dvc.lock (its YAML dumper) leaves the previous
    file whole: DVC writes a copy that replaces dvc.lock only when complete."""
    from dvc.utils.serialize import _yaml

    from surrogap.ops.recording import dump_lock_atomically

    lock = tmp_path / "dvc.lock"
    before = "schema: '2.0'\nstages:\n  theory:\n    cmd: python stages/theory.py\n"
    lock.write_text(before)

    class Stage:
        name = "report"

    class Repo:
        fs = None

        class scm_context:
            @staticmethod
            def track_file(path):
                pass

    class Dvcfile:
        repo = Repo()

        class _lockfile:
            path = str(lock)
            relpath = "dvc.lock"

    from dvc.stage import serialize

    monkeypatch.setattr(serialize, "to_lockfile", lambda stage, **kw: {stage.name: {"cmd": "x"}})
    real = _yaml._dump

    def cut(data, stream, **kw):
        stream.write("schema: '2.0'\nstages:\n  theo")
        raise KeyboardInterrupt

    monkeypatch.setattr(_yaml, "_dump", cut)
    with pytest.raises(KeyboardInterrupt):
        dump_lock_atomically(Dvcfile(), [Stage()])
    assert lock.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["dvc.lock"]
    monkeypatch.setattr(_yaml, "_dump", real)
    dump_lock_atomically(Dvcfile(), [Stage()])
    assert set(yaml.safe_load(lock.read_text())["stages"]) == {"theory", "report"}


# --------------------------------------------------------------------------- FIFOs DVC hashes
def test_a_fifo_under_data_external_is_found_by_doctor_and_the_evaluate_stage(tmp_path):
    write_params(tmp_path / "params.yaml", tiny_params())
    external = tmp_path / "data" / "external"
    external.mkdir(parents=True)
    os.mkfifo(external / "pipe")
    doctor = surrogap("doctor", cwd=tmp_path)
    lines = [x for x in doctor.stdout.splitlines() if "FIFO" in x]
    assert doctor.returncode == 1 and len(lines) == 1, doctor.stdout
    assert "'data/external/pipe' (FIFO)" in lines[0] and lines[0].startswith("problem: ")
    out = tmp_path / "reports" / "external.csv"
    done = script("evaluate", "--out", str(out), "--inputs", str(external), cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert (
        line.startswith("stage evaluate: ")
        and "pipe' is a FIFO, not a regular file, inside" in line
    ), line
    assert not out.exists()


def test_a_fifo_at_dvc_lock_is_named_by_doctor_and_sweep_unopened(tmp_path):
    """Before: both opened dvc.lock and waited for a writer for ever."""
    import shutil

    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True, env=ENV)
    os.mkfifo(tmp_path / "dvc.lock")
    said = f"{str(tmp_path / 'dvc.lock')!r} is a FIFO, not a regular file"
    doctor = surrogap("doctor", cwd=tmp_path)
    assert doctor.returncode == 1
    assert next(x for x in doctor.stdout.splitlines() if said in x).startswith("problem: ")
    sweep = surrogap("sweep", "theory", cwd=tmp_path)
    assert sweep.returncode == 2 and sweep.stdout == ""
    line = one_line(sweep.stderr)
    assert line.startswith("surrogap sweep: ") and said in line, line
    assert stat.S_ISFIFO(os.lstat(tmp_path / "dvc.lock").st_mode)


def test_a_garbage_scheduler_prints_only_its_refusal(tmp_path):
    import shutil

    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True, env=ENV)
    done = surrogap("sweep", "--scheduler", "garbage", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "is no Dask scheduler address" in one_line(done.stderr)


# --------------------------------------------------------------------------- runs at chance
def _chance(results, rows=None):
    out = results.copy()
    for i in out.index if rows is None else rows:
        c = int(out.loc[i, "classes"])
        out.loc[i, "mean_acc"] = 1 / c
        out.loc[i, "supervised_loss"] = math.log(c)
    out["holds"] = (out["bao_lower"] <= out["supervised_loss"]) & (
        out["supervised_loss"] <= out["bao_upper"]
    )
    return out


def _front(md: str) -> str:
    """report.md's first paragraph: the answer on this run."""
    return next(line for line in md.splitlines() if line.startswith("Checks the claims"))


def test_a_grid_whose_every_run_is_at_chance_is_inconclusive_and_listed(tmp_path):
    import test_report as T

    paths = T.write_run(tmp_path, fail=False)
    results = _chance(T.make_results(False))
    results.to_csv(paths["results"], index=False)
    for _, row in results.iterrows():
        T.write_points(paths["probe"], row)
    assert T.STAGE.main(T.argv(paths)) == 0
    md = paths["out"].read_text()
    for n in range(1, 6):
        line = T.claim_line(md, n)
        assert "** inconclusive: every run is at chance" in line, line
    assert "Runs at chance" in md and "every claim is inconclusive" in md
    assert "- topics_c5 K=1 seed 0: test accuracy 0.2" in md
    # the first paragraph concludes nothing (it said 'A larger K does not lower R_mu ...'
    # and 'Why the gap falls: mostly mechanically ...')
    front = _front(md)
    assert "every run is at chance" in front and "nothing is concluded" in front, front
    for conclusion in ("A larger K", "Why the gap falls", "lowers R_mu", "mechanically"):
        assert conclusion not in front, front


def test_one_run_at_chance_is_listed_and_left_out_of_the_evidence(tmp_path):
    import test_report as T

    from surrogap.report.claims import at_chance_runs

    assert not at_chance_runs(T.make_results(False), {}, 0.95).any()
    paths = T.write_run(tmp_path, fail=False)
    results = _chance(T.make_results(False), rows=[0])
    assert at_chance_runs(results, {}, 0.95).tolist() == [True] + [False] * (len(results) - 1)
    results.to_csv(paths["results"], index=False)
    T.write_points(paths["probe"], results.iloc[0])
    assert T.STAGE.main(T.argv(paths)) == 0
    md = paths["out"].read_text()
    assert "Runs at chance" in md and "every claim is inconclusive" not in md
    assert "- topics_c5 K=1 seed 0: test accuracy 0.2" in md
    note = "not counted as evidence: topics_c5 K=1 seed 0."
    assert md.count(note) == 5  # one detail under each claim
    assert "every run is at chance" not in md
    # the first paragraph's numbers, the fixed-encoder null's included, leave it out
    front = _front(md)
    assert "1 run at chance is left out of every number below" in front, front
    from surrogap.report import front as F
    from surrogap.report import stats as S
    from surrogap.report.load import ReportParams

    p = ReportParams()
    nulls = F.fixed_null_trends(pd.read_csv(paths["null"]), results.iloc[1:], p)
    quoted = ", ".join(f"{ds} {S.signed(f.slope, p.decimals)}" for ds, (f, _) in nulls.items())
    assert f"still has a gap that falls at {quoted} per unit log K" in front, front


# --------------------------------------------------------------------------- outputs over inputs
def test_an_output_naming_an_input_is_refused_before_any_work(tmp_path):
    good = features(tmp_path)
    before = good.read_bytes()
    (tmp_path / "labels.txt").write_text("\n".join(["0"] * 120) + "\n")
    for args in (
        (str(good), "--plot", str(good)),
        (str(good), "--plot", "./good.npz"),
        (str(good), "--labels", "labels.txt", "--plot", "labels.txt"),
    ):
        done = surrogap("evaluate", *args[:1], "--k", "1", "4", *args[1:], cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        line = one_line(done.stderr)
        assert line.startswith("surrogap evaluate: argument --plot '"), line
        assert "would replace the input" in line, line
        assert done.stdout == ""
    assert good.read_bytes() == before and (tmp_path / "labels.txt").read_text().startswith("0\n")
    results = tmp_path / "results.csv"
    results.write_text("dataset\n")
    done = script("select_lr", "--results", str(results), "--out", "results.csv", cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith(
        "stage select_lr: argument --out 'results.csv' is the input --results"
    ), line
    assert results.read_text() == "dataset\n"


def test_an_empty_plot_path_or_a_trailing_slash_is_refused(tmp_path):
    good = features(tmp_path)
    done = surrogap("evaluate", str(good), "--k", "1", "--plot", "", cwd=tmp_path)
    assert done.returncode == 2 and "the path is empty" in one_line(done.stderr)
    done = surrogap("evaluate", str(good), "--k", "1", "--plot", "x.png/", cwd=tmp_path)
    assert done.returncode == 2 and "trailing slash" in one_line(done.stderr), done.stderr
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------- stderr closed
def test_with_stderr_closed_nothing_goes_to_stdout(tmp_path):
    """Before: sys.stderr is None and print(file=None) wrote the error line to stdout."""
    write_params(tmp_path / "params.yaml", tiny_params())
    closed = {"stdout": subprocess.PIPE, "stderr": None, "preexec_fn": lambda: os.close(2)}
    done = surrogap("bounds", "--k", "4", "--classes", "1", "--loss", "3", cwd=tmp_path, **closed)
    assert done.returncode == 2 and done.stdout == ""
    missing = str(tmp_path / "none.csv")
    done = script("select_lr", "--results", missing, "--out", "s.csv", cwd=tmp_path, **closed)
    assert done.returncode == 2 and done.stdout == ""
    assert not (tmp_path / "s.csv").exists()


def test_a_symlink_to_a_fifo_outside_is_found_by_doctor_and_the_evaluate_stage(tmp_path):
    """Before: special_files skipped symlinks unread; DVC follows them and hangs."""
    write_params(tmp_path / "params.yaml", tiny_params())
    external = tmp_path / "data" / "external"
    external.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.mkfifo(outside / "pipe")
    (external / "link").symlink_to(outside / "pipe")
    (external / "loop").symlink_to(external)  # a folder link loop: walked once, not for ever
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "dir").symlink_to(outside)  # a folder link to the FIFO's folder
    doctor = surrogap("doctor", cwd=tmp_path)
    line = next(x for x in doctor.stdout.splitlines() if "FIFO" in x)
    assert doctor.returncode == 1 and line.startswith("problem: "), doctor.stdout
    assert "'data/external/link' (symbolic link to a FIFO)" in line, line
    assert "'src/dir/pipe' (FIFO)" in line, line
    out = tmp_path / "reports" / "external.csv"
    done = script("evaluate", "--out", str(out), "--inputs", str(external), cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "link' is a symbolic link to a FIFO, not a regular file, inside" in line, line
    assert not out.exists()
