"""A hostile params.yaml: no params value reaches a shell (the matrix stages' `cmd` is a
constant; each script finds its instance from DVC_STAGE), params.yaml is read as DVC reads
it (YAML 1.2), reading it is bounded (no anchors or aliases, bounded nesting, values quoted
in messages are cut short), and sizes and values that used to end in a traceback or an
allocation of the whole machine are one line naming the key. Every case runs a real stage
script (its main()); the end-to-end case runs `dvc repro` in a copy of the repository."""

from __future__ import annotations

import shutil

import pytest
import yaml
from conftest import ROOT, stage, tiny_params, write_params

from surrogap.core import config, instance, schema
from surrogap.core.errors import UserError


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def run_stage(name, params, tmp_path, monkeypatch, capsys, dvc_stage=None, argv=(), text=None):
    """stages/<name>.py's main() in `tmp_path` (a repository root) with `params` (or the
    params.yaml `text`) and DVC_STAGE set to `dvc_stage`: (exit status, stderr)."""
    monkeypatch.chdir(tmp_path)
    if text is None:
        write_params(tmp_path / "params.yaml", params)
    else:
        (tmp_path / "params.yaml").write_text(text)
    if dvc_stage is None:
        monkeypatch.delenv("DVC_STAGE", raising=False)
    else:
        monkeypatch.setenv("DVC_STAGE", dvc_stage)
    monkeypatch.delenv("DVC_ROOT", raising=False)  # no progress line
    code = stage(name).main(list(argv))
    return code, capsys.readouterr().err


def files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- DVC_STAGE
def test_key_builder_and_paths_equal_dvcs_own_expansion(tmp_path):
    """instance.keys builds each matrix stage's instance names exactly as DVC does
    (MatrixDefinition.normalized_iterable), for ints, floats in both notations and an int lr,
    and MATRIX names the lists dvc.yaml's matrix expands."""
    from dvc.repo import Repo

    params = {**tiny_params(), "k": [1, 4, 16], "seed": [0, 7], "lr": [0.03, 1e-05, 2]}
    params["dataset"] = ["circle", "norm_2"]
    params["norm_2"] = tiny_params()["circle"]
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    write_params(tmp_path / "params.yaml", params)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n")
    dvc_matrix = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    with Repo(str(tmp_path)) as repo:
        names = [st.addressing.split(":")[-1] for st in repo.index.stages]
    for name, lists in instance.MATRIX.items():
        assert tuple(dvc_matrix[name]["matrix"]) == lists, name
        keys = instance.keys({key: params[key] for key in lists})
        assert [n for n in names if n.startswith(f"{name}@")] == [f"{name}@{k}" for k in keys]
        for key in keys:  # every key resolves to its one instance, whose key it is
            inst = instance.resolve(params, name.removesuffix("-lr"), f"{name}@{key}")
            values = [getattr(inst, field) for field in lists]
            assert "-".join(instance.to_str(v) for v in values) == key
    inst = instance.resolve(params, "pretrain", "pretrain-lr@norm_2-16-1e-05")
    assert inst.paths() == {
        "data": "data/prepared/norm_2",
        "out": "data/pretrain/norm_2/k16-lr1e-05",
        "checkpoints": "data/checkpoints/norm_2/k16-lr1e-05",
    }
    assert instance.to_str(True) == "true" and instance.fragment("k", 2, [1]) == "k2"
    # DVC run from a subfolder prefixes the dvc.yaml path: `../dvc.yaml:prepare@circle`
    assert instance.resolve(params, "prepare", "../dvc.yaml:prepare@circle").dataset == "circle"


def test_prepare_finds_its_instance_from_dvc_stage(tmp_path, monkeypatch, capsys):
    params = {**tiny_params(), "seed": [0, 3]}
    code, err = run_stage("prepare", params, tmp_path, monkeypatch, capsys, "prepare@circle")
    assert code == 0, err
    assert {p.split("/")[3] for p in files_under(tmp_path) if p.startswith("data/")} == {"s0", "s3"}
    data = [p for p in files_under(tmp_path) if p != "params.yaml"]
    assert data and all(p.startswith(f"{schema.PREPARED_DIR}/circle/s") for p in data)


@pytest.mark.parametrize(
    ("name", "dvc_stage", "message"),
    [
        # a K the params lists do not hold: no instance matches
        (
            "pretrain",
            "pretrain@circle-7",
            "stage pretrain: DVC_STAGE is 'pretrain@circle-7': no instance of pretrain in the "
            "params lists dataset, k has the key 'circle-7'",
        ),
        # another stage's instance
        (
            "extract",
            "probe@circle-4",
            "stage extract: DVC_STAGE is 'probe@circle-4', expected extract@",
        ),
        (
            "probe",
            "probe-lr@circle-4-0.5",
            "stage probe: DVC_STAGE is 'probe-lr@circle-4-0.5': no instance of probe-lr",
        ),
        # neither DVC nor a run by hand
        ("prepare", None, "stage prepare: no --dataset given and DVC_STAGE is not set"),
    ],
)
def test_an_instance_dvc_stage_does_not_name_is_one_line(
    tmp_path, monkeypatch, capsys, name, dvc_stage, message
):
    code, err = run_stage(name, tiny_params(), tmp_path, monkeypatch, capsys, dvc_stage)
    assert code == 2 and one_line(err).startswith(message), err
    assert files_under(tmp_path) == ["params.yaml"]


def test_a_dataset_name_with_a_dash_or_shell_characters_is_refused(tmp_path, monkeypatch, capsys):
    for bad in ("my-circle", "circle$(touch PWNED)", "my circle"):
        params = tiny_params()
        params["dataset"] = [bad]
        params[bad] = params.pop("circle")
        code, err = run_stage("prepare", params, tmp_path, monkeypatch, capsys, f"prepare@{bad}")
        assert code == 2, err
        assert one_line(err) == (
            f"stage prepare: dataset[0]: got {bad!r}, allowed: a name of letters, digits and '_' "
            "that starts with a letter, at most 64 characters (no '-', no spaces)"
        )
        # by hand too
        code, err = run_stage(
            "prepare", params, tmp_path, monkeypatch, capsys, None,
            ["--dataset", bad, "--out", "o", "--root", "r"],
        )  # fmt: skip
        assert code == 2 and f"dataset: got {bad!r}, allowed: a name of letters" in one_line(err)
        assert files_under(tmp_path) == ["params.yaml"]
    assert not (tmp_path / "PWNED").exists()


def test_a_sweep_key_that_is_not_a_list_is_one_line(tmp_path, monkeypatch, capsys):
    # DVC itself stops on `k: 4` before any stage ("'Value' object is not iterable", the e2e
    # test below); a stage run with it anyway says what is wrong
    params = {**tiny_params(), "k": 4}
    code, err = run_stage("extract", params, tmp_path, monkeypatch, capsys, "extract@circle-4")
    assert code == 2 and one_line(err) == "stage extract: k: got 4, expected a list of integers"
    params = {**tiny_params(), "seed": "0"}
    code, err = run_stage("prepare", params, tmp_path, monkeypatch, capsys, "prepare@circle")
    assert (
        code == 2 and one_line(err) == "stage prepare: seed: got '0', expected a list of integers"
    )


def test_surrogap_sweep_checks_the_sweep_lists_before_dvc(tmp_path):
    # `surrogap sweep` expands dvc.yaml through DVC's API, where `k: 4` used to end in
    # DVC's TypeError traceback; it now stops before DVC (and before any worker starts)
    import subprocess
    import sys

    from repo_copy import env

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n")
    for params, expected in (
        ({**tiny_params(), "k": 4}, "surrogap sweep: k: got 4, expected a list of integers"),
        (
            {**tiny_params(), "dataset": ["my-circle"]},
            "surrogap sweep: dataset[0]: got 'my-circle', allowed: a name of letters",
        ),
    ):
        write_params(tmp_path / "params.yaml", params)
        result = subprocess.run(
            [sys.executable, "-m", "surrogap.cli", "sweep", "-j", "1"],
            cwd=tmp_path,
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2 and expected in one_line(result.stderr), result.stderr
        assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_a_shell_command_in_a_dataset_name_never_runs_under_dvc_repro(tmp_path):
    """The finding: a dataset section named "circle$(touch PWNED)" listed in `dataset` ran
    `touch` through dvc.yaml's cmd. Now `dvc repro` runs the constant command, the stage
    refuses the name in one line, and nothing named PWNED appears anywhere."""
    from repo_copy import dvc, make_repo

    bad = "circle$(touch PWNED)"
    params = tiny_params()
    params["dataset"] = [bad]
    params[bad] = params.pop("circle")
    repo = make_repo(tmp_path / "repo", params)
    result = dvc(repo, "repro", "prepare")
    assert result.returncode != 0
    assert f"stage prepare: dataset[0]: got {bad!r}, allowed: a name of letters" in result.stderr, (
        result.stdout + result.stderr
    )
    assert not list(tmp_path.rglob("PWNED")) and not (ROOT / "PWNED").exists()
    # `k: 4`: DVC stops before any stage with its own message
    write_params(repo / "params.yaml", {**tiny_params(), "k": 4})
    result = dvc(repo, "repro", "pretrain")
    assert result.returncode != 0 and "is not iterable" in result.stderr, result.stderr


# --------------------------------------------------------------------------- YAML 1.2
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("010", 10),  # YAML 1.1 (PyYAML): octal 8
        ("0o10", 8),  # YAML 1.1: the string '0o10'
        ("08", 8),  # YAML 1.1: the string '08'
        ("yes", "yes"),  # YAML 1.1: true
        ("off", "off"),  # YAML 1.1: false
        ("1:20", "1:20"),  # YAML 1.1: sexagesimal 80
        ("0b11", 3),
        ("1e-3", 0.001),  # YAML 1.1: the string '1e-3'
        ("1_000", 1000),
        ("0x1f", 31),
    ],
)
def test_params_are_read_as_dvc_reads_them(tmp_path, text, value):
    from dvc.utils.serialize import load_yaml

    path = tmp_path / "params.yaml"
    path.write_text(f"x: {text}\n")
    got = config.load_params(path)["x"]
    assert got == value and type(got) is type(value)
    assert load_yaml(str(path))["x"] == got  # DVC's own reading


def test_a_k_written_with_a_leading_zero_is_the_k_dvc_runs(tmp_path, monkeypatch, capsys):
    # `k: [1, 010]`: DVC names the instance extract@circle-10 (YAML 1.2: ten); the stage
    # finds it and looks for the runs of K = 10, not K = 8
    text = yaml.safe_dump({**tiny_params(), "k": [1]}).replace("k:\n- 1\n", "k: [1, 010]\n")
    assert "k: [1, 010]" in text
    code, err = run_stage(
        "prepare", None, tmp_path, monkeypatch, capsys, "prepare@circle", text=text
    )
    assert code == 0, err
    code, err = run_stage(
        "extract", None, tmp_path, monkeypatch, capsys, "extract@circle-10", text=text
    )
    assert code == 2 and "data/pretrain/circle/k10/s0/model.pt" in one_line(err), err


# --------------------------------------------------------------------------- bounded reading
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}]\n"
    for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "dataset: [circle]\n" + BOMB + "k: *i\n",
            "line 2: anchors and aliases (&name, *name) are not allowed in params.yaml",
        ),
        ("k: " + "[" * 40 + "]" * 40 + "\n", "line 1: nested deeper than 32 levels"),
        ("k: " + "1" * 5000 + "\n", "holds a value that cannot be read: Exceeds the limit"),
    ],
)
def test_reading_params_is_bounded(tmp_path, monkeypatch, capsys, text, message):
    code, err = run_stage("bounds", None, tmp_path, monkeypatch, capsys, None, text=text,
                          argv=["--probe-dir", "p", "--results", "r.csv", "--metrics", "m"])  # fmt: skip
    assert code == 2 and message in one_line(err), err
    assert len(err) < 400
    assert files_under(tmp_path) == ["params.yaml"]


def test_a_huge_value_is_quoted_cut_short(tmp_path, monkeypatch, capsys):
    params = tiny_params()
    params["circle"]["data"]["kind"] = "x" * 100_000
    params["circle"]["train"]["lr"] = list(
        range(50_000)
    )  # the file stays under 1 MiB (MAX_PARAMS_BYTES)
    code, err = run_stage("prepare", params, tmp_path, monkeypatch, capsys, "prepare@circle")
    line = one_line(err)
    assert (
        code == 2
        and line.startswith("stage prepare: circle.data.kind: got 'xxx")
        and len(line) < 300
    )
    assert (
        config.shown(list(range(10**6))).endswith("...]") and len(config.shown("y" * 10**6)) <= 83
    )
    with pytest.raises(UserError) as exc:
        config.parse(config.Grid, {"dataset": ["circle"], "k": [[0] * 10**5], "seed": [0]}, "")
    assert len(str(exc.value)) < 200
    # a string of params is at most 4096 characters; a longer name is refused cut short
    params = tiny_params()
    params["circle"]["train"]["optimizer"] = "a" * 5000
    code, err = run_stage("pretrain", params, tmp_path, monkeypatch, capsys, "pretrain@circle-4")
    assert code == 2 and one_line(err).startswith(
        "stage pretrain: circle.train.optimizer: got a string of 5000 characters ('aaa"
    )
    assert one_line(err).endswith("allowed: at most 4096") and len(err) < 200
    params = {**tiny_params(), "dataset": ["c" * 65]}
    code, err = run_stage("prepare", params, tmp_path, monkeypatch, capsys, "prepare@circle")
    assert code == 2 and "at most 64 characters" in one_line(err) and len(err) < 300


# --------------------------------------------------------------------------- values and sizes
@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("prepare", ("data", "kind", ["circle"]), "stage prepare: circle.data.kind: got ['circle'], allowed: cifar10, cifar100, circle"),
        ("pretrain", ("encoder", "name", ["mlp"]), "stage pretrain: circle.encoder.name: got ['mlp'], allowed: bag, convnet"),
        ("prepare", ("data", "per_class", 10**9), "stage prepare: circle.data: classes x per_class = 4 x 1000000000 points needs about 373 GiB of memory (400000000000 bytes), "),
    ],
)  # fmt: skip
def test_a_bad_value_or_size_is_one_line_before_any_work(
    tmp_path, monkeypatch, capsys, name, change, message
):
    params = tiny_params()
    block, key, value = change
    params["circle"][block][key] = value
    code, err = run_stage(name, params, tmp_path, monkeypatch, capsys, {
        "prepare": "prepare@circle", "pretrain": "pretrain@circle-4"}[name])  # fmt: skip
    assert code == 2 and one_line(err).startswith(message), err
    assert files_under(tmp_path) == ["params.yaml"]


def test_a_generated_corpus_beyond_the_memory_is_one_line(tmp_path, monkeypatch, capsys):
    params = tiny_params()
    params["circle"]["data"] = {"kind": "topics", "classes": 10, "sentences_per_class": 10**10}
    code, err = run_stage("prepare", params, tmp_path, monkeypatch, capsys, "prepare@circle")
    assert code == 2 and one_line(err).startswith(
        "stage prepare: circle.data: classes x sentences_per_class x max_len = 10 x 10000000000 "
        "x 24 tokens and vocab_size 5000 needs about"
    ), err
    assert files_under(tmp_path) == ["params.yaml"]  # not even the generated corpus


def test_a_seed_beyond_torch_is_refused_by_every_stage_that_reads_it(tmp_path, monkeypatch, capsys):
    params = {**tiny_params(), "seed": [2**64]}
    by_hand = ["--dataset", "circle", "--k", "4", "--data", "d", "--models", "m", "--out", "o"]
    for name, dvc_stage, argv in (
        ("prepare", "prepare@circle", ()),
        ("pretrain", "pretrain@circle-4", ()),
        ("probe", "probe@circle-4", ()),
        ("extract", None, by_hand),  # by hand: the `seed` list alone is read
    ):
        code, err = run_stage(name, params, tmp_path, monkeypatch, capsys, dvc_stage, argv)
        assert code == 2 and one_line(err) == (
            f"stage {name}: seed: got [18446744073709551616], allowed: a non-empty list of "
            "integers in 0..4294967295 (2**32 - 1)"
        ), err
    assert files_under(tmp_path) == ["params.yaml"]


def test_an_encoder_too_large_for_memory_is_one_line(tmp_path, monkeypatch, capsys):
    params = tiny_params()
    code, err = run_stage("prepare", params, tmp_path, monkeypatch, capsys, "prepare@circle")
    assert code == 0, err
    before = files_under(tmp_path)
    for widths, message in (
        ([10**7, 10**7], "stage pretrain: circle.encoder: an encoder of 100000030000000 parameters needs about"),
        ([10**12, 10**12], "stage pretrain: circle.encoder: its sizes are too large to build"),
    ):  # fmt: skip
        params["circle"]["encoder"]["widths"] = widths
        code, err = run_stage(
            "pretrain", params, tmp_path, monkeypatch, capsys, "pretrain@circle-4"
        )
        assert code == 2 and one_line(err).startswith(message), err
        assert files_under(tmp_path) == before  # no run folder, no checkpoint
