"""`data/prepared/<dataset>/meta.json`, read back and checked (no torch: the probe stage reads
it too). Written by :func:`surrogap.data.write_prepared`; see docs/ARCHITECTURE.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

from surrogap.errors import UserError

SPLITS = ("train", "val", "test")
MODALITIES = ("dense", "text")
AGAIN = "rerun `dvc repro prepare` (or delete the folder first)"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _problem(meta) -> str | None:
    """What is wrong with a decoded meta.json, or None."""
    if not isinstance(meta, dict):
        return f"holds a {type(meta).__name__}, not an object"
    for key in ("kind", "modality", "num_classes", "input_shape", "sizes"):
        if key not in meta:
            return f"has no {key!r}"
    if meta["modality"] not in MODALITIES:
        return f"modality is {meta['modality']!r}, allowed: {', '.join(MODALITIES)}"
    if not isinstance(meta["kind"], str):
        return f"kind is {meta['kind']!r}, not a string"
    c = meta["num_classes"]
    if not _is_int(c) or c < 2:
        return f"num_classes is {c!r}, allowed: an integer >= 2"
    shape = meta["input_shape"]
    if not isinstance(shape, list) or not all(_is_int(v) and v >= 1 for v in shape):
        return f"input_shape is {shape!r}, allowed: a list of integers >= 1"
    sizes = meta["sizes"]
    if not isinstance(sizes, dict) or not all(
        _is_int(sizes.get(s)) and sizes[s] >= 0 for s in SPLITS
    ):
        return f"sizes is {sizes!r}, allowed: {{train, val, test}} sample counts"
    vocab = meta.get("vocab_size")
    if meta["modality"] == "text" and (not _is_int(vocab) or vocab < 1):
        return f"vocab_size is {vocab!r}, allowed for text: an integer >= 1"
    prior = meta.get("prior")
    if prior is not None:
        ok = (
            isinstance(prior, list)
            and len(prior) == c
            and all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in prior)
            and all(0 <= p <= 1 for p in prior)
            and math.isclose(math.fsum(prior), 1.0, abs_tol=1e-6)
        )
        if not ok:
            return f"prior is not null or a list of {c} probabilities summing to 1"
    return None


def read_meta(folder: str | Path) -> dict:
    """The checked meta.json of a prepared dataset folder; a missing, unreadable or
    inconsistent one is one UserError line naming the file and what is wrong."""
    folder = Path(folder)
    path = folder / "meta.json"
    if not path.exists():
        raise UserError(
            f"{str(folder)!r} holds no prepared dataset (meta.json missing); run `dvc repro prepare` first"
        )
    try:
        meta = json.loads(path.read_text())
    except (ValueError, OSError) as exc:  # empty, truncated, not UTF-8, a folder
        raise UserError(f"{str(path)!r} is unreadable ({type(exc).__name__}); {AGAIN}") from None
    why = _problem(meta)
    if why:
        raise UserError(f"{str(path)!r} {why}; {AGAIN}")
    return meta
