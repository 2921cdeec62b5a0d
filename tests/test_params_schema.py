"""params.schema.json: the committed file is what tools/params_schema.py builds from the
params dataclasses; it accepts params.yaml and every preset, refuses what the stages refuse
(a misspelled key, a wrong type, a data block's key of another kind), and every params
file names it on its first line for an editor's YAML language server."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from surrogap.core.config import load_params

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILES = [ROOT / "params.yaml", *sorted((ROOT / "params").glob("*.yaml"))]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("params_schema", ROOT / "tools/params_schema.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def validator():
    schema = json.loads((ROOT / "params.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one(tool):
    assert (ROOT / "params.schema.json").read_text() == tool.text(), (
        "params.schema.json is stale: run  python tools/params_schema.py --write"
    )


@pytest.mark.parametrize("path", PARAMS_FILES, ids=lambda p: p.name)
def test_every_params_file_names_the_schema_and_passes_it(validator, path):
    first = path.read_text().splitlines()[0]
    target = "params.schema.json" if path.parent == ROOT else "../params.schema.json"
    assert first == f"# yaml-language-server: $schema={target}"
    assert (path.parent / target).resolve() == ROOT / "params.schema.json"
    errors = [e.message for e in validator.iter_errors(load_params(path))]
    assert not errors, errors


def _set(params: dict, dotted: str, value) -> dict:
    params = copy.deepcopy(params)
    *parents, key = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[key] = value
    return params


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("circle.train.lerning_rate", 0.01),  # a misspelled key
        ("k", ["one"]),  # a wrong type
        ("probe.repeats", "ten"),
        ("probe.repeats", 3),  # out of range: >= 10
        ("seed", []),
        ("dataset", ["my-circle"]),
        ("circle.data.sentences_per_class", 200),  # a key of kind topics in a circle block
        ("circle.data.kind", "circles"),
        ("circle.encoder.dim", 128),  # a key of the bag encoder in an mlp block
        ("circle.train.optimizer", "adamw"),
        ("report.confidence", 1.5),
        ("evaluate.features", [{"name": "x"}]),  # path missing
        ("theory", [1, 2]),
        ("extrct", {"batch_size": 4}),  # neither a known section nor a dataset section
    ],
)
def test_the_schema_refuses_what_the_stages_refuse(validator, dotted, value):
    params = load_params(ROOT / "params.yaml")
    assert validator.is_valid(params)
    assert not validator.is_valid(_set(params, dotted, value))


def test_a_section_the_stages_read_null_and_a_new_dataset_section_pass(validator):
    params = load_params(ROOT / "params.yaml")
    params["extract"] = None
    params["circle_2"] = copy.deepcopy(params["circle"])
    params["circle_2"].pop("train")  # the train block's keys all have defaults
    assert validator.is_valid(params), [e.message for e in validator.iter_errors(params)]
