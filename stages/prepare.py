"""Stage `prepare`: one dataset's train/val/test splits for every seed of the params list
`seed`, seed s drawn with data seed `<dataset>.data.seed + s`, into
data/prepared/<dataset>/s<seed>/.

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`prepare@<dataset>`) and the paths from surrogap.core.schema. By hand:
`python stages/prepare.py --dataset circle --out data/prepared/circle --root data/raw`."""

import sys

from surrogap.core import stage
from surrogap.pipeline import prepare

PATHS = {
    "out": "the dataset's folder (data/prepared/<dataset>), one s<seed> folder per seed",
    "root": "downloads and raw files",
}


def main(argv=None) -> int:
    def body(job: stage.Job, _) -> None:
        prepare.run(job.params, job.dataset, *job.paths.values())

    return stage.matrix_stage("prepare", __doc__, PATHS, body, argv)


if __name__ == "__main__":
    sys.exit(main())
