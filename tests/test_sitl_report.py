"""The SITL report tells the truth: what was lost is named, zero is drawn as zero, repairs
can be seen, one pass has one maximum elevation, and a long run's trace stays bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle
from typer.testing import CliRunner

from hil.sim.cli import _summary_text, sitl_app
from hil.sim.report import _link, _seu, render_html
from hil.sim.results import SAMPLE_S, SeuRecord, SitlResult, Trace, losses_text
from hil.sim.scenario import load_scenario
from hil.sim.sitl_config import MAX_ORBITS, SitlConfig, make_config

runner = CliRunner()


def _summary() -> dict[str, Any]:
    """A summary.json as a 3-orbit default run writes it (the figures of issue 14)."""
    return {
        "scenario": "leo550-sso-6u",
        "seed": 1,
        "sim_seconds": 17220.0,
        "wall_seconds": 6.0,
        "sim_wall_ratio": 2870.0,
        "orbits": 3.0,
        "orbit_period_s": 5740.0,
        "frames": {"seen": 209, "processed": 209, "kept": 122, "small_runs": 209, "large_runs": 14},
        "inference_energy_j": 23100.0,
        "battery": {"min_soc": 0.9, "max_soc": 1.0, "floor_soc": 0.7, "floor_violations": 0},
        "seu": {"acceleration": 100.0, "injected": 2, "detected": 2, "repaired": 1},
        "commands": {"sent": 20, "completed": 20, "failed": 0, "resent": 0},
        "link": {
            "frames_up": 26,
            "frames_down": 2545,
            "bits_corrected": 4,
            "frames_rejected": 4,
            "packets_lost": 257,
            "tm_queue_dropped": 28779,
            "tm_dropped_on_board": {"realtime": 0, "event": 0, "hk": 28779},
            "tm_queued_at_end": 1821,
        },
        "passes": 2,
    }


def _result(passes: list[dict[str, Any]], seus: list[SeuRecord]) -> SitlResult:
    trace = Trace()
    for k in range(4):
        trace.add(
            SAMPLE_S * k,
            soc=0.9,
            solar_w=10.0,
            load_w=8.0,
            payload_w=0.0,
            queue=0,
            dl_queued=k,
            inferences=k,
            processed=k,
        )
    trace.finish()
    return SitlResult(
        _summary(), trace, [], passes, seus, load_scenario("sitl-short"), SitlConfig()
    )


PASSES = [
    {
        "station": "svalbard",
        "aos_s": 20.0,
        "los_s": 400.0,
        "max_elevation_deg": 9.7,
        "cltus_sent": 5,
        "cltus_dropped": 0,
        "cltus_corrupted": 0,
        "cadus_sent": 375,
        "cadus_dropped": 7,
        "cadus_corrupted": 0,
    },
    {
        "station": "svalbard",
        "aos_s": 17150.0,
        "los_s": 17220.0,
        "max_elevation_deg": 70.3,
        "cut_by_run_end": True,
        "cltus_sent": 0,
        "cltus_dropped": 0,
        "cltus_corrupted": 0,
        "cadus_sent": 75,
        "cadus_dropped": 1,
        "cadus_corrupted": 0,
    },
]


def test_the_headline_names_what_was_dropped_on_board() -> None:
    s = _summary()
    text = _summary_text(s, Path("out/sitl"))
    flat = " ".join(text.split())
    assert "257 TM packets lost on the link" in flat
    assert "28,779 dropped on board (housekeeping 28,779)" in flat
    assert "1,821 still queued on board at the end" in flat
    lost = text[text.index("  TM lost") : text.index("report:")]
    assert all(len(line) <= 80 for line in lost.splitlines())
    page = render_html(_result(PASSES, []), {name: b"" for name in _plot_names()})
    assert "28,779 dropped on board (housekeeping 28,779) when the downlink queue was full" in page
    assert losses_text({"packets_lost": 0}) == "0 TM packets lost on the link"


def _plot_names() -> list[str]:
    from hil.sim.report import PLOTS

    return [name for name, _ in PLOTS]


def test_the_link_plot_draws_a_zero_count_as_no_bar() -> None:
    fig = _link(_result(PASSES, []))
    try:
        ax = fig.axes[0]
        heights = sorted(
            round(bar.get_height(), 6) for bar in ax.patches if isinstance(bar, Rectangle)
        )
        zeros = sum(
            1
            for p in PASSES
            for key in (
                "cltus_sent",
                "cltus_dropped",
                "cltus_corrupted",
                "cadus_sent",
                "cadus_dropped",
                "cadus_corrupted",
            )
            if p[key] == 0
        )
        assert heights[:zeros] == [0.0] * zeros and heights[zeros] == 1.0
        assert sorted(heights[zeros:]) == [1.0, 5.0, 7.0, 75.0, 375.0]
        assert ax.get_ylim()[0] == 0.0
    finally:
        plt.close(fig)


def test_every_repair_can_be_seen_in_the_seu_plot() -> None:
    """A repair takes seconds, the run hours: the plot shows each repair's duration on an
    axis of its own, so it is not a line a pixel long behind its marker."""
    seus = [
        SeuRecord(3600.0, "cloudnet-s", 10, 3, 0, 3604.0, 3604.0),
        SeuRecord(7200.0, "cloudnet-l", 99, 1, 1, 7213.0, 7213.0),
        SeuRecord(9000.0, "cloudnet-l", 5, 0, 0, None, None),  # never found
    ]
    fig = _seu(_result(PASSES, seus))
    try:
        ax_repair = next(ax for ax in fig.axes if ax.get_ylabel() == "time to repair (s)")
        points = [
            (float(x), float(y))
            for c in ax_repair.collections
            for x, y in np.asarray(c.get_offsets())
        ]
        assert points == [(1.0, 4.0), (2.0, 13.0)]
        top = fig.axes[0]
        legend = top.get_legend()
        assert legend is not None
        labels = [t.get_text() for t in legend.get_texts()]
        assert labels == ["repaired (2)", "not repaired (1)"]
    finally:
        plt.close(fig)


def test_a_pass_cut_by_the_end_of_the_run_says_so() -> None:
    page = render_html(_result(PASSES, []), {name: b"" for name in _plot_names()})
    assert "<td>4.783 (run ended)</td><td>70.3</td>" in page
    assert "the whole pass&#x27;s" in page or "the whole pass's" in page


def test_a_failed_run_leaves_the_previous_runs_files_alone(tmp_path: Path) -> None:
    (tmp_path / "sitl.log").write_text("the previous run's log\n", encoding="utf-8")
    (tmp_path / "summary.json").write_text("{}\n", encoding="utf-8")
    for args in (["no-such-scenario"], ["--orbits", "0"], ["--orbits", str(MAX_ORBITS + 1)]):
        result = runner.invoke(sitl_app, [*args, "--out", str(tmp_path)])
        assert result.exit_code == 2, result.output
    assert (tmp_path / "sitl.log").read_text(encoding="utf-8") == "the previous run's log\n"
    assert (tmp_path / "summary.json").read_text(encoding="utf-8") == "{}\n"


def test_a_week_long_run_is_allowed() -> None:
    assert make_config("leo550-sso-6u", orbits=105).orbits == 105
    assert MAX_ORBITS >= 105


def test_the_trace_keeps_a_short_run_whole() -> None:
    trace = Trace()
    for k in range(1800):  # 5 h at 10 s: more than the default 3-orbit run
        trace.add(
            SAMPLE_S * k,
            soc=0.9,
            solar_w=1.0,
            load_w=2.0,
            payload_w=0.0,
            queue=0,
            dl_queued=0,
            inferences=k,
            processed=k,
        )
    trace.finish()
    assert len(trace) == 1800 and trace.period_s == SAMPLE_S and trace.t_s[-1] == 17990.0


def test_the_trace_of_a_long_run_is_bounded_and_keeps_what_the_plots_show() -> None:
    """Decimation keeps the energy (mean power), the lowest state of charge, the highest
    queue and the cumulative counts."""
    trace = Trace(max_points=64)
    n = 1000
    for k in range(n):
        trace.add(
            SAMPLE_S * k,
            soc=0.5 if k == 333 else 0.9,
            solar_w=float(k % 7),
            load_w=2.0,
            payload_w=7.0 if k % 10 == 0 else 0.0,
            queue=50 if k == 777 else k % 3,
            dl_queued=0,
            inferences=k,
            processed=2 * k,
        )
        assert len(trace) < 64
    trace.finish()
    assert trace.stride == 16 and len(trace) == 63 and trace.period_s == 16 * SAMPLE_S
    assert min(trace.soc) == 0.5 and max(trace.queue) == 50
    assert trace.inferences[-1] == n - 1 and trace.processed[-1] == 2 * (n - 1)
    full_points = (n // trace.stride) * trace.stride
    energy = sum(trace.payload_w[: n // trace.stride]) * trace.stride
    assert energy == pytest.approx(7.0 * len(range(0, full_points, 10)))
    assert trace.t_s == sorted(trace.t_s) and trace.t_s[1] - trace.t_s[0] == trace.period_s


def test_the_summary_counts_on_board_drops_by_class(tmp_path: Path) -> None:
    result = runner.invoke(
        sitl_app, ["sitl-short", "--orbits", "0.1", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    link = json.loads(result.stdout)["link"]
    by_class = link["tm_dropped_on_board"]
    assert set(by_class) == {"realtime", "event", "hk"}
    assert sum(by_class.values()) == link["tm_queue_dropped"]
