"""Stage `evaluate`: the surrogate gap of external encoders' features, one row per (entry, K).

Reads params section `evaluate` (a list of feature files, K values, repeats, seed) and
writes one CSV with the columns of reports/results.csv that apply, plus `dataset`.
"""

import sys
from pathlib import Path

from surrogap import external, stage
from surrogap.config import load_params


def main(argv=None) -> int:
    p = stage.parser("evaluate", __doc__)
    p.add_argument("--out", required=True, type=Path, help="reports/external.csv")
    return stage.run(
        "evaluate", p, lambda a: external.run_stage(load_params(a.params), a.out), argv
    )


if __name__ == "__main__":
    sys.exit(main())
