"""The `surrogap` command line: bounds, evaluate, bench, sweep, compare and doctor.

Every user error (a `UserError`) is one line on stderr and exit status 2, never a
traceback; any other exception is a bug and shows its traceback. stdout closed or full is
one line and exit status 74, Ctrl-C one line and 130 (`surrogap.core.errors`); a closed
output pipe (`surrogap bounds ... | head`) ends quietly (141).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from surrogap import __version__
from surrogap.core import errors
from surrogap.core.argtypes import Parser, float_value, int_value, output_path, refuse_overlap
from surrogap.core.errors import UserError
from surrogap.core.schema import BOUND_COLUMNS, EVALUATE_TABLE_COLUMNS
from surrogap.theory import bounds
from surrogap.theory import records as bound_records

_k_value = int_value("k", 1, bounds.MAX_K, bounds.K_ALLOWED)
_classes_value = int_value("classes", 2, bounds.MAX_CLASSES, bounds.CLASSES_ALLOWED)
# a pairing costs about a second per million test points: 10,000 repeats bound a call to
# hours at most, where 1e9 ran for ever (the paper and the pipeline use 10)
MAX_REPEATS = 10_000
_repeats_value = int_value("repeats", 1, MAX_REPEATS, f"an integer in 1..{MAX_REPEATS}")
_seed_value = int_value("seed", 0)


def _prior_value(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"prior must be comma-separated probabilities like 0.5,0.3,0.2, got {text!r}"
        ) from None


def format_table(records: list[dict], columns: Sequence[str]) -> str:
    """A plain fixed-width table; None prints as its `why_null` reason (`undefined`, `inf`,
    `-inf`, `n/a` for "uniform prior only"), or `undefined` where the record gives none."""

    def cell(value, why: str | None) -> str:
        if value is None:
            return _NULL_CELL.get(why, "undefined")
        if isinstance(value, float):
            return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.4e}"
        return str(value)

    rows = [[cell(r.get(col), r.get("why_null", {}).get(col)) for col in columns] for r in records]
    widths = [max(len(col), *(len(row[i]) for row in rows)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.rjust(w) for col, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


_NULL_CELL = {
    bound_records.UNDEFINED: "undefined",
    bound_records.UNIFORM_ONLY: "n/a",
    bound_records.OVERFLOW: "inf",
    bound_records.NEGATIVE_OVERFLOW: "-inf",
}


def _cmd_bounds(args: argparse.Namespace) -> int:
    if args.classes is None and args.prior is None:
        raise UserError("surrogap bounds: give --classes C (an integer >= 2) or --prior p1,p2,...")
    records = bound_records.bounds_records(
        args.k, args.classes, args.loss, args.prior, args.b, allow_below_ideal=True
    )
    if not args.allow_below_ideal:
        bound_records.check_reachable(records, "or --allow-below-ideal to print the rows, marked")
    if args.json:
        print(json.dumps(records, indent=2, allow_nan=False))
        return 0
    head = records[0]
    print(f"C = {head['classes']}, b = {args.b:g}" + (", prior given" if args.prior else ""))
    marked = ["below_ideal"] if args.allow_below_ideal else []
    cols = (
        ["k", "lower_gap", "upper_gap", "optimal_contrastive_loss", "optimal_supervised_loss"]
        if args.loss is None
        else ["k", "loss", *marked, *BOUND_COLUMNS]
    )
    print(format_table(records, cols))
    below = [r for r in records if r.get("below_ideal")]
    if below:
        print(
            "below_ideal True: the loss lies below R_cont*(K, C, b) = "
            + ", ".join(f"{r['optimal_contrastive_loss']:.6g} (K = {r['k']})" for r in below)
            + ", which no encoder with feature norm <= b reaches; those bounds describe no encoder"
        )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from surrogap.ops import bench

    results = bench.run_all(quick=args.quick)
    if args.json:
        print(json.dumps({name: r.value for name, r in results.items()}, indent=2))
    else:
        print(bench.format_results(results))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from surrogap.estimators import external
    from surrogap.plots.gap import save_plot

    keys = {name: getattr(args, name) for name in ("features_key", "labels_key", "split_column")}
    fs = external.read_features(args.features, labels_path=args.labels, **keys)
    records = external.evaluate(fs, args.k, args.repeats, args.seed, args.test_fraction, args.prior)
    if args.plot is not None:
        save_plot(records, args.plot, fs.source)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    head = records[0]
    print(
        f"{fs.source}: C = {head['classes']}, d = {head['dim']}, {head['n_train']} train, "
        f"{head['n_test']} test, {args.prior} prior, b = 1 (L2-normalized), {args.repeats} repeats"
    )
    print(format_table(records, EVALUATE_TABLE_COLUMNS))
    for line in _vacuity_lines(records):
        print(line)
    return 0


def _vacuity_lines(records: list[dict]) -> list[str]:
    """What the vacuity column means, for the K where Bao's upper bound says little."""
    c = records[0]["classes"]
    lines = []
    for level, threshold, meaning in (
        (bounds.ABOVE_LOG_C, f"log C = {math.log(c):.6g}", "weaker than predicting uniformly"),
        (
            bounds.VACUOUS,
            f"log(1 + (C - 1) e^2) = {bounds.max_supervised_loss(c):.6g}, the largest R_mu "
            "possible at b = 1",
            "vacuous, it excludes no R_mu (holds is True trivially)",
        ),
    ):
        ks = [str(r["k"]) for r in records if r["vacuity"] == level]
        if ks:
            lines.append(
                f"vacuity {level}: bao_upper above {threshold} at K = {', '.join(ks)}: {meaning}"
            )
    return lines


def _cmd_compare(args: argparse.Namespace) -> int:
    from surrogap.report import compare  # pandas and the report's code: only when it runs

    return compare.run_command(args.paths, args.ref, args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="surrogap", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"surrogap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser(
        "bounds",
        help="the gaps and every bound for given K, C (or prior) and contrastive loss",
        description="Bao et al.'s two-sided bound and the earlier upper bounds, per K.",
    )
    p.add_argument(
        "--k", type=_k_value, nargs="+", required=True, help="numbers of negatives K >= 1"
    )
    p.add_argument(
        "--classes", type=_classes_value, help="number of classes C >= 2 (uniform prior)"
    )
    p.add_argument(
        "--loss",
        type=float_value("loss", minimum=0.0),
        nargs="+",
        help="contrastive loss(es) in nats, >= 0",
    )
    p.add_argument(
        "--prior", type=_prior_value, help="class prior, comma-separated (replaces a uniform C)"
    )
    p.add_argument(
        "--b", type=float_value("b"), default=1.0, help="feature-norm bound b (default 1)"
    )
    p.add_argument(
        "--allow-below-ideal",
        action="store_true",
        help="print a loss below R_cont*(K, C, b), the lowest any encoder reaches, marked "
        "(a column and the JSON field below_ideal) instead of refusing it",
    )
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    p.set_defaults(func=_cmd_bounds)

    p = sub.add_parser("bench", help="measure speed ratios and print a table (or --json)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--quick", action="store_true", help="smaller sizes (a smoke run, not the targets)"
    )
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "evaluate",
        help="contrastive loss, R_mu and every bound per K for any encoder's features",
        description="The surrogate gap of given features (n, d) and labels, per K: the test "
        "contrastive loss, R_mu and accuracy of the mean classifier, and every bound.",
    )
    p.add_argument(
        "features", help="a .npy, .npz, Parquet or Arrow/Feather file, or a datasets folder"
    )
    p.add_argument("--labels", help="a separate labels file (.npy, .txt or .csv)")
    p.add_argument(
        "--k", type=_k_value, nargs="+", required=True, help="numbers of negatives K >= 1"
    )
    p.add_argument(
        "--features-key",
        "--features-column",
        dest="features_key",
        help="npz key or table column of the features (default: features/x, or features/embedding)",
    )
    p.add_argument(
        "--labels-key",
        "--labels-column",
        dest="labels_key",
        help="npz key or column of the labels (default: labels/y, or label/labels)",
    )
    p.add_argument(
        "--split-column",
        help='key or column of "train"/"test" values (default: a stratified split)',
    )
    p.add_argument(
        "--test-fraction",
        type=float_value("test fraction"),
        default=0.3,
        help="test share of each class in the stratified split (default 0.3)",
    )
    p.add_argument(
        "--repeats",
        type=_repeats_value,
        default=10,
        help="independent pairings and negative draws (default 10)",
    )
    p.add_argument(
        "--seed", type=_seed_value, default=0, help="seed of the split and the draws (default 0)"
    )
    p.add_argument(
        "--prior",
        choices=["uniform", "empirical"],
        default="uniform",
        help="class prior of the bounds (empirical: train class frequencies)",
    )
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    p.add_argument(
        "--plot",
        metavar="OUT.png",
        type=output_path(),
        help="write the surrogate gap against K as PNG",
    )
    p.set_defaults(func=_cmd_evaluate)

    from surrogap.ops import sweep  # imports dask and dvc only when it runs

    sweep.add_subparser(sub)

    p = sub.add_parser(
        "compare",
        help="a reproduced reports/ against a reference: differences, tolerances, verdicts",
        description="Compare a reproduced results table (a results.csv or a reports/ folder) "
        "with a reference one, per numeric column against docs/SCALING.md's tolerances, and "
        "recompute the report's claim verdicts and every per-dataset verdict from both. First "
        "it says where the two sides' params, grids or seeds per (dataset, K) differ, and "
        "marks each verdict change as following from that design or from the numbers. Exit "
        "0: the same design, no verdict changed and all within tolerance; 1: something did "
        "not; 2: bad input.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="REPRODUCED REFERENCE (each a results.csv or a reports/ folder); with --ref, "
        "only REPRODUCED (default: reports)",
    )
    p.add_argument(
        "--ref",
        metavar="REV",
        help="the reference is reports/ (and params.yaml) as committed at this git revision",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_compare)

    from surrogap.ops import doctor  # standard library only until it runs

    doctor.add_subparser(sub)
    return parser


def _join_option_values(argv: Sequence[str]) -> list[str]:
    """`--prior -0.5,1.5` -> `--prior=-0.5,1.5`: argparse would take a value that starts
    with '-' for an option, and the error would not name the bad value."""
    out: list[str] = []
    it = iter(argv)
    for token in it:
        if token == "--prior":
            value = next(it, None)
            out.append(token if value is None else f"--prior={value}")
        else:
            out.append(token)
    return out


def _one_line(exc: Exception) -> str:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return message if message.startswith("surrogap") else f"surrogap: error: {message}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and run one command inside the one error boundary
    (`surrogap.core.errors.boundary`): a user error is one line and exit status 2, stdout
    closed or full one line and 74, Ctrl-C one line and 130, a closed pipe 141 quietly."""
    argv = _join_option_values(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    prefix = "surrogap" + (f" {command}" if command in _COMMANDS else "")

    def body() -> int:
        parser = build_parser()
        args = parser.parse_args(argv)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        refuse_overlap(sub.choices[args.command], args)  # the subcommand's own options
        return args.func(args)

    return errors.boundary(prefix, body, say=_one_line)


_COMMANDS = ("bounds", "evaluate", "bench", "sweep", "compare", "doctor")


if __name__ == "__main__":
    sys.exit(main())
