"""Every column of the CSV tables the stages write (reports/results.csv, external.csv,
null.csv, the trajectories), declared once in :data:`COLUMNS`: its type and allowed values
(as core.files.read_csv reads it), the tolerance `surrogap compare` allows it, its label,
and what writes it. core.schema's column lists, the reader's checks, the probe record's
keys (pipeline.bounds), compare's tolerances and docs/SCALING.md's tolerance table
(tools/docs_tables.py) all derive from it: a new column is one entry here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    """A difference d is within when |d| <= atol + rtol * |reference| (numpy.isclose)."""

    atol: float
    rtol: float
    why: str  # docs/SCALING.md's tolerance table prints it


@dataclass(frozen=True)
class Column:
    """One column. `type` as read_csv types it: "str" (non-empty text), "int", "finite",
    "number" (+-inf allowed, never NaN), "number?" (NaN where undefined) or "bool"; `allowed`
    the (test, words) of its values after typing (NaN is not tested); `results` whether
    reports/results.csv holds it (in this table's order); `writer` what computes it."""

    name: str
    type: str = "number?"
    allowed: tuple[Callable[[float], bool], str] | None = None
    tol: Tolerance | None = None
    results: bool = True
    writer: str = ""
    label: str = ""


# how much an upper bound on R_mu says (theory.bounds.upper_bound_vacuity's words)
VACUITY = ("no", "above_log_c", "vacuous")
_C = (lambda v: v >= 2, "an integer >= 2")
_POS = (lambda v: v >= 1, "an integer >= 1")
_COUNT = (lambda v: v >= 0, "an integer >= 0")
_NONNEG = (lambda v: v >= 0, "a number >= 0")
_UNIT = (lambda v: 0 <= v <= 1, "a number in [0, 1]")
_LOSS = Tolerance(5e-3, 0.0, "losses in nats: about 5 times the largest difference measured between thread counts (R_cont 9.9e-4, R_mu 8.5e-4); the Bao bounds are R_cont plus a gap that does not move")  # fmt: skip
_SE = Tolerance(1e-3, 0.0, "a standard error over pairings, 1.7e-3 on average: its changes matter through Claim 1's margins, which the verdicts check")  # fmt: skip
_ACC = Tolerance(1e-2, 0.0, "accuracies: about twice the largest measured difference (5.6e-3, two test points of digits' 360), about 4 test points")  # fmt: skip
_PROBE_LOSS = Tolerance(1e-2, 0.0, "the linear probe's test loss: a fit on the features that amplifies their noise (4.1e-3 measured between thread counts, digits)")  # fmt: skip
_EXACT = Tolerance(0.0, 1e-9, "functions of K, C and the prior only: no training noise")
_EARLIER = Tolerance(0.0, 5e-3, "affine in R_cont with coefficients up to hundreds: relative, like R_cont's own relative change")  # fmt: skip
_LR = (lambda v: v >= 0, "a number >= 0 (a cosine schedule ends at 0)")
_VACUOUS = (lambda v: v in VACUITY, "one of " + ", ".join(VACUITY))
_EVALUATE = "evaluate stage (estimators.external)"
_PROBE, _EVAL = "probe stage", "probe stage (estimators.evaluation)"
_BOUNDS = "bounds stage (theory.bounds.bounds_at)"

_ALL = (
    # reports/results.csv, in its order
    Column("dataset", "str", writer=_PROBE),
    Column("kind", "str", writer=_PROBE),
    Column("classes", "int", _C, writer=_PROBE),
    Column("k", "int", _POS, writer=_PROBE),
    Column("seed", "int", _COUNT, writer=_PROBE),
    Column("contrastive_loss", "finite", _NONNEG, _LOSS, writer=_EVAL, label="R_cont"),
    Column("contrastive_loss_se", "finite", _NONNEG, _SE, writer=_EVAL),
    Column("contrastive_repeats", "int", _POS, writer=_EVAL),
    Column("supervised_loss", "finite", _NONNEG, _LOSS, writer=_EVAL, label="R_mu"),
    Column("mean_acc", "finite", _UNIT, _ACC, writer=_EVAL, label="mean-classifier acc."),
    Column("linear_acc", "finite", _UNIT, _ACC, writer=_EVAL, label="linear-probe acc."),
    Column("linear_loss", "finite", _NONNEG, _PROBE_LOSS, writer=_EVAL),
    Column("val_supervised_loss", "finite", _NONNEG, _LOSS, writer=_EVAL),
    Column("val_mean_acc", "finite", _UNIT, _ACC, writer=_EVAL),
    Column("lower_gap", "number", tol=_EXACT, writer=_BOUNDS),
    Column("upper_gap", "number", tol=_EXACT, writer=_BOUNDS),
    Column("bao_lower", "number", tol=_LOSS, writer=_BOUNDS, label="Bao lower"),
    Column("bao_upper", "number", tol=_LOSS, writer=_BOUNDS, label="Bao upper"),
    Column("arora", tol=_EARLIER, writer=_BOUNDS),
    Column("nozawa_sato", tol=_EARLIER, writer=_BOUNDS),
    Column("ash", tol=_EARLIER, writer=_BOUNDS),
    Column("holds", "bool", writer="bounds stage (theory.bounds.holds)"),
    # the other tables' own columns
    Column("encoder_k", "int", _POS, results=False, writer="fixed_null stage"),
    Column("epoch", "int", _COUNT, results=False, writer="pretrain stage"),
    Column("train_loss", allowed=_NONNEG, results=False, writer="pretrain stage"),
    Column("val_contrastive_loss", "finite", _NONNEG, results=False, writer="pretrain stage"),
    Column("run", "str", results=False, writer="bounds stage (schema.run_name)"),
    Column("lr", allowed=_LR, results=False, writer="bounds stage (the run's lr)"),
    Column("vacuity", "str", _VACUOUS, results=False, writer=_EVALUATE),
    *(
        Column(n, "int", _COUNT, results=False, writer=_EVALUATE)
        for n in ("n_train", "n_test", "dim")
    ),
)
COLUMNS: dict[str, Column] = {c.name: c for c in _ALL}


def result_columns() -> tuple[str, ...]:
    """The columns of reports/results.csv the bounds stage computes, in order."""
    return tuple(name for name, c in COLUMNS.items() if c.results)


def tolerances() -> dict[str, Tolerance]:
    """What `surrogap compare` allows each compared column of results.csv, in order."""
    return {name: c.tol for name, c in COLUMNS.items() if c.results and c.tol is not None}


def probe_record() -> tuple[str, ...]:
    """The columns of results.csv a probe record holds: those the probe stage writes."""
    return tuple(n for n, c in COLUMNS.items() if c.results and c.writer.startswith(_PROBE))
