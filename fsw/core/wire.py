"""Typed fields and their byte layout: the one codec for command arguments and reports.

Everything on the wire is big-endian. A field is an :class:`Arg` (one value), an
:class:`Array` (a count followed by that many groups of fields) or a :class:`Dynamic`
(values whose types come from the dictionary: a parameter's value, an event's arguments,
a housekeeping report's channels). The dictionary exports the same descriptions, so the
ground encodes and decodes with no flight code.

Wire types: ``u8 u16 u32 i8 i16 i32 f32 f64`` (plain binary), ``bool`` (one byte, 0/1),
``enum`` (an integer of ``base`` width, u8 or u16, with labels), ``str`` (u8 length, then
UTF-8, at most ``max_len`` bytes), ``cuc`` (CUC 4+2 time, TAI seconds since 1958) and
``packet`` (one whole CCSDS space packet; its own header gives its length).

>>> fields = (Arg("sid", "u16"), Arg("on", "bool"), Arg("label", "str", max_len=8))
>>> raw = encode(fields, {"sid": 7, "on": True, "label": "hk"})
>>> raw.hex()
'00070102686b'
>>> decode(fields, raw)
{'sid': 7, 'on': True, 'label': 'hk'}
"""

from __future__ import annotations

import keyword
import math
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fsw.ccsds import CcsdsError, cuc_decode, cuc_encode
from fsw.core.errors import DeclarationError, FailureCode, WireError

#: CUC T-field layout used everywhere in Gnomon (no P-field).
CUC_COARSE_OCTETS = 4
CUC_FINE_OCTETS = 2
CUC_LEN = CUC_COARSE_OCTETS + CUC_FINE_OCTETS
CUC_MAX_TAI_S = float(1 << (8 * CUC_COARSE_OCTETS)) - 1.0 / (1 << (8 * CUC_FINE_OCTETS))

_INT_TYPES: dict[str, tuple[str, int, int]] = {
    "u8": ("B", 0, 0xFF),
    "u16": ("H", 0, 0xFFFF),
    "u32": ("I", 0, 0xFFFF_FFFF),
    "i8": ("b", -0x80, 0x7F),
    "i16": ("h", -0x8000, 0x7FFF),
    "i32": ("i", -0x8000_0000, 0x7FFF_FFFF),
}
_FLOAT_TYPES: dict[str, str] = {"f32": "f", "f64": "d"}
#: Every leaf wire type.
WIRE_TYPES: tuple[str, ...] = (
    *_INT_TYPES,
    *_FLOAT_TYPES,
    "bool",
    "enum",
    "str",
    "cuc",
    "packet",
)
#: Wire types a telemetry channel or parameter may have (fixed size, numeric).
NUMERIC_TYPES: tuple[str, ...] = (*_INT_TYPES, *_FLOAT_TYPES, "bool", "enum")
DYNAMIC_KINDS: tuple[str, ...] = ("param_value", "event_args", "hk_values")
STR_MAX_LEN = 255

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def struct_format(wire_type: str, base: str = "u8") -> str:
    """The :mod:`struct` code of a fixed-size wire type (no byte-order prefix).

    >>> struct_format("f32"), struct_format("enum", base="u16"), struct_format("bool")
    ('f', 'H', 'B')
    """
    if wire_type in _INT_TYPES:
        return _INT_TYPES[wire_type][0]
    if wire_type in _FLOAT_TYPES:
        return _FLOAT_TYPES[wire_type]
    if wire_type == "bool":
        return "B"
    if wire_type == "enum":
        return _INT_TYPES[base][0]
    raise DeclarationError(f"wire type '{wire_type}' has no fixed size")


@dataclass(slots=True, frozen=True)
class Arg:
    """One typed value: a command argument, a report field, a channel or parameter type.

    ``labels`` name the values of an ``enum`` (value ``i`` is ``labels[i]`` unless
    ``label_values`` gives explicit numbers). ``min``/``max`` bound numbers (inclusive).

    >>> Arg("mode", "enum", labels=("NOMINAL", "SAFE")).check("SAFE")
    'SAFE'
    >>> Arg("gain", "f32", min=0, max=10).check(12.0)
    Traceback (most recent call last):
    ...
    fsw.core.errors.WireError: ARG_OUT_OF_RANGE: gain=12.0 is above the maximum 10
    """

    name: str
    type: str
    min: float | None = None
    max: float | None = None
    units: str = ""
    description: str = ""
    labels: tuple[str, ...] = ()
    label_values: tuple[int, ...] = ()
    max_len: int = 0
    base: str = "u8"
    _v2l: dict[int, str] = field(init=False, repr=False, compare=False, hash=False)
    _l2v: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)
    _struct: struct.Struct | None = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        check_name(self.name, what="argument")
        if self.type not in WIRE_TYPES:
            raise DeclarationError(
                f"{self.name}: unknown wire type '{self.type}' (one of {', '.join(WIRE_TYPES)})"
            )
        labels = tuple(self.labels)
        values = tuple(self.label_values) or tuple(range(len(labels)))
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "label_values", values)
        if self.type == "enum":
            self._check_enum(labels, values)
        elif labels:
            raise DeclarationError(f"{self.name}: labels only apply to enums")
        if self.type == "str" and not 1 <= self.max_len <= STR_MAX_LEN:
            raise DeclarationError(f"{self.name}: str needs max_len in 1..{STR_MAX_LEN}")
        self._check_bounds()
        object.__setattr__(self, "_v2l", dict(zip(values, labels, strict=True)))
        object.__setattr__(self, "_l2v", dict(zip(labels, values, strict=True)))
        fixed = self.type in NUMERIC_TYPES
        st = struct.Struct(">" + struct_format(self.type, self.base)) if fixed else None
        object.__setattr__(self, "_struct", st)

    def _check_enum(self, labels: tuple[str, ...], values: tuple[int, ...]) -> None:
        if self.base not in ("u8", "u16"):
            raise DeclarationError(f"{self.name}: enum base must be u8 or u16")
        if not labels:
            raise DeclarationError(f"{self.name}: an enum needs labels")
        if len(values) != len(labels):
            raise DeclarationError(f"{self.name}: {len(labels)} labels, {len(values)} values")
        if len(set(labels)) != len(labels) or len(set(values)) != len(values):
            raise DeclarationError(f"{self.name}: enum labels and values must be unique")
        _, lo, hi = _INT_TYPES[self.base]
        if any(not lo <= v <= hi for v in values):
            raise DeclarationError(f"{self.name}: enum value outside {self.base}")

    def _check_bounds(self) -> None:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise DeclarationError(f"{self.name}: min {self.min} > max {self.max}")
        if self.type in _INT_TYPES:
            _, lo, hi = _INT_TYPES[self.type]
            for bound in (self.min, self.max):
                if bound is not None and not lo <= bound <= hi:
                    raise DeclarationError(f"{self.name}: bound {bound} outside {self.type}")
        elif self.type not in _FLOAT_TYPES and (self.min is not None or self.max is not None):
            raise DeclarationError(f"{self.name}: min/max only apply to numbers")

    # ------------------------------------------------------------------ ranges
    @property
    def effective_min(self) -> float | None:
        """Declared minimum, or the natural minimum of an integer type."""
        if self.min is not None:
            return self.min
        return _INT_TYPES[self.type][1] if self.type in _INT_TYPES else None

    @property
    def effective_max(self) -> float | None:
        """Declared maximum, or the natural maximum of an integer type."""
        if self.max is not None:
            return self.max
        return _INT_TYPES[self.type][2] if self.type in _INT_TYPES else None

    @property
    def size(self) -> int | None:
        """Bytes on the wire for fixed-size types, else None."""
        if self._struct is not None:
            return self._struct.size
        return CUC_LEN if self.type == "cuc" else None

    def label_of(self, value: int) -> str:
        """Label of an enum value (``WireError`` if unknown)."""
        try:
            return self._v2l[value]
        except KeyError:
            raise WireError(
                FailureCode.ARG_OUT_OF_RANGE, f"{self.name}: {value} is not a known enum value"
            ) from None

    def value_of(self, label: str | int) -> int:
        """Numeric value of an enum label (or a value, checked)."""
        if isinstance(label, str):
            try:
                return self._l2v[label]
            except KeyError:
                known = ", ".join(self.labels)
                raise WireError(
                    FailureCode.ARG_OUT_OF_RANGE,
                    f"{self.name}: '{label}' is not one of {known}",
                ) from None
        self.label_of(label)
        return int(label)

    # ------------------------------------------------------------------ check
    def check(self, value: Any) -> Any:
        """Validate ``value`` for this field and return its normal Python form.

        Integers stay int, floats become float, enums become their label, ``cuc`` is TAI
        seconds (float), ``packet`` is bytes. Raises ``WireError`` (ARG_OUT_OF_RANGE).
        """
        t = self.type
        if t in _INT_TYPES:
            return self._check_int(value)
        if t in _FLOAT_TYPES:
            return self._check_float(value)
        if t == "bool":
            return self._check_bool(value)
        if t == "enum":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise self._bad(f"{self.name}={value!r} is not an enum label")
            return self.label_of(self.value_of(value))
        if t == "str":
            return self._check_str(value)
        if t == "cuc":
            return self._check_cuc(value)
        return self._check_packet(value)

    def _check_int(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise self._bad(f"{self.name}={value!r} is not an integer")
        return self._in_range(int(value))

    def _check_float(self, value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._bad(f"{self.name}={value!r} is not a number")
        value = float(value)
        if not math.isfinite(value):
            raise self._bad(f"{self.name}={value} is not a finite number")
        return self._in_range(value)

    def _check_bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        raise self._bad(f"{self.name}={value!r} is not a boolean")

    def _check_str(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._bad(f"{self.name}={value!r} is not text")
        n = len(value.encode("utf-8"))
        if n > self.max_len:
            raise self._bad(f"{self.name} is {n} bytes long, at most {self.max_len} allowed")
        return value

    def _check_cuc(self, value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._bad(f"{self.name}={value!r} is not a time (TAI seconds)")
        value = float(value)
        if not (math.isfinite(value) and 0.0 <= value <= CUC_MAX_TAI_S):
            raise self._bad(f"{self.name}={value} s is not a CUC 4+2 time")
        return value

    def _check_packet(self, value: Any) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise self._bad(f"{self.name} must be the bytes of a space packet")
        raw = bytes(value)
        if len(raw) < 7 or len(raw) != 7 + int.from_bytes(raw[4:6], "big"):
            raise self._bad(f"{self.name} is not one whole space packet ({len(raw)} bytes)")
        return raw

    def _in_range(self, value: float) -> Any:
        lo, hi = self.effective_min, self.effective_max
        if lo is not None and value < lo:
            raise self._bad(f"{self.name}={value} is below the minimum {_fmt(lo)}")
        if hi is not None and value > hi:
            raise self._bad(f"{self.name}={value} is above the maximum {_fmt(hi)}")
        return value

    def _bad(self, reason: str) -> WireError:
        return WireError(FailureCode.ARG_OUT_OF_RANGE, reason)

    # ------------------------------------------------------------------ bytes
    def pack(self, value: Any) -> bytes:
        """Bytes of one (checked) value."""
        v = self.check(value)
        st = self._struct
        if st is not None:
            if self.type == "enum":
                return st.pack(self._l2v[v])
            return st.pack(v)
        if self.type == "str":
            b = v.encode("utf-8")
            return bytes((len(b),)) + b
        if self.type == "cuc":
            try:
                return cuc_encode(v, CUC_COARSE_OCTETS, CUC_FINE_OCTETS)
            except CcsdsError as exc:  # pragma: no cover - check() bounds it already
                raise self._bad(f"{self.name}: {exc}") from None
        return bytes(v)

    def unpack(self, data: bytes, offset: int) -> tuple[Any, int]:
        """Decode one value at ``offset``; return it and the offset after it."""
        st = self._struct
        if st is not None:
            return self._unpack_fixed(st, data, offset)
        if self.type == "str":
            return self._unpack_str(data, offset)
        if self.type == "cuc":
            end = offset + CUC_LEN
            if end > len(data):
                raise _short(self.name, CUC_LEN, len(data) - offset, offset)
            return cuc_decode(data[offset:end], CUC_COARSE_OCTETS, CUC_FINE_OCTETS), end
        # packet: its own header gives the length
        if offset + 6 > len(data):
            raise _short(self.name, 6, len(data) - offset, offset)
        total = 7 + int.from_bytes(data[offset + 4 : offset + 6], "big")
        end = offset + total
        if end > len(data):
            raise _short(self.name, total, len(data) - offset, offset)
        return bytes(data[offset:end]), end

    def _unpack_fixed(self, st: struct.Struct, data: bytes, offset: int) -> tuple[Any, int]:
        end = offset + st.size
        if end > len(data):
            raise _short(self.name, st.size, len(data) - offset, offset)
        (raw,) = st.unpack_from(data, offset)
        if self.type == "enum":
            return self.label_of(raw), end
        if self.type == "bool":
            if raw > 1:
                raise WireError(
                    FailureCode.ARG_OUT_OF_RANGE,
                    f"{self.name}: boolean byte is {raw}, must be 0 or 1",
                    offset=offset,
                )
            return bool(raw), end
        if self.type in _FLOAT_TYPES and not math.isfinite(raw):
            raise WireError(
                FailureCode.ARG_OUT_OF_RANGE,
                f"{self.name} is not a finite number",
                offset=offset,
            )
        return self._at(self._in_range, raw, offset), end

    def _unpack_str(self, data: bytes, offset: int) -> tuple[str, int]:
        if offset >= len(data):
            raise _short(self.name, 1, 0, offset)
        n = data[offset]
        end = offset + 1 + n
        if end > len(data):
            raise _short(self.name, n + 1, len(data) - offset, offset)
        try:
            text = data[offset + 1 : end].decode("utf-8")
        except UnicodeDecodeError:
            raise WireError(
                FailureCode.ARG_OUT_OF_RANGE, f"{self.name} is not valid UTF-8", offset=offset
            ) from None
        if n > self.max_len:
            raise WireError(
                FailureCode.ARG_OUT_OF_RANGE,
                f"{self.name} is {n} bytes long, at most {self.max_len} allowed",
                offset=offset,
            )
        return text, end

    def _at(self, fn: Callable[[Any], Any], value: Any, offset: int) -> Any:
        try:
            return fn(value)
        except WireError as exc:
            raise WireError(exc.code, exc.reason, offset=offset) from None

    def to_json(self) -> dict[str, Any]:
        """The dictionary description of this field."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == "enum":
            out["base"] = self.base
            out["labels"] = [
                {"value": v, "label": lab}
                for v, lab in zip(self.label_values, self.labels, strict=True)
            ]
        if self.type == "str":
            out["max_len"] = self.max_len
        if self.type in _INT_TYPES or self.type in _FLOAT_TYPES:
            out["min"] = self.effective_min
            out["max"] = self.effective_max
        if self.units:
            out["units"] = self.units
        if self.description:
            out["description"] = self.description
        return out


@dataclass(slots=True, frozen=True)
class Array:
    """A count (``count`` type) followed by that many groups of ``items``.

    >>> ids = Array("sids", (Arg("sid", "u16"),))
    >>> encode((ids,), {"sids": [{"sid": 1}, {"sid": 2}]}).hex()
    '000200010002'
    """

    name: str
    items: tuple[Field, ...]
    count: str = "u16"
    max_count: int = 0xFFFF
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, what="array")
        object.__setattr__(self, "items", tuple(self.items))
        if self.count not in ("u8", "u16"):
            raise DeclarationError(f"{self.name}: array count must be u8 or u16")
        if not 0 <= self.max_count <= _INT_TYPES[self.count][2]:
            raise DeclarationError(f"{self.name}: max_count does not fit {self.count}")
        _check_unique(self.items, self.name)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": "array",
            "count": self.count,
            "max_count": self.max_count,
            "items": [f.to_json() for f in self.items],
        }
        if self.description:
            out["description"] = self.description
        return out


@dataclass(slots=True, frozen=True)
class Dynamic:
    """Values typed by the dictionary, keyed by an earlier sibling field ``ref``.

    ``param_value``: the value of parameter ``ref`` (its type, min, max);
    ``event_args``: the arguments of event ``ref`` in order;
    ``hk_values``: the channels of housekeeping report ``ref`` in order.
    """

    name: str
    kind: str
    ref: str
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, what="field")
        if self.kind not in DYNAMIC_KINDS:
            raise DeclarationError(f"{self.name}: dynamic kind must be one of {DYNAMIC_KINDS}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind, "ref": self.ref}
        if self.description:
            out["description"] = self.description
        return out


Field = Arg | Array | Dynamic
#: Looks up the fields of a dynamic value: ``resolver(kind, key) -> fields``.
Resolver = Callable[[str, int], Sequence[Arg]]


def check_name(name: str, *, what: str) -> None:
    """Names are identifiers (letters, digits, underscore; not a Python keyword)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or keyword.iskeyword(name):
        raise DeclarationError(f"{what} name {name!r} must be an identifier like 'soc_pct'")


def _check_unique(fields: Sequence[Field], where: str) -> None:
    names = [f.name for f in fields]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise DeclarationError(f"{where}: duplicate field names {sorted(dup)}")
    known: set[str] = set()
    for f in fields:
        if isinstance(f, Dynamic) and f.ref not in known:
            raise DeclarationError(
                f"{where}: dynamic field {f.name} refers to {f.ref}, which must be an earlier field"
            )
        known.add(f.name)


def check_fields(fields: Sequence[Field], where: str) -> tuple[Field, ...]:
    """Validate a field list (unique names, dynamic refs to earlier fields)."""
    _check_unique(fields, where)
    return tuple(fields)


def _short(name: str, need: int, have: int, offset: int) -> WireError:
    return WireError(
        FailureCode.BAD_LENGTH,
        f"{name} needs {need} bytes but only {max(0, have)} remain",
        offset=offset,
    )


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _no_resolver(kind: str, key: int) -> Sequence[Arg]:
    raise WireError(FailureCode.NOT_FOUND, f"no dictionary to look up {kind} {key}")


# ---------------------------------------------------------------------- codec
def decode(
    fields: Sequence[Field], data: bytes, resolver: Resolver | None = None
) -> dict[str, Any]:
    """Decode ``data`` that must hold exactly ``fields``.

    Raises ``WireError``: BAD_LENGTH (too short or bytes left over), ARG_OUT_OF_RANGE,
    NOT_FOUND (unknown dynamic key).
    """
    values, end = decode_prefix(fields, data, 0, resolver)
    if end != len(data):
        raise WireError(
            FailureCode.BAD_LENGTH,
            f"{len(data) - end} unexpected bytes after the last field",
            offset=end,
        )
    return values


def decode_prefix(
    fields: Sequence[Field], data: bytes, offset: int, resolver: Resolver | None = None
) -> tuple[dict[str, Any], int]:
    """Decode ``fields`` starting at ``offset``; return the values and the end offset."""
    res = resolver or _no_resolver
    out: dict[str, Any] = {}
    for f in fields:
        if isinstance(f, Arg):
            out[f.name], offset = f.unpack(data, offset)
        elif isinstance(f, Array):
            cnt_arg = _COUNT_ARGS[f.count]
            n, offset = cnt_arg.unpack(data, offset)
            if n > f.max_count:
                raise WireError(
                    FailureCode.ARG_OUT_OF_RANGE,
                    f"{f.name}: {n} entries, at most {f.max_count} allowed",
                    offset=offset,
                )
            items = []
            for _ in range(n):
                item, offset = decode_prefix(f.items, data, offset, res)
                items.append(item)
            out[f.name] = items
        else:
            sub = _resolve(f, out, res)
            vals, offset = decode_prefix(sub, data, offset, res)
            out[f.name] = vals[sub[0].name] if f.kind == "param_value" else vals
    return out, offset


def encode(
    fields: Sequence[Field], values: Mapping[str, Any], resolver: Resolver | None = None
) -> bytes:
    """Encode ``values`` (by field name) for ``fields``; values are checked first."""
    res = resolver or _no_resolver
    parts: list[bytes] = []
    for f in fields:
        if f.name not in values:
            raise WireError(FailureCode.BAD_LENGTH, f"missing value for {f.name}")
        v = values[f.name]
        if isinstance(f, Arg):
            parts.append(f.pack(v))
        elif isinstance(f, Array):
            if not isinstance(v, Sequence) or isinstance(v, str | bytes):
                raise WireError(FailureCode.ARG_OUT_OF_RANGE, f"{f.name} must be a list")
            if len(v) > f.max_count:
                raise WireError(
                    FailureCode.ARG_OUT_OF_RANGE,
                    f"{f.name}: {len(v)} entries, at most {f.max_count} allowed",
                )
            parts.append(_COUNT_ARGS[f.count].pack(len(v)))
            parts.extend(encode(f.items, item, res) for item in v)
        else:
            sub = _resolve(f, values, res)
            if f.kind == "param_value":
                parts.append(sub[0].pack(v))
            else:
                if not isinstance(v, Mapping):
                    raise WireError(FailureCode.ARG_OUT_OF_RANGE, f"{f.name} must be a mapping")
                parts.append(encode(sub, v, res))
    return b"".join(parts)


def _resolve(f: Dynamic, siblings: Mapping[str, Any], res: Resolver) -> tuple[Arg, ...]:
    key = siblings.get(f.ref)
    if not isinstance(key, int):
        raise WireError(FailureCode.MALFORMED, f"{f.name}: key field {f.ref} missing")
    sub = tuple(res(f.kind, key))
    if f.kind == "param_value" and len(sub) != 1:
        raise WireError(FailureCode.NOT_FOUND, f"{f.name}: no single type for {f.ref}={key}")
    return sub


_COUNT_ARGS = {"u8": Arg("count", "u8"), "u16": Arg("count", "u16")}


def fields_to_json(fields: Sequence[Field]) -> list[dict[str, Any]]:
    """Dictionary descriptions of a field list."""
    return [f.to_json() for f in fields]


__all__ = [
    "CUC_LEN",
    "DYNAMIC_KINDS",
    "NUMERIC_TYPES",
    "WIRE_TYPES",
    "Arg",
    "Array",
    "Dynamic",
    "Field",
    "Resolver",
    "check_fields",
    "check_name",
    "decode",
    "decode_prefix",
    "encode",
    "fields_to_json",
    "struct_format",
]
