"""Every argparse piece of the project, in one place: the parser whose usage errors are one
UserError line, and the number types of the stage scripts (message names the params key
dvc.yaml fills the option from) and of the command-line tools (`surrogap bounds`,
`evaluate`, `sweep`: message names the option). Each refuses a bad value with one line
naming it and what is allowed."""

from __future__ import annotations

import argparse
import decimal
import math
import os
from collections.abc import Callable
from pathlib import Path

from surrogap.core.errors import UserError


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one UserError line (prefixed with the
    program's name where `prog_in_errors`), not usage text and exit 2."""

    def __init__(self, *args, prog_in_errors: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.prog_in_errors = prog_in_errors

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}" if self.prog_in_errors else message)


def int_value(
    name: str, minimum: int, maximum: int | None = None, allowed: str | None = None
) -> Callable[[str], int]:
    """An argparse type: an integer in [minimum, maximum] (no upper end for None); the
    message is `<name> must be <allowed>, got '<text>'`, `allowed` by default "an integer
    >= <minimum>"."""
    allowed = allowed or f"an integer >= {minimum}"

    def parse(text: str) -> int:
        value = exact_integer(text)
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{name} must be {allowed}, got {text!r}")
        return value

    return parse


# exponent forms above 10**MAX_EXPONENT are refused unread, like int() refuses a decimal
# string of more than 4300 digits (Python's default limit), so `1e999999999` costs nothing
MAX_EXPONENT = 4300


def exact_integer(text: str) -> int | None:
    """The integer `text` writes exactly, in decimal (`1000`) or exponent form (`1e3`,
    `1E12`, `2.5e3` -> 2500); None for anything else (`1.5`, `1e-3`, `nan`, `ten`)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = decimal.Decimal(text.strip())
    except (decimal.InvalidOperation, ValueError):
        return None
    if not value.is_finite() or value.adjusted() > MAX_EXPONENT:
        return None
    return int(value) if value == value.to_integral_value() else None


def float_value(name: str, minimum: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be finite, got {text!r}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum:g}, got {text!r}")
        return value

    return parse


def integer(minimum: int, key: str, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer >= `minimum` (and <= `maximum`); the message names the
    params key whose entries the option takes (a sweep list entry such as `k: [four]`)."""
    allowed = (
        f"an integer >= {minimum}" if maximum is None else f"an integer in {minimum}..{maximum}"
    )

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(
                f"got {text[:80]!r}, allowed: {allowed} (an entry of params `{key}`)"
            )
        return value

    return parse


def positive_number(key: str) -> Callable[[str], float]:
    """An argparse type: a finite number > 0, named after the params key it comes from."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(
                f"got {text!r}, allowed: a number > 0 (an entry of params `{key}`)"
            )
        return value

    return parse


def output_path(folder: bool = False, project: bool = True) -> Callable[[str], Path]:
    """An argparse type: a path surrogap may write (`surrogap.core.io.check_target`: no
    symlink, FIFO, device or socket there; with `project`, an existing parent outside
    `io.project_root()`), checked when the command line is read, before any work. The
    stages check the parent after parsing, against their params file's folder
    (`surrogap.core.stage.run`), so they pass `project=False`."""
    from surrogap.core import io

    def parse(text: str) -> Path:
        try:
            root = io.project_root() if project else None
            io.check_target(text, folder=folder, root=root)  # the text: '' and 'x/' kept
            return Path(text)
        except UserError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "output path"
    parse.output_folder = folder  # type: ignore[attr-defined]  (refuse_overlap finds it)
    return parse


def refuse_overlap(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """No output option (typed `output_path`) names a file another option reads, or, for a
    folder output, a folder holding one (`surrogap.core.io.refuse_same_file`): one line
    before any work, not an input replaced by the output (`evaluate good.npz --plot
    good.npz`, a stage's ``--results X --out X``). Only values naming something that exists
    count as inputs (a missing input is its reader's to name). The line is `parser`'s
    usage error: ``<prog>: argument --plot: ...``."""
    from surrogap.core import io

    outputs, inputs = [], []
    for action in parser._actions:
        value = getattr(args, action.dest, None) if action.dest else None
        if not action.option_strings and action.dest in ("help", "command"):
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        folder = getattr(action.type, "output_folder", None)
        if folder is not None:
            outputs.append((name, value, folder))
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, (str, Path)) and str(item) and os.path.lexists(item):
                inputs.append((name, item))
    try:
        io.refuse_same_file(outputs, inputs)
    except UserError as exc:
        parser.error(f"argument {exc}")
