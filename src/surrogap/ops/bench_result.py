"""What one benchmark returns (:class:`BenchResult`), shared by the kernels' benchmarks
(:mod:`surrogap.ops.bench`) and the pipeline's (:mod:`surrogap.ops.bench_pipeline`)."""

from __future__ import annotations

from dataclasses import dataclass


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


def judged(
    name: str, value: float, target: str, met: bool, detail: str, quick: bool, valid: bool = True
):
    """A result whose ratio is judged against its target (`met`), except in a quick run; one
    that fails a check every run makes (not `valid`: an accuracy, a memory limit) fails."""
    passed = (None if quick else met) if valid else False
    return BenchResult(name, value, target, detail, passed)
