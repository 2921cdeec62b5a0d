"""Stage `probe`: mean classifier, linear probe and test contrastive loss of every seed of
params `seed` of one (dataset, K) (and lr of the grid).

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`probe@<dataset>-<K>`, `probe-lr@<dataset>-<K>-<lr>`) and the paths from
surrogap.core.schema. By hand: `--dataset circle --k 4 --data data/prepared/circle
--features data/features/circle/k4 --out data/probe/circle/k4`."""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.pipeline import probe


def main(argv=None) -> int:
    p = stage.parser("probe", __doc__)
    p.add_argument("--dataset", help="a dataset section of params.yaml (default: DVC_STAGE's)")
    p.add_argument("--k", type=stage.integer(1, "k"))
    p.add_argument(
        "--lr", type=stage.positive_number("lr"), help="the group's lr of the grid, if any"
    )
    p.add_argument("--data", type=Path, help="data/prepared/<dataset>")
    p.add_argument("--features", type=Path, help="the group's features folder")
    p.add_argument("--out", type=stage.output_path(folder=True), help="the group's probe folder")

    def body(a) -> None:
        params = stage.instance_params(p, a, "probe", ("k", "data", "features", "out"), ("lr",))
        probe.run(params, a.dataset, a.k, a.data, a.features, a.out, lr=a.lr)

    return stage.run("probe", p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
