"""Stage `extract`: frozen features of every split, computed once, encoder in eval mode."""

import argparse
import sys
from pathlib import Path

from surrogap import config, pipeline


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--data", required=True, type=Path, help="the prepared dataset folder")
    p.add_argument("--model", required=True, type=Path, help="model.pt written by pretrain")
    p.add_argument("--out", required=True, type=Path, help="features .npz")
    args = p.parse_args(argv)
    return pipeline.stage_main(
        "extract",
        lambda: pipeline.extract(config.load_params(args.params), args.data, args.model, args.out),
    )


if __name__ == "__main__":
    sys.exit(main())
