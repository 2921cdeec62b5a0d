"""Stage `prepare`: build one dataset's train/val/test splits into data/prepared/<dataset>/."""

import argparse
import sys
from pathlib import Path

from surrogap import config, pipeline


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--dataset", required=True, help="a dataset section of params.yaml")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--root", default=Path("data/raw"), type=Path, help="downloads and raw files")
    args = p.parse_args(argv)
    return pipeline.stage_main(
        "prepare",
        lambda: pipeline.prepare(
            config.load_params(args.params), args.dataset, args.out, args.root
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
