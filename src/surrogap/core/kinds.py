"""The dataset kinds, each declared once in :data:`KINDS` (a :class:`Kind`). In core, not
data, so that the report reads it without reaching the data layer (dvc.yaml's report deps
stay its own; prepare's deps cover surrogap.data, which imports each kind's module, whole)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One kind of data: its module in surrogap.data, defining its config class and builder
    (its ``KINDS``; surrogap.data.kinds imports it on first use, so torchvision/datasets load
    lazily), what the report calls it, and the paper's runs on what it is (or, for an
    offline stand-in, what it stands in for: Bao, Nagano & Nozawa 2022, Sec. 5 and its
    code), as report.markdown's scale table prints them (None: the report says "unknown")."""

    module: str
    name: str
    paper: dict[str, str] | None = None


def _paper(data, classes, per_class, epochs, k, seeds, batch="1024") -> dict[str, str]:
    return dict(data=data, classes=classes, per_class=per_class, batch=batch, epochs=epochs, k=k, seeds=seeds)  # fmt: skip


_CIFAR10 = _paper("CIFAR-10", "10", "6000", "2000", "4-512", "3")
_CIFAR100 = _paper("CIFAR-100", "100", "600", "2000", "4-512", "3")
_WIKI = _paper("Wiki-3029", "500-3029", "200", "not stated", "8-1024", "3", batch="2048")
_GENERATED = "generated 2-D data"
# kind -> its entry: the one place a kind is declared (tests/test_one_home.py)
KINDS = {
    "circle": Kind("synthetic", _GENERATED, _paper("circle", "100", "1000", "300", "1-256", "8")),
    "norm": Kind("synthetic", _GENERATED, _paper("norm", "100", "1000", "300", "1-256", "8")),
    "digits": Kind("digits", "digits 8x8, a stand-in for CIFAR-10", _CIFAR10),
    "topics": Kind("text", "generated topics, a stand-in for Wiki-3029", _WIKI),
    "wiki3029": Kind("text", "Wiki-3029", _WIKI),
    "cifar10": Kind("cifar", "CIFAR-10", _CIFAR10),
    "cifar100": Kind("cifar", "CIFAR-100", _CIFAR100),
}


def kind_name(kind: str, unknown: str | None = None) -> str:
    """What the report calls data of `kind`; `unknown` (default "kind <kind>") if no entry."""
    return KINDS[kind].name if kind in KINDS else unknown or f"kind {kind}"
