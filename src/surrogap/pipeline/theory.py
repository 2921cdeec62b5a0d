"""The `theory` stage: the ideal curves of Fig. 3 and Fig. 4 (frames from
:mod:`surrogap.theory.curves`, figures from :mod:`surrogap.plots.theory`), written as
fig3/fig4 .csv/.png into a folder replaced as a whole."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated

from pydantic import Field

from surrogap.core import config, io
from surrogap.core.config import distinct, model, spec
from surrogap.plots.theory import plot_fig3, plot_fig4
from surrogap.theory.curves import K_MAX_LIMIT, fig3_frame, fig4_frame


@model
class TheoryParams:
    """The `theory` section of params.yaml (``config.parse(TheoryParams, section, "theory")``:
    missing keys take these defaults; an unknown key, a wrong type or a value out of range is
    one UserError line naming the key, the value and what is allowed)."""

    # the numbers of classes C of Fig. 3, one curve pair each
    classes_fig3: tuple[Annotated[int, Field(ge=2)], ...] = spec(
        (50, 100),
        min_length=1,
        check=distinct,
        allowed="a non-empty list of distinct integers >= 2, like [50, 100]",
    )
    # the number of classes C of Fig. 4
    classes_fig4: int = spec(10, ge=2)
    # both figures run over K = 1..k_max
    k_max: int = spec(99, ge=1, le=K_MAX_LIMIT, allowed=f"an integer in [1, {K_MAX_LIMIT}]")
    # the feature norm b of the ideal encoder: same-class inner products b^2, others -b^2
    b: float = spec(1.0, gt=0, allowed="a finite number > 0")


def read_params(path: str | os.PathLike) -> TheoryParams:
    """Read the `theory` section of a YAML params file (UserError if absent or invalid),
    after checking every top-level key."""
    params = config.load_params(path)
    config.check_top_level(params)
    return config.parse(TheoryParams, config.section(params, "theory"), "theory")


def _save_png(fig) -> Callable[[Path], None]:
    return lambda tmp: fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")


def write_outputs(params: TheoryParams, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Compute both frames and figures, then write fig3/fig4 .csv/.png, each atomically
    (``io.write_with``); the stage replaces the whole folder (``io.atomic_dir``)."""
    df3 = fig3_frame(params.classes_fig3, params.k_max, params.b)
    df4 = fig4_frame(params.classes_fig4, params.k_max, params.b)
    fig3, fig4 = plot_fig3(df3), plot_fig4(df4)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("fig3.csv", "fig3.png", "fig4.csv", "fig4.png")}
    for name, df, fig in (("fig3", df3, fig3), ("fig4", df4, fig4)):
        io.write_with(paths[f"{name}.csv"], partial(df.to_csv, index=False))
        io.write_with(paths[f"{name}.png"], _save_png(fig))
    return paths


def run(params_path: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Validate the `theory` section, then replace `out_dir` with the four files."""
    params = read_params(params_path)
    out = Path(out_dir)
    with io.atomic_dir(out) as tmp:  # the folder is replaced whole, or not at all
        names = write_outputs(params, tmp)
    return [out / name for name in names]
