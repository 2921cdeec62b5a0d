"""The README says what the project does: its commands and documented outputs, checked.

Each test reads the README text and compares it with what the code does now, so whoever
changes one (the calculator's table, a record key, a stage, the default sweep) updates the
other. The default params are read from the committed params.yaml (git HEAD) where there
is one: a user's edited working copy is not the project's claim.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from surrogap import cli
from surrogap.ops import bench

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(README) if kind == lang]


def section(title: str) -> str:
    """The README text under the heading `## <title>`, up to the next `## `."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


def committed_params() -> dict:
    """params.yaml as committed (HEAD), else the working copy outside a git checkout."""
    done = subprocess.run(
        ["git", "show", "HEAD:params.yaml"], cwd=ROOT, capture_output=True, text=True
    )
    text = done.stdout if done.returncode == 0 else (ROOT / "params.yaml").read_text()
    return yaml.safe_load(text)


def backticked_keys(text: str) -> list[str]:
    """`a, b, c` (a backticked, comma-separated list, maybe over lines) -> [a, b, c]."""
    return [k.strip() for k in " ".join(text.split()).split(",")]


# --------------------------------------------------------------------------- calculator
def test_calculator_example_prints_what_the_readme_shows():
    (console,) = [b for b in blocks("console") if b.startswith("$ surrogap bounds")]
    command, *expected = console.rstrip("\n").split("\n")
    argv = shlex.split(command.removeprefix("$ "))[1:]
    rc, out, err = run_cli(argv)
    assert rc == 0, err
    assert out.rstrip("\n").split("\n") == expected


def test_calculator_json_keys_are_the_documented_ones():
    text = section("The calculator")
    documented = backticked_keys(re.search(r"with the keys `([^`]*)`", text).group(1))
    rc, out, _ = run_cli(["bounds", "--k", "1", "64", "--classes", "10", "--loss", "3", "--json"])
    records = json.loads(out)
    assert rc == 0 and [list(r) for r in records] == [documented] * 2


def test_python_example_runs_and_agrees_with_the_table():
    (code,) = [b for b in blocks("python") if "from surrogap.theory import bounds" in b]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the README's own code
    (console,) = [b for b in blocks("console") if b.startswith("$ surrogap bounds")]
    head, _, *rows = console.rstrip("\n").split("\n")[2:]  # after the command and "C = .."
    column = head.split().index("upper_gap")
    table = {int(r.split()[0]): float(r.split()[column]) for r in rows}
    got = namespace["bounds"].upper_gap(list(table), num_classes=10)
    assert np.allclose(got, list(table.values()), rtol=1e-5)


# --------------------------------------------------------------------------- evaluate
def test_evaluate_command_parses_and_its_json_keys_are_documented(tmp_path):
    text = section("Bring your own representation")
    (console,) = [b for b in blocks("console") if b.startswith("$ surrogap evaluate")]
    argv = shlex.split(console.split("\n")[0].removeprefix("$ "))[1:]
    args = cli.build_parser().parse_args(argv)
    assert args.func.__name__ == "_cmd_evaluate" and args.k == [1, 4, 16, 64, 256]

    documented = backticked_keys(
        re.search(r"`--json` prints a list of records with the keys `([^`]*)`", text).group(1)
    )
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = rng.normal(size=(60, 4)) + 3 * np.eye(3, 4)[y]
    np.savez(tmp_path / "features.npz", x=x.astype(np.float32), y=y)
    rc, out, err = run_cli(
        ["evaluate", str(tmp_path / "features.npz"), "--k", "1", "4", "--repeats", "1", "--json"]
    )
    assert rc == 0, err
    assert [list(r) for r in json.loads(out)] == [documented] * 2
    # and what the README says about reports/results.csv holds
    results = (ROOT / "reports" / "results.csv").read_text().split("\n")[0].split(",")
    said_missing = ["dataset", "kind", "seed", "linear_acc", "linear_loss"]
    assert all(k in results and k not in documented for k in said_missing)
    added = ("vacuity", "n_train", "n_test", "dim", "why_null")  # "plus ..." in the README
    assert all(k not in results for k in added)
    assert all(k in results for k in documented if k not in added)


# --------------------------------------------------------------------------- pipeline
def test_stage_table_lists_the_stages_of_dvc_yaml():
    text = section("The pipeline")
    first_cells = re.findall(r"^\| (`[^|]+`) \|", text, re.MULTILINE)
    table = [name for cell in first_cells for name in re.findall(r"`([\w-]+)`", cell)]
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert sorted(table) == sorted(stages) and len(table) == len(set(table))


def test_quick_start_describes_the_default_sweep():
    text = section("Quick start")
    params = committed_params()
    named = re.search(r"\(datasets ([^;]*);", " ".join(text.split())).group(1)
    assert re.findall(r"`(\w+)`", named) == params["dataset"]
    ks = re.search(r"K in \{([\d, ]+)\}", " ".join(text.split())).group(1)
    assert [int(k) for k in ks.split(",")] == params["k"]
    words = {1: "one seed", 2: "two seeds", 3: "three seeds", 4: "four seeds", 5: "five seeds"}
    assert words[len(params["seed"])] in text


def test_sweep_examples_name_params_that_exist():
    params = committed_params()
    lines = [line for b in blocks("bash") for line in b.splitlines() if "-S '" in line]
    assert len(lines) >= 6  # the "Sweeping" block and the experiments that keep the report
    for line in lines:
        for key in re.findall(r"-S '([\w.]+)=", line):
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, (key, line)
                node = node[part]


def test_ci_runs_the_readme_test_command():
    (command,) = [b.strip() for b in blocks("bash") if "pytest" in b]
    install_and_test = command.split(".venv/bin/activate && ", 1)[1]
    assert install_and_test in (ROOT / ".ci" / "run").read_text()


def test_every_linked_file_exists():
    links = re.findall(r"\]\(((?!https?:)[^)#]+)\)", README)
    named = re.findall(r"`((?:docs|params|tools|plots|reports|\.ci)/[\w./-]+)`", README)
    assert links and named
    for path in {*links, *named}:
        if "<" in path or path.endswith("/"):
            continue
        assert (ROOT / path).exists(), path


def test_benchmark_table_lists_the_registered_benchmarks():
    text = section("Development")
    table = re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE)
    assert sorted(table) == sorted(bench.REGISTRY)


@pytest.mark.parametrize("name", ["paper-circle", "paper-cifar10", "paper-cifar100"])
def test_presets_the_readme_names_exist(name):
    assert f"`{name}.yaml`" in README and (ROOT / "params" / f"{name}.yaml").is_file()


def test_cpu_install_pins_a_matching_torch_pair():
    from surrogap.models.vision import torchvision_pair

    (line,) = [
        x for b in blocks("bash") for x in b.splitlines() if x.startswith("pip install torch")
    ]
    torch_v = re.search(r"torch==(\S+)", line).group(1)
    vision_v = re.search(r"torchvision==(\S+)", line).group(1)
    assert vision_v.startswith(torchvision_pair(torch_v) + ".")
    assert line.endswith("--index-url https://download.pytorch.org/whl/cpu")


def test_readme_names_every_subcommand():
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if hasattr(a, "choices") and a.choices]
    assert all(f"surrogap {name}" in README for name in sub.choices), sorted(sub.choices)


def test_bounds_loss_per_k_as_the_readme_says():
    """One --loss per --k value, in order, or one for all; the README's example and the
    refusal it quotes."""
    text = section("The calculator")
    example = re.search(r"`(surrogap bounds --k 4 16 --classes 10 --loss 1\.9 1\.5)`", text)
    rc, out, _ = run_cli([*shlex.split(example.group(1))[1:], "--json"])
    assert rc == 0 and [(r["k"], r["loss"]) for r in json.loads(out)] == [(4, 1.9), (16, 1.5)]
    rc, out, _ = run_cli(["bounds", "--k", "4", "16", "--classes", "10", "--loss", "1.9", "--json"])
    assert rc == 0 and [r["loss"] for r in json.loads(out)] == [1.9, 1.9]
    rc, _, err = run_cli(["bounds", "--k", "1", "4", "--classes", "10", "--loss", "2", "3", "1"])
    quoted = re.search(r"refused in one line \(`(.+?)`\)", " ".join(text.split())).group(1)
    assert rc == 2 and quoted in err


def test_evaluate_default_keys_are_the_documented_ones():
    from surrogap.estimators import features

    text = " ".join(section("Bring your own representation").split())
    npz = re.search(r"in a `\.npz`, the features under (.+?) and the labels under (.+?) \(", text)
    table = re.search(r"one list column (.+?) \(else .+?the labels in (.+?); a `\.npy`", text)
    names = [re.findall(r"`([^`]+)`", m.group(i)) for m in (npz, table) for i in (1, 2)]
    assert names == [
        list(features.FEATURE_KEYS),
        list(features.LABEL_KEYS),
        list(features.FEATURE_COLUMNS),
        list(features.LABEL_COLUMNS),
    ]
