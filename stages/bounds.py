"""Stage `bounds`: every bound at each run's measured test contrastive loss, in one table."""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import load_params
from surrogap.pipeline import bounds


def main(argv=None) -> int:
    p = stage.parser("bounds", __doc__)
    p.add_argument("--probe-dir", required=True, type=Path)
    p.add_argument("--results", required=True, type=stage.output_path(), help="reports/results.csv")
    p.add_argument(
        "--metrics",
        required=True,
        type=stage.output_path(folder=True),
        help="reports/metrics (a folder of .json)",
    )
    p.add_argument(
        "--prepared-dir",
        type=Path,
        default=None,
        help="data/prepared: each probe record's classes, kind and prior checked against it",
    )
    return stage.run(
        "bounds",
        p,
        lambda a: bounds.run(
            load_params(a.params), a.probe_dir, a.results, a.metrics, a.prepared_dir
        ),
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
