"""The dictionary is enough for the ground: a codec written from the JSON alone encodes
commands the flight accepts and decodes every packet the flight sends. Docs match code."""

from __future__ import annotations

import binascii
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from fsw.app import build_flight
from fsw.ccsds import PusTc
from fsw.core import Arg, Channel, Component, Event, Param, Severity
from fsw.core.dictionary import build_dictionary, content_hash, dictionary_hash32
from fsw.core.errors import DeclarationError
from fsw.core.flight import FlightSoftware
from fsw.core.testing import decode_tm
from gnomon.docgen import component_facts, generated_block

DOCS = Path(__file__).resolve().parents[1] / "docs" / "components"

_FMT = {
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


class GroundCodec:
    """Everything here comes from the dictionary JSON: no flight code."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d
        self.cmds = {c["name"]: c for c in d["commands"]}
        self.reports = {(r["service"], r["subservice"]): r for r in d["reports"]}
        self.params = {p["id"]: p for p in d["parameters"]}
        self.events = {e["id"]: e for e in d["events"]}
        self.channels = {t["id"]: t for t in d["telemetry"]}
        self.hk = {h["sid"]: h["channels"] for h in d["housekeeping"]}
        tc = d["time_code"]
        self.coarse, self.fine = tc["coarse_octets"], tc["fine_octets"]
        self.seq = 0

    # leaf values -----------------------------------------------------------
    def _leaf_dec(self, f: dict[str, Any], b: bytes, o: int) -> tuple[Any, int]:
        t = f["type"]
        if t in _FMT or t == "enum":
            code = _FMT[f["base"]] if t == "enum" else _FMT[t]
            (v,) = struct.unpack_from(">" + code, b, o)
            o += struct.calcsize(code)
            if t == "bool":
                assert v in (0, 1)
                return bool(v), o
            if t == "enum":
                return {lab["value"]: lab["label"] for lab in f["labels"]}[v], o
            return v, o
        if t == "str":
            n = b[o]
            return b[o + 1 : o + 1 + n].decode("utf-8"), o + 1 + n
        if t == "cuc":
            n = self.coarse + self.fine
            return int.from_bytes(b[o : o + n], "big") / (1 << (8 * self.fine)), o + n
        assert t == "packet"
        n = 7 + int.from_bytes(b[o + 4 : o + 6], "big")
        return b[o : o + n], o + n

    def _leaf_enc(self, f: dict[str, Any], v: Any) -> bytes:
        t = f["type"]
        if t == "enum":
            v = {lab["label"]: lab["value"] for lab in f["labels"]}[v]
            return struct.pack(">" + _FMT[f["base"]], v)
        if t in _FMT:
            if f.get("min") is not None:
                assert f["min"] <= v <= f["max"]
            return struct.pack(">" + _FMT[t], v)
        if t == "str":
            raw = v.encode("utf-8")
            assert len(raw) <= f["max_len"]
            return bytes([len(raw)]) + raw
        if t == "cuc":
            return int(v * (1 << (8 * self.fine))).to_bytes(self.coarse + self.fine, "big")
        return bytes(v)

    def _dynamic(self, f: dict[str, Any], ctx: dict[str, Any]) -> list[dict[str, Any]]:
        key = ctx[f["ref"]]
        if f["type"] == "param_value":
            return [{**self.params[key], "name": "value"}]
        if f["type"] == "event_args":
            return self.events[key]["args"]
        return [{**self.channels[c], "name": self.channels[c]["name"]} for c in self.hk[key]]

    def dec(self, fields: list[dict[str, Any]], b: bytes, o: int = 0) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        for f in fields:
            t = f["type"]
            if t == "array":
                (n,) = struct.unpack_from(">" + _FMT[f["count"]], b, o)
                o += struct.calcsize(_FMT[f["count"]])
                items = []
                for _ in range(n):
                    item, o = self.dec(f["items"], b, o)
                    items.append(item)
                out[f["name"]] = items
            elif t in ("param_value", "event_args", "hk_values"):
                sub = self._dynamic(f, out)
                vals, o = self.dec(sub, b, o)
                out[f["name"]] = vals["value"] if t == "param_value" else vals
            else:
                out[f["name"]], o = self._leaf_dec(f, b, o)
        return out, o

    def enc(self, fields: list[dict[str, Any]], values: dict[str, Any]) -> bytes:
        parts = []
        for f in fields:
            t, v = f["type"], values[f["name"]]
            if t == "array":
                parts.append(struct.pack(">" + _FMT[f["count"]], len(v)))
                parts += [self.enc(f["items"], item) for item in v]
            elif t == "param_value":
                parts.append(self._leaf_enc(self.params[values[f["ref"]]], v))
            else:
                parts.append(self._leaf_enc(f, v))
        return b"".join(parts)

    # packets ---------------------------------------------------------------
    def tc(self, command: str, /, **args: Any) -> bytes:
        c = self.cmds[command]
        data = self.enc(c["args"], args)
        if c["function_id"] is not None:
            data = struct.pack(">H", c["function_id"]) + data
        sec = bytes([0x2F, c["service"], c["subservice"], 0, 0])
        body = sec + data
        apid = self.d["apids"]["tc"]
        hdr = struct.pack(">HHH", 0x1800 | apid, 0xC000 | self.seq, len(body) + 2 - 1)
        self.seq += 1
        pkt = hdr + body
        return pkt + binascii.crc_hqx(pkt, 0xFFFF).to_bytes(2, "big")

    def tm(self, raw: bytes) -> tuple[str, dict[str, Any]]:
        assert binascii.crc_hqx(raw, 0xFFFF) == 0
        apid = int.from_bytes(raw[0:2], "big") & 0x7FF
        service, subservice = raw[7], raw[8]
        hdr = 6 + self.d["packets"]["tm_secondary_header_len"]
        rep = self.reports[(service, subservice)]
        assert rep["apid"] == apid or (rep["role"] == "hk" and apid == self.d["apids"]["tm"]["hk"])
        data = raw[hdr:-2]
        vals, end = self.dec(rep["fields"], data)
        assert end == len(data), f"{rep['name']}: {len(data) - end} bytes left over"
        return rep["name"], vals


class Probe(Component):
    NAME = "probe"
    TELEMETRY = (
        Channel("temp_c", "f32", units="C", yellow=(-10, 40), red=(-20, 50), id=4),
        Channel("state", "enum", labels=("IDLE", "BUSY"), id=5),
    )
    EVENTS = (
        Event(
            "HOT",
            Severity.HIGH,
            "hot {temp_c:.1f} C in {where}",
            (Arg("temp_c", "f32"), Arg("where", "u8")),
            id=1,
        ),
    )
    PARAMETERS = (
        Param("limit_c", "i16", default=45, min=-40, max=85, id=1),
        Param("mode", "enum", default="AUTO", labels=("AUTO", "MANUAL"), id=2),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 2.0

    def on_tick(self, rate_group: str) -> None:
        self.tlm("temp_c", 21.5)
        self.tlm("state", "BUSY")
        self.event("HOT", 21.5, 3)


def test_ground_codec_from_json_alone_round_trips_everything() -> None:
    fs = build_flight(components={16: Probe()})
    d = json.loads(json.dumps(build_dictionary(fs)))  # exactly what the file would hold
    g = GroundCodec(d)
    ping = PusTc(apid=100, service=17, subservice=1, seq_count=500).encode()
    limit = next(p["id"] for p in d["parameters"] if p["name"] == "probe.limit_c")
    mode = next(p["id"] for p in d["parameters"] if p["name"] == "probe.mode")
    tcs = [
        g.tc("PING"),
        g.tc(
            "PARAM_SET",
            params=[{"param_id": limit, "value": -5}, {"param_id": mode, "value": "MANUAL"}],
        ),
        g.tc("PARAM_GET", param_ids=[{"param_id": limit}, {"param_id": mode}]),
        g.tc("HK_REPORT_STRUCTURE", sids=[{"sid": 1}]),
        g.tc("HK_ONE_SHOT", sids=[{"sid": 1}]),
        g.tc("EVT_DISABLE", event_ids=[{"event_id": d["events"][0]["id"]}]),
        g.tc("EVT_REPORT_DISABLED"),
        g.tc("SCHED_INSERT", activities=[{"release_time": fs.clock.now_tai() + 1.0, "tc": ping}]),
        g.tc("SCHED_REPORT"),
        g.tc("MON_REPORT"),
        g.tc("SEQ_LOAD", seq_id=9, name="late", steps=[{"delay_ms": 60_000, "tc": ping}]),
        g.tc("SEQ_START", seq_id=9),
        g.tc("SEQ_START", seq_id=9),  # busy: (1,4)
        g.tc("probe.RESET_COUNTERS"),
        g.tc("HK_DELETE", sids=[{"sid": 9999}]),  # (1,8)
        g.tc("MODE_SAFE_ENTER"),
        g.tc("health.RESTART", component="probe"),
    ]
    tcs.append(tcs[0][:-1] + b"\x00")  # (1,2) bad checksum
    for tc in tcs:
        fs.uplink_packet(tc)
    fs.step(5.0)
    packets = fs.downlink_packets()
    seen = set()
    for raw in packets:
        name, ground = g.tm(raw)
        flight = decode_tm(fs, raw)
        assert flight.name == name
        if name == "hk.HK_REPORT":
            assert ground["values"] == flight.fields["values"]  # type: ignore[index]
        else:
            assert ground == flight.fields
        seen.add(name)
    expected = {
        "cmd.ACCEPT_OK",
        "cmd.ACCEPT_FAIL",
        "cmd.START_OK",
        "cmd.START_FAIL",
        "cmd.DONE_OK",
        "cmd.DONE_FAIL",
        "cmd.PONG",
        "evt.EVENT_INFO",
        "evt.EVENT_LOW",
        "evt.EVENT_MEDIUM",
        "evt.EVENT_HIGH",
        "evt.DISABLED_LIST",
        "hk.STRUCTURE",
        "hk.HK_REPORT",
        "sched.DETAIL",
        "mode.MONITOR_STATUS",
        "prm.VALUES",
    }
    assert expected <= seen
    assert fs.components["probe"].param("limit_c") == -5


def test_dictionary_content() -> None:
    d = build_dictionary(build_flight())
    assert d["time_code"] == {
        "format": "CUC",
        "coarse_octets": 4,
        "fine_octets": 2,
        "length": 6,
        "p_field": False,
        "epoch": "1958-01-01T00:00:00 TAI",
        "scale": "TAI",
    }
    assert d["apids"] == {
        "tc": 100,
        "tm": {"verification": 100, "reply": 100, "event": 101, "hk": 102},
    }
    codes = {c["name"]: c["code"] for c in d["failure_codes"]}
    for needed in (
        "UNKNOWN_COMMAND",
        "BAD_LENGTH",
        "ARG_OUT_OF_RANGE",
        "BUSY",
        "EXECUTION_ERROR",
        "NOT_AUTHORISED",
    ):
        assert needed in codes
    names = {c["name"] for c in d["commands"]}
    for needed in (
        "PING",
        "PARAM_SET",
        "PARAM_GET",
        "PARAM_SAVE",
        "HK_ONE_SHOT",
        "HK_CREATE",
        "MODE_SAFE_EXIT",
        "SCHED_INSERT",
        "EVT_DISABLE",
        "health.RESTART",
        "cmd.RESET_COUNTERS",
    ):
        assert needed in names
    ss = [(c["service"], c["subservice"]) for c in d["commands"] if c["function_id"] is None]
    assert len(ss) == len(set(ss))
    assert len({t["id"] for t in d["telemetry"]}) == len(d["telemetry"])
    core = next(h for h in d["housekeeping"] if h["sid"] == 1)
    assert core["interval_s"] == 1.0 and core["enabled"]
    ids = {t["id"]: t["name"] for t in d["telemetry"]}
    assert ids[core["channels"][0]] == "mode.mode"
    assert content_hash(d) == d["content_hash"]


def test_content_hash_is_stable_and_tracks_the_code() -> None:
    a, b = build_dictionary(build_flight()), build_dictionary(build_flight())
    assert a["content_hash"] == b["content_hash"]
    c = build_dictionary(build_flight(components={16: Probe()}))
    assert c["content_hash"] != a["content_hash"]


def test_the_flight_publishes_the_hash_of_its_own_dictionary() -> None:
    fs = build_flight(components={16: Probe()})
    assert fs.telemetry("exec.dict_hash") == dictionary_hash32(build_dictionary(fs))
    assert fs.telemetry("exec.dict_hash") != dictionary_hash32(build_dictionary(build_flight()))


def test_a_flight_started_without_a_dictionary_hash_publishes_zero() -> None:
    fs = FlightSoftware()
    fs.step(1.0)  # the first step starts it
    assert fs.telemetry("exec.dict_hash") == 0
    with pytest.raises(DeclarationError, match="32-bit"):
        FlightSoftware().start(dict_hash=1 << 32)


def _core_components() -> list[str]:
    return [c["name"] for c in build_dictionary(build_flight())["components"]]


@pytest.mark.parametrize("name", _core_components())
def test_component_doc_facts_match_the_code(name: str) -> None:
    path = DOCS / f"{name}.md"
    assert path.exists(), f"missing {path}: run `gnomon dict docs`"
    text = path.read_text(encoding="utf-8")
    for heading in ("Purpose", "Failure behaviour"):
        assert f"## {heading}" in text, f"{path} lacks a '{heading}' section"
    block = generated_block(text)
    assert block == component_facts(build_dictionary(build_flight()), name), (
        f"{path} is stale: run `gnomon dict docs`"
    )
