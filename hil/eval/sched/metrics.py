"""Scheduler evaluation: every policy and the oracle on the same timelines, and the report.

For each randomized scenario (:mod:`hil.eval.sched.scenarios`) the world is precomputed
once (:mod:`hil.eval.sched.timeline`), every policy (:mod:`hil.eval.sched.policies`) is
flown through it (:mod:`hil.eval.sched.simulate`), and the oracle, the LP of
:mod:`hil.eval.sched.oracle`, bounds what any policy could have earned. The LP asks the
battery to end with :func:`survival_energy_wh`, the obligation the flight scheduler keeps.

>>> report = evaluate(n_scenarios=2, seed=3)          # doctest: +SKIP
>>> sorted(report["policies"])                        # doctest: +SKIP
['duty_cycle', 'gnomon', 'greedy', 'oracle', 'sunlit_only']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fsw.power.landmask import LandMask
from fsw.power.scheduler import battery_delta_wh
from fsw.power.scheduler import survival_energy_wh as flight_survival_energy_wh
from hil.eval.sched.oracle import OracleProblem, group_frames, solve_oracle
from hil.eval.sched.plot import plot_scenario
from hil.eval.sched.policies import POLICIES, make_policies
from hil.eval.sched.scenarios import make_feasible, random_scenario
from hil.eval.sched.simulate import PolicyResult, ScenarioEval, simulate
from hil.eval.sched.timeline import BUCKET_TICKS, IMAGING_ORBITS, Timeline, build_timeline
from hil.sim.errors import WorldError
from hil.sim.scenario import load_scenario

WH_J = 3600.0


def oracle_problem(tl: Timeline) -> OracleProblem:
    """The LP for a timeline (buckets of BUCKET_TICKS ticks)."""
    sc = tl.scenario
    prof = sc.payload.profile
    n = round((tl.value_end_tai - tl.start_tai) / tl.tick_s)
    n_b = math.ceil(n / BUCKET_TICKS)
    load_w = sc.loads.bus_w + sc.loads.radio_tx_w * tl.radio_frac
    net_tick_wh = (tl.solar_w - load_w) * tl.tick_s / WH_J
    net = np.bincount(np.arange(n) // BUCKET_TICKS, weights=net_tick_wh[:n], minlength=n_b)
    first = [f.tick // BUCKET_TICKS for f in tl.frames]
    last = [
        (math.ceil((f.deadline_tai - tl.start_tai) / tl.tick_s) - 1) // BUCKET_TICKS
        for f in tl.frames
    ]
    last = [min(x, n_b - 1) for x in last]
    groups = group_frames(
        first, last, [f.priority for f in tl.frames], [f.unsure for f in tl.frames]
    )
    modes = sc.payload.modes
    cap = sc.battery.capacity_wh
    return OracleProblem(
        bucket_s=BUCKET_TICKS * tl.tick_s,
        net_wh=np.asarray(net, dtype=np.float64),
        e0_wh=sc.battery.soc0 * cap,
        floor_wh=sc.policy.floor_soc * cap,
        capacity_wh=cap,
        eta_c=sc.battery.charge_efficiency,
        eta_d=sc.battery.discharge_efficiency,
        mode_power_w=tuple(m.power_w for m in modes),
        small_latency_s=tuple(prof.latency_s("small", m.name) for m in modes),
        large_latency_s=tuple(prof.latency_s("large", m.name) for m in modes),
        accuracy_sure=prof.accuracy_sure,
        accuracy_unsure=prof.accuracy_unsure,
        accuracy_large=prof.accuracy_large,
        groups=groups,
        terminal_wh=survival_energy_wh(tl, n),
    )


def survival_energy_wh(tl: Timeline, k0: int) -> float:
    """Least battery energy at tick ``k0`` from which the rest of the timeline (the
    survival window after the value window) can be flown with the payload off at the
    normal bus load, never below the floor: the obligation the flight scheduler keeps
    (:func:`fsw.power.scheduler.survival_energy_wh`; it never plans on SAFE mode)."""
    sc = tl.scenario
    cap = sc.battery.capacity_wh
    floor = sc.policy.floor_soc * cap
    if k0 >= tl.n_ticks:
        return floor
    load_w = sc.loads.bus_w + sc.loads.radio_tx_w * tl.radio_frac[k0:]
    delta = battery_delta_wh(
        tl.solar_w[k0:] - load_w,
        np.full(len(load_w), tl.tick_s),
        sc.battery.charge_efficiency,
        sc.battery.discharge_efficiency,
    )
    return flight_survival_energy_wh(delta, np.full(len(delta) + 1, floor), cap)


def evaluate_timeline(tl: Timeline, policies: Sequence[str] = POLICIES) -> ScenarioEval:
    """Fly ``policies`` through ``tl`` and solve the oracle's LP for it."""
    cfg = tl.scenario.scheduler_config()
    results = {p.name: simulate(p, tl) for p in make_policies(cfg) if p.name in policies}
    return ScenarioEval(tl, results, solve_oracle(oracle_problem(tl)))


def _policy_metrics(
    r: PolicyResult, oracle_value: float, orbits: float, floor_soc: float
) -> dict[str, float]:
    return {
        "value": r.value,
        "value_vs_oracle": min(1.0, r.value / oracle_value) if oracle_value > 0 else 1.0,
        "floor_violations": r.floor_violations,
        "deadline_misses": r.deadline_misses,
        "dropped": r.dropped,
        "lost_in_safe": r.lost_in_safe,
        "energy_per_inference_j": r.payload_energy_j / r.inferences if r.inferences else 0.0,
        "frames_per_orbit": r.small_runs / orbits,
        "min_soc": r.min_soc,
        "min_soc_above_floor": r.min_soc - floor_soc,
        "guard_refusals": r.guard_refusals,
    }


def scenario_metrics(ev: ScenarioEval) -> dict[str, dict[str, float]]:
    """Per-policy metrics (and the oracle's) for one evaluated scenario."""
    tl = ev.timeline
    orbits = tl.imaging_orbits
    floor = tl.scenario.policy.floor_soc
    out = {
        name: _policy_metrics(r, ev.oracle.value, orbits, floor) for name, r in ev.results.items()
    }
    o = ev.oracle
    inf = o.small_runs + o.escalations
    o_min = float(o.energy_wh.min() / tl.scenario.battery.capacity_wh)
    out["oracle"] = {
        "value": o.value,
        "value_vs_oracle": 1.0,
        "floor_violations": 0,
        "deadline_misses": float(len(tl.frames) - o.small_runs),
        "dropped": 0.0,
        "lost_in_safe": 0.0,
        "energy_per_inference_j": o.payload_energy_j / inf if inf else 0.0,
        "frames_per_orbit": o.small_runs / orbits,
        "min_soc": o_min,
        "min_soc_above_floor": o_min - floor,
        "guard_refusals": 0,
    }
    return out


def _scenario_row(ev: ScenarioEval) -> dict[str, Any]:
    """One scenario's line of the report: its name, frames and metrics (4 decimals)."""
    tl = ev.timeline
    m = scenario_metrics(ev)
    return {
        "name": tl.scenario.name,
        "frames": len(tl.frames),
        **{k: {kk: round(float(vv), 4) for kk, vv in v.items()} for k, v in m.items()},
    }


def _policy_summary(col: list[dict[str, float]]) -> dict[str, float]:
    """One policy's metrics over all scenarios: means, totals, the worst ratios."""
    ratios = np.array([c["value_vs_oracle"] for c in col])
    return {
        "value": float(np.mean([c["value"] for c in col])),
        "value_vs_oracle": float(ratios.mean()),
        "value_vs_oracle_min": float(ratios.min()),
        "value_vs_oracle_p10": float(np.percentile(ratios, 10)),
        "floor_violations": int(sum(c["floor_violations"] for c in col)),
        "scenarios_with_violations": int(sum(1 for c in col if c["floor_violations"] > 0)),
        "deadline_misses": float(sum(c["deadline_misses"] for c in col)),
        "dropped": float(sum(c["dropped"] for c in col)),
        "energy_per_inference_j": float(np.mean([c["energy_per_inference_j"] for c in col])),
        "frames_per_orbit": float(np.mean([c["frames_per_orbit"] for c in col])),
        "min_soc_above_floor": float(min(c["min_soc_above_floor"] for c in col)),
        "guard_refusals": int(sum(c["guard_refusals"] for c in col)),
    }


def evaluate(
    n_scenarios: int = 100,
    seed: int = 0,
    *,
    plot_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate all policies and the oracle on ``n_scenarios`` randomized scenarios.

    Returns a JSON-able report: ``policies`` keyed by policy name with ``value`` (mean
    per scenario), ``value_vs_oracle`` (mean of per-scenario ratios, each capped at 1),
    ``floor_violations`` and ``deadline_misses`` (totals), ``energy_per_inference_j``
    and ``frames_per_orbit`` (means), plus ``goal`` and per-scenario rows.
    """
    if n_scenarios < 1:
        raise WorldError("need at least one scenario")
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    land = LandMask()
    rows: list[dict[str, Any]] = []
    for i in range(n_scenarios):
        sc = random_scenario(rng, i, land)
        ev = evaluate_timeline(make_feasible(build_timeline(sc, seed * 1000 + i, land_mask=land)))
        rows.append(_scenario_row(ev))
        if plot_dir is not None:
            plot_scenario(ev, Path(plot_dir) / f"{ev.timeline.scenario.name}.png")
        if progress is not None:
            progress(i + 1, n_scenarios)
    policies = {name: _policy_summary([r[name] for r in rows]) for name in (*POLICIES, "oracle")}
    g = policies["gnomon"]
    return {
        "scenarios": n_scenarios,
        "seed": seed,
        "tick_s": 60.0,
        "imaging_orbits": IMAGING_ORBITS,
        "policies": policies,
        "goal": {
            "target_value_vs_oracle": 0.95,
            "gnomon_value_vs_oracle": g["value_vs_oracle"],
            "gnomon_floor_violations": g["floor_violations"],
            "met": bool(g["value_vs_oracle"] >= 0.95 and g["floor_violations"] == 0),
        },
        "elapsed_s": round(time.perf_counter() - t_start, 2),
        "per_scenario": rows,
    }


def evaluate_named(name_or_path: str | Path, seed: int = 0) -> ScenarioEval:
    """Evaluate all policies on one scenario file (imaging for 6 orbits, 2 orbit tail)."""
    return evaluate_timeline(make_feasible(build_timeline(load_scenario(name_or_path), seed)))


__all__ = [
    "evaluate",
    "evaluate_named",
    "evaluate_timeline",
    "oracle_problem",
    "scenario_metrics",
    "survival_energy_wh",
]
