"""The committed params.yaml stays readable after `dvc exp run -S`: DVC rewrites the sweep
lists in block style (dvc.utils.hydra.apply_overrides, what `-S` runs), and a comment must
never end up between a sweep key and its items."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from surrogap.core.config import load_params

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ("dataset", "k", "seed", "lr")


def _blocks(text: str) -> dict[str, list[str]]:
    """Each top-level key's lines after its own, up to the next top-level key."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line and not line.startswith((" ", "-", "#")):
            current = line.split(":", 1)[0]
            blocks[current] = []
        elif current is not None:
            blocks[current].append(line)
    return blocks


@pytest.mark.parametrize(
    "overrides",
    [
        ["seed=[0,1,2,3]"],
        ["k=[1,4]", "dataset=[circle]", "lr=[0.003,0.03]"],
    ],
)
def test_sweep_overrides_keep_comments_off_the_lists(tmp_path, overrides):
    apply_overrides = pytest.importorskip("dvc.utils.hydra").apply_overrides
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    apply_overrides(str(params), overrides)
    blocks = _blocks(params.read_text())
    for key in SWEEP:
        items = blocks[key]
        last_item = max((i for i, line in enumerate(items) if line.startswith("-")), default=-1)
        between = [line for line in items[: last_item + 1] if line.strip().startswith("#")]
        assert not between, f"{key}: comment lines inside its list after -S: {between}"
    read = load_params(params)
    for override in overrides:
        key, value = override.split("=", 1)
        expected = [
            float(v) if "." in v else (int(v) if v.isdigit() else v)
            for v in value.strip("[]").split(",")
        ]
        assert read[key] == expected


def test_every_training_section_pins_one_thread():
    """dvc repro and surrogap sweep (one thread per Dask worker) train to the same weights
    only with the thread count pinned (docs/SCALING.md)."""
    params = load_params(ROOT / "params.yaml")
    for name in params["dataset"]:
        assert params[name]["train"].get("threads") == 1, name
