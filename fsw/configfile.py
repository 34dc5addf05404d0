r"""One way to read a configuration file: TOML (or JSON) checked against a schema.

A schema is a :class:`msgspec.Struct` whose fields carry their constraints
(``Annotated[float, msgspec.Meta(ge=160)]``) and which forbids unknown fields. Reading a
file is one call, :func:`load_toml`; whatever is wrong with it raises one
:class:`ConfigError` naming the file, the dotted key and what was expected:

>>> import msgspec
>>> from typing import Annotated
>>> class Orbit(msgspec.Struct, forbid_unknown_fields=True):
...     altitude_km: Annotated[float, msgspec.Meta(ge=160)]
>>> class Mission(msgspec.Struct, forbid_unknown_fields=True):
...     orbit: Orbit
>>> decode_toml("[orbit]\naltitude_km = 550", Mission, "leo550.toml").orbit
Orbit(altitude_km=550.0)
>>> for text in ['[orbit]\naltitude_km = "abc"', "[orbit]\naltitude_km = 550\ninc = 97"]:
...     try:
...         decode_toml(text, Mission, "leo550.toml")
...     except ConfigError as exc:
...         print(exc)
leo550.toml: orbit.altitude_km: expected a number >= 160, got "abc"
leo550.toml: orbit.inc: unknown key (known: altitude_km)

A field's ``Meta(description=...)``, when given, is how errors describe what it
expects. Checks that span fields go in the schema's ``__post_init__``: a ``ValueError`` raised
there is reported at that table's key. :func:`encode_toml` writes a schema instance back
(tomli-w), so a file round-trips. msgspec is small, pure C with wheels for aarch64, and
is all this needs, so the flight software uses it as the bench does.
"""

# No `from __future__ import annotations`: schemas defined in doctests need real types.

import datetime as _dt
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import tomli_w
from msgspec import inspect as mi

T = TypeVar("T")

_PATH = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\.\.\.\]")
_MISSING = re.compile(r"^Object missing required field `([^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `([^`]+)`$")
_TYPE_OR_RANGE = re.compile(r"^(Expected `|Invalid enum value|Invalid RFC3339)")


class ConfigError(ValueError):
    """A configuration file that cannot be used, and why.

    ``file`` is the file's name, ``key`` the dotted key (``stations[0].lat_deg``; empty
    for the file as a whole) and ``reason`` what is wrong, in words an operator can act on.

    >>> str(ConfigError("leo550.toml", "battery.capacity_wh", "missing: a number > 0"))
    'leo550.toml: battery.capacity_wh: missing: a number > 0'
    """

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")


def load_toml(path: str | Path, schema: type[T]) -> T:
    """Read the TOML file at ``path`` into ``schema``; :class:`ConfigError` if it cannot."""
    path = Path(path)
    return decode_toml(_read_text(path), schema, path.name)


def load_json(path: str | Path, schema: type[T]) -> T:
    """Read a JSON file into ``schema``, with the same checks and errors as TOML."""
    path = Path(path)
    try:
        doc = json.loads(_read_text(path))
    except ValueError as exc:
        raise ConfigError(path.name, "", f"not valid JSON: {exc}") from None
    return convert(doc, schema, path.name)


def decode_toml(text: str, schema: type[T], file: str = "<config>") -> T:
    """Parse TOML ``text`` (named ``file`` in errors) into ``schema``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from None
    return convert(doc, schema, file)


def convert(doc: Any, schema: type[T], file: str = "<config>") -> T:
    """Check already-parsed data (tables as dicts) against ``schema`` and build it."""
    try:
        return msgspec.convert(doc, schema)
    except msgspec.ValidationError as exc:
        key, reason = explain(str(exc), doc, schema)
        raise ConfigError(file, key, reason) from None


def encode_toml(obj: Any) -> str:
    """TOML text for a schema instance (or plain data), written by tomli-w.

    >>> print(encode_toml({"orbit": {"altitude_km": 550.0}}), end="")
    [orbit]
    altitude_km = 550.0
    """
    data = msgspec.to_builtins(obj, builtin_types=(_dt.datetime, _dt.date, _dt.time))
    return tomli_w.dumps(data)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path.name, "", f"not UTF-8 text (byte {exc.start})") from None


# ----------------------------------------------------------------- explaining errors
def explain(message: str, doc: Any, schema: Any) -> tuple[str, str]:
    """The dotted key and an operator's reason for a msgspec validation ``message``.

    The expected type and range come from the schema, the offending value from ``doc``.
    """
    text, _, where = message.partition(" - at `$")
    path = _parse_path(where.rstrip("`"))
    value, path = _follow(doc, schema, path)
    info = _info_at(mi.type_info(schema), path)
    bare = _table_of(_unwrap(info))
    if m := _MISSING.match(text):
        field = _field_info(bare, m.group(1))
        want = f": expected {describe(field.type)}" if field is not None else ""
        return _key([*path, m.group(1)]), f"missing{want}"
    if m := _UNKNOWN.match(text):
        known = [f.encode_name for f in bare.fields] if isinstance(bare, mi.StructType) else []
        return _key([*path, m.group(1)]), f"unknown key (known: {', '.join(known)})"
    if _TYPE_OR_RANGE.match(text) and info is not None:
        return _key(path), f"expected {describe(info)}, got {show(value)}"
    # a check of the schema's own (__post_init__): its words, at its table's key
    return _key(path), text[:1].lower() + text[1:] if text[1:2].islower() else text


def _parse_path(where: str) -> list[str | int | None]:
    """``.stations[0].lat_deg`` -> ["stations", 0, "lat_deg"]; ``[...]`` (a table's entry)
    -> None."""
    out: list[str | int | None] = []
    for m in _PATH.finditer(where):
        name, index = m.group(1), m.group(2)
        out.append(name if name is not None else int(index) if index is not None else None)
    return out


def _follow(doc: Any, schema: Any, path: list[str | int | None]) -> tuple[Any, list[Any]]:
    """The value at ``path`` in ``doc``, and the path with a table entry (None) resolved to
    the first key whose value does not fit the schema."""
    value = doc
    info: Any = mi.type_info(schema)
    resolved: list[Any] = []
    for step in path:
        info = _table_of(_unwrap(info))
        if step is None and isinstance(value, dict) and isinstance(info, mi.DictType):
            step = next(
                (k for k, v in value.items() if not _fits(v, info.value_type)), next(iter(value))
            )
        resolved.append(step)
        info = _info_at(info, [step])
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            value = None
    return value, resolved


def _table_of(info: Any) -> Any:
    """The table among a union's alternatives (an optional table), else ``info``."""
    if isinstance(info, mi.UnionType):
        tables = (_unwrap(t) for t in info.types)
        return next((t for t in tables if isinstance(t, mi.StructType | mi.DictType)), info)
    return info


def _unwrap(info: Any) -> Any:
    while isinstance(info, mi.Metadata):
        info = info.type
    return info


def _field_info(info: Any, name: str) -> Any:
    if isinstance(info, mi.StructType):
        for f in info.fields:
            if f.encode_name == name:
                return f
    return None


def _info_at(info: Any, path: list[Any]) -> Any:
    """The type information at ``path`` below ``info`` (None where it cannot tell)."""
    for step in path:
        info = _table_of(_unwrap(info))
        if isinstance(step, str) and isinstance(info, mi.StructType):
            field = _field_info(info, step)
            info = field.type if field is not None else None
        elif isinstance(info, mi.DictType):
            info = info.value_type
        elif isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType):
            info = info.item_type
        elif isinstance(info, mi.TupleType) and isinstance(step, int):
            info = info.item_types[step] if step < len(info.item_types) else None
        else:
            return None
    return info


def _fits(value: Any, info: Any) -> bool:
    """Whether a scalar ``value`` satisfies scalar type ``info`` (True when unsure)."""
    try:
        msgspec.convert(value, _scalar_type(_unwrap(info)))
    except msgspec.ValidationError:
        return False
    except TypeError:
        return True
    return _in_bounds(value, _unwrap(info))


def _scalar_type(info: Any) -> type:
    for kind, typ in ((mi.FloatType, float), (mi.IntType, int), (mi.StrType, str)):
        if isinstance(info, kind):
            return typ
    if isinstance(info, mi.BoolType):
        return bool
    raise TypeError("not a scalar")


def _in_bounds(value: Any, info: Any) -> bool:
    if not isinstance(info, mi.FloatType | mi.IntType) or not isinstance(value, int | float):
        return True
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (
        (info.ge is not None and value < info.ge)
        or (info.gt is not None and value <= info.gt)
        or (info.le is not None and value > info.le)
        or (info.lt is not None and value >= info.lt)
    )


def _key(path: list[Any]) -> str:
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            text = str(step)
            text = text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text)
            out += f".{text}" if out else text
    return out


def _bounds(info: Any) -> str:
    parts = [
        f"{op} {_num(v)}"
        for op, v in ((">=", info.ge), (">", info.gt), ("<=", info.le), ("<", info.lt))
        if v is not None
    ]
    return (" " + " and ".join(parts)) if parts else ""


def _num(v: float) -> str:
    """1.0 -> '1', 2592000.0 -> '2592000', 1e10 -> '1e+10', 1e-07 -> '1e-07'."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e7:
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def describe(info: Any) -> str:
    """What a value of schema type ``info`` looks like, in words.

    A field's ``Meta(description=...)`` is used when it has one.

    >>> describe(mi.type_info(list[int]))
    'a list of integers'
    """
    if isinstance(info, mi.Metadata):
        said = (info.extra_json_schema or {}).get("description")
        return str(said) if said else describe(info.type)
    if isinstance(info, mi.FloatType | mi.IntType):
        return ("a number" if isinstance(info, mi.FloatType) else "an integer") + _bounds(info)
    if isinstance(info, mi.StrType):
        text = "non-empty text" if info.min_length else "text"
        return text + (f" matching {info.pattern}" if info.pattern else "")
    if isinstance(info, mi.LiteralType | mi.EnumType):
        values = info.values if isinstance(info, mi.LiteralType) else [m.value for m in info.cls]
        words = ", ".join(json.dumps(v) for v in values)
        return words if len(values) == 1 else f"one of {words}"
    if isinstance(info, mi.UnionType):
        return " or ".join(describe(t) for t in info.types if not isinstance(t, mi.NoneType))
    return _describe_other(info)


def _describe_other(info: Any) -> str:
    """Tables, lists, true/false, date-times (the rest of :func:`describe`)."""
    if isinstance(info, mi.DictType):
        return f"a table of name = {_plural(describe(info.value_type))}"
    if isinstance(info, mi.TupleType):
        return f"a list of {len(info.item_types)} {_plural(describe(info.item_types[0]))}"
    if isinstance(info, mi.ListType | mi.VarTupleType):
        size = f" ({info.min_length} or more)" if info.min_length else ""
        return f"a list of {_plural(describe(info.item_type))}{size}"
    words: dict[type, str] = {
        mi.StructType: "a table",
        mi.BoolType: "true or false",
        mi.DateTimeType: "a date-time like 2026-11-21T00:00:00Z",
    }
    return words.get(type(info), type(info).__name__.removesuffix("Type").lower())


def _plural(text: str) -> str:
    """'a number >= 0' -> 'numbers >= 0', 'an integer' -> 'integers', 'text' -> 'texts'."""
    head, _, rest = text.partition(" ")
    if head in ("a", "an"):
        noun, _, rest = rest.partition(" ")
        return f"{noun}s" + (f" {rest}" if rest else "")
    return text


def show(value: Any) -> str:
    """A value as a TOML file spells it (text in double quotes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if value is None:
        return "nothing"
    return repr(value)


__all__ = [
    "ConfigError",
    "convert",
    "decode_toml",
    "describe",
    "encode_toml",
    "explain",
    "load_json",
    "load_toml",
    "show",
]
