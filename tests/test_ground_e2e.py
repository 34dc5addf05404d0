"""End to end: the flight software in its own process, real time on a UDP port, flown from
the ground's test API: ping, a parameter set and read back in housekeeping, a rejected
command with its failure code, and a time-tagged command executing at its time.

Two flights are flown: the SITL satellite (`gnomon sitl --realtime`: the whole topology with
its simulated world, radio through the simulated RF channel) and the bare board mode
(`gnomon fsw run`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ground_harness import CFG, flight_dictionary, free_udp_port

from fsw.ccsds import TEST_KEY_FILE
from ground import Archive, Stage
from ground.station import GroundStation
from ground.testapi import TestApi

ROOT = Path(__file__).resolve().parents[1]


FLIGHTS = {
    # A clean, fast radio: this test is about the ground and the flight agreeing; link
    # losses and 9,600 bit/s passes are the SITL tests' business.
    "sitl-realtime": [
        "sitl",
        "--realtime",
        "--always-in-view",
        "--clean-link",
        "--duration",
        "120",
    ],
    "fsw-run": ["fsw", "run", "--duration", "120", "--key-file", str(TEST_KEY_FILE)],
}


@pytest.fixture(scope="module", params=sorted(FLIGHTS))
def flight_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    url = f"udp://127.0.0.1:{free_udp_port()}"
    log = tmp_path_factory.mktemp("fsw") / f"{request.param}.log"
    argv = FLIGHTS[request.param]
    with log.open("w", encoding="utf-8") as out:  # a file: a full pipe would stall the flight
        proc = subprocess.Popen(
            [sys.executable, "-m", "gnomon.cli", *argv, "--link", url],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def api(flight_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestApi]:
    archive = Archive(tmp_path_factory.mktemp("e2e") / "ground.sqlite")
    with GroundStation(flight_dictionary(), CFG, flight_url, archive) as station:
        test_api = TestApi(station, timeout_s=10.0)
        test_api.await_contact(60.0)  # the flight process needs a few seconds to start
        yield test_api
    archive.close()


def test_ping(api: TestApi) -> None:
    ping = api.send_and_await("PING", stage="completed", timeout=10)
    assert [s.stage for s in ping.stages] == [
        Stage.SENT,
        Stage.ACCEPTED,
        Stage.STARTED,
        Stage.COMPLETED,
    ]


def test_parameter_set_and_read_back_in_housekeeping(api: TestApi) -> None:
    pid = api.station.dictionary.params["health.max_restarts"].id
    api.send_and_await("PARAM_SET", params=[{"param_id": "health.max_restarts", "value": 5}])
    mark = api.mark()
    api.send_and_await("HK_ONE_SHOT", sids=["prm"])
    assert api.await_telemetry("prm.last_set_id", pid, since=mark).value == pid
    assert api.await_telemetry("prm.sets", lambda n: n >= 1, since=mark).value >= 1
    reply = []
    api.station.on_decoded(lambda d: reply.append(d) if d.name == "prm.VALUES" else None)
    api.send_and_await("PARAM_GET", param_ids=["health.max_restarts"])
    api.station.wait_for(lambda: bool(reply), 5.0)
    assert reply[-1].fields["params"] == [{"param_id": pid, "value": 5}]


def test_rejected_command_with_its_failure_code(api: TestApi) -> None:
    failed = api.send_and_await("SEQ_START", seq_id=77, stage="failed")
    assert failed.failure_code == "NOT_FOUND"
    assert failed.reason == "no sequence with id 77"
    event = api.await_event("cmd.TC_FAILED", lambda e: e.args["command"] == "SEQ_START", since=0)
    assert event.args["failure_code"] == "NOT_FOUND"


@pytest.mark.req("SCHED-001")
def test_time_tagged_command_executes_at_its_time(api: TestApi) -> None:
    now_tai = api.station.spacecraft_tai()
    assert now_tai is not None
    release = now_tai + 3.0
    insert, ping = api.send_time_tagged("PING", release)
    api.await_command(insert, "completed")
    assert ping.status is Stage.SCHEDULED
    api.await_command(ping, "completed", timeout=10)
    accepted = next(s for s in ping.stages if s.stage is Stage.ACCEPTED)
    assert accepted.t_tai is not None and release <= accepted.t_tai < release + 0.5
    api.await_event("sched.RELEASED", lambda e: e.args["request_id"] == ping.request_id, since=0)


def test_everything_is_in_the_archive(api: TestApi) -> None:
    archive = api.station.archive
    assert archive is not None
    names = {c.name for c in archive.commands()}
    assert {"PING", "PARAM_SET", "SEQ_START", "SCHED_INSERT"} <= names
    assert archive.telemetry("exec.met_s")
    assert any(e.name == "cmd.TC_FAILED" for e in archive.events())
