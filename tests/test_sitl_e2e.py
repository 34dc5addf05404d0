"""End to end: the short scenario flown by the SITL runner, checked the way a user would
check a run: summary.json, the SQLite archive, the report, the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.core.dictionary import build_dictionary
from fsw.link import memory_pair
from fsw.storage.packetstore import PacketStore
from ground import Archive, GroundSession
from hil.sim.cli import sitl_app
from hil.sim.report import write_report
from hil.sim.results import SitlResult
from hil.sim.sitl import WALL_CLOCK_FIELDS, Sitl, run_sitl
from hil.sim.sitl_config import make_config

SHORT = "sitl-short"
ORBITS = 0.25  # 24 minutes: a Svalbard and a Matera pass


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SitlResult, Path]:
    out = tmp_path_factory.mktemp("sitl")
    result = run_sitl(SHORT, orbits=ORBITS, seed=1, out_dir=out)
    write_report(result, out)
    return result, out


def _deterministic(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in WALL_CLOCK_FIELDS}


def test_the_summary_shows_a_satellite_at_work(run: tuple[SitlResult, Path]) -> None:
    res, out = run
    s = json.loads((out / "summary.json").read_text())
    assert s == json.loads(json.dumps(res.summary))
    assert s["sim_seconds"] == pytest.approx(ORBITS * s["orbit_period_s"], abs=130.0)
    f = s["frames"]
    assert f["seen"] > 20 and f["processed"] > 20 and 0 < f["kept"] <= f["processed"]
    assert f["small_runs"] >= f["processed"] - f["escalations"]
    assert s["inference_energy_j"] > 0.0
    assert s["battery"]["floor_violations"] == 0
    assert 0.7 < s["battery"]["min_soc"] <= s["battery"]["max_soc"] <= 1.0
    seu = s["seu"]
    assert seu["injected"] >= 5
    assert seu["detected"] == seu["repaired"] == seu["injected"]
    c = s["commands"]
    assert c["sent"] >= 6 and c["time_tagged"] >= 1
    assert c["completed"] == c["sent"] and c["failed"] == 0
    lk = s["link"]
    assert s["passes"] == 2 and lk["frames_up"] >= c["sent"] and lk["frames_down"] > 100
    assert lk["tm_packets_received"] > 1000
    assert lk["packets_lost"] == lk["tm_packets_sent"] - lk["tm_packets_received"]


def test_the_archive_holds_what_the_ground_received(run: tuple[SitlResult, Path]) -> None:
    res, out = run
    with Archive(out / "archive.sqlite") as arch:
        counts = arch.counts()
        # Playback duplicates of what realtime brought are counted, not archived twice.
        dups = res.summary["ground"]["playback_duplicates"]
        cfdp = res.summary["ground"]["cfdp_packets_received"]  # files, not archived packets
        assert counts["packets"] == res.summary["link"]["tm_packets_received"] - dups - cfdp
        cmds = arch.commands()
        assert {c.name for c in cmds} >= {"PING", "PARAM_SET", "HK_ONE_SHOT", "SCHED_INSERT"}
        assert sum(c.status == "completed" for c in cmds) >= res.summary["commands"]["sent"]
        names = [e.name for e in arch.events()]
        assert "exec.BOOT" in names and "scrubber.BLOCK_REPAIRED" in names
        soc = arch.telemetry("eps.soc_pct")
        assert len(soc) > 50 and all(70.0 < x.value <= 100.0 for x in soc)
        results = [p for p in arch.packets() if p.name == "payload.RESULT"]
        assert len(results) == res.summary["ground"]["results_received"] > 0


@pytest.mark.req("STO-006")
def test_every_event_and_verification_report_stored_before_the_last_pass_is_archived(
    run: tuple[SitlResult, Path],
) -> None:
    res, out = run
    last_aos = res.scenario.start_tai + res.passes[-1]["aos_s"]
    store = PacketStore(out / "board" / "stores" / "evt", capacity_bytes=16 << 20)
    on_board = [p for t, p in store.records() if t < last_aos]
    store.close()
    assert {p[7] for p in on_board} >= {1, 5}  # verification reports and events
    with Archive(out / "archive.sqlite") as arch:
        archived = {p.raw for p in arch.packets()}
    assert [p for p in on_board if p not in archived] == []
    assert res.summary["link"]["tm_queue_dropped"] == 0


def test_the_report_has_its_plots(run: tuple[SitlResult, Path]) -> None:
    _, out = run
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5
    assert "Value delivered per orbit" in page
    for name in ("power.png", "payload.png", "seu.png", "link.png", "storage.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "floor violations" in page


def test_same_seed_same_summary(run: tuple[SitlResult, Path]) -> None:
    again = run_sitl(SHORT, orbits=ORBITS, seed=1)
    assert _deterministic(again.summary) == _deterministic(run[0].summary)


def test_commands_get_through_a_bad_channel_by_cop1_and_resends() -> None:
    res = run_sitl(
        SHORT,
        orbits=0.12,
        seed=3,  # a seed whose channel drops some of the 4 CLTUs (0.7**4: 24 % drop none)
        uplink_drop=0.3,
        downlink_drop=0.3,
        uplink_ber=1e-4,
        seu_acceleration=0.0,
    )
    c, lk = res.summary["commands"], res.summary["link"]
    assert lk["cltus_dropped"] > 0 and lk["cadus_dropped"] > 50
    assert lk["retransmissions"] > 0
    assert c["completed"] == c["sent"] >= 4 and c["failed"] == 0
    assert res.summary["seu"]["injected"] == 0


def test_cli_prints_the_summary_as_json(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        sitl_app, [SHORT, "--orbits", "0.05", "--out", str(tmp_path), "--seed", "3", "--json"]
    )
    assert r.exit_code == 0, r.output
    s = json.loads(r.output.strip().splitlines()[-1])
    assert s["scenario"] == SHORT and s["seed"] == 3
    assert (tmp_path / "report.html").exists() and (tmp_path / "archive.sqlite").exists()
    bad = CliRunner().invoke(sitl_app, ["no-such-scenario", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "not found" in bad.output


def test_realtime_serves_the_radio_on_a_transport() -> None:
    """--realtime: the console's path. A PING over the transport is answered."""
    cfg = make_config(SHORT, orbits=0.05, seed=1, seu_acceleration=0.0)
    cfg = type(cfg)(
        **{
            **{f: getattr(cfg, f) for f in cfg.__dataclass_fields__},
            "channel": type(cfg.channel)(
                passes_only=False,
                uplink_drop=0.0,
                downlink_drop=0.0,
                uplink_ber=0.0,
                downlink_ber=0.0,
                downlink_bps=64000.0,
            ),
        }
    )
    sitl = Sitl(SHORT, cfg, with_ground=False)
    sc_end, ground_end = memory_pair()
    link = LinkConfig.load(TEST_KEY_FILE)
    session = GroundSession(json.loads(json.dumps(build_dictionary(sitl.fs))), link)
    handle, cltus = session.send("PING", 0.0)
    for c in cltus:
        ground_end.send(c)
    flown = sitl.serve(sc_end, duration_s=3.0)
    assert flown > 1.0
    data = b""
    while chunk := ground_end.recv(0.0):
        data += chunk
    session.receive(data, 3.0)
    assert handle.reached("completed")
