"""CCSDS time codes (301.0-B-4), epoch 1958-01-01 TAI: CUC and CDS, with P-fields.

CUC (unsegmented): the T-field is ``coarse_octets`` bytes of whole seconds and
``fine_octets`` bytes of binary fraction, big-endian. Gnomon's PUS TM secondary headers
carry CUC 4+2 with no P-field (the dictionary says so, so the ground knows the length).

CDS (day segmented): days since the epoch (16 or 24 bits), milliseconds of the day
(32 bits), then optionally microseconds (16 bits) or picoseconds (32 bits) of the
millisecond. On Gnomon the scale is TAI (no leap seconds), so a day is always 86400 s.

P-fields (one octet) name the code and its layout: CUC ``0 001 cc ff`` (coarse octets
- 1, fine octets), CDS ``0 100 0 d ss`` (24-bit days, sub-millisecond resolution).

>>> cuc_encode(1.5).hex()
'000000018000'
>>> cuc_decode(bytes.fromhex('000000018000'))
1.5
>>> cuc_pfield(4, 2).hex(), cds_pfield(2, 0).hex()
('1e', '40')
>>> cds_encode(86400.5).hex()
'0001000001f4'
>>> decode_with_pfield(encode_with_pfield(86400.5, "cds"))
86400.5
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from fsw.ccsds.errors import CcsdsError

#: TAI - UTC since 2017-01-01 (the same fixed offset as fsw.core.clock uses).
TAI_MINUS_UTC_S = 37.0
_EPOCH_UTC = datetime(1958, 1, 1, tzinfo=UTC)

DEFAULT_COARSE_OCTETS = 4
DEFAULT_FINE_OCTETS = 2


class TimeCodeError(CcsdsError):
    """A time code that cannot be encoded or decoded."""


def _check_octets(coarse_octets: int, fine_octets: int) -> None:
    if not 1 <= coarse_octets <= 4:
        raise TimeCodeError(f"CUC coarse time must be 1..4 octets, not {coarse_octets}")
    if not 0 <= fine_octets <= 3:
        raise TimeCodeError(f"CUC fine time must be 0..3 octets, not {fine_octets}")


def cuc_encode(
    tai_s: float,
    coarse_octets: int = DEFAULT_COARSE_OCTETS,
    fine_octets: int = DEFAULT_FINE_OCTETS,
) -> bytes:
    """T-field of a CUC time code for TAI seconds since 1958 (fraction truncated)."""
    _check_octets(coarse_octets, fine_octets)
    if not math.isfinite(tai_s):
        raise TimeCodeError(f"CUC cannot encode {tai_s} s")
    if tai_s < 0:
        raise TimeCodeError(f"CUC cannot encode a time before the epoch ({tai_s} s)")
    ticks = int(tai_s * (1 << (8 * fine_octets)))
    total = coarse_octets + fine_octets
    if ticks >> (8 * total):
        raise TimeCodeError(f"{tai_s} s does not fit in {coarse_octets} coarse octets")
    return ticks.to_bytes(total, "big")


def cuc_decode(
    raw: bytes | bytearray | memoryview,
    coarse_octets: int = DEFAULT_COARSE_OCTETS,
    fine_octets: int = DEFAULT_FINE_OCTETS,
) -> float:
    """TAI seconds since 1958 from a CUC T-field of exactly the configured length."""
    _check_octets(coarse_octets, fine_octets)
    total = coarse_octets + fine_octets
    if len(raw) != total:
        raise TimeCodeError(
            f"CUC {coarse_octets}+{fine_octets} needs {total} bytes, got {len(raw)}"
        )
    return int.from_bytes(raw, "big") / (1 << (8 * fine_octets))


# --- P-fields -----------------------------------------------------------------------

_CUC_ID = 0b001  # CUC, level 1 (CCSDS epoch 1958-01-01 TAI)
_CUC_AGENCY_ID = 0b010  # CUC, level 2 (agency-defined epoch)
_CDS_ID = 0b100
_SUBMS_OCTETS = {0: 0b00, 2: 0b01, 4: 0b10}
_SUBMS_CODE = {v: k for k, v in _SUBMS_OCTETS.items()}
MS_PER_DAY = 86_400_000


def cuc_pfield(
    coarse_octets: int = DEFAULT_COARSE_OCTETS, fine_octets: int = DEFAULT_FINE_OCTETS
) -> bytes:
    """The one-octet P-field of a CUC code (CCSDS epoch).

    >>> cuc_pfield(4, 3).hex()
    '1f'
    """
    _check_octets(coarse_octets, fine_octets)
    return bytes([(_CUC_ID << 4) | ((coarse_octets - 1) << 2) | fine_octets])


def _check_cds(day_octets: int, submillis_octets: int) -> None:
    if day_octets not in (2, 3):
        raise TimeCodeError(f"CDS day segment must be 2 or 3 octets, not {day_octets}")
    if submillis_octets not in _SUBMS_OCTETS:
        raise TimeCodeError(
            f"CDS sub-millisecond field must be 0, 2 (us) or 4 (ps) octets, not {submillis_octets}"
        )


def cds_pfield(day_octets: int = 2, submillis_octets: int = 0) -> bytes:
    """The one-octet P-field of a CDS code (CCSDS epoch).

    >>> cds_pfield(3, 2).hex()
    '45'
    """
    _check_cds(day_octets, submillis_octets)
    return bytes([(_CDS_ID << 4) | ((day_octets == 3) << 2) | _SUBMS_OCTETS[submillis_octets]])


def cds_encode(tai_s: float, day_octets: int = 2, submillis_octets: int = 0) -> bytes:
    """T-field of a CDS code for TAI seconds since 1958, rounded to its resolution."""
    _check_cds(day_octets, submillis_octets)
    if not math.isfinite(tai_s):
        raise TimeCodeError(f"CDS cannot encode {tai_s} s")
    if tai_s < 0:
        raise TimeCodeError(f"CDS cannot encode a time before the epoch ({tai_s} s)")
    sub_per_ms = {0: 1, 2: 1000, 4: 1_000_000_000}[submillis_octets]
    units = round(tai_s * 1000 * sub_per_ms)
    ms_total, sub = divmod(units, sub_per_ms)
    days, ms = divmod(ms_total, MS_PER_DAY)
    if days >> (8 * day_octets):
        raise TimeCodeError(f"{tai_s} s is beyond the {8 * day_octets}-bit CDS day count")
    out = days.to_bytes(day_octets, "big") + ms.to_bytes(4, "big")
    if submillis_octets:
        out += sub.to_bytes(submillis_octets, "big")
    return out


def cds_decode(
    raw: bytes | bytearray | memoryview, day_octets: int = 2, submillis_octets: int = 0
) -> float:
    """TAI seconds since 1958 from a CDS T-field of exactly the configured length."""
    _check_cds(day_octets, submillis_octets)
    total = day_octets + 4 + submillis_octets
    if len(raw) != total:
        raise TimeCodeError(
            f"CDS with {day_octets}-octet days and {submillis_octets} sub-ms octets needs "
            f"{total} bytes, got {len(raw)}"
        )
    raw = bytes(raw)
    days = int.from_bytes(raw[:day_octets], "big")
    ms = int.from_bytes(raw[day_octets : day_octets + 4], "big")
    if ms >= MS_PER_DAY + 1000:
        raise TimeCodeError(f"CDS millisecond of day {ms} is beyond one day", offset=day_octets)
    seconds = days * 86400 + ms / 1000
    if submillis_octets == 2:
        us = int.from_bytes(raw[-2:], "big")
        if us > 999:
            raise TimeCodeError(f"CDS microsecond field {us} is above 999", offset=total - 2)
        seconds += us / 1e6
    elif submillis_octets == 4:
        ps = int.from_bytes(raw[-4:], "big")
        if ps > 999_999_999:
            raise TimeCodeError(f"CDS picosecond field {ps} is above 999999999", offset=total - 4)
        seconds += ps / 1e12
    return seconds


def encode_with_pfield(
    tai_s: float,
    code: str = "cuc",
    coarse_octets: int = DEFAULT_COARSE_OCTETS,
    fine_octets: int = DEFAULT_FINE_OCTETS,
    day_octets: int = 2,
    submillis_octets: int = 0,
) -> bytes:
    """P-field + T-field for ``code`` ``"cuc"`` or ``"cds"``.

    >>> encode_with_pfield(1.5).hex()
    '1e000000018000'
    """
    if code == "cuc":
        return cuc_pfield(coarse_octets, fine_octets) + cuc_encode(
            tai_s, coarse_octets, fine_octets
        )
    if code == "cds":
        return cds_pfield(day_octets, submillis_octets) + cds_encode(
            tai_s, day_octets, submillis_octets
        )
    raise TimeCodeError(f"unknown time code {code!r} (use 'cuc' or 'cds')")


def decode_with_pfield(raw: bytes | bytearray | memoryview) -> float:
    """TAI seconds from a time code that starts with its P-field (CUC or CDS, CCSDS epoch).

    The whole of ``raw`` must be the code: trailing bytes are an error.
    """
    if len(raw) < 1:
        raise TimeCodeError("empty time code: no P-field", offset=0)
    p = raw[0]
    if p & 0x80:
        raise TimeCodeError("P-field extension octets are not supported", offset=0)
    code_id = (p >> 4) & 7
    if code_id == _CUC_ID:
        return cuc_decode(raw[1:], ((p >> 2) & 3) + 1, p & 3)
    if code_id == _CUC_AGENCY_ID:
        raise TimeCodeError("CUC with an agency-defined epoch is not supported", offset=0)
    if code_id == _CDS_ID:
        if p & 0x08:
            raise TimeCodeError("CDS with an agency-defined epoch is not supported", offset=0)
        code = p & 3
        if code not in _SUBMS_CODE:
            raise TimeCodeError("CDS sub-millisecond resolution code 11 is reserved", offset=0)
        return cds_decode(raw[1:], 3 if p & 0x04 else 2, _SUBMS_CODE[code])
    raise TimeCodeError(
        f"P-field 0x{p:02X} names time code {code_id:03b}, not CUC or CDS", offset=0
    )


def tai_from_datetime(dt: datetime) -> float:
    """TAI seconds since 1958 for an aware UTC datetime (TAI-UTC fixed at 37 s).

    >>> from datetime import UTC
    >>> tai_from_datetime(datetime(1958, 1, 1, tzinfo=UTC))
    37.0
    """
    if not isinstance(dt, datetime) or dt.tzinfo is None:
        raise TimeCodeError(f"need a timezone-aware datetime, not {dt!r}")
    return (dt - _EPOCH_UTC).total_seconds() + TAI_MINUS_UTC_S


def datetime_from_tai(tai_s: float) -> datetime:
    """Aware UTC datetime for TAI seconds since 1958.

    >>> datetime_from_tai(37.0).isoformat()
    '1958-01-01T00:00:00+00:00'
    """
    try:
        return _EPOCH_UTC + timedelta(seconds=tai_s - TAI_MINUS_UTC_S)
    except (ValueError, OverflowError, TypeError) as exc:
        raise TimeCodeError(f"TAI {tai_s} s is not a representable date: {exc}") from None
