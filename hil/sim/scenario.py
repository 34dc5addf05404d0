"""Scenarios: TOML files describing orbit, stations, spacecraft and policies.

Bundled scenarios live in ``hil/scenarios/`` and can be named without a path:

>>> sc = load_scenario("leo550-sso-6u")
>>> sc.name, len(sc.stations), sc.battery.capacity_wh
('leo550-sso-6u', 2, 77.0)
>>> round(sc.array.full_sun_power_w, 1)
24.1

The file format is documented in docs/world.md and is one schema,
:class:`~hil.sim.scenario_file.ScenarioFile`; every value is checked and a bad one raises
:class:`~hil.sim.errors.ScenarioError` naming the file and the dotted key:

>>> try:
...     parse_scenario("name = 'x'", "mine.toml")
... except ScenarioError as exc:
...     print(exc)
mine.toml: start_utc: missing: expected a date-time like 2026-11-21T00:00:00Z
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from fsw.configfile import ConfigError, decode_toml, encode_toml, load_toml
from fsw.core.clock import datetime_to_tai
from fsw.power.astro import SOLAR_CONSTANT_W_M2
from fsw.power.errors import PowerError
from fsw.power.predictor import GroundStation, ImagingPlan, TargetBox
from fsw.power.scheduler import CascadeProfile, PowerMode, SchedulerConfig
from hil.sim.errors import ScenarioError
from hil.sim.profiles import BoardProfile, load_board
from hil.sim.scenario_file import (
    SCENARIO_DIR,
    ArrayTable,
    BatteryTable,
    CameraTable,
    LoadsTable,
    ModeTable,
    OrbitTable,
    PayloadTable,
    PolicyTable,
    RadiationTable,
    SaaTable,
    ScenarioFile,
    SitlTable,
    StationTable,
    TargetTable,
)

TUMBLING_FACTOR = 0.25  # mean projected area / total area of a convex body (Cauchy)

Attitude = Literal["sun_pointing", "tumbling"]


@dataclass(slots=True, frozen=True)
class ArraySpec:
    """Solar cells: total cell area, efficiency, attitude and lost output (0..1)."""

    area_m2: float
    efficiency: float
    attitude: Attitude = "sun_pointing"
    degradation: float = 0.0

    @property
    def full_sun_power_w(self) -> float:
        """Output in full sun at 1 AU (tumbling: averaged over orientations)."""
        factor = 1.0 if self.attitude == "sun_pointing" else TUMBLING_FACTOR
        return (
            SOLAR_CONSTANT_W_M2 * self.area_m2 * self.efficiency * factor * (1 - self.degradation)
        )


@dataclass(slots=True, frozen=True)
class BatterySpec:
    """Li-ion pack: capacity, initial state of charge, efficiencies, cells in series."""

    capacity_wh: float
    soc0: float = 0.9
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    cells_series: int = 2
    internal_resistance_ohm: float = 0.05


@dataclass(slots=True, frozen=True)
class LoadSpec:
    """Loads: bus baseline (nominal), SAFE-mode bus, radio transmitter while on, and the
    highest nominal bus load the energy guard budgets with (None: ``bus_w``)."""

    bus_w: float
    safe_w: float
    radio_tx_w: float
    bus_peak_w: float | None = None


@dataclass(slots=True, frozen=True)
class PayloadSpec:
    """The compute payload: power modes and the cascade profile (per-frame latencies).

    ``true_unsure_rate`` is the simulator's truth (the flight profile holds the
    scheduler's belief, ``profile.unsure_rate``). A frame is ``tiles_per_frame`` tiles of
    ``tile_px`` pixels; ``board`` is the board profile its latencies and powers come from
    (None: given directly, ``latency_source`` says from where).
    """

    modes: tuple[PowerMode, ...]
    profile: CascadeProfile
    true_unsure_rate: float
    tiles_per_frame: int = 1
    tile_px: int = 64
    board: BoardProfile | None = None
    board_ref: str | None = None
    latency_source: str | None = None


@dataclass(slots=True, frozen=True)
class CameraSpec:
    """Frames every ``frame_interval_s`` over land in daylight; target boxes weight them."""

    frame_interval_s: float
    min_sun_elevation_deg: float = 10.0
    land_only: bool = True
    targets: tuple[TargetBox, ...] = ()


@dataclass(slots=True, frozen=True)
class RadiationSpec:
    """Single-event upsets per bit per day, multiplied by ``saa_factor`` in the SAA box."""

    seu_per_bit_day: float
    saa_factor: float = 30.0
    saa_lat_min_deg: float = -50.0
    saa_lat_max_deg: float = 0.0
    saa_lon_min_deg: float = -90.0
    saa_lon_max_deg: float = 40.0


@dataclass(slots=True, frozen=True)
class PolicySpec:
    """Scheduler parameters: battery floor, deadlines and decision tick."""

    floor_soc: float = 0.7
    margin_wh: float = 0.0
    deadline: Literal["next_pass"] | float = "next_pass"
    min_deadline_s: float = 900.0
    max_deadline_s: float = 6.0 * 3600.0
    tick_s: float = 60.0


@dataclass(slots=True, frozen=True)
class Scenario:
    """One complete scenario (see docs/world.md for the TOML keys)."""

    name: str
    description: str
    start_tai: float
    duration_s: float
    tle_line1: str
    tle_line2: str
    stations: tuple[GroundStation, ...]
    array: ArraySpec
    battery: BatterySpec
    loads: LoadSpec
    payload: PayloadSpec
    camera: CameraSpec
    radiation: RadiationSpec
    policy: PolicySpec

    @property
    def end_tai(self) -> float:
        return self.start_tai + self.duration_s

    def imaging_plan(self, end_tai: float = math.inf) -> ImagingPlan:
        """The camera's plan (flight and world share it), optionally cut at ``end_tai``."""
        return ImagingPlan(
            frame_interval_s=self.camera.frame_interval_s,
            start_tai=self.start_tai,
            end_tai=end_tai,
            min_sun_elevation_deg=self.camera.min_sun_elevation_deg,
            land_only=self.camera.land_only,
            targets=self.camera.targets,
        )

    def scheduler_config(self, *, know_degradation: bool = False) -> SchedulerConfig:
        """What the flight scheduler is told: nominal (undegraded) array output unless
        ``know_degradation``; it learns the truth from solar telemetry in flight."""
        arr = self.array
        nominal = (
            arr.full_sun_power_w
            if know_degradation
            else ArraySpec(arr.area_m2, arr.efficiency, arr.attitude, 0.0).full_sun_power_w
        )
        return SchedulerConfig(
            battery_capacity_wh=self.battery.capacity_wh,
            bus_power_w=self.loads.bus_w,
            radio_power_w=self.loads.radio_tx_w,
            array_power_w=nominal,
            modes=self.payload.modes,
            profile=self.payload.profile,
            floor_soc=self.policy.floor_soc,
            margin_wh=self.policy.margin_wh,
            safe_power_w=self.loads.safe_w,
            charge_efficiency=self.battery.charge_efficiency,
            discharge_efficiency=self.battery.discharge_efficiency,
            tick_s=self.policy.tick_s,
        )


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse scenario TOML text; :class:`ScenarioError` naming ``source`` and the key."""
    try:
        return scenario_from_file(decode_toml(text, ScenarioFile, source), source)
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None


def read_scenario_file(name_or_path: str | Path) -> ScenarioFile:
    """A scenario file (or a bundled scenario by name) as written, schema-checked."""
    try:
        return load_toml(resolve_scenario_path(name_or_path), ScenarioFile)
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a scenario file, or a bundled scenario by name."""
    path = resolve_scenario_path(name_or_path)
    return scenario_from_file(read_scenario_file(path), path.name)


def scenario_from_file(f: ScenarioFile, source: str = "<scenario>") -> Scenario:
    """The :class:`Scenario` a schema-checked file describes; the checks that span tables
    (the flight scheduler's: floor against capacity, modes against latencies) say
    :class:`ScenarioError`."""
    start = f.start_utc if f.start_utc.tzinfo is not None else f.start_utc.replace(tzinfo=_dt.UTC)
    try:
        sc = Scenario(
            name=f.name,
            description=f.description,
            start_tai=datetime_to_tai(start),
            duration_s=f.duration_s,
            tle_line1=f.orbit.tle[0],
            tle_line2=f.orbit.tle[1],
            stations=tuple(GroundStation(**msgspec.structs.asdict(st)) for st in f.stations),
            array=ArraySpec(**msgspec.structs.asdict(f.array)),
            battery=BatterySpec(**msgspec.structs.asdict(f.battery)),
            loads=LoadSpec(**msgspec.structs.asdict(f.loads)),
            payload=_payload(f.payload),
            camera=_camera(f.camera),
            radiation=_radiation(f.radiation),
            policy=PolicySpec(**msgspec.structs.asdict(f.policy)),
        )
        sc.scheduler_config()  # cross-checks floor vs capacity, modes vs latencies
    except PowerError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    return sc


def _payload(p: PayloadTable) -> PayloadSpec:
    true_rate = p.unsure_rate if p.true_unsure_rate is None else p.true_unsure_rate
    return PayloadSpec(
        tuple(PowerMode(m.name, m.power_w) for m in p.mode_tables()),
        p.profile(),
        true_rate,
        tiles_per_frame=p.tiles_per_frame,
        tile_px=p.tile_px,
        board=load_board(p.board) if p.board is not None else None,
        board_ref=p.board,
        latency_source=p.latency_source,
    )


def _camera(c: CameraTable) -> CameraSpec:
    return CameraSpec(
        frame_interval_s=c.frame_interval_s,
        min_sun_elevation_deg=c.min_sun_elevation_deg,
        land_only=c.land_only,
        targets=tuple(TargetBox(**msgspec.structs.asdict(t)) for t in c.targets),
    )


def _radiation(r: RadiationTable) -> RadiationSpec:
    saa = r.saa
    return RadiationSpec(
        seu_per_bit_day=r.seu_per_bit_day,
        saa_factor=r.saa_factor,
        saa_lat_min_deg=saa.lat_min_deg,
        saa_lat_max_deg=saa.lat_max_deg,
        saa_lon_min_deg=saa.lon_min_deg,
        saa_lon_max_deg=saa.lon_max_deg,
    )


def scenario_to_file(sc: Scenario, sitl: SitlTable | None = None) -> ScenarioFile:
    """The file that describes ``sc`` (the inverse of :func:`scenario_from_file`)."""
    from fsw.core.clock import tai_to_datetime

    p, prof, r = sc.payload, sc.payload.profile, sc.radiation
    return ScenarioFile(
        name=sc.name,
        description=sc.description,
        start_utc=tai_to_datetime(sc.start_tai),
        duration_s=sc.duration_s,
        orbit=OrbitTable((sc.tle_line1, sc.tle_line2)),
        stations=tuple(StationTable(**dataclasses.asdict(st)) for st in sc.stations),
        array=ArrayTable(**dataclasses.asdict(sc.array)),
        battery=BatteryTable(**dataclasses.asdict(sc.battery)),
        loads=LoadsTable(**dataclasses.asdict(sc.loads)),
        payload=PayloadTable(
            board=p.board_ref,
            tiles_per_frame=p.tiles_per_frame,
            tile_px=p.tile_px,
            modes=None if p.board_ref else tuple(ModeTable(m.name, m.power_w) for m in p.modes),
            small_latency_s=None if p.board_ref else dict(prof.small_latency_s),
            large_latency_s=None if p.board_ref else dict(prof.large_latency_s),
            latency_source=p.latency_source,
            accuracy_sure=prof.accuracy_sure,
            accuracy_unsure=prof.accuracy_unsure,
            accuracy_large=prof.accuracy_large,
            unsure_rate=prof.unsure_rate,
            true_unsure_rate=p.true_unsure_rate,
        ),
        camera=CameraTable(
            frame_interval_s=sc.camera.frame_interval_s,
            min_sun_elevation_deg=sc.camera.min_sun_elevation_deg,
            land_only=sc.camera.land_only,
            targets=tuple(TargetTable(**dataclasses.asdict(t)) for t in sc.camera.targets),
        ),
        radiation=RadiationTable(
            seu_per_bit_day=r.seu_per_bit_day,
            saa_factor=r.saa_factor,
            saa=SaaTable(
                r.saa_lat_min_deg, r.saa_lat_max_deg, r.saa_lon_min_deg, r.saa_lon_max_deg
            ),
        ),
        policy=PolicyTable(**dataclasses.asdict(sc.policy)),
        sitl=sitl,
    )


def dump_scenario(sc: Scenario) -> str:
    """TOML text for a scenario (tomli-w); ``parse_scenario(dump_scenario(sc)) == sc``."""
    return encode_toml(scenario_to_file(sc))


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A path as given, or a bundled scenario by name (with or without ``.toml``)."""
    p = Path(name_or_path)
    if p.exists():
        return p
    stem = p.name[:-5] if p.name.endswith(".toml") else p.name
    bundled = SCENARIO_DIR / f"{stem}.toml"
    if p.parent == Path(".") and bundled.exists():
        return bundled
    names = ", ".join(bundled_scenarios()) or "none"
    raise ScenarioError(f"scenario {str(name_or_path)!r} not found (bundled: {names})")


def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped in hil/scenarios/."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))
