"""Image encoders: ``resnet18`` (CIFAR, as in the paper) and ``convnet`` (8x8 digits).

Both take ``x`` (n, C, H, W) float32 with C, H, W from the dataset's meta
``input_shape`` and return features (n, d).
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from surrogap.core.config import model, spec
from surrogap.core.errors import UserError


def torchvision_pair(torch_version: str) -> str | None:
    """The torchvision minor release that pairs with a torch 2.x version ("2.14.1+cpu" ->
    "0.29"): torchvision 0.(m + 15) for torch 2.m; None for a version this rule does not
    cover (not 2.x, or unparsable)."""
    m = re.match(r"(\d+)\.(\d+)", torch_version)
    if m is None or m.group(1) != "2":
        return None
    return f"0.{int(m.group(2)) + 15}"


def import_torchvision(name: str) -> ModuleType:
    """`import <name>` (a torchvision module); a torchvision that does not load with this
    torch (a mismatched pair: "operator torchvision::nms does not exist", an undefined
    symbol) is one line naming both versions and `surrogap doctor`."""
    try:
        return importlib.import_module(name)
    except (ImportError, RuntimeError, OSError) as exc:
        try:
            from importlib.metadata import version

            tv = version("torchvision")
        except Exception:
            tv = "not installed"
        pair = torchvision_pair(torch.__version__)
        wants = f" (torch {torch.__version__} pairs with torchvision {pair}.x)" if pair else ""
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"torchvision {tv} does not load with torch {torch.__version__}{wants}: {first}; "
            "run `surrogap doctor`"
        ) from None


def _image_shape(meta: dict, name: str) -> tuple[int, int, int]:
    shape = meta.get("input_shape") or []
    if meta.get("modality") != "dense" or len(shape) != 3:
        raise UserError(
            f"encoder {name} needs images (input_shape [C, H, W]), dataset "
            f"{meta.get('dataset')!r} has modality {meta.get('modality')} and input_shape {list(shape)}"
        )
    return int(shape[0]), int(shape[1]), int(shape[2])


# --------------------------------------------------------------------------- resnet18
@model
class ResNet18Config:
    name: Literal["resnet18"] = spec("resnet18")
    head: bool = spec(True)
    hidden: int = spec(512, ge=1, allowed="an integer >= 1 (head hidden width)")
    out_dim: int = spec(128, ge=1, allowed="an integer >= 1 (head output width)")


class ResNet18(nn.Module):
    """torchvision's ResNet-18 with the CIFAR stem, plus a SimCLR projection head.

    Stem: conv1 is 3x3 stride 1 padding 1 without bias and the max-pool is removed, so a
    32x32 image keeps its resolution into the first stage. ``fc`` is dropped: the backbone
    gives h (n, 512). With ``head`` the output is the head's z = Linear(512, hidden) -
    BatchNorm - ReLU - Linear(hidden, out_dim), (n, out_dim); the contrastive loss and
    every evaluation (features, mean classifier, probe) use this output. Without ``head``
    the output is h itself (n, 512). ``backbone(x)`` always gives h.
    """

    def __init__(self, in_channels: int, head: bool, hidden: int, out_dim: int):
        super().__init__()
        # lazily: torchvision is slow to import
        net = import_torchvision("torchvision.models").resnet18(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.encoder = net
        self.head = (
            nn.Sequential(
                nn.Linear(512, hidden),
                nn.BatchNorm1d(hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, out_dim),
            )
            if head
            else nn.Identity()
        )
        self.out_dim = out_dim if head else 512

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, C, H, W) -> h (n, 512), the pooled output of the last stage."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, C, H, W) -> features (n, out_dim) with the head, (n, 512) without."""
        return self.head(self.encoder(x))


def build_resnet18(cfg: ResNet18Config, meta: dict) -> nn.Module:
    channels, _, _ = _image_shape(meta, "resnet18")
    return ResNet18(channels, cfg.head, cfg.hidden, cfg.out_dim)


# --------------------------------------------------------------------------- convnet
@model
class ConvNetConfig:
    name: Literal["convnet"] = spec("convnet")
    channels: tuple[Annotated[int, Field(ge=1)], ...] = spec(
        factory=lambda: (32, 64), min_length=1, allowed="a non-empty list of conv widths >= 1"
    )
    out_dim: int = spec(128, ge=1)


class ConvNet(nn.Module):
    """A small conv net for tiny images such as the 8x8 digits.

    x (n, C, H, W) -> [3x3 conv (padding 1) -> ReLU] per entry of ``channels`` -> 2x2
    max-pool -> flatten (n, channels[-1] * (H // 2) * (W // 2)) -> Linear -> (n, out_dim).
    """

    def __init__(self, in_shape: tuple[int, int, int], channels: tuple[int, ...], out_dim: int):
        super().__init__()
        c, h, w = in_shape
        if h < 2 or w < 2:
            raise UserError(f"encoder convnet needs images of at least 2x2, got {h}x{w}")
        layers: list[nn.Module] = []
        for width in channels:
            layers += [nn.Conv2d(c, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = width
        layers += [nn.MaxPool2d(2), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c * (h // 2) * (w // 2), out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def build_convnet(cfg: ConvNetConfig, meta: dict) -> nn.Module:
    return ConvNet(_image_shape(meta, "convnet"), cfg.channels, cfg.out_dim)


ENCODERS = {
    "resnet18": (ResNet18Config, build_resnet18),
    "convnet": (ConvNetConfig, build_convnet),
}
