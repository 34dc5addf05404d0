"""CUC and CDS time codes, P-fields, and conversion to and from datetime and TAI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.ccsds import CcsdsError, TimeCodeError, cuc_decode, cuc_encode
from fsw.ccsds.timecode import (
    cds_decode,
    cds_encode,
    cds_pfield,
    cuc_pfield,
    datetime_from_tai,
    decode_with_pfield,
    encode_with_pfield,
    tai_from_datetime,
)


def test_cuc_known_answers() -> None:
    assert cuc_encode(1.5).hex() == "000000018000"
    assert cuc_encode(1.5, coarse_octets=2, fine_octets=1).hex() == "000180"
    assert cuc_encode(0.999, coarse_octets=1, fine_octets=0).hex() == "00"  # truncated
    assert (
        cuc_pfield(4, 2) == b"\x1e" and cuc_pfield(1, 0) == b"\x10" and cuc_pfield(4, 3) == b"\x1f"
    )
    assert encode_with_pfield(2.25, "cuc", 2, 2).hex() == "1600024000"


def test_cds_known_answers() -> None:
    assert (
        cds_pfield(2, 0) == b"\x40" and cds_pfield(3, 2) == b"\x45" and cds_pfield(2, 4) == b"\x42"
    )
    # day 1, 500 ms
    assert cds_encode(86400.5).hex() == "0001000001f4"
    # day 2, 1 ms, 250 us, 24-bit days
    assert cds_encode(2 * 86400 + 0.00125, day_octets=3, submillis_octets=2).hex() == (
        "000002" + "00000001" + "00fa"
    )
    assert cds_decode(bytes.fromhex("0001000001f4")) == 86400.5


@settings(max_examples=200)
@given(
    st.floats(0, 2**32 - 1, allow_nan=False),
    st.integers(1, 4),
    st.integers(0, 3),
)
def test_cuc_round_trip_within_resolution(tai: float, coarse: int, fine: int) -> None:
    if tai >= 2 ** (8 * coarse):
        with pytest.raises(TimeCodeError):
            cuc_encode(tai, coarse, fine)
        return
    raw = cuc_encode(tai, coarse, fine)
    assert len(raw) == coarse + fine
    back = cuc_decode(raw, coarse, fine)
    assert 0 <= tai - back < 2.0 ** (-8 * fine) + 1e-9 * max(1.0, tai)
    assert decode_with_pfield(cuc_pfield(coarse, fine) + raw) == back


@settings(max_examples=200)
@given(st.integers(0, 0xFFFF * 86_400_000 - 1), st.sampled_from([0, 2]))
def test_cds_round_trip_exact_milliseconds(ms: int, sub: int) -> None:
    tai = ms / 1000
    raw = cds_encode(tai, 2, sub)
    assert cds_decode(raw, 2, sub) == pytest.approx(tai, abs=1e-6)
    assert decode_with_pfield(cds_pfield(2, sub) + raw) == pytest.approx(tai, abs=1e-6)


def test_cds_microseconds_and_picoseconds() -> None:
    tai = 1_000_000.123456
    assert cds_decode(cds_encode(tai, 2, 2), 2, 2) == pytest.approx(tai, abs=1e-6)
    assert cds_decode(cds_encode(tai, 3, 4), 3, 4) == pytest.approx(tai, abs=1e-6)


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: cuc_encode(-1.0), "before the epoch"),
        (lambda: cuc_encode(float("nan")), "cannot encode"),
        (lambda: cuc_encode(2.0**32), "does not fit"),
        (lambda: cuc_encode(1.0, coarse_octets=5), "1..4 octets"),
        (lambda: cuc_decode(b"\x00" * 5), "needs 6 bytes"),
        (lambda: cds_encode(float("inf")), "cannot encode"),
        (lambda: cds_encode(86400.0 * 70000), "16-bit CDS day"),
        (lambda: cds_encode(1.0, day_octets=4), "2 or 3 octets"),
        (lambda: cds_decode(bytes.fromhex("0000ffffffff")), "beyond one day"),
        (lambda: cds_decode(bytes.fromhex("00000000000003e8"), 2, 2), "above 999"),
        (lambda: decode_with_pfield(b""), "no P-field"),
        (lambda: decode_with_pfield(b"\x2e" + bytes(6)), "agency-defined"),
        (lambda: decode_with_pfield(b"\x43" + bytes(6)), "reserved"),
        (lambda: decode_with_pfield(b"\x9e" + bytes(6)), "extension"),
        (lambda: decode_with_pfield(b"\x50" + bytes(6)), "not CUC or CDS"),
        (lambda: encode_with_pfield(1.0, "ccs"), "unknown time code"),
        (lambda: tai_from_datetime(datetime(2026, 1, 1)), "timezone-aware"),
    ],
)
def test_time_code_errors(call: object, reason: str) -> None:
    with pytest.raises(TimeCodeError, match=reason):
        call()  # type: ignore[operator]


def test_datetime_conversions_match_the_flight_clock() -> None:
    from fsw.core.clock import datetime_to_tai, tai_to_datetime

    moment = datetime(2026, 11, 21, 12, 30, 5, 250000, tzinfo=UTC)
    tai = tai_from_datetime(moment)
    assert tai == datetime_to_tai(moment)
    assert datetime_from_tai(tai) == moment == tai_to_datetime(tai)
    assert datetime_from_tai(37.0) == datetime(1958, 1, 1, tzinfo=UTC)
    # A CDS time code of that moment says the same moment (TAI days of 86400 s).
    assert (
        datetime_from_tai(decode_with_pfield(encode_with_pfield(tai, "cds", submillis_octets=2)))
        == moment
    )
    assert datetime_from_tai(tai + 0.5) - moment == timedelta(seconds=0.5)


@settings(max_examples=300)
@given(st.binary(max_size=12))
def test_pfield_decoder_fuzz(raw: bytes) -> None:
    try:
        value = decode_with_pfield(raw)
    except CcsdsError:
        return
    assert value >= 0
