"""The flight dictionary as the ground reads it: typed and indexed, nothing else.

The ground knows a spacecraft only through the JSON that ``gnomon dict export --format
json`` prints (schema in ``docs/dictionary.md``). :class:`Dictionary` checks that the file
is one it understands and indexes commands, reports, telemetry channels, events,
parameters and housekeeping structures by name and by id; :class:`HkLayout` compiles a
housekeeping structure into one ``struct`` for decoding.

>>> d = Dictionary(minimal_dictionary())
>>> d.commands["PING"].service, d.commands["PING"].subservice
(17, 1)
>>> d.channels["demo.temp_c"].limits.state(45.0).value
'yellow_high'
>>> d.events_by_id[0x1001].message({"temp_c": 51.25})
'too hot: 51.2 C'
>>> d.command("PNG")
Traceback (most recent call last):
...
ground.errors.CommandValidationError: no command named 'PNG'; did you mean PING?
"""

from __future__ import annotations

import difflib
import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ground.errors import CommandValidationError, DecodeError, DictionaryError

SCHEMA = "gnomon-dictionary"
SUPPORTED_VERSIONS = (1,)

#: struct codes of the fixed-size wire types (big-endian prefix added by users).
STRUCT_CODES: dict[str, str] = {
    "u8": "B",
    "u16": "H",
    "u32": "I",
    "i8": "b",
    "i16": "h",
    "i32": "i",
    "f32": "f",
    "f64": "d",
    "bool": "B",
}
INT_RANGES: dict[str, tuple[int, int]] = {
    "u8": (0, 0xFF),
    "u16": (0, 0xFFFF),
    "u32": (0, 0xFFFF_FFFF),
    "i8": (-0x80, 0x7F),
    "i16": (-0x8000, 0x7FFF),
    "i32": (-0x8000_0000, 0x7FFF_FFFF),
}
FLOAT_TYPES = ("f32", "f64")
LEAF_TYPES = (*STRUCT_CODES, "enum", "str", "cuc", "packet")
DYNAMIC_TYPES = ("param_value", "event_args", "hk_values")


def _num(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DictionaryError(f"expected a number or null, found {value!r}")
    return value


def format_number(value: float) -> str:
    """A bound as an operator reads it: ``1000`` not ``1000.0``.

    >>> format_number(1000.0), format_number(0.25), format_number(4294967295)
    ('1000', '0.25', '4294967295')
    """
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return f"{value:g}"


@dataclass(slots=True, frozen=True)
class FieldDef:
    """One field of a command's arguments or a report's app data (see docs/dictionary.md)."""

    name: str
    type: str
    min: float | None = None
    max: float | None = None
    units: str = ""
    description: str = ""
    base: str = "u8"
    labels: tuple[tuple[int, str], ...] = ()
    max_len: int = 0
    count: str = "u16"
    max_count: int = 0
    items: tuple[FieldDef, ...] = ()
    ref: str = ""

    @property
    def struct_code(self) -> str | None:
        """The :mod:`struct` code of a fixed-size numeric field, else None."""
        if self.type == "enum":
            return STRUCT_CODES[self.base]
        return STRUCT_CODES.get(self.type)

    def label_of(self, value: int) -> str | None:
        """The enum label of ``value`` (None if unknown)."""
        for v, label in self.labels:
            if v == value:
                return label
        return None

    def value_of(self, label: str) -> int | None:
        """The enum value of ``label`` (None if unknown)."""
        for v, lab in self.labels:
            if lab == label:
                return v
        return None

    def describe(self) -> str:
        """Type, range and units in a few words, e.g. ``u16 1..65535`` or ``f32 0..10 W``.

        >>> FieldDef("gain", "f32", min=0.0, max=10.0, units="dB").describe()
        'f32 0..10 dB'
        """
        t = self.type
        if t == "enum":
            text = "one of " + "|".join(label for _, label in self.labels)
        elif t == "str":
            text = f"text <= {self.max_len} bytes"
        elif t == "cuc":
            text = "TAI seconds"
        elif t == "packet":
            text = "space packet (hex)"
        elif t == "array":
            inner = ", ".join(f"{i.name}: {i.describe()}" for i in self.items)
            text = f"list of [{inner}] (<= {self.max_count})"
        elif t == "param_value":
            text = f"value of the parameter named by {self.ref}"
        elif t in ("event_args", "hk_values"):
            text = f"values named by {self.ref}"
        elif self.min is not None or self.max is not None:
            lo = "" if self.min is None else format_number(self.min)
            hi = "" if self.max is None else format_number(self.max)
            text = f"{t} {lo}..{hi}"
        else:
            text = t
        return f"{text} {self.units}".rstrip()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FieldDef:
        """Build from one dictionary field description."""
        try:
            name = str(doc["name"])
            ftype = str(doc["type"])
        except (KeyError, TypeError):
            raise DictionaryError(f"a field needs a name and a type: {doc!r}") from None
        if ftype not in LEAF_TYPES and ftype not in DYNAMIC_TYPES and ftype != "array":
            raise DictionaryError(f"field {name}: unknown type '{ftype}'")
        try:
            labels = tuple((int(lab["value"]), str(lab["label"])) for lab in doc.get("labels", ()))
            items = tuple(cls.from_json(i) for i in doc.get("items", ()))
            out = cls(
                name=name,
                type=ftype,
                min=_num(doc.get("min")),
                max=_num(doc.get("max")),
                units=str(doc.get("units", "") or ""),
                description=str(doc.get("description", "") or ""),
                base=str(doc.get("base", "u8")),
                labels=labels,
                max_len=int(doc.get("max_len", 0) or 0),
                count=str(doc.get("count", "u16")),
                max_count=int(doc.get("max_count", 0xFFFF if ftype == "array" else 0) or 0),
                items=items,
                ref=str(doc.get("ref", "") or ""),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise DictionaryError(f"field {name}: {exc}") from None
        if ftype == "enum" and (out.base not in ("u8", "u16") or not labels):
            raise DictionaryError(f"field {name}: an enum needs base u8/u16 and labels")
        if ftype == "array" and (out.count not in ("u8", "u16") or not items):
            raise DictionaryError(f"field {name}: an array needs a u8/u16 count and items")
        if ftype in DYNAMIC_TYPES and not out.ref:
            raise DictionaryError(f"field {name}: a {ftype} field needs 'ref'")
        return out


class LimitState(Enum):
    """Where a telemetry value sits against its channel's limits."""

    OK = "ok"
    YELLOW_LOW = "yellow_low"
    YELLOW_HIGH = "yellow_high"
    RED_LOW = "red_low"
    RED_HIGH = "red_high"
    INVALID = "invalid"

    @property
    def colour(self) -> str:
        """The console colour: green, yellow, red (or magenta for NaN/inf)."""
        if self is LimitState.OK:
            return "green"
        if self is LimitState.INVALID:
            return "magenta"
        return "yellow" if self.value.startswith("yellow") else "red"


@dataclass(slots=True, frozen=True)
class Limits:
    """Yellow and red limits of a channel (None: no limit on that side).

    A value is red below ``red_low`` or above ``red_high``, else yellow below
    ``yellow_low`` or above ``yellow_high`` (strict comparisons).

    >>> Limits(yellow_high=0.0).state(1).value
    'yellow_high'
    """

    red_low: float | None = None
    yellow_low: float | None = None
    yellow_high: float | None = None
    red_high: float | None = None

    @property
    def any(self) -> bool:
        """True when at least one limit is set."""
        return any(
            v is not None for v in (self.red_low, self.yellow_low, self.yellow_high, self.red_high)
        )

    def state(self, value: Any) -> LimitState:
        """The limit state of ``value`` (non-numbers are always OK)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return LimitState.OK
        if isinstance(value, float) and not math.isfinite(value):
            return LimitState.INVALID
        if self.red_low is not None and value < self.red_low:
            return LimitState.RED_LOW
        if self.red_high is not None and value > self.red_high:
            return LimitState.RED_HIGH
        if self.yellow_low is not None and value < self.yellow_low:
            return LimitState.YELLOW_LOW
        if self.yellow_high is not None and value > self.yellow_high:
            return LimitState.YELLOW_HIGH
        return LimitState.OK


@dataclass(slots=True, frozen=True)
class ChannelDef:
    """A telemetry channel: ``field`` gives its wire type (its name is the channel's)."""

    name: str
    id: int
    component: str
    field: FieldDef
    limits: Limits
    description: str = ""

    @property
    def units(self) -> str:
        """Units of the value ("" when dimensionless)."""
        return self.field.units

    def problem(self, value: Any) -> str | None:
        """Why a decoded value of this channel is not data (None: it is).

        NaN and infinite floats, values outside the channel's declared valid range
        (``min``/``max`` in the dictionary), enum values without a label and bools that
        are neither 0 nor 1 are flagged.

        >>> ch = ChannelDef("eps.soc_pct", 1, "eps", FieldDef("soc_pct", "f32", 0.0, 100.0, "%"),
        ...                 Limits())
        >>> ch.problem(55.0), ch.problem(float("nan")), ch.problem(3.4e38)
        (None, 'not a number (NaN)', 'outside the valid range 0..100 %')
        """
        return _value_problem(self.field, value)


def _value_problem(f: FieldDef, value: Any) -> str | None:
    t = f.type
    if t == "enum":
        return None if isinstance(value, str) else f"raw value {value} has no label in the enum"
    if t == "bool":
        return None if isinstance(value, bool) else f"raw value {value} is not a bool (0 or 1)"
    if isinstance(value, float) and not math.isfinite(value):
        return "not a number (NaN)" if math.isnan(value) else "infinite"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
        lo = "" if f.min is None else format_number(f.min)
        hi = "" if f.max is None else format_number(f.max)
        return f"outside the valid range {lo}..{hi} {f.units}".rstrip()
    return None


def _needs_check(f: FieldDef) -> bool:
    """True when a decoded value of field ``f`` can be something other than data."""
    return f.type in ("enum", "bool", *FLOAT_TYPES) or f.min is not None or f.max is not None


def _finite_only(f: FieldDef) -> bool:
    """True for a float field whose values only need to be finite (no declared range)."""
    return f.type in FLOAT_TYPES and f.min is None and f.max is None


@dataclass(slots=True, frozen=True)
class ParamDef:
    """An on-board parameter; ``field`` carries its type, range and units."""

    name: str
    id: int
    component: str
    field: FieldDef
    default: Any = None
    description: str = ""


@dataclass(slots=True, frozen=True)
class EventDef:
    """An event: its severity, arguments and message template."""

    name: str
    id: int
    component: str
    severity: str
    format: str
    args: tuple[FieldDef, ...]
    description: str = ""

    def message(self, args: Mapping[str, Any]) -> str:
        """The event text with ``args`` filled in (``name: k=v`` if the template fails)."""
        try:
            return self.format.format(**args)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError):
            inner = ", ".join(f"{k}={v}" for k, v in args.items())
            return f"{self.name}: {inner}"


@dataclass(slots=True, frozen=True)
class CommandDef:
    """A command: how it is addressed (service, subservice, function id) and its args."""

    name: str
    component: str
    service: int
    subservice: int
    function_id: int | None
    args: tuple[FieldDef, ...]
    description: str = ""
    allowed_in_safe: bool = True
    replies: tuple[tuple[int, int], ...] = ()


@dataclass(slots=True, frozen=True)
class ReportDef:
    """A TM report: (service, subservice), APID role and app-data fields."""

    name: str
    component: str
    service: int
    subservice: int
    apid: int
    role: str
    fields: tuple[FieldDef, ...]
    description: str = ""


@dataclass(slots=True, frozen=True)
class HkStructureDef:
    """A housekeeping report structure defined in flight code."""

    sid: int
    name: str
    interval_s: float
    enabled: bool
    channel_ids: tuple[int, ...]


@dataclass(slots=True, frozen=True)
class FailureCodeDef:
    """A service-1 failure code."""

    code: int
    name: str
    meaning: str


def _get(doc: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return doc[key]
    except (KeyError, TypeError):
        raise DictionaryError(f"{what} has no '{key}'") from None


def suggest_name(name: str, choices: Sequence[str]) -> str:
    """``'; did you mean X?'`` for the closest of ``choices`` (or ``''``).

    >>> suggest_name("PNIG", ["PING", "PARAM_SET"])
    '; did you mean PING?'
    """
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"; did you mean {close[0]}?" if close else ""


@dataclass(slots=True, frozen=True)
class _Index:
    commands: dict[str, CommandDef] = field(default_factory=dict)
    reports: dict[tuple[int, int], ReportDef] = field(default_factory=dict)
    channels: dict[str, ChannelDef] = field(default_factory=dict)
    channels_by_id: dict[int, ChannelDef] = field(default_factory=dict)
    events: dict[str, EventDef] = field(default_factory=dict)
    events_by_id: dict[int, EventDef] = field(default_factory=dict)
    params: dict[str, ParamDef] = field(default_factory=dict)
    params_by_id: dict[int, ParamDef] = field(default_factory=dict)
    housekeeping: dict[int, HkStructureDef] = field(default_factory=dict)
    failure_codes: dict[int, FailureCodeDef] = field(default_factory=dict)


class Dictionary:
    """A parsed, checked flight dictionary (read-only).

    Build it from the parsed JSON (:meth:`load` reads a file). Raises
    :class:`DictionaryError` naming what is missing or malformed.
    """

    def __init__(self, doc: Mapping[str, Any]) -> None:
        if not isinstance(doc, Mapping):
            raise DictionaryError("a dictionary must be a JSON object")
        if doc.get("schema") != SCHEMA:
            raise DictionaryError(
                f"not a Gnomon dictionary (schema is {doc.get('schema')!r}, expected "
                f"'{SCHEMA}'); export one with `gnomon dict export --format json`"
            )
        if doc.get("version") not in SUPPORTED_VERSIONS:
            raise DictionaryError(
                f"dictionary schema version {doc.get('version')!r} is not supported "
                f"(this ground reads {', '.join(map(str, SUPPORTED_VERSIONS))})"
            )
        self.doc: dict[str, Any] = json.loads(json.dumps(doc))
        self.content_hash = str(doc.get("content_hash", ""))
        apids = _get(doc, "apids", "the dictionary")
        try:
            self.tc_apid = int(apids["tc"])
            self.tm_apids: dict[str, int] = {str(k): int(v) for k, v in apids["tm"].items()}
            tcode = doc["time_code"]
            if tcode.get("format") != "CUC" or tcode.get("p_field"):
                raise DictionaryError(
                    f"time code {tcode.get('format')} with P-field={tcode.get('p_field')} is "
                    "not supported (CUC without P-field only)"
                )
            self.time_coarse_octets = int(tcode["coarse_octets"])
            self.time_fine_octets = int(tcode["fine_octets"])
            packets = doc["packets"]
            self.tm_secondary_header_len = int(packets["tm_secondary_header_len"])
            self.tc_secondary_header_len = int(packets["tc_secondary_header_len"])
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise DictionaryError(f"apids/time_code/packets section is malformed: {exc}") from None
        self.time_len = self.time_coarse_octets + self.time_fine_octets
        self._ix = self._build_index(doc)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Dictionary:
        """Read a dictionary JSON file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DictionaryError(
                f"cannot read dictionary {path}: {exc.strerror or exc}; export one with "
                "`gnomon dict export --format json --out FILE`"
            ) from None
        return cls.from_json(text, source=str(path))

    @classmethod
    def from_json(cls, text: str, source: str = "the dictionary") -> Dictionary:
        """Parse dictionary JSON text."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise DictionaryError(f"{source} is not valid JSON: {exc}") from None
        return cls(doc)

    @staticmethod
    def _build_index(doc: Mapping[str, Any]) -> _Index:
        ix = _Index()
        try:
            for c in doc.get("commands", ()):
                ix.commands[str(c["name"])] = CommandDef(
                    name=str(c["name"]),
                    component=str(c.get("component", "")),
                    service=int(c["service"]),
                    subservice=int(c["subservice"]),
                    function_id=None if c.get("function_id") is None else int(c["function_id"]),
                    args=tuple(FieldDef.from_json(a) for a in c.get("args", ())),
                    description=str(c.get("description", "") or ""),
                    allowed_in_safe=bool(c.get("allowed_in_safe", True)),
                    replies=tuple((int(s), int(ss)) for s, ss in c.get("replies", ())),
                )
            for r in doc.get("reports", ()):
                rep = ReportDef(
                    name=str(r["name"]),
                    component=str(r.get("component", "")),
                    service=int(r["service"]),
                    subservice=int(r["subservice"]),
                    apid=int(r.get("apid", 0)),
                    role=str(r.get("role", "reply")),
                    fields=tuple(FieldDef.from_json(f) for f in r.get("fields", ())),
                    description=str(r.get("description", "") or ""),
                )
                ix.reports[(rep.service, rep.subservice)] = rep
            for t in doc.get("telemetry", ()):
                lim = t.get("limits") or {}
                ch = ChannelDef(
                    name=str(t["name"]),
                    id=int(t["id"]),
                    component=str(t.get("component", "")),
                    field=FieldDef.from_json(t),
                    limits=Limits(
                        red_low=_num(lim.get("red_low")),
                        yellow_low=_num(lim.get("yellow_low")),
                        yellow_high=_num(lim.get("yellow_high")),
                        red_high=_num(lim.get("red_high")),
                    ),
                    description=str(t.get("description", "") or ""),
                )
                if ch.field.struct_code is None:
                    raise DictionaryError(f"channel {ch.name}: type {ch.field.type} is not numeric")
                ix.channels[ch.name] = ch
                ix.channels_by_id[ch.id] = ch
            for e in doc.get("events", ()):
                ev = EventDef(
                    name=str(e["name"]),
                    id=int(e["id"]),
                    component=str(e.get("component", "")),
                    severity=str(e.get("severity", "INFO")),
                    format=str(e.get("format", "")),
                    args=tuple(FieldDef.from_json(a) for a in e.get("args", ())),
                    description=str(e.get("description", "") or ""),
                )
                ix.events[ev.name] = ev
                ix.events_by_id[ev.id] = ev
            for p in doc.get("parameters", ()):
                pd = ParamDef(
                    name=str(p["name"]),
                    id=int(p["id"]),
                    component=str(p.get("component", "")),
                    field=FieldDef.from_json({**p, "name": "value"}),
                    default=p.get("default"),
                    description=str(p.get("description", "") or ""),
                )
                ix.params[pd.name] = pd
                ix.params_by_id[pd.id] = pd
            for h in doc.get("housekeeping", ()):
                hk = HkStructureDef(
                    sid=int(h["sid"]),
                    name=str(h.get("name", "")),
                    interval_s=float(h.get("interval_s", 0.0)),
                    enabled=bool(h.get("enabled", True)),
                    channel_ids=tuple(int(c) for c in h["channels"]),
                )
                missing = [c for c in hk.channel_ids if c not in ix.channels_by_id]
                if missing:
                    raise DictionaryError(
                        f"housekeeping sid {hk.sid} names unknown channel id(s) {missing}"
                    )
                ix.housekeeping[hk.sid] = hk
            for fc in doc.get("failure_codes", ()):
                code = FailureCodeDef(int(fc["code"]), str(fc["name"]), str(fc.get("meaning", "")))
                ix.failure_codes[code.code] = code
        except DictionaryError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise DictionaryError(f"the dictionary is malformed: {exc!r}") from None
        return ix

    # -- indexes ------------------------------------------------------------------------

    @property
    def commands(self) -> Mapping[str, CommandDef]:
        """Commands by name."""
        return self._ix.commands

    @property
    def reports(self) -> Mapping[tuple[int, int], ReportDef]:
        """Reports by (service, subservice)."""
        return self._ix.reports

    @property
    def channels(self) -> Mapping[str, ChannelDef]:
        """Telemetry channels by name."""
        return self._ix.channels

    @property
    def channels_by_id(self) -> Mapping[int, ChannelDef]:
        """Telemetry channels by id."""
        return self._ix.channels_by_id

    @property
    def events(self) -> Mapping[str, EventDef]:
        """Events by name."""
        return self._ix.events

    @property
    def events_by_id(self) -> Mapping[int, EventDef]:
        """Events by id."""
        return self._ix.events_by_id

    @property
    def params(self) -> Mapping[str, ParamDef]:
        """Parameters by name."""
        return self._ix.params

    @property
    def params_by_id(self) -> Mapping[int, ParamDef]:
        """Parameters by id."""
        return self._ix.params_by_id

    @property
    def housekeeping(self) -> Mapping[int, HkStructureDef]:
        """Code-defined housekeeping structures by sid."""
        return self._ix.housekeeping

    @property
    def failure_codes(self) -> Mapping[int, FailureCodeDef]:
        """Failure codes by number."""
        return self._ix.failure_codes

    # -- lookups with operator-friendly errors -------------------------------------------

    def command(self, name: str) -> CommandDef:
        """The command ``name``; :class:`CommandValidationError` with a suggestion if unknown."""
        cmd = self._ix.commands.get(name)
        if cmd is None:
            raise CommandValidationError(
                None, f"no command named '{name}'{suggest_name(name, list(self._ix.commands))}"
            )
        return cmd

    def channel(self, name: str) -> ChannelDef:
        """The channel ``name``; :class:`DictionaryError` with a suggestion if unknown."""
        ch = self._ix.channels.get(name)
        if ch is None:
            raise DictionaryError(
                f"no telemetry channel named '{name}'{suggest_name(name, list(self._ix.channels))}"
            )
        return ch

    def event(self, name: str) -> EventDef:
        """The event ``name``; :class:`DictionaryError` with a suggestion if unknown."""
        ev = self._ix.events.get(name)
        if ev is None:
            raise DictionaryError(
                f"no event named '{name}'{suggest_name(name, list(self._ix.events))}"
            )
        return ev

    def param(self, name: str) -> ParamDef:
        """The parameter ``name``; :class:`DictionaryError` with a suggestion if unknown."""
        p = self._ix.params.get(name)
        if p is None:
            raise DictionaryError(
                f"no parameter named '{name}'{suggest_name(name, list(self._ix.params))}"
            )
        return p

    def suggest(self, name: str, kind: str) -> str:
        """'; did you mean X?' for a misspelt command/channel/event/param name (or '')."""
        pools: dict[str, Mapping[str, Any]] = {
            "command": self._ix.commands,
            "channel": self._ix.channels,
            "event": self._ix.events,
            "param": self._ix.params,
        }
        return suggest_name(name, list(pools[kind]))

    def failure_name(self, code: int) -> str:
        """Name of a failure code (``CODE_<n>`` if the dictionary does not list it)."""
        fc = self._ix.failure_codes.get(code)
        return fc.name if fc else f"CODE_{code}"

    def __repr__(self) -> str:
        return (
            f"Dictionary({len(self.commands)} commands, {len(self.channels)} channels, "
            f"{len(self.events)} events, {self.content_hash[:19]})"
        )


# ------------------------------------------------- housekeeping structures, compiled


def _enum_label(table: dict[int, str]) -> Callable[[Any], Any]:
    """Raw enum value -> label (an unknown value stays a number, still visible)."""
    get = table.get
    return lambda v: get(v, v)


def _as_bool(value: Any) -> Any:
    return bool(value) if value in (0, 1) else value


@dataclass(slots=True, frozen=True)
class HkLayout:
    """A housekeeping report structure compiled for decoding: one struct for all values.

    >>> d = Dictionary(minimal_dictionary())
    >>> layout = HkLayout.compile(d, 1, d.housekeeping[1].channel_ids)
    >>> layout.names, layout.size
    (('demo.temp_c', 'demo.state', 'demo.count'), 9)
    >>> layout.unpack(bytes.fromhex("41c80000" "01" "00000007"), 0)
    (25.0, 'BUSY', 7)
    """

    sid: int
    channels: tuple[ChannelDef, ...]
    names: tuple[str, ...]
    ids: tuple[int, ...]
    struct: struct.Struct
    post: tuple[tuple[int, Callable[[Any], Any]], ...]
    #: Positions of float values checked only for being finite (no declared range): all
    #: of them at once, by their sum (:meth:`problems`).
    finite: tuple[int, ...] = ()
    #: Positions of the other values that can be flagged (enums, bools, declared ranges).
    checked: tuple[int, ...] = ()

    @property
    def needs_check(self) -> bool:
        """True when a value of this structure can be flagged at all."""
        return bool(self.finite or self.checked)

    @classmethod
    def compile(cls, d: Dictionary, sid: int, channel_ids: Sequence[int]) -> HkLayout:
        """Compile the layout of structure ``sid`` (DecodeError for an unknown channel)."""
        chans = []
        for cid in channel_ids:
            ch = d.channels_by_id.get(cid)
            if ch is None:
                raise DecodeError(
                    f"HK structure {sid} names channel id {cid}, which is not in the dictionary"
                )
            chans.append(ch)
        fmt = ">" + "".join(ch.field.struct_code or "" for ch in chans)
        post: list[tuple[int, Callable[[Any], Any]]] = []
        for i, ch in enumerate(chans):
            if ch.field.type == "enum":
                post.append((i, _enum_label(dict(ch.field.labels))))
            elif ch.field.type == "bool":
                post.append((i, _as_bool))
        return cls(
            sid,
            tuple(chans),
            tuple(c.name for c in chans),
            tuple(c.id for c in chans),
            struct.Struct(fmt),
            tuple(post),
            tuple(i for i, ch in enumerate(chans) if _finite_only(ch.field)),
            tuple(
                i
                for i, ch in enumerate(chans)
                if _needs_check(ch.field) and not _finite_only(ch.field)
            ),
        )

    def problems(self, values: Sequence[Any]) -> list[tuple[int, str]]:
        """(position, reason) of every value of a report that is not data.

        >>> d = Dictionary(minimal_dictionary())
        >>> layout = HkLayout.compile(d, 1, d.housekeeping[1].channel_ids)
        >>> layout.problems((float("nan"), 9, 7))
        [(0, 'not a number (NaN)'), (1, 'raw value 9 has no label in the enum')]
        """
        chans = self.channels
        suspects = self.checked
        if self.finite:
            total = sum([values[i] for i in self.finite])  # NaN or inf if any value is
            if total - total != 0.0:  # (or a sum that overflowed): look at each
                suspects = tuple(sorted((*self.finite, *self.checked)))
        out = []
        for i in suspects:
            why = chans[i].problem(values[i])
            if why is not None:
                out.append((i, why))
        return out

    @property
    def size(self) -> int:
        """Bytes of the values (after the sid)."""
        return self.struct.size

    def unpack(self, data: bytes, offset: int) -> tuple[Any, ...]:
        """The values at ``offset`` (exactly :attr:`size` bytes must remain)."""
        if len(data) - offset != self.struct.size:
            raise DecodeError(
                f"HK report sid {self.sid} carries {len(data) - offset} bytes of values but "
                f"its structure needs {self.struct.size} (dictionary out of date?)",
                offset=offset,
            )
        values = self.struct.unpack_from(data, offset)
        if self.post:
            vals = list(values)
            for i, fn in self.post:
                vals[i] = fn(vals[i])
            return tuple(vals)
        return values


def minimal_dictionary() -> dict[str, Any]:
    """A small, valid dictionary document (docs, doctests and unit tests).

    One component ``demo`` with a float channel (limits), an enum channel, an event, a
    parameter, housekeeping sid 1 and the core reports PING, PARAM_SET and service 1 use.
    """
    fc_labels = [
        {"value": i + 1, "label": n}
        for i, n in enumerate(
            (
                "ILLEGAL_APID",
                "BAD_LENGTH",
                "BAD_CHECKSUM",
                "MALFORMED",
                "UNKNOWN_COMMAND",
                "ARG_OUT_OF_RANGE",
                "NOT_AUTHORISED",
                "BUSY",
                "EXECUTION_ERROR",
                "VALUE_REJECTED",
                "NOT_FOUND",
            )
        )
    ]
    rid = {"name": "request_id", "type": "u32", "min": 0, "max": 0xFFFFFFFF}
    fail = [
        rid,
        {"name": "failure_code", "type": "enum", "base": "u16", "labels": fc_labels},
        {"name": "reason", "type": "str", "max_len": 255},
    ]
    verif = [
        ("ACCEPT_OK", 1, [rid]),
        ("ACCEPT_FAIL", 2, fail),
        ("START_OK", 3, [rid]),
        ("START_FAIL", 4, fail),
        ("DONE_OK", 7, [rid]),
        ("DONE_FAIL", 8, fail),
    ]
    reports: list[dict[str, Any]] = [
        {
            "name": f"cmd.{n}",
            "component": "cmd",
            "service": 1,
            "subservice": ss,
            "apid": 100,
            "role": "verification",
            "fields": f,
        }
        for n, ss, f in verif
    ]
    reports += [
        {
            "name": "cmd.PONG",
            "component": "cmd",
            "service": 17,
            "subservice": 2,
            "apid": 100,
            "role": "reply",
            "fields": [],
        },
        {
            "name": "evt.EVENT_HIGH",
            "component": "evt",
            "service": 5,
            "subservice": 4,
            "apid": 101,
            "role": "event",
            "fields": [
                {"name": "event_id", "type": "u16", "min": 0, "max": 65535},
                {"name": "args", "type": "event_args", "ref": "event_id"},
            ],
        },
        {
            "name": "hk.HK_REPORT",
            "component": "hk",
            "service": 3,
            "subservice": 25,
            "apid": 102,
            "role": "hk",
            "fields": [
                {"name": "sid", "type": "u16", "min": 0, "max": 65535},
                {"name": "values", "type": "hk_values", "ref": "sid"},
            ],
        },
        {
            "name": "prm.VALUES",
            "component": "prm",
            "service": 20,
            "subservice": 2,
            "apid": 100,
            "role": "reply",
            "fields": [
                {
                    "name": "params",
                    "type": "array",
                    "count": "u16",
                    "max_count": 65535,
                    "items": [
                        {"name": "param_id", "type": "u16", "min": 0, "max": 65535},
                        {"name": "value", "type": "param_value", "ref": "param_id"},
                    ],
                }
            ],
        },
    ]
    no_limits = {"red_low": None, "yellow_low": None, "yellow_high": None, "red_high": None}
    return {
        "schema": SCHEMA,
        "version": 1,
        "software": {"name": "gnomon", "version": "0.1.0"},
        "content_hash": "sha256:minimal",
        "apids": {"tc": 100, "tm": {"verification": 100, "reply": 100, "event": 101, "hk": 102}},
        "time_code": {
            "format": "CUC",
            "coarse_octets": 4,
            "fine_octets": 2,
            "length": 6,
            "p_field": False,
            "epoch": "1958-01-01T00:00:00 TAI",
            "scale": "TAI",
        },
        "packets": {"pus_version": 2, "tc_secondary_header_len": 5, "tm_secondary_header_len": 13},
        "failure_codes": [
            {"code": lab["value"], "name": lab["label"], "meaning": ""} for lab in fc_labels
        ],
        "commands": [
            {
                "name": "PING",
                "component": "cmd",
                "service": 17,
                "subservice": 1,
                "function_id": None,
                "args": [],
                "replies": [[17, 2]],
            },
            {
                "name": "PARAM_SET",
                "component": "prm",
                "service": 20,
                "subservice": 3,
                "function_id": None,
                "args": [
                    {
                        "name": "params",
                        "type": "array",
                        "count": "u16",
                        "max_count": 65535,
                        "items": [
                            {"name": "param_id", "type": "u16", "min": 0, "max": 65535},
                            {"name": "value", "type": "param_value", "ref": "param_id"},
                        ],
                    }
                ],
            },
            {
                "name": "demo.HEAT",
                "component": "demo",
                "service": 8,
                "subservice": 1,
                "function_id": 0x1001,
                "args": [
                    {"name": "power_w", "type": "f32", "min": 0.0, "max": 5.0, "units": "W"},
                    {
                        "name": "mode",
                        "type": "enum",
                        "base": "u8",
                        "labels": [{"value": 0, "label": "AUTO"}, {"value": 1, "label": "MANUAL"}],
                    },
                ],
            },
        ],
        "reports": reports,
        "telemetry": [
            {
                "name": "demo.temp_c",
                "id": 0x1001,
                "component": "demo",
                "type": "f32",
                "units": "C",
                "limits": {
                    "red_low": -20.0,
                    "yellow_low": -10.0,
                    "yellow_high": 40.0,
                    "red_high": 50.0,
                },
            },
            {
                "name": "demo.state",
                "id": 0x1002,
                "component": "demo",
                "type": "enum",
                "base": "u8",
                "labels": [{"value": 0, "label": "IDLE"}, {"value": 1, "label": "BUSY"}],
                "limits": no_limits,
            },
            {
                "name": "demo.count",
                "id": 0x1003,
                "component": "demo",
                "type": "u32",
                "limits": no_limits,
            },
        ],
        "events": [
            {
                "name": "demo.HOT",
                "id": 0x1001,
                "component": "demo",
                "severity": "HIGH",
                "subservice": 4,
                "format": "too hot: {temp_c:.1f} C",
                "args": [{"name": "temp_c", "type": "f32", "units": "C"}],
            },
        ],
        "parameters": [
            {
                "name": "demo.limit_w",
                "id": 0x1001,
                "component": "demo",
                "type": "f32",
                "min": 0.0,
                "max": 1000.0,
                "units": "W",
                "default": 10.0,
            },
        ],
        "housekeeping": [
            {
                "sid": 1,
                "name": "demo",
                "interval_s": 1.0,
                "enabled": True,
                "channels": [0x1001, 0x1002, 0x1003],
            },
        ],
    }


__all__ = [
    "ChannelDef",
    "CommandDef",
    "Dictionary",
    "EventDef",
    "FailureCodeDef",
    "FieldDef",
    "HkLayout",
    "HkStructureDef",
    "LimitState",
    "Limits",
    "ParamDef",
    "ReportDef",
    "format_number",
    "minimal_dictionary",
    "suggest_name",
]
