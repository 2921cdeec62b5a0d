"""Stage `prepare`: one dataset's train/val/test splits for every seed of the params list
`seed`, seed s drawn with data seed `<dataset>.data.seed + s`, into
data/prepared/<dataset>/s<seed>/.

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`prepare@<dataset>`) and the paths from surrogap.core.schema. By hand:
`python stages/prepare.py --dataset circle --out data/prepared/circle --root data/raw`."""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.pipeline import prepare


def main(argv=None) -> int:
    p = stage.parser("prepare", __doc__)
    p.add_argument("--dataset", help="a dataset section of params.yaml (default: DVC_STAGE's)")
    p.add_argument(
        "--out",
        type=stage.output_path(folder=True),
        help="the dataset's folder (data/prepared/<dataset>), one s<seed> folder per seed",
    )
    p.add_argument("--root", type=Path, help="downloads and raw files")

    def body(a) -> None:
        params = stage.instance_params(p, a, "prepare", ("out", "root"))
        prepare.run(params, a.dataset, a.out, a.root)

    return stage.run("prepare", p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
