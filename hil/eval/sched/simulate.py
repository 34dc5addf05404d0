"""One policy flown through a timeline: EPS, fault protection and the frames' truth.

Every tick (:data:`~hil.eval.sched.timeline.Timeline.tick_s`, 60 s): frames arrive from
the camera, jobs past their deadline expire, the policy decides, the payload draws
latency x mode power, the EPS integrates, and a floor violation trips fault protection
(SAFE: payload off, queue flushed, camera off, until the battery is
:data:`SAFE_EXIT_SOC_MARGIN` above the floor again).

>>> from hil.eval.sched.policies import GreedyPolicy
>>> from hil.eval.sched.timeline import build_timeline
>>> from hil.sim.scenario import load_scenario
>>> tl = build_timeline(load_scenario("sitl-short"), 1, imaging_orbits=0.5,
...                     tail_orbits=0.5, survival_orbits=0.5)
>>> r = simulate(GreedyPolicy(tl.scenario.scheduler_config()), tl)
>>> r.name, r.floor_violations, r.small_runs > 0
('greedy', 0, True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fsw.power.scheduler import Job, RunOrder
from hil.eval.sched.oracle import OracleResult
from hil.eval.sched.policies import GnomonPolicy, Policy
from hil.eval.sched.timeline import FArr, FrameJob, Timeline
from hil.sim.eps import Eps
from hil.sim.errors import WorldError

SAFE_EXIT_SOC_MARGIN = 0.05


@dataclass(slots=True, frozen=True, eq=False)
class PolicyResult:
    """One policy's run over one timeline."""

    name: str
    value: float
    floor_violations: int
    deadline_misses: int
    dropped: int
    lost_in_safe: int
    small_runs: int
    large_runs: int
    payload_energy_j: float
    min_soc: float
    soc: FArr  # at tick boundaries (n + 1)
    payload_w: FArr  # mean per tick
    guard_refusals: int = 0  # run orders the energy guard refused (gnomon only)

    @property
    def inferences(self) -> int:
        return self.small_runs + self.large_runs


@dataclass(slots=True, frozen=True, eq=False)
class ScenarioEval:
    """All policies and the oracle on one timeline."""

    timeline: Timeline
    results: dict[str, PolicyResult]
    oracle: OracleResult


@dataclass(slots=True)
class _Tally:
    value: float = 0.0
    violations: int = 0
    misses: int = 0
    dropped: int = 0
    lost: int = 0
    small: int = 0
    large: int = 0
    energy_j: float = 0.0


class _Run:
    """One policy's run in progress: the EPS, the job queue, SAFE mode and the tallies."""

    def __init__(self, policy: Policy, tl: Timeline) -> None:
        sc = tl.scenario
        self.policy = policy
        self.tl = tl
        self.prof = sc.payload.profile
        self.mode_power = {m.name: m.power_w for m in sc.scheduler_config().modes}
        self.floor = sc.policy.floor_soc
        self.eps = Eps(sc.array, sc.battery, tl.start_tai)
        policy.reset(tl)
        self.soc = np.empty(tl.n_ticks + 1)
        self.soc[0] = self.eps.soc
        self.pay_w = np.zeros(tl.n_ticks)
        self.jobs: dict[int, Job] = {}
        self.truth = {f.job_id: f for f in tl.frames}
        self.tally = _Tally()
        self.safe = False
        self.in_violation = False
        self.next_frame = 0
        self.last_solar = 0.0

    def tick(self, k: int) -> None:
        """Arrivals, expiries, the policy's decision, the payload's work, the EPS."""
        now = self.tl.t(k)
        self._arrivals(k)
        self._expire(now)
        orders = self._decide(k, now)
        self._power(k, self._execute(orders, k))

    def _arrivals(self, k: int) -> None:
        frames = self.tl.frames
        while self.next_frame < len(frames) and frames[self.next_frame].tick <= k:
            f = frames[self.next_frame]
            self.next_frame += 1
            if self.safe:
                self.tally.lost += 1
                continue
            self.jobs[f.job_id] = Job(f.job_id, f.captured_tai, f.deadline_tai, f.priority, "small")

    def _expire(self, now: float) -> None:
        for jid in [j for j, job in self.jobs.items() if job.deadline_tai <= now]:
            if self.jobs.pop(jid).stage == "small":
                self.tally.misses += 1

    def _decide(self, k: int, now: float) -> list[RunOrder]:
        if self.safe or not self.jobs:
            return []
        orders, drops = self.policy.decide(
            k, now, self.eps.soc, self.eps.battery_wh, list(self.jobs.values()), self.last_solar
        )
        for jid in drops:
            job = self.jobs.pop(jid, None)
            if job is not None and job.stage == "small":
                self.tally.dropped += 1
        return orders

    def _execute(self, orders: list[RunOrder], k: int) -> float:
        """Run the orders (checked against the queue and the tick); payload energy (J)."""
        busy = 0.0
        payload_j = 0.0
        for o in orders:
            job = self.jobs.get(o.job_id)
            if job is None:
                raise WorldError(
                    f"policy {self.policy.name} ran unknown or finished job {o.job_id}"
                )
            lat = self.prof.latency_s(o.variant, o.mode)
            if busy + lat > self.tl.tick_s + 1e-6:
                raise WorldError(f"policy {self.policy.name} overbooked tick {k}")
            busy += lat
            payload_j += lat * self.mode_power[o.mode]
            self._credit(job, o.variant, self.truth[o.job_id])
        return payload_j

    def _credit(self, job: Job, variant: str, f: FrameJob) -> None:
        """The value a run earns, given the truth of the frame (is the small model unsure)."""
        prof, t = self.prof, self.tally
        if job.stage == "small" and variant == "small":
            t.small += 1
            if f.unsure:
                t.value += f.priority * prof.accuracy_unsure
                self.jobs[job.job_id] = dataclasses.replace(job, stage="large")
            else:
                t.value += f.priority * prof.accuracy_sure
                del self.jobs[job.job_id]
        elif job.stage == "large":
            t.large += 1
            t.value += f.priority * max(0.0, prof.accuracy_large - prof.accuracy_unsure)
            del self.jobs[job.job_id]
        else:  # large model straight away
            t.large += 1
            t.value += f.priority * (prof.accuracy_large if f.unsure else prof.accuracy_sure)
            del self.jobs[job.job_id]

    def _power(self, k: int, payload_j: float) -> None:
        """Integrate the EPS over tick ``k``; below the floor, fault protection."""
        tl = self.tl
        self.tally.energy_j += payload_j
        self.pay_w[k] = payload_j / tl.tick_s
        loads = tl.scenario.loads
        load = (loads.safe_w if self.safe else loads.bus_w) + loads.radio_tx_w * tl.radio_frac[k]
        st = self.eps.step(tl.tick_s, float(tl.solar_w[k]), load + self.pay_w[k])
        self.last_solar = st.solar_w
        self.soc[k + 1] = st.soc
        if st.soc < self.floor - 1e-9:
            if not self.in_violation:
                self.tally.violations += 1
                self.in_violation = True
            if not self.safe:
                self.safe = True
                self.tally.lost += sum(1 for j in self.jobs.values() if j.stage == "small")
                self.jobs.clear()
        else:
            self.in_violation = False
        if self.safe and st.soc >= self.floor + SAFE_EXIT_SOC_MARGIN:
            self.safe = False

    def result(self) -> PolicyResult:
        """The tallies, with the small-model jobs still queued at the end counted missed."""
        t = self.tally
        t.misses += sum(1 for j in self.jobs.values() if j.stage == "small")
        pol = self.policy
        refused = pol.guard.refused_total if isinstance(pol, GnomonPolicy) else 0
        return PolicyResult(
            self.policy.name,
            t.value,
            t.violations,
            t.misses,
            t.dropped,
            t.lost,
            t.small,
            t.large,
            t.energy_j,
            float(self.soc.min()),
            self.soc,
            self.pay_w,
            refused,
        )


def simulate(policy: Policy, tl: Timeline) -> PolicyResult:
    """Step one policy through the timeline with EPS, fault protection and truth."""
    run = _Run(policy, tl)
    for k in range(tl.n_ticks):
        run.tick(k)
    return run.result()


__all__ = ["SAFE_EXIT_SOC_MARGIN", "PolicyResult", "ScenarioEval", "simulate"]
