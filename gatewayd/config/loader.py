"""YAML → frozen dataclasses, with every error pointing at ``file:line:col``.

The config model is plain frozen dataclasses with type hints; this module walks the YAML node tree
(``yaml.compose``, which keeps positions) against those hints. Supported field types: ``str``,
``int``, ``float``, ``bool``, ``Path``, ``Literal[...]``, ``Enum``, ``X | None``, ``tuple[T, ...]``,
``Mapping[str, T]`` / ``dict[str, T]``, nested dataclasses, and unions of dataclasses told apart by a
``type`` key (each member declares ``type: Literal["..."]``).

Field metadata (``dataclasses.field(metadata=...)``):
  ``doc``      one-line description (JSON Schema ``description``, example-config comments)
  ``min``/``max``  numeric bounds (inclusive)
  ``pattern``  regular expression a string must match (``re.fullmatch``)
A dataclass may also define ``check(self) -> list[tuple[str, str]]`` returning ``(field, message)``
pairs for rules that involve several fields; ``__post_init__`` raising ``ValueError`` works too.

All errors are collected (not just the first) and raised together as :class:`ConfigError`.
Unknown keys are errors, with a "did you mean" from the known ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import keyword
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based
    col: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Marks:
    """Where each loaded object and field came from, for checks that run after loading."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._by_obj: dict[int, tuple[Any, yaml.Mark, dict[str, yaml.Mark]]] = {}

    def record(self, obj: Any, mark: yaml.Mark, fields: dict[str, yaml.Mark]) -> None:
        self._by_obj[id(obj)] = (obj, mark, fields)  # keep obj alive so ids stay unique

    def problem(self, obj: Any, field_name: str | None, message: str) -> Problem:
        entry = self._by_obj.get(id(obj))
        if entry is None:
            return Problem(self.file, 1, 1, message)
        _, mark, fields = entry
        m = fields.get(field_name, mark) if field_name else mark
        return Problem(self.file, m.line + 1, m.column + 1, message)


_constructor = yaml.constructor.SafeConstructor()


def _scalar(node: yaml.Node) -> Any:
    return _constructor.construct_object(node, deep=True)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (tuple, list):
        return "a list"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " or ".join(repr(m.value) for m in tp)
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            Path: "a path (string)"}.get(tp, getattr(tp, "__name__", str(tp)))


def yaml_key(field_name: str) -> str:
    """The YAML key of a field: ``from_`` (a Python keyword with a trailing underscore) is ``from``."""
    if field_name.endswith("_") and keyword.iskeyword(field_name[:-1]):
        return field_name[:-1]
    return field_name


def _suggest(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.marks = Marks(file)

    def err(self, node: yaml.Node, message: str) -> None:
        m = node.start_mark
        self.problems.append(Problem(self.file, m.line + 1, m.column + 1, message))

    # ------------------------------------------------------------------ dispatch
    def build(self, node: yaml.Node, tp: Any, where: str) -> Any:
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            return self._union(node, tp, where)
        if origin is typing.Literal:
            v = _scalar(node) if isinstance(node, yaml.ScalarNode) else None
            allowed = get_args(tp)
            if v not in allowed or isinstance(v, bool) != any(isinstance(a, bool) for a in allowed):
                shown = v if isinstance(node, yaml.ScalarNode) else "a " + type(node).__name__
                self.err(node, f"{where}: must be {_type_name(tp)}, not {shown!r}"
                         + (_suggest(str(v), [str(a) for a in allowed]) if isinstance(v, str) else ""))
                return None
            return v
        if origin in (tuple, list):
            return self._sequence(node, tp, where)
        if origin in (dict, Mapping, typing.Mapping) or (origin is not None and origin.__name__ == "Mapping"):
            return self._mapping(node, tp, where)
        if dataclasses.is_dataclass(tp):
            return self._dataclass(node, typing.cast(type, tp), where)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            v = _scalar(node) if isinstance(node, yaml.ScalarNode) else None
            try:
                return tp(v)
            except ValueError:
                self.err(node, f"{where}: must be {_type_name(tp)}, not {v!r}"
                         + _suggest(str(v), [str(m.value) for m in tp]))
                return None
        return self._plain(node, tp, where)

    def _plain(self, node: yaml.Node, tp: Any, where: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            got = "list" if isinstance(node, yaml.SequenceNode) else "mapping"
            self.err(node, f"{where}: expected {_type_name(tp)}, got a {got}")
            return None
        v = _scalar(node)
        if tp is Any:
            return v
        if tp is bool:
            if isinstance(v, bool):
                return v
        elif tp is int:
            if isinstance(v, int) and not isinstance(v, bool):
                return v
        elif tp is float:
            if isinstance(v, int | float) and not isinstance(v, bool):
                return float(v)
        elif tp is str:
            if isinstance(v, str):
                return v
            if isinstance(v, int | float) and not isinstance(v, bool):
                self.err(node, f"{where}: expected a string, got the number {node.value}; quote it (\"{node.value}\")")
                return None
        elif tp is Path:
            if isinstance(v, str) and v:
                return Path(v)
        else:
            raise TypeError(f"config loader: unsupported field type {tp!r} at {where}")
        shown = "null" if v is None else repr(v)
        self.err(node, f"{where}: expected {_type_name(tp)}, got {shown}")
        return None

    def _union(self, node: yaml.Node, tp: Any, where: str) -> Any:
        members = [a for a in get_args(tp) if a is not type(None)]
        nullable = len(members) < len(get_args(tp))
        if nullable and isinstance(node, yaml.ScalarNode) and _scalar(node) is None:
            return None
        if len(members) == 1:
            return self.build(node, members[0], where)
        if all(dataclasses.is_dataclass(m) for m in members):
            return self._tagged(node, members, where)
        # e.g. int | str: first member that fits without errors
        for m in members:
            trial = _Builder(self.file)
            value = trial.build(node, m, where)
            if not trial.problems:
                return value
        self.err(node, f"{where}: expected {_type_name(tp)}")
        return None

    def _tagged(self, node: yaml.Node, members: list[Any], where: str) -> Any:
        tags: dict[str, Any] = {}
        for m in members:
            lit = get_type_hints(m).get("type")
            if lit is None or get_origin(lit) is not typing.Literal:
                raise TypeError(f"{m.__name__} needs a `type: Literal[...]` field to be in a union")
            for a in get_args(lit):
                tags[a] = m
        if not isinstance(node, yaml.MappingNode):
            self.err(node, f"{where}: expected a mapping with a 'type' key")
            return None
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "type":
                t = _scalar(v)
                if t in tags:
                    return self._dataclass(node, tags[t], where)
                self.err(v, f"{where}.type: must be one of {', '.join(map(repr, tags))}, not {t!r}"
                         + _suggest(str(t), tags))
                return None
        self.err(node, f"{where}: missing required key 'type' (one of {', '.join(map(repr, tags))})")
        return None

    def _sequence(self, node: yaml.Node, tp: Any, where: str) -> Any:
        if not isinstance(node, yaml.SequenceNode):
            if isinstance(node, yaml.ScalarNode) and _scalar(node) is None:
                return ()
            self.err(node, f"{where}: expected a list")
            return None
        args = get_args(tp)
        item_tp = args[0] if args else Any
        return tuple(self.build(item, item_tp, f"{where}[{i}]") for i, item in enumerate(node.value))

    def _mapping(self, node: yaml.Node, tp: Any, where: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            if isinstance(node, yaml.ScalarNode) and _scalar(node) is None:
                return {}
            self.err(node, f"{where}: expected a mapping")
            return None
        args = get_args(tp)
        val_tp = args[1] if len(args) == 2 else Any
        out: dict[str, Any] = {}
        for k, v in node.value:
            key = _scalar(k) if isinstance(k, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.err(k, f"{where}: keys must be strings")
                continue
            if key in out:
                self.err(k, f"{where}: duplicate key {key!r}")
            out[key] = self.build(v, val_tp, f"{where}.{key}")
        return out

    def _dataclass(self, node: yaml.Node, cls: type, where: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            if isinstance(node, yaml.ScalarNode) and _scalar(node) is None:
                node = yaml.MappingNode("tag:yaml.org,2002:map", [], node.start_mark, node.end_mark)
            else:
                self.err(node, f"{where}: expected a mapping")
                return None
        hints = get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        yaml_names = {yaml_key(n): n for n in fields}
        values: dict[str, Any] = {}
        field_marks: dict[str, yaml.Mark] = {}
        value_nodes: dict[str, yaml.Node] = {}
        before = len(self.problems)
        for k, v in node.value:
            key = _scalar(k) if isinstance(k, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.err(k, f"{where}: keys must be strings")
                continue
            name = yaml_names.get(key) or yaml_names.get(key.replace("-", "_"), "")
            if name not in fields:
                self.err(k, f"{where}: unknown key {key!r}{_suggest(key, yaml_names)}")
                continue
            if name in values:
                self.err(k, f"{where}: duplicate key {key!r}")
                continue
            sub = f"{where}.{key}" if where else key
            val = self.build(v, hints[name], sub)
            if val is not None:
                self._bounds(v, fields[name], val, sub)
            values[name] = val
            field_marks[name] = v.start_mark
            value_nodes[name] = v
        for name, f in fields.items():
            if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.err(node, f"{where or 'config'}: missing required key {yaml_key(name)!r}")
        if len(self.problems) > before:
            return None
        # an explicit null means "the default", except where the field itself may be None
        # (``metrics.address: null`` disables the listener)
        values = {k: v for k, v in values.items() if not (v is None and fields[k].default is not None
                                                          and fields[k].default is not dataclasses.MISSING
                                                          and type(None) not in get_args(hints[k]))}
        try:
            obj = cls(**values)
        except (ValueError, TypeError) as e:
            self.err(node, f"{where or 'config'}: {e}")
            return None
        self.marks.record(obj, node.start_mark, field_marks)
        check = getattr(obj, "check", None)
        if callable(check):
            for fname, msg in check():
                target = value_nodes.get(fname, node)
                self.err(target, f"{where + '.' if where else ''}{fname}: {msg}")
        return obj

    def _bounds(self, node: yaml.Node, f: dataclasses.Field[Any], val: Any, where: str) -> None:
        md = f.metadata
        if "min" in md and isinstance(val, int | float) and val < md["min"]:
            self.err(node, f"{where}: must be >= {md['min']}, got {val}")
        if "max" in md and isinstance(val, int | float) and val > md["max"]:
            self.err(node, f"{where}: must be <= {md['max']}, got {val}")
        if "pattern" in md and isinstance(val, str) and not re.fullmatch(md["pattern"], val):
            self.err(node, f"{where}: {val!r} does not match {md['pattern']}")


def load(text: str, cls: type[T], file: str = "<config>") -> tuple[T, Marks]:
    """Parse YAML text into ``cls``. Raises ConfigError listing every problem found."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        m = e.problem_mark or e.context_mark
        line, col = (m.line + 1, m.column + 1) if m else (1, 1)
        raise ConfigError([Problem(file, line, col, f"YAML syntax error: {e.problem or e}")]) from None
    except yaml.YAMLError as e:
        raise ConfigError([Problem(file, 1, 1, f"YAML error: {e}")]) from None
    if root is None:
        root = yaml.MappingNode("tag:yaml.org,2002:map", [], yaml.Mark(file, 0, 0, 0, "", 0),
                                yaml.Mark(file, 0, 0, 0, "", 0))
    b = _Builder(file)
    try:
        obj = b.build(root, cls, "")
    except yaml.constructor.ConstructorError as e:
        m = e.problem_mark
        line, col = ((m.line + 1), (m.column + 1)) if m else (1, 1)
        raise ConfigError([Problem(file, line, col, str(e.problem))]) from None
    if b.problems or obj is None:
        raise ConfigError(b.problems or [Problem(file, 1, 1, "empty configuration")])
    return typing.cast(T, obj), b.marks


def load_file(path: str | Path, cls: type[T]) -> tuple[T, Marks]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([Problem(str(p), 1, 1, f"cannot read: {e.strerror}")]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([Problem(str(p), 1, 1, f"not UTF-8 text: {e.reason}")]) from None
    return load(text, cls, str(p))
