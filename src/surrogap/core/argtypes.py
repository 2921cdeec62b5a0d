"""argparse types shared by the command-line tools (`surrogap bounds`, `evaluate`, `sweep`):
each refuses a bad value with one line naming the option and what is allowed."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_value(
    name: str, minimum: int, maximum: int | None = None, allowed: str | None = None
) -> Callable[[str], int]:
    """An argparse type: an integer in [minimum, maximum] (no upper end for None); the
    message is `<name> must be <allowed>, got '<text>'`, `allowed` by default "an integer
    >= <minimum>"."""
    allowed = allowed or f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{name} must be {allowed}, got {text!r}")
        return value

    return parse
