"""The world reduced to scheduler ticks: solar input, radio and sun per tick, frames as jobs.

:func:`build_timeline` precomputes a scenario's world once; every policy and the oracle
then fly the same :class:`Timeline`. Frames are taken for ``imaging_orbits``; their
deadlines (:func:`frame_deadline`) fall within the value window (imaging plus a tail,
rounded up to whole oracle buckets); the survival orbits after it earn nothing, but the
battery must still fly them.

>>> from hil.sim.scenario import load_scenario
>>> tl = build_timeline(load_scenario("sitl-short"), seed=1, imaging_orbits=0.5,
...                     tail_orbits=0.5, survival_orbits=0.5)
>>> tl.tick_s, tl.n_ticks, len(tl.frames) > 0
(60.0, 148, True)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fsw.power.astro import orbit_period_s, parse_tle
from fsw.power.landmask import LandMask
from fsw.power.predictor import EclipseWindow, PassWindow, interval_overlap, merge_windows
from fsw.power.scheduler import SURVIVAL_ORBITS as SCHEDULER_SURVIVAL_ORBITS
from hil.sim.eps import array_power_w
from hil.sim.scenario import Scenario
from hil.sim.world import World

FArr = NDArray[np.float64]
IMAGING_ORBITS = 6.0
TAIL_ORBITS = 2.0
#: After the value window: payload off, the battery must stay above the floor. As long as
#: the flight scheduler looks ahead (its pricing horizon, then its payload-off survival
#: look-ahead, then an eclipse), so the oracle ends the value window with the obligation
#: the flight keeps, and neither is asked about orbits the other cannot see.
SURVIVAL_ORBITS = 2.0 + SCHEDULER_SURVIVAL_ORBITS + 1.0
BUCKET_TICKS = 5  # scheduler ticks per oracle bucket


@dataclass(slots=True, frozen=True)
class FrameJob:
    """A frame as a job: first tick it may run, deadline, priority, and the truth of
    whether the small model will be unsure about it."""

    job_id: int
    tick: int
    captured_tai: float
    deadline_tai: float
    priority: float
    unsure: bool


@dataclass(slots=True, frozen=True, eq=False)
class Timeline:
    """The world, reduced to what the scheduling study needs per tick."""

    scenario: Scenario
    seed: int
    start_tai: float
    tick_s: float
    solar_w: FArr
    radio_frac: FArr
    sun_frac: FArr
    frames: tuple[FrameJob, ...]
    imaging_end_tai: float
    value_end_tai: float
    period_s: float
    eclipses: tuple[EclipseWindow, ...]
    passes: tuple[PassWindow, ...]
    world: World = field(repr=False)

    @property
    def n_ticks(self) -> int:
        return len(self.solar_w)

    @property
    def end_tai(self) -> float:
        return self.start_tai + self.n_ticks * self.tick_s

    def t(self, k: int) -> float:
        return self.start_tai + k * self.tick_s

    @property
    def imaging_orbits(self) -> float:
        return (self.imaging_end_tai - self.start_tai) / self.period_s


def frame_deadline(sc: Scenario, t_cap: float, passes: Sequence[PassWindow], end: float) -> float:
    """When a frame captured at ``t_cap`` is due: the first pass at least
    ``min_deadline_s`` later (at most ``max_deadline_s``), or a fixed delay, never past
    ``end``."""
    pol = sc.policy
    if pol.deadline == "next_pass":
        due = end
        for p in passes:
            if p.aos_tai >= t_cap + pol.min_deadline_s:
                due = p.aos_tai
                break
        due = min(due, t_cap + pol.max_deadline_s)
    else:
        due = t_cap + float(pol.deadline)
    return min(due, end)


def build_timeline(
    scenario: Scenario,
    seed: int,
    *,
    imaging_orbits: float = IMAGING_ORBITS,
    tail_orbits: float = TAIL_ORBITS,
    survival_orbits: float = SURVIVAL_ORBITS,
    land_mask: LandMask | None = None,
) -> Timeline:
    """Precompute the world and reduce it to ticks.

    Frames are taken for ``imaging_orbits``; their deadlines fall within the value
    window (imaging + ``tail_orbits``, rounded up to whole oracle buckets); the
    ``survival_orbits`` after it earn nothing but the battery must still fly them.
    """
    tick = scenario.policy.tick_s
    period = orbit_period_s(parse_tle(scenario.tle_line1, scenario.tle_line2))
    n_value = math.ceil((imaging_orbits + tail_orbits) * period / tick / BUCKET_TICKS)
    n_value *= BUCKET_TICKS
    n = n_value + math.ceil(survival_orbits * period / tick)
    world = World(scenario, seed, duration_s=n * tick + tick, land_mask=land_mask)
    t0 = scenario.start_tai
    edges = t0 + tick * np.arange(n + 1, dtype=np.float64)
    sun = np.array([world.sun.mean_sun_fraction(a, b) for a, b in itertools.pairwise(edges)])
    dist = np.array([world.sun.distance_au(a) for a in edges[:-1]])
    solar = np.array([array_power_w(scenario.array, f, d) for f, d in zip(sun, dist, strict=True)])
    radio = interval_overlap(
        edges[:-1], tick, merge_windows([(p.aos_tai, p.los_tai) for p in world.passes])
    )
    imaging_end = t0 + imaging_orbits * period
    end = float(edges[n_value])
    u_true = scenario.payload.true_unsure_rate
    frames = []
    for f in world.camera.frames:
        if f.t_tai >= imaging_end:
            break
        k = max(0, math.ceil((f.t_tai - t0) / tick - 1e-9))
        if k >= n:
            continue
        unsure = bool(np.random.default_rng([f.seed, 7]).random() < u_true)
        frames.append(
            FrameJob(
                f.frame_id,
                k,
                f.t_tai,
                frame_deadline(scenario, f.t_tai, world.passes, end),
                f.priority,
                unsure,
            )
        )
    return Timeline(
        scenario,
        seed,
        t0,
        tick,
        solar,
        radio,
        sun,
        tuple(frames),
        imaging_end,
        end,
        period,
        world.eclipses,
        world.passes,
        world,
    )


__all__ = [
    "BUCKET_TICKS",
    "IMAGING_ORBITS",
    "SURVIVAL_ORBITS",
    "TAIL_ORBITS",
    "FrameJob",
    "Timeline",
    "build_timeline",
    "frame_deadline",
]
