"""dvc.yaml's deps are true: each stage lists exactly the code deps that
surrogap.core.codedeps.stage_deps gives for its script (the script, the package's
__init__.py, the pipeline modules it reaches, and every layer folder it reaches a file of,
whole), those cover every project file the script reaches (following imports, at module level
and inside functions), and every path its command names is one of its deps or outs. No layer
imports a layer above it. The checkpoint fingerprint hashes the files pretrain's deps cover."""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path

import pytest
from conftest import tiny_params

from surrogap.core import codedeps, instance, schema
from surrogap.core.codedeps import imported_names, reached
from surrogap.training import checkpoint

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "surrogap"
CODE_ROOTS = ("src", "stages")
MAX_CODE_DEPS = 8
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


def code_dep_paths(deps: list[str]) -> list[str]:
    """The code deps (under src/ or stages/) among `deps`, in their order."""
    return [d for d in deps if d.startswith(tuple(f"{r}/" for r in CODE_ROOTS))]


def code_deps(deps: list[str]) -> set[Path]:
    """Every .py file the code deps name (a folder names all of them)."""
    files = set()
    for d in code_dep_paths(deps):
        path = ROOT / d
        assert path.exists(), f"dep {d} does not exist"
        files |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return {f.resolve() for f in files if "__pycache__" not in f.parts}


def rel(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


def test_every_script_of_stages_is_a_stage(stages):
    scripts = {script_of(cmd).stem for cmd, _, _ in stages.values()}
    assert scripts == {p.stem for p in (ROOT / "stages").glob("*.py")}


def test_deps_list_exactly_the_code_each_stage_reaches(stages):
    problems = []
    for name, (cmd, deps, _) in sorted(stages.items()):
        script = script_of(cmd)
        want = [rel(p) for p in codedeps.stage_deps(script)]
        have = code_dep_paths(deps)
        if have != want:
            problems.append(f"{name}: lists {have}, stage_deps gives {want}")
        # what the script reaches is covered; every listed dep covers a reached file
        need = {p for p in reached([script]) if p.is_relative_to(ROOT)}
        for p in sorted(need - code_deps(deps)):
            problems.append(f"{name}: reaches {rel(p)} but does not list it")
        for d in have:
            path = ROOT / d
            inside = {path.resolve()} if path.is_file() else codedeps.files_of([path])
            if not inside & need:
                problems.append(f"{name}: lists {d} but never reaches a file of it")
    assert not problems, "\n".join(problems)


def test_deps_name_layer_folders_whole_and_pipeline_modules_one_by_one(stages):
    layers = {f"src/surrogap/{layer}" for layer in codedeps.LAYERS}
    for name, (_, deps, _) in sorted(stages.items()):
        for d in code_dep_paths(deps):
            if d.startswith("stages/") or d == "src/surrogap/__init__.py":
                continue
            if d.startswith("src/surrogap/pipeline/"):
                assert (ROOT / d).is_file(), (name, d)
            else:
                assert d in layers, (name, d)


def test_every_stage_has_at_most_eight_code_deps(stages):
    too_many = {
        name: code_dep_paths(deps)
        for name, (_, deps, _) in stages.items()
        if len(code_dep_paths(deps)) > MAX_CODE_DEPS
    }
    assert not too_many, too_many
    assert len(code_dep_paths(stages["pretrain"][1])) <= MAX_CODE_DEPS


def test_extract_needs_no_training_and_evaluate_no_plots_or_report(stages):
    for name in ("extract", "extract-lr"):
        deps = code_dep_paths(stages[name][1])
        assert not covered("src/surrogap/training", deps), (name, deps)
        assert not any(d.startswith("src/surrogap/training") for d in deps), (name, deps)
    deps = code_dep_paths(stages["evaluate"][1])
    for folder in ("src/surrogap/plots", "src/surrogap/report"):
        assert not any(d == folder or d.startswith(folder + "/") for d in deps), (folder, deps)


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
    # probe reads each seed's prepared meta.json (prior, number of classes) from the
    # dataset's prepared folder, which must be a dep; evaluate reads the files of params
    # `evaluate.features`, which must lie in the folder it depends on
    for name in ("probe", "probe-lr"):
        _, deps, _ = stages[name]
        data = schema.stage_paths(name, "circle", 4, lr=0.03)["data"]
        assert data == f"{schema.PREPARED_DIR}/circle" and data in deps, (name, data, deps)
    cmd, deps, _ = stages["evaluate"]
    words = shlex.split(cmd)
    assert words[words.index("--inputs") + 1] in deps


def test_matrix_stages_take_no_params_value_on_their_command_line(dvc_index):
    # the cmd of a matrix stage is a constant: no `${item...}` reaches the shell
    for st in dvc_index:
        base = st.addressing.split(":")[-1].split("@")[0]
        if base in instance.MATRIX:
            assert st.cmd == f"python stages/{base.removesuffix('-lr')}.py", (st.addressing, st.cmd)


def test_every_instance_resolves_to_its_deps_and_outs(dvc_index):
    """The script of each matrix instance, given DVC's DVC_STAGE, finds exactly its instance
    and derives exactly the data paths dvc.yaml lists as its deps and outs."""
    params = {**tiny_params(), "lr": [0.03]}
    seen = set()
    for st in dvc_index:
        name = st.addressing.split(":")[-1]
        base = name.split("@")[0]
        if base not in instance.MATRIX:
            continue
        script = base.removesuffix("-lr")
        inst = instance.resolve(params, script, name)
        seen.add(base)
        paths = inst.paths()
        outs = [str(o.def_path) for o in st.outs]
        data_deps = [str(d.def_path) for d in st.deps if not hasattr(d, "params")]
        data_deps = [d for d in data_deps if not d.startswith(CODE_ROOTS)]
        assert outs == [paths["out"]], (name, outs, paths)
        inputs = {
            v for flag, v in paths.items() if flag != "out" and (base, f"--{flag}") not in NOT_DEPS
        }
        assert set(data_deps) == inputs, (name, data_deps, paths)
    assert seen == set(instance.MATRIX)


def test_report_code_never_reaches_pretrain(stages):
    pretrain = code_deps(stages["pretrain"][1])
    never = [
        PACKAGE / "cli.py",
        PACKAGE / "pipeline" / "report.py",
        PACKAGE / "pipeline" / "theory.py",
        PACKAGE / "pipeline" / "bounds.py",
        PACKAGE / "pipeline" / "evaluate.py",
        *codedeps.files_of([PACKAGE / "theory", PACKAGE / "plots", PACKAGE / "report"]),
    ]
    for path in never:
        assert path.resolve() not in pretrain, rel(path)


def test_training_code_fingerprint_covers_pretrain_deps(stages):
    assert checkpoint.TRAINING_CODE == "surrogap.pipeline.pretrain"
    cmd, deps, _ = stages["pretrain"]
    reached_files = codedeps.reached_from_module(checkpoint.TRAINING_CODE)
    fingerprinted = codedeps.files_of(codedeps.deps_of(reached_files))
    assert fingerprinted == code_deps(deps) - {script_of(cmd).resolve()}


def test_fingerprint_changes_with_any_reached_file(tmp_path):
    import shutil

    pkg = tmp_path / "surrogap"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    before = codedeps.fingerprint(checkpoint.TRAINING_CODE, pkg)
    assert before == codedeps.fingerprint(checkpoint.TRAINING_CODE, pkg)
    # code pretrain's deps do not cover: its layers, the other stages' modules, the cli
    for name in ("report/markdown.py", "plots/style.py", "pipeline/report.py", "cli.py"):
        (pkg / name).write_text("# not training code\n")
        assert codedeps.fingerprint(checkpoint.TRAINING_CODE, pkg) == before, name
    changed = before
    for name in ("training/losses.py", "pipeline/pretrain.py", "core/io.py"):
        (pkg / name).write_text((pkg / name).read_text() + "\n# changed\n")
        now = codedeps.fingerprint(checkpoint.TRAINING_CODE, pkg)
        assert now != changed, name
        changed = now
    # a covered layer folder counts whole: a file pretrain never imports, or a new file
    (pkg / "estimators" / "external.py").write_text("# changed\n")
    now = codedeps.fingerprint(checkpoint.TRAINING_CODE, pkg)
    assert now != changed
    (pkg / "training" / "new_module.py").write_text("X = 1\n")
    assert codedeps.fingerprint(checkpoint.TRAINING_CODE, pkg) != now


# --------------------------------------------------------------------------- the layers
def layer_of_name(name: str) -> str | None:
    """The layer of the project module `name` (dotted), or None: the package root or a
    name that is no module of it (an attribute of the root, like __version__)."""
    parts = name.split(".")
    if parts[0] != codedeps.PACKAGE or len(parts) < 2:
        return None
    if parts[1] in codedeps.LAYERS:
        return parts[1]
    if codedeps.module_file(name, PACKAGE) is not None:
        return parts[1]  # a root module outside the layers, like cli: above them all
    return None


def package_modules() -> list[Path]:
    return sorted(f for f in PACKAGE.rglob("*.py") if "__pycache__" not in f.parts)


def test_every_file_of_the_package_lies_in_a_layer_but_the_root_two():
    outside = {
        f.relative_to(PACKAGE).as_posix()
        for f in package_modules()
        if codedeps.layer_of(f, PACKAGE) is None
    }
    assert outside == {"__init__.py", "cli.py"}
    folders = {d.name for d in PACKAGE.iterdir() if d.is_dir() and d.name != "__pycache__"}
    assert folders == set(codedeps.LAYERS)


def test_no_module_imports_from_a_later_layer():
    order = {layer: i for i, layer in enumerate(codedeps.LAYERS)}
    problems = []
    for path in package_modules():
        rel_path = path.relative_to(PACKAGE).as_posix()
        if rel_path == "cli.py":
            continue  # sits above every layer
        current = codedeps.module_name(path, PACKAGE)
        names = imported_names(path.read_text(), current, path.name == "__init__.py")
        project = {n for n in names if n.split(".")[0] == codedeps.PACKAGE}
        if rel_path == "__init__.py":
            assert not project, f"the package root imports {sorted(project)}"
            continue
        own = codedeps.layer_of(path, PACKAGE)
        assert own is not None, rel_path
        for name in sorted(project):
            layer = layer_of_name(name)
            if layer is None:
                continue
            if layer not in order or order[layer] > order[own]:
                problems.append(f"{rel_path} ({own}) imports {name} ({layer})")
    assert not problems, "\n".join(problems)


def test_the_layer_check_sees_a_late_import_inside_a_function():
    source = "def f():\n    from surrogap.report import stats\n"
    names = imported_names(source, "surrogap.theory.bounds")
    assert {layer_of_name(n) for n in names} >= {"report"}
    assert layer_of_name("surrogap.cli") == "cli"
    assert layer_of_name("surrogap.__version__") is None


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


def test_dvc_parses_its_yaml_with_the_c_parser(monkeypatch):
    """dvc.lock and params.yaml are parsed once per stage instance: DVC's loader must find
    ruamel.yaml's C parser (the `ruamel.yaml.clib` dependency), about 5x the pure one."""
    import ruamel.yaml
    from dvc.utils.serialize._yaml import parse_yaml

    made = []

    class Spy(ruamel.yaml.YAML):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(ruamel.yaml, "YAML", Spy)  # DVC imports YAML at each call
    assert parse_yaml("stages:\n  a: {cmd: x}\n", "dvc.lock") == {"stages": {"a": {"cmd": "x"}}}
    assert made, "DVC did not build its loader from ruamel.yaml.YAML"
    assert made[-1].Parser.__name__ == "CParser", made[-1].Parser
