"""PUS service 8 function management, component declarations and the counters."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fsw.app import build_flight
from fsw.ccsds import PusTc
from fsw.core import (
    Arg,
    Channel,
    Component,
    CoreError,
    DeclarationError,
    Event,
    FlightSoftware,
    Param,
    Severity,
    command,
)
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of, verification


class Radio(Component):
    NAME = "radio"
    TELEMETRY = (Channel("tx_power_dbm", "i8", units="dBm", id=4),)
    EVENTS = (Event("TX", Severity.INFO, "tx {on}", (Arg("on", "bool"),), id=1),)
    PARAMETERS = (Param("beacon_s", "u16", default=30, min=5, max=600, units="s", id=1),)

    def on_init(self) -> None:
        self.on = False

    @command(opcode=5, args=(Arg("on", "bool"), Arg("power_dbm", "i8", min=-10, max=30)))
    def set_tx(self, on: bool, power_dbm: int) -> None:
        """Switch the transmitter."""
        self.on = on
        self.tlm("tx_power_dbm", power_dbm)
        self.event("TX", on)

    @command(opcode=1)
    def reboot(self) -> None:
        self.on_init()


@pytest.fixture
def fs() -> FlightSoftware:
    fs = build_flight(components={16: Radio()})
    fs.step(0.0)
    fs.downlink_packets()
    return fs


@pytest.mark.req("CMD-010")
def test_function_ids_are_component_id_and_opcode(fs: FlightSoftware) -> None:
    radio = fs.components["radio"]
    assert radio.component_id == 16
    fids = {e.full_name: e.function_id for e in fs.cmd.entries() if e.component is radio}
    assert fids == {"radio.RESET_COUNTERS": 0x1000, "radio.SET_TX": 0x1005, "radio.REBOOT": 0x1001}
    assert fs.registry.channel_by_name["radio.tx_power_dbm"].id == 0x1004
    assert fs.registry.event_by_name["radio.TX"].id == 0x1001
    assert fs.registry.param_by_name["radio.beacon_s"].id == 0x1001


@pytest.mark.req("CMD-010")
def test_perform_function_with_args(fs: FlightSoftware) -> None:
    raw = PusTc(
        apid=100,
        service=8,
        subservice=1,
        app_data=bytes.fromhex("1005") + b"\x01" + (-3).to_bytes(1, "big", signed=True),
        seq_count=1,
    ).encode()
    fs.uplink_packet(raw)
    fs.step(0.0)
    assert verification(decode_downlink(fs), request_id_of(raw)) == [
        (1, None),
        (3, None),
        (7, None),
    ]
    assert fs.telemetry("radio.tx_power_dbm") == -3
    assert fs.components["radio"].on  # type: ignore[attr-defined]
    assert fs.telemetry("radio.cmds_accepted") == 1


def test_counters_and_reset(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    fs.uplink_packet(enc.encode("radio.SET_TX", on=True, power_dbm=1))
    fid = next(e.function_id for e in fs.cmd.entries() if e.full_name == "radio.SET_TX")
    assert fid is not None
    fs.uplink_packet(
        PusTc(
            apid=100, service=8, subservice=1, app_data=fid.to_bytes(2, "big") + b"\x01\x7f"
        ).encode()
    )
    fs.step(0.0)
    assert (fs.telemetry("radio.cmds_accepted"), fs.telemetry("radio.cmds_rejected")) == (1, 1)
    tc = enc.encode("radio.RESET_COUNTERS")
    fs.uplink_packet(tc)
    fs.step(0.0)
    assert verification(decode_downlink(fs), request_id_of(tc))[-1] == (7, None)
    assert (
        fs.telemetry("radio.cmds_accepted"),
        fs.telemetry("radio.cmds_rejected"),
        fs.telemetry("radio.errors"),
    ) == (0, 0, 0)
    assert fs.telemetry("cmd.tc_accepted") == 2  # other components keep theirs


def test_declaration_errors_are_caught_at_class_creation() -> None:
    with pytest.raises(DeclarationError, match="duplicate telemetry channels"):
        type("Dup", (Component,), {"TELEMETRY": (Channel("errors", "u8", id=4),)})
    with pytest.raises(DeclarationError, match="lower case"):
        Channel("SOC", "f32", id=4)
    with pytest.raises(DeclarationError, match="unknown args"):
        Event("X", Severity.INFO, "{missing}", id=1)
    with pytest.raises(DeclarationError, match="bad default"):
        Param("p", "u8", default=300, id=1)
    with pytest.raises(DeclarationError, match="duplicate command opcodes"):

        class Twice(Component):
            @command(opcode=1)
            def a(self) -> None: ...

            @command(opcode=1)
            def b(self) -> None: ...


def test_registration_errors(fs: FlightSoftware) -> None:
    with pytest.raises(DeclarationError, match="already exists"):
        fs.add_component(Radio(), component_id=17)
    with pytest.raises(DeclarationError, match="already used by 'radio'"):
        fs.add_component(Radio("radio2"), component_id=16)

    class Bad(Component):
        RATE_GROUPS = ("3Hz",)

    with pytest.raises(DeclarationError, match="unknown rate group '3Hz'"):
        fs.add_component(Bad(), component_id=18)
    with pytest.raises(CoreError, match="not registered"):
        Radio("loose").tlm("tx_power_dbm", 1)


@pytest.mark.req("HK-007")
def test_tlm_and_param_api_errors(fs: FlightSoftware) -> None:
    radio = fs.components["radio"]
    with pytest.raises(CoreError, match="no telemetry channel 'nope'"):
        radio.tlm("nope", 1)
    with pytest.raises(CoreError, match="does not fit its type"):
        radio.tlm("tx_power_dbm", "loud")
    radio.tlm("tx_power_dbm", 1000)  # saturates instead of breaking housekeeping
    assert fs.telemetry("radio.tx_power_dbm") == 127
    assert radio.param("beacon_s") == 30
    with pytest.raises(CoreError, match="no parameter 'nope'"):
        radio.param("nope")


def test_second_instance_gets_its_own_ids() -> None:
    fs = build_flight(components={16: Radio("uhf"), 17: Radio("sband")})
    assert fs.registry.channel_by_name["sband.tx_power_dbm"].id == 0x1104
    names = [e.full_name for e in fs.cmd.entries()]
    assert "uhf.SET_TX" in names and "sband.SET_TX" in names
    fs.uplink_packet(CommandEncoder(fs).encode("sband.SET_TX", on=True, power_dbm=7))
    fs.step(0.0)
    assert (fs.telemetry("sband.tx_power_dbm"), fs.telemetry("uhf.tx_power_dbm")) == (7, 0)


def test_dispatcher_reset_clears_tc_counters(fs: FlightSoftware) -> None:
    enc = CommandEncoder(fs)
    fs.uplink_packet(enc.encode("PING"))
    fs.uplink_packet(b"junk")
    fs.step(0.0)
    assert fs.telemetry("cmd.tc_malformed") == 1
    fs.uplink_packet(enc.encode("cmd.RESET_COUNTERS"))
    fs.step(0.0)
    # the reset itself was received and accepted before the counters were zeroed
    assert [
        fs.telemetry(f"cmd.{c}")
        for c in ("tc_received", "tc_accepted", "tc_malformed", "cmds_accepted")
    ] == [0, 0, 0, 0]


def test_forgetting_super_init_is_explained(fs: FlightSoftware) -> None:
    class NoSuper(Component):
        def __init__(self) -> None:
            self.name = "nosuper"

    with pytest.raises(DeclarationError, match=r"must call super\(\).__init__"):
        fs.add_component(NoSuper(), component_id=18)


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: Channel("soc_pct", "f32"), "channel soc_pct: give its pinned local id, e.g. id=4"),
        (
            lambda: Event("HOT", Severity.LOW, "hot"),
            "event HOT: give its pinned local id, e.g. id=1",
        ),
        (lambda: Param("gain", "u8", default=1), "parameter gain: give its pinned local id"),
        (lambda: Channel("soc_pct", "f32", id=256), "id 256 outside 1..255"),
    ],
)
def test_a_declaration_without_its_pinned_id_is_refused(declare: Any, message: str) -> None:
    """Ids are written, never counted: a missing or impossible id fails at import time."""
    with pytest.raises(DeclarationError, match=re.escape(message)):
        declare()


def test_a_component_cannot_reuse_an_id_or_take_a_counter_channel_id() -> None:
    with pytest.raises(DeclarationError, match="channels a and b both have id=4"):
        type(
            "Two", (Component,), {"TELEMETRY": (Channel("a", "u8", id=4), Channel("b", "u8", id=4))}
        )
    with pytest.raises(DeclarationError, match="id 2 is a counter channel's"):
        type("Ctr", (Component,), {"TELEMETRY": (Channel("a", "u8", id=2),)})
    with pytest.raises(DeclarationError, match="events A and B both have id=1"):
        type(
            "Ev",
            (Component,),
            {"EVENTS": (Event("A", Severity.LOW, "a", id=1), Event("B", Severity.LOW, "b", id=1))},
        )
    with pytest.raises(DeclarationError, match="command GO: give its pinned opcode"):

        class NoOpcode(Component):
            @command()
            def go(self) -> None: ...


def test_inserting_a_declaration_moves_no_other_id() -> None:
    """The hazard pinning removes: a channel added in the middle leaves the others' ids."""

    class Before(Component):
        NAME = "before"
        TELEMETRY = (Channel("a", "u8", id=4), Channel("b", "u8", id=5))

    class After(Component):
        NAME = "after"
        TELEMETRY = (Channel("a", "u8", id=4), Channel("new", "u8", id=6), Channel("b", "u8", id=5))

    fs = build_flight(components={16: Before(), 17: After()})
    ids = {name: info.id & 0xFF for name, info in fs.registry.channel_by_name.items()}
    assert (ids["before.a"], ids["before.b"]) == (ids["after.a"], ids["after.b"]) == (4, 5)
    assert ids["after.new"] == 6
