"""Stage `probe`: mean classifier, linear probe and test contrastive loss of every seed of
params `seed` of one (dataset, K) (and lr of the grid).

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`probe@<dataset>-<K>`, `probe-lr@<dataset>-<K>-<lr>`) and the paths from
surrogap.core.schema. By hand: `--dataset circle --k 4 --data data/prepared/circle
--features data/features/circle/k4 --out data/probe/circle/k4`."""

import sys

from surrogap.core import stage
from surrogap.pipeline import probe

PATHS = {
    "data": "data/prepared/<dataset>",
    "features": "the group's features folder",
    "out": "the group's probe folder",
}


def main(argv=None) -> int:
    def body(job: stage.Job, _) -> None:
        probe.run(job.params, job.dataset, job.k, *job.paths.values(), lr=job.lr)

    return stage.matrix_stage("probe", __doc__, PATHS, body, argv)


if __name__ == "__main__":
    sys.exit(main())
