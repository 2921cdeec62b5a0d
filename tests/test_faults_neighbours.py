"""Files between stages checked against their neighbours (docs/FAULTS.md, "Files between
stages checked against their neighbours"): a file edited, cut short or copied in from
another run is refused by the stage that reads it, in one line naming the file and the
disagreement, with exit status 2 and nothing written; before, each of these gave a wrong
result with exit status 0 or a traceback.

The fixture `mini` runs the real stages on the tiny circle run (extract, probe, bounds,
select_lr, report) in the layout of dvc.yaml; each test tampers with a copy of it and runs
the stage that reads the tampered file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli_args, one_line, stage, tiny_params, write_params

from surrogap.models.inputs import load_prepared
from surrogap.pipeline import prepare, pretrain

torch.set_num_threads(1)


def _stages(root: Path, name: str) -> list[str]:
    """The command line of stage `name` on the mini pipeline under `root` (dvc.yaml's)."""
    d, r = root / "data", root / "reports"
    params = root / "params.yaml"
    group = {"dataset": "circle", "k": 4}
    return {
        "extract": cli_args(
            params=params,
            **group,
            data=d / "prepared/circle",
            models=d / "pretrain/circle/k4",
            out=d / "features/circle/k4",
        ),
        "probe": cli_args(
            params=params,
            **group,
            data=d / "prepared/circle",
            features=d / "features/circle/k4",
            out=d / "probe/circle/k4",
        ),
        "bounds": cli_args(
            params=params,
            probe_dir=d / "probe",
            prepared_dir=d / "prepared",
            results=r / "results.csv",
            metrics=r / "metrics",
        ),
        "select_lr": cli_args(results=r / "results.csv", out=r / "selected.csv"),
        "report": cli_args(
            params=params,
            results=r / "selected.csv",
            pretrain_dir=d / "pretrain",
            prepared_dir=d / "prepared",
            probe_dir=d / "probe",
            theory_dir=r / "theory",
            out=r / "report.md",
            figures_dir=r / "figures",
        ),
    }[name]


def _run(root: Path, name: str) -> int:
    return stage(name).main(_stages(root, name))


def _refused(capsys, root: Path, name: str) -> str:
    """Stage `name` must exit 2 with one stderr line: that line."""
    capsys.readouterr()
    assert _run(root, name) == 2
    return one_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """The tiny run through every stage after pretrain, as dvc.yaml lays it out."""
    root = tmp_path_factory.mktemp("mini")
    params = tiny_params()
    write_params(root / "params.yaml", params)
    d = root / "data"
    prepare.run(params, "circle", d / "prepared/circle", root / "raw")
    run = d / "pretrain/circle/k4/s0"
    pretrain.run(params, "circle", 4, 0, d / "prepared/circle/s0", run, root / "ckpt")
    (root / "reports/theory").mkdir(parents=True)
    for name in ("extract", "probe", "bounds", "select_lr"):
        assert _run(root, name) == 0, name
    return root


@pytest.fixture
def copy(mini, tmp_path):
    """A fresh copy of the mini pipeline to tamper with."""
    root = tmp_path / "mini"
    shutil.copytree(mini, root)
    (root / "params.yaml").write_text((mini / "params.yaml").read_text())
    return root


def _unchanged(path: Path, before: bytes | None) -> bool:
    return (path.read_bytes() if path.exists() else None) == before


# --------------------------------------------------------------------------- probe records
RECORD = Path("data/probe/circle/k4/s0.json")


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        ({"classes": 7}, "says classes 7 but '{meta}' says num_classes 4"),
        ({"k": 5}, "says k 5 but it is the record of run k4-s0 of circle (k 4)"),
        ({"seed": 3}, "says seed 3 but it is the record of run k4-s0 of circle (seed 0)"),
        ({"dataset": "norm"}, "says dataset 'norm' but it is the record of run k4-s0"),
        ({"lr": 0.03}, "says lr 0.03 but it is the record of run k4-s0 of circle (lr none"),
        ({"kind": "norm"}, "says kind 'norm' but '{meta}' says kind 'circle'"),
        ({"prior": [0.1, 0.2, 0.3, 0.4]}, "says prior [0.1, 0.2, 0.3, 0.4] but '{meta}'"),
    ],
)
def test_probe_record_disagreeing_with_its_run_or_meta_json_is_refused(copy, capsys, edit, says):
    path = copy / RECORD
    record = json.loads(path.read_text())
    results = copy / "reports/results.csv"
    before = results.read_bytes()
    assert _run(copy, "bounds") == 0 and results.read_bytes() == before  # untouched: same table
    path.write_text(json.dumps({**record, **edit}))
    msg = _refused(capsys, copy, "bounds")
    meta = copy / "data/prepared/circle/s0/meta.json"
    assert msg.startswith(f"stage bounds: probe record {str(path)!r} "), msg
    assert says.format(meta=meta) in msg, msg
    assert msg.endswith("; rerun the probe stage of this run")
    assert results.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("CUT", "is unreadable (JSONDecodeError: "),
        ("[1, 2]", "holds a list, allowed: an object"),
        ("DROP contrastive_loss", "lacks the keys contrastive_loss"),
        ("SET contrastive_loss=-1", ": contrastive_loss is -1, allowed: a finite number >= 0"),
        ("SET mean_acc='abc'", ": mean_acc is 'abc', allowed: a finite number in [0, 1]"),
        ("SET supervised_loss=None", ": supervised_loss is None, allowed: a finite number >= 0"),
    ],
)
def test_probe_record_unreadable_or_of_the_wrong_type_is_one_line(copy, capsys, content, why):
    path = copy / RECORD
    text = path.read_text()
    record = json.loads(text)
    if content == "CUT":
        content = text[: len(text) // 2]
    elif content.startswith("DROP "):
        content = json.dumps({k: v for k, v in record.items() if k != content[5:]})
    elif content.startswith("SET "):
        key, value = content[4:].split("=", 1)
        content = json.dumps({**record, key: eval(value)})  # a literal of the test table
    path.write_text(content)
    msg = _refused(capsys, copy, "bounds")
    assert msg.startswith(f"stage bounds: probe record {str(path)!r}"), msg
    assert why in msg, msg


# --------------------------------------------------------------------------- model.pt
def test_model_of_another_run_is_refused_by_extract(copy, capsys):
    features = copy / "data/features/circle/k4"
    before = sorted(p.read_bytes() for p in features.iterdir())
    model = copy / "data/pretrain/circle/k4/s0/model.pt"
    # a K = 1 run of the same dataset and seed, its model.pt copied over K = 4's
    params = tiny_params()
    other = copy / "k1"
    pretrain.run(params, "circle", 1, 0, copy / "data/prepared/circle/s0", other, copy / "c")
    shutil.copy(other / "model.pt", model)
    msg = _refused(capsys, copy, "extract")
    assert msg == (
        f"stage extract: model {str(model)!r} was trained with k = 1, but this instance is "
        "k = 4; rerun the pretrain stage of this run"
    )
    assert sorted(p.read_bytes() for p in features.iterdir()) == before


def test_model_of_another_lr_is_refused_by_extract(copy, capsys):
    # the built run used the section's train.lr (0.01); as the instance of the lr 0.03 group
    argv = [*_stages(copy, "extract"), "--lr", "0.03"]
    assert stage("extract").main(argv) == 2
    msg = one_line(capsys.readouterr().err)
    assert "was trained with train.lr = 0.01, but this instance is train.lr = 0.03" in msg
    assert stage("extract").main([*_stages(copy, "extract"), "--lr", "0.01"]) == 0


def test_model_trained_on_other_data_is_refused_by_extract(copy, capsys):
    # a model.pt whose run record says it saw 10x the training samples of this prepared data
    model = copy / "data/pretrain/circle/k4/s0/model.pt"
    state = torch.load(model, weights_only=True)
    sizes = state["run"]["data"]["sizes"]
    state["run"]["data"]["sizes"] = {**sizes, "train": sizes["train"] * 10}
    torch.save(state, model)
    msg = _refused(capsys, copy, "extract")
    assert msg.startswith(f"stage extract: model {str(model)!r} was trained on data with sizes = ")
    assert f"but its prepared meta.json has sizes = {sizes!r}" in msg


def test_features_of_another_seed_are_refused_by_probe(copy, capsys):
    # the same arrays in another order: what features of another seed's split look like
    path = copy / "data/features/circle/k4/s0.npz"
    with np.load(path) as f:
        arrays = dict(f)
    order = np.random.default_rng(1).permutation(arrays["test_y"].size)
    arrays["test_x"], arrays["test_y"] = arrays["test_x"][order], arrays["test_y"][order]
    np.savez(path, **arrays)
    before = (copy / "data/probe/circle/k4/s0.json").read_bytes()
    msg = _refused(capsys, copy, "probe")
    test_npz = copy / "data/prepared/circle/s0/test.npz"
    assert msg == (
        f"stage probe: features {str(path)!r}: test_y are not the labels of "
        f"{str(test_npz)!r} (features of another seed or dataset?); rerun the extract stage"
    )
    assert (copy / "data/probe/circle/k4/s0.json").read_bytes() == before


# --------------------------------------------------------------------------- prepared data
def _tamper_split(folder: Path, split: str, change) -> None:
    path = folder / f"{split}.npz"
    with np.load(path) as f:
        arrays = dict(f)
    change(arrays)
    np.savez(path, **arrays)


def _tamper_meta(folder: Path, change) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    (folder / "meta.json").write_text(json.dumps(meta))


def _set(key, value):
    return lambda a: a.__setitem__(key, value(a))


PREPARED_CASES = {
    "labels beyond num_classes": (
        "meta",
        _set("num_classes", lambda m: 2),
        "train.npz' holds label 2, allowed: 0..1 ('{meta}' num_classes is 2)",
    ),
    "label 25": (
        "train",
        lambda a: a["y"].__setitem__(0, 25),
        "train.npz' holds label 25, allowed: 0..3 ('{meta}' num_classes is 4)",
    ),
    "label -1": (
        "val",
        lambda a: a["y"].__setitem__(0, -1),
        "val.npz' holds label -1, allowed: 0..3",
    ),
    "key x missing": ("train", lambda a: a.pop("x"), "train.npz' lacks the arrays x ("),
    "x with 3 columns": (
        "train",
        _set("x", lambda a: np.hstack([a["x"], a["x"][:, :1]])),
        "train.npz' x is float32 of shape (96, 3), allowed: float (96, 2)",
    ),
    "test x with 1 column": (
        "test",
        _set("x", lambda a: a["x"][:, :1]),
        "test.npz' x is float32 of shape (32, 1), allowed: float (32, 2)",
    ),
    "another dataset's meta.json": (
        "meta",
        lambda m: m.update(dataset="norm", kind="norm"),
        "'{meta}' says dataset 'norm', but this run is dataset 'circle': the folder holds "
        "another dataset's prepared data",
    ),
    "30 classes declared": (
        "meta",
        _set("num_classes", lambda m: 30),
        "'{meta}' num_classes is 30 but '{folder}/train.npz' has no sample of class 4",
    ),
    "sizes inflated": (
        "meta",
        lambda m: m["sizes"].update(train=m["sizes"]["train"] * 10),
        "'{meta}' sizes.train is 960 but '{folder}/train.npz' holds 96 samples",
    ),
}


OUTPUTS = {
    "extract": "data/features/circle/k4",
    "probe": "data/probe/circle/k4",
    "bounds": "reports",
}


@pytest.mark.parametrize("name", list(OUTPUTS))
@pytest.mark.parametrize("case", list(PREPARED_CASES))
def test_prepared_data_disagreeing_with_meta_json_is_one_line(copy, capsys, name, case):
    folder = copy / "data/prepared/circle/s0"
    where, change, says = PREPARED_CASES[case]
    if where == "meta":
        _tamper_meta(folder, change)
    else:
        _tamper_split(folder, where, change)
    out = copy / OUTPUTS[name]
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir() if p.is_file())
    msg = _refused(capsys, copy, name)
    assert msg.startswith(f"stage {name}: "), msg
    assert says.format(meta=folder / "meta.json", folder=folder) in msg, msg
    assert msg.endswith(
        "the prepared data was changed after the prepare stage: rerun `dvc repro prepare` "
        "(or delete the folder first)"
    )
    assert sorted((p.name, p.read_bytes()) for p in out.iterdir() if p.is_file()) == before


def test_pretrain_refuses_prepared_data_disagreeing_with_meta_json(copy, capsys):
    folder = copy / "data/prepared/circle/s0"
    _tamper_split(folder, "test", _set("x", lambda a: a["x"][:, :1]))
    argv = cli_args(
        params=copy / "params.yaml",
        dataset="circle",
        k=4,
        seed=0,
        data=folder.parent,
        out=copy / "run",
        checkpoints=copy / "ckpt-refused",  # mini/ckpt keeps the fixture run's final checkpoint
    )
    assert stage("pretrain").main(argv) == 2
    msg = one_line(capsys.readouterr().err)
    assert "test.npz' x is float32 of shape (32, 1), allowed: float (32, 2)" in msg
    assert not (copy / "run").exists() and not (copy / "ckpt-refused").exists()


def test_report_refuses_inflated_sizes_in_meta_json(copy, capsys):
    folder = copy / "data/prepared/circle/s0"
    _tamper_meta(folder, lambda m: m["sizes"].update(test=m["sizes"]["test"] * 10))
    msg = _refused(capsys, copy, "report")
    assert f"'{folder / 'meta.json'}' sizes.test is 320 but '{folder / 'test.npz'}' holds 32" in msg
    assert not (copy / "reports/report.md").exists()


# --------------------------------------------------------------------------- CSV tables
def _edit_csv(path: Path, column: str, value: str, row: int = 0) -> None:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row + 1].split(",")
    cells[header.index(column)] = value
    lines[row + 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def test_select_lr_refuses_a_value_of_the_wrong_type(copy, capsys):
    results, selected = copy / "reports/results.csv", copy / "reports/selected.csv"
    before = selected.read_bytes()
    _edit_csv(results, "val_mean_acc", "abc")
    msg = _refused(capsys, copy, "select_lr")
    assert msg == (
        f"stage select_lr: results file {str(results)!r} row 1, column 'val_mean_acc': "
        "'abc', allowed: a finite number; rerun the bounds stage"
    )
    assert selected.read_bytes() == before


@pytest.mark.parametrize(
    ("column", "value", "allowed"),
    [
        ("contrastive_loss", "", "NaN or empty, allowed: a finite number"),
        ("contrastive_loss", "nan", "NaN or empty, allowed: a finite number"),
        ("k", "4.5", "4.5, allowed: an integer"),
        ("holds", "maybe", "'maybe', allowed: True or False"),
        ("bao_upper", "", "NaN or empty, allowed: a number (not NaN)"),
    ],
)
def test_report_refuses_a_missing_number_in_selected_csv(copy, capsys, column, value, allowed):
    selected = copy / "reports/selected.csv"
    _edit_csv(selected, column, value)
    msg = _refused(capsys, copy, "report")
    assert msg == (
        f"stage report: results file {str(selected)!r} row 1, column {column!r}: {allowed}; "
        "rerun the select_lr stage"
    )
    assert not (copy / "reports/report.md").exists()


def test_valid_tables_read_back_as_written(copy):
    """select_lr on the bounds stage's table writes the same bytes (no lr grid): the typed
    reader changes no value."""
    assert (copy / "reports/selected.csv").read_bytes() == (
        copy / "reports/results.csv"
    ).read_bytes()


# --------------------------------------------------------------------------- trajectories
TRAJECTORY = Path("data/pretrain/circle/k4/s0/trajectory.csv")


@pytest.mark.parametrize(
    ("cut", "says"),
    [
        ("last row", "it ends at epoch 1, expected 2 (train_info.json's epochs)"),
        ("mid row", "row 3, column 'val_contrastive_loss': NaN or empty, allowed: a finite number"),
        ("first row", "row 1 is epoch 1, expected 0 (train_info.json's epochs)"),
    ],
)
def test_report_refuses_a_cut_trajectory(copy, capsys, cut, says):
    path = copy / TRAJECTORY
    lines = path.read_text().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["epoch", "0", "1", "2"]  # 2 epochs, every one
    if cut == "last row":
        kept = lines[:-1]
    elif cut == "mid row":
        kept = [*lines[:-1], lines[-1][: lines[-1].index(",") + 5]]
    else:
        kept = [lines[0], *lines[2:]]
    path.write_text("\n".join(kept) + "\n")
    msg = _refused(capsys, copy, "report")
    assert msg.startswith("stage report: trajectory "), msg
    assert str(path) in msg and says in msg, msg
    assert msg.endswith("rerun the pretrain stage of this run")


# --------------------------------------------------------------------------- per-point arrays
def test_report_refuses_a_truncated_per_point_file(copy, capsys):
    path = copy / "data/probe/circle/k4/s0.npz"
    path.write_bytes(path.read_bytes()[:100])
    msg = _refused(capsys, copy, "report")
    assert msg == (
        f"stage report: per-point file {str(path)!r} is unreadable (BadZipFile: not a .npz or "
        "cut short); "
        "rerun the probe stage of this run"
    )


def test_the_untampered_mini_pipeline_reports(copy):
    """The baseline of every refusal above: the same files untouched give a report."""
    assert _run(copy, "report") == 0
    assert "circle" in (copy / "reports/report.md").read_text()


# --------------------------------------------------------------------------- text data
@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda a: a["tokens"].__setitem__(3, 10**6),
            "train.npz' holds token id 1000000, allowed: 0..",  # then meta.json's vocab_size
        ),
        (
            lambda a: a["offsets"].__setitem__(2, a["offsets"][1] - 1),
            "train.npz' offsets are not the starts of its sentences",
        ),
    ],
)
def test_text_data_outside_its_vocabulary_is_refused_before_training(
    tmp_path, capsys, change, says
):
    params = tiny_params()
    params["dataset"] = ["topics"]
    params["topics"] = {
        "data": {"kind": "topics", "classes": 3, "sentences_per_class": 20, "vocab_size": 60},
        "encoder": {"name": "bag", "dim": 8},
        "train": dict(
            params["circle"]["train"]
        ),  # a copy: a shared object would dump as a YAML alias
    }
    prepared = tmp_path / "prepared"
    prepare.run(params, "topics", prepared, tmp_path / "raw")
    load_prepared(prepared / "s0")  # the baseline: as prepared, the data is accepted
    _tamper_split(prepared / "s0", "train", change)
    argv = cli_args(
        params=write_params(tmp_path / "params.yaml", params),
        dataset="topics",
        k=4,
        seed=0,
        data=prepared,
        out=tmp_path / "run",
        checkpoints=tmp_path / "ckpt",
    )
    assert stage("pretrain").main(argv) == 2
    msg = one_line(capsys.readouterr().err)
    assert msg.startswith(f"stage pretrain: {str(prepared / 's0' / 'train.npz')!r}"), msg
    assert says in msg, msg
    assert not (tmp_path / "run").exists() and not (tmp_path / "ckpt").exists()


# --------------------------------------------------------------------------- FIFOs as inputs
def _stage_argv(root: Path, name: str) -> list[str]:
    d, r = root / "data", root / "reports"
    if name == "pretrain":
        return cli_args(
            params=root / "params.yaml",
            dataset="circle",
            k=4,
            seed=0,
            data=d / "prepared/circle",
            out=root / "run",
            checkpoints=root / "ckpt",
        )
    if name == "fixed_null":
        return cli_args(
            params=root / "params.yaml",
            features_dir=d / "features",
            prepared_dir=d / "prepared",
            out=r / "null.csv",
        )
    return _stages(root, name)


@pytest.mark.parametrize(
    ("name", "fifo", "what"),
    [
        ("bounds", "data/probe/circle/k4/s0.json", "probe record"),
        ("bounds", "data/prepared/circle/s0/meta.json", "meta.json"),
        ("probe", "data/features/circle/k4/s0.npz", "features"),
        ("fixed_null", "data/features/circle/k4/s0.npz", "features"),
        ("extract", "data/pretrain/circle/k4/s0/model.pt", "model.pt"),
        ("pretrain", "ckpt/s0/last.pt", "a checkpoint"),
        ("pretrain", "data/prepared/circle/s0/train.npz", "a prepared split"),
        ("select_lr", "reports/results.csv", "results"),
        ("report", "reports/selected.csv", "results"),
    ],
)
def test_a_fifo_where_a_stage_reads_is_refused_unopened(copy, capsys, name, fifo, what):
    """Before: the stage opened the FIFO and waited for a writer for ever (select_lr and
    report said the table does not exist)."""
    import signal

    path = copy / fifo
    if path.exists():
        path.unlink()
    # an unfinished run's checkpoint (a completed one is dropped, its copied data differs)
    (copy / "ckpt/complete.json").unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)

    def hung(*_):
        raise TimeoutError(f"stage {name} opened the FIFO {fifo} and hangs")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        capsys.readouterr()
        assert stage(name).main(_stage_argv(copy, name)) == 2
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    msg = one_line(capsys.readouterr().err)
    assert msg.startswith(f"stage {name}: "), msg
    assert f"{str(path)!r} is a FIFO, not a regular file" in msg and what in msg, msg
