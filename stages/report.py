"""Stage `report`: reports/report.md and its figures, from what earlier stages wrote.

Reads the `report` section of params.yaml, reports/results.csv (the bounds stage), the
pretrain trajectories and the theory stage's figures; writes report.md and the PNGs
atomically. Everything is built in memory first, so a failure leaves the previous report
as it was. A user error is one line on stderr and exit status 2.

    python stages/report.py --params params.yaml --results reports/results.csv \
        --pretrain-dir data/pretrain --theory-dir reports/theory \
        --out reports/report.md --figures-dir reports/figures
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from surrogap import io, stage
from surrogap import report as rep
from surrogap.config import check_top_level, load_params

THEORY_FIGURES = ("fig3", "fig4")


def build_parser():
    p = stage.parser("report", __doc__)
    p.add_argument("--results", required=True, help="the bounds stage's table")
    p.add_argument(
        "--pretrain-dir", required=True, help="holds <dataset>/k<K>-s<seed>/trajectory.csv"
    )
    p.add_argument("--theory-dir", required=True, help="holds fig3.png, fig4.png")
    p.add_argument(
        "--external", required=True, help="the evaluate stage's table (read if it exists)"
    )
    p.add_argument("--out", required=True, help="the Markdown report")
    p.add_argument("--figures-dir", required=True, help="where the PNGs go")
    return p


def _relative(path: Path, start: Path) -> str:
    """`path` relative to the folder of report.md, with POSIX separators."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def run(args) -> None:
    all_params = load_params(args.params)
    check_top_level(all_params)
    params = rep.parse_params(all_params.get("report"))
    results = rep.load_results(args.results)
    trajectories, missing = rep.load_trajectories(args.pretrain_dir, results)
    out = Path(args.out)
    figures_dir = Path(args.figures_dir)
    theory_links = {
        name: (
            _relative(Path(args.theory_dir) / f"{name}.png", out.parent)
            if (Path(args.theory_dir) / f"{name}.png").is_file()
            else None
        )
        for name in THEORY_FIGURES
    }
    report = rep.build_report(
        results,
        trajectories,
        params,
        figures_rel=_relative(figures_dir, out.parent),
        theory_links=theory_links,
        missing_trajectories=missing,
        sources={"results": args.results, "pretrain_dir": args.pretrain_dir},
        external=rep.load_external(args.external),
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
