"""Stage `report`: reports/report.md and its figures, from what earlier stages wrote.

Reads params.yaml (its `report` section, and the dataset sections for the Scale section),
reports/results.csv (the bounds stage), the pretrain trajectories, the probe stage's
per-test-point arrays, the evaluate stage's table and the theory stage's figures; writes
report.md and the PNGs atomically, figures first. Everything is built in memory before
anything is written, so a failure leaves the previous report as it was. A user error is
one line on stderr and exit status 2.

    python stages/report.py --params params.yaml --results reports/results.csv \
        --pretrain-dir data/pretrain --probe-dir data/probe --theory-dir reports/theory \
        --external reports/external.csv --out reports/report.md --figures-dir reports/figures
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from surrogap import io
from surrogap.config import load_params
from surrogap.errors import UserError
from surrogap.pipeline import check_top_level, stage_main
from surrogap.report import load
from surrogap.report.markdown import build_report

THEORY_FIGURES = ("fig3", "fig4")
ARGUMENTS = ("params", "results", "pretrain-dir", "theory-dir", "out", "figures-dir")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="report", description=__doc__.splitlines()[0])
    for name in ARGUMENTS:
        p.add_argument(f"--{name}", required=True)
    # absent: no per-test-point arrays, so the bootstrap resamples seeds only
    p.add_argument("--probe-dir", default=None, help="holds <dataset>/k<K>-s<seed>.npz")
    # absent: no section for external representations
    p.add_argument("--external", default=None, help="the evaluate stage's table")
    return p


def _relative(path: Path, start: Path) -> str:
    """`path` relative to the folder of report.md, with POSIX separators."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def run(args: argparse.Namespace) -> None:
    all_params = load_params(args.params)
    check_top_level(all_params)
    params = load.parse_params(all_params.get("report"))
    results = load.load_results(args.results)
    trajectories, missing = load.load_trajectories(args.pretrain_dir, results)
    points, _ = load.load_points(args.probe_dir, results)
    out, figures_dir, theory = Path(args.out), Path(args.figures_dir), Path(args.theory_dir)
    links = {
        name: _relative(theory / f"{name}.png", out.parent)
        if (theory / f"{name}.png").is_file()
        else None
        for name in THEORY_FIGURES
    }
    report = build_report(
        results,
        trajectories,
        params,
        figures_rel=_relative(figures_dir, out.parent),
        theory_links=links,
        missing_trajectories=missing,
        sources={
            "results": args.results,
            "pretrain_dir": args.pretrain_dir,
            "probe_dir": args.probe_dir,
        },
        external=load.load_external(args.external) if args.external else None,
        points=points,
        run_params=all_params,
    )
    for name, fig in report.figures.items():
        io.write_with(
            figures_dir / name,
            lambda tmp, fig=fig: fig.savefig(
                tmp, format="png", dpi=params.dpi, bbox_inches="tight", pad_inches=0.05
            ),
        )
    io.write_text(out, report.markdown)
    print(f"report: wrote {out} and {len(report.figures)} figures in {figures_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("report", lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
