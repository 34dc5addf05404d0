"""The payload's time and energy come from measurement: frames of tiles, board profiles
with their sources, SITL's report, the HIL bench's measured profile; and the energy
guard as the ``power`` component flies it (counted refusals, throttled events)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_payload_components import _event_names, _flight, _frames, _soc

from fsw.ai.payload import scene_prediction
from fsw.ai.runtime import Prediction
from fsw.hal.interfaces import CameraFrame
from hil.sim.camera import scene_tiles
from hil.sim.errors import ScenarioError
from hil.sim.profiles import (
    BOARDS_FILE,
    MODELS,
    bundled_boards,
    load_board,
    measured_profile_toml,
)
from hil.sim.report import inference_sentence
from hil.sim.scenario import SCENARIO_DIR, bundled_scenarios, load_scenario
from hil.sim.sim_hal import SimCamera
from models.synth import make_tile


@pytest.mark.req("PAY-008")
def test_frame_latency_is_tiles_times_the_boards_tile_latency() -> None:
    sc = load_scenario("leo550-sso-6u")
    board = sc.payload.board
    assert board is not None and sc.payload.tiles_per_frame == 16
    for m in sc.payload.modes:
        bm = board.mode(m.name)
        assert m.power_w == bm.power_w
        for variant, model in zip(("small", "large"), MODELS, strict=True):
            want = 16 * bm.tile_ms[model] / 1e3
            assert sc.payload.profile.latency_s(variant, m.name) == pytest.approx(want)  # type: ignore[arg-type]


@pytest.mark.req("PAY-008")
def test_every_board_figure_has_a_source_and_says_measured_or_estimate() -> None:
    assert {"this-cpu", "rpi4", "rpi5", "jetson-orin-nano"} <= set(bundled_boards())
    for name in bundled_boards():
        b = load_board(name)
        assert b.status in ("measured", "estimate") and len(b.source) > 20
        if b.status == "estimate":  # a citation or a stated assumption
            assert "http" in b.source or "arXiv" in b.source or "assumption" in b.source
        for m in b.modes:
            assert "http" in m.power_source or m.power_source.startswith(("assumption", "NVIDIA"))
    assert load_board("this-cpu").status == "measured"
    assert "gnomon bench runtime" in load_board("this-cpu").source


@pytest.mark.req("PAY-008")
def test_no_bundled_scenario_claims_an_unmeasured_on_board_figure() -> None:
    for name in bundled_scenarios():
        text = (SCENARIO_DIR / f"{name}.toml").read_text()
        assert not re.search(r"measured on board", text), name
        p = load_scenario(name).payload
        assert p.board is not None or (p.latency_source and "synthetic" in p.latency_source)


@pytest.mark.req("PAY-008")
def test_an_unknown_board_is_refused_with_the_bundled_names() -> None:
    with pytest.raises(ScenarioError, match="jetson-orin-nano"):
        load_board("cray-1")


@pytest.mark.req("PAY-008")
def test_a_frame_is_a_scene_of_tiles_and_gets_one_answer(tmp_path: Path) -> None:
    cam = SimCamera(16)
    from hil.sim.camera import Frame

    cam.push([Frame(7, 100.0, 45.0, 10.0, "land", 1234, 1.0)])
    (frame,) = cam.poll()
    assert frame.pixels.shape == (16, 4, 64, 64)
    truth = make_tile(1234, "land")
    assert cam.truth[7].cloud_fraction == truth.cloud_fraction
    # Every tile of the scene shows the frame's pixels, rearranged: the same cloud cover.
    assert np.allclose(np.sort(frame.pixels[5].ravel()), np.sort(truth.pixels.ravel()))
    tiles = scene_tiles(truth.pixels, 16)
    assert len({t.tobytes() for t in tiles}) == 16
    p = scene_prediction([Prediction(True, 0.9, 0.1)] * 3 + [Prediction(False, 0.95, 0.9)])
    assert p.keep and p.confidence == pytest.approx((0.9 * 3 + 0.05) / 4)


@pytest.mark.req("PAY-008")
def test_the_payload_runs_every_tile_of_a_frame() -> None:
    fs, clock, cam, _switch, _ = _flight()
    fs.step(1.0)
    scene = [
        CameraFrame(f.frame_id, f.t_tai, f.lat_deg, f.lon_deg, f.priority, scene_tiles(f.pixels, 8))
        for f in _frames(clock, [61, 62])
    ]
    cam.frames = scene
    fs.step(120.0)
    assert fs.telemetry("payload.frames_processed") == 2
    assert fs.telemetry("payload.small_runs") >= 2


@pytest.mark.req("PAY-009")
def test_sitl_reports_latency_and_energy_per_inference_that_agree(tmp_path: Path) -> None:
    from hil.sim.report import render_html
    from hil.sim.sitl import run_sitl

    res = run_sitl("sitl-short", orbits=0.3, seed=2, out_dir=tmp_path)
    inf = res.summary["inference"]
    assert inf["inferences"] > 0 and inf["tiles_per_frame"] == 16
    assert inf["board"] == "jetson-orin-nano" and inf["board_status"] == "estimate"
    lat_s = inf["latency_per_inference_ms"] / 1e3
    assert inf["energy_per_inference_j"] == pytest.approx(lat_s * inf["mean_power_w"], rel=1e-3)
    assert inf["energy_j"] == pytest.approx(res.summary["inference_energy_j"], abs=1e-3)
    # The per-frame latency is 16 tiles of the board's per-tile latency in a mode it has.
    per_frame = {v for m in inf["modes"].values() for v in m["frame_latency_ms"].values()}
    assert any(abs(inf["latency_per_inference_ms"] - v) < 1e-3 for v in per_frame) or (
        min(per_frame) <= inf["latency_per_inference_ms"] <= max(per_frame)
    )
    html = render_html(res, {n: b"" for n in ("power.png", "payload.png", "seu.png", "link.png")})
    assert "jetson-orin-nano" in html and "developer.nvidia.com" not in inference_sentence({})
    assert load_board("jetson-orin-nano").source[:40] in html
    assert json.loads((tmp_path / "summary.json").read_text())["inference"] == inf


@pytest.mark.req("PAY-010")
def test_a_measured_profile_from_the_bench_is_a_board_a_scenario_can_name(tmp_path: Path) -> None:
    hello = {
        "cloudnet-s": {"p50_ms": 0.4, "p99_ms": 0.9, "mean_ms": 0.5, "runs": 20},
        "cloudnet-l": {"p50_ms": 1.1, "p99_ms": 2.0, "mean_ms": 1.2, "runs": 20},
    }
    path = tmp_path / "board.toml"
    path.write_text(
        measured_profile_toml("bench-pi", hello, power_w=6.1, power_source="USB meter", host="pi")
    )
    board = load_board(path)
    assert board.status == "measured" and board.mode("board").tile_ms["cloudnet-l"] == 1.1
    text = (SCENARIO_DIR / "sitl-short.toml").read_text()
    scenario = tmp_path / "mine.toml"
    scenario.write_text(text.replace('board = "jetson-orin-nano"', f'board = "{path}"'))
    sc = load_scenario(scenario)
    assert [(m.name, m.power_w) for m in sc.payload.modes] == [("board", 6.1)]
    assert sc.payload.profile.latency_s("small", "board") == pytest.approx(16 * 0.4e-3)
    with pytest.raises(ScenarioError, match="cloudnet-l"):
        measured_profile_toml(
            "x", {"cloudnet-s": hello["cloudnet-s"]}, power_w=1, power_source="a", host="h"
        )
    assert BOARDS_FILE.exists()


# ------------------------------------------------------------------ the guard on board
@pytest.mark.req("PWR-008")
def test_guard_refusals_are_counted_and_reported_at_most_every_ten_minutes() -> None:
    fs, clock, cam, _switch, sensor = _flight()
    # A full battery: the scheduler proposes work. The platform declares a bus that can
    # peak at 40 W, which no eclipse can be flown on: the guard refuses everything.
    sensor.reading = _soc(0.99)
    power = fs.component("power")
    power.platform = dataclasses_replace_peak(power.platform, 40.0)  # type: ignore[attr-defined]
    power.on_init()
    fs.step(1.0)
    for k in range(12):  # a frame a minute for 12 minutes
        cam.frames = _frames(clock, [70 + k])
        fs.step(60.0)
    refused = fs.telemetry("power.guard_refused")
    assert refused >= 10 and fs.telemetry("payload.frames_processed") == 0
    assert fs.telemetry("power.guard_reason") == "INHIBITED"
    assert fs.telemetry("power.guard_inhibited") is True
    assert fs.telemetry("power.guard_margin_wh") < 0.0
    events = [e for e in fs.recent_events if e.name == "power.GUARD_REFUSED"]
    assert len(events) == 2  # the first at once, the next after 600 s: not one per tick
    assert _event_names(fs, "power.PAYLOAD_INHIBITED") == ["power.PAYLOAD_INHIBITED"]


def dataclasses_replace_peak(platform: object, peak_w: float) -> object:
    import dataclasses

    return dataclasses.replace(platform, bus_peak_w=peak_w)  # type: ignore[type-var]
