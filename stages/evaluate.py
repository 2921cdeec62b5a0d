"""Stage `evaluate`: the surrogate gap of external encoders' features, one row per (entry, K).

Reads params section `evaluate` (a list of feature files, K values, repeats, seed) and
writes one CSV with the columns of reports/results.csv that apply, plus `dataset`. Every
feature and labels file lies inside the `--inputs` folder (data/external), the stage's dep.
"""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import load_params
from surrogap.pipeline import evaluate


def main(argv=None) -> int:
    p = stage.parser("evaluate", __doc__)
    p.add_argument("--out", required=True, type=stage.output_path(), help="reports/external.csv")
    p.add_argument(
        "--inputs", required=True, type=Path, help="the folder every feature file lies in"
    )
    return stage.run(
        "evaluate", p, lambda a: evaluate.run(load_params(a.params), a.out, a.inputs), argv
    )


if __name__ == "__main__":
    sys.exit(main())
