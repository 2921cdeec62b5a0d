"""Stage `probe`: mean classifier, linear probe and test contrastive loss of one run."""

import argparse
import sys
from pathlib import Path

from surrogap import config, pipeline


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--dataset", required=True)
    p.add_argument("--k", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument(
        "--data", required=True, type=Path, help="the prepared dataset folder (meta.json)"
    )
    p.add_argument("--features", required=True, type=Path, help="features .npz written by extract")
    p.add_argument("--out", required=True, type=Path, help="the run's result .json")
    args = p.parse_args(argv)
    return pipeline.stage_main(
        "probe",
        lambda: pipeline.probe(
            config.load_params(args.params),
            args.dataset,
            args.k,
            args.seed,
            args.data,
            args.features,
            args.out,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
