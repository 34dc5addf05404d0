"""How a SITL run is set up: :class:`SitlConfig`, from a scenario's optional ``[sitl]`` table.

>>> cfg = make_config("sitl-short", orbits=0.25)
>>> cfg.orbits, cfg.seu_acceleration, cfg.channel.downlink_bps
(0.25, 1500.0, 9600.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from hil.sim.channel import ChannelConfig
from hil.sim.errors import ScenarioError, WorldError
from hil.sim.ground_script import ScriptConfig
from hil.sim.scenario import read_scenario_file

#: Longest run, in orbits (about two months in LEO). Memory does not grow with the run
#: (the report's trace is decimated, the archive's cache bounded); what does grow is the
#: world's precomputed orbit and Sun tables, 1.05 MB per simulated day.
MAX_ORBITS = 1000.0


@dataclass(slots=True, frozen=True)
class SitlConfig:
    """How a SITL run is set up; the scenario's optional ``[sitl]`` table sets these.

    ``seu_acceleration`` multiplies the scenario's upset rate (an accelerated test, so a
    few orbits show tens of upsets; stated in the report). ``start_offset_s`` starts the
    run that long after the scenario's ``start_utc`` (to begin near good passes).
    ``drain_s`` is flown after the last orbit without new upsets, so the scrubber can
    account for every one.
    """

    orbits: float = 3.0
    seed: int = 1
    step_s: float = 1.0
    seu_acceleration: float = 1.0
    start_offset_s: float = 0.0
    drain_s: float = 120.0
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    script: ScriptConfig = field(default_factory=ScriptConfig)

    def __post_init__(self) -> None:
        if not 0.0 < self.orbits <= MAX_ORBITS:
            raise WorldError(f"orbits = {self.orbits} must be in (0, {MAX_ORBITS:g}]")
        if not 0.1 <= self.step_s <= 10.0:
            raise WorldError(f"step_s = {self.step_s} must be within 0.1..10 s")
        if not self.seu_acceleration >= 0.0:
            raise WorldError("seu_acceleration must be >= 0")
        if not self.drain_s >= 0.0 or not self.start_offset_s >= 0.0:
            raise WorldError("drain_s and start_offset_s must be >= 0")


_CHANNEL_KEYS = ("uplink_ber", "downlink_ber", "uplink_drop", "downlink_drop", "downlink_bps")
_TOP_KEYS = ("seu_acceleration", "start_offset_s", "drain_s", "step_s")
_SCRIPT_KEYS = ("threshold_a", "threshold_b", "retry_after_s", "max_attempts")


def sitl_settings(scenario: str | Path) -> dict[str, Any]:
    """The keys set in a scenario file's ``[sitl]`` table (schema:
    :class:`~hil.sim.scenario_file.SitlTable`; empty when the file has none)."""
    table = read_scenario_file(scenario).sitl
    if table is None:
        return {}
    return {k: v for k, v in msgspec.structs.asdict(table).items() if v is not None}


def make_config(
    scenario: str | Path, *, orbits: float = 3.0, seed: int = 1, **overrides: Any
) -> SitlConfig:
    """A :class:`SitlConfig` from the scenario's ``[sitl]`` table plus ``overrides``."""
    table = sitl_settings(scenario)
    table.update({k: v for k, v in overrides.items() if v is not None})
    ch: dict[str, Any] = {k: float(table.pop(k)) for k in _CHANNEL_KEYS if k in table}
    ch["passes_only"] = bool(table.pop("passes_only", True))
    channel = ChannelConfig(**ch)
    sc: dict[str, Any] = {
        k: (int(table.pop(k)) if k == "max_attempts" else float(table.pop(k)))
        for k in _SCRIPT_KEYS
        if k in table
    }
    script = ScriptConfig(**sc)
    top: dict[str, Any] = {k: float(table.pop(k)) for k in _TOP_KEYS if k in table}
    if table:
        raise ScenarioError(f"unknown SITL settings {sorted(table)}")
    return SitlConfig(orbits=float(orbits), seed=int(seed), channel=channel, script=script, **top)


__all__ = ["MAX_ORBITS", "SitlConfig", "make_config", "sitl_settings"]
