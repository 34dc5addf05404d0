"""The SITL report: ``report.html`` with four plots (also saved as PNG files beside it).

* ``power.png``: state of charge against the floor, solar input and total load, with
  eclipse bands (grey) and ground passes (green);
* ``payload.png``: frames processed and inferences run (cumulative), the job queue and
  the payload computer's power draw;
* ``seu.png``: every radiation upset (time, model, arena block), whether the scrubber
  repaired it and how long that took, with the cumulative counts;
* ``link.png``: per pass, uplink CLTUs and downlink frames sent, lost and corrupted,
  and the TM queue on board (it fills between passes and drains during them).

>>> # write_report(run_sitl("sitl-short", orbits=0.1), Path("out/sitl"))
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hil.sim.results import SitlResult, losses_text

PLOTS: tuple[tuple[str, str], ...] = (
    ("power.png", "Battery and power"),
    ("payload.png", "Payload: frames, inference, queue"),
    ("seu.png", "Radiation upsets and repairs"),
    ("link.png", "Space link"),
)

_CAPTIONS = {
    "power.png": (
        "State of charge (left axis) against the battery floor (dashed red): the power "
        "scheduler only runs inference when its projection over the next orbits stays "
        "above the floor. Solar input (orange) drops to zero in eclipse (grey bands); the "
        "load (blue) rises during passes (green bands, transmitter on) and while the "
        "payload infers."
    ),
    "payload.png": (
        "Frames processed and inferences run (small and large model) since the start, "
        "the frames waiting in the queue, and the payload computer's power: it switches "
        "on in its chosen power mode for each batch the scheduler orders and off again. "
        "Frames are taken over land in daylight only."
    ),
    "seu.png": (
        "Top: each mark is an upset that flipped a bit of a model's weight arena "
        "(accelerated rate, see the summary), green when the scrubber repaired its block, "
        "red when it was not repaired. Middle: for each repaired upset, the time from the "
        "upset to the repair (seconds; far too short to see on the hours axis above). "
        "Bottom: injected and repaired upsets, cumulative."
    ),
    "link.png": (
        "Per pass: uplink CLTUs sent, lost and corrupted (BCH corrects single-bit errors, "
        "COP-1 retransmits the rest) and downlink frames sent, lost and corrupted (a "
        "corrupted TM frame fails its FECF on the ground); the count axis is linear from 0 "
        "to 1 and logarithmic above, so a zero count draws no bar. Bottom: TM packets "
        "waiting on board; nothing is downlinked outside passes, so the queue fills "
        "(housekeeping is dropped first when it is full, counted in the summary) and "
        "drains during passes."
    ),
}


def _bands(
    ax: Axes, spans: list[tuple[float, float]], color: str, alpha: float, label: str | None = None
) -> None:
    for k, (a, b) in enumerate(spans):
        ax.axvspan(
            a / 3600.0, b / 3600.0, color=color, alpha=alpha, label=label if k == 0 else None, lw=0
        )


def _pass_spans(res: SitlResult) -> list[tuple[float, float]]:
    return [(p["aos_s"], p.get("los_s", p["aos_s"])) for p in res.passes]


def _power(res: SitlResult) -> Figure:
    tl = res.trace
    t = np.array(tl.t_s) / 3600.0
    fig, ax = plt.subplots(figsize=(10, 4.2))
    _bands(ax, res.eclipses_s, "0.6", 0.25, "eclipse")
    _bands(ax, _pass_spans(res), "tab:green", 0.25, "ground pass")
    ax.plot(t, 100.0 * np.array(tl.soc), color="black", lw=1.6, label="state of charge")
    floor = 100.0 * res.summary["battery"]["floor_soc"]
    ax.axhline(floor, color="tab:red", ls="--", lw=1.2, label=f"floor {floor:.0f} %")
    ax.set_ylim(min(floor - 5.0, 100.0 * min(tl.soc, default=1.0) - 2.0), 101.0)
    ax.set_xlabel("time since start (h)")
    ax.set_ylabel("state of charge (%)")
    ax2 = ax.twinx()
    ax2.plot(t, tl.solar_w, color="tab:orange", lw=1.0, label="solar input (W)")
    ax2.plot(t, tl.load_w, color="tab:blue", lw=0.8, alpha=0.8, label="load (W)")
    ax2.set_ylabel("power (W)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="lower left", fontsize=8, ncol=3)
    ax.set_title("Battery state of charge, solar input and load")
    fig.tight_layout()
    return fig


def _payload(res: SitlResult) -> Figure:
    tl = res.trace
    t = np.array(tl.t_s) / 3600.0
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    _bands(ax, _pass_spans(res), "tab:green", 0.2, "ground pass")
    _bands(ax, res.eclipses_s, "0.6", 0.2, "eclipse")
    ax.step(t, tl.inferences, where="post", color="tab:purple", label="inferences run")
    ax.step(t, tl.processed, where="post", color="black", label="frames processed")
    ax.set_ylabel("count (cumulative)")
    ax3 = ax.twinx()
    ax3.step(t, tl.queue, where="post", color="tab:brown", lw=0.8, alpha=0.7, label="frames queued")
    ax3.set_ylabel("queued frames")
    h1, l1 = ax.get_legend_handles_labels()
    h3, l3 = ax3.get_legend_handles_labels()
    ax.legend(h1 + h3, l1 + l3, loc="upper left", fontsize=8)
    ax.set_title("Payload: the int8 cascade at work")
    ax2.fill_between(t, tl.payload_w, step="post", color="tab:red", alpha=0.6)
    ax2.set_ylabel("payload (W)")
    ax2.set_xlabel("time since start (h)")
    fig.tight_layout()
    return fig


def _seu(res: SitlResult) -> Figure:
    fig, (ax, ax_rep, ax2) = plt.subplots(
        3, 1, figsize=(10, 7.0), sharex=True, gridspec_kw={"height_ratios": [2, 1, 1]}
    )
    models = sorted({s.model for s in res.seus})
    span = max((s.block for s in res.seus), default=0) + 4
    offsets = {m: span * k for k, m in enumerate(models)}
    repaired = [s for s in res.seus if s.repaired_s is not None]
    unrepaired = [s for s in res.seus if s.repaired_s is None]
    for group, colour, marker, label in (
        (repaired, "tab:green", "o", "repaired"),
        (unrepaired, "tab:red", "x", "not repaired"),
    ):
        if group:
            ax.scatter(
                [s.t_s / 3600.0 for s in group],
                [offsets[s.model] + s.block for s in group],
                s=16,
                c=colour,
                marker=marker,
                label=f"{label} ({len(group)})",
            )
    ax.set_yticks([offsets[m] for m in models], models)
    ax.set_ylabel("model, arena block")
    if res.seus:
        ax.legend(fontsize=8, loc="upper left")
    ax.set_title(
        f"Upsets in the weight arenas (accelerated x{res.config.seu_acceleration:g}) "
        "and their repair"
    )
    ax_rep.scatter(
        [s.t_s / 3600.0 for s in repaired],
        [s.repaired_s - s.t_s for s in repaired if s.repaired_s is not None],
        s=12,
        c="tab:green",
    )
    ax_rep.set_ylabel("time to repair (s)")
    ax_rep.set_ylim(bottom=0.0)
    t_inj = sorted(s.t_s / 3600.0 for s in res.seus)
    t_rep = sorted(s.repaired_s / 3600.0 for s in repaired if s.repaired_s is not None)
    end = res.summary["sim_seconds"] / 3600.0
    ax2.step(
        [0.0, *t_inj, end],
        [0, *range(1, len(t_inj) + 1), len(t_inj)],
        where="post",
        color="tab:red",
        label="injected",
    )
    ax2.step(
        [0.0, *t_rep, end],
        [0, *range(1, len(t_rep) + 1), len(t_rep)],
        where="post",
        color="tab:green",
        ls="--",
        label="repaired",
    )
    ax2.set_ylabel("upsets (cumulative)")
    ax2.set_xlabel("time since start (h)")
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def _link(res: SitlResult) -> Figure:
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 5.5), gridspec_kw={"height_ratios": [1, 1]})
    passes = res.passes
    x = np.arange(len(passes))
    w = 0.13
    series = (
        ("cltus_sent", "CLTUs sent", "tab:blue"),
        ("cltus_dropped", "CLTUs lost", "tab:cyan"),
        ("cltus_corrupted", "CLTUs corrupted", "tab:purple"),
        ("cadus_sent", "TM frames sent", "tab:green"),
        ("cadus_dropped", "TM frames lost", "tab:orange"),
        ("cadus_corrupted", "TM frames corrupted", "tab:red"),
    )
    top = 1.0
    for k, (key, label, color) in enumerate(series):
        vals = [float(p.get(key, 0)) for p in passes]
        top = max(top, *vals, 1.0)
        ax.bar(x + (k - 2.5) * w, vals, w, label=label, color=color)
    # a zero count is no bar (a log axis would need a made-up floor): linear up to 1
    ax.set_yscale("symlog", linthresh=1.0, linscale=0.5)
    ax.set_ylim(0.0, 50.0 * top)  # headroom for the legend
    every = max(1, -(-len(passes) // 12))  # a long run: label every n-th pass, not all
    ax.set_xticks(
        x[::every],
        [f"{p['station']}\n+{p['aos_s'] / 3600.0:.2f} h" for p in passes[::every]],
        fontsize=8,
    )
    ax.set_ylabel("count (log above 1)")
    ax.legend(fontsize=7, ncol=3, loc="upper right")
    ax.set_title("Space link per pass")
    tl = res.trace
    t = np.array(tl.t_s) / 3600.0
    _bands(ax2, _pass_spans(res), "tab:green", 0.25, "ground pass")
    ax2.step(t, tl.dl_queued, where="post", color="black", lw=1.0, label="TM packets on board")
    ax2.set_xlabel("time since start (h)")
    ax2.set_ylabel("TM packets queued")
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def render_plots(res: SitlResult) -> dict[str, bytes]:
    """PNG bytes of each plot, by file name."""
    out: dict[str, bytes] = {}
    for (name, _), make in zip(PLOTS, (_power, _payload, _seu, _link), strict=True):
        fig = make(res)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        out[name] = buf.getvalue()
    return out


def _rows(d: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += _rows(v, key + ".")
        else:
            rows.append((key, json.dumps(v)))
    return rows


def inference_sentence(s: dict[str, Any]) -> str:
    """Where the payload's time and energy come from, in one sentence: latency and
    energy per inference (energy = latency x power) and the board profile's source.

    >>> text = inference_sentence({"inference": {
    ...     "inferences": 2, "tiles_per_frame": 16, "tile_px": 64, "board": "b",
    ...     "board_status": "estimate", "board_source": "a citation",
    ...     "latency_per_inference_ms": 3.0, "mean_power_w": 7.0,
    ...     "energy_per_inference_j": 0.021, "energy_j": 0.042},
    ...     "inference_latency_ms": {"mean": 4.5}})
    >>> text.split(": ")[1].split(". ")[0]
    '3.0 ms per inference at 7.0 W = 0.021 J per inference, 0.042 J in all'
    """
    inf = s.get("inference") or {}
    n = inf.get("inferences", 0)
    px = inf.get("tile_px")
    frame = f"a frame ({inf.get('tiles_per_frame')} tiles of {px}x{px} px)"
    if not n:
        return f"No inference ran. A frame is {frame[2:]}."
    host = (s.get("inference_latency_ms") or {}).get("mean")
    return (
        f"{n} inferences of {frame}: {inf['latency_per_inference_ms']} ms per inference at "
        f"{inf['mean_power_w']} W = {inf['energy_per_inference_j']} J per inference, "
        f"{inf['energy_j']} J in all. Board profile {inf.get('board')!r} "
        f"({inf.get('board_status')}): {inf.get('board_source')}."
        + (f" The same models on this host took {host} ms per frame (measured)." if host else "")
    )


def render_html(res: SitlResult, plots: dict[str, bytes]) -> str:
    """The report page, plots embedded as data URIs."""
    s = res.summary
    esc = html.escape
    seu = s["seu"]
    cmds = s.get("commands", {})
    headline = (
        f"{s['orbits']:g} orbits ({s['sim_seconds'] / 3600.0:.2f} h simulated) in "
        f"{s['wall_seconds']:.1f} s of wall time ({s['sim_wall_ratio']}x real time). "
        f"{s['frames']['processed']} of {s['frames']['seen']} frames processed, "
        f"{s['frames']['kept']} kept; {seu['injected']} upsets injected, {seu['repaired']} "
        f"repaired; {cmds.get('completed', 0)} of {cmds.get('sent', 0)} commands completed; "
        f"{s['battery']['floor_violations']} battery floor violations. "
        f"Telemetry: {losses_text(s.get('link', {}))}."
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Gnomon SITL: {esc(s['scenario'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1050px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:2px 8px;text-align:left}img{max-width:100%}p.cap{color:#333}</style>",
        "</head><body>",
        f"<h1>Gnomon SITL run: {esc(s['scenario'])} (seed {s['seed']})</h1>",
        f"<p>{esc(headline)}</p>",
        f"<p>{esc(inference_sentence(s))}</p>",
        f"<p>{esc(res.scenario.description)}. Radiation upsets are accelerated "
        f"{res.config.seu_acceleration:g}x over the scenario's rate so a short run shows "
        "them. Fields measured on the wall clock (everything else is deterministic for a "
        "seed): wall_seconds, sim_wall_ratio, inference_latency_ms.</p>",
    ]
    for name, title in PLOTS:
        b64 = base64.b64encode(plots[name]).decode("ascii")
        parts += [
            f"<h2>{esc(title)}</h2>",
            f"<img src='data:image/png;base64,{b64}' alt='{esc(title)}'>",
            f"<p class='cap'>{esc(_CAPTIONS[name])}</p>",
        ]
    parts.append(
        "<h2>Passes</h2><table><tr><th>station</th><th>AOS (h)</th><th>LOS (h)</th>"
        "<th>max elev (deg)</th><th>CLTUs sent/lost</th><th>TM frames sent/lost/"
        "corrupted</th></tr>"
    )
    cut = False
    for p in res.passes:
        los = f"{p.get('los_s', p['aos_s']) / 3600:.3f}"
        if p.get("cut_by_run_end"):
            los += " (run ended)"
            cut = True
        parts.append(
            f"<tr><td>{esc(p['station'])}</td><td>{p['aos_s'] / 3600:.3f}</td>"
            f"<td>{los}</td><td>{p['max_elevation_deg']}</td>"
            f"<td>{p.get('cltus_sent', 0)}/{p.get('cltus_dropped', 0)}</td>"
            f"<td>{p.get('cadus_sent', 0)}/{p.get('cadus_dropped', 0)}/"
            f"{p.get('cadus_corrupted', 0)}</td></tr>"
        )
    parts.append("</table>")
    if cut:
        parts.append(
            "<p class='cap'>The run ended during a pass: its max elevation is the whole "
            "pass's (as <code>gnomon world pass-times</code> shows it), its counts are "
            "those up to the end of the run.</p>"
        )
    parts.append("<h2>Summary (summary.json)</h2><table>")
    parts += [f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in _rows(s)]
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write_report(res: SitlResult, out_dir: Path) -> Path:
    """Write the PNG plots and ``report.html`` into ``out_dir``; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = render_plots(res)
    for name, data in plots.items():
        (out_dir / name).write_bytes(data)
    path = out_dir / "report.html"
    path.write_text(render_html(res, plots), encoding="utf-8")
    return path


__all__ = ["PLOTS", "render_html", "render_plots", "write_report"]
