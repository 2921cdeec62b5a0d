"""Speed measurements behind `surrogap bench`: a registry of named benchmarks.

A benchmark is a function ``fn(quick: bool) -> BenchResult`` added with
``@register("name")``. ``run_all`` runs every registered one (in registration order);
``format_results`` prints them as a table. ``quick`` runs smaller sizes: a smoke run
whose ratios are not judged against the targets (correctness checks still are).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from surrogap import bounds

__all__ = ["REGISTRY", "BenchResult", "format_results", "register", "run_all"]


@dataclass(frozen=True)
class BenchResult:
    """One measurement: ``value`` is the measured ratio, ``target`` says what passes.

    ``passed`` is True or False when judged, None when not (a quick run's ratio).
    """

    name: str
    value: float
    target: str
    detail: str
    passed: bool | None = None


BenchFn = Callable[[bool], BenchResult]
REGISTRY: dict[str, BenchFn] = {}


def register(name: str) -> Callable[[BenchFn], BenchFn]:
    """Add ``fn(quick) -> BenchResult`` to the registry under ``name``."""

    def decorate(fn: BenchFn) -> BenchFn:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} is already registered")
        REGISTRY[name] = fn
        return fn

    return decorate


def run_all(quick: bool = False, names: list[str] | None = None) -> dict[str, BenchResult]:
    """Run the registered benchmarks (all, or those in ``names``), in registration order."""
    if names is not None:
        unknown = sorted(set(names) - set(REGISTRY))
        if unknown:
            raise ValueError(f"unknown benchmark(s) {unknown}; known: {sorted(REGISTRY)}")
    return {name: fn(quick) for name, fn in REGISTRY.items() if names is None or name in names}


def _verdict(result: BenchResult) -> str:
    if result.passed is None:
        return "n/a (quick)"
    return "PASS" if result.passed else "FAIL"


def _measured(result: BenchResult) -> str:
    """The value, with an 'x' when the target is a ratio like '>= 20x'."""
    if not math.isfinite(result.value):
        return str(result.value)
    ratio = re.search(r"\d(?:\.\d+)?x\b", result.target) is not None
    return f"{result.value:.3g}" + ("x" if ratio else "")


def format_results(results: dict[str, BenchResult]) -> str:
    """A fixed-width table: key, measured ratio, target, pass/fail, detail."""
    header = ["key", "measured", "target", "result", "detail"]
    rows = [
        [
            name,
            _measured(r),
            r.target,
            _verdict(r),
            r.detail,
        ]
        for name, r in results.items()
    ]
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
        for i, h in enumerate(header)
    ]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    lines = [fmt(header), fmt(["-" * w for w in widths])]
    lines += [fmt(row) for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- coverage_speedup
def coverage_python(n: int, num_classes: int) -> float:
    """v_n(C) by the plain O(n C) recursion over the number j of distinct classes seen.

    Probability space: P_t(j) = P_{t-1}(j) j/C + P_{t-1}(j-1) (C-j+1)/C, updated in place
    from the top j down; v_n = P_n(C).
    """
    c = num_classes
    stay = [j / c for j in range(c + 1)]
    move = [(c - j + 1) / c for j in range(c + 1)]
    p = [0.0] * (c + 1)
    p[0] = 1.0
    for t in range(1, n + 1):
        for j in range(min(t, c), 0, -1):
            p[j] = p[j] * stay[j] + p[j - 1] * move[j]
        p[0] = 0.0
    return p[c]


COVERAGE_TARGET_RATIO = 20.0
COVERAGE_TARGET_REL = 1e-9
COVERAGE_TARGET = ">= 20x, rel. diff <= 1e-9"


@register("coverage_speedup")
def coverage_speedup(quick: bool = False) -> BenchResult:
    """coverage_probability for every n = 1..N in one call vs the Python recursion at n = N."""
    c, n = (300, 2000) if quick else (3029, 20000)
    repeats = 3
    ns = np.arange(1, n + 1)
    fast = math.inf
    vec = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        vec = bounds.coverage_probability(ns, c)
        fast = min(fast, time.perf_counter() - t0)
    t0 = time.perf_counter()
    ref = coverage_python(n, c)
    slow = time.perf_counter() - t0
    rel = abs(float(vec[-1]) - ref) / abs(ref) if ref != 0 else abs(float(vec[-1]))
    ratio = slow / fast
    accurate = rel <= COVERAGE_TARGET_REL
    if not accurate:
        passed: bool | None = False
    elif quick:
        passed = None
    else:
        passed = ratio >= COVERAGE_TARGET_RATIO
    detail = (
        f"C={c}: vectorized n=1..{n} {fast:.3g} s (best of {repeats}), "
        f"python n={n} {slow:.3g} s; v_{n}={ref:.6g}, rel. diff {rel:.2g}"
        + ("" if accurate else " (TOO LARGE)")
    )
    return BenchResult(
        name="coverage_speedup",
        value=ratio,
        target=COVERAGE_TARGET,
        detail=detail,
        passed=passed,
    )


# --------------------------------------------------------------------------- evaluate_flops_fraction
EVALUATE_TARGET_FRACTION = 0.4
EVALUATE_TARGET_RSS = 4 * 2**30


@register("evaluate_flops_fraction")
def evaluate_flops_fraction(quick: bool = False) -> BenchResult:
    """Held-out contrastive estimate (n=100000, d=768, K=256): FLOP/s over the matmul peak."""
    from surrogap.external import bench_evaluate_flops_fraction

    r = bench_evaluate_flops_fraction(quick)
    fits = r["rss_growth_bytes"] < EVALUATE_TARGET_RSS
    if quick:
        passed = None if fits else False
    else:
        passed = r["value"] >= EVALUATE_TARGET_FRACTION and fits
    return BenchResult(
        name="evaluate_flops_fraction",
        value=r["value"],
        target=f">= {EVALUATE_TARGET_FRACTION}, peak RSS growth < 4 GiB",
        detail=r["detail"],
        passed=passed,
    )
