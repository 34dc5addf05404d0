"""The ground codec agrees with the flight's, refuses bad input clearly, and never crashes
on bad bytes (fuzzed with hypothesis)."""

from __future__ import annotations

import contextlib
import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_ground_harness import SimLink, flight_dictionary

from fsw.app import build_flight
from fsw.ccsds import PusTc, PusTm, cuc_encode
from fsw.core.dictionary import build_dictionary
from fsw.core.testing import CommandEncoder, decode_tm
from fsw.core.wire import decode as flight_decode
from ground import (
    CommandValidationError,
    DecodeError,
    Dictionary,
    DictionaryError,
    TmDecoder,
    encode_args,
    minimal_dictionary,
)
from ground.dictionary import FieldDef

FS = build_flight()
D = Dictionary(flight_dictionary())
FLIGHT_ENTRIES = {e.full_name: e for e in FS.cmd.entries()}


def _flight_app_data(name: str, args: dict[str, Any]) -> bytes:
    return PusTc.decode(CommandEncoder(FS).encode(name, **args)).app_data


# -- the dictionary file ---------------------------------------------------------------


def test_dictionary_file_problems_are_explained(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError, match=r"cannot read dictionary .*gnomon dict export"):
        Dictionary.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DictionaryError, match="is not valid JSON"):
        Dictionary.load(bad)
    with pytest.raises(DictionaryError, match="not a Gnomon dictionary"):
        Dictionary({"schema": "fprime"})
    with pytest.raises(DictionaryError, match="version 2 is not supported"):
        Dictionary({**minimal_dictionary(), "version": 2})
    doc = minimal_dictionary()
    doc["housekeeping"][0]["channels"].append(999)
    with pytest.raises(DictionaryError, match=r"sid 1 names unknown channel id\(s\) \[999\]"):
        Dictionary(doc)
    doc = minimal_dictionary()
    del doc["apids"]
    with pytest.raises(DictionaryError, match="has no 'apids'"):
        Dictionary(doc)


def test_dictionary_indexes_the_flight_export() -> None:
    assert D.content_hash == build_dictionary(FS)["content_hash"]
    assert D.commands["PING"].replies == ((17, 2),)
    assert D.channels["mode.mode"].field.labels == ((0, "NOMINAL"), (1, "SAFE"))
    assert D.channels["exec.dl_dropped"].limits.yellow_high == 0.0
    assert D.params["health.max_restarts"].field.max == 100
    assert D.commands["health.RESTART"].function_id == 0x0901
    assert D.failure_name(11) == "NOT_FOUND"


# -- encoding: same bytes as the flight's own encoder ------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("PING", {}),
        (
            "PARAM_SET",
            {"params": [{"param_id": 0x0901, "value": 9}, {"param_id": 0x0902, "value": 4}]},
        ),
        ("PARAM_GET", {"param_ids": [{"param_id": 0x0902}]}),
        (
            "HK_CREATE",
            {
                "sid": 70,
                "interval_ms": 500,
                "channel_ids": [{"channel_id": 0x0804}, {"channel_id": 0x0104}],
            },
        ),
        ("HK_MODIFY_INTERVAL", {"reports": [{"sid": 1, "interval_ms": 2000}]}),
        (
            "SCHED_INSERT",
            {"activities": [{"release_time": 2.2e9 + 0.5, "tc": PusTc(100, 17, 1).encode()}]},
        ),
        (
            "SEQ_LOAD",
            {
                "seq_id": 4,
                "name": "pings é",
                "steps": [{"delay_ms": 10, "tc": PusTc(100, 17, 1).encode()}],
            },
        ),
        ("health.RESTART", {"component": "hk"}),
        ("EVT_DISABLE", {"event_ids": [{"event_id": 0x0101}]}),
    ],
)
def test_app_data_matches_the_flight_encoder(name: str, args: dict[str, Any]) -> None:
    assert encode_args(D, D.command(name), args) == _flight_app_data(name, args)


def test_names_and_shorthands_encode_like_ids() -> None:
    by_name = encode_args(
        D, D.command("PARAM_SET"), {"params": [{"param_id": "health.silent_cycles", "value": "9"}]}
    )
    assert by_name == _flight_app_data("PARAM_SET", {"params": [{"param_id": 0x0901, "value": 9}]})
    assert encode_args(D, D.command("HK_ONE_SHOT"), {"sids": ["core", 257]}) == _flight_app_data(
        "HK_ONE_SHOT", {"sids": [{"sid": 1}, {"sid": 257}]}
    )
    assert encode_args(D, D.command("EVT_DISABLE"), {"event_ids": "exec.BOOT"}) == _flight_app_data(
        "EVT_DISABLE", {"event_ids": [{"event_id": 0x0101}]}
    )


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("demo.HEAT", {"power_w": 7.5, "mode": "AUTO"}, "power_w 7.5 above max 5 (units W)"),
        ("demo.HEAT", {"power_w": float("nan"), "mode": "AUTO"}, "is not a finite number"),
        ("demo.HEAT", {"power_w": 1, "mode": "TURBO"}, "mode='TURBO' is not one of AUTO, MANUAL"),
        ("demo.HEAT", {"power_w": "lots", "mode": "AUTO"}, "power_w='lots' is not a number"),
        ("demo.HEAT", {"power_w": 1, "mode": "AUTO", "extra": 1}, "unknown argument 'extra'"),
        (
            "PARAM_SET",
            {"params": [{"param_id": 5, "value": 1}]},
            "params[0].value: no parameter with id 5",
        ),
        (
            "PARAM_SET",
            {"params": [{"param_id": "demo.limit_w", "value": 1200}]},
            "PARAM_SET: params[0].value 1200 above max 1000 (units W, parameter demo.limit_w)",
        ),
        (
            "PARAM_SET",
            {"params": [{"param_id": 70000, "value": 1}]},
            "params[0].param_id 70000 above max 65535",
        ),
    ],
)
def test_validation_messages_name_the_argument_value_and_limit(
    name: str, args: dict[str, Any], message: str
) -> None:
    d = Dictionary(minimal_dictionary())
    with pytest.raises(CommandValidationError) as err:
        encode_args(d, d.command(name), args)
    assert message in str(err.value)
    assert err.value.command == name


def test_enum_and_bool_text_are_accepted_the_way_operators_type_them() -> None:
    d = Dictionary(minimal_dictionary())
    assert encode_args(
        d, d.command("demo.HEAT"), {"power_w": "2.5", "mode": "manual"}
    ) == encode_args(d, d.command("demo.HEAT"), {"power_w": 2.5, "mode": 1})


# -- decoding: same values as the flight's own decoder -----------------------------------


def test_every_report_decodes_like_the_flight_decodes_it() -> None:
    link = SimLink()
    raws: list[bytes] = []
    link.ground.on_decoded(lambda d: raws.append(d.raw))
    commands: list[tuple[str, dict[str, Any]]] = [
        ("PING", {}),
        ("PARAM_GET", {"param_ids": [0x0901, 0x0902]}),
        ("HK_REPORT_STRUCTURE", {"sids": [1]}),
        ("EVT_REPORT_DISABLED", {}),
        ("MON_REPORT", {}),
        ("SEQ_START", {"seq_id": 9}),
        (
            "SCHED_INSERT",
            {"activities": [{"release_time": 2.3e9, "tc": PusTc(100, 17, 1).encode()}]},
        ),
        ("SCHED_REPORT", {}),
        ("MODE_SAFE_ENTER", {}),
    ]
    for cmd, args in commands:
        link.send(cmd, **args)
    link.run(12.0)
    assert link.ground.stats["decode_errors"] == 0
    decoder = TmDecoder(D)
    names = set()
    for raw in raws:
        ours = decoder.decode(raw)
        theirs = decode_tm(link.fs, raw)
        assert ours.name == theirs.name
        assert ours.fields == theirs.fields, ours.name
        names.add(ours.name)
    assert {
        "cmd.PONG",
        "cmd.DONE_FAIL",
        "hk.STRUCTURE",
        "prm.VALUES",
        "sched.DETAIL",
        "mode.MONITOR_STATUS",
        "evt.DISABLED_LIST",
        "hk.HK_REPORT",
        "evt.EVENT_INFO",
    } <= names


def test_decode_errors_say_what_is_wrong() -> None:
    d = Dictionary(minimal_dictionary())
    dec = TmDecoder(d)
    short = PusTm(
        apid=102, service=3, subservice=25, app_data=b"\x00\x01\x41", time=cuc_encode(1.0)
    ).encode()
    with pytest.raises(
        DecodeError,
        match=r"sid 1 carries 1 bytes of values but its "
        r"structure needs 9",
    ):
        dec.decode(short)
    bad_pec = bytearray(PusTm(apid=100, service=17, subservice=2).encode())
    bad_pec[-1] ^= 1
    with pytest.raises(DecodeError, match="packet error control"):
        dec.decode(bytes(bad_pec))
    event = PusTm(
        apid=101, service=5, subservice=4, app_data=b"\x77\x77", time=cuc_encode(1.0)
    ).encode()
    with pytest.raises(DecodeError, match="event id 30583 is not in the dictionary"):
        dec.decode(event)
    unknown = dec.decode(PusTm(apid=100, service=99, subservice=1).encode())
    assert (unknown.kind, unknown.name) == ("unknown", "TM(99,1)")


# -- fuzzing -----------------------------------------------------------------------------


def _packets_from_flight() -> list[bytes]:
    link = SimLink()
    link.send("PING")
    link.send("PARAM_GET", param_ids=[0x0901])
    link.send("SEQ_START", seq_id=3)
    link.fs.step(3.0)
    return link.fs.downlink_packets()


SAMPLES = _packets_from_flight()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        assert TmDecoder(D).decode(data).raw == data


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=255),
    st.booleans(),
)
def test_mutated_flight_packets_only_ever_raise_decode_error(
    raw: bytes, where: int, flip: int, fix_pec: bool
) -> None:
    data = bytearray(raw)
    data[where % len(data)] ^= flip
    if fix_pec:  # get past the CRC so the field decoders see the damage
        from fsw.ccsds import crc16

        data[-2:] = crc16(bytes(data[:-2])).to_bytes(2, "big")
    with contextlib.suppress(DecodeError):
        assert TmDecoder(D).decode(bytes(data)).raw == bytes(data)


def _leaf_strategy(f: FieldDef) -> st.SearchStrategy[Any]:
    if f.type in ("u8", "u16", "u32", "i8", "i16", "i32"):
        assert f.min is not None and f.max is not None
        return st.integers(min_value=int(f.min), max_value=int(f.max))
    if f.type in ("f32", "f64"):
        lo = -1e6 if f.min is None else f.min
        hi = 1e6 if f.max is None else f.max
        if f.type == "f32":
            return st.floats(min_value=lo, max_value=hi, width=32, allow_nan=False)
        return st.floats(min_value=lo, max_value=hi, allow_nan=False)
    if f.type == "bool":
        return st.booleans()
    if f.type == "enum":
        return st.sampled_from([label for _, label in f.labels])
    if f.type == "str":
        return st.text(alphabet=string.ascii_letters + "é ", max_size=f.max_len // 2)
    if f.type == "cuc":
        return st.integers(min_value=0, max_value=2**32 - 2).map(lambda s: s + 0.5)
    if f.type == "packet":
        return st.just(PusTc(100, 17, 1).encode())
    raise AssertionError(f.type)


def _args_strategy(fields: tuple[FieldDef, ...]) -> st.SearchStrategy[dict[str, Any]]:
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for f in fields:
        if f.type == "array":
            parts[f.name] = st.lists(_args_strategy(f.items), max_size=min(4, f.max_count))
        else:
            parts[f.name] = _leaf_strategy(f)
    return st.fixed_dictionaries(parts)


ENCODABLE = [
    c
    for c in D.commands.values()
    if not any(a.type == "array" and any(i.type == "param_value" for i in a.items) for a in c.args)
]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_valid_arguments_reach_the_flight_unchanged(data: st.DataObject) -> None:
    cmd = data.draw(st.sampled_from(ENCODABLE))
    args = data.draw(_args_strategy(cmd.args))
    raw = encode_args(D, cmd, args)
    entry = FLIGHT_ENTRIES[cmd.name]
    body = raw[2:] if cmd.function_id is not None else raw
    decoded = flight_decode(entry.spec.fields, body, FS.registry.resolve)
    # floats are drawn exactly representable in their width, so equality is exact
    assert json.dumps(decoded, default=str, sort_keys=True) == json.dumps(
        args, default=str, sort_keys=True
    )


# -- the other parsers: dictionary documents and console lines ---------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


_DOC_PATHS = [p for p in _paths(minimal_dictionary()) if p]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_DOC_PATHS), _JSON | st.just(KeyError)), min_size=1, max_size=3
    )
)
@example(damage=[(("apids", "tc"), float("inf"))])  # int(inf) raised OverflowError
def test_damaged_dictionaries_only_ever_raise_dictionary_error(
    damage: list[tuple[tuple[Any, ...], Any]],
) -> None:
    doc = minimal_dictionary()
    for path, value in damage:
        node: Any = doc
        try:
            for key in path[:-1]:
                node = node[key]
            if value is KeyError:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    try:
        d = Dictionary(doc)
    except DictionaryError:
        return
    decoder = TmDecoder(d)  # whatever loaded must be usable
    assert isinstance(decoder.hk_layouts, dict)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "é→", max_size=60))
def test_console_lines_only_ever_raise_ground_errors(line: str) -> None:
    from ground import GroundError
    from ground.console import parse_command_line

    try:
        name, args = parse_command_line(line, D.commands.get(line.split(" ")[0]))
    except GroundError:
        return
    assert isinstance(args, dict) and all(isinstance(k, str) for k in args)
    with contextlib.suppress(GroundError):
        encode_args(D, D.command(name), args)
