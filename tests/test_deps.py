"""dvc.yaml's deps are true: each stage lists exactly the project code its script reaches
(following imports, at module level and inside functions), and every path its command
names is one of its deps or outs. The checkpoint fingerprint hashes pretrain's code."""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path

import pytest

from surrogap.core import codedeps
from surrogap.core.codedeps import imported_names, reached
from surrogap.training import checkpoint

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "surrogap"
CODE_ROOTS = ("src", "stages")
# paths a command names that are neither deps nor outs, and why
NOT_DEPS = {
    ("prepare", "--root"): "the download cache: every archive in it is checked against the md5 "
    "that params.yaml pins (a dep of prepare), so its content is the params'",
    **{
        (
            name,
            "--checkpoints",
        ): "the stage's own resumable folder (surrogap.training.checkpoint): a "
        "checkpoint is used only for exactly this run and is removed when the run completes, "
        "so it never changes what the stage outputs"
        for name in ("pretrain", "pretrain-lr")
    },
}


@pytest.fixture(scope="module")
def stages(dvc_index) -> dict:
    """name -> (cmd, dep paths, out paths) of one instance of every stage of dvc.yaml."""
    out = {}
    for st in dvc_index:
        name = st.addressing.split(":")[-1]
        base = name.split("@")[0]
        if base in out:
            continue
        deps = [str(d.def_path) for d in st.deps if not hasattr(d, "params")]
        outs = [str(o.def_path) for o in st.outs]
        out[base] = (st.cmd, deps, outs)
    return out


def script_of(cmd: str) -> Path:
    words = shlex.split(cmd)
    assert words[0] == "python" and words[1].startswith("stages/"), cmd
    return ROOT / words[1]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def code_deps(deps: list[str]) -> set[Path]:
    """Every .py file the code deps name (a folder names all of them)."""
    files = set()
    for d in deps:
        if not d.startswith(tuple(f"{r}/" for r in CODE_ROOTS)):
            continue
        path = ROOT / d
        assert path.exists(), f"dep {d} does not exist"
        files |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return {f.resolve() for f in files if "__pycache__" not in f.parts}


def test_every_script_of_stages_is_a_stage(stages):
    scripts = {script_of(cmd).stem for cmd, _, _ in stages.values()}
    assert scripts == {p.stem for p in (ROOT / "stages").glob("*.py")}


def test_deps_list_exactly_the_code_each_stage_reaches(stages):
    problems = []
    for name, (cmd, deps, _) in sorted(stages.items()):
        need = {p for p in reached([script_of(cmd)]) if p.is_relative_to(ROOT)}
        have = code_deps(deps)
        for p in sorted(need - have):
            problems.append(f"{name}: reaches {p.relative_to(ROOT)} but does not list it")
        for p in sorted(have - need):
            problems.append(f"{name}: lists {p.relative_to(ROOT)} but never reaches it")
    assert not problems, "\n".join(problems)


def test_every_path_a_command_names_is_a_dep_or_an_out(stages):
    problems = []
    for name, (cmd, deps, outs) in sorted(stages.items()):
        words = shlex.split(cmd)
        for flag, value in itertools.pairwise(words[2:]):
            if not flag.startswith("--") or flag == "--params" or "/" not in value:
                continue
            if (name, flag) in NOT_DEPS:
                continue
            inside = any(d.startswith(value.rstrip("/") + "/") for d in deps)
            if not (covered(value, deps) or covered(value, outs) or inside):
                problems.append(f"{name}: {flag} {value} is neither a dep nor an out")
    assert not problems, "\n".join(problems)


def test_data_a_stage_reads_outside_its_command_is_a_dep(stages):
    # probe reads the prepared meta.json (prior, number of classes); evaluate reads the
    # files of params `evaluate.features`, which must lie in the folder it depends on
    probe_deps = stages["probe"][1]
    assert any(d.startswith("data/prepared/") and d.endswith("/meta.json") for d in probe_deps)
    cmd, deps, _ = stages["evaluate"]
    words = shlex.split(cmd)
    assert words[words.index("--inputs") + 1] in deps


def test_report_code_never_reaches_pretrain(stages):
    pretrain = code_deps(stages["pretrain"][1])
    for name in ("report.py", "theory.py", "bounds.py", "external.py", "cli.py"):
        assert PACKAGE / name not in pretrain, name


def test_training_code_fingerprint_covers_pretrain_deps(stages):
    cmd, deps, _ = stages["pretrain"]
    fingerprinted = codedeps.reached_from_module(checkpoint.TRAINING_CODE)
    script_only = {script_of(cmd).resolve(), (PACKAGE / "stage.py").resolve()}
    assert fingerprinted == code_deps(deps) - script_only


def test_fingerprint_changes_with_any_reached_file(tmp_path):
    import shutil

    pkg = tmp_path / "surrogap"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    before = codedeps.fingerprint(checkpoint.TRAINING_CODE, pkg)
    assert before == codedeps.fingerprint(checkpoint.TRAINING_CODE, pkg)
    (pkg / "report.py").write_text("# not training code\n")
    assert codedeps.fingerprint(checkpoint.TRAINING_CODE, pkg) == before
    (pkg / "losses.py").write_text((pkg / "losses.py").read_text() + "\n# changed\n")
    assert codedeps.fingerprint(checkpoint.TRAINING_CODE, pkg) != before


# --------------------------------------------------------------------------- the walker
def test_walker_follows_every_import_form(tmp_path):
    pkg = tmp_path / "surrogap"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__", "a", "b", "c", "d", "e", "f", "unused"):
        (pkg / f"{name}.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "g.py").write_text("from . import h\nfrom ..e import thing\n")
    (pkg / "sub" / "h.py").write_text("")
    (pkg / "a.py").write_text(
        "from surrogap import b\n"
        "import surrogap.c\n"
        "def later():\n"
        "    from surrogap.d import something\n"
        "KIND_MODULES = {'x': 'surrogap.f'}\n"
        "NOT_A_REGISTRY = 'surrogap.unused'\n"
        "import surrogap.sub.g\n"
    )
    got = {p.relative_to(pkg).as_posix() for p in reached([pkg / "a.py"], pkg)}
    assert got == {
        "__init__.py",
        "a.py",
        "b.py",
        "c.py",
        "d.py",
        "e.py",
        "f.py",
        "sub/__init__.py",
        "sub/g.py",
        "sub/h.py",
    }


def test_imported_names_of_a_relative_import_in_a_package_init():
    names = imported_names("from . import x\nfrom .y import z\n", "surrogap.pkg", is_package=True)
    assert {"surrogap.pkg.x", "surrogap.pkg.y", "surrogap.pkg.y.z"} <= names
