"""Stage `extract`: frozen features of every split, computed once, encoder in eval mode, for
every seed of params `seed` of one (dataset, K) (and lr of the grid).

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`extract@<dataset>-<K>`, `extract-lr@<dataset>-<K>-<lr>`) and the paths from
surrogap.core.schema. By hand: `--dataset circle --k 4 --data data/prepared/circle
--models data/pretrain/circle/k4 --out data/features/circle/k4`."""

import sys

from surrogap.core import stage
from surrogap.pipeline import extract


def main(argv=None) -> int:
    return stage.matrix_stage("extract", __doc__, lambda job, _: job.call(extract.run), argv)


if __name__ == "__main__":
    sys.exit(main())
