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
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from surrogap.core.errors import UserError

T = TypeVar("T")

GRID_KEYS = ("dataset", "k", "seed", "lr")
STAGE_SECTIONS = ("theory", "extract", "probe", "bounds", "report", "evaluate")
DATASET_BLOCKS = ("data", "encoder", "train")


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
    quote it (its digits cannot be recovered: leading zeros are gone, 0-7 only is octal)."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise UserError(
            f"{where}: got the number {value}, expected {_type_name(tp)}; YAML reads a value "
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
        raise UserError(f"{where}: got {value!r}, expected {_type_name(tp)}")
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: got {value!r}, expected {_type_name(tp)}")
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
            return value
        _refuse_unquoted_digits(value, tp, where)
    elif dataclasses.is_dataclass(tp):
        return parse(tp, value, where)
    elif tp is Any:
        return value
    raise UserError(f"{where}: got {value!r}, expected {_type_name(tp)}")


def parse(cls: type[T], data: Any, where: str) -> T:
    """Build the frozen dataclass `cls` from a mapping, strictly.

    `where` is the dotted params path used in messages (e.g. ``circle.train``).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: got {data!r}, expected a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            at = f"{where}: " if where else ""
            raise UserError(
                f"{at}unknown key {key!r}{hint}; allowed keys: {', '.join(sorted(fields))}"
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
            raise UserError(f"{path}: got {data[name]!r}, allowed: {allowed}")
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


class _ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, made to read params.yaml as DVC (YAML 1.2) does: ``1e-3`` is a
    number, not the string '1e-3'; and a key given twice in one mapping is an error, not
    silently the last value."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # reported by PyYAML itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_ParamsLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_params(path: str | Path = "params.yaml") -> dict:
    """Read params.yaml; a missing, unreadable or malformed file is one clear line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"params file {str(path)!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"params file {str(path)!r} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:  # a folder, no permission, an I/O error
        raise UserError(
            f"params file {str(path)!r} cannot be read: {exc.strerror or exc}"
        ) from None
    try:
        data = yaml.load(text, Loader=_ParamsLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        why = f": {' '.join(str(problem).split())}" if problem else ""
        raise UserError(f"params file {str(path)!r} is not valid YAML{at}{why}") from None
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
    """The sweep: one cached pretrain/extract/probe instance per (dataset, k, seed), and one
    more per (dataset, k, seed, lr) for every extra learning rate of `lr` (the lr grid; each
    dataset section's own train.lr always runs)."""

    dataset: tuple[str, ...] = spec(
        check=lambda v: len(v) > 0, allowed="a non-empty list of dataset section names"
    )
    k: tuple[int, ...] = spec(
        check=lambda v: len(v) > 0 and all(x >= 1 for x in v),
        allowed="a non-empty list of integers >= 1",
    )
    seed: tuple[int, ...] = spec(
        check=lambda v: len(v) > 0 and all(x >= 0 for x in v),
        allowed="a non-empty list of integers >= 0",
    )
    lr: tuple[float, ...] = spec(
        (),
        check=lambda v: all(x > 0 for x in v),
        allowed="a list of numbers > 0 (extra learning rates; [] runs each section's train.lr only)",
    )

    def validate(self, where: str) -> None:
        for key in ("dataset", "k", "seed", "lr"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise UserError(f"{key}: got {list(values)!r}, allowed: a list without repeats")


def grid(params: Mapping) -> Grid:
    return parse(Grid, {key: params[key] for key in GRID_KEYS if key in params}, "")


@dataclass(frozen=True)
class Seeds:
    """The one sweep list that prepare, extract and probe read: they handle every seed of
    their dataset, or (dataset, K), in one process."""

    seed: tuple[int, ...] = Grid.__dataclass_fields__["seed"].default

    def validate(self, where: str) -> None:
        if len(set(self.seed)) != len(self.seed):
            raise UserError(f"seed: got {list(self.seed)!r}, allowed: a list without repeats")


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
                    f"{key}: unknown key {extra[0]!r}; a dataset section holds {', '.join(DATASET_BLOCKS)}"
                )
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(
            f"unknown params key {key!r}{hint}; allowed: {', '.join(known)}, or a dataset section with a 'data' block"
        )


def dataset_section(params: Mapping, name: str) -> Mapping:
    """The dataset section `name` of params.yaml, after checking every top-level key."""
    check_top_level(params)
    section = params.get(name)
    if not isinstance(section, Mapping) or "data" not in section:
        sections = sorted(k for k, v in params.items() if isinstance(v, Mapping) and "data" in v)
        raise UserError(
            f"dataset: got {name!r}, allowed: {', '.join(sections) or 'none defined'} (dataset sections of params.yaml)"
        )
    return section


def stage_config(params: Mapping, name: str, cls: type[T]) -> T:
    """The stage section `name` parsed into `cls`, after checking every top-level key."""
    check_top_level(params)
    return parse(cls, params.get(name), name)
