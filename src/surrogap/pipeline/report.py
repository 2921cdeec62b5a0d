"""The `report` stage: reports/report.md and its figures, from what earlier stages wrote.

Everything is built in memory before anything is written (figures folder first, replaced as
a whole; the Markdown that links them last), so a failure leaves the previous report."""

from __future__ import annotations

import os
from pathlib import Path

from surrogap.core import io
from surrogap.core.config import check_top_level, load_params
from surrogap.report import load
from surrogap.report.markdown import build_report

THEORY_FIGURES = ("fig3", "fig4")


def _relative(path: Path, start: Path) -> str:
    """`path` relative to the folder of report.md, with POSIX separators."""
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def run(
    params_path: str | Path,
    results_path: str | Path,
    pretrain_dir: str | Path,
    prepared_dir: str | Path | None,
    probe_dir: str | Path | None,
    theory_dir: str | Path,
    external_path: str | Path | None,
    out_path: str | Path,
    figures_path: str | Path,
    null_path: str | Path | None = None,
) -> None:
    """Build the whole report in memory, then write the figures folder and report.md."""
    all_params = load_params(params_path)
    check_top_level(all_params)
    params = load.parse_params(all_params.get("report"))
    results = load.load_results(results_path)
    trajectories, missing = load.load_trajectories(pretrain_dir, results)
    points, _ = load.load_points(probe_dir, results)
    out, figures_dir, theory = Path(out_path), Path(figures_path), Path(theory_dir)
    pngs = {name: theory / f"{name}.png" for name in THEORY_FIGURES}
    links = {name: _relative(f, out.parent) if f.is_file() else None for name, f in pngs.items()}
    report = build_report(
        results,
        trajectories,
        params,
        figures_rel=_relative(figures_dir, out.parent),
        theory_links=links,
        missing_trajectories=missing,
        sources={"results": results_path, "pretrain_dir": pretrain_dir, "probe_dir": probe_dir},
        external=load.load_external(external_path) if external_path else None,
        points=points,
        scale=load.load_scale(pretrain_dir, prepared_dir, results),
        null=load.load_null(null_path) if null_path else None,
    )
    with io.atomic_dir(figures_dir) as tmp:
        for name, fig in report.figures.items():
            fig.savefig(
                tmp / name, format="png", dpi=params.dpi, bbox_inches="tight", pad_inches=0.05
            )
    io.write_text(out, report.markdown)
    print(f"report: wrote {out} and {len(report.figures)} figures in {figures_dir}")
