"""Optimizers, learning-rate schedules and rules of the paper's CIFAR and Wiki-3029 runs.

- :class:`LARS`: SGD with momentum and layer-wise adaptive rate scaling (You et al. 2017,
  as in SimCLR). Every parameter tensor with ndim > 1 (a weight matrix or a kernel) gets its
  update rescaled by the trust ratio ``eta * ||w|| / (||g|| + wd * ||w||)`` and weight
  decay; bias and BatchNorm parameters (ndim <= 1) get neither (plain SGD with momentum).
- :func:`warmup_cosine`: the LR factor of a linear warm-up followed by a cosine decay
  (the one implementation; :mod:`surrogap.training.train` imports it).
- :func:`scaled_lr`: the documented batch-size rule ``lr_scaling: none | linear | sqrt``.
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Iterable

import torch
from torch import nn

LR_SCALINGS = ("none", "linear", "sqrt")


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR factor at optimizer step `step` (0-based): (step + 1) / warmup_steps during the
    warm-up, then 0.5 (1 + cos(pi * min(1, (step - warmup) / (total - warmup))))."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def scaled_lr(lr: float, batch_size: int, rule: str, base_batch: int = 256) -> float:
    """The learning rate actually used for a global batch of `batch_size`.

    none: `lr` as given; linear: lr * B / base_batch; sqrt: lr * sqrt(B / base_batch)
    (Goyal et al. 2017; the SimCLR paper's rules). Never applied silently: the trainer
    writes the result to model.pt's run info, train_info.json and stderr.
    """
    if rule == "none":
        return float(lr)
    if rule == "linear":
        return float(lr) * batch_size / base_batch
    if rule == "sqrt":
        return float(lr) * math.sqrt(batch_size / base_batch)
    raise ValueError(f"lr_scaling must be one of {LR_SCALINGS}, got {rule!r}")


def lars_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: tensors with ndim > 1 (weight decay and trust ratio) and ndim <= 1
    (biases, BatchNorm weights and biases: neither)."""
    adapt = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    plain = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": adapt, "weight_decay": weight_decay, "lars": True}]
    if plain:
        groups.append({"params": plain, "weight_decay": 0.0, "lars": False})
    return groups


class LARS(torch.optim.Optimizer):
    """SGD with momentum, each `lars` group's update rescaled layer-wise.

    For a parameter w with gradient g in a group with ``lars=True``:

        d = g + wd * w
        d = d * eta * ||w|| / (||g|| + wd * ||w||)   (factor 1 when ||w|| or ||g|| is 0)
        buf = momentum * buf + d;  w = w - lr * buf

    In a ``lars=False`` group, d = g + wd * w and no rescaling (use wd = 0 there, as
    :func:`lars_param_groups` does). Norms are per tensor (one "layer" = one tensor).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.001,
    ):
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0 or eta <= 0:
            raise ValueError(
                f"LARS: bad lr={lr}, momentum={momentum}, weight_decay={weight_decay} or eta={eta}"
            )
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, lars=True)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            wd, eta, mom, lr = group["weight_decay"], group["eta"], group["momentum"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                d = g.add(p, alpha=wd) if wd else g.clone()
                if group["lars"]:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    trust = torch.where(
                        (w_norm > 0) & (g_norm > 0),
                        eta * w_norm / (g_norm + wd * w_norm),
                        torch.ones_like(w_norm),
                    )
                    d.mul_(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = d.clone()
                else:
                    state["momentum_buffer"].mul_(mom).add_(d)
                p.add_(state["momentum_buffer"], alpha=-lr)
        return loss


def _lazy_dynamo_disable(fn, recursive: bool):
    """What torch's ``_disable_dynamo`` wrapper calls in place of `fn`: `fn` itself while
    torch._dynamo is not imported (then nothing can be compiling), else, from then on,
    torch._dynamo.disable(fn) as torch would have built it."""

    def call(*args, **kwargs):
        dynamo = sys.modules.get("torch._dynamo")
        if dynamo is None:
            return fn(*args, **kwargs)
        disabled = dynamo.disable(fn, recursive, wrapping=False)
        setattr(fn, "__dynamo_disable", disabled)  # torch's own cache slot
        return disabled(*args, **kwargs)

    return call


def defer_dynamo_import() -> None:
    """Keep torch.optim from importing torch._dynamo (about 2 s of imports) on first use.

    torch wraps Optimizer.add_param_group, zero_grad, state_dict and load_state_dict in
    ``torch._compile._disable_dynamo``, which imports torch._dynamo on its first call just to
    mark the method as not compilable. Filling that wrapper's cache slot with
    :func:`_lazy_dynamo_disable` defers the import until something else imports dynamo (a
    torch.compile), at which point the real disable is built, so behaviour is unchanged.
    A torch whose wrapper looks different is left alone (the import then happens as usual).
    """
    try:
        from torch import _compile

        marker = _compile._disable_dynamo(lambda: None).__code__
    except (ImportError, AttributeError, TypeError):
        return
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        method = getattr(torch.optim.Optimizer, name, None)
        code = getattr(method, "__code__", None)
        if code is not marker or method.__closure__ is None:
            continue
        cells = dict(zip(code.co_freevars, (c.cell_contents for c in method.__closure__)))
        fn, recursive = cells.get("fn"), cells.get("recursive", True)
        if fn is not None and getattr(fn, "__dynamo_disable", None) is None:
            setattr(fn, "__dynamo_disable", _lazy_dynamo_disable(fn, recursive))


def _step_without_dynamo_import(opt: torch.optim.Optimizer) -> None:
    """Give `opt` a `step` that does not import torch._dynamo (torch's ``_use_grad`` layer
    imports it on every call, only to place graph breaks for torch.compile).

    The instance's step is torch's own chain rebuilt: the profiling and hook wrapper
    (``Optimizer.profile_hook_step``) around a grad-mode layer identical to ``_use_grad``
    minus the graph breaks, around the optimizer's raw step; once torch._dynamo is imported
    (a torch.compile), torch's ``_use_grad`` runs instead. Optimizers without that layer
    (LARS) are left as they are."""
    chain, f = [], type(opt).step
    while f is not None:
        chain.append(f)
        f = getattr(f, "__wrapped__", None)
    names = [getattr(getattr(g, "__code__", None), "co_name", None) for g in chain]
    hook = getattr(torch.optim.Optimizer, "profile_hook_step", None)
    if "_use_grad" not in names or hook is None:
        return
    use_grad = chain[names.index("_use_grad")]
    raw = chain[-1]

    def grad_mode_step(self, *args, **kwargs):
        if "torch._dynamo" in sys.modules:
            return use_grad(self, *args, **kwargs)
        prev = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(self.defaults["differentiable"])
            return raw(self, *args, **kwargs)
        finally:
            torch.set_grad_enabled(prev)

    opt.step = types.MethodType(hook(grad_mode_step), opt)


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    weight_decay: float,
    momentum: float,
    lars_eta: float = 0.001,
) -> torch.optim.Optimizer:
    """adam and sgd: one group, weight decay on every parameter (the synthetic runs);
    lars: :class:`LARS` over :func:`lars_param_groups`. None of them imports torch._dynamo
    (:func:`defer_dynamo_import`, :func:`_step_without_dynamo_import`: about 2 s per
    pretrain stage); the updates are torch's own."""
    defer_dynamo_import()
    if name == "lars":
        groups = lars_param_groups(model, weight_decay)
        return LARS(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, eta=lars_eta)
    if name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif name == "sgd":
        opt = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )
    else:
        raise ValueError(f"optimizer must be adam, sgd or lars, got {name!r}")
    _step_without_dynamo_import(opt)
    return opt
