"""Stage `extract`: frozen features of every split, computed once, encoder in eval mode, for
every seed of params `seed` of one (dataset, K) (and lr of the grid)."""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import load_params
from surrogap.pipeline import extract


def main(argv=None) -> int:
    p = stage.parser("extract", __doc__)
    p.add_argument("--dataset", required=True)
    p.add_argument("--k", type=stage.integer(1, "k"), required=True)
    p.add_argument(
        "--lr", type=stage.positive_number("lr"), help="the group's lr of the grid, if any"
    )
    p.add_argument("--data", required=True, type=Path, help="data/prepared/<dataset>")
    p.add_argument("--models", required=True, type=Path, help="the group folder of pretrain's runs")
    p.add_argument("--out", required=True, type=Path, help="the group's features folder")
    return stage.run(
        "extract",
        p,
        lambda a: extract.run(
            load_params(a.params), a.dataset, a.k, a.data, a.models, a.out, lr=a.lr
        ),
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
