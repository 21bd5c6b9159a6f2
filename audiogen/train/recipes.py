"""TOML recipes parsed into nested dataclasses, validated against the schema.

A recipe schema is a dataclass whose fields are sections (dataclasses) or plain values;
each model's training task defines its own schema from shared sections (``TrainConfig``,
``OptimConfig``) plus its own ``model`` / ``data`` sections. An unknown key or a value of
the wrong type is a :class:`UserError` naming ``section.key`` and the file (or ``--set``).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

from audiogen.errors import UserError

T = TypeVar("T")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``section.key=value``; the value is a TOML value, or a bare string if not one.

    ``train.lr=3e-4`` gives a float, ``optim.betas=[0.9, 0.95]`` a list, and
    ``train.precision=bf16-pure`` the string (quotes optional for strings).
    """
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected section.key=value")
    dotted, raw = text.split("=", 1)
    keys = [k.strip() for k in dotted.strip().split(".")]
    if not all(keys):
        raise UserError(f"--set {text!r}: empty key in {dotted!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return keys, value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Return a copy of the raw recipe dict with each ``section.key=value`` applied."""
    out = json.loads(json.dumps(raw))  # deep copy of plain TOML data
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {text!r}: {k!r} is not a section")
        node[keys[-1]] = value
    return out


def parse_recipe(path: str | Path, schema: type[T], overrides: list[str] | None = None) -> T:
    """Read the TOML recipe at ``path``, apply ``--set`` overrides, validate into ``schema``."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"recipe not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a valid TOML file: {e}") from None
    raw = apply_overrides(raw, overrides or [])
    return from_dict(schema, raw, source=str(path))


def from_dict(schema: type[T], data: dict, *, source: str, prefix: str = "") -> T:
    """Build dataclass ``schema`` from ``data``; errors name ``prefix.key`` and ``source``."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: {prefix or 'recipe'}: expected a table, got {_kind(data)}")
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        known = ", ".join(sorted(fields))
        raise UserError(f"{source}: unknown key '{where}' (known here: {known})")
    kwargs = {}
    for name, f in fields.items():
        where = f"{prefix}.{name}" if prefix else name
        if name not in data:
            no_default = f.default is dataclasses.MISSING
            if no_default and f.default_factory is dataclasses.MISSING:
                raise UserError(f"{source}: missing required key '{where}'")
            continue
        kwargs[name] = _convert(hints[name], data[name], source=source, where=where)
    try:
        return schema(**kwargs)
    except (ValueError, TypeError) as e:  # __post_init__ checks of value ranges
        raise UserError(f"{source}: {prefix or 'recipe'}: {e}") from None


def _convert(tp: Any, value: Any, *, source: str, where: str) -> Any:
    """Check ``value`` against type ``tp`` (int, float, str, bool, list, Literal, Optional)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, source=source, prefix=where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, source=source, where=where)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0])
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise UserError(f"{source}: {where}: expected one of {list(choices)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise UserError(f"{source}: {where}: expected a list, got {_kind(value)}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise UserError(f"{source}: {where}: expected {len(args)} items, got {len(value)}")
            return tuple(
                _convert(a, v, source=source, where=f"{where}[{i}]")
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        item = args[0] if args else Any
        items = [
            _convert(item, v, source=source, where=f"{where}[{i}]") for i, v in enumerate(value)
        ]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{source}: {where}: expected a float, got {_kind(value)} {value!r}")
        return float(value)
    if tp is int or tp is bool or tp is str:
        if type(value) is not tp:
            raise UserError(
                f"{source}: {where}: expected {tp.__name__}, got {_kind(value)} {value!r}"
            )
        return value
    raise TypeError(f"unsupported recipe field type {tp!r} at {where}")


def _kind(value: Any) -> str:
    return {dict: "a table", list: "a list"}.get(type(value), type(value).__name__)


def to_dict(config: Any) -> dict:
    """The resolved recipe as plain JSON-able data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def format_recipe(config: Any) -> str:
    """The resolved recipe as TOML-like text, printed at the start of training."""
    lines = []
    for section, values in to_dict(config).items():
        if isinstance(values, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
            lines.append("")
        else:
            lines.insert(0, f"{section} = {json.dumps(values)}")
    return "\n".join(lines).rstrip() + "\n"
