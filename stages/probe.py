"""Stage `probe`: mean classifier, linear probe and test contrastive loss of one run."""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import load_params
from surrogap.pipeline import probe


def main(argv=None) -> int:
    p = stage.parser("probe", __doc__)
    p.add_argument("--dataset", required=True)
    p.add_argument("--k", type=stage.integer(1, "k"), required=True)
    p.add_argument("--seed", type=stage.integer(0, "seed"), required=True)
    p.add_argument(
        "--lr", type=stage.positive_number("lr"), help="the run's lr of the grid, if any"
    )
    p.add_argument(
        "--data", required=True, type=Path, help="the prepared dataset folder (meta.json)"
    )
    p.add_argument("--features", required=True, type=Path, help="features .npz written by extract")
    p.add_argument("--out", required=True, type=Path, help="the run's result .json")
    p.add_argument(
        "--points", type=Path, help="the run's per-test-point losses and correctness (.npz)"
    )
    return stage.run(
        "probe",
        p,
        lambda a: probe.run(
            load_params(a.params),
            a.dataset,
            a.k,
            a.seed,
            a.data,
            a.features,
            a.out,
            lr=a.lr,
            points_path=a.points,
        ),
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
