"""Stage `bounds`: every bound at each run's measured test contrastive loss, in one table."""

import argparse
import sys
from pathlib import Path

from surrogap import config, pipeline


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--probe-dir", required=True, type=Path)
    p.add_argument("--results", required=True, type=Path, help="reports/results.csv")
    p.add_argument("--metrics", required=True, type=Path, help="reports/metrics.json")
    args = p.parse_args(argv)
    return pipeline.stage_main(
        "bounds",
        lambda: pipeline.collect(
            config.load_params(args.params), args.probe_dir, args.results, args.metrics
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
