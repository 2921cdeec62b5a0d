"""Stage `probe`: mean classifier, linear probe and test contrastive loss of every seed of
params `seed` of one (dataset, K) (and lr of the grid).

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`probe@<dataset>-<K>`, `probe-lr@<dataset>-<K>-<lr>`) and the paths from
surrogap.core.schema. By hand: `--dataset circle --k 4 --data data/prepared/circle
--features data/features/circle/k4 --out data/probe/circle/k4`."""

import sys

from surrogap.core import stage
from surrogap.pipeline import probe


def main(argv=None) -> int:
    return stage.matrix_stage("probe", __doc__, lambda job, _: job.call(probe.run), argv)


if __name__ == "__main__":
    sys.exit(main())
