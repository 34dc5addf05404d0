"""Vectorised orbit geometry: TLE propagation, the Sun, Earth's shadow, ground stations.

Flight-safe (numpy and sgp4 only) and shared by the onboard predictor
(:mod:`fsw.power.predictor`) and the simulated world (:mod:`hil.sim`). Every function takes
arrays of TAI seconds since 1958 and returns arrays, so a whole orbit costs a few
vector operations.

Frames: sgp4 returns TEME (true equator, mean equinox of date) positions. The Sun comes
from the Astronomical Almanac low-precision series (0.01 deg, 1950-2050) in the
equinox-of-date frame, close enough to TEME that the shadow edge moves by < 0.2 s.
TEME -> Earth-fixed is a rotation by GMST (IAU-82), UT1 taken as UTC (< 1 s of Earth
rotation, a few hundred metres at the equator); polar motion is ignored.

>>> sat = parse_tle(
...     "1 25544U 98067A   26325.50000000  .00010000  00000-0  18000-3 0  9996",
...     "2 25544  51.6400 200.0000 0005000  90.0000 270.0000 15.50000000    04")
>>> t = np.array([0.0, 60.0]) + 2_200_000_000.0
>>> propagate_teme(sat, t).shape
(2, 3)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sgp4.api import SGP4_ERRORS, Satrec
from sgp4.io import compute_checksum

from fsw.core.clock import TAI_MINUS_UTC_S
from fsw.power.errors import TleError

FloatArray = NDArray[np.float64]

R_EARTH_KM = 6378.137  # WGS84 equatorial radius; also the shadow sphere
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
R_SUN_KM = 695_700.0  # IAU 2015 nominal solar radius
AU_KM = 149_597_870.7
SOLAR_CONSTANT_W_M2 = 1361.0  # total solar irradiance at 1 AU
JD_CCSDS_EPOCH = 2436204.5  # 1958-01-01T00:00:00 as a Julian date
DAY_S = 86400.0
_TWO_PI = 2.0 * np.pi


def _asarray(t_tai: ArrayLike) -> FloatArray:
    return np.atleast_1d(np.asarray(t_tai, dtype=np.float64))


def tai_to_jd_utc(t_tai: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Split UTC Julian date (whole + fraction, sgp4's convention) for TAI seconds.

    >>> jd, fr = tai_to_jd_utc(37.0)
    >>> float(jd[0] + fr[0])
    2436204.5
    """
    days = (_asarray(t_tai) - TAI_MINUS_UTC_S) / DAY_S
    whole = np.floor(days)
    return JD_CCSDS_EPOCH + whole, days - whole


def _sgp4_reason(code: int) -> str:
    """sgp4's own words for its error ``code`` (``sgp4.api.SGP4_ERRORS``)."""
    return str(SGP4_ERRORS.get(code, f"sgp4 error {code}"))


def parse_tle(line1: str, line2: str) -> Satrec:
    """Validate and parse a two-line element set; :class:`TleError` says what is wrong.

    Checks line numbers, lengths, checksums (sgp4's ``compute_checksum``), matching
    catalogue numbers and that sgp4 can propagate the set at its own epoch; sgp4's
    error table says why it cannot.

    >>> parse_tle("1 00005U 58002B   00179.78495062  .00000023  00000-0  28098-4 0  4754",
    ...           "2 00005  34.2682 348.7242 1859667 331.7664  19.3264 10.82419157413667")
    Traceback (most recent call last):
    ...
    fsw.power.errors.TleError: TLE line 1 checksum is '4', expected 3: re-uplink the element set
    """
    if not isinstance(line1, str) or not isinstance(line2, str):
        raise TleError("TLE lines must be text")
    l1, l2 = line1.rstrip("\r\n "), line2.rstrip("\r\n ")
    for n, line in ((1, l1), (2, l2)):
        if not line.isascii() or not line.isprintable():
            raise TleError(f"TLE line {n} has non-printable or non-ASCII characters")
        if len(line) != 69:
            raise TleError(f"TLE line {n} is {len(line)} characters long, expected 69")
        if line[0] != str(n) or line[1] != " ":
            raise TleError(f"TLE line {n} must start with '{n} '")
        want = compute_checksum(line)
        if not line[68].isdigit() or int(line[68]) != want:
            raise TleError(
                f"TLE line {n} checksum is {line[68]!r}, expected {want}: re-uplink the element set"
            )
    if l1[2:7] != l2[2:7]:
        raise TleError(f"TLE lines name different satellites ({l1[2:7]!r} vs {l2[2:7]!r})")
    try:
        sat = Satrec.twoline2rv(l1, l2)
    except Exception as exc:  # sgp4 raises assorted ValueError/IndexError on bad fields
        raise TleError(f"TLE fields do not parse: {exc}") from exc
    if sat.error != 0:
        raise TleError(f"TLE elements are not a valid orbit: {_sgp4_reason(sat.error)}")
    if not np.isfinite(sat.no_kozai) or sat.no_kozai <= 0.0:
        raise TleError("TLE elements are not a valid orbit: mean motion is not positive")
    err, r, _v = sat.sgp4(sat.jdsatepoch, sat.jdsatepochF)
    if err != 0 or not np.all(np.isfinite(r)):
        raise TleError(f"TLE cannot be propagated at its epoch: {_sgp4_reason(err)}")
    return sat


def tle_epoch_tai(sat: Satrec) -> float:
    """TAI seconds since 1958 of a parsed TLE's epoch."""
    days = (sat.jdsatepoch - JD_CCSDS_EPOCH) + sat.jdsatepochF
    return float(days * DAY_S + TAI_MINUS_UTC_S)


def orbit_period_s(sat: Satrec) -> float:
    """Anomalistic period from the TLE mean motion (radians per minute)."""
    return float(_TWO_PI / sat.no_kozai * 60.0)


def propagate_teme(sat: Satrec, t_tai: ArrayLike) -> FloatArray:
    """TEME positions (N, 3) in km; :class:`TleError` if sgp4 fails (e.g. decay)."""
    jd, fr = tai_to_jd_utc(t_tai)
    err, r, _v = sat.sgp4_array(jd, fr)
    bad = np.flatnonzero(err)
    if bad.size:
        code = int(err[bad[0]])
        raise TleError(f"orbit propagation failed at sample {int(bad[0])}: {_sgp4_reason(code)}")
    return np.asarray(r, dtype=np.float64)


def sun_position_km(t_tai: ArrayLike) -> FloatArray:
    """Geocentric Sun (N, 3) in km, equator and equinox of date (Almanac series).

    >>> from fsw.core.clock import DEFAULT_START_TAI
    >>> d = np.linalg.norm(sun_position_km(DEFAULT_START_TAI)) / AU_KM
    >>> bool(0.98 < d < 0.99)
    True
    """
    jd, fr = tai_to_jd_utc(t_tai)
    n = (jd - 2451545.0) + fr
    mean_lon = np.radians((280.460 + 0.9856474 * n) % 360.0)
    g = np.radians((357.528 + 0.9856003 * n) % 360.0)
    ecl_lon = mean_lon + np.radians(1.915 * np.sin(g) + 0.020 * np.sin(2.0 * g))
    obliquity = np.radians(23.439 - 0.0000004 * n)
    dist_km = (1.00014 - 0.01671 * np.cos(g) - 0.00014 * np.cos(2.0 * g)) * AU_KM
    x = dist_km * np.cos(ecl_lon)
    y = dist_km * np.cos(obliquity) * np.sin(ecl_lon)
    z = dist_km * np.sin(obliquity) * np.sin(ecl_lon)
    return np.stack([x, y, z], axis=-1)


def gmst_rad(t_tai: ArrayLike) -> FloatArray:
    """Greenwich mean sidereal time (IAU-82, the angle TEME uses), radians."""
    jd, fr = tai_to_jd_utc(t_tai)
    tut1 = ((jd - 2451545.0) + fr) / 36525.0
    gmst_s = (
        -6.2e-6 * tut1**3
        + 0.093104 * tut1**2
        + (876600.0 * 3600.0 + 8640184.812866) * tut1
        + 67310.54841
    )
    return np.asarray((gmst_s % DAY_S) * (_TWO_PI / DAY_S), dtype=np.float64)


def teme_to_ecef(r_teme: FloatArray, t_tai: ArrayLike) -> FloatArray:
    """Rotate TEME vectors (N, 3) into the Earth-fixed frame (pseudo-Earth-fixed)."""
    theta = gmst_rad(t_tai)
    c, s = np.cos(theta), np.sin(theta)
    x, y, z = r_teme[:, 0], r_teme[:, 1], r_teme[:, 2]
    return np.stack([c * x + s * y, -s * x + c * y, z], axis=-1)


def ecef_to_geodetic(r_ecef: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """WGS84 latitude (deg), longitude (deg, -180..180) and altitude (km)."""
    x, y, z = r_ecef[:, 0], r_ecef[:, 1], r_ecef[:, 2]
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    lat = np.arctan2(z, p * (1.0 - WGS84_E2))
    for _ in range(4):
        n = R_EARTH_KM / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
        alt = p / np.maximum(np.cos(lat), 1e-12) - n
        lat = np.arctan2(z, p * (1.0 - WGS84_E2 * n / (n + alt)))
    n = R_EARTH_KM / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
    alt = p / np.maximum(np.cos(lat), 1e-12) - n
    return np.degrees(lat), np.degrees(lon), alt


def geodetic_to_ecef(lat_deg: float, lon_deg: float, alt_km: float = 0.0) -> FloatArray:
    """Earth-fixed position (3,) in km of a point on the WGS84 ellipsoid.

    >>> [round(float(v), 3) for v in geodetic_to_ecef(0.0, 0.0)]
    [6378.137, 0.0, 0.0]
    """
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    n = R_EARTH_KM / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
    return np.array(
        [
            (n + alt_km) * np.cos(lat) * np.cos(lon),
            (n + alt_km) * np.cos(lat) * np.sin(lon),
            (n * (1.0 - WGS84_E2) + alt_km) * np.sin(lat),
        ]
    )


def up_vector(lat_deg: ArrayLike, lon_deg: ArrayLike) -> FloatArray:
    """Geodetic zenith unit vectors (N, 3) in the Earth-fixed frame."""
    lat, lon = np.radians(_asarray(lat_deg)), np.radians(_asarray(lon_deg))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)


def elevation_deg(
    sat_ecef: FloatArray, lat_deg: float, lon_deg: float, alt_km: float = 0.0
) -> FloatArray:
    """Elevation (deg, geometric, no refraction) of the satellite seen from a station."""
    rho = sat_ecef - geodetic_to_ecef(lat_deg, lon_deg, alt_km)
    up = up_vector(lat_deg, lon_deg)[0]
    sin_el = (rho @ up) / np.linalg.norm(rho, axis=-1)
    return np.degrees(np.arcsin(np.clip(sin_el, -1.0, 1.0)))


def ground_sun_elevation_deg(
    lat_deg: ArrayLike, lon_deg: ArrayLike, sun_ecef: FloatArray
) -> FloatArray:
    """Solar elevation (deg) at ground points, one per row of ``sun_ecef``."""
    s_hat = sun_ecef / np.linalg.norm(sun_ecef, axis=-1, keepdims=True)
    sin_el = np.sum(up_vector(lat_deg, lon_deg) * s_hat, axis=-1)
    return np.degrees(np.arcsin(np.clip(sin_el, -1.0, 1.0)))


def shadow_geometry(
    r_sat_km: FloatArray, r_sun_km: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Conical-shadow angles seen from the satellite: (separation, earth_radius, sun_radius).

    ``separation`` is the angle between the Sun's and the Earth's centres; all radians.
    Umbra: separation < earth - sun; penumbra: < earth + sun; the Sun's centre is
    hidden when separation < earth (that edge is what skyfield's ``is_sunlit`` tests).
    """
    to_sun = r_sun_km - r_sat_km
    d_sun = np.linalg.norm(to_sun, axis=-1)
    d_earth = np.linalg.norm(r_sat_km, axis=-1)
    cos_sep = -np.sum(to_sun * r_sat_km, axis=-1) / (d_sun * d_earth)
    separation = np.arccos(np.clip(cos_sep, -1.0, 1.0))
    earth_radius = np.arcsin(np.clip(R_EARTH_KM / d_earth, 0.0, 1.0))
    sun_radius = np.arcsin(np.clip(R_SUN_KM / d_sun, 0.0, 1.0))
    return separation, earth_radius, sun_radius


def visible_sun_fraction(
    separation: FloatArray, earth_radius: FloatArray, sun_radius: FloatArray
) -> FloatArray:
    """Fraction (0..1) of the solar disk not hidden by the Earth.

    The Earth's limb (tens of degrees across) is straight across the Sun's half-degree
    disk, so the hidden part is a circular segment cut at the limb.

    >>> float(visible_sun_fraction(np.array([0.5]), np.array([0.5]), np.array([0.01]))[0])
    0.5
    """
    d = np.clip((separation - earth_radius) / sun_radius, -1.0, 1.0)
    hidden = (np.arccos(d) - d * np.sqrt(1.0 - d * d)) / np.pi
    return np.asarray(np.clip(1.0 - hidden, 0.0, 1.0), dtype=np.float64)


def find_crossings(
    t: FloatArray,
    g: FloatArray,
    func: Callable[[FloatArray], FloatArray],
    tol_s: float = 1e-3,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Times where sampled ``g`` changes sign, refined by bisection on ``func``.

    Returns (times, rising) where ``rising`` is True for a crossing from < 0 to >= 0.
    ``func`` must evaluate g at arbitrary times (vectorised); brackets are sample pairs.
    """
    neg = g < 0.0
    idx = np.flatnonzero(neg[:-1] != neg[1:])
    if idx.size == 0:
        return np.empty(0), np.empty(0, dtype=bool)
    lo, hi = t[idx].copy(), t[idx + 1].copy()
    lo_neg = neg[idx].copy()
    while float(np.max(hi - lo)) > tol_s:
        mid = 0.5 * (lo + hi)
        mid_neg = func(mid) < 0.0
        same = mid_neg == lo_neg
        lo = np.where(same, mid, lo)
        hi = np.where(same, hi, mid)
    return 0.5 * (lo + hi), lo_neg
