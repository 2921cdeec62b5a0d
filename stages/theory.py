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
from pathlib import Path

try:
    import surrogap  # noqa: F401
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import matplotlib

matplotlib.use("Agg")

from surrogap.errors import UserError
from surrogap.theory import read_params, write_outputs


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stages/theory.py", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    parser.add_argument(
        "--out-dir", default="reports/theory", help="output folder (default reports/theory)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        params = read_params(args.params)
        paths = write_outputs(params, args.out_dir)
    except UserError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"stage theory: {message}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the params path is a folder
        print(f"stage theory: {exc}", file=sys.stderr)
        return 2
    print("stage theory: wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
