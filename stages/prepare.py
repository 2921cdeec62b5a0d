"""Stage `prepare`: one dataset's train/val/test splits for every seed of params `seed`,
each drawn with data seed `<dataset>.data.seed + seed`, into data/prepared/<dataset>/s<seed>/."""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import load_params
from surrogap.pipeline import prepare


def main(argv=None) -> int:
    p = stage.parser("prepare", __doc__)
    p.add_argument("--dataset", required=True, help="a dataset section of params.yaml")
    p.add_argument("--out", required=True, type=Path, help="the dataset's folder (s<seed>/ inside)")
    p.add_argument("--root", required=True, type=Path, help="downloads and raw files")
    return stage.run(
        "prepare",
        p,
        lambda a: prepare.run(load_params(a.params), a.dataset, a.out, a.root),
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
