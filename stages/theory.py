"""Stage `theory`: the ideal curves of Bao et al. (ICML 2022), Fig. 3 and Fig. 4.

Reads the `theory` section of the params file (classes_fig3, classes_fig4, k_max, b),
validates it before writing anything, and writes fig3.csv, fig3.png, fig4.csv and
fig4.png into the output folder, which is replaced as a whole (all four files or none). A bad parameter is one line on stderr
and exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from surrogap.core import stage  # first: a Ctrl-C while the rest loads is one line

# isort: split
import matplotlib

matplotlib.use("Agg")

from surrogap.pipeline import theory


def main(argv: Sequence[str] | None = None) -> int:
    p = stage.parser("theory", __doc__)
    p.add_argument(
        "--out-dir", required=True, type=stage.output_path(folder=True), help="output folder"
    )

    def body(args) -> None:
        paths = theory.run(args.params, args.out_dir)
        print("stage theory: wrote " + ", ".join(str(p) for p in paths))

    return stage.run("theory", p, body, argv)


if __name__ == "__main__":
    sys.exit(main())
