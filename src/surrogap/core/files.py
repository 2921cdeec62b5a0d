"""The one reader of each file format the stages hand each other: a JSON record
(:func:`read_json`), a NumPy ``.npz`` (:func:`read_npz`) and a CSV table typed by
``columns.COLUMNS`` (:func:`read_csv`). A file that is missing, truncated, of another
shape or holding a value of the wrong type is one UserError line naming the file (and the
key, row and column) and what is allowed, ending with `again` (what to rerun)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from surrogap.core.columns import COLUMNS
from surrogap.core.errors import UserError
from surrogap.core.io import readable


def _tail(again: str) -> str:
    return f"; {again}" if again else ""


def read_json(path: str | Path, what: str, again: str = "", keys: Sequence[str] = ()) -> dict:
    """The JSON object in `path`, holding every key of `keys`; `what` names the file in the
    message (``probe record``)."""
    where = f"{what} {str(path)!r}"
    readable(path, what)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise UserError(f"{where} does not exist{_tail(again)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{where} is unreadable ({type(exc).__name__}){_tail(again)}") from None
    try:
        obj = json.loads(text)
    except ValueError as exc:  # empty or truncated
        raise UserError(
            f"{where} is unreadable ({type(exc).__name__}: {exc}){_tail(again)}"
        ) from None
    if not isinstance(obj, dict):
        raise UserError(f"{where} holds a {type(obj).__name__}, allowed: an object{_tail(again)}")
    lacking = [k for k in keys if k not in obj]
    if lacking:
        raise UserError(f"{where} lacks the keys {', '.join(lacking)}{_tail(again)}")
    return obj


def read_npz(
    path: str | Path, what: str, again: str = "", keys: Sequence[str] = ()
) -> dict[str, np.ndarray]:
    """Every array of the .npz `path` (no pickled objects), which must hold `keys`."""
    where = f"{what} {str(path)!r}"
    readable(path, what)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise  # the stage's one line: cannot access '<path>': <reason>
    except Exception as exc:  # truncated or foreign: BadZipFile, ValueError, EOFError, OSError
        raise UserError(
            f"{where} is unreadable ({type(exc).__name__}: not a .npz or cut short){_tail(again)}"
        ) from None
    lacking = [k for k in keys if k not in arrays]
    if lacking:
        raise UserError(f"{where} lacks the arrays {', '.join(lacking)}{_tail(again)}")
    return arrays


_ALLOWED = {
    "str": "a non-empty text",
    "int": "an integer",
    "finite": "a finite number",
    "number": "a number (not NaN)",
    "number?": "a number or empty",
    "bool": "True or False",
}
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}


def _bad(
    where: str, frame: pd.DataFrame, col: str, mask, kind: str, again: str, allowed: str = ""
) -> UserError:
    i = int(np.flatnonzero(np.asarray(mask))[0])
    value = frame[col].iloc[i]
    shown = "NaN or empty" if isinstance(value, float) and math.isnan(value) else repr(value)
    if isinstance(value, (float, np.floating)) and not math.isnan(value):
        shown = f"{float(value)!r}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        shown = str(int(value))
    return UserError(
        f"{where} row {i + 1}, column {col!r}: {shown}, "
        f"allowed: {allowed or _ALLOWED[kind]}{_tail(again)}"
    )


def _in_range(typed: pd.Series, col: str, where: str, again: str) -> None:
    """The values of a typed column within its `allowed` (core.columns; NaN: the type's)."""
    if col not in COLUMNS or COLUMNS[col].allowed is None:
        return
    test, allowed = COLUMNS[col].allowed
    ok = np.array([v != v or bool(test(v)) for v in typed.tolist()], dtype=bool)
    if not ok.all():
        raise _bad(where, typed.to_frame(), col, ~ok, "", again, allowed)


def _typed(frame: pd.DataFrame, col: str, kind: str, where: str, again: str) -> pd.Series:
    values = frame[col]
    if kind == "str":
        missing = values.isna() | (values.astype(str).str.strip() == "")
        if missing.any():
            raise _bad(where, frame, col, missing, kind, again)
        return values.astype(str)
    if kind == "bool":
        if values.dtype == bool:
            return values
        mapped = values.astype(str).str.strip().str.lower().map(_BOOLS)
        if mapped.isna().any():
            raise _bad(where, frame, col, mapped.isna(), kind, again)
        return mapped.astype(bool)
    if values.dtype == bool:  # True/False where a number belongs
        raise _bad(where, frame, col, np.ones(len(values), bool), kind, again)
    numbers = pd.to_numeric(values, errors="coerce")
    not_number = numbers.isna() & values.notna()
    if not_number.any():
        raise _bad(where, frame, col, not_number, kind, again)
    numbers = numbers.astype(np.float64)
    if kind == "number?":
        return numbers
    if numbers.isna().any():
        raise _bad(where, frame, col, numbers.isna(), kind, again)
    if kind in ("finite", "int") and not np.isfinite(numbers).all():
        raise _bad(where, frame, col, ~np.isfinite(numbers), kind, again)
    if kind == "int":
        if (numbers != np.round(numbers)).any():
            raise _bad(where, frame, col, numbers != np.round(numbers), kind, again)
        return numbers.astype(np.int64)
    return numbers


def read_csv(
    path: str | Path,
    columns: Sequence[str],
    what: str,
    again: str = "",
    keep_other: bool = False,
    allow_empty: bool = False,
    optional: Sequence[str] = (),
) -> pd.DataFrame:
    """The CSV table `path` with `columns` typed as core.columns.COLUMNS says (the values
    exactly as pandas parses them: a valid table reads as it always did) and within
    core.columns.COLUMNS; the columns of `optional` the file has are typed and checked too.
    Only `columns` (and those) are kept unless `keep_other`. A bad value is named by its
    row (1 = the first row below the header) and column."""
    path = Path(path)
    where = f"{what} {str(path)!r}"
    readable(path, what)
    if not path.is_file():
        raise UserError(f"{where} does not exist{_tail(again)}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{where} is not a readable CSV: {first}{_tail(again)}") from None
    if frame.empty and allow_empty:
        return frame
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        raise UserError(f"{where} lacks the columns {', '.join(lacking)}{_tail(again)}")
    if frame.empty:
        raise UserError(f"{where} has no rows{_tail(again)}")
    checked = [*columns, *(c for c in optional if c in frame.columns and c not in columns)]
    out = frame.copy() if keep_other else frame[checked].copy()
    for col in checked:
        out[col] = _typed(
            frame, col, COLUMNS[col].type if col in COLUMNS else "number?", where, again
        )
        _in_range(out[col], col, where, again)
    return out
