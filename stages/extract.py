"""Stage `extract`: frozen features of every split, computed once, encoder in eval mode, for
every seed of params `seed` of one (dataset, K) (and lr of the grid).

Under `dvc repro` it takes no arguments: the instance comes from DVC_STAGE
(`extract@<dataset>-<K>`, `extract-lr@<dataset>-<K>-<lr>`) and the paths from
surrogap.core.schema. By hand: `--dataset circle --k 4 --data data/prepared/circle
--models data/pretrain/circle/k4 --out data/features/circle/k4`."""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.pipeline import extract


def main(argv=None) -> int:
    p = stage.parser("extract", __doc__)
    p.add_argument("--dataset", help="a dataset section of params.yaml (default: DVC_STAGE's)")
    p.add_argument("--k", type=stage.integer(1, "k"))
    p.add_argument(
        "--lr", type=stage.positive_number("lr"), help="the group's lr of the grid, if any"
    )
    p.add_argument("--data", type=Path, help="data/prepared/<dataset>")
    p.add_argument("--models", type=Path, help="the group folder of pretrain's runs")
    p.add_argument("--out", type=stage.output_path(folder=True), help="the group's features folder")

    def body(a) -> None:
        params = stage.instance_params(p, a, "extract", ("k", "data", "models", "out"), ("lr",))
        extract.run(params, a.dataset, a.k, a.data, a.models, a.out, lr=a.lr)

    return stage.run("extract", p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
