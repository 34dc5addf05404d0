"""The board back-end of the HAL over the sim-bridge (in-memory cable, no serial port)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from fsw.app import build_flight
from fsw.ccsds import GroundLink, PusTc, PusTm
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.comms.radio import RadioHost
from fsw.hal.board import BRIDGE_ID, BoardBridge, Bridge, BridgeClock, shipped_model_files
from fsw.hal.interfaces import EpsReading
from fsw.hal.simbridge import (
    BoardHello,
    BridgePort,
    BulkRequest,
    EpsSample,
    FrameMsg,
    Message,
    PlatformMsg,
    PowerModeMsg,
    TimeSync,
)
from fsw.link import memory_pair
from hil.sim.scenario import load_scenario
from hil.sim.sim_hal import platform_of

pytestmark = pytest.mark.timeout(60)

T0 = 2_100_000_000.0


class BenchEnd:
    """The bench's end of an in-memory cable, collecting what the board says."""

    def __init__(self) -> None:
        board_end, bench_end = memory_pair()
        self.messages: list[Message] = []
        self.bulk = 0
        self.arrived = threading.Event()
        self.port = BridgePort(bench_end, on_message=self._msg, on_bulk=self._bulk)
        self.board = BoardBridge(board_end, info={"host": "test"})

    def _msg(self, m: Message) -> None:
        self.messages.append(m)
        self.arrived.set()

    def _bulk(self, n: int) -> None:
        self.bulk += n
        self.arrived.set()

    def wait(self, cond: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        for _ in range(int(timeout_s / 0.05)):
            if cond():
                return True
            self.arrived.wait(0.05)
            self.arrived.clear()
        return cond()

    def close(self) -> None:
        self.board.close()
        self.port.close()


@pytest.fixture
def cable() -> Iterator[BenchEnd]:
    c = BenchEnd()
    yield c
    c.close()


def test_clock_follows_the_bench_and_never_goes_back_within_a_session() -> None:
    c = BridgeClock()
    c.sync(TimeSync(T0, 100.0, session=1))
    t1 = c.now_tai()
    assert T0 <= t1 < T0 + 5.0 and c.speed == 100.0
    c.sync(TimeSync(T0 - 50.0, 100.0, session=1))  # the bench lags: board time holds
    assert c.now_tai() >= t1
    c.sync(TimeSync(T0 - 1e6, 1.0, session=2))  # a new bench run: jump to its time
    assert c.now_tai() < T0 - 1e6 + 5.0 and c.session == 2


def test_board_waits_for_the_bench_then_gets_platform_and_time(cable: BenchEnd) -> None:
    assert not cable.board.wait_synced(0.2)  # nobody there yet: a hello, then False
    assert cable.wait(lambda: any(isinstance(m, BoardHello) for m in cable.messages))
    hello = next(m for m in cable.messages if isinstance(m, BoardHello))
    assert hello.info == {"host": "test"}
    p = platform_of(load_scenario("sitl-short"))
    cable.port.send_message(PlatformMsg(p))
    cable.port.send_message(TimeSync(T0, 1.0, session=9))
    assert cable.board.wait_synced(5.0)
    assert cable.board.platform == p and cable.board.clock.session == 9
    assert abs(cable.board.clock.now_tai() - T0) < 5.0


def test_devices_read_the_bench(cable: BenchEnd) -> None:
    board = cable.board
    assert board.eps.read().valid is False  # nothing yet
    cable.port.send_message(TimeSync(T0, 1.0, session=1))
    reading = EpsReading(True, T0, 0.81, 60.0, 20.5, 9.0, 8.1)
    cable.port.send_message(EpsSample(reading))
    px = np.full((4, 64, 64), 0.25, dtype=np.float32)
    cable.port.send_message(FrameMsg(5, T0, 10.0, 20.0, 3.0, px))
    assert cable.wait(lambda: board.stats["frames"] == 1 and board.stats["eps_samples"] == 1)
    assert board.eps.read() == reading
    frames = board.camera.poll()
    assert [f.frame_id for f in frames] == [5] and float(frames[0].pixels.mean()) == 0.25
    assert board.camera.poll() == []
    cable.port.send_message(TimeSync(T0 + 60.0, 1.0, session=1))  # no EPS for 60 s
    assert cable.wait(lambda: board.eps.read().valid is False)


def test_power_mode_and_bulk_go_to_the_bench(cable: BenchEnd) -> None:
    cable.board.payload_power.set_mode("15W")
    cable.board.payload_power.set_mode("15W")  # unchanged: not sent again
    cable.board.payload_power.set_mode(None)
    assert cable.wait(lambda: len([m for m in cable.messages if isinstance(m, PowerModeMsg)]) == 2)
    modes = [m.mode for m in cable.messages if isinstance(m, PowerModeMsg)]
    assert modes == ["15W", None]
    cable.port.send_message(BulkRequest(100_000))
    assert cable.wait(lambda: cable.bulk == 100_000)


def test_flight_on_the_board_hal_and_radio_over_the_mux(cable: BenchEnd) -> None:
    board = cable.board
    cable.port.send_message(PlatformMsg(platform_of(load_scenario("sitl-short"))))
    cable.port.send_message(TimeSync(T0, 1.0, session=1))
    assert board.wait_synced(5.0)
    cable.port.send_message(EpsSample(EpsReading(True, T0, 0.9, 70.0, 0.0, 8.0, 8.2)))
    assert cable.wait(lambda: board.stats["eps_samples"] == 1)
    cfg = LinkConfig.load(TEST_KEY_FILE)
    fs = build_flight(
        board.clock,
        link_config=cfg,
        hal=board.hal(shipped_model_files()),
        components={BRIDGE_ID: Bridge(board)},
    )
    assert fs.telemetry("payload.models_loaded") == 2
    radio = RadioHost(fs)
    ground = GroundLink(cfg)
    cable.port.radio.send(
        ground.send_tc(PusTc(apid=100, service=17, subservice=1).encode(), now_s=0)
    )
    got: list[tuple[int, int]] = []

    def ping_answered() -> bool:
        for p in ground.receive(cable.port.radio.recv(0.05), now_s=0):
            tm = PusTm.decode(p)
            got.append((tm.service, tm.subservice))
        return (17, 2) in got

    stop = threading.Event()
    t = threading.Thread(
        target=radio.serve, args=(board.radio, 10.0), kwargs={"stop": stop.is_set}, daemon=True
    )
    t.start()
    try:
        assert cable.wait(ping_answered, 8.0)
        assert cable.wait(lambda: fs.telemetry("eps.valid") is True, 5.0)
        assert fs.telemetry("eps.soc_pct") == pytest.approx(90.0)
        assert cable.wait(lambda: fs.telemetry("bridge.eps_samples") == 1, 5.0)
        assert fs.telemetry("bridge.time_syncs") >= 1 and fs.telemetry("bridge.speed") == 1.0
    finally:
        stop.set()
        t.join(5.0)


def test_fsw_run_sim_bridge_needs_a_link_and_gives_up_without_a_bench(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fsw.cli import fsw_app

    res = CliRunner().invoke(fsw_app, ["run", "--sim-bridge"])
    assert res.exit_code == 2 and "--sim-bridge needs --link" in res.output
    res = CliRunner().invoke(
        fsw_app,
        [
            "run",
            "--sim-bridge",
            "--link",
            f"serial://{tmp_path / 'ttyNONE'}?baud=921600",
            "--bench-timeout",
            "0.5",
        ],
    )
    assert res.exit_code == 2 and "no bench answered" in res.output


def test_nvpmodel_switch_runs_the_command_and_failures_are_counted(cable: BenchEnd) -> None:
    from fsw.hal.board import BoardPayloadPower, NvpModel

    assert NvpModel.parse("7W=1, 15W=0, off=2").off == 2
    with pytest.raises(ValueError, match="NAME=ID"):
        NvpModel.parse("7W")
    NvpModel({"7W": 1}, command="true")("7W")  # `true -m 1` succeeds
    with pytest.raises(ValueError, match="no nvpmodel id"):
        NvpModel({"7W": 1}, command="true")("15W")
    pp = BoardPayloadPower(cable.port, cable.board.clock, NvpModel({"7W": 1}, command="false"))
    pp.set_mode("7W")  # `false` fails: logged, counted, the mode still reported
    assert pp.failures == 1 and pp.switches == 1 and pp.mode == "7W"


def test_a_failing_handler_does_not_take_the_cable_down() -> None:
    a, b = memory_pair()
    seen: list[Message] = []

    def handler(m: Message) -> None:
        seen.append(m)
        if len(seen) == 1:
            raise RuntimeError("bug in a handler")

    rx = BridgePort(a, on_message=handler)
    tx = BridgePort(b)
    try:
        tx.send_message(BulkRequest(1))
        tx.send_message(BulkRequest(2))
        tx.radio.send(b"\x1a\xcf\xfc\x1d")
        assert rx.radio.recv(3.0) == b"\x1a\xcf\xfc\x1d"
        for _ in range(60):
            if len(seen) == 2:
                break
            rx.radio.recv(0.05)
        assert seen == [BulkRequest(1), BulkRequest(2)]
        assert rx.stats["handler_errors"] == 1
    finally:
        rx.close()
        tx.close()
