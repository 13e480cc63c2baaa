"""JSON Schema (draft 2020-12) generated from the config dataclasses, for editor completion.

``config/gatewayd.schema.json`` is this module's output; a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from gatewayd.config.loader import yaml_key
from gatewayd.config.model import Config

SchemaDict = dict[str, Any]


def _type_schema(tp: Any, defs: dict[str, SchemaDict]) -> SchemaDict:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        members = get_args(tp)
        return {"anyOf": [_type_schema(m, defs) for m in members]}
    if origin is typing.Literal:
        return {"enum": list(get_args(tp))}
    if origin in (tuple, list):
        args = get_args(tp)
        return {"type": "array", "items": _type_schema(args[0], defs) if args else {}}
    if origin in (dict, Mapping) or (origin is not None and getattr(origin, "__name__", "") == "Mapping"):
        args = get_args(tp)
        return {"type": "object", "additionalProperties": _type_schema(args[1], defs) if args else {}}
    if dataclasses.is_dataclass(tp):
        name = typing.cast(type, tp).__name__
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            defs[name] = _dataclass_schema(typing.cast(type, tp), defs)
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if tp is type(None):
        return {"type": "null"}
    return {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"},
            str: {"type": "string"}, Path: {"type": "string"}, Any: {}}[tp]


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, enum.Enum):
        return v.value
    return v


def _dataclass_schema(cls: type, defs: dict[str, SchemaDict]) -> SchemaDict:
    hints = get_type_hints(cls)
    props: dict[str, SchemaDict] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        s = dict(_type_schema(hints[f.name], defs))
        md = f.metadata
        if "doc" in md:
            s["description"] = md["doc"]
        if "min" in md:
            s["minimum"] = md["min"]
        if "max" in md:
            s["maximum"] = md["max"]
        if "pattern" in md:
            s["pattern"] = f"^(?:{md['pattern']})$"
        if f.default is not dataclasses.MISSING:
            s["default"] = _jsonable(f.default)
        elif f.default_factory is dataclasses.MISSING:
            required.append(yaml_key(f.name))
        props[yaml_key(f.name)] = s
    out: SchemaDict = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
        out["description"] = " ".join(cls.__doc__.split())
    if required:
        out["required"] = required
    return out


def config_schema() -> SchemaDict:
    defs: dict[str, SchemaDict] = {}
    root = _dataclass_schema(Config, defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://gatewayd.invalid/gatewayd.schema.json",
            "title": "gatewayd configuration", **root, "$defs": dict(sorted(defs.items()))}
