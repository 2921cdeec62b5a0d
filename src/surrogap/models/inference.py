"""A trained encoder: loading the `model.pt` that pretrain saves, and encoding a split."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from surrogap.core import io
from surrogap.core.errors import UserError
from surrogap.models import build_encoder, parse_encoder_config
from surrogap.models.inputs import Split


@torch.inference_mode()
def encode(
    model: nn.Module, split: Split, batch_size: int = 4096, idx: torch.Tensor | None = None
) -> torch.Tensor:
    """Features (n, d) float32 on the CPU of a split (or of the samples `idx`), encoder in
    eval mode on whatever device its parameters are."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = torch.arange(len(split)) if idx is None else idx
    parts = [
        model(*(x.to(device) for x in split.inputs(order[s : s + batch_size])))
        for s in range(0, order.numel(), batch_size)
    ]
    model.train(was_training)
    return torch.cat(parts).float().cpu()


def load_model(path: Path, meta: dict) -> tuple[nn.Module, dict]:
    """The encoder saved by :func:`pretrain`, in eval mode, loaded with weights_only=True."""
    io.readable(path, "the encoder (model.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(
            f"model {str(path)!r} does not exist; run the pretrain stage first"
        ) from None
    except Exception as exc:
        raise UserError(
            f"model {str(path)!r} is unreadable ({type(exc).__name__}); rerun the pretrain stage"
        ) from None
    if (
        not isinstance(state, dict)
        or not {"model", "run"} <= set(state)
        or not isinstance(state["run"], dict)
    ):
        raise UserError(
            f"model {str(path)!r} is not a surrogap model file; rerun the pretrain stage"
        )
    run = state["run"]
    try:
        model = build_encoder(parse_encoder_config(run["encoder"], "encoder"), meta)
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:
        raise UserError(
            f"model {str(path)!r} does not fit this dataset's encoder ({type(exc).__name__}); rerun the pretrain stage"
        ) from None
    model.eval()
    return model, run
