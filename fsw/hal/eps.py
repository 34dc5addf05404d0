"""The ``eps`` component: battery, array and bus telemetry from the HAL's EPS sensor.

Once a second it reads :class:`~fsw.hal.interfaces.EpsSensor` and publishes the state
of charge, battery energy, solar input, load and bus voltage. ``valid`` tells whether the
sensor answered; when it did not, the numbers stay at their last good values (zero
before the first one) and ``SENSOR_LOST`` is raised once.

>>> from fsw.app import build_flight
>>> fs = build_flight()                  # no HAL: no EPS sensor
>>> _ = fs.step(2.0)
>>> fs.telemetry("eps.valid"), fs.telemetry("eps.soc_pct")
(False, 0.0)
"""

from __future__ import annotations

from typing import Any

from fsw.core import Arg, Channel, Component, Event, Param, Severity, command
from fsw.hal.interfaces import EpsReading, EpsSensor, NoEps


class Eps(Component):
    """Electrical power system telemetry (battery, array, bus) and low-charge warnings."""

    NAME = "eps"
    DESCRIPTION = "Battery, solar array and bus telemetry from the EPS sensor."
    TELEMETRY = (
        Channel("valid", "bool", description="the EPS sensor answered at the last sample", id=4),
        Channel(
            "soc_pct",
            "f32",
            units="%",
            description="battery state of charge",
            yellow=(75.0, None),
            red=(70.0, None),
            valid=(0.0, 100.0),
            id=5,
        ),
        Channel("battery_wh", "f32", units="Wh", description="energy in the battery", id=6),
        Channel("solar_w", "f32", units="W", description="solar array output", id=7),
        Channel("load_w", "f32", units="W", description="total bus load", id=8),
        Channel("bus_voltage_v", "f32", units="V", description="battery bus voltage", id=9),
        Channel("sensor_failures", "u32", description="samples the sensor did not answer", id=10),
        Channel(
            "min_soc_pct",
            "f32",
            units="%",
            description="lowest valid state of charge since boot or RESET_COUNTERS",
            valid=(0.0, 100.0),
            id=11,
        ),
    )
    EVENTS = (
        Event(
            "SENSOR_LOST", Severity.HIGH, "EPS sensor not answering: battery state unknown", id=1
        ),
        Event("SENSOR_RESTORED", Severity.INFO, "EPS sensor answering again", id=2),
        Event(
            "SOC_LOW",
            Severity.MEDIUM,
            "battery at {soc_pct:.1f} % (warning below {limit_pct:.1f} %)",
            (Arg("soc_pct", "f32", units="%"), Arg("limit_pct", "f32", units="%")),
            id=3,
        ),
        Event(
            "SOC_RECOVERED",
            Severity.INFO,
            "battery back at {soc_pct:.1f} %",
            (Arg("soc_pct", "f32", units="%"),),
            id=4,
        ),
    )
    PARAMETERS = (
        Param(
            "low_soc_pct",
            "f32",
            default=72.0,
            min=0.0,
            max=100.0,
            units="%",
            description="SOC_LOW is raised below this (re-armed 2 % above it)",
            id=1,
        ),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 10.0

    def __init__(self, sensor: EpsSensor | None = None, name: str | None = None) -> None:
        super().__init__(name)
        self.sensor: EpsSensor = sensor if sensor is not None else NoEps()

    def on_init(self) -> None:
        self._lost = False
        self._low = False
        self._min_soc_pct = 100.0
        self.last: EpsReading | None = None

    def on_tick(self, rate_group: str) -> None:
        r = self.sensor.read()
        self.tlm("valid", r.valid)
        if not r.valid:
            self.tlm_inc("sensor_failures")
            if not self._lost:
                self._lost = True
                self.event("SENSOR_LOST")
            return
        if self._lost:
            self._lost = False
            self.event("SENSOR_RESTORED")
        self.last = r
        soc_pct = 100.0 * r.soc
        self.tlm("soc_pct", soc_pct)
        self.tlm("battery_wh", r.battery_wh)
        self.tlm("solar_w", r.solar_w)
        self.tlm("load_w", r.load_w)
        self.tlm("bus_voltage_v", r.bus_voltage_v)
        self._min_soc_pct = min(self._min_soc_pct, soc_pct)
        self.tlm("min_soc_pct", self._min_soc_pct)
        limit = float(self.param("low_soc_pct"))
        if not self._low and soc_pct < limit:
            self._low = True
            self.event("SOC_LOW", soc_pct, limit)
        elif self._low and soc_pct >= limit + 2.0:
            self._low = False
            self.event("SOC_RECOVERED", soc_pct)

    def on_param_changed(self, name: str, value: Any) -> None:
        if name == "low_soc_pct":
            self._low = False  # re-evaluated at the next sample

    @command(
        "RESET_COUNTERS",
        opcode=0,
        description="Zero the command counters, sensor failures and the minimum charge.",
    )
    def reset_counters(self) -> None:
        super().reset_counters()
        self.tlm("sensor_failures", 0)
        self._min_soc_pct = 100.0 if self.last is None else 100.0 * self.last.soc


__all__ = ["Eps"]
