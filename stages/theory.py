"""Stage `theory`: the ideal curves of Bao et al. (ICML 2022), Fig. 3 and Fig. 4.

    python stages/theory.py --params params.yaml --out-dir reports/theory

Reads the `theory` section of the params file (classes_fig3, classes_fig4, k_max, b),
validates it before writing anything, and writes fig3.csv, fig3.png, fig4.csv and
fig4.png into the output folder, each atomically. A bad parameter is one line on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

from surrogap.errors import UserError
from surrogap.pipeline import stage_main
from surrogap.theory import read_params, write_outputs


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stages/theory.py", description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True, help="params file (section `theory`)")
    parser.add_argument("--out-dir", required=True, help="output folder")
    return parser


def run(argv: Sequence[str] | None) -> None:
    args = build_parser().parse_args(argv)
    paths = write_outputs(read_params(args.params), args.out_dir)
    print("stage theory: wrote " + ", ".join(str(p) for p in paths.values()))


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("theory", lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
