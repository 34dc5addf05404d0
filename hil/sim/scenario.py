"""Scenarios: TOML files describing orbit, stations, spacecraft and policies.

Bundled scenarios live in ``hil/scenarios/`` and can be named without a path:

>>> sc = load_scenario("leo550-sso-6u")
>>> sc.name, len(sc.stations), sc.battery.capacity_wh
('leo550-sso-6u', 2, 77.0)
>>> round(sc.array.full_sun_power_w, 1)
24.1

The file format is documented in docs/world.md; every value is checked and a bad one
raises :class:`~hil.sim.errors.ScenarioError` naming the file and the key.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from fsw.core.clock import datetime_to_tai
from fsw.power.astro import SOLAR_CONSTANT_W_M2, parse_tle
from fsw.power.errors import PowerError
from fsw.power.predictor import GroundStation, ImagingPlan, TargetBox
from fsw.power.scheduler import CascadeProfile, PowerMode, SchedulerConfig
from hil.sim.errors import ScenarioError

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
TUMBLING_FACTOR = 0.25  # mean projected area / total area of a convex body (Cauchy)

Attitude = Literal["sun_pointing", "tumbling"]
T = TypeVar("T")


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
    """Loads: bus baseline (nominal), SAFE-mode bus, radio transmitter while on."""

    bus_w: float
    safe_w: float
    radio_tx_w: float


@dataclass(slots=True, frozen=True)
class PayloadSpec:
    """The compute payload: power modes and the measured cascade profile.

    ``true_unsure_rate`` is the simulator's truth (the flight profile holds the
    scheduler's belief, ``profile.unsure_rate``).
    """

    modes: tuple[PowerMode, ...]
    profile: CascadeProfile
    true_unsure_rate: float


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


class _Reader:
    """Typed, located access to a parsed TOML document."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, msg: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {where} {msg}")

    def table(self, doc: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
        v = doc.get(key)
        if not isinstance(v, dict):
            raise self.fail(f"[{where + key}]", "is missing or not a table")
        return cast(Mapping[str, Any], v)

    def num(
        self,
        t: Mapping[str, Any],
        key: str,
        where: str,
        default: float | None = None,
        lo: float = -math.inf,
        hi: float = math.inf,
        lo_open: bool = False,
    ) -> float:
        v = t.get(key, default)
        if v is None:
            raise self.fail(f"[{where}].{key}", "is missing")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self.fail(f"[{where}].{key}", f"must be a number, got {v!r}")
        if v < lo or v > hi or (lo_open and v == lo):
            bound = f"> {lo}" if lo_open else f">= {lo}"
            raise self.fail(f"[{where}].{key}", f"must be {bound} and <= {hi}, got {v}")
        return float(v)

    def get(self, t: Mapping[str, Any], key: str, where: str, kind: type[T], default: T) -> T:
        v = t.get(key, default)
        if not isinstance(v, kind) or (kind is not bool and isinstance(v, bool)):
            raise self.fail(f"[{where}].{key}", f"must be {kind.__name__}, got {v!r}")
        return v

    def text(self, t: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
        v = t.get(key, default)
        if not isinstance(v, str) or not v:
            raise self.fail(f"[{where}].{key}", f"must be non-empty text, got {v!r}")
        return v

    def latencies(self, t: Mapping[str, Any], key: str) -> dict[str, float]:
        v = t.get(key)
        if not isinstance(v, dict) or not v:
            raise self.fail(f"[payload].{key}", "must be a table of mode = seconds")
        return {str(k): self.num(v, k, f"payload.{key}", lo=0.0, lo_open=True) for k in v}


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse scenario TOML text; :class:`ScenarioError` for any problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from exc
    r = _Reader(source)
    try:
        return _build(r, doc)
    except PowerError as exc:
        raise ScenarioError(f"{source}: {exc}") from exc


def _build(r: _Reader, doc: Mapping[str, Any]) -> Scenario:
    name = r.text(doc, "name", "top")
    description = r.get(doc, "description", "top", str, "")
    start = doc.get("start_utc")
    if not isinstance(start, _dt.datetime):
        raise r.fail("start_utc", f"must be a date-time like 2026-11-21T00:00:00Z, got {start!r}")
    if start.tzinfo is None:
        start = start.replace(tzinfo=_dt.UTC)
    start_tai = datetime_to_tai(start)
    duration_s = r.num(doc, "duration_s", "top", lo=60.0, hi=30 * 86400.0)

    orbit = r.table(doc, "orbit")
    tle = orbit.get("tle")
    if not isinstance(tle, list) or len(tle) != 2 or not all(isinstance(x, str) for x in tle):
        raise r.fail("[orbit].tle", "must be a list of the two TLE lines")
    parse_tle(tle[0], tle[1])

    raw_st = doc.get("stations", [])
    if not isinstance(raw_st, list):
        raise r.fail("[[stations]]", "must be an array of tables")
    stations = []
    for i, st in enumerate(raw_st):
        w = f"stations.{i}"
        if not isinstance(st, dict):
            raise r.fail(f"[{w}]", "must be a table")
        stations.append(
            GroundStation(
                name=r.text(st, "name", w),
                lat_deg=r.num(st, "lat_deg", w, lo=-90, hi=90),
                lon_deg=r.num(st, "lon_deg", w, lo=-180, hi=360),
                alt_m=r.num(st, "alt_m", w, 0.0, lo=-500, hi=9000),
                min_elevation_deg=r.num(st, "min_elevation_deg", w, 5.0, lo=-5, hi=89),
            )
        )

    a = r.table(doc, "array")
    attitude = r.text(a, "attitude", "array", "sun_pointing")
    if attitude not in ("sun_pointing", "tumbling"):
        raise r.fail("[array].attitude", f"must be 'sun_pointing' or 'tumbling', got {attitude!r}")
    array = ArraySpec(
        area_m2=r.num(a, "area_m2", "array", lo=0.0, hi=100.0, lo_open=True),
        efficiency=r.num(a, "efficiency", "array", lo=0.0, hi=1.0, lo_open=True),
        attitude=cast(Attitude, attitude),
        degradation=r.num(a, "degradation", "array", 0.0, lo=0.0, hi=0.99),
    )
    b = r.table(doc, "battery")
    battery = BatterySpec(
        capacity_wh=r.num(b, "capacity_wh", "battery", lo=0.0, hi=1e5, lo_open=True),
        soc0=r.num(b, "soc0", "battery", 0.9, lo=0.0, hi=1.0),
        charge_efficiency=r.num(b, "charge_efficiency", "battery", 0.95, lo=0, hi=1, lo_open=True),
        discharge_efficiency=r.num(
            b, "discharge_efficiency", "battery", 0.95, lo=0, hi=1, lo_open=True
        ),
        cells_series=int(r.num(b, "cells_series", "battery", 2, lo=1, hi=64)),
        internal_resistance_ohm=r.num(b, "internal_resistance_ohm", "battery", 0.05, lo=0, hi=10),
    )
    ld = r.table(doc, "loads")
    loads = LoadSpec(
        bus_w=r.num(ld, "bus_w", "loads", lo=0.0, hi=1e4),
        safe_w=r.num(ld, "safe_w", "loads", lo=0.0, hi=1e4),
        radio_tx_w=r.num(ld, "radio_tx_w", "loads", 0.0, lo=0.0, hi=1e4),
    )
    p = r.table(doc, "payload")
    raw_modes = p.get("modes")
    if not isinstance(raw_modes, list) or not raw_modes:
        raise r.fail("[payload].modes", "must be a list of {name, power_w} tables")
    modes = []
    for i, m in enumerate(raw_modes):
        if not isinstance(m, dict):
            raise r.fail(f"[payload].modes[{i}]", "must be a table")
        modes.append(
            PowerMode(
                r.text(m, "name", f"payload.modes.{i}"),
                r.num(m, "power_w", f"payload.modes.{i}", lo=0.0, hi=999.0, lo_open=True),
            )
        )
    unsure = r.num(p, "unsure_rate", "payload", 0.25, lo=0.0, hi=1.0)
    profile = CascadeProfile(
        small_latency_s=r.latencies(p, "small_latency_s"),
        large_latency_s=r.latencies(p, "large_latency_s"),
        accuracy_sure=r.num(p, "accuracy_sure", "payload", 0.97, lo=0.0, hi=1.0),
        accuracy_unsure=r.num(p, "accuracy_unsure", "payload", 0.70, lo=0.0, hi=1.0),
        accuracy_large=r.num(p, "accuracy_large", "payload", 0.92, lo=0.0, hi=1.0),
        unsure_rate=unsure,
    )
    for mode in modes:
        profile.latency_s("small", mode.name)
        profile.latency_s("large", mode.name)
    payload = PayloadSpec(
        tuple(modes), profile, r.num(p, "true_unsure_rate", "payload", unsure, lo=0.0, hi=1.0)
    )

    c = r.table(doc, "camera")
    raw_targets = c.get("targets", [])
    if not isinstance(raw_targets, list):
        raise r.fail("[camera].targets", "must be an array of tables")
    targets = []
    for i, tb in enumerate(raw_targets):
        w = f"camera.targets.{i}"
        if not isinstance(tb, dict):
            raise r.fail(f"[{w}]", "must be a table")
        targets.append(
            TargetBox(
                r.num(tb, "lat_min_deg", w, lo=-90, hi=90),
                r.num(tb, "lat_max_deg", w, lo=-90, hi=90),
                r.num(tb, "lon_min_deg", w, lo=-180, hi=180),
                r.num(tb, "lon_max_deg", w, lo=-180, hi=180),
                r.num(tb, "priority", w, lo=0.0, hi=1e3),
            )
        )
    camera = CameraSpec(
        frame_interval_s=r.num(c, "frame_interval_s", "camera", lo=0.1, hi=86400.0),
        min_sun_elevation_deg=r.num(c, "min_sun_elevation_deg", "camera", 10.0, lo=-90, hi=90),
        land_only=r.get(c, "land_only", "camera", bool, True),
        targets=tuple(targets),
    )
    rd = doc.get("radiation", {})
    if not isinstance(rd, dict):
        raise r.fail("[radiation]", "must be a table")
    saa = rd.get("saa", {})
    if not isinstance(saa, dict):
        raise r.fail("[radiation].saa", "must be a table")
    radiation = RadiationSpec(
        seu_per_bit_day=r.num(rd, "seu_per_bit_day", "radiation", 1e-7, lo=0.0, hi=1.0),
        saa_factor=r.num(rd, "saa_factor", "radiation", 30.0, lo=0.0, hi=1e6),
        saa_lat_min_deg=r.num(saa, "lat_min_deg", "radiation.saa", -50.0, lo=-90, hi=90),
        saa_lat_max_deg=r.num(saa, "lat_max_deg", "radiation.saa", 0.0, lo=-90, hi=90),
        saa_lon_min_deg=r.num(saa, "lon_min_deg", "radiation.saa", -90.0, lo=-180, hi=180),
        saa_lon_max_deg=r.num(saa, "lon_max_deg", "radiation.saa", 40.0, lo=-180, hi=180),
    )
    po = doc.get("policy", {})
    if not isinstance(po, dict):
        raise r.fail("[policy]", "must be a table")
    raw_deadline = po.get("deadline", "next_pass")
    deadline: Literal["next_pass"] | float
    if raw_deadline == "next_pass":
        deadline = "next_pass"
    else:
        deadline = r.num(po, "deadline", "policy", lo=1.0, hi=30 * 86400.0)
    policy = PolicySpec(
        floor_soc=r.num(po, "floor_soc", "policy", 0.7, lo=0.0, hi=0.99),
        margin_wh=r.num(po, "margin_wh", "policy", 0.0, lo=0.0, hi=1e5),
        deadline=deadline,
        min_deadline_s=r.num(po, "min_deadline_s", "policy", 900.0, lo=0.0, hi=30 * 86400.0),
        max_deadline_s=r.num(po, "max_deadline_s", "policy", 21600.0, lo=1.0, hi=30 * 86400.0),
        tick_s=r.num(po, "tick_s", "policy", 60.0, lo=1.0, hi=3600.0),
    )
    sc = Scenario(
        name=name,
        description=description,
        start_tai=start_tai,
        duration_s=duration_s,
        tle_line1=tle[0],
        tle_line2=tle[1],
        stations=tuple(stations),
        array=array,
        battery=battery,
        loads=loads,
        payload=payload,
        camera=camera,
        radiation=radiation,
        policy=policy,
    )
    sc.scheduler_config()  # cross-checks floor vs capacity, modes vs latencies
    return sc


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


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a scenario file, or a bundled scenario by name."""
    path = resolve_scenario_path(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    return parse_scenario(text, str(path.name))


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        f = float(v)
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return repr(f)
    if isinstance(v, str):
        return json.dumps(v)
    raise ScenarioError(f"cannot write {type(v).__name__} to TOML")


def _toml_inline(d: Mapping[str, object]) -> str:
    return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in d.items()) + " }"


def dump_scenario(sc: Scenario) -> str:
    """TOML text for a scenario; ``parse_scenario(dump_scenario(sc)) == sc``."""
    from fsw.core.clock import tai_to_datetime

    start = tai_to_datetime(sc.start_tai).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out = [
        f"name = {_toml_value(sc.name)}",
        f"description = {_toml_value(sc.description)}",
        f"start_utc = {start}",
        f"duration_s = {_toml_value(sc.duration_s)}",
        "",
        "[orbit]",
        f"tle = [{_toml_value(sc.tle_line1)}, {_toml_value(sc.tle_line2)}]",
    ]
    for st in sc.stations:
        out += ["", "[[stations]]"] + [
            f"{k} = {_toml_value(getattr(st, k))}"
            for k in ("name", "lat_deg", "lon_deg", "alt_m", "min_elevation_deg")
        ]
    a, b, ld, p = sc.array, sc.battery, sc.loads, sc.payload
    out += ["", "[array]"] + [
        f"{k} = {_toml_value(getattr(a, k))}"
        for k in ("area_m2", "efficiency", "attitude", "degradation")
    ]
    out += ["", "[battery]"] + [
        f"{k} = {_toml_value(getattr(b, k))}"
        for k in (
            "capacity_wh",
            "soc0",
            "charge_efficiency",
            "discharge_efficiency",
            "cells_series",
            "internal_resistance_ohm",
        )
    ]
    out += ["", "[loads]"] + [
        f"{k} = {_toml_value(getattr(ld, k))}" for k in ("bus_w", "safe_w", "radio_tx_w")
    ]
    prof = p.profile
    out += (
        [
            "",
            "[payload]",
            "modes = ["
            + ", ".join(_toml_inline({"name": m.name, "power_w": m.power_w}) for m in p.modes)
            + "]",
            f"small_latency_s = {_toml_inline(dict(prof.small_latency_s))}",
            f"large_latency_s = {_toml_inline(dict(prof.large_latency_s))}",
        ]
        + [
            f"{k} = {_toml_value(getattr(prof, k))}"
            for k in ("accuracy_sure", "accuracy_unsure", "accuracy_large", "unsure_rate")
        ]
        + [f"true_unsure_rate = {_toml_value(p.true_unsure_rate)}"]
    )
    cam = sc.camera
    out += ["", "[camera]"] + [
        f"{k} = {_toml_value(getattr(cam, k))}"
        for k in ("frame_interval_s", "min_sun_elevation_deg", "land_only")
    ]
    for tb in cam.targets:
        out += ["", "[[camera.targets]]"] + [
            f"{k} = {_toml_value(getattr(tb, k))}"
            for k in ("lat_min_deg", "lat_max_deg", "lon_min_deg", "lon_max_deg", "priority")
        ]
    r = sc.radiation
    saa = {
        "lat_min_deg": r.saa_lat_min_deg,
        "lat_max_deg": r.saa_lat_max_deg,
        "lon_min_deg": r.saa_lon_min_deg,
        "lon_max_deg": r.saa_lon_max_deg,
    }
    out += [
        "",
        "[radiation]",
        f"seu_per_bit_day = {_toml_value(r.seu_per_bit_day)}",
        f"saa_factor = {_toml_value(r.saa_factor)}",
        f"saa = {_toml_inline(saa)}",
    ]
    po = sc.policy
    out += ["", "[policy]"] + [
        f"{k} = {_toml_value(getattr(po, k))}"
        for k in (
            "floor_soc",
            "margin_wh",
            "deadline",
            "min_deadline_s",
            "max_deadline_s",
            "tick_s",
        )
    ]
    return "\n".join(out) + "\n"
