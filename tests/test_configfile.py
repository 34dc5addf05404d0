"""The one config layer (fsw.configfile): every kind of mistake in every kind of config
file (a scenario, its [sitl] table, the link-key file) names the file and the dotted key."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

from fsw.ccsds.config import TEST_KEY_FILE, KeyFile, LinkConfig
from fsw.ccsds.errors import ConfigError as LinkConfigError
from fsw.configfile import ConfigError, decode_toml, encode_toml, load_toml
from hil.sim.errors import ScenarioError
from hil.sim.scenario import SCENARIO_DIR, load_scenario
from hil.sim.scenario_file import ScenarioFile
from hil.sim.sitl_config import make_config

SCENARIO = (SCENARIO_DIR / "leo550-sso-6u.toml").read_text()
KEYS = TEST_KEY_FILE.read_text()

# (which file, an edit, the dotted key, the reason) for each kind of mistake
CASES = [
    # wrong type
    ("scenario", ("capacity_wh = 77.0", 'capacity_wh = "big"'), "battery.capacity_wh",
     'expected a number > 0 and <= 100000, got "big"'),
    ("sitl", ("uplink_drop = 0.15", "uplink_drop = true"), "sitl.uplink_drop",
     "expected a number >= 0 and < 1, got true"),
    ("keys", ("tm_frame_len = 1115", "tm_frame_len = 1115.5"), "link.tm_frame_len",
     "expected an integer >= 64 and <= 2048, got 1115.5"),
    # missing key
    ("scenario", ("bus_w = 5.0 ", "# bus_w = 5.0 "), "loads.bus_w",
     "missing: expected a number >= 0 and <= 10000"),
    ("keys", ("spacecraft_id = 42", "# spacecraft_id = 42"), "link.spacecraft_id",
     "missing: expected an integer >= 0 and <= 1023"),
    # unknown key
    ("scenario", ("soc0 = 0.9", "soc0 = 0.9\nsoc_start = 0.9"), "battery.soc_start",
     "unknown key (known: capacity_wh, soc0, charge_efficiency, discharge_efficiency, "
     "cells_series, internal_resistance_ohm)"),
    ("sitl", ("downlink_bps = 9600.0", "downlink_bps = 9600.0\ndrian_s = 1"), "sitl.drian_s",
     "unknown key"),
    ("keys", ("window = 64", "window = 64\nwindw = 64"), "sdls.sa[0].windw", "unknown key"),
    # out of range
    ("scenario", ("lat_deg = 78.23", "lat_deg = 98.23"), "stations[0].lat_deg",
     "expected a number >= -90 and <= 90, got 98.23"),
    ("sitl", ("downlink_bps = 9600.0", "downlink_bps = 0.0"), "sitl.downlink_bps",
     "expected a number > 0 and <= 1e+10, got 0.0"),
    ("keys", ("tm_vcids = [0, 1]", "tm_vcids = [0, 8]"), "link.tm_vcids[1]",
     "expected an integer >= 0 and <= 7, got 8"),
]  # fmt: skip


def _write(tmp_path: Path, which: str, edit: tuple[str, str]) -> Path:
    if which == "keys":
        text, name = KEYS, "link.toml"
    else:
        text, name = SCENARIO, "leo550.toml"
        if which == "sitl":  # the [sitl] table is the last one: edits land in it
            head, sep, tail = text.partition("[sitl]")
            text = head + sep + tail.replace(*edit, 1)
            edit = ("", "")
    edited = text.replace(*edit, 1) if edit[0] else text
    assert edited != (KEYS if which == "keys" else SCENARIO)
    path = tmp_path / name
    path.write_text(edited)
    return path


def _load(which: str, path: Path) -> None:
    if which == "keys":
        LinkConfig.load(path)
    elif which == "sitl":
        make_config(path)
    else:
        load_scenario(path)


@pytest.mark.parametrize(("which", "edit", "key", "reason"), CASES)
def test_every_mistake_names_the_file_and_the_key(
    tmp_path: Path, which: str, edit: tuple[str, str], key: str, reason: str
) -> None:
    path = _write(tmp_path, which, edit)
    error = LinkConfigError if which == "keys" else ScenarioError
    with pytest.raises(error) as caught:
        _load(which, path)
    assert str(caught.value).startswith(f"{path.name}: {key}: {reason}")
    # the same file through the loader itself: a ConfigError with the parts apart
    schema = KeyFile if which == "keys" else ScenarioFile
    with pytest.raises(ConfigError) as raw:
        load_toml(path, schema)
    assert (raw.value.file, raw.value.key) == (path.name, key)
    assert raw.value.reason.startswith(reason)


def test_files_that_are_not_toml_or_not_there(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[battery\n")
    with pytest.raises(ConfigError, match=r"^bad\.toml: not valid TOML: "):
        load_toml(bad, ScenarioFile)
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read: "):
        load_toml(tmp_path / "nope.toml", ScenarioFile)
    bad.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 8\)"):
        load_toml(bad, ScenarioFile)


def test_a_table_entry_names_the_entry_that_is_wrong() -> None:
    heavy = (SCENARIO_DIR / "long-eclipse-6u.toml").read_text()  # per-frame latencies given
    text = heavy.replace('{ "7W" = 45.0, "15W" = 24.0 }', '{ "7W" = 45.0, "15W" = "slow" }')
    assert text != heavy
    with pytest.raises(ConfigError) as caught:
        decode_toml(text, ScenarioFile, "x.toml")
    assert caught.value.key == "payload.large_latency_s.15W"
    assert caught.value.reason == 'expected a number > 0 and <= 86400, got "slow"'


@pytest.mark.parametrize("name", ["leo550-sso-6u", "sitl-short", "cubesat3u-tumbling"])
def test_encode_then_decode_gives_the_same_file(name: str) -> None:
    f = load_toml(SCENARIO_DIR / f"{name}.toml", ScenarioFile)
    assert decode_toml(encode_toml(f), ScenarioFile, "again.toml") == f
    keys = load_toml(TEST_KEY_FILE, KeyFile)
    assert decode_toml(encode_toml(keys), KeyFile, "again.toml") == keys


@pytest.mark.parametrize(
    "name",
    [
        "fsw.configfile",
        "fsw.ccsds.config",
        "hil.sim.scenario",
        "hil.sim.scenario_file",
        "hil.sim.sitl_config",
        "hil.sim.results",
    ],
)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_messages_are_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        decode_toml("[orbit]\ntle = ['a', 'b']", ScenarioFile, "x.toml")
    assert not re.search(r"\n", str(caught.value))
