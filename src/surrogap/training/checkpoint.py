"""The resumable checkpoint of a pre-training run: what it records, how it is written, and
when it is refused.

A pretrain stage keeps `last.pt` in its own checkpoint folder (``--checkpoints``, ignored by
git and not a DVC output: docs/ARCHITECTURE.md), written atomically every
``checkpoint_every`` epochs and at the last. Once the run's outputs are written,
``complete.json`` beside it records the md5 of the run's ``model.pt``, and the folder stays
until DVC has recorded that output (:func:`drop_if_done`), so a run DVC failed to record
resumes at its end. A checkpoint is used only if it is a readable surrogap checkpoint,
written for exactly this run (params, data sizes, training code: :func:`run_info`), whose
tensors fit the model and optimizer; anything else is a note on stderr and training from
scratch (never an error, never trusted: weights_only=True).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import torch

from surrogap.core import config, dvclock, io

NAME = "last.pt"
COMPLETE = "complete.json"  # beside last.pt once the run's outputs are written
KEYS = {"model", "optimizer", "epoch", "trajectory", "run"}
# the module whose code (with all it reaches) decides the weights a run ends with: the same
# import walk that tests/test_deps.py checks against pretrain's deps in dvc.yaml
TRAINING_CODE = "surrogap.pipeline.pretrain"


def code_fingerprint() -> str:
    """sha256 of the training code: a checkpoint written by other code is not resumed."""
    from surrogap.core import codedeps

    return codedeps.fingerprint(TRAINING_CODE)


def run_info(dataset: str, k: int, seed: int, encoder_cfg, train_cfg, meta: dict) -> dict:
    """What a checkpoint records about the run; resuming requires an exact match (params,
    data sizes and the training code)."""
    return {
        "code": code_fingerprint(),
        "dataset": dataset,
        "k": k,
        "seed": seed,
        "encoder": config.to_dict(encoder_cfg),
        "train": config.to_dict(train_cfg),
        "data": {
            key: meta.get(key)
            for key in ("kind", "num_classes", "sizes", "input_shape", "vocab_size")
        },
    }


def mismatch(saved: dict, current: dict, prefix: str = "") -> str | None:
    """The first key (dotted path) whose value differs between two run records, or None."""
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = mismatch(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key}: checkpoint {a!r}, params {b!r}"
    return None


def note(message: str) -> None:
    print(f"note: {message}; starting from scratch", file=sys.stderr)


def load(path: Path, info: dict) -> dict | None:
    """The checkpoint at `path` if it was written for exactly this run, else None (with a
    note on stderr saying why it is not used). Loaded with weights_only=True."""
    if not path.exists():
        return None
    io.readable(path, "a checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refuses anything but tensors and plain data
        note(
            f"checkpoint {str(path)!r} holds objects other than tensors and plain data: "
            "refused (weights_only)"
        )
        return None
    except Exception as exc:  # a truncated or foreign file: never trusted, never fatal
        note(f"checkpoint {str(path)!r} is unreadable ({type(exc).__name__})")
        return None
    if not isinstance(state, dict) or not KEYS <= set(state) or not isinstance(state["run"], dict):
        note(f"{str(path)!r} is not a surrogap checkpoint (it needs {', '.join(sorted(KEYS))})")
        return None
    why = mismatch(state["run"], info)
    if why:
        note(f"checkpoint {str(path)!r} was written for other params ({why})")
        return None
    return state


def _shape(v) -> tuple | None:
    return tuple(v.shape) if isinstance(v, torch.Tensor) else None


def misfit(state: dict, model: torch.nn.Module, opt: torch.optim.Optimizer) -> str | None:
    """What keeps `state` from loading into `model` and `opt` (missing or extra tensors,
    wrong shapes or dtypes, another optimizer layout), or None. Checked before anything is
    loaded, so a refused checkpoint leaves the fresh model untouched."""
    saved, own = state["model"], model.state_dict()
    if not isinstance(saved, dict):
        return "its model is not a state dict"
    if set(saved) != set(own):
        extra, missing = sorted(set(saved) - set(own)), sorted(set(own) - set(saved))
        return f"model tensors differ ({'extra ' + extra[0] if extra else 'missing ' + missing[0]})"
    for key, value in own.items():
        got = saved[key]
        if _shape(got) != tuple(value.shape) or got.dtype != value.dtype:
            return (
                f"model tensor {key} is {_shape(got)} {getattr(got, 'dtype', type(got).__name__)}, "
                f"the model's {tuple(value.shape)} {value.dtype}"
            )
    osd = state["optimizer"]
    if not isinstance(osd, dict) or not isinstance(osd.get("param_groups"), list):
        return "its optimizer state is not a state dict"
    groups = opt.param_groups
    sizes = [len(g.get("params", ())) for g in osd["param_groups"] if isinstance(g, dict)]
    if sizes != [len(g["params"]) for g in groups]:
        return "its optimizer has other parameter groups"
    params = [p for g in groups for p in g["params"]]
    for index, entry in (osd.get("state") or {}).items():
        if (
            not isinstance(index, int)
            or not 0 <= index < len(params)
            or not isinstance(entry, dict)
        ):
            return f"its optimizer state has an entry {index!r} for no parameter"
        for name, value in entry.items():
            got = _shape(value)  # None (no tensor) and () (a scalar such as step): unchecked
            if got and got != tuple(params[index].shape):
                return (
                    f"optimizer state {name} of parameter {index} is {got}, "
                    f"the parameter's {tuple(params[index].shape)}"
                )
    return None


def save(path: Path, state: dict) -> None:
    """Write `state` to `path` atomically (a kill leaves the previous checkpoint)."""
    io.write_with(path, lambda p: torch.save(state, p))


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(io.readable(path, "a prepared data file"), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_files(data_dir: Path | None) -> list[list]:
    """(relative path, size, mtime_ns, inode) of every file of the run's prepared data: the
    very files a completed checkpoint was trained on (rewritten, which prepare does by an
    atomic rename, or checked out again by DVC, they differ). Cheap: no file is read."""
    if data_dir is None:
        return []
    root = Path(data_dir)
    try:
        stats = {p.relative_to(root).as_posix(): p.stat() for p in root.rglob("*") if p.is_file()}
    except OSError:
        return []
    return [[name, s.st_size, s.st_mtime_ns, s.st_ino] for name, s in sorted(stats.items())]


def mark_complete(checkpoint_dir: Path, out_dir: Path, data_dir: Path | None = None) -> None:
    """Record beside the final checkpoint the md5 of the run's written ``model.pt`` and the
    prepared data files it was trained on."""
    io.write_json(
        checkpoint_dir / COMPLETE,
        {"model_md5": _md5(out_dir / "model.pt"), "data": data_files(data_dir)},
    )


def recorded_by_dvc(out_dir: Path, model_md5: str) -> bool:
    """Whether ``dvc.lock`` (in ``DVC_ROOT``, set by DVC and `surrogap sweep` for a stage's
    command) records `out_dir`, or a folder holding it (a (dataset, K) group), with its
    ``model.pt`` at `model_md5` (looked up in the folder's manifest in DVC's cache). False
    outside DVC or when anything is missing; a dvc.lock cut short is one UserError line
    with its fix (`surrogap.core.dvclock`)."""
    root = os.environ.get("DVC_ROOT")
    if not root:
        return False
    try:
        rel = Path(out_dir).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return False
    stages = dvclock.read(root) or {}  # a cut dvc.lock: one line with its fix
    try:
        for entry in stages.values():
            for out in entry.get("outs") or []:
                digest, path = str(out.get("md5", "")), str(out.get("path"))
                # the run's folder is the output, or inside it (a group's s<seed>/)
                if not digest.endswith(".dir") or not f"{rel}/".startswith(f"{path}/"):
                    continue
                inside = f"{rel}/"[len(path) + 1 :]  # "" or "s<seed>/"
                manifest = Path(root, ".dvc", "cache", "files", "md5", digest[:2], digest[2:])
                files = json.loads(manifest.read_text(encoding="utf-8"))
                return any(
                    f.get("relpath") == inside + "model.pt" and f.get("md5") == model_md5
                    for f in files
                )
    except (OSError, ValueError, AttributeError, TypeError):
        return False
    return False


def drop_if_done(checkpoint_dir: Path, out_dir: Path, data_dir: Path | None = None) -> None:
    """Remove a completed run's checkpoint folder once DVC has recorded its output
    (:func:`recorded_by_dvc`), or when the prepared data files are no longer those it was
    trained on (:func:`data_files`), so ``dvc repro -f`` and a rerun on changed data retrain
    from epoch 0; an unfinished one, or a completed one DVC did not record, stays."""
    try:
        done = json.loads(io.readable(checkpoint_dir / COMPLETE, "a record").read_text())
        model_md5, data = done["model_md5"], done["data"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if data != data_files(data_dir) or recorded_by_dvc(out_dir, model_md5):
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # the group folder too, once empty
            checkpoint_dir.parent.rmdir()
