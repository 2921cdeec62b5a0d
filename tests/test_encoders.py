"""Encoders resnet18, convnet and bag: documented shapes, config parsing, and the inputs
that surrogap.data serves."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from surrogap.core.errors import UserError
from surrogap.models import build_encoder, parse_encoder_config

torch.set_num_threads(1)

CIFAR = {"dataset": "cifar10", "modality": "dense", "input_shape": [3, 32, 32]}
DIGITS = {"dataset": "digits", "modality": "dense", "input_shape": [1, 8, 8]}
TEXT = {"dataset": "topics", "modality": "text", "input_shape": [], "vocab_size": 50}


def _encoder(params: dict, meta: dict) -> nn.Module:
    return build_encoder(parse_encoder_config(params, "x.encoder"), meta)


def test_resnet18_cifar_stem_and_head():
    torch.manual_seed(0)
    net = _encoder({"name": "resnet18", "out_dim": 64, "hidden": 256}, CIFAR)
    conv1 = net.encoder.conv1
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1) and conv1.padding == (1, 1)
    assert conv1.bias is None and isinstance(net.encoder.maxpool, nn.Identity)
    assert isinstance(net.encoder.fc, nn.Identity)
    head = [type(m) for m in net.head]
    assert head == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    x = torch.randn(2, 3, 32, 32)
    net.train()
    z = net(x)
    assert z.shape == (2, 64) and net.out_dim == 64
    z.sum().backward()
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (2, 64) and net.backbone(x).shape == (2, 512)


def test_resnet18_without_head_gives_backbone_features():
    net = _encoder({"name": "resnet18", "head": False}, CIFAR).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 512)
    assert net.out_dim == 512


def test_convnet_on_digits():
    net = _encoder({"name": "convnet"}, DIGITS)
    assert net(torch.rand(5, 1, 8, 8)).shape == (5, 128)
    small = _encoder({"name": "convnet", "channels": [4], "out_dim": 3}, DIGITS)
    assert small(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    rgb = _encoder({"name": "convnet"}, CIFAR)  # in_channels follow meta input_shape
    assert rgb(torch.rand(2, 3, 32, 32)).shape == (2, 128)


def test_bag_mean_of_embeddings_with_empty_sequence():
    torch.manual_seed(0)
    net = _encoder({"name": "bag", "dim": 8}, TEXT)
    tokens = torch.tensor([3, 4, 5, 7, 7])
    offsets = torch.tensor([0, 3, 3])  # sentences [3 4 5], [], [7 7]
    out = net(tokens, offsets)
    assert out.shape == (3, 8)
    weight = net.embedding.weight
    assert torch.allclose(out[0], weight[[3, 4, 5]].mean(0))
    assert torch.equal(out[1], torch.zeros(8))
    assert torch.allclose(out[2], weight[7])
    assert torch.equal(weight[0], torch.zeros(8))  # padding
    out.sum().backward()
    assert torch.equal(weight.grad[0], torch.zeros(8))
    assert _encoder({"name": "bag"}, TEXT)(tokens, offsets).shape == (3, 256)


@pytest.mark.parametrize(
    "params, meta, needle",
    [
        ({"name": "bag"}, DIGITS, "text inputs"),
        ({"name": "resnet18"}, TEXT, "images"),
        ({"name": "convnet"}, {"modality": "dense", "input_shape": [2]}, "images"),
        ({"name": "convnet", "channels": []}, DIGITS, "channels"),
        ({"name": "resnet18", "out_dims": 3}, CIFAR, "did you mean 'out_dim'"),
        ({"name": "bag", "dim": 0}, TEXT, "dim"),
        ({"name": "vit"}, CIFAR, "allowed"),
    ],
)
def test_encoder_errors_are_user_errors(params, meta, needle):
    with pytest.raises(UserError, match=needle):
        _encoder(params, meta)


@pytest.mark.parametrize(
    ("params", "meta"),
    [
        ({"name": "mlp", "widths": [16, 8]}, {"modality": "dense", "input_shape": [2]}),
        ({"name": "convnet", "channels": [8, 16], "out_dim": 16}, DIGITS),
        ({"name": "resnet18", "out_dim": 64, "hidden": 256}, CIFAR),
        ({"name": "bag", "dim": 32}, TEXT),
    ],
    ids=["mlp", "convnet", "resnet18", "bag"],
)
def test_memory_check_counts_the_parameters_a_real_build_has(params, meta, monkeypatch):
    """build_encoder sizes the encoder on the meta device without init before it builds it:
    the same parameter count as the build (16 bytes each is what it asks memory.require
    for); without `where` it asks nothing."""
    import surrogap.models

    asked = []
    monkeypatch.setattr(surrogap.models.memory, "require", lambda n, what: asked.append(n))
    built = build_encoder(parse_encoder_config(params, "x.encoder"), meta, "x.encoder")
    assert asked == [16 * sum(p.numel() for p in built.parameters())]
    assert all(p.device.type == "cpu" for p in built.parameters())
    build_encoder(parse_encoder_config(params, "x.encoder"), meta)
    assert len(asked) == 1


def test_memory_check_of_an_embedding_does_not_import_dynamo():
    """A normal init on the meta device would import torch._dynamo (seconds per run)."""
    import subprocess
    import sys

    code = (
        "import sys; from surrogap.models import parse_encoder_config as p; "
        "from surrogap.models import build_encoder; "
        f"build_encoder(p({{'name': 'bag', 'dim': 8}}, 'x'), {TEXT!r}, 'x'); "
        "print('torch._dynamo' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
