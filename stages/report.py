"""Stage `report`: reports/report.md and its figures, from what earlier stages wrote.

Reads params.yaml (its `report` section only), reports/selected.csv (the select_lr stage),
the pretrain trajectories and train_info.json files, the prepared data's meta.json files
(the Scale section: what was run, not what the params say now), the probe stage's
per-test-point arrays, the evaluate stage's table and the theory stage's figures; writes
report.md and the PNGs atomically, figures first. Everything is built in memory before
anything is written, so a failure leaves the previous report as it was. A user error is
one line on stderr and exit status 2.

    python stages/report.py --params params.yaml --results reports/selected.csv \
        --pretrain-dir data/pretrain --prepared-dir data/prepared --probe-dir data/probe \
        --theory-dir reports/theory \
        --external reports/external.csv --out reports/report.md --figures-dir reports/figures
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from surrogap.core import io, stage
from surrogap.core.config import check_top_level, load_params
from surrogap.report import load
from surrogap.report.markdown import build_report

THEORY_FIGURES = ("fig3", "fig4")


def build_parser():
    p = stage.parser("report", __doc__)
    p.add_argument("--results", required=True, help="the table of runs (reports/selected.csv)")
    p.add_argument(
        "--pretrain-dir",
        required=True,
        help="holds <dataset>/k<K>-s<seed>/trajectory.csv and train_info.json",
    )
    # absent: samples per class read `unknown` in the Scale section
    p.add_argument("--prepared-dir", default=None, help="holds <dataset>/s<seed>/meta.json")
    p.add_argument("--theory-dir", required=True, help="holds fig3.png, fig4.png")
    p.add_argument("--out", required=True, help="the Markdown report")
    p.add_argument("--figures-dir", required=True, help="where the PNGs go")
    # absent: no per-test-point arrays, so the bootstrap resamples seeds only
    p.add_argument("--probe-dir", default=None, help="holds <dataset>/k<K>-s<seed>.npz")
    # absent: no section for external representations
    p.add_argument("--external", default=None, help="the evaluate stage's table")
    return p


def _relative(path: Path, start: Path) -> str:
    """`path` relative to the folder of report.md, with POSIX separators."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def run(args) -> None:
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
        scale=load.load_scale(args.pretrain_dir, args.prepared_dir, results),
    )
    # the figures folder first, replaced as a whole; the Markdown that links them last
    with io.atomic_dir(figures_dir) as tmp:
        for name, fig in report.figures.items():
            fig.savefig(
                tmp / name, format="png", dpi=params.dpi, bbox_inches="tight", pad_inches=0.05
            )
    io.write_text(out, report.markdown)
    print(f"report: wrote {out} and {len(report.figures)} figures in {figures_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    return stage.run("report", build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
