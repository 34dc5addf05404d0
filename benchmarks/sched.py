"""``gnomon bench sched``: the scheduler evaluation as a benchmark (value vs oracle, run time).

>>> sorted(bench_sched(n_scenarios=1, seed=0)["policies"])
['duty_cycle', 'gnomon', 'greedy', 'oracle', 'sunlit_only']
"""

from __future__ import annotations

from typing import Any

from hil.eval.sched.metrics import evaluate


def bench_sched(n_scenarios: int = 100, seed: int = 0) -> dict[str, Any]:
    """The evaluation of ``gnomon sched eval`` without per-scenario rows, plus its speed."""
    report = evaluate(n_scenarios, seed)
    report.pop("per_scenario")
    report["seconds_per_scenario"] = round(report["elapsed_s"] / n_scenarios, 3)
    return report


__all__ = ["bench_sched"]
