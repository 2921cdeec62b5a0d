"""Stage `report`: reports/report.md and its figures, from what earlier stages wrote.

Reads params.yaml (its `report` section only), reports/selected.csv (the select_lr stage),
the pretrain trajectories and train_info.json files, the prepared data's meta.json files
(the Scale section: what was run, not what the params say now), the probe stage's
per-test-point arrays, the evaluate stage's table, the fixed_null stage's table and the
theory stage's figures; writes
report.md and the PNGs atomically, figures first. Everything is built in memory before
anything is written, so a failure leaves the previous report as it was. A user error is
one line on stderr and exit status 2.

    python stages/report.py --params params.yaml --results reports/selected.csv \
        --pretrain-dir data/pretrain --prepared-dir data/prepared --probe-dir data/probe \
        --theory-dir reports/theory \
        --external reports/external.csv --null reports/null.csv \
        --out reports/report.md --figures-dir reports/figures
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from surrogap.core import stage  # first: a Ctrl-C while the rest loads is one line

# isort: split
import matplotlib

matplotlib.use("Agg")

from surrogap.pipeline import report


def build_parser():
    p = stage.parser("report", __doc__)
    p.add_argument("--results", required=True, help="the table of runs (reports/selected.csv)")
    p.add_argument(
        "--pretrain-dir",
        required=True,
        help="holds <dataset>/k<K>/s<seed>/trajectory.csv and train_info.json",
    )
    # absent: samples per class read `unknown` in the Scale section
    p.add_argument("--prepared-dir", default=None, help="holds <dataset>/s<seed>/meta.json")
    p.add_argument("--theory-dir", required=True, help="holds fig3.png, fig4.png")
    p.add_argument("--out", required=True, type=stage.output_path(), help="the Markdown report")
    p.add_argument(
        "--figures-dir",
        required=True,
        type=stage.output_path(folder=True),
        help="where the PNGs go",
    )
    # absent: no per-test-point arrays, so each seed's standard error comes from the runs alone
    p.add_argument("--probe-dir", default=None, help="holds <dataset>/k<K>/s<seed>.npz")
    # absent: no section for external representations
    p.add_argument("--external", default=None, help="the evaluate stage's table")
    # absent: the headline figure draws no fixed-encoder null
    p.add_argument("--null", default=None, help="the fixed_null stage's table (reports/null.csv)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    def body(a) -> None:
        report.run(
            a.params,
            a.results,
            a.pretrain_dir,
            a.prepared_dir,
            a.probe_dir,
            a.theory_dir,
            a.external,
            a.out,
            a.figures_dir,
            null_path=a.null,
        )

    return stage.run("report", build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())
