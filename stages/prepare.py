"""Stage `prepare`: one (dataset, seed)'s train/val/test splits, drawn with data seed
`<dataset>.data.seed + seed`, into data/prepared/<dataset>/s<seed>/.

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`prepare@<dataset>-<seed>`) and the paths from surrogap.core.schema. By hand:
`python stages/prepare.py --dataset circle --seed 0 --out data/prepared/circle/s0 --root data/raw`."""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import SEED_MAX
from surrogap.pipeline import prepare


def main(argv=None) -> int:
    p = stage.parser("prepare", __doc__)
    p.add_argument("--dataset", help="a dataset section of params.yaml (default: DVC_STAGE's)")
    p.add_argument(
        "--seed",
        type=stage.integer(0, "seed", SEED_MAX),
        help="the training seed whose data to draw",
    )
    p.add_argument(
        "--out",
        type=stage.output_path(folder=True),
        help="the seed's folder (data/prepared/<dataset>/s<seed>)",
    )
    p.add_argument("--root", type=Path, help="downloads and raw files")

    def body(a) -> None:
        params = stage.instance_params(p, a, "prepare", ("seed", "out", "root"))
        prepare.run(params, a.dataset, a.seed, a.out, a.root)

    return stage.run("prepare", p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
