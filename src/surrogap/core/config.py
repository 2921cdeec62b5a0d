"""Params validation in one place: every stage reads its section of params.yaml into a
frozen dataclass before doing any work.

A section is parsed by :func:`parse`, which rejects unknown keys (a typo is an error, not
ignored), wrong types and out-of-range values with one line that names the key, the value
and what is allowed. Range checks live in each field's metadata (``check`` and ``allowed``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import reprlib
import stat
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from surrogap.core.errors import UserError

T = TypeVar("T")

GRID_KEYS = ("dataset", "k", "seed", "lr")
STAGE_SECTIONS = ("theory", "extract", "probe", "bounds", "report", "evaluate")
DATASET_BLOCKS = ("data", "encoder", "train")


# every message that quotes a value from params.yaml quotes at most this many characters
SHOWN_CHARS = 80
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 12
_REPR.maxlevel = 3


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text`, cut to `limit` characters and "..." where longer."""
    return text if len(text) <= limit else text[:limit] + "..."


def shown(value: Any) -> str:
    """The repr of a value for a one-line message: bounded work, at most SHOWN_CHARS
    characters (and "..."), whatever the value's size."""
    return clip(_REPR.repr(value))


# a string of params (a name, a path, a URL) is at most this long (Linux's PATH_MAX)
MAX_STRING = 4096
# a dataset section name: it becomes part of DVC's stage names (joined by '-') and of paths
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
NAME_ALLOWED = (
    "a name of letters, digits and '_' that starts with a letter, at most 64 characters "
    "(no '-', no spaces)"
)
# seeds reach torch.manual_seed and numpy; every seed of the grid lies in 0..SEED_MAX
SEED_MAX = 2**32 - 1


def seed_list(seeds: tuple[int, ...]) -> bool:
    return len(seeds) > 0 and all(0 <= x <= SEED_MAX for x in seeds)


SEED_LIST_ALLOWED = f"a non-empty list of integers in 0..{SEED_MAX} (2**32 - 1)"


def is_name(value: Any) -> bool:
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def spec(
    default: Any = dataclasses.MISSING,
    *,
    check: Callable[[Any], bool] | None = None,
    allowed: str = "",
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field with a range check and the text that says what is allowed."""
    meta = {"check": check, "allowed": allowed}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def positive(x) -> bool:
    return x > 0


def non_negative(x) -> bool:
    return x >= 0


def at_least(n):
    return lambda x: x >= n


def one_of(*choices):
    return lambda x: x in choices


def one_line(s: str) -> bool:
    """A non-empty string of one line (names and paths that reach messages and tables)."""
    return bool(s.strip()) and "\n" not in s


def fraction(x) -> bool:
    return 0 < x < 1


_SINGULAR = {int: "an integer", float: "a finite number", str: "a string", bool: "true/false"}
_PLURAL = {int: "integers", float: "finite numbers", str: "strings", bool: "true/false values"}


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        return f"a list of {_PLURAL.get(inner) or _type_name(inner)}"
    if tp is type(None):
        return "null"
    return _SINGULAR.get(tp, getattr(tp, "__name__", str(tp)))


def _refuse_unquoted_digits(value: Any, tp: Any, where: str) -> None:
    """A string of digits only (an MD5 like 0123...) that YAML read as a number: say to
    quote it (its digits cannot be recovered: YAML 1.2 drops the leading zeros)."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise UserError(
            f"{where}: got the number {shown(value)}, expected {_type_name(tp)}; YAML reads a value "
            f'of digits only as a number: quote it ({where.rsplit(".", 1)[-1]}: "...")'
        )


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`; ints are accepted where floats are."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if str in typing.get_args(tp) and int not in typing.get_args(tp):
            _refuse_unquoted_digits(value, tp, where)
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, where)
            except UserError:
                continue
        raise UserError(f"{where}: got {shown(value)}, expected {_type_name(tp)}")
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: got {shown(value)}, expected {_type_name(tp)}")
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        # NaN and inf pass most range checks (nan > 0 is False, inf > 0 is True): refused here
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise UserError(
                    f"{where}: got a string of {len(value)} characters ({shown(value)}), "
                    f"allowed: at most {MAX_STRING}"
                )
            return value
        _refuse_unquoted_digits(value, tp, where)
    elif dataclasses.is_dataclass(tp):
        return parse(tp, value, where)
    elif tp is Any:
        return value
    raise UserError(f"{where}: got {shown(value)}, expected {_type_name(tp)}")


def parse(cls: type[T], data: Any, where: str) -> T:
    """Build the frozen dataclass `cls` from a mapping, strictly.

    `where` is the dotted params path used in messages (e.g. ``circle.train``).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: got {shown(data)}, expected a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            at = f"{where}: " if where else ""
            raise UserError(
                f"{at}unknown key {shown(key)}{hint}; allowed keys: {', '.join(sorted(fields))}"
            )
    values = {}
    for name, f in fields.items():
        path = f"{where}.{name}" if where else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise UserError(f"{path}: missing; expected {_type_name(hints[name])}")
            continue
        value = _coerce(data[name], hints[name], path)
        check = f.metadata.get("check")
        if check is not None and value is not None and not check(value):
            allowed = f.metadata.get("allowed") or "a valid value"
            raise UserError(f"{path}: got {shown(data[name])}, allowed: {allowed}")
        values[name] = value
    obj = cls(**values)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(where)
    return obj


def to_dict(obj: Any) -> dict:
    """The plain-dict form of a params dataclass (tuples become lists), for checkpoints."""

    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(obj))


# params.yaml is read exactly as DVC reads it (dvc/utils/serialize/_yaml.py: ruamel.yaml,
# typ="safe", YAML 1.2, its C parser), so the stages and DVC's `${...}` see the same values:
# `010` is 10 for both, `yes` and `1:20` are strings, `1e-3` is a number. Before that, one
# pass over the parser's events refuses what could make reading unbounded or ambiguous.
MAX_DEPTH = 32  # nesting of mappings and lists in params.yaml


def _yaml_error(path: Path, exc: Exception) -> UserError:
    mark = getattr(exc, "problem_mark", None)
    at = f" at line {mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None)
    why = f": {clip(' '.join(str(problem).split()), 200)}" if problem else ""
    return UserError(f"params file {str(path)!r} is not valid YAML{at}{why}")


def _check_events(text: str, path: Path, parser) -> None:
    """Refuse anchors and aliases (an alias bomb expands to billions of values), nesting
    deeper than MAX_DEPTH and a key given twice in one mapping, naming the line."""
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        MappingStartEvent,
        NodeEvent,
        ScalarEvent,
        SequenceStartEvent,
    )

    def refuse(event, why: str) -> UserError:
        line = event.start_mark.line + 1
        return UserError(f"params file {str(path)!r} is not valid YAML at line {line}: {why}")

    stack: list = []  # per open collection: None (a list) or [keys seen, expecting a key]
    for event in parser(text):
        if isinstance(event, AliasEvent) or (
            isinstance(event, NodeEvent) and getattr(event, "anchor", None)
        ):
            raise refuse(
                event,
                "anchors and aliases (&name, *name) are not allowed in params.yaml: "
                "write each value out",
            )
        top = stack[-1] if stack else None
        if isinstance(event, NodeEvent) and top is not None:
            if top[1] and isinstance(event, ScalarEvent):
                first = top[0].setdefault(event.value, event.start_mark.line + 1)
                if first != event.start_mark.line + 1:
                    raise refuse(
                        event, f"duplicate key {clip(event.value)!r} (first at line {first})"
                    )
            top[1] = not top[1]
        if isinstance(event, (MappingStartEvent, SequenceStartEvent)):
            stack.append([{}, True] if isinstance(event, MappingStartEvent) else None)
            if len(stack) > MAX_DEPTH:
                raise refuse(event, f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, CollectionEndEvent):
            stack.pop()


def read_yaml(text: str, path: Path) -> Any:
    """The value of a params.yaml text, read as DVC reads it; one UserError line otherwise."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        _check_events(text, path, YAML(typ="safe").parse)
    except YAMLError as exc:
        raise _yaml_error(path, exc) from None
    try:
        return YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise _yaml_error(path, exc) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise UserError(
            f"params file {str(path)!r} holds a value that cannot be read: {clip(str(exc))}"
        ) from None
    except RecursionError:
        raise UserError(f"params file {str(path)!r} is not valid YAML: nested too deeply") from None


MAX_PARAMS_BYTES = 1 << 20  # a params file is kilobytes; the paper presets are < 20 KiB


def load_params(path: str | Path = "params.yaml") -> dict:
    """Read params.yaml; a missing, unreadable, special (FIFO, device), oversized or
    malformed file is one clear line. Checked with `os.stat` before it is opened: opening
    a FIFO blocks until a writer comes, and reading a device may never end."""
    path = Path(path)
    where = f"params file {str(path)!r}"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UserError(f"{where} does not exist") from None
    except OSError as exc:
        raise UserError(f"{where} cannot be read: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a folder: read_bytes says so below
        raise UserError(f"{where} is not a regular file (a FIFO, device or socket): give a file")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_PARAMS_BYTES + 1)
    except OSError as exc:  # a folder, no permission, an I/O error
        raise UserError(f"{where} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_PARAMS_BYTES:
        raise UserError(
            f"{where} is larger than {MAX_PARAMS_BYTES >> 20} MiB: refused (a params file "
            "holds kilobytes of settings)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{where} is not UTF-8 text (byte {exc.start})") from None
    data = read_yaml(text, path)
    if not isinstance(data, dict):
        raise UserError(f"params file {str(path)!r} must hold a mapping of sections")
    return data


def section(params: Mapping, name: str) -> Any:
    """A top-level section, or one clear line naming what is missing."""
    if name not in params:
        raise UserError(f"params: section {name!r} is missing")
    return params[name]


@dataclass(frozen=True)
class Grid:
    """The sweep: one run per (dataset, k, seed), and one more per (dataset, k, seed, lr) for
    every extra learning rate of `lr` (the lr grid; each dataset section's own train.lr
    always runs). dvc.yaml makes one cached pretrain/extract/probe instance per (dataset, k)
    (and lr) and one prepare instance per dataset, each handling every seed."""

    dataset: tuple[str, ...] = spec(
        check=lambda v: len(v) > 0, allowed="a non-empty list of dataset section names"
    )
    k: tuple[int, ...] = spec(
        check=lambda v: len(v) > 0 and all(x >= 1 for x in v),
        allowed="a non-empty list of integers >= 1",
    )
    seed: tuple[int, ...] = spec(check=seed_list, allowed=SEED_LIST_ALLOWED)
    lr: tuple[float, ...] = spec(
        (),
        check=lambda v: all(x > 0 for x in v),
        allowed="a list of numbers > 0 (extra learning rates; [] runs each section's train.lr only)",
    )

    def validate(self, where: str) -> None:
        for i, name in enumerate(self.dataset):
            if not is_name(name):
                raise UserError(f"dataset[{i}]: got {shown(name)}, allowed: {NAME_ALLOWED}")
        for key in ("dataset", "k", "seed", "lr"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise UserError(
                    f"{key}: got {shown(list(values))}, allowed: a list without repeats"
                )


def grid(params: Mapping) -> Grid:
    return parse(Grid, {key: params[key] for key in GRID_KEYS if key in params}, "")


@dataclass(frozen=True)
class Seeds:
    """The one sweep list that prepare, extract and probe read: they handle every seed of
    their dataset, or (dataset, K), in one process."""

    seed: tuple[int, ...] = spec(check=seed_list, allowed=SEED_LIST_ALLOWED)

    def validate(self, where: str) -> None:
        if len(set(self.seed)) != len(self.seed):
            raise UserError(f"seed: got {shown(list(self.seed))}, allowed: a list without repeats")


def seeds(params: Mapping) -> tuple[int, ...]:
    """The `seed` list of params.yaml, checked as the grid checks it."""
    return parse(Seeds, {"seed": params["seed"]} if "seed" in params else {}, "").seed


# --------------------------------------------------------------------------- params.yaml
def check_top_level(params: Mapping) -> None:
    """Every top-level key is a grid list, a stage section or a dataset section."""
    known = (*GRID_KEYS, *STAGE_SECTIONS)
    for key, value in params.items():
        if key in known:
            continue
        if isinstance(value, Mapping) and "data" in value:
            extra = sorted(set(value) - set(DATASET_BLOCKS))
            if extra:
                raise UserError(
                    f"{key}: unknown key {shown(extra[0])}; a dataset section holds {', '.join(DATASET_BLOCKS)}"
                )
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(
            f"unknown params key {shown(key)}{hint}; allowed: {', '.join(known)}, or a dataset section with a 'data' block"
        )


def dataset_section(params: Mapping, name: str) -> Mapping:
    """The dataset section `name` of params.yaml, after checking every top-level key."""
    check_top_level(params)
    if not is_name(name):
        raise UserError(f"dataset: got {shown(name)}, allowed: {NAME_ALLOWED}")
    section = params.get(name)
    if not isinstance(section, Mapping) or "data" not in section:
        sections = sorted(k for k, v in params.items() if isinstance(v, Mapping) and "data" in v)
        raise UserError(
            f"dataset: got {shown(name)}, allowed: {', '.join(sections) or 'none defined'} (dataset sections of params.yaml)"
        )
    return section


def stage_config(params: Mapping, name: str, cls: type[T]) -> T:
    """The stage section `name` parsed into `cls`, after checking every top-level key."""
    check_top_level(params)
    return parse(cls, params.get(name), name)
