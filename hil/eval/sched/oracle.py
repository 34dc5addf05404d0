"""The offline optimum: a linear program over the whole run with perfect knowledge.

The oracle knows the future exactly: solar input and loads per tick, every frame's
capture time, priority and deadline, and how many frames of each capture group the
small model will be unsure about (but not which ones: frame content is only revealed by
running the model). It chooses how many frames of each group to run through the small
model, and how many of the unsure ones to escalate, in which bucket and which power
mode, subject to

* one accelerator: compute time per bucket <= bucket length;
* the battery: E[b+1] = E[b] + eta_c * charge[b] - discharge[b] / eta_d, with
  charge - discharge + spill = solar - loads - payload over the bucket, and
  floor <= E <= capacity at every bucket boundary;
* windows: a frame runs between its capture and its deadline; escalations of a group
  never outnumber its unsure share of small runs;
* the end: the battery holds ``terminal_wh``, enough to fly on afterwards (the caller
  computes it; the scheduler evaluation asks for two more orbits with the payload off
  and then a SAFE-mode eclipse, the obligation the flight scheduler keeps).

Buckets aggregate ``bucket_ticks`` scheduler ticks and counts are fractional, so this
is a relaxation of what any real policy can do: its value is an upper bound on every
policy that respects the floor, which is what makes "x % of the oracle" a guarantee.
Solved with HiGHS (``highspy``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hil.sim.errors import WorldError

WH_J = 3600.0
SPILL_COST = 1e-7  # per Wh spilled; far below any frame's value, only breaks ties


@dataclass(slots=True, frozen=True)
class OracleGroup:
    """Frames captured in one bucket with the same priority and deadline bucket."""

    first_bucket: int
    last_bucket: int
    priority: float
    count: int
    unsure: int


@dataclass(slots=True, frozen=True)
class OracleProblem:
    """Everything the LP needs, per bucket of ``bucket_s`` seconds."""

    bucket_s: float
    net_wh: NDArray[np.float64]  # solar - bus - radio per bucket (bus side), Wh
    e0_wh: float
    floor_wh: float
    capacity_wh: float
    eta_c: float
    eta_d: float
    mode_power_w: tuple[float, ...]
    small_latency_s: tuple[float, ...]  # per mode
    large_latency_s: tuple[float, ...]
    accuracy_sure: float
    accuracy_unsure: float
    accuracy_large: float
    groups: tuple[OracleGroup, ...]
    terminal_wh: float = 0.0  # least energy at the end (what must be left to fly on)


@dataclass(slots=True, frozen=True)
class OracleResult:
    value: float
    small_runs: float
    escalations: float
    payload_energy_j: float
    energy_wh: NDArray[np.float64]  # battery energy at bucket boundaries (B + 1)
    payload_w: NDArray[np.float64]  # mean payload power per bucket
    status: str


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """File descriptor 1 to /dev/null for the duration (C code's prints included)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _new_highs(highspy: Any) -> Any:
    """A quiet HiGHS instance. Its C++ constructor prints a banner on stdout (once per
    process) before any option can turn output off; ``--json`` must print JSON only."""
    with _stdout_silenced():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


class _Lp:
    """The LP in triplet form, built column by column: costs, bounds, rows, entries."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.col_up: list[float] = []
        self.row_lo: list[float] = []
        self.row_hi: list[float] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []

    def row(self, lo: float, hi: float) -> int:
        self.row_lo.append(lo)
        self.row_hi.append(hi)
        return len(self.row_lo) - 1

    def col(self, cost: float, up: float) -> int:
        self.cost.append(cost)
        self.col_up.append(up)
        return len(self.cost) - 1

    def put(self, col: int, entries: Sequence[tuple[int, float]]) -> None:
        """Coefficients of column ``col`` in the given (row, value) pairs."""
        for r, v in entries:
            self.rows.append(r)
            self.cols.append(col)
            self.vals.append(v)


@dataclass(slots=True)
class _Work:
    """The columns that run frames: small runs, escalations, each one's (bucket, Wh)."""

    small: list[int]
    esc: list[int]
    energy_wh: list[tuple[int, int, float]]  # (col, bucket, Wh)


def _add_groups(lp: _Lp, p: OracleProblem, time_row: list[int], bal_row: list[int]) -> _Work:
    """Per group, bucket and mode: small-model runs and escalations of unsure frames."""
    work = _Work([], [], [])
    q_s = p.accuracy_sure
    for g in p.groups:
        u = g.unsure / g.count
        v_small = g.priority * ((1.0 - u) * q_s + u * p.accuracy_unsure)
        v_esc = g.priority * max(0.0, p.accuracy_large - p.accuracy_unsure)
        cap_row = lp.row(-np.inf, float(g.count))
        esc_row = lp.row(-np.inf, 0.0) if g.unsure else -1
        for b in range(g.first_bucket, g.last_bucket + 1):
            for m in range(len(p.mode_power_w)):
                lat = p.small_latency_s[m]
                wh = lat * p.mode_power_w[m] / WH_J
                c = lp.col(-v_small, float(g.count))
                work.small.append(c)
                work.energy_wh.append((c, b, wh))
                lp.put(c, [(time_row[b], lat), (bal_row[b], wh), (cap_row, 1.0)])
                if g.unsure:
                    lp.put(c, [(esc_row, -u)])
                    lat_l = p.large_latency_s[m]
                    wh_l = lat_l * p.mode_power_w[m] / WH_J
                    ce = lp.col(-v_esc, float(g.unsure))
                    work.esc.append(ce)
                    work.energy_wh.append((ce, b, wh_l))
                    lp.put(ce, [(time_row[b], lat_l), (bal_row[b], wh_l), (esc_row, 1.0)])
    return work


def _add_battery(lp: _Lp, p: OracleProblem, bal_row: list[int]) -> list[int]:
    """Charge, discharge, spill per bucket; the energy columns at boundaries 1..B."""
    e_cols: list[int] = []
    for b in range(len(p.net_wh)):
        ch = lp.col(0.0, np.inf)
        dis = lp.col(0.0, np.inf)
        sp = lp.col(SPILL_COST, np.inf)  # tie-break: among optima, keep the battery fuller
        lp.put(ch, [(bal_row[b], 1.0)])
        lp.put(dis, [(bal_row[b], -1.0)])
        lp.put(sp, [(bal_row[b], 1.0)])
        e_next = lp.col(0.0, p.capacity_wh)
        e_cols.append(e_next)
        # E[b+1] - E[b] - eta_c ch + dis / eta_d = 0   (E[0] = e0 moves to the bounds)
        rhs = p.e0_wh if b == 0 else 0.0
        dyn = lp.row(rhs, rhs)
        lp.put(e_next, [(dyn, 1.0)])
        lp.put(ch, [(dyn, -p.eta_c)])
        lp.put(dis, [(dyn, 1.0 / p.eta_d)])
        if b > 0:
            lp.put(e_cols[b - 1], [(dyn, -1.0)])
    return e_cols


def _solve(lp: _Lp, col_lo: np.ndarray) -> tuple[np.ndarray, str]:
    """HiGHS on the LP (column-wise matrix); the solution and the model status."""
    try:
        import highspy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise WorldError("the oracle needs the 'highspy' package: pip install highspy") from exc
    n_col = len(lp.cost)
    order = np.lexsort((np.array(lp.rows), np.array(lp.cols)))
    ci = np.array(lp.cols)[order]
    model = highspy.HighsLp()
    model.num_col_ = n_col
    model.num_row_ = len(lp.row_lo)
    model.col_cost_ = np.array(lp.cost)
    model.col_lower_ = col_lo
    model.col_upper_ = np.array(lp.col_up)
    model.row_lower_ = np.array(lp.row_lo)
    model.row_upper_ = np.array(lp.row_hi)
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = np.searchsorted(ci, np.arange(n_col + 1)).astype(np.int32)
    model.a_matrix_.index_ = np.array(lp.rows)[order].astype(np.int32)
    model.a_matrix_.value_ = np.array(lp.vals)[order]
    h = _new_highs(highspy)
    h.passModel(model)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise WorldError(
            f"oracle LP not solved ({status}): the scenario cannot keep the battery above "
            "the floor even with the payload off"
        )
    return np.asarray(h.getSolution().col_value), status


def solve_oracle(p: OracleProblem) -> OracleResult:
    """Solve the LP; :class:`WorldError` if HiGHS is missing or the LP is infeasible."""
    n_b = len(p.net_wh)
    lp = _Lp()
    # Rows shared by all groups: compute time per bucket and energy balance per bucket.
    time_row = [lp.row(-np.inf, p.bucket_s) for _ in range(n_b)]
    bal_row = [lp.row(float(p.net_wh[b]), float(p.net_wh[b])) for b in range(n_b)]
    work = _add_groups(lp, p, time_row, bal_row)
    e_idx = np.array(_add_battery(lp, p, bal_row))
    col_lo = np.zeros(len(lp.cost))
    col_lo[e_idx] = p.floor_wh
    col_lo[e_idx[-1]] = max(p.floor_wh, min(p.terminal_wh, p.capacity_wh))
    x, status = _solve(lp, col_lo)
    energy = np.concatenate([[p.e0_wh], x[e_idx]])
    payload_wh = np.zeros(n_b)
    for c, b, wh in work.energy_wh:
        payload_wh[b] += x[c] * wh
    sc = np.array(work.small, dtype=np.int64)
    ec = np.array(work.esc, dtype=np.int64)
    cost = np.array(lp.cost)
    cols = np.concatenate([sc, ec])
    return OracleResult(
        value=float(-np.dot(cost[cols], x[cols])) if cols.size else 0.0,
        small_runs=float(x[sc].sum()) if sc.size else 0.0,
        escalations=float(x[ec].sum()) if ec.size else 0.0,
        payload_energy_j=float(payload_wh.sum() * WH_J),
        energy_wh=energy,
        payload_w=payload_wh * WH_J / p.bucket_s,
        status=status,
    )


def group_frames(
    first_bucket: Sequence[int],
    last_bucket: Sequence[int],
    priority: Sequence[float],
    unsure: Sequence[bool],
) -> tuple[OracleGroup, ...]:
    """Aggregate frames with equal (first bucket, last bucket, priority) into groups."""
    acc: dict[tuple[int, int, float], list[int]] = {}
    for a, d, w, u in zip(first_bucket, last_bucket, priority, unsure, strict=True):
        if d < a:
            continue
        slot = acc.setdefault((int(a), int(d), float(w)), [0, 0])
        slot[0] += 1
        slot[1] += int(bool(u))
    return tuple(OracleGroup(a, d, w, n, u) for (a, d, w), (n, u) in sorted(acc.items()))
