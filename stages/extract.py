"""Stage `extract`: frozen features of every split, computed once, encoder in eval mode."""

import sys
from pathlib import Path

from surrogap.core import stage
from surrogap.core.config import load_params
from surrogap.pipeline import extract


def main(argv=None) -> int:
    p = stage.parser("extract", __doc__)
    p.add_argument("--data", required=True, type=Path, help="the prepared dataset folder")
    p.add_argument("--model", required=True, type=Path, help="model.pt written by pretrain")
    p.add_argument("--out", required=True, type=Path, help="features .npz")
    return stage.run(
        "extract", p, lambda a: extract.run(load_params(a.params), a.data, a.model, a.out), argv
    )


if __name__ == "__main__":
    sys.exit(main())
