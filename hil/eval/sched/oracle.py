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


def solve_oracle(p: OracleProblem) -> OracleResult:
    """Solve the LP; :class:`WorldError` if HiGHS is missing or the LP is infeasible."""
    try:
        import highspy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise WorldError("the oracle needs the 'highspy' package: pip install highspy") from exc

    n_b = len(p.net_wh)
    n_m = len(p.mode_power_w)
    cols_cost: list[float] = []
    cols_up: list[float] = []
    rows_i: list[int] = []
    cols_j: list[int] = []
    vals: list[float] = []
    row_lo: list[float] = []
    row_hi: list[float] = []

    def new_row(lo: float, hi: float) -> int:
        row_lo.append(lo)
        row_hi.append(hi)
        return len(row_lo) - 1

    def new_col(cost: float, up: float) -> int:
        cols_cost.append(cost)
        cols_up.append(up)
        return len(cols_cost) - 1

    # Rows shared by all groups: compute time per bucket and energy balance per bucket.
    time_row = [new_row(-np.inf, p.bucket_s) for _ in range(n_b)]
    bal_row = [new_row(float(p.net_wh[b]), float(p.net_wh[b])) for b in range(n_b)]
    q_s = p.accuracy_sure
    small_cols: list[int] = []
    esc_cols: list[int] = []
    col_energy_wh: list[tuple[int, int, float]] = []  # (col, bucket, Wh)
    for g in p.groups:
        u = g.unsure / g.count
        v_small = g.priority * ((1.0 - u) * q_s + u * p.accuracy_unsure)
        v_esc = g.priority * max(0.0, p.accuracy_large - p.accuracy_unsure)
        cap_row = new_row(-np.inf, float(g.count))
        esc_row = new_row(-np.inf, 0.0) if g.unsure else -1
        for b in range(g.first_bucket, g.last_bucket + 1):
            for m in range(n_m):
                lat = p.small_latency_s[m]
                wh = lat * p.mode_power_w[m] / WH_J
                c = new_col(-v_small, float(g.count))
                small_cols.append(c)
                col_energy_wh.append((c, b, wh))
                rows_i += [time_row[b], bal_row[b], cap_row]
                cols_j += [c, c, c]
                vals += [lat, wh, 1.0]
                if g.unsure:
                    rows_i.append(esc_row)
                    cols_j.append(c)
                    vals.append(-u)
                    lat_l = p.large_latency_s[m]
                    wh_l = lat_l * p.mode_power_w[m] / WH_J
                    ce = new_col(-v_esc, float(g.unsure))
                    esc_cols.append(ce)
                    col_energy_wh.append((ce, b, wh_l))
                    rows_i += [time_row[b], bal_row[b], esc_row]
                    cols_j += [ce, ce, ce]
                    vals += [lat_l, wh_l, 1.0]
    # Battery: charge, discharge, spill per bucket; energy at boundaries 1..B.
    e_cols: list[int] = []
    for b in range(n_b):
        ch = new_col(0.0, np.inf)
        dis = new_col(0.0, np.inf)
        sp = new_col(SPILL_COST, np.inf)  # tie-break: among optima, keep the battery fuller
        rows_i += [bal_row[b], bal_row[b], bal_row[b]]
        cols_j += [ch, dis, sp]
        vals += [1.0, -1.0, 1.0]
        e_next = new_col(0.0, p.capacity_wh)
        e_cols.append(e_next)
        # E[b+1] - E[b] - eta_c ch + dis / eta_d = 0   (E[0] = e0 moves to the bounds)
        rhs = p.e0_wh if b == 0 else 0.0
        dyn = new_row(rhs, rhs)
        rows_i += [dyn, dyn, dyn]
        cols_j += [e_next, ch, dis]
        vals += [1.0, -p.eta_c, 1.0 / p.eta_d]
        if b > 0:
            rows_i.append(dyn)
            cols_j.append(e_cols[b - 1])
            vals.append(-1.0)

    n_col, n_row = len(cols_cost), len(row_lo)
    col_lo = np.zeros(n_col)
    e_idx = np.array(e_cols)
    col_lo[e_idx] = p.floor_wh
    col_lo[e_idx[-1]] = max(p.floor_wh, min(p.terminal_wh, p.capacity_wh))
    col_hi = np.array(cols_up)
    order = np.lexsort((np.array(rows_i), np.array(cols_j)))
    ci = np.array(cols_j)[order]
    lp = highspy.HighsLp()
    lp.num_col_ = n_col
    lp.num_row_ = n_row
    lp.col_cost_ = np.array(cols_cost)
    lp.col_lower_ = col_lo
    lp.col_upper_ = col_hi
    lp.row_lower_ = np.array(row_lo)
    lp.row_upper_ = np.array(row_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.searchsorted(ci, np.arange(n_col + 1)).astype(np.int32)
    lp.a_matrix_.index_ = np.array(rows_i)[order].astype(np.int32)
    lp.a_matrix_.value_ = np.array(vals)[order]
    h = _new_highs(highspy)
    h.setOptionValue("threads", 1)
    h.passModel(lp)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise WorldError(
            f"oracle LP not solved ({status}): the scenario cannot keep the battery above "
            "the floor even with the payload off"
        )
    x = np.asarray(h.getSolution().col_value)
    energy = np.concatenate([[p.e0_wh], x[e_idx]])
    payload_wh = np.zeros(n_b)
    for c, b, wh in col_energy_wh:
        payload_wh[b] += x[c] * wh
    sc = np.array(small_cols, dtype=np.int64)
    ec = np.array(esc_cols, dtype=np.int64)
    cost = np.array(cols_cost)
    work = np.concatenate([sc, ec])
    return OracleResult(
        value=float(-np.dot(cost[work], x[work])) if work.size else 0.0,
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
