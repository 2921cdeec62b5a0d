"""Stage `select_lr`: per (dataset, classes, K, seed), the run of the lr grid with the best
validation accuracy, from reports/results.csv into reports/selected.csv. (Not named
`select`: a script of stages/ by that name would shadow the standard library module.)"""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.pipeline import select_lr


def main(argv=None) -> int:
    p = stage.parser("select_lr", __doc__, params=False)
    p.add_argument("--results", required=True, type=Path, help="reports/results.csv")
    p.add_argument("--out", required=True, type=stage.output_path(), help="reports/selected.csv")
    return stage.run("select_lr", p, lambda a: select_lr.run(a.results, a.out), argv)


if __name__ == "__main__":
    sys.exit(main())
