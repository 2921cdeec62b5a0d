"""Stage `prepare`: one dataset's train/val/test splits for every seed of the params list
`seed`, seed s drawn with data seed `<dataset>.data.seed + s`, into
data/prepared/<dataset>/s<seed>/.

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`prepare@<dataset>`) and the paths from surrogap.core.schema. By hand:
`python stages/prepare.py --dataset circle --out data/prepared/circle --root data/raw`."""

import sys

from surrogap.core import stage
from surrogap.pipeline import prepare


def main(argv=None) -> int:
    return stage.matrix_stage("prepare", __doc__, lambda job, _: job.call(prepare.run), argv)


if __name__ == "__main__":
    sys.exit(main())
