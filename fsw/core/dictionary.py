"""The command and telemetry dictionary, generated from the components' declarations.

The dictionary is everything the ground needs to encode every command and decode every
packet without flight code: APIDs, time code, failure codes, commands with typed
arguments, report layouts, channels, events, parameters, housekeeping structures,
monitors and sequences. ``docs/dictionary.md`` documents the schema.

>>> from fsw.app import build_flight
>>> d = build_dictionary(build_flight())
>>> d["schema"], d["time_code"]["format"], d["apids"]["tc"]
('gnomon-dictionary', 'CUC', 100)
>>> next(c for c in d["commands"] if c["name"] == "PING")["service"]
17
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import TYPE_CHECKING, Any

from fsw.ccsds.pus import (
    ACK_ACCEPTANCE,
    ACK_COMPLETION,
    ACK_PROGRESS,
    ACK_START,
    TC_SEC_HEADER_LEN,
    TM_SEC_HEADER_FIXED_LEN,
)
from fsw.core.declarations import Mode, Severity
from fsw.core.errors import FAILURE_MEANINGS, FailureCode
from fsw.core.idlock import DICTIONARY_VERSION
from fsw.core.wire import CUC_COARSE_OCTETS, CUC_FINE_OCTETS, CUC_LEN, fields_to_json

if TYPE_CHECKING:
    from fsw.core.component import Component
    from fsw.core.flight import FlightSoftware
    from fsw.core.registry import FlightConfig, Registry

SCHEMA = "gnomon-dictionary"
SCHEMA_VERSION = 1


def _software_version() -> str:
    try:
        return metadata.version("gnomon")
    except metadata.PackageNotFoundError:
        return "unknown"


def _num(x: float | None) -> float | None:
    return None if x is None else float(x)


def dictionary_hash32(d: dict[str, Any]) -> int:
    """The first 32 bits of a dictionary's content hash, as ``exec.dict_hash`` carries it.

    >>> dictionary_hash32({"content_hash": "sha256:e75019a8" + "0" * 56})
    3880786344
    """
    digest = str(d.get("content_hash", "")).removeprefix("sha256:")
    return int(digest[:8] or "0", 16)


def _header(cfg: FlightConfig) -> dict[str, Any]:
    """What every flight shares: schema, APIDs, time code, packet conventions, rates."""
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "dictionary_version": DICTIONARY_VERSION,
        "software": {"name": "gnomon", "version": _software_version()},
        "apids": {
            "tc": cfg.tc_apid,
            "tm": {
                "verification": cfg.tc_apid,
                "reply": cfg.tc_apid,
                "event": cfg.event_apid,
                "hk": cfg.hk_apid,
            },
        },
        "time_code": {
            "format": "CUC",
            "coarse_octets": CUC_COARSE_OCTETS,
            "fine_octets": CUC_FINE_OCTETS,
            "length": CUC_LEN,
            "p_field": False,
            "epoch": "1958-01-01T00:00:00 TAI",
            "scale": "TAI",
        },
        "packets": _packets(),
        "executive": {
            "base_period_s": cfg.base_period_s,
            "rate_groups": [{"name": n, "period_s": p} for n, p in cfg.rate_groups],
        },
    }


def _packets() -> dict[str, Any]:
    """Packet conventions (the same for every topology)."""
    return {
        "pus_version": 2,
        "tc_secondary_header_len": TC_SEC_HEADER_LEN,
        "tm_secondary_header_len": TM_SEC_HEADER_FIXED_LEN + CUC_LEN,
        "pec": "CRC-16/CCITT-FALSE",
        "byte_order": "big",
        "ack_flags": {
            "acceptance": ACK_ACCEPTANCE,
            "start": ACK_START,
            "progress": ACK_PROGRESS,
            "completion": ACK_COMPLETION,
        },
        "request_id": "u32: the first 4 bytes of the TC primary header "
        "(packet id, packet sequence control)",
        "function_id": "u16: component_id << 8 | opcode; (8,1) app data is the "
        "function id then the args",
        "str": "u8 length then UTF-8 bytes",
        "bool": "u8, 0 or 1",
    }


def _enums() -> dict[str, Any]:
    """Modes, event severities and command failure codes."""
    return {
        "modes": [{"value": int(m), "name": m.name} for m in Mode],
        "severities": [{"name": s.name, "subservice": int(s)} for s in Severity],
        "failure_codes": [
            {"code": int(c), "name": c.name, "meaning": FAILURE_MEANINGS[c]} for c in FailureCode
        ],
    }


def _components(comps: list[Component]) -> list[dict[str, Any]]:
    return [
        {
            "name": c.name,
            "id": c.component_id,
            "class": type(c).__name__,
            "description": type(c).DESCRIPTION or (type(c).__doc__ or "").strip().split("\n")[0],
            "rate_groups": list(type(c).RATE_GROUPS),
            "hk_interval_s": type(c).HK_INTERVAL_S,
        }
        for c in comps
    ]


def _commands(fs: FlightSoftware) -> list[dict[str, Any]]:
    return [
        {
            "name": e.full_name,
            "component": e.component.name,
            "service": 8 if e.spec.is_function else e.spec.service,
            "subservice": 1 if e.spec.is_function else e.spec.subservice,
            "function_id": e.function_id,
            "description": e.spec.description,
            "allowed_in_safe": e.spec.allowed_in_safe,
            "args": fields_to_json(e.spec.fields),
            "replies": [list(r) for r in e.spec.replies],
        }
        for e in fs.cmd.entries()
    ]


def _reports(rt: Registry, comps: list[Component]) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{c.name}.{rep.name}",
            "component": c.name,
            "service": rep.service,
            "subservice": rep.subservice,
            "apid": rt.apid_of(rep.apid),
            "role": rep.apid,
            "description": rep.description,
            "fields": fields_to_json(rep.fields),
        }
        for c in comps
        for rep in type(c).REPORTS
    ]


def _telemetry(rt: Registry) -> list[dict[str, Any]]:
    out = []
    for info in sorted(rt.channels, key=lambda i: i.id):
        ch = info.channel
        enum = (
            {"base": ch.arg.base, "labels": ch.arg.to_json()["labels"]} if ch.type == "enum" else {}
        )
        out.append(
            {
                "name": info.full_name,
                "id": info.id,
                "component": info.component.name,
                "type": ch.type,
                **enum,
                "units": ch.units,
                "description": ch.description,
                "limits": {k: _num(v) for k, v in ch.limits_json().items()},
                **{
                    k: _num(v)
                    for k, v in zip(("min", "max"), ch.valid, strict=True)
                    if v is not None
                },
            }
        )
    return out


def _events(rt: Registry) -> list[dict[str, Any]]:
    return [
        {
            "name": info.full_name,
            "id": info.id,
            "component": info.component.name,
            "severity": info.event.severity.name,
            "subservice": int(info.event.severity),
            "format": info.event.format,
            "args": fields_to_json(info.event.args),
            "description": info.event.description,
        }
        for info in sorted(rt.event_by_id.values(), key=lambda i: i.id)
    ]


def _parameters(rt: Registry) -> list[dict[str, Any]]:
    out = []
    for pinfo in sorted(rt.param_by_id.values(), key=lambda i: i.id):
        entry = {
            "name": pinfo.full_name,
            "id": pinfo.id,
            "component": pinfo.component.name,
            **pinfo.param.arg.to_json(),
            "default": pinfo.param.default,
            "has_validator": pinfo.param.validator is not None,
        }
        entry["name"] = pinfo.full_name  # the argument's JSON carries the short name
        out.append(entry)
    return out


def _sequences(fs: FlightSoftware) -> list[dict[str, Any]]:
    return [
        {
            "seq_id": s.seq_id,
            "name": s.name,
            "steps": [{"delay_s": st.delay_s, "tc": st.tc.hex()} for st in s.steps],
        }
        for s in fs.seq.default_sequences()
    ]


def build_dictionary(fs: FlightSoftware) -> dict[str, Any]:
    """The dictionary of ``fs`` (a JSON-able dict with a ``content_hash``)."""
    rt = fs.registry
    comps = sorted(rt.components.values(), key=lambda c: c.component_id)
    d: dict[str, Any] = {
        **_header(rt.config),
        **_enums(),
        "components": _components(comps),
        "commands": _commands(fs),
        "reports": _reports(rt, comps),
        "telemetry": _telemetry(rt),
        "events": _events(rt),
        "parameters": _parameters(rt),
        "housekeeping": fs.hk.default_structures(),
        "monitors": fs.modes.monitor_json(),
        "sequences": _sequences(fs),
    }
    d["content_hash"] = content_hash(d)
    return d


def content_hash(d: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``d`` without its ``content_hash``
    and ``software`` entries (so a version bump alone does not change it)."""
    body = {k: v for k, v in d.items() if k not in ("content_hash", "software")}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canon.encode("ascii")).hexdigest()


__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "build_dictionary",
    "content_hash",
    "dictionary_hash32",
]
