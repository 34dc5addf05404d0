"""EPS: exact energy balance, clamping at full and empty, voltage, array output."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.sim.eps import Eps, array_power_w, cell_ocv_v
from hil.sim.errors import WorldError
from hil.sim.scenario import ArraySpec, BatterySpec

ARRAY = ArraySpec(0.06, 0.3)


def _eps(soc0: float = 0.5, cap: float = 40.0) -> Eps:
    return Eps(ARRAY, BatterySpec(cap, soc0=soc0, charge_efficiency=0.9, discharge_efficiency=0.8))


def test_known_answer_charge_and_discharge() -> None:
    eps = _eps()
    s = eps.step(3600.0, solar_w=15.0, load_w=5.0)  # +10 W for an hour at 90 %
    assert s.battery_wh == pytest.approx(29.0)
    s = eps.step(1800.0, solar_w=0.0, load_w=8.0)  # -8 W for half an hour at 80 %
    assert s.battery_wh == pytest.approx(24.0)
    assert s.soc == pytest.approx(0.6)
    assert s.battery_w == pytest.approx(-10.0)


def test_full_battery_shunts_the_excess_exactly() -> None:
    eps = _eps(soc0=0.95)  # 2 Wh to full
    s = eps.step(3600.0, solar_w=14.0, load_w=4.0)  # 9 W into the cells: full after 800 s
    assert s.soc == 1.0
    assert s.shunt_w * 3600.0 == pytest.approx(10.0 * (3600.0 - 800.0))
    assert eps.ledger.balance_j() == pytest.approx(2.0 * 3600.0)


def test_empty_battery_reports_unserved_load() -> None:
    eps = _eps(soc0=0.01)  # 0.4 Wh
    s = eps.step(3600.0, solar_w=0.0, load_w=4.0)  # draws 5 W: empty after 288 s
    assert s.soc == 0.0
    assert s.brownout
    assert eps.ledger.unserved_j == pytest.approx(4.0 * (3600.0 - 288.0))


@settings(max_examples=200, deadline=None)
@given(
    soc0=st.floats(0.0, 1.0),
    steps=st.lists(
        st.tuples(st.floats(0.1, 5000.0), st.floats(0.0, 60.0), st.floats(0.0, 60.0)),
        min_size=1,
        max_size=40,
    ),
)
def test_energy_is_conserved_and_soc_stays_in_range(
    soc0: float, steps: list[tuple[float, float, float]]
) -> None:
    eps = _eps(soc0)
    start_j = eps.battery_wh * 3600.0
    for dt, solar, load in steps:
        s = eps.step(dt, solar, load)
        assert 0.0 <= s.soc <= 1.0
        assert s.shunt_w >= 0.0 and s.unserved_w >= 0.0
    gained = eps.battery_wh * 3600.0 - start_j
    scale = max(1.0, eps.ledger.solar_j + eps.ledger.load_j)
    assert math.isclose(eps.ledger.balance_j(), gained, abs_tol=1e-9 * scale)
    led = eps.ledger
    assert led.served_load_j + led.unserved_j == pytest.approx(led.load_j)


def test_bad_step_is_refused() -> None:
    with pytest.raises(WorldError, match="EPS step"):
        _eps().step(-1.0, 1.0, 1.0)


def test_voltage_rises_with_charge_and_sags_under_load() -> None:
    assert cell_ocv_v(0.0) == 3.0 and cell_ocv_v(1.0) == 4.2
    assert all(cell_ocv_v(a / 10) < cell_ocv_v((a + 1) / 10) for a in range(10))
    light, heavy = _eps(0.5), _eps(0.5)
    v_light = light.step(1.0, 0.0, 1.0).bus_voltage_v
    v_heavy = heavy.step(1.0, 0.0, 20.0).bus_voltage_v
    assert v_heavy < v_light < 2 * 3.75


def test_array_output_scales_with_attitude_distance_and_degradation() -> None:
    full = array_power_w(ARRAY, 1.0)
    assert full == pytest.approx(1361.0 * 0.06 * 0.3)
    assert array_power_w(ArraySpec(0.06, 0.3, "tumbling"), 1.0) == pytest.approx(full / 4)
    assert array_power_w(ArraySpec(0.06, 0.3, degradation=0.5), 1.0) == pytest.approx(full / 2)
    assert array_power_w(ARRAY, 1.0, 1.0167) < full < array_power_w(ARRAY, 1.0, 0.9833)
    assert array_power_w(ARRAY, 0.0) == 0.0
