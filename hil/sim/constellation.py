"""Constellations: N satellites flying one scenario and sharing its ground stations.

A scenario with a ``[constellation]`` table (:class:`~hil.sim.scenario_file.ConstellationTable`)
holds N spacecraft, each with its own TLE (listed, or from a Walker pattern,
:func:`walker_tles`), SCID and flight-software instance: a whole SITL
(:class:`~hil.sim.sitl.Sitl`) per satellite, with its own world (orbit, Sun, camera,
radiation, battery), link keys under its SCID and ground session.

The ground is shared. Time advances in lock-step windows (``window_s``, default 60 s):
before each window the :class:`StationScheduler` gives every station to at most one
satellite in view, and every satellite at most one station (one radio). Conflicts (two or
more satellites in view of one station) are resolved by value: the satellite holding the
most value not yet on the ground (:attr:`SatelliteSim.backlog`) is served first; the
others take another free station in view or wait. The windows granted become the
satellites' contacts (their RF channel opens only then); conflicts, the seconds denied
and the handovers are counted. What each satellite's ground session receives is also
archived by the shared ground, in a fleet archive keyed by SCID
(:class:`ground.fleet.FleetArchive`; ``gnomon ground tlm --archive OUT/archive --scid N``).

The satellites run in this process, or spread over the workers of a Dask cluster as
actors (``client``): each window, every satellite flies it on its worker, and the
results come back before the next window is planned. Either way a run is deterministic
for its seed, and the same on one process or many.

Value: a frame's value is its target priority (the scheduler's value); the value
delivered is the sum over the frames whose keep answer reached the ground (or, when the
SITL summary reports files delivered by value, ``files.value_delivered``).

>>> tles = walker_tles(WalkerTable(6, 550.0, 97.59, planes=3, phasing=1), 0.0)
>>> len(tles), tles[0][1][:8]
(6, '2 00100 ')
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from fsw.power.predictor import PassWindow
from hil.sim.errors import ScenarioError
from hil.sim.orbit import make_tle
from hil.sim.scenario import Scenario, read_scenario_file, resolve_scenario_path, scenario_from_file
from hil.sim.scenario_file import ConstellationTable, WalkerTable
from hil.sim.sitl_config import SitlConfig, make_config

log = logging.getLogger(__name__)
DAY_S = 86400.0


# ---------------------------------------------------------------------------- satellites
@dataclass(slots=True, frozen=True)
class SatelliteDef:
    """One spacecraft of a constellation: its name, SCID and TLE."""

    name: str
    scid: int
    tle: tuple[str, str]


def walker_tles(w: WalkerTable, epoch_tai: float, satnum0: int = 100) -> list[tuple[str, str]]:
    """TLEs of the Walker pattern ``w`` at ``epoch_tai`` (plane by plane)."""
    per_plane = w.satellites // w.planes
    out: list[tuple[str, str]] = []
    for k in range(w.planes):
        raan = w.raan_deg + k * w.raan_spread_deg / w.planes
        for j in range(per_plane):
            anomaly = j * 360.0 / per_plane + k * w.phasing * 360.0 / w.satellites
            out.append(
                make_tle(
                    epoch_tai,
                    w.altitude_km,
                    w.inclination_deg,
                    raan,
                    mean_anomaly_deg=anomaly,
                    satnum=satnum0 + len(out),
                )
            )
    return out


def _walker_for(w: WalkerTable, n: int) -> WalkerTable:
    """The pattern ``w`` with ``n`` satellites (planes: the most that ``n`` fills)."""
    planes = max(p for p in range(1, min(w.planes, n) + 1) if n % p == 0)
    return msgspec.structs.replace(w, satellites=n, planes=planes, phasing=w.phasing % planes)


def constellation_of(
    scenario: str | Path, satellites: int | None = None
) -> tuple[Scenario, ConstellationTable, list[SatelliteDef]]:
    """The scenario, its constellation table and its satellites (the first ``satellites``
    of a list, or a Walker pattern of that many)."""
    f = read_scenario_file(scenario)
    path = resolve_scenario_path(scenario)
    if f.constellation is None:
        raise ScenarioError(f"{path.name}: no [constellation] table: not a constellation")
    sc = scenario_from_file(f, path.name)
    table = f.constellation
    if table.walker is not None:
        w = table.walker if satellites is None else _walker_for(table.walker, satellites)
        sats = [
            SatelliteDef(f"sat-{i + 1:02d}", table.scid_first + i, tle)
            for i, tle in enumerate(walker_tles(w, sc.start_tai, table.scid_first))
        ]
    else:
        listed = table.satellites
        if satellites is not None and not 1 <= satellites <= len(listed):
            raise ScenarioError(
                f"{path.name}: the constellation lists {len(listed)} satellites, "
                f"cannot fly {satellites}"
            )
        listed = listed if satellites is None else listed[:satellites]
        sats = [SatelliteDef(s.name, s.scid, s.tle) for s in listed]
    return sc, table, sats


def _sat_seed(seed: int, index: int) -> int:
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, index, 0xC0457])
    return int(state.generate_state(1)[0] & 0x7FFFFFFF)


class SatelliteSim:
    """One satellite of a constellation: a SITL with contacts granted as it flies.

    Lives in this process or, as a Dask actor, on a worker. :meth:`advance` flies one
    lock-step window with the contact granted for it and reports what the shared ground
    needs: the value on board, the value delivered, and the bytes received.
    """

    def __init__(
        self, scenario: Scenario, config: SitlConfig, name: str, scid: int, record_rx: bool
    ) -> None:
        import torch

        from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
        from hil.sim.sitl import Sitl

        torch.set_num_threads(1)
        link = dataclasses.replace(LinkConfig.load(TEST_KEY_FILE), spacecraft_id=scid)
        self.name = name
        self.scid = scid
        self.sitl = Sitl(scenario, config, link_config=link, contacts=())
        assert self.sitl.ground is not None
        self._frames = self.sitl.world.camera.frames
        self._frame_t = [f.t_tai for f in self._frames]
        self._prio = {f.frame_id & 0xFFFFFFFF: f.priority for f in self._frames}
        self._record_rx = record_rx
        self._rx: list[tuple[float, bytes]] = []
        if record_rx:
            ground = self.sitl.ground
            receive = ground.receive

            def recording(data: bytes, now_tai: float) -> None:
                self._rx.append((now_tai, data))
                receive(data, now_tai)

            ground.receive = recording  # type: ignore[method-assign]
        self._planned: set[tuple[str, float]] = set()
        self.done = False

    # ------------------------------------------------------------------ queries
    def passes(self) -> list[PassWindow]:
        """Every pass of this satellite over the scenario's stations."""
        return list(self.sitl.world.passes)

    def dictionary(self) -> dict[str, Any]:
        from fsw.core.dictionary import build_dictionary

        return dict(json.loads(json.dumps(build_dictionary(self.sitl.fs))))

    def start_tai(self) -> float:
        return self.sitl.world.start_tai

    def _value_imaged(self) -> float:
        now = self.sitl.clock.now_tai()
        n = bisect_right(self._frame_t, now)
        return float(sum(f.priority for f in self._frames[:n]))

    def _values(self) -> tuple[float, float]:
        """(value answered on the ground: every result, value delivered: keep results)."""
        ground = self.sitl.ground
        assert ground is not None
        answered = delivered = 0.0
        for fid, keep in ground.results.items():
            p = self._prio.get(fid, 0.0)
            answered += p
            if keep:
                delivered += p
        return answered, delivered

    @property
    def backlog(self) -> float:
        """Value imaged on board whose answer has not reached the ground yet."""
        answered, _ = self._values()
        return max(0.0, self._value_imaged() - answered)

    # ------------------------------------------------------------------ flying
    def advance(self, until_s: float, grant: tuple[PassWindow, float, float] | None) -> dict:
        """Fly to ``until_s`` (seconds since the start) with ``grant`` (the pass, and the
        TAI start and end of the window granted in it) or no contact."""
        sitl = self.sitl
        if grant is not None:
            window, a, b = grant
            sitl.channel.add_window(a, b)
            key = (window.station, window.aos_tai)
            if key not in self._planned and sitl.ground is not None:
                self._planned.add(key)
                sitl.ground.add_pass(window)
        if not self.done:
            self.done = sitl.advance(until_s)
        rx, self._rx = self._rx, []
        answered, delivered = self._values()
        return {
            "done": self.done,
            "backlog": round(max(0.0, self._value_imaged() - answered), 6),
            "value_delivered": round(delivered, 6),
            "rx": rx,
        }

    def finish(self) -> dict[str, Any]:
        """End the flight; the satellite's SITL summary plus its value delivered."""
        result = self.sitl.finish()
        _, delivered = self._values()
        summary = dict(result.summary)
        summary["name"] = self.name
        summary["scid"] = self.scid
        summary["results_value"] = round(delivered, 3)
        return summary


# ---------------------------------------------------------------------------- stations
@dataclass(slots=True)
class StationStats:
    """What the station scheduler did (counts over the run)."""

    candidates: int = 0  # passes of any satellite over any station
    served: int = 0  # passes in which the satellite was given the station at least once
    conflicts: int = 0  # (window, station) slots that two or more satellites wanted
    denied_s: float = 0.0  # satellite-seconds in view of a station, not served
    handovers: int = 0  # a station turned from one satellite to another mid-pass
    contact_s: float = 0.0  # satellite-seconds served
    per_station: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "served": self.served,
            "conflicts": self.conflicts,
            "denied_s": round(self.denied_s, 3),
            "handovers": self.handovers,
            "contact_s": round(self.contact_s, 3),
            "per_station": {
                k: {kk: round(vv, 3) for kk, vv in v.items()}
                for k, v in sorted(self.per_station.items())
            },
        }


class StationScheduler:
    """Gives each station to one satellite at a time, window by window, by value.

    ``passes[i]`` are satellite i's passes. :meth:`plan` takes the window [t0, t1) (TAI)
    and each satellite's value on board, and returns each satellite's grant: the pass
    and the part of the window it is served in, or None.

    >>> p = PassWindow("svalbard", 100.0, 700.0, 400.0, 60.0)
    >>> q = PassWindow("svalbard", 300.0, 900.0, 600.0, 40.0)
    >>> s = StationScheduler([[p], [q]])
    >>> [g[1:] if g else None for g in s.plan(300.0, 360.0, [1.0, 5.0])]
    [None, (300.0, 360.0)]
    >>> s.stats.conflicts, s.stats.denied_s
    (1, 60.0)
    """

    def __init__(self, passes: Sequence[Sequence[PassWindow]]) -> None:
        self.passes = [sorted(ps, key=lambda p: p.aos_tai) for ps in passes]
        # the latest LOS so far, pass by pass (AOS order): passes before the first whose
        # running LOS passes t0 have all ended (a list of LOS alone is not sorted when a
        # satellite's passes over two stations overlap)
        self._los = [list(itertools.accumulate((p.los_tai for p in ps), max)) for ps in self.passes]
        self.stats = StationStats(candidates=sum(len(ps) for ps in self.passes))
        self._serving: dict[str, int] = {}  # station -> satellite served last window
        self._served: set[tuple[int, str, float]] = set()

    def _in_view(self, i: int, t0: float, t1: float) -> list[PassWindow]:
        ps = self.passes[i]
        out = []
        for p in ps[bisect_right(self._los[i], t0) :]:
            if p.aos_tai >= t1:
                break
            if min(p.los_tai, t1) - max(p.aos_tai, t0) > 0.0:
                out.append(p)
        return out

    def plan(
        self, t0: float, t1: float, backlog: Sequence[float]
    ) -> list[tuple[PassWindow, float, float] | None]:
        n = len(self.passes)
        view = [self._in_view(i, t0, t1) for i in range(n)]
        wanted: dict[str, int] = {}
        for ps in view:
            for st in {p.station for p in ps}:
                wanted[st] = wanted.get(st, 0) + 1
        self.stats.conflicts += sum(1 for c in wanted.values() if c > 1)
        holder = {i: st for st, i in self._serving.items()}
        # most value on board first; a tie keeps the satellite already served, then index
        order = sorted(range(n), key=lambda i: (-backlog[i], i not in holder, i))
        taken: dict[str, int] = {}
        grants: list[tuple[PassWindow, float, float] | None] = [None] * n
        for i in order:
            free = [p for p in view[i] if p.station not in taken]
            if not free:
                for p in view[i]:
                    self.stats.denied_s += min(p.los_tai, t1) - max(p.aos_tai, t0)
                    break  # one radio: a satellite is denied once per window
                continue
            # keep the station already serving it; else the longest time left in view
            p = max(free, key=lambda q: (holder.get(i) == q.station, q.los_tai, -q.aos_tai))
            a, b = max(p.aos_tai, t0), min(p.los_tai, t1)
            taken[p.station] = i
            grants[i] = (p, a, b)
            self.stats.contact_s += b - a
            row = self.stats.per_station.setdefault(p.station, {"contact_s": 0.0, "handovers": 0})
            row["contact_s"] += b - a
            if (i, p.station, p.aos_tai) not in self._served:
                self._served.add((i, p.station, p.aos_tai))
                self.stats.served += 1
        for st, i in taken.items():
            prev = self._serving.get(st)
            if prev is not None and prev != i and self._in_view_of(prev, st, t0, t1, view):
                self.stats.handovers += 1
                self.stats.per_station[st]["handovers"] += 1
        self._serving = dict(taken)
        return grants

    @staticmethod
    def _in_view_of(
        i: int, station: str, t0: float, t1: float, view: list[list[PassWindow]]
    ) -> bool:
        return any(p.station == station for p in view[i])


# ---------------------------------------------------------------------------- the run
@dataclass(slots=True)
class ConstellationResult:
    """A constellation run: its summary (``summary.json``) and each satellite's."""

    summary: dict[str, Any]
    satellites: list[dict[str, Any]]


class _Local:
    """Satellites in this process (same interface as the Dask actors' results)."""

    def __init__(self, sims: list[SatelliteSim]) -> None:
        self.sims = sims

    def call(self, method: str, args: list[tuple[Any, ...]]) -> list[Any]:
        return [getattr(s, method)(*a) for s, a in zip(self.sims, args, strict=True)]


class _Actors:
    """Satellites as Dask actors, spread round-robin over the cluster's workers."""

    def __init__(self, client: Any, builds: list[tuple[Any, ...]]) -> None:
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        if not workers:
            raise ScenarioError("the Dask cluster has no workers")
        futures = [
            client.submit(
                SatelliteSim, *b, actor=True, workers=[workers[k % len(workers)]], pure=False
            )
            for k, b in enumerate(builds)
        ]
        self.actors = [f.result() for f in futures]
        self.workers = len(workers)

    def call(self, method: str, args: list[tuple[Any, ...]]) -> list[Any]:
        futures = [getattr(a, method)(*x) for a, x in zip(self.actors, args, strict=True)]
        return [f.result() for f in futures]


def run_constellation(
    scenario: str | Path,
    *,
    satellites: int | None = None,
    stations: int | None = None,
    days: float = 1.0,
    seed: int = 1,
    out_dir: Path | None = None,
    window_s: float | None = None,
    client: Any = None,
) -> ConstellationResult:
    """Fly a constellation scenario for ``days`` (see the module docstring).

    ``stations`` keeps the scenario's first N stations; ``client`` (a
    ``distributed.Client``) spreads the satellites over its workers; ``out_dir`` gets
    ``summary.json`` and the fleet archive ``archive/`` (one archive per SCID).
    """
    wall0 = time.perf_counter()
    sc, table, sats = constellation_of(scenario, satellites)
    if stations is not None:
        if not 1 <= stations <= len(sc.stations):
            raise ScenarioError(
                f"{sc.name} has {len(sc.stations)} stations, cannot keep {stations}"
            )
        sc = dataclasses.replace(sc, stations=sc.stations[:stations])
    window = float(window_s if window_s is not None else table.window_s)
    period_s = _period_s(sats[0].tle)
    orbits = days * DAY_S / period_s
    builds = []
    for i, sat in enumerate(sats):
        cfg = make_config(scenario, orbits=orbits, seed=_sat_seed(seed, i))
        sc_i = dataclasses.replace(
            sc, name=f"{sc.name}/{sat.name}", tle_line1=sat.tle[0], tle_line2=sat.tle[1]
        )
        builds.append((sc_i, cfg, sat.name, sat.scid, out_dir is not None))
    fleet = None
    pool: _Local | _Actors = (
        _Actors(client, builds)
        if client is not None
        else _Local([SatelliteSim(*b) for b in builds])
    )
    try:
        n = len(sats)
        passes = pool.call("passes", [()] * n)
        start_tai = float(pool.call("start_tai", [()] * n)[0])
        if out_dir is not None:
            from ground.fleet import FleetArchive

            out_dir.mkdir(parents=True, exist_ok=True)
            fleet = FleetArchive(out_dir / "archive", create=True, ground_clock="tai")
            dictionaries = pool.call("dictionary", [()] * n)
            for sat, d in zip(sats, dictionaries, strict=True):
                fleet.register(sat.scid, sat.name, d)
        scheduler = StationScheduler(passes)
        total_s = orbits * period_s + builds[0][1].drain_s
        backlog = [0.0] * n
        delivered = [0.0] * n
        done = [False] * n
        t = 0.0
        while t < total_s - 1e-6 and not all(done):
            t1 = min(t + window, total_s)
            grants = scheduler.plan(start_tai + t, start_tai + t1, backlog)
            states = pool.call("advance", [(t1, g) for g in grants])
            for i, st in enumerate(states):
                backlog[i] = st["backlog"]
                delivered[i] = st["value_delivered"]
                done[i] = st["done"]
                if fleet is not None and st["rx"]:
                    fleet.receive(sats[i].scid, st["rx"])
            t = t1
        per_sat = pool.call("finish", [()] * n)
    finally:
        if fleet is not None:
            fleet.close()
    summary = _summary(sc, sats, per_sat, scheduler, days, seed, window, pool)
    summary["wall_seconds"] = round(time.perf_counter() - wall0, 3)
    if out_dir is not None:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return ConstellationResult(summary, per_sat)


def _period_s(tle: tuple[str, str]) -> float:
    from fsw.power.astro import orbit_period_s, parse_tle

    return float(orbit_period_s(parse_tle(*tle)))


def _sat_value(s: dict[str, Any]) -> float:
    files = s.get("files")
    if isinstance(files, dict) and isinstance(files.get("value_delivered"), int | float):
        return float(files["value_delivered"])
    return float(s["results_value"])


def _summary(
    sc: Scenario,
    sats: list[SatelliteDef],
    per_sat: list[dict[str, Any]],
    scheduler: StationScheduler,
    days: float,
    seed: int,
    window_s: float,
    pool: _Local | _Actors,
) -> dict[str, Any]:
    values = [_sat_value(s) for s in per_sat]
    total = sum(values)
    cmds = [s.get("commands", {}) for s in per_sat]
    return {
        "scenario": sc.name,
        "seed": seed,
        "days": days,
        "satellites": len(sats),
        "stations_used": [st.name for st in sc.stations],
        "window_s": window_s,
        "value_delivered": round(total, 3),
        "value_per_day": round(total / days, 3),
        "value_per_satellite_day": round(total / days / len(sats), 3),
        "value_source": "files" if any("files" in s for s in per_sat) else "results",
        "floor_violations": sum(int(s["battery"]["floor_violations"]) for s in per_sat),
        "min_soc": min(float(s["battery"]["min_soc"]) for s in per_sat),
        "commands": {
            "sent": sum(int(c.get("sent", 0)) for c in cmds),
            "completed": sum(int(c.get("completed", 0)) for c in cmds),
        },
        "stations": {"count": len(sc.stations), **scheduler.stats.to_dict()},
        "per_satellite": [
            {
                "name": s["name"],
                "scid": s["scid"],
                "value_delivered": round(v, 3),
                "passes_served": s["passes"],
                "min_soc": s["battery"]["min_soc"],
                "frames_kept": s["frames"]["kept"],
                "results_on_ground": s["frames"]["accuracy"].get("results_on_ground"),
            }
            for s, v in zip(per_sat, values, strict=True)
        ],
        "dask_workers": pool.workers if isinstance(pool, _Actors) else 0,
    }


__all__ = [
    "ConstellationResult",
    "SatelliteDef",
    "SatelliteSim",
    "StationScheduler",
    "StationStats",
    "constellation_of",
    "run_constellation",
    "walker_tles",
]
