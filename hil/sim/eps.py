"""Electrical power system: solar array, Li-ion battery, loads, with an energy ledger.

Each :meth:`Eps.step` holds solar input and load constant over ``dt_s`` and integrates
exactly, splitting the step where the battery fills (the excess is shunted) or empties
(the rest of the load is unserved: a brownout). The ledger closes to rounding error:

    solar_j - served_load_j - shunt_j - charge_loss_j - discharge_loss_j
        == battery energy change

>>> from hil.sim.scenario import ArraySpec, BatterySpec
>>> eps = Eps(ArraySpec(0.06, 0.3), BatterySpec(40.0, soc0=0.5))
>>> s = eps.step(600.0, solar_w=20.0, load_w=5.0)
>>> round(s.battery_wh, 4), round(s.soc, 4)
(22.375, 0.5594)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fsw.power.astro import SOLAR_CONSTANT_W_M2
from hil.sim.errors import WorldError
from hil.sim.scenario import TUMBLING_FACTOR, ArraySpec, BatterySpec

WH_J = 3600.0
# Li-ion cell open-circuit voltage against state of charge (NMC-like, at 20 C).
_OCV_SOC = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
_OCV_V = np.array([3.00, 3.30, 3.45, 3.55, 3.62, 3.68, 3.74, 3.82, 3.90, 3.98, 4.08, 4.20])


def cell_ocv_v(soc: float) -> float:
    """Open-circuit voltage of one cell at ``soc`` (0..1)."""
    return float(np.interp(soc, _OCV_SOC, _OCV_V))


def array_power_w(array: ArraySpec, sun_fraction: float, sun_distance_au: float = 1.0) -> float:
    """Array output (W) for a visible solar fraction and Sun distance."""
    factor = 1.0 if array.attitude == "sun_pointing" else TUMBLING_FACTOR
    flux = SOLAR_CONSTANT_W_M2 / (sun_distance_au * sun_distance_au)
    return (
        flux * array.area_m2 * array.efficiency * factor * (1.0 - array.degradation) * sun_fraction
    )


@dataclass(slots=True, frozen=True)
class EpsState:
    """EPS telemetry after a step (powers are the step's averages)."""

    t_tai: float
    soc: float
    battery_wh: float
    solar_w: float
    load_w: float
    battery_w: float  # + charging, - discharging (battery terminals)
    shunt_w: float
    unserved_w: float
    bus_voltage_v: float

    @property
    def brownout(self) -> bool:
        return self.unserved_w > 0.0


@dataclass(slots=True)
class EnergyLedger:
    """Energy totals since start (J)."""

    solar_j: float = 0.0
    load_j: float = 0.0
    served_load_j: float = 0.0
    shunt_j: float = 0.0
    charge_loss_j: float = 0.0
    discharge_loss_j: float = 0.0
    unserved_j: float = 0.0

    def balance_j(self) -> float:
        """What the battery must have gained according to the flows."""
        return (
            self.solar_j
            - self.served_load_j
            - self.shunt_j
            - self.charge_loss_j
            - self.discharge_loss_j
        )


class Eps:
    """Battery state plus the ledger; stepped by the world (or by a test)."""

    __slots__ = ("_e_j", "_t", "array", "battery", "initial_wh", "last", "ledger")

    def __init__(self, array: ArraySpec, battery: BatterySpec, t_tai: float = 0.0) -> None:
        self.array = array
        self.battery = battery
        self._e_j = battery.soc0 * battery.capacity_wh * WH_J
        self.initial_wh = self._e_j / WH_J
        self._t = t_tai
        self.ledger = EnergyLedger()
        v = battery.cells_series * cell_ocv_v(battery.soc0)
        self.last = EpsState(t_tai, battery.soc0, self.initial_wh, 0.0, 0.0, 0.0, 0.0, 0.0, v)

    @property
    def battery_wh(self) -> float:
        return self._e_j / WH_J

    @property
    def soc(self) -> float:
        return self._e_j / (self.battery.capacity_wh * WH_J)

    def step(self, dt_s: float, solar_w: float, load_w: float) -> EpsState:
        """Advance ``dt_s`` with constant solar input and load; returns the new state."""
        if not (dt_s >= 0.0 and solar_w >= 0.0 and load_w >= 0.0):
            raise WorldError(
                f"EPS step needs dt_s, solar_w, load_w >= 0 (got {dt_s}, {solar_w}, {load_w})"
            )
        bat = self.battery
        e_max = bat.capacity_wh * WH_J
        net = solar_w - load_w
        e0 = self._e_j
        shunt = unserved = c_loss = d_loss = 0.0
        if net >= 0.0:
            rate = bat.charge_efficiency * net
            t_full = (e_max - e0) / rate if rate > 0.0 else np.inf
            t_chg = min(dt_s, t_full)
            self._e_j = e_max if t_full <= dt_s else e0 + rate * dt_s
            shunt = net * (dt_s - t_chg)
            c_loss = (net - rate) * t_chg
        else:
            draw = -net / bat.discharge_efficiency
            t_empty = e0 / draw
            t_dis = min(dt_s, t_empty)
            self._e_j = 0.0 if t_empty <= dt_s else e0 - draw * dt_s
            unserved = -net * (dt_s - t_dis)
            d_loss = (draw + net) * t_dis
        led = self.ledger
        led.solar_j += solar_w * dt_s
        led.load_j += load_w * dt_s
        led.served_load_j += load_w * dt_s - unserved
        led.shunt_j += shunt
        led.charge_loss_j += c_loss
        led.discharge_loss_j += d_loss
        led.unserved_j += unserved
        self._t += dt_s
        soc = self.soc
        battery_w = (self._e_j - e0) / dt_s if dt_s > 0.0 else 0.0
        ocv = bat.cells_series * cell_ocv_v(soc)
        current_a = -battery_w / ocv
        self.last = EpsState(
            t_tai=self._t,
            soc=soc,
            battery_wh=self.battery_wh,
            solar_w=solar_w,
            load_w=load_w,
            battery_w=battery_w,
            shunt_w=shunt / dt_s if dt_s > 0.0 else 0.0,
            unserved_w=unserved / dt_s if dt_s > 0.0 else 0.0,
            bus_voltage_v=ocv - current_a * bat.internal_resistance_ohm,
        )
        return self.last
