"""The schema of a scenario file (``hil/scenarios/*.toml``): every table and key, its type
and its range, in one place.

:func:`fsw.configfile.load_toml` reads a file into :class:`ScenarioFile`; a wrong type,
a missing or unknown key or a value out of range is a
:class:`~fsw.configfile.ConfigError` naming the file and the dotted key.
:mod:`hil.sim.scenario` turns the file into a :class:`~hil.sim.scenario.Scenario` (and
back, for ``dump_scenario``). The optional ``[sitl]`` table is read by
:mod:`hil.sim.sitl_config`; the world ignores it.

>>> from fsw.configfile import decode_toml
>>> text = (SCENARIO_DIR / "sitl-short.toml").read_text()
>>> f = decode_toml(text.replace("bus_w = 5.0", "bus_w = -5.0"), ScenarioFile, "short.toml")
Traceback (most recent call last):
...
fsw.configfile.ConfigError: short.toml: loads.bus_w: expected a number >= 0 and <= 10000, got -5.0
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from fsw.power.astro import parse_tle
from fsw.power.errors import PowerError
from fsw.power.scheduler import CascadeProfile
from hil.sim.errors import ScenarioError
from hil.sim.profiles import frame_latencies_s, load_board

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DAY_S = 86400.0

Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]
Efficiency = Annotated[float, Meta(gt=0.0, le=1.0)]
Power = Annotated[float, Meta(ge=0.0, le=1e4)]
Lat = Annotated[float, Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, Meta(ge=-180.0, le=180.0)]
Name = Annotated[str, Meta(min_length=1)]
Latencies = Annotated[
    dict[str, Annotated[float, Meta(gt=0.0, le=DAY_S)]],
    Meta(min_length=1, description="a table of mode name = seconds > 0"),
]
Probability = Annotated[float, Meta(ge=0.0, lt=1.0)]


class _Table(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A TOML table of a scenario file: unknown keys are errors, defaults are not written."""


class OrbitTable(_Table, frozen=True):
    """``[orbit]``: the two-line element set (checked by sgp4 as the flight checks it)."""

    tle: tuple[str, str]

    def __post_init__(self) -> None:
        try:
            parse_tle(*self.tle)
        except PowerError as exc:
            raise ValueError(str(exc)) from None


class StationTable(_Table, frozen=True):
    """``[[stations]]``: a ground station and its elevation mask."""

    name: Name
    lat_deg: Lat
    lon_deg: Annotated[float, Meta(ge=-180.0, le=360.0)]
    alt_m: Annotated[float, Meta(ge=-500.0, le=9000.0)] = 0.0
    min_elevation_deg: Annotated[float, Meta(ge=-5.0, le=89.0)] = 5.0


class ArrayTable(_Table, frozen=True):
    """``[array]``: solar cells."""

    area_m2: Annotated[float, Meta(gt=0.0, le=100.0)]
    efficiency: Efficiency
    attitude: Literal["sun_pointing", "tumbling"] = "sun_pointing"
    degradation: Annotated[float, Meta(ge=0.0, le=0.99)] = 0.0


class BatteryTable(_Table, frozen=True):
    """``[battery]``: the Li-ion pack."""

    capacity_wh: Annotated[float, Meta(gt=0.0, le=1e5)]
    soc0: Fraction = 0.9
    charge_efficiency: Efficiency = 0.95
    discharge_efficiency: Efficiency = 0.95
    cells_series: Annotated[int, Meta(ge=1, le=64)] = 2
    internal_resistance_ohm: Annotated[float, Meta(ge=0.0, le=10.0)] = 0.05


class LoadsTable(_Table, frozen=True):
    """``[loads]``: bus (nominal and SAFE) and the transmitter while it is on."""

    bus_w: Power
    safe_w: Power
    radio_tx_w: Power = 0.0
    bus_peak_w: Power | None = None  # highest NOMINAL bus load (energy guard); default bus_w


class ModeTable(_Table, frozen=True):
    """One of ``[payload].modes``: a power mode's name and draw."""

    name: Name
    power_w: Annotated[float, Meta(gt=0.0, le=999.0)]


class PayloadTable(_Table, frozen=True):
    """``[payload]``: what a frame is, the payload computer and the model cascade.

    A frame is a scene of ``tiles_per_frame`` tiles of ``tile_px`` pixels. Its latency and
    energy come from a board profile (``board``: a name in hil/profiles/boards.toml, or a
    profile file ``gnomon hil selftest --profile-out`` wrote), which also gives the power
    modes. Without ``board``, ``modes`` and per-frame ``small_latency_s`` and
    ``large_latency_s`` are given directly (synthetic studies; say where they come from in
    ``latency_source``).
    """

    board: Name | None = None
    tiles_per_frame: Annotated[int, Meta(ge=1, le=65536)] = 1
    tile_px: Annotated[int, Meta(ge=8, le=4096)] = 64
    modes: tuple[ModeTable, ...] | None = None
    small_latency_s: Latencies | None = None
    large_latency_s: Latencies | None = None
    latency_source: str | None = None
    accuracy_sure: Fraction = 0.97
    accuracy_unsure: Fraction = 0.70
    accuracy_large: Fraction = 0.92
    unsure_rate: Fraction = 0.25
    true_unsure_rate: Fraction | None = None  # the simulator's truth; default: unsure_rate

    def mode_tables(self) -> tuple[ModeTable, ...]:
        """The power modes: the board profile's, or the ones written here."""
        if self.board is not None:
            board = load_board(self.board)
            return tuple(ModeTable(m.name, m.power_w) for m in board.modes)
        return self.modes or ()

    def profile(self) -> CascadeProfile:
        """The flight's cascade profile (checked: every mode has both latencies)."""
        if self.board is not None:
            small, large = frame_latencies_s(load_board(self.board), self.tiles_per_frame)
        else:
            small, large = dict(self.small_latency_s or {}), dict(self.large_latency_s or {})
        profile = CascadeProfile(
            small_latency_s=small,
            large_latency_s=large,
            accuracy_sure=self.accuracy_sure,
            accuracy_unsure=self.accuracy_unsure,
            accuracy_large=self.accuracy_large,
            unsure_rate=self.unsure_rate,
        )
        for mode in self.mode_tables():
            profile.latency_s("small", mode.name)
            profile.latency_s("large", mode.name)
        return profile

    def __post_init__(self) -> None:
        explicit = (self.modes, self.small_latency_s, self.large_latency_s)
        if self.board is not None and any(x is not None for x in explicit):
            raise ValueError(
                "give either board (latency and power from a board profile) or modes with "
                "small_latency_s and large_latency_s, not both"
            )
        if self.board is None and any(x is None for x in explicit):
            raise ValueError(
                "missing: board = a board profile (hil/profiles/boards.toml), or modes, "
                "small_latency_s and large_latency_s"
            )
        try:
            self.profile()
        except (PowerError, ScenarioError) as exc:
            raise ValueError(str(exc)) from None


class TargetTable(_Table, frozen=True):
    """``[[camera.targets]]``: a box whose frames carry a priority."""

    lat_min_deg: Lat
    lat_max_deg: Lat
    lon_min_deg: Lon
    lon_max_deg: Lon
    priority: Annotated[float, Meta(ge=0.0, le=1e3)]


class CameraTable(_Table, frozen=True):
    """``[camera]``: when frames are taken, and the target boxes."""

    frame_interval_s: Annotated[float, Meta(ge=0.1, le=DAY_S)]
    min_sun_elevation_deg: Lat = 10.0
    land_only: bool = True
    targets: tuple[TargetTable, ...] = ()


class SaaTable(_Table, frozen=True):
    """``[radiation].saa``: the South Atlantic Anomaly box."""

    lat_min_deg: Lat = -50.0
    lat_max_deg: Lat = 0.0
    lon_min_deg: Lon = -90.0
    lon_max_deg: Lon = 40.0


class RadiationTable(_Table, frozen=True):
    """``[radiation]``: upsets per bit per day, more in the SAA."""

    seu_per_bit_day: Fraction = 1e-7
    saa_factor: Annotated[float, Meta(ge=0.0, le=1e6)] = 30.0
    saa: SaaTable = msgspec.field(default_factory=SaaTable)


class PolicyTable(_Table, frozen=True):
    """``[policy]``: battery floor, deadlines and the scheduler's tick."""

    floor_soc: Annotated[float, Meta(ge=0.0, le=0.99)] = 0.7
    margin_wh: Annotated[float, Meta(ge=0.0, le=1e5)] = 0.0
    deadline: Literal["next_pass"] | Annotated[float, Meta(ge=1.0, le=30 * DAY_S)] = "next_pass"
    min_deadline_s: Annotated[float, Meta(ge=0.0, le=30 * DAY_S)] = 900.0
    max_deadline_s: Annotated[float, Meta(ge=1.0, le=30 * DAY_S)] = 21600.0
    tick_s: Annotated[float, Meta(ge=1.0, le=3600.0)] = 60.0


class SitlTable(_Table, frozen=True):
    """``[sitl]``: how a SITL run flies the scenario (docs/sitl.md); unset keys take
    :class:`~hil.sim.sitl_config.SitlConfig`'s defaults."""

    seu_acceleration: Annotated[float, Meta(ge=0.0, le=1e6)] | None = None
    start_offset_s: Annotated[float, Meta(ge=0.0, le=30 * DAY_S)] | None = None
    drain_s: Annotated[float, Meta(ge=0.0, le=DAY_S)] | None = None
    step_s: Annotated[float, Meta(ge=0.1, le=10.0)] | None = None
    uplink_ber: Probability | None = None
    downlink_ber: Probability | None = None
    uplink_drop: Probability | None = None
    downlink_drop: Probability | None = None
    downlink_bps: Annotated[float, Meta(gt=0.0, le=1e10)] | None = None
    threshold_a: Fraction | None = None
    threshold_b: Fraction | None = None
    retry_after_s: Annotated[float, Meta(gt=0.0, le=DAY_S)] | None = None
    max_attempts: Annotated[int, Meta(ge=1, le=100)] | None = None


class WalkerTable(_Table, frozen=True):
    """``[constellation.walker]``: a Walker pattern i:t/p/f of circular orbits.

    ``satellites`` (t) in ``planes`` (p) planes whose ascending nodes are spread evenly
    over ``raan_spread_deg`` (360: a Walker delta) from ``raan_deg``; ``phasing`` (f)
    shifts plane k's satellites by k * f * 360 / t degrees of mean anomaly.
    """

    satellites: Annotated[int, Meta(ge=1, le=64)]
    altitude_km: Annotated[float, Meta(ge=200.0, le=2000.0)]
    inclination_deg: Annotated[float, Meta(ge=0.0, le=180.0)]
    planes: Annotated[int, Meta(ge=1, le=64)] = 1
    phasing: Annotated[int, Meta(ge=0, le=63)] = 0
    raan_deg: Annotated[float, Meta(ge=0.0, lt=360.0)] = 0.0
    raan_spread_deg: Annotated[float, Meta(gt=0.0, le=360.0)] = 360.0

    def __post_init__(self) -> None:
        if self.satellites % self.planes:
            raise ValueError(f"{self.satellites} satellites do not fill {self.planes} planes")
        if self.phasing >= self.planes:
            raise ValueError(f"phasing {self.phasing} must be below planes ({self.planes})")


class SatelliteTable(_Table, frozen=True):
    """``[[constellation.satellites]]``: one spacecraft, its name, SCID and TLE."""

    name: Name
    scid: Annotated[int, Meta(ge=0, le=0x3FF)]
    tle: tuple[str, str]

    def __post_init__(self) -> None:
        try:
            parse_tle(*self.tle)
        except PowerError as exc:
            raise ValueError(str(exc)) from None


class ConstellationTable(_Table, frozen=True):
    """``[constellation]``: N spacecraft flying the scenario, sharing its stations
    (docs/campaigns.md). Either a ``walker`` pattern (SCIDs from ``scid_first``) or a
    list of ``satellites``, each with its own TLE and SCID."""

    walker: WalkerTable | None = None
    satellites: tuple[SatelliteTable, ...] = ()
    scid_first: Annotated[int, Meta(ge=0, le=0x3FF)] = 100
    window_s: Annotated[float, Meta(ge=1.0, le=3600.0)] = 60.0

    def __post_init__(self) -> None:
        if (self.walker is None) == (not self.satellites):
            raise ValueError("give either a walker pattern or a list of satellites")
        scids = [s.scid for s in self.satellites]
        if len(set(scids)) != len(scids):
            raise ValueError("two satellites share a SCID")
        names = [s.name for s in self.satellites]
        if len(set(names)) != len(names):
            raise ValueError("two satellites share a name")
        if self.walker is not None and self.scid_first + self.walker.satellites - 1 > 0x3FF:
            raise ValueError("the walker's SCIDs run past 1023")


class ScenarioFile(_Table, frozen=True):
    """A whole scenario file, as written (see docs/world.md)."""

    name: Name
    start_utc: _dt.datetime
    duration_s: Annotated[float, Meta(ge=60.0, le=30 * DAY_S)]
    orbit: OrbitTable
    array: ArrayTable
    battery: BatteryTable
    loads: LoadsTable
    payload: PayloadTable
    camera: CameraTable
    description: str = ""
    stations: tuple[StationTable, ...] = ()
    radiation: RadiationTable = msgspec.field(default_factory=RadiationTable)
    policy: PolicyTable = msgspec.field(default_factory=PolicyTable)
    sitl: SitlTable | None = None
    constellation: ConstellationTable | None = None


__all__ = [
    "SCENARIO_DIR",
    "ArrayTable",
    "BatteryTable",
    "CameraTable",
    "ConstellationTable",
    "LoadsTable",
    "ModeTable",
    "OrbitTable",
    "PayloadTable",
    "PolicyTable",
    "RadiationTable",
    "SaaTable",
    "SatelliteTable",
    "ScenarioFile",
    "SitlTable",
    "StationTable",
    "TargetTable",
    "WalkerTable",
]
