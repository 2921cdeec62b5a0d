"""Params validation in one place: every stage reads its section of params.yaml into a
frozen pydantic dataclass (:func:`model`) before doing any work.

A section is parsed by :func:`parse`, which rejects unknown keys (a typo is an error, not
ignored), wrong types and out-of-range values with one line that names the key, the value
and what is allowed. Each field's range is pydantic's constraints (:func:`spec`); the same
models give params.schema.json (tools/params_schema.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
import re
import reprlib
import stat
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic
import pydantic.dataclasses
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

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
SEED_LIST_ALLOWED = f"a non-empty list of integers in 0..{SEED_MAX} (2**32 - 1)"
# a one-line, non-empty string (names and paths that reach messages and tables)
ONE_LINE = r"^[^\n]*\S[^\n]*$"


# every params section is a frozen pydantic dataclass that refuses unknown keys; parse()
# validates strictly (no "5" for 5, no 1 for true, finite floats only)
def _describe(schema: dict, cls: type) -> None:
    """params.schema.json says of every key what it allows, as the messages do."""
    for name, prop in schema.get("properties", {}).items():
        info = cls.__pydantic_fields__[name]
        prop["description"] = _allowed(info.annotation, info)


CONFIG = ConfigDict(
    extra="forbid", allow_inf_nan=False, str_max_length=MAX_STRING, json_schema_extra=_describe
)


def model(cls: type[T] | None = None, *, kw_only: bool = False) -> Any:
    """The decorator of a params section: a frozen pydantic dataclass."""
    wrap = pydantic.dataclasses.dataclass(frozen=True, kw_only=kw_only, config=CONFIG)
    return wrap if cls is None else wrap(cls)


def spec(
    default: Any = PydanticUndefined,
    *,
    check: Callable[[Any], bool] | None = None,
    allowed: str = "",
    factory: Callable[[], Any] | None = None,
    **constraints: Any,
) -> Any:
    """A params field: its default, its range (pydantic's constraints: ge, gt, lt,
    min_length, pattern, ...; `check` for any other test) and the text that says what is
    allowed (the description in params.schema.json and in every message)."""
    info = Field(default, default_factory=factory, description=allowed or None, **constraints)
    if check is not None:

        def checked(value):
            if value is not None and not check(value):
                raise ValueError(allowed)
            return value

        info.metadata.append(AfterValidator(checked))
    return info


def distinct(values) -> bool:
    return len(set(values)) == len(values)


_SINGULAR = {int: "an integer", float: "a finite number", str: "a string", bool: "true/false"}
_PLURAL = {int: "integers", float: "finite numbers", str: "strings", bool: "true/false values"}


def _bare(tp: Any) -> Any:
    """`tp` without its Annotated wrapper."""
    return typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp


def _type_name(tp) -> str:
    tp = _bare(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return ", ".join(map(str, typing.get_args(tp)))
    if origin in (list, tuple):
        inner = _bare((typing.get_args(tp) or (Any,))[0])
        return f"a list of {_PLURAL.get(inner) or _type_name(inner)}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping of keys to values"
    return _SINGULAR.get(tp, getattr(tp, "__name__", str(tp)))


_BOUNDS = {"ge": (">=", "["), "gt": (">", "("), "le": ("<=", "]"), "lt": ("<", ")")}


def _allowed(tp: Any, info: FieldInfo | None) -> str:
    """What a field allows: its `allowed` text, or one said from its type and range."""
    if info is not None and info.description:
        return info.description
    tp = _bare(tp)
    null = type(None) in typing.get_args(tp)
    if null:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    bounds = [
        (key, getattr(m, key))
        for m in (info.metadata if info is not None else ())
        for key in _BOUNDS
        if getattr(m, key, None) is not None
    ]
    noun = "an integer" if tp is int else "a number"
    if typing.get_origin(tp) is typing.Literal:
        *rest, last = map(str, typing.get_args(tp))
        text = f"{', '.join(rest)} or {last}" if rest else last
    elif len(bounds) == 2:
        (lo, a), (hi, b) = bounds
        text = f"{noun} in {_BOUNDS[lo][1]}{a}, {b}{_BOUNDS[hi][1]}"
    elif bounds:
        text = f"{noun} {_BOUNDS[bounds[0][0]][0]} {bounds[0][1]}"
    else:
        text = _type_name(tp)
    return f"null or {text}" if null else text


def _step(tp: Any, part: Any) -> tuple[Any, FieldInfo | None]:
    """The type one step (a field name, a list index) below `tp`, and its field info."""
    tp = _bare(tp)
    if isinstance(part, int):
        inner = (typing.get_args(tp) or (Any,))[0]
        infos = [m for m in typing.get_args(inner)[1:] if isinstance(m, FieldInfo)]
        return inner, infos[0] if infos else None
    for arg in (tp, *typing.get_args(tp)):  # a dataclass, or one inside `X | None`
        fields = getattr(arg, "__pydantic_fields__", None)
        if fields and part in fields:
            return fields[part].annotation, fields[part]
    return Any, None


_CONSTRAINTS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_CONSTRAINTS |= {"too_short", "too_long", "literal_error", "string_pattern_mismatch"}
_CONSTRAINTS |= {"value_error", "multiple_of"}


def _message(cls: type, error: Mapping, data: Any, where: str) -> str:
    """One line for pydantic's first error: the key path, the value, what is allowed."""
    kind, loc = error["type"], error["loc"]
    path, tp, value, parent = where, cls, data, cls
    anchor = (where, data, "")  # the innermost field (or list item with an `allowed` text)
    for part in loc:
        parent = tp
        tp, info = _step(tp, part)
        if isinstance(part, int):
            path = f"{path}[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            value = error["input"]
        if info is not None and (isinstance(part, str) or info.description):
            anchor = (path, value, _allowed(tp, info))
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        at = path.rsplit(".", 1)[0] + ": " if "." in path else ""
        fields = sorted(getattr(_bare(parent), "__pydantic_fields__", ()))
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{at}unknown key {shown(loc[-1])}{hint}; allowed keys: {', '.join(fields)}"
    if kind in ("missing", "missing_argument"):
        return f"{path}: missing; expected {_type_name(tp)}"
    if kind == "string_too_long" or (isinstance(value, str) and len(value) > MAX_STRING):
        return (
            f"{path}: got a string of {len(value)} characters ({shown(value)}), "
            f"allowed: at most {MAX_STRING}"
        )
    if kind == "string_type" and isinstance(value, int) and not isinstance(value, bool):
        # YAML reads a string of digits only (an MD5 like 0123...) as a number
        return (
            f"{path}: got the number {shown(value)}, expected {_type_name(tp)}; YAML reads a "
            f'value of digits only as a number: quote it ({path.rsplit(".", 1)[-1]}: "...")'
        )
    if kind in _CONSTRAINTS:
        path, value, allowed = anchor
        return f"{path}: got {shown(value)}, allowed: {allowed}"
    return f"{path}: got {shown(value)}, expected {_type_name(tp)}"


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


def parse(cls: type[T], data: Any, where: str) -> T:
    """Build the params dataclass `cls` from a mapping, strictly; one UserError line
    otherwise. `where` is the dotted params path used in messages (e.g. ``circle.train``)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: got {shown(data)}, expected a mapping of keys to values")
    # validated as JSON: strict types, yet YAML's lists and mappings stand for tuples and
    # dataclasses (a date or other non-JSON scalar YAML makes is read as its text)
    text = json.dumps(data, default=str)
    try:
        obj = _adapter(cls).validate_json(text, strict=True)
    except pydantic.ValidationError as exc:
        raise UserError(_message(cls, exc.errors()[0], data, where)) from None
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(where)
    return obj


def to_dict(obj: Any) -> dict:
    """The plain-dict form of a params dataclass (tuples become lists), for checkpoints."""
    return _adapter(type(obj)).dump_python(obj, mode="json")


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


Name = Annotated[str, Field(pattern=f"^{NAME.pattern}$", description=NAME_ALLOWED)]
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]


def no_repeats(obj: Any, *keys: str) -> None:
    for key in keys:
        values = getattr(obj, key)
        if not distinct(values):
            raise UserError(f"{key}: got {shown(list(values))}, allowed: a list without repeats")


@model
class Grid:
    """The sweep: one run per (dataset, k, seed), and one more per (dataset, k, seed, lr) for
    every extra learning rate of `lr` (the lr grid; each dataset section's own train.lr
    always runs). dvc.yaml makes one cached pretrain/extract/probe instance per (dataset, k)
    (and lr) and one prepare instance per dataset, each handling every seed."""

    dataset: tuple[Name, ...] = spec(
        min_length=1, allowed="a non-empty list of dataset section names"
    )
    k: tuple[Annotated[int, Field(ge=1)], ...] = spec(
        min_length=1, allowed="a non-empty list of integers >= 1"
    )
    seed: tuple[Seed, ...] = spec(min_length=1, allowed=SEED_LIST_ALLOWED)
    lr: tuple[Annotated[float, Field(gt=0)], ...] = spec(
        (),
        allowed="a list of numbers > 0 (extra learning rates; [] runs each section's train.lr only)",
    )

    def validate(self, where: str) -> None:
        no_repeats(self, *GRID_KEYS)


def grid(params: Mapping) -> Grid:
    return parse(Grid, {key: params[key] for key in GRID_KEYS if key in params}, "")


@model
class Seeds:
    """The one sweep list that prepare, extract and probe read: they handle every seed of
    their dataset, or (dataset, K), in one process."""

    seed: tuple[Seed, ...] = spec(min_length=1, allowed=SEED_LIST_ALLOWED)

    def validate(self, where: str) -> None:
        no_repeats(self, "seed")


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
    if not isinstance(name, str) or not NAME.fullmatch(name):
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
