"""Ground command bookkeeping survives restarts of the ground process (issue #14, 6).

Each ground process used to number its TCs from 0, so three `gnomon ground send --at`
runs produced the same time-tagged activity three times under one request id; a command
in flight when the ground was killed stayed `sent` in the archive for ever; and
`--at T --wait completed` waited for the release instead of the insert.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ground_harness import CFG, FlightThread, flight_dictionary, free_udp_port
from typer.testing import CliRunner

from fsw.ccsds import TEST_KEY_FILE
from ground import Archive, CommandTimeouts, GroundSession, Stage
from ground.cli import ground_app
from ground.station import GroundStation, StationState, resume_seq

runner = CliRunner()
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def udp_flight() -> Iterator[str]:
    """A fresh spacecraft per test: each test's ground starts its SDLS numbering anew."""
    url = f"udp://127.0.0.1:{free_udp_port()}"
    with FlightThread(url):
        yield url


@pytest.fixture(scope="module")
def dict_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("restart") / "dictionary.json"
    path.write_text(json.dumps(flight_dictionary()), encoding="utf-8")
    return path


def _send(url: str, dict_file: Path, state: Path, *args: str) -> dict:
    result = runner.invoke(
        ground_app,
        [
            "send",
            *args,
            "--link",
            url,
            "--dict",
            str(dict_file),
            "--key-file",
            str(TEST_KEY_FILE),
            "--arsn-file",
            str(state / "numbering.json"),
            "--timeout",
            "10",
            "--json",
        ],
        env={"GNOMON_STATE_DIR": str(state)},
    )
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_three_ground_runs_give_three_request_ids(
    udp_flight: str, dict_file: Path, tmp_path: Path
) -> None:
    docs = [
        _send(udp_flight, dict_file, tmp_path, "PING", "--at", "+600", "--wait", "sent")
        for _ in range(3)
    ]
    activities = {d["request_id"] for d in docs}
    assert len(activities) == 3  # before: one request id three times
    inserts = {d["insert"]["request_id"] for d in docs}
    assert len(inserts) == 3 and not activities & inserts
    stored = [bytes.fromhex(d["insert"]["args"]["activities"][0]["tc"]) for d in docs]
    assert len(set(stored)) == 3  # three different activities on board, not one thrice
    state = json.loads((tmp_path / "numbering.json").read_text())
    assert state["tc_seq"] == max(d["insert"]["seq_count"] for d in docs) + 1


def test_request_ids_carry_on_from_the_archive_without_a_state_file(
    dict_file: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "gnd.sqlite"
    silent = f"udp://127.0.0.1:{free_udp_port()}"  # the numbering is the ground's own
    ids = []
    for _ in range(3):
        doc = _send(
            silent,
            dict_file,
            tmp_path,
            "PING",
            "--no-keep-arsn",
            "--archive",
            str(archive),
            "--wait",
            "sent",
        )
        ids.append(doc["request_id"])
    assert len(set(ids)) == 3
    with Archive(archive) as a:
        assert [c.seq_count for c in a.commands()] == [0, 1, 2]


def test_resume_seq_takes_the_newer_source_and_skips_a_time_tagged_pair(tmp_path: Path) -> None:
    state = StationState(tmp_path / "state.json", CFG.spacecraft_id)
    state.load()
    assert resume_seq(None, state.next_seq, state.saved_unix) == 0
    state.save({1: 7}, next_seq=41)
    reread = StationState(tmp_path / "state.json", CFG.spacecraft_id)
    assert reread.load() == {1: 7} and reread.next_seq == 41
    assert resume_seq(None, reread.next_seq, reread.saved_unix) == 41
    with Archive(tmp_path / "a.sqlite") as arch:
        # a time-tagged PING numbered 16383 inside its insert numbered 0 (the count wraps):
        # the archive holds the insert first, then the activity
        session = GroundSession(flight_dictionary(), CFG, arch, first_seq=0x3FFF)
        session.send_time_tagged("PING", 1e9, time.time() + 10.0)
        # archive newer than the state file: it wins, past both commands of the pair
        assert resume_seq(arch, reread.next_seq, reread.saved_unix) == 1


def test_at_waits_for_the_insert_and_reports_a_far_release_separately(
    udp_flight: str, dict_file: Path, tmp_path: Path
) -> None:
    doc = _send(udp_flight, dict_file, tmp_path, "PING", "--at", "+3600", "--wait", "completed")
    # exit 0 (checked in _send): before, it waited for the release and exited 1
    assert doc["ok"] and doc["insert"]["status"] == "completed"
    assert doc["status"] == "scheduled" and not doc["release_waited"]
    result = runner.invoke(
        ground_app,
        [
            "send",
            "PING",
            "--at",
            "+3600",
            "--link",
            udp_flight,
            "--dict",
            str(dict_file),
            "--arsn-file",
            str(tmp_path / "numbering.json"),
            "--timeout",
            "10",
        ],
        env={"GNOMON_STATE_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    assert "SCHED_INSERT" in result.stdout and "completed" in result.stdout
    assert "to be released on board at TAI" in result.stdout  # the release, said separately


def test_a_killed_ground_leaves_no_command_sent_for_ever(dict_file: Path, tmp_path: Path) -> None:
    """kill -9 a `gnomon ground send` while its PING waits (no spacecraft answers): the
    next ground on that archive closes it as timed_out, GROUND_RESTART, with the time."""
    archive = tmp_path / "gnd.sqlite"
    silent = f"udp://127.0.0.1:{free_udp_port()}"
    env = {**os.environ, "GNOMON_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ground.cli",
            "send",
            "PING",
            "--link",
            silent,
            "--dict",
            str(dict_file),
            "--archive",
            str(archive),
            "--timeout",
            "60",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            if archive.exists():
                with Archive(archive) as a:
                    if a.commands():
                        break
            time.sleep(0.2)
        else:
            pytest.fail("the ground process never archived its command")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with Archive(archive) as a:
        (before,) = a.commands()
    assert before.status == "sent"  # what a killed ground leaves behind
    t_restart = time.time()
    with (
        Archive(archive) as a,
        GroundStation(flight_dictionary(), CFG, silent, a, join=False) as station,
    ):
        handle = station.commands.get(before.request_id)
        assert handle is not None and handle.status is Stage.TIMED_OUT
        assert handle.failure_code == "GROUND_RESTART"
    with Archive(archive) as a:
        (after,) = a.commands()
    assert (after.status, after.failure_code) == ("timed_out", "GROUND_RESTART")
    last = after.stages[-1]
    assert last.stage is Stage.TIMED_OUT and last.t_ground_s >= t_restart - 1.0
    assert "ground process that sent it stopped" in (last.reason or "")


def test_late_reports_attach_to_commands_of_an_earlier_ground_process(
    udp_flight: str, tmp_path: Path
) -> None:
    archive = tmp_path / "gnd.sqlite"
    state = tmp_path / "state.json"
    with (
        Archive(archive) as a,
        GroundStation(
            flight_dictionary(), CFG, udp_flight, a, arsn_file=state, timeouts=CommandTimeouts()
        ) as first,
    ):
        assert first.wait_for(lambda: first.spacecraft_tai() is not None, 10.0)
        release = float(first.spacecraft_tai() or 0.0) + 8.0
        insert, ping = first.send_time_tagged("PING", release)
        assert first.await_stage(insert, "completed", 10.0)
        first._stop.set()  # this ground dies before the release: it hears nothing more
    with Archive(archive) as a:
        assert {c.name: c.status for c in a.commands()}["PING"] == "scheduled"
    with (
        Archive(archive) as a,
        GroundStation(flight_dictionary(), CFG, udp_flight, a, arsn_file=state) as second,
    ):
        late = second.commands.get(ping.request_id)
        assert late is not None and late.status is Stage.SCHEDULED  # not closed: not due yet
        assert second.await_stage(late, "completed", 20.0)
    with Archive(archive) as a:
        record = next(c for c in a.commands() if c.request_id == ping.request_id)
    assert record.status == "completed"
    assert [s.stage.value for s in record.stages][-1] == "completed"
