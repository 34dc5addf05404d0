"""Typed fields: known answers, round trips, range checks, fuzzed decoding."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import PusTc
from fsw.core.errors import DeclarationError, FailureCode, WireError
from fsw.core.wire import Arg, Array, Dynamic, decode, encode


def test_known_answers_for_every_leaf_type() -> None:
    ping = PusTc(apid=100, service=17, subservice=1).encode()
    fields = (
        Arg("a", "u8"),
        Arg("b", "i16"),
        Arg("c", "u32"),
        Arg("d", "f32"),
        Arg("e", "f64"),
        Arg("f", "bool"),
        Arg("g", "enum", labels=("OFF", "ON")),
        Arg("h", "enum", base="u16", labels=("X", "Y"), label_values=(7, 300)),
        Arg("i", "str", max_len=4),
        Arg("j", "cuc"),
        Arg("k", "packet"),
    )
    values = {
        "a": 255,
        "b": -2,
        "c": 0x01020304,
        "d": 1.5,
        "e": -0.25,
        "f": True,
        "g": "ON",
        "h": "Y",
        "i": "ok",
        "j": 1.5,
        "k": ping,
    }
    raw = encode(fields, values)
    expected = (
        b"\xff"
        + b"\xff\xfe"
        + b"\x01\x02\x03\x04"
        + struct.pack(">f", 1.5)
        + struct.pack(">d", -0.25)
        + b"\x01"
        + b"\x01"
        + b"\x01\x2c"
        + b"\x02ok"
        + bytes.fromhex("000000018000")
        + ping
    )
    assert raw == expected
    assert decode(fields, raw) == values


def test_array_and_param_value_round_trip() -> None:
    gain = Arg("gain", "f32", min=0, max=10)

    def resolver(kind: str, key: int) -> tuple[Arg, ...]:
        assert kind == "param_value"
        if key != 0x1001:
            raise WireError(FailureCode.NOT_FOUND, f"no parameter {key}")
        return (gain,)

    fields = (
        Array("params", (Arg("param_id", "u16"), Dynamic("value", "param_value", "param_id"))),
    )
    raw = encode(fields, {"params": [{"param_id": 0x1001, "value": 2.5}]}, resolver)
    assert raw == b"\x00\x01\x10\x01" + struct.pack(">f", 2.5)
    assert decode(fields, raw, resolver) == {"params": [{"param_id": 0x1001, "value": 2.5}]}
    with pytest.raises(WireError) as err:
        decode(fields, b"\x00\x01\x10\x02" + struct.pack(">f", 2.5), resolver)
    assert err.value.code == FailureCode.NOT_FOUND
    with pytest.raises(WireError) as err:
        decode(fields, b"\x00\x01\x10\x01" + struct.pack(">f", 12.0), resolver)
    assert err.value.code == FailureCode.ARG_OUT_OF_RANGE
    assert "above the maximum 10" in err.value.reason


@pytest.mark.parametrize(
    ("arg", "raw", "code"),
    [
        (Arg("x", "u16", max=100), b"\x00\x65", FailureCode.ARG_OUT_OF_RANGE),
        (Arg("x", "u16"), b"\x00", FailureCode.BAD_LENGTH),
        (Arg("x", "bool"), b"\x02", FailureCode.ARG_OUT_OF_RANGE),
        (Arg("x", "enum", labels=("A", "B")), b"\x05", FailureCode.ARG_OUT_OF_RANGE),
        (Arg("x", "str", max_len=2), b"\x03abc", FailureCode.ARG_OUT_OF_RANGE),
        (Arg("x", "str", max_len=8), b"\x02\xff\xfe", FailureCode.ARG_OUT_OF_RANGE),
        (Arg("x", "str", max_len=8), b"\x05ab", FailureCode.BAD_LENGTH),
        (Arg("x", "f32"), struct.pack(">f", float("nan")), FailureCode.ARG_OUT_OF_RANGE),
        (Arg("x", "packet"), b"\x18\x64\xc0\x00\x00\x09\x00", FailureCode.BAD_LENGTH),
        (Arg("x", "u8"), b"\x01\x02", FailureCode.BAD_LENGTH),
    ],
)
def test_bad_bytes_give_the_right_failure_code(arg: Arg, raw: bytes, code: FailureCode) -> None:
    with pytest.raises(WireError) as err:
        decode((arg,), raw)
    assert err.value.code == code
    assert err.value.reason  # an operator-readable reason


def test_encode_checks_values() -> None:
    with pytest.raises(WireError, match="below the minimum 1"):
        encode((Arg("n", "i8", min=1),), {"n": 0})
    with pytest.raises(WireError, match="not one of OFF, ON"):
        encode((Arg("m", "enum", labels=("OFF", "ON")),), {"m": "MAYBE"})
    with pytest.raises(WireError, match="missing value for n"):
        encode((Arg("n", "u8"),), {})
    with pytest.raises(WireError, match="2 entries, at most 1 allowed"):
        encode((Array("xs", (Arg("x", "u8"),), max_count=1),), {"xs": [{"x": 1}, {"x": 2}]})


@pytest.mark.parametrize(
    "make",
    [
        lambda: Arg("bad name", "u8"),
        lambda: Arg("class", "u8"),
        lambda: Arg("x", "u128"),
        lambda: Arg("x", "enum"),
        lambda: Arg("x", "str"),
        lambda: Arg("x", "u8", min=5, max=1),
        lambda: Arg("x", "u8", max=300),
        lambda: Arg("x", "bool", min=0),
        lambda: Arg("x", "u8", labels=("A",)),
        lambda: Array("xs", (Arg("x", "u8"), Arg("x", "u8"))),
        lambda: Array("xs", (Dynamic("v", "param_value", "later"), Arg("later", "u16"))),
        lambda: Dynamic("v", "something", "k"),
    ],
)
def test_bad_declarations_are_refused(make: object) -> None:
    with pytest.raises(DeclarationError):
        make()  # type: ignore[operator]


_LEAVES = [
    (Arg("u", "u32"), st.integers(0, 2**32 - 1)),
    (Arg("i", "i16"), st.integers(-(2**15), 2**15 - 1)),
    (Arg("f", "f64"), st.floats(allow_nan=False, allow_infinity=False)),
    (Arg("b", "bool"), st.booleans()),
    (Arg("e", "enum", labels=("A", "B", "C")), st.sampled_from(["A", "B", "C"])),
    (Arg("s", "str", max_len=20), st.text(max_size=5)),
    (Arg("t", "cuc"), st.integers(0, 2**47).map(lambda n: n / 65536)),
]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_round_trip_of_random_values(data: st.DataObject) -> None:
    chosen = data.draw(
        st.lists(st.sampled_from(range(len(_LEAVES))), min_size=1, max_size=6, unique=True)
    )
    fields = tuple(_LEAVES[i][0] for i in chosen)
    values = {_LEAVES[i][0].name: data.draw(_LEAVES[i][1]) for i in chosen}
    assert decode(fields, encode(fields, values)) == values


_FUZZ_FIELDS = (
    Arg("sid", "u16"),
    Arg("name", "str", max_len=16),
    Array(
        "items",
        (
            Arg("t", "cuc"),
            Arg("tc", "packet"),
            Arg("on", "bool"),
            Arg("m", "enum", labels=("A", "B")),
            Arg("g", "f32", min=0, max=1),
        ),
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_wire_error(raw: bytes) -> None:
    try:
        decode(_FUZZ_FIELDS, raw)
    except WireError as exc:
        assert isinstance(exc.code, FailureCode)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 255))
def test_mutated_valid_bytes_raise_only_wire_error(pos: int, byte: int) -> None:
    ping = PusTc(apid=100, service=17, subservice=1).encode()
    raw = bytearray(
        encode(
            _FUZZ_FIELDS,
            {
                "sid": 3,
                "name": "abc",
                "items": [{"t": 10.0, "tc": ping, "on": True, "m": "B", "g": 0.5}],
            },
        )
    )
    raw[pos % len(raw)] = byte
    with contextlib.suppress(WireError):
        decode(_FUZZ_FIELDS, bytes(raw))
