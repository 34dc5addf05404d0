"""Scenario files: bundled ones load, round-trip, bad ones fail with one clear error."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.core.clock import DEFAULT_START_TAI
from hil.sim.errors import ScenarioError
from hil.sim.scenario import (
    SCENARIO_DIR,
    bundled_scenarios,
    dump_scenario,
    load_scenario,
    parse_scenario,
)

DEFAULT_TEXT = (SCENARIO_DIR / "leo550-sso-6u.toml").read_text()


def test_bundled_scenarios_cover_the_required_cases() -> None:
    assert set(bundled_scenarios()) >= {
        "leo550-sso-6u",
        "cubesat3u-tumbling",
        "long-eclipse-6u",
        "degraded-panels-6u",
    }


def test_default_scenario_known_values() -> None:
    sc = load_scenario("leo550-sso-6u")
    assert sc.start_tai == DEFAULT_START_TAI + (6 * 60 + 22) * 60  # 2026-11-21T06:22Z
    assert [s.name for s in sc.stations] == ["svalbard", "matera"]
    assert sc.battery.capacity_wh == 77.0 and sc.policy.floor_soc == 0.7
    assert [(m.name, m.power_w) for m in sc.payload.modes] == [("7W", 7.0), ("15W", 15.0)]
    assert sc.payload.board is not None and sc.payload.board.name == "jetson-orin-nano"
    assert sc.payload.tiles_per_frame == 16
    assert sc.payload.profile.latency_s("large", "15W") == pytest.approx(16 * 0.764e-3)
    assert sc.camera.targets[0].priority == 3.0
    assert sc.scheduler_config().floor_wh == pytest.approx(0.7 * 77.0 + 0.5)
    assert sc.array.full_sun_power_w == pytest.approx(1361 * 0.06 * 0.295)


@pytest.mark.parametrize("name", bundled_scenarios())
def test_round_trip_through_toml(name: str) -> None:
    sc = load_scenario(name)
    assert parse_scenario(dump_scenario(sc)) == sc


def test_load_by_path_and_by_name_agree(tmp_path: Path) -> None:
    p = tmp_path / "mine.toml"
    p.write_text(DEFAULT_TEXT)
    assert load_scenario(p) == load_scenario("leo550-sso-6u")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("capacity_wh = 77.0", "capacity_wh = -3"),
            "edited.toml: battery.capacity_wh: expected a number > 0 and <= 100000, got -3",
        ),
        (
            ('attitude = "sun_pointing"', 'attitude = "spinning"'),
            'array.attitude: expected one of "sun_pointing", "tumbling", got "spinning"',
        ),
        (('    00",', '    07",'), "orbit: TLE line 1 checksum is '7', expected 0"),
        (("floor_soc = 0.7", "floor_soc = 0.999"), "policy.floor_soc: expected a number"),
        (('board = "jetson-orin-nano"', 'board = "jetson-tx9"'), "board 'jetson-tx9' not found"),
        (("[loads]", "[lods]"), "edited.toml: lods: unknown key"),
        (
            ("lat_deg = 78.23", 'lat_deg = "north"'),
            r'stations\[0\].lat_deg: expected a number >= -90 and <= 90, got "north"',
        ),
        (("tiles_per_frame = 16", "tiles_per_frame = 0"), "payload.tiles_per_frame: expected"),
        (
            ("tile_px = 64", 'tile_px = 64\nsmall_latency_s = { "7W" = 1.0 }'),
            "payload: give either board",
        ),
        (("cells_series = 2", "cells_series = 2.5"), "battery.cells_series: expected an integer"),
        (('deadline = "next_pass"', "deadline = 0.5"), 'policy.deadline: expected "next_pass"'),
        (("seu_acceleration = 100.0", "seu_acceleration = -1"), "sitl.seu_acceleration"),
        (("downlink_bps = 9600.0", "bitrate = 9600.0"), "sitl.bitrate: unknown key"),
        (("start_utc = 2026-11-21T06:22:00Z", "start_utc = 2026-11-21"), "start_utc: expected"),
    ],
)
def test_bad_values_name_the_file_and_the_key(edit: tuple[str, str], message: str) -> None:
    text = DEFAULT_TEXT.replace(*edit, 1)
    assert text != DEFAULT_TEXT
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(text, "edited.toml")


def test_the_dump_is_written_by_tomli_w_and_reads_back_as_toml() -> None:
    import tomllib

    sc = load_scenario("cubesat3u-tumbling")
    doc = tomllib.loads(dump_scenario(sc))
    assert doc["name"] == "cubesat3u-tumbling" and doc["orbit"]["tle"][0].startswith("1 ")


def test_missing_file_lists_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError, match="leo550-sso-6u"):
        load_scenario("no-such-scenario")


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_scenario(p)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_random_text_raises_only_scenario_error(text: str) -> None:
    with contextlib.suppress(ScenarioError):
        parse_scenario(text)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_default_raises_only_scenario_error(data: st.DataObject) -> None:
    text = DEFAULT_TEXT
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text) - 1))
        kind = data.draw(st.sampled_from(["delete", "replace", "insert"]))
        ch = data.draw(st.sampled_from(list('0123456789-.=[]"x \n#e')))
        if kind == "delete":
            text = text[:i] + text[i + 1 :]
        elif kind == "replace":
            text = text[:i] + ch + text[i + 1 :]
        else:
            text = text[:i] + ch + text[i:]
    try:
        sc = parse_scenario(text)
    except ScenarioError:
        return
    assert sc.battery.capacity_wh > 0 and 0 <= sc.policy.floor_soc < 1
