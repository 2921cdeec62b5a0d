"""Stage `pretrain`: contrastive pre-training of one (dataset, K, seed) run, resumable."""

import argparse
import sys
from pathlib import Path

from surrogap import config, pipeline


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--dataset", required=True)
    p.add_argument("--k", type=int, required=True, help="negatives per anchor")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--data", required=True, type=Path, help="the prepared dataset folder")
    p.add_argument("--out", required=True, type=Path, help="output folder (model.pt, trajectory.csv, live/)")
    p.add_argument("--checkpoints", required=True, type=Path, help="resumable checkpoint folder")
    args = p.parse_args(argv)
    return pipeline.stage_main(
        "pretrain",
        lambda: pipeline.pretrain(config.load_params(args.params), args.dataset, args.k, args.seed,
                                  args.data, args.out, args.checkpoints),
    )


if __name__ == "__main__":
    sys.exit(main())
