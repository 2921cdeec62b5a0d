"""LARS against a naive per-layer loop, the warm-up/cosine schedule against its formula,
the lr scaling rule, model selection over the lr grid, and the trainer's use of them."""

import copy
import json
import math

import pytest
import torch
from torch import nn

from surrogap.pipeline import prepare, pretrain
from surrogap.training.optim import (
    LARS,
    build_optimizer,
    lars_param_groups,
    scaled_lr,
    warmup_cosine,
)

torch.set_num_threads(1)


def naive_lars(params, grads_per_step, lr, momentum, wd, eta):
    """Straight from You et al. (2017): per tensor, trust = eta ||w|| / (||g|| + wd ||w||)
    for weights (ndim > 1), with weight decay; biases and norms (ndim <= 1): plain SGD."""
    ws = [p.detach().clone().double() for p in params]
    bufs = [None] * len(ws)
    for grads in grads_per_step:
        for i, (w, g) in enumerate(zip(ws, grads, strict=True)):
            g = g.double()
            if w.ndim > 1:
                wn, gn = math.sqrt(float((w * w).sum())), math.sqrt(float((g * g).sum()))
                trust = eta * wn / (gn + wd * wn) if wn > 0 and gn > 0 else 1.0
                d = (g + wd * w) * trust
            else:
                d = g.clone()
            bufs[i] = d if bufs[i] is None else momentum * bufs[i] + d
            ws[i] = w - lr * bufs[i]
    return ws


@pytest.mark.parametrize("wd,eta,momentum", [(0.0, 0.001, 0.9), (1e-4, 0.02, 0.9), (0.1, 1.0, 0.0)])
def test_lars_matches_naive_per_layer_loop(wd, eta, momentum):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3)).double()
    params = list(model.parameters())
    opt = LARS(lars_param_groups(model, wd), lr=0.5, momentum=momentum, weight_decay=wd, eta=eta)
    g = torch.Generator().manual_seed(1)
    steps = [
        [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params] for _ in range(4)
    ]
    steps[2][0].zero_()  # a zero gradient: trust ratio 1, only weight decay moves it
    want = naive_lars(params, steps, 0.5, momentum, wd, eta)
    for grads in steps:
        for p, gr in zip(params, grads, strict=True):
            p.grad = gr.clone()
        opt.step()
    for p, w in zip(params, want, strict=True):
        torch.testing.assert_close(p.detach(), w, rtol=1e-12, atol=1e-12)


def test_lars_groups_exclude_biases_and_batchnorm():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2, bias=False))
    adapt, plain = lars_param_groups(model, 0.01)
    assert adapt["lars"] and adapt["weight_decay"] == 0.01
    assert not plain["lars"] and plain["weight_decay"] == 0.0
    assert [tuple(p.shape) for p in adapt["params"]] == [(4, 4), (2, 4)]
    assert all(p.ndim == 1 for p in plain["params"]) and len(plain["params"]) == 3
    assert isinstance(build_optimizer(model, "lars", 0.1, 0.01, 0.9), LARS)


def test_warmup_cosine_against_formula():
    total, warm = 50, 5
    for s in range(total):
        want = (
            (s + 1) / warm
            if s < warm
            else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
        )
        assert warmup_cosine(s, warm, total) == pytest.approx(want, abs=1e-15)
    assert warmup_cosine(total + 3, warm, total) == pytest.approx(0.0, abs=1e-15)  # stays at 0
    assert warmup_cosine(0, 0, 10) == 1.0  # no warm-up


@pytest.mark.parametrize(
    "rule,batch,want",
    [
        ("none", 1024, 0.3),
        ("linear", 1024, 1.2),
        ("linear", 256, 0.3),
        ("sqrt", 1024, 0.6),
        ("sqrt", 64, 0.15),
    ],
)
def test_lr_scaling_rule(rule, batch, want):
    assert scaled_lr(0.3, batch, rule, 256) == pytest.approx(want, rel=1e-12)


def test_scaled_lr_is_used_and_written_never_silent(tmp_path, capsys):
    params = {
        "dataset": ["circle"],
        "k": [2],
        "seed": [0],
        "circle": {
            "data": {"kind": "circle", "classes": 4, "per_class": 40, "seed": 0},
            "encoder": {"name": "mlp", "widths": [8]},
            "train": {
                "optimizer": "lars",
                "lr": 0.1,
                "lr_scaling": "linear",
                "lr_base_batch": 16,
                "batch_size": 32,
                "epochs": 2,
                "schedule": "cosine",
                "warmup_epochs": 1,
            },
        },
    }
    prepare.run(params, "circle", tmp_path / "p", tmp_path / "raw")
    pretrain.run(params, "circle", 2, 0, tmp_path / "p" / "s0", tmp_path / "o", tmp_path / "c")
    info = json.loads((tmp_path / "o" / "train_info.json").read_text())
    assert (
        info["lr_given"] == 0.1
        and info["lr_used"] == pytest.approx(0.2)
        and info["lr_scaling"] == "linear"
    )
    assert torch.load(tmp_path / "o" / "model.pt", weights_only=True)["run"]["resolved"][
        "lr"
    ] == pytest.approx(0.2)
    assert "lr: 0.2 used = 0.1 scaled by lr_scaling linear" in capsys.readouterr().err
    rows = (tmp_path / "o" / "trajectory.csv").read_text().splitlines()
    assert float(rows[1].split(",")[-1]) == pytest.approx(0.2 * 1 / 3)  # warm-up step 1 of 3


# --------------------------------------------------------------------------- no dynamo import
@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimizer_without_dynamo_import_updates_like_torch(name):
    """build_optimizer's step (no torch._dynamo import) equals torch's own, hooks included."""
    torch.manual_seed(0)
    ours_model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    ref_model = copy.deepcopy(ours_model)
    ours = build_optimizer(ours_model, name, 0.05, 0.01, 0.9)
    if name == "adam":
        ref = torch.optim.Adam(ref_model.parameters(), lr=0.05, weight_decay=0.01)
    else:
        ref = torch.optim.SGD(ref_model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    calls = []
    ours.register_step_post_hook(lambda *a: calls.append(1))
    sched = torch.optim.lr_scheduler.LambdaLR(ours, lambda s: 1.0 / (s + 1))
    ref_sched = torch.optim.lr_scheduler.LambdaLR(ref, lambda s: 1.0 / (s + 1))
    x = torch.randn(32, 4)
    for _ in range(5):
        for model, opt in ((ours_model, ours), (ref_model, ref)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
        sched.step()
        ref_sched.step()
    assert calls == [1] * 5
    for a, b in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert ours.state_dict()["state"].keys() == ref.state_dict()["state"].keys()
