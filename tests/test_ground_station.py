"""GroundStation and TestApi against the real flight software flying in real time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ground_harness import CFG, FlightThread, flight_dictionary, free_udp_port

from fsw.link import memory_pair
from ground import AwaitTimeout, CommandFailedError, CommandTimeouts, DictionaryError, Stage
from ground.station import GroundStation
from ground.testapi import TestApi, ground_api_fixture


@pytest.fixture(scope="module")
def api() -> Iterator[TestApi]:
    spacecraft_end, ground_end = memory_pair()
    with (
        FlightThread(spacecraft_end),
        GroundStation(flight_dictionary(), CFG, transport=ground_end) as station,
    ):
        test_api = TestApi(station, timeout_s=5.0)
        test_api.await_contact(10.0)
        yield test_api


def test_send_and_await_stages(api: TestApi) -> None:
    ping = api.send_and_await("PING", stage="completed", timeout=5)
    assert ping.reached(Stage.COMPLETED) and ping.time_of("completed") is not None
    accepted = api.send_and_await("PING", stage="accepted", timeout=5)
    assert accepted.reached("accepted")
    failed = api.send_and_await("SEQ_START", seq_id=77, stage="failed", timeout=5)
    assert (failed.failure_code, failed.reason) == ("NOT_FOUND", "no sequence with id 77")


def test_telemetry_and_event_waits(api: TestApi) -> None:
    value = api.await_telemetry("exec.met_s", lambda v: v >= 1, timeout=5)
    assert value.value >= 1 and value.limit.value == "ok"
    assert api.assert_telemetry("mode.mode", "NOMINAL").value == "NOMINAL"
    mark = api.mark()
    api.send_and_await("MODE_SAFE_ENTER", timeout=5)
    event = api.await_event("mode.SAFE_*", timeout=5, since=mark)
    assert event.name == "mode.SAFE_ENTERED" and event.severity == "HIGH"
    api.await_telemetry("mode.mode", "SAFE", timeout=5)
    api.send_and_await("MODE_SAFE_EXIT", timeout=5)
    assert api.await_telemetry("mode.mode", "NOMINAL", timeout=5).value == "NOMINAL"
    assert any(e.name == "mode.SAFE_EXITED" for e in api.events("mode.*"))


def test_failures_say_what_was_seen(api: TestApi) -> None:
    with pytest.raises(
        CommandFailedError,
        match=r"SEQ_START #\d+ failed at completion: "
        "NOT_FOUND: no sequence with id 78",
    ):
        api.send_and_await("SEQ_START", seq_id=78, timeout=5)
    with pytest.raises(CommandFailedError, match="was expected to fail but completed"):
        api.send_and_await("PING", stage="failed", timeout=5)
    with pytest.raises(
        AwaitTimeout,
        match=r"no value of exec.met_s matched == -1 within "
        r"1\.5 s; saw \d value\(s\), last: \d+",
    ):
        api.await_telemetry("exec.met_s", -1, timeout=1.5)
    with pytest.raises(AwaitTimeout, match=r"mode\.mode is NOMINAL .*expected == 'SAFE'"):
        api.assert_telemetry("mode.mode", "SAFE")
    with pytest.raises(AwaitTimeout, match=r"no event matching sched\.RELEASED within 0\.5 s"):
        api.await_event("sched.RELEASED", timeout=0.5)
    with pytest.raises(DictionaryError, match=r"did you mean exec\.met_s"):
        api.await_telemetry("exec.mets", timeout=0.1)


def test_time_tagged_command_runs_at_its_time(api: TestApi) -> None:
    now_tai = api.station.spacecraft_tai()
    assert now_tai is not None
    insert, ping = api.send_time_tagged("PING", now_tai + 2.0)
    api.await_command(insert, "completed", timeout=5)
    assert not ping.reached("accepted")
    api.await_command(ping, "completed", timeout=6)
    accepted = next(s for s in ping.stages if s.stage is Stage.ACCEPTED)
    assert accepted.t_tai is not None and now_tai + 2.0 <= accepted.t_tai < now_tai + 2.5


def test_station_stats_show_the_link(api: TestApi) -> None:
    stats = api.station.stats
    assert stats["fop_state"] == "ACTIVE" and stats["transport_status"] == "connected"
    assert stats["tm_frames"] > 0 and stats["decode_errors"] == 0
    assert stats["last_tm_age_s"] is not None and stats["last_tm_age_s"] < 2.0
    assert api.station.in_contact


def test_sdls_sequence_survives_a_ground_restart(tmp_path: Path) -> None:
    url = f"udp://127.0.0.1:{free_udp_port()}"
    arsn = tmp_path / "arsn.json"
    quick = CommandTimeouts(accept_s=3.0, complete_s=5.0)
    with FlightThread(url):
        for _ in range(2):  # two ground sessions, one after the other
            with GroundStation(
                flight_dictionary(), CFG, url, arsn_file=arsn, timeouts=quick
            ) as station:
                TestApi(station).send_and_await("PING", timeout=5)
        # a third ground that forgot the sequence number is refused as a replay
        with GroundStation(flight_dictionary(), CFG, url, timeouts=quick) as station:
            api = TestApi(station)
            with pytest.raises(CommandFailedError, match="did not reach 'completed'"):
                api.send_and_await("PING", timeout=2.5)
            event = api.await_event("comms.SDLS_REJECTED", timeout=3)
            assert event.args["replays"] >= 1


_URL = f"udp://127.0.0.1:{free_udp_port()}"


@pytest.fixture(scope="module")
def udp_flight() -> Iterator[FlightThread]:
    with FlightThread(_URL) as flight:
        yield flight


ground_api = ground_api_fixture(
    flight_dictionary, CFG, _URL, requires=("udp_flight",), timeout_s=5.0
)


def test_the_fixture_factory_gives_a_ready_api(ground_api: TestApi) -> None:
    ground_api.await_contact(5)
    assert ground_api.send_and_await("PING").reached("completed")
