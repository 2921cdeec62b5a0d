"""Stage `fixed_null`: the mechanical null of the gap's decay, one fixed encoder per (dataset,
seed) (the one trained at the smallest K of the grid) evaluated at every K, into one table.

    python stages/fixed_null.py --params params.yaml --features-dir data/features \
        --prepared-dir data/prepared --out reports/null.csv
"""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import load_params
from surrogap.pipeline import fixed_null


def main(argv=None) -> int:
    p = stage.parser("fixed_null", __doc__)
    p.add_argument("--features-dir", required=True, type=Path, help="data/features")
    p.add_argument("--prepared-dir", required=True, type=Path, help="data/prepared")
    p.add_argument("--out", required=True, type=stage.output_path(), help="reports/null.csv")
    return stage.run(
        "fixed_null",
        p,
        lambda a: fixed_null.run(load_params(a.params), a.features_dir, a.prepared_dir, a.out),
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
