"""GroundSession against the real flight software on a simulated clock (no threads)."""

from __future__ import annotations

import pytest
from test_ground_harness import CFG, SimLink, flight_dictionary

from fsw.ccsds import InitMode, PusTm, cuc_encode
from ground import (
    Archive,
    CommandTimeouts,
    CommandValidationError,
    Dictionary,
    GroundSession,
    LimitState,
    Stage,
    TelemetryTable,
    minimal_dictionary,
)


def test_ping_reports_every_stage_with_onboard_times() -> None:
    link = SimLink()
    handle = link.send("PING")
    link.run(0.5)
    assert handle.reached("completed") and not handle.failed
    assert [s.stage for s in handle.stages] == [
        Stage.SENT,
        Stage.ACCEPTED,
        Stage.STARTED,
        Stage.COMPLETED,
    ]
    boot_tai = link.fs.clock.now_tai() - 0.5
    assert all(s.t_tai is not None and s.t_tai >= boot_tai for s in handle.stages[1:])
    assert link.ground.stats["replies"] >= 1  # the (17,2) PONG
    assert "completed" in handle.summary()


def test_rejected_command_carries_its_failure_code_and_reason() -> None:
    link = SimLink()
    handle = link.send("SEQ_START", seq_id=77)
    link.run(0.5)
    assert handle.failed and handle.status is Stage.FAILED
    assert handle.failure_code == "NOT_FOUND"
    assert handle.reason == "no sequence with id 77"
    assert handle.stages[-1].step == "completion"
    assert any(
        ev.name == "cmd.TC_FAILED" and "SEQ_START" in ev.message for ev in link.ground.events
    )


def test_acceptance_failure_of_a_corrupted_packet() -> None:
    link = SimLink()
    tc = bytearray(link.ground.encode_command("PING"))
    tc[-1] ^= 0xFF  # break the packet error control
    handle, cltus = link.ground.send_packet(bytes(tc), link.now_s)
    link.uplink(cltus)
    link.run(0.5)
    assert handle.name == "PING"
    assert (handle.failure_code, handle.stages[-1].step) == ("BAD_CHECKSUM", "acceptance")


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("PNG", {}, "no command named 'PNG'; did you mean PING?"),
        ("SEQ_START", {"seq_id": 0}, "SEQ_START: seq_id 0 below min 1"),
        ("SEQ_START", {}, "SEQ_START: missing argument seq_id (u16 1..65535)"),
        ("SEQ_START", {"seqid": 3}, "unknown argument 'seqid'; did you mean seq_id?"),
        (
            "PARAM_SET",
            {"params": [{"param_id": "health.max_restarts", "value": 101}]},
            "PARAM_SET: params[0].value 101 above max 100 (parameter health.max_restarts)",
        ),
        (
            "PARAM_SET",
            {"params": [{"param_id": "health.max_restart", "value": 1}]},
            "no param named 'health.max_restart'; did you mean health.max_restarts?",
        ),
        ("health.RESTART", {"component": "x" * 40}, "component is 40 bytes long, at most 32"),
    ],
)
def test_validation_refuses_before_anything_is_sent(
    command: str, args: dict[str, object], message: str
) -> None:
    link = SimLink()
    with pytest.raises(CommandValidationError) as err:
        link.send(command, **args)
    assert message in str(err.value)
    link.run(0.3)
    assert link.ground.stats["tc_sent"] == 0
    assert link.fs.telemetry("cmd.tc_received") == 0


def test_parameter_set_then_read_back_in_housekeeping_and_reply() -> None:
    link = SimLink()
    pid = flight_dictionary()["parameters"]
    max_restarts = next(p["id"] for p in pid if p["name"] == "health.max_restarts")
    set_cmd = link.send("PARAM_SET", params=[{"param_id": "health.max_restarts", "value": 7}])
    link.run(0.3)
    assert set_cmd.reached("completed")
    link.send("HK_ONE_SHOT", sids=["prm"])  # structure given by its name
    get_cmd = link.send("PARAM_GET", param_ids=["health.max_restarts"])
    replies = []
    link.ground.on_decoded(lambda d: replies.append(d) if d.name == "prm.VALUES" else None)
    link.run(0.3)
    assert get_cmd.reached("completed")
    assert link.ground.telemetry.value("prm.last_set_id") == max_restarts
    assert replies[-1].fields["params"] == [{"param_id": max_restarts, "value": 7}]


def test_time_tagged_command_runs_at_its_release_time() -> None:
    link = SimLink()
    link.run(1.0)
    now_tai = link.ground.spacecraft_tai(link.now_s)
    assert now_tai is not None
    assert now_tai == pytest.approx(link.fs.clock.now_tai(), abs=1.0)
    insert, inner, cltus = link.ground.send_time_tagged("PING", now_tai + 3.0, link.now_s)
    link.uplink(cltus)
    link.run(1.0)
    assert insert.reached("completed")
    assert inner.status is Stage.SCHEDULED and inner.parent is insert
    link.run(3.0)
    assert inner.reached("completed")
    accepted = next(s for s in inner.stages if s.stage is Stage.ACCEPTED)
    assert accepted.t_tai is not None
    assert now_tai + 3.0 <= accepted.t_tai < now_tai + 3.3


def test_lost_uplink_is_retransmitted_by_cop1() -> None:
    link = SimLink()
    dropped: list[bytes] = []

    def lose_the_first(cltu: bytes) -> bool:
        if dropped:
            return True
        dropped.append(cltu)
        return False

    link.uplink_filter = lose_the_first
    handle = link.send("PING")
    link.run(1.0)
    assert not handle.reached("accepted")  # the only copy was lost
    link.run(3.0)  # timer T1 (2 s) expires: FOP-1 sends it again
    assert handle.reached("completed")
    assert link.ground.stats["fop_ad_retransmissions"] >= 1


def test_silence_times_out_with_a_reason() -> None:
    link = SimLink(timeouts=CommandTimeouts(accept_s=3.0, complete_s=10.0))
    link.uplink_filter = lambda cltu: False
    handle = link.send("PING")
    link.run(4.0)
    assert handle.status is Stage.TIMED_OUT and handle.timed_out
    assert handle.failure_code == "TIMEOUT"
    assert "no acceptance report within 3 s" in (handle.reason or "")
    assert link.ground.stats["commands_timed_out"] == 1


def test_new_ground_joins_a_running_spacecraft_with_unlock() -> None:
    link = SimLink()
    for _ in range(3):
        link.send("PING")
    link.run(0.5)
    assert link.ground.link is not None
    saved = link.ground.link.arsns()
    # A second ground starts from scratch; it needs the SDLS sequence number carried over.
    fresh = GroundSession(flight_dictionary(), CFG)
    assert fresh.link is not None
    fresh.link.resume_arsns(saved)
    link.ground = fresh
    blind = link.send("PING")  # numbered 0 again: FARM-1 expects 3
    link.run(1.0)
    assert not blind.reached("accepted")
    link.uplink(fresh.initiate(link.now_s, InitMode.WITH_UNLOCK))
    handle = link.send("PING")
    link.run(1.0)
    assert handle.reached("completed")


def test_ground_defined_housekeeping_is_learned_and_decoded() -> None:
    link = SimLink()
    create = link.send(
        "HK_CREATE", sid=77, interval_ms=1000, channel_ids=["mode.mode", "exec.met_s"]
    )
    link.run(0.3)
    assert create.reached("completed")
    assert 77 in link.ground.decoder.hk_layouts
    link.send("HK_ENABLE", sids=[77])
    seen = []
    link.ground.on_decoded(lambda d: seen.append(d) if d.kind == "hk" else None)
    link.run(2.5)
    assert any(
        d.fields["sid"] == 77 and set(d.fields["values"]) == {"mode.mode", "exec.met_s"}
        for d in seen
    )
    assert link.ground.stats["decode_errors"] == 0


def test_undecodable_packet_is_counted_archived_and_explained(tmp_path: object) -> None:
    archive = Archive(":memory:")
    session = GroundSession(flight_dictionary(), None, archive=archive)
    raw = PusTm(
        apid=102, service=3, subservice=25, app_data=b"\x03\xe7\x00\x01", time=cuc_encode(2e9)
    ).encode()
    out = session.receive_packets([raw], 5.0)
    assert out[0].error is not None and "sid 999 has no known structure" in out[0].error
    assert session.stats["decode_errors"] == 1
    archive.flush()
    assert archive.counts()["packets"] == 1


def test_every_downlink_packet_of_a_busy_minute_decodes() -> None:
    link = SimLink()
    for cmd, args in [
        ("PING", {}),
        ("EVT_REPORT_DISABLED", {}),
        ("MON_REPORT", {}),
        ("SCHED_REPORT", {}),
        ("HK_REPORT_STRUCTURE", {"sids": [1]}),
        ("MODE_SAFE_ENTER", {}),
        ("MODE_SAFE_EXIT", {}),
    ]:
        link.send(cmd, **args)
    link.run(60.0)
    stats = link.ground.stats
    assert stats["decode_errors"] == 0 and stats["unknown_reports"] == 0
    assert stats["hk_reports"] >= 60 and stats["commands_completed"] == 7
    assert link.ground.telemetry.value("mode.mode") == "NOMINAL"
    assert stats["tm_packets_missing"] == 0


def test_telemetry_table_limits_and_patterns() -> None:
    table = TelemetryTable(Dictionary(minimal_dictionary()))
    table.update(("demo.temp_c", "demo.state", "demo.count"), (-15.0, "BUSY", 3), 10.0)
    temp = table.get("demo.temp_c")
    assert temp is not None and temp.limit is LimitState.YELLOW_LOW
    assert temp.limit.colour == "yellow"
    assert [v.name for v in table.values("demo.c*")] == ["demo.count"]
    assert [v.name for v in table.values("state")] == ["demo.state"]
    table.update(("demo.temp_c",), (float("nan"),), 11.0)
    assert table.get("demo.temp_c").limit is LimitState.INVALID  # type: ignore[union-attr]


def test_the_ground_notices_a_flight_built_with_another_dictionary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = SimLink()
    link.send("HK_ONE_SHOT", sids=["exec"])
    link.run(0.5)
    assert link.ground.flight_dict_hash == link.ground.expected_dict_hash
    assert link.ground.stats["dictionary_mismatch"] == 0

    stale = dict(flight_dictionary())
    stale["content_hash"] = "sha256:" + "0" * 64  # a ground dictionary from another build
    other = SimLink()
    other.ground = GroundSession(stale, CFG)
    with caplog.at_level("WARNING", logger="ground.session"):
        other.send("HK_ONE_SHOT", sids=["exec"])
        other.send("HK_ONE_SHOT", sids=["exec"])
        other.run(0.5)
    assert other.ground.stats["dictionary_mismatch"] == 2
    warnings = [r for r in caplog.records if "different dictionary" in r.getMessage()]
    assert len(warnings) == 1  # said once, counted every time
