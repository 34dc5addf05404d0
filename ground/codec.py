"""Dictionary-driven codec: command arguments to bytes (checked), TM packets to records.

Encoding validates every argument against the dictionary and raises
:class:`~ground.errors.CommandValidationError` with a message that names the argument,
the value and the limit. Decoding turns a PUS-C TM packet into a
:class:`~ground.records.Decoded`; a housekeeping (3,25) report decodes with one
``struct.unpack`` from a layout compiled once per report structure.

>>> from ground.dictionary import Dictionary, minimal_dictionary
>>> d = Dictionary(minimal_dictionary())
>>> encode_args(d, d.command("demo.HEAT"), {"power_w": 2.5, "mode": "MANUAL"}).hex()
'10014020000001'
>>> try:
...     encode_args(d, d.command("PARAM_SET"),
...                 {"params": [{"param_id": "demo.limit_w", "value": 1200}]})
... except CommandValidationError as exc:
...     print(exc)
PARAM_SET: params[0].value 1200 above max 1000 (units W, parameter demo.limit_w)
>>> from fsw.ccsds import PusTm
>>> dec = TmDecoder(d)
>>> raw = PusTm(apid=102, service=3, subservice=25,
...             app_data=bytes.fromhex("0001" "41c80000" "01" "00000007")).encode()
>>> dec.decode(raw).fields
{'sid': 1, 'values': {'demo.temp_c': 25.0, 'demo.state': 'BUSY', 'demo.count': 7}}
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from fsw.ccsds import CcsdsError, PusTm, cuc_decode, cuc_encode
from ground.dictionary import (
    FLOAT_TYPES,
    INT_RANGES,
    STRUCT_CODES,
    CommandDef,
    Dictionary,
    FieldDef,
    HkLayout,
    format_number,
    suggest_name,
)
from ground.errors import CommandValidationError, DecodeError
from ground.records import Decoded, EventRecord, HkSample

_U16 = struct.Struct(">H")
_STRUCTS: dict[str, struct.Struct] = {k: struct.Struct(">" + v) for k, v in STRUCT_CODES.items()}
#: Integer fields whose value may be given by name: which dictionary table resolves it.
NAMED_ID_FIELDS = {"param_id": "param", "event_id": "event", "channel_id": "channel", "sid": "sid"}


class _ArgumentError(Exception):
    """An argument problem (path, reason); becomes a CommandValidationError."""


# ---------------------------------------------------------------------------- encoding


def _units(f: FieldDef, extra: str = "") -> str:
    inner = ", ".join(x for x in (f"units {f.units}" if f.units else "", extra) if x)
    return f" ({inner})" if inner else ""


def _resolve_id(d: Dictionary, f: FieldDef, value: str, path: str) -> int:
    kind = NAMED_ID_FIELDS.get(f.name)
    if kind == "param" and value in d.params:
        return d.params[value].id
    if kind == "event" and value in d.events:
        return d.events[value].id
    if kind == "channel" and value in d.channels:
        return d.channels[value].id
    if kind == "sid":
        for hk in d.housekeeping.values():
            if hk.name == value:
                return hk.sid
    if kind in ("param", "event", "channel"):
        raise _ArgumentError(f"{path}: no {kind} named '{value}'{d.suggest(value, kind)}")
    raise _ArgumentError(f"{path}={value!r} is not an integer")


def _number(value: Any, path: str, integer: bool) -> float:
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text, 0) if integer else float(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                kind = "an integer" if integer else "a number"
                raise _ArgumentError(f"{path}={value!r} is not {kind}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _ArgumentError(f"{path}={value!r} is not {'an integer' if integer else 'a number'}")
    return value


def _check_range(f: FieldDef, value: float, path: str, extra: str) -> None:
    lo, hi = f.min, f.max
    if f.type in INT_RANGES:
        nlo, nhi = INT_RANGES[f.type]
        lo = nlo if lo is None else max(lo, nlo)
        hi = nhi if hi is None else min(hi, nhi)
    if lo is not None and value < lo:
        raise _ArgumentError(
            f"{path} {format_number(value)} below min {format_number(lo)}{_units(f, extra)}"
        )
    if hi is not None and value > hi:
        raise _ArgumentError(
            f"{path} {format_number(value)} above max {format_number(hi)}{_units(f, extra)}"
        )


def _encode_leaf(
    d: Dictionary, f: FieldDef, value: Any, path: str, out: bytearray, extra: str = ""
) -> Any:
    t = f.type
    if t in INT_RANGES:
        return _encode_int(d, f, value, path, out, extra)
    if t in FLOAT_TYPES:
        return _encode_float(f, value, path, out, extra)
    if t == "bool":
        return _encode_bool(value, path, out)
    if t == "enum":
        return _encode_enum(f, value, path, out)
    if t == "str":
        return _encode_str(f, value, path, out)
    if t == "cuc":
        return _encode_cuc(d, value, path, out)
    if t == "packet":
        return _encode_packet(value, path, out)
    raise _ArgumentError(f"{path}: a {t} field cannot be sent in a command")


def _encode_int(
    d: Dictionary, f: FieldDef, value: Any, path: str, out: bytearray, extra: str
) -> int:
    if isinstance(value, str) and f.name in NAMED_ID_FIELDS:
        try:
            value = int(value, 0)
        except ValueError:
            value = _resolve_id(d, f, value, path)
    num = _number(value, path, integer=True)
    if isinstance(num, float):
        if not num.is_integer():
            raise _ArgumentError(f"{path}={value!r} is not an integer")
        num = int(num)
    _check_range(f, num, path, extra)
    out += _STRUCTS[f.type].pack(num)
    return num


def _encode_float(f: FieldDef, value: Any, path: str, out: bytearray, extra: str) -> float:
    num = float(_number(value, path, integer=False))
    if not math.isfinite(num):
        raise _ArgumentError(f"{path}={value!r} is not a finite number")
    _check_range(f, num, path, extra)
    try:
        out += _STRUCTS[f.type].pack(num)
    except OverflowError:
        raise _ArgumentError(f"{path} {num:g} does not fit in a {f.type}") from None
    return num


def _encode_bool(value: Any, path: str, out: bytearray) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "1", "0"):
        value = value.lower() in ("true", "on", "1")
    if value not in (0, 1) or isinstance(value, float):
        raise _ArgumentError(f"{path}={value!r} is not true/false")
    out.append(1 if value else 0)
    return bool(value)


def _encode_enum(f: FieldDef, value: Any, path: str, out: bytearray) -> str | None:
    raw: int | None = None
    if isinstance(value, str):
        raw = f.value_of(value)
        if raw is None:
            raw = f.value_of(value.upper())
        if raw is None and value.strip().lstrip("-").isdigit():
            raw = int(value) if f.label_of(int(value)) is not None else None
    elif isinstance(value, int) and not isinstance(value, bool):
        raw = value if f.label_of(value) is not None else None
    if raw is None:
        known = ", ".join(label for _, label in f.labels)
        raise _ArgumentError(f"{path}={value!r} is not one of {known}")
    out += _STRUCTS[f.base].pack(raw)
    return f.label_of(raw)


def _encode_str(f: FieldDef, value: Any, path: str, out: bytearray) -> str:
    if not isinstance(value, str):
        value = str(value)
    data = value.encode("utf-8")
    if len(data) > f.max_len:
        raise _ArgumentError(f"{path} is {len(data)} bytes long, at most {f.max_len} allowed")
    out.append(len(data))
    out += data
    return value


def _encode_cuc(d: Dictionary, value: Any, path: str, out: bytearray) -> float:
    num = float(_number(value, path, integer=False))
    try:
        out += cuc_encode(num, d.time_coarse_octets, d.time_fine_octets)
    except CcsdsError as exc:
        raise _ArgumentError(f"{path}: {exc.reason}") from None
    return num


def _encode_packet(value: Any, path: str, out: bytearray) -> bytes:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value)
        except ValueError:
            raise _ArgumentError(f"{path} must be a space packet in hex") from None
    if not isinstance(value, bytes | bytearray | memoryview):
        raise _ArgumentError(f"{path} must be the bytes of a space packet")
    pkt = bytes(value)
    if len(pkt) < 7 or len(pkt) != 7 + int.from_bytes(pkt[4:6], "big"):
        raise _ArgumentError(f"{path} is not one whole space packet ({len(pkt)} bytes)")
    out += pkt
    return pkt


def _encode_field(
    d: Dictionary, f: FieldDef, value: Any, path: str, out: bytearray, ctx: Mapping[str, Any]
) -> Any:
    if f.type == "array":
        if isinstance(value, Mapping | str | bytes) or not isinstance(value, Sequence):
            value = [value]
        if len(value) > f.max_count:
            raise _ArgumentError(f"{path} has {len(value)} entries, at most {f.max_count} allowed")
        out += _STRUCTS[f.count].pack(len(value))
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                if len(f.items) != 1:
                    names = ", ".join(x.name for x in f.items)
                    raise _ArgumentError(f"{path}[{i}] must give {names}")
                item = {f.items[0].name: item}
            items.append(_fields(d, f.items, item, f"{path}[{i}].", out))
        return items
    if f.type == "param_value":
        pid = ctx.get(f.ref)
        param = d.params_by_id.get(pid) if isinstance(pid, int) else None
        if param is None:
            raise _ArgumentError(f"{path}: no parameter with id {pid} in the dictionary")
        return _encode_leaf(d, param.field, value, path, out, f"parameter {param.name}")
    return _encode_leaf(d, f, value, path, out)


def _fields(
    d: Dictionary,
    fields: Sequence[FieldDef],
    values: Mapping[str, Any],
    prefix: str,
    out: bytearray,
) -> dict[str, Any]:
    names = [f.name for f in fields]
    for key in values:
        if key not in names:
            takes = f"it takes {', '.join(names)}" if names else "it takes no arguments"
            raise _ArgumentError(
                f"unknown argument '{prefix}{key}'{suggest_name(key, names)} ({takes})"
            )
    done: dict[str, Any] = {}
    for f in fields:
        if f.name not in values:
            raise _ArgumentError(f"missing argument {prefix}{f.name} ({f.describe()})")
        done[f.name] = _encode_field(d, f, values[f.name], prefix + f.name, out, done)
    return done


def encode_command_args(
    d: Dictionary, cmd: CommandDef, args: Mapping[str, Any]
) -> tuple[bytes, dict[str, Any]]:
    """The app data of ``cmd`` and the checked argument values (enums as labels, ids
    given by name resolved); raises :class:`CommandValidationError`."""
    out = bytearray()
    if cmd.function_id is not None:
        out += _U16.pack(cmd.function_id)
    try:
        checked = _fields(d, cmd.args, args, "", out)
    except _ArgumentError as exc:
        raise CommandValidationError(cmd.name, str(exc)) from None
    return bytes(out), checked


def encode_args(d: Dictionary, cmd: CommandDef, args: Mapping[str, Any]) -> bytes:
    """The app data of ``cmd`` with ``args`` (the function id first for (8,1) commands).

    Integer ids named ``param_id``, ``event_id``, ``channel_id`` or ``sid`` may be given
    by dictionary name; a list of plain values stands for a list of one-field items; text
    is parsed for numeric fields. Raises :class:`CommandValidationError`.
    """
    return encode_command_args(d, cmd, args)[0]


# ---------------------------------------------------------------------------- decoding


def _is_hk_report(fields: Sequence[FieldDef]) -> bool:
    return (
        len(fields) == 2
        and fields[0].type == "u16"
        and fields[1].type == "hk_values"
        and fields[1].ref == fields[0].name
    )


class TmDecoder:
    """Decodes TM packets with a :class:`Dictionary`; learns ground-defined HK structures.

    Not thread-safe (one per session). :meth:`decode` raises :class:`DecodeError`.
    """

    def __init__(self, dictionary: Dictionary) -> None:
        self.d = dictionary
        self.hk_layouts: dict[int, HkLayout] = {
            sid: HkLayout.compile(dictionary, sid, hk.channel_ids)
            for sid, hk in dictionary.housekeeping.items()
        }
        self._hk_reports = {
            key for key, rep in dictionary.reports.items() if _is_hk_report(rep.fields)
        }
        self._time_len = dictionary.time_len
        self._coarse = dictionary.time_coarse_octets
        self._fine = dictionary.time_fine_octets

    def define_hk(self, sid: int, channel_ids: Sequence[int]) -> HkLayout:
        """Learn (or replace) structure ``sid``, e.g. from a (3,10) report."""
        layout = HkLayout.compile(self.d, sid, channel_ids)
        self.hk_layouts[sid] = layout
        return layout

    # -- packets ------------------------------------------------------------------------

    def decode(self, raw: bytes) -> Decoded:
        """One TM space packet (exact length, PEC checked) to a :class:`Decoded`."""
        try:
            tm = PusTm.decode(raw, self._time_len)
            t_tai = cuc_decode(tm.time, self._coarse, self._fine)
        except CcsdsError as exc:
            raise DecodeError(
                f"not a valid PUS-C TM packet: {exc.reason}", offset=exc.offset
            ) from None
        key = (tm.service, tm.subservice)
        rep = self.d.reports.get(key)
        if rep is None:
            return Decoded(
                "unknown",
                f"TM({tm.service},{tm.subservice})",
                tm.apid,
                tm.service,
                tm.subservice,
                tm.seq_count,
                t_tai,
                {},
                raw,
            )
        data = tm.app_data
        if key in self._hk_reports:
            if len(data) < 2:
                raise DecodeError(f"{rep.name}: no sid in {len(data)} bytes", offset=0)
            (sid,) = _U16.unpack_from(data, 0)
            layout = self.hk_layouts.get(sid)
            if layout is None:
                raise DecodeError(
                    f"{rep.name}: sid {sid} has no known structure; ask for it with "
                    f"HK_REPORT_STRUCTURE sids={sid}",
                    offset=0,
                )
            values = layout.unpack(data, 2)
            return Decoded(
                "hk",
                rep.name,
                tm.apid,
                tm.service,
                tm.subservice,
                tm.seq_count,
                t_tai,
                {
                    rep.fields[0].name: sid,
                    rep.fields[1].name: dict(zip(layout.names, values, strict=True)),
                },
                raw,
                hk=HkSample(sid, layout, values),
            )
        fields, end = self.decode_fields(rep.fields, data, 0)
        if end != len(data):
            raise DecodeError(
                f"{rep.name}: {len(data) - end} bytes left over after the "
                "declared fields (dictionary out of date?)",
                offset=end,
            )
        kind = rep.role if rep.role in ("verification", "hk", "event") else "reply"
        event = None
        if kind == "event":
            event = self._event(t_tai, fields)
        return Decoded(
            kind,
            rep.name,
            tm.apid,
            tm.service,
            tm.subservice,
            tm.seq_count,
            t_tai,
            fields,
            raw,
            event=event,
        )

    def _event(self, t_tai: float, fields: dict[str, Any]) -> EventRecord | None:
        eid = fields.get("event_id")
        args = fields.get("args")
        if not isinstance(eid, int) or not isinstance(args, dict):
            return None
        ev = self.d.events_by_id[eid]  # decode_fields checked it exists
        return EventRecord(t_tai, eid, ev.name, ev.severity, args, ev.message(args))

    # -- fields -------------------------------------------------------------------------

    def decode_fields(
        self, fields: Sequence[FieldDef], data: bytes, offset: int
    ) -> tuple[dict[str, Any], int]:
        """Decode ``fields`` at ``offset``; return the values and the offset after them."""
        out: dict[str, Any] = {}
        for f in fields:
            t = f.type
            if t == "array":
                n, offset = self._fixed(_STRUCTS[f.count], f.name, data, offset)
                items = []
                for _ in range(n):
                    item, offset = self.decode_fields(f.items, data, offset)
                    items.append(item)
                out[f.name] = items
            elif t == "param_value":
                pid = out.get(f.ref)
                param = self.d.params_by_id.get(pid) if isinstance(pid, int) else None
                if param is None:
                    raise DecodeError(
                        f"{f.name}: parameter id {pid} is not in the dictionary", offset=offset
                    )
                out[f.name], offset = self._leaf(param.field, data, offset)
            elif t == "event_args":
                eid = out.get(f.ref)
                ev = self.d.events_by_id.get(eid) if isinstance(eid, int) else None
                if ev is None:
                    raise DecodeError(f"event id {eid} is not in the dictionary", offset=offset)
                out[f.name], offset = self.decode_fields(ev.args, data, offset)
            elif t == "hk_values":
                sid = out.get(f.ref)
                layout = self.hk_layouts.get(sid) if isinstance(sid, int) else None
                if layout is None:
                    raise DecodeError(f"sid {sid} has no known structure", offset=offset)
                end = offset + layout.size
                values = layout.unpack(data[:end], offset)
                out[f.name] = dict(zip(layout.names, values, strict=True))
                offset = end
            else:
                out[f.name], offset = self._leaf(f, data, offset)
        return out, offset

    @staticmethod
    def _fixed(st: struct.Struct, name: str, data: bytes, offset: int) -> tuple[Any, int]:
        end = offset + st.size
        if end > len(data):
            raise DecodeError(
                f"{name} needs {st.size} bytes but only {len(data) - offset} remain", offset=offset
            )
        return st.unpack_from(data, offset)[0], end

    def _leaf(self, f: FieldDef, data: bytes, offset: int) -> tuple[Any, int]:
        t = f.type
        if t == "enum":
            raw, end = self._fixed(_STRUCTS[f.base], f.name, data, offset)
            label = f.label_of(raw)
            return (raw if label is None else label), end
        st = _STRUCTS.get(t)
        if st is not None:
            value, end = self._fixed(st, f.name, data, offset)
            if t == "bool" and value in (0, 1):
                return bool(value), end
            return value, end
        if t == "str":
            return self._str_leaf(f, data, offset)
        if t == "cuc":
            end = offset + self._time_len
            if end > len(data):
                raise DecodeError(f"{f.name} needs {self._time_len} bytes", offset=offset)
            return cuc_decode(data[offset:end], self._coarse, self._fine), end
        if t == "packet":
            return self._packet_leaf(f, data, offset)
        raise DecodeError(f"{f.name}: cannot decode a {t} field here", offset=offset)

    @staticmethod
    def _str_leaf(f: FieldDef, data: bytes, offset: int) -> tuple[str, int]:
        if offset >= len(data):
            raise DecodeError(f"{f.name}: no length byte", offset=offset)
        end = offset + 1 + data[offset]
        if end > len(data):
            raise DecodeError(
                f"{f.name} says {data[offset]} bytes but only {len(data) - offset - 1} remain",
                offset=offset,
            )
        try:
            return data[offset + 1 : end].decode("utf-8"), end
        except UnicodeDecodeError:
            raise DecodeError(f"{f.name} is not valid UTF-8", offset=offset) from None

    @staticmethod
    def _packet_leaf(f: FieldDef, data: bytes, offset: int) -> tuple[bytes, int]:
        if offset + 6 > len(data):
            raise DecodeError(f"{f.name}: no space packet header", offset=offset)
        end = offset + 7 + int.from_bytes(data[offset + 4 : offset + 6], "big")
        if end > len(data):
            raise DecodeError(f"{f.name}: packet runs past the end", offset=offset)
        return bytes(data[offset:end]), end


__all__ = ["NAMED_ID_FIELDS", "TmDecoder", "encode_args", "encode_command_args"]
