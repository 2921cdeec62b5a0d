"""Stage `probe`: mean classifier, linear probe and test contrastive loss of every seed of
params `seed` of one (dataset, K) (and lr of the grid)."""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import load_params
from surrogap.pipeline import probe


def main(argv=None) -> int:
    p = stage.parser("probe", __doc__)
    p.add_argument("--dataset", required=True)
    p.add_argument("--k", type=stage.integer(1, "k"), required=True)
    p.add_argument(
        "--lr", type=stage.positive_number("lr"), help="the group's lr of the grid, if any"
    )
    p.add_argument("--data", required=True, type=Path, help="data/prepared/<dataset>")
    p.add_argument("--features", required=True, type=Path, help="the group's features folder")
    p.add_argument("--out", required=True, type=Path, help="the group's probe folder")
    return stage.run(
        "probe",
        p,
        lambda a: probe.run(
            load_params(a.params), a.dataset, a.k, a.data, a.features, a.out, lr=a.lr
        ),
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
