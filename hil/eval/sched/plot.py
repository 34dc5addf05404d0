"""One PNG per evaluated scenario: state of charge of every policy and the oracle, solar
input and the payload's draw, frames captured and when the payload inferred, against
time, with eclipses (grey) and passes (green). matplotlib is imported when called.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hil.eval.sched.simulate import ScenarioEval
from hil.eval.sched.timeline import BUCKET_TICKS


def plot_scenario(ev: ScenarioEval, path: Path) -> Path:
    """PNG of SoC, solar input, eclipses, passes and inference activity against time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = ev.timeline
    t_h = (tl.start_tai + tl.tick_s * np.arange(tl.n_ticks + 1) - tl.start_tai) / 3600.0
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    ax_soc, ax_pow, ax_act = axes
    for ax in axes:
        for e in tl.eclipses:
            ax.axvspan(
                (e.start_tai - tl.start_tai) / 3600,
                (e.end_tai - tl.start_tai) / 3600,
                color="0.85",
                lw=0,
            )
        for p in tl.passes:
            ax.axvspan(
                (p.aos_tai - tl.start_tai) / 3600,
                (p.los_tai - tl.start_tai) / 3600,
                color="tab:green",
                alpha=0.25,
                lw=0,
            )
    cap = tl.scenario.battery.capacity_wh
    for name, r in ev.results.items():
        ax_soc.plot(
            t_h, r.soc, label=f"{name} ({r.value:.0f})", lw=1.4 if name == "gnomon" else 0.9
        )
    ob = np.arange(len(ev.oracle.energy_wh)) * BUCKET_TICKS * tl.tick_s / 3600.0
    ax_soc.plot(ob, ev.oracle.energy_wh / cap, "k--", lw=1, label=f"oracle ({ev.oracle.value:.0f})")
    ax_soc.axhline(tl.scenario.policy.floor_soc, color="tab:red", lw=1, ls=":", label="floor")
    ax_soc.set_ylabel("state of charge")
    ax_soc.legend(fontsize=7, ncol=3, loc="lower left")
    ax_pow.plot(t_h[:-1], tl.solar_w, color="tab:orange", label="solar input (W)")
    ax_pow.plot(
        t_h[:-1],
        ev.results["gnomon"].payload_w,
        color="tab:blue",
        lw=0.8,
        label="gnomon payload (W)",
    )
    ax_pow.set_ylabel("power (W)")
    ax_pow.legend(fontsize=7, loc="upper right")
    arrivals = np.bincount([f.tick for f in tl.frames], minlength=tl.n_ticks)[: tl.n_ticks]
    ax_act.bar(t_h[:-1], arrivals, width=tl.tick_s / 3600, color="0.6", label="frames captured")
    for name in ("gnomon", "greedy"):
        if name in ev.results:
            busy = ev.results[name].payload_w > 0
            ax_act.plot(
                t_h[:-1][busy],
                np.full(busy.sum(), arrivals.max() + (1 if name == "gnomon" else 2)),
                "|",
                ms=6,
                label=f"{name} inferring",
            )
    for ax in axes:
        ax.axvline((tl.value_end_tai - tl.start_tai) / 3600.0, color="k", lw=0.6, ls="--")
    ax_act.set_ylabel("frames / tick")
    ax_act.set_xlabel("hours since start (grey: eclipse, green: passes)")
    ax_act.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{tl.scenario.name}: {tl.scenario.description}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


__all__ = ["plot_scenario"]
