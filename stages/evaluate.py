"""Stage `evaluate`: the surrogate gap of external encoders' features, one row per (entry, K).

Reads params section `evaluate` (a list of feature files, K values, repeats, seed) and
writes one CSV with the columns of reports/results.csv that apply, plus `dataset`.
"""

import argparse
import sys
from pathlib import Path

from surrogap import config, external, pipeline


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--out", required=True, type=Path, help="reports/external.csv")
    args = p.parse_args(argv)
    return pipeline.stage_main(
        "evaluate", lambda: external.run_stage(config.load_params(args.params), args.out)
    )


if __name__ == "__main__":
    sys.exit(main())
