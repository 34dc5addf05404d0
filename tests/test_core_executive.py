"""Executive: rate groups from the Clock, determinism, real-time pacing, queues."""

from __future__ import annotations

import pytest

from fsw.app import build_flight
from fsw.ccsds import PusTc
from fsw.core import Component, CoreError, FlightConfig, Priority, SimClock, WallClock
from fsw.core.clock import DEFAULT_START_TAI
from fsw.core.registry import DownlinkQueue
from fsw.core.testing import CommandEncoder, decode_downlink


class Counter(Component):
    NAME = "counter"
    RATE_GROUPS = ("10Hz", "1Hz")

    def on_init(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def on_tick(self, rate_group: str) -> None:
        self.calls.append((rate_group, round(self.clock.met(), 6)))


@pytest.mark.req("EXEC-001")
def test_rate_groups_run_at_their_periods() -> None:
    c = Counter()
    fs = build_flight(components={16: c})
    assert fs.step(1.0) == 10
    assert [g for g, _ in c.calls].count("10Hz") == 10
    assert [(g, t) for g, t in c.calls if g == "1Hz"] == [("1Hz", 1.0)]
    assert c.calls[0] == ("10Hz", 0.1)
    assert fs.telemetry("exec.cycles") == 10
    assert fs.telemetry("exec.met_s") == 1


@pytest.mark.req("EXEC-002")
def test_fractional_steps_carry_over() -> None:
    c = Counter()
    fs = build_flight(components={16: c})
    assert [fs.step(0.04) for _ in range(5)] == [0, 0, 1, 0, 1]
    assert fs.step(0.0) == 0
    assert abs(fs.clock.met() - 0.2) < 1e-6  # 2 cycles (TAI ~2e9 s: float resolution)


@pytest.mark.req("EXEC-001")
def test_long_runs_do_not_drift() -> None:
    fs = build_flight(clock=SimClock(DEFAULT_START_TAI))
    for _ in range(1000):
        fs.step(1.0)
    assert fs.clock.now_tai() == DEFAULT_START_TAI + 1000.0
    for _ in range(5000):
        fs.step(0.3)
    assert abs(fs.clock.now_tai() - (DEFAULT_START_TAI + 2500.0)) < 1e-6


@pytest.mark.req("EXEC-003")
def test_same_inputs_give_the_same_downlink() -> None:
    def run() -> list[bytes]:
        fs = build_flight(clock=SimClock(DEFAULT_START_TAI))
        enc = CommandEncoder(fs)
        out: list[bytes] = []
        for i in range(30):
            if i % 7 == 0:
                fs.uplink_packet(enc.encode("PING"))
            fs.step(1.0)
            out += fs.downlink_packets()
        return out

    a, b = run(), run()
    assert a == b and len(a) > 50


@pytest.mark.req("EXEC-004")
def test_step_errors() -> None:
    fs = build_flight()
    with pytest.raises(CoreError, match="non-negative"):
        fs.step(-1.0)
    board = build_flight(clock=WallClock())
    with pytest.raises(CoreError, match="needs a SimClock"):
        board.step(1.0)


@pytest.mark.req("EXEC-005")
def test_realtime_pacing_and_overrun() -> None:
    class Wall:
        def __init__(self) -> None:
            self.t = 0.0
            self.sleeps: list[float] = []

        def now_tai(self) -> float:
            return 2e9 + self.t

        def met(self) -> float:
            return self.t

        def sleep(self, dt: float) -> None:
            self.sleeps.append(dt)
            self.t += dt

    clk = Wall()

    class Slow(Component):
        NAME = "slow"
        RATE_GROUPS = ("1Hz",)

        def on_tick(self, rate_group: str) -> None:
            if clk.t > 2.5 and not getattr(self, "done", False):
                self.done = True
                clk.t += 3.0  # a 3-second stall: the executive is 30 cycles behind

    fs = build_flight(clock=clk, components={16: Slow()})
    cycles = fs.run_realtime(10.0, sleep=clk.sleep)
    assert fs.telemetry("exec.overruns") == 1
    assert any(e.name == "exec.OVERRUN" for e in fs.recent_events)
    assert 60 <= cycles <= 75  # the missed cycles were skipped, not raced through
    assert all(s > 0 for s in clk.sleeps)


@pytest.mark.req("EXEC-006")
def test_downlink_queue_priorities_and_drops() -> None:
    q = DownlinkQueue(capacity=3)
    q.put(Priority.HK, b"h1")
    q.put(Priority.EVENT, b"e1")
    q.put(Priority.HK, b"h2")
    q.put(Priority.REALTIME, b"v1")  # evicts the oldest HK
    q.put(Priority.HK, b"h3")  # evicts h2 (oldest of its own class)
    assert q.dropped == [0, 0, 2]
    q.put(Priority.REALTIME, b"v2")  # evicts h3
    q.put(Priority.REALTIME, b"v3")  # evicts e1
    q.put(Priority.HK, b"h4")  # nothing less important left: the newcomer is dropped
    assert q.dropped == [0, 1, 4]
    assert q.drain(2) == [b"v1", b"v2"]
    assert q.drain() == [b"v3"]
    assert len(q) == 0


@pytest.mark.req("EXEC-006")
def test_full_downlink_is_counted_and_reported() -> None:
    fs = build_flight(config=FlightConfig(downlink_capacity=8))
    fs.step(30.0)
    assert len(fs.downlink_packets()) == 8
    assert fs.telemetry("exec.dl_dropped") > 0
    assert any(
        e.name == "mode.MONITOR_TRIPPED" and "downlink_overflow" in e.text for e in fs.recent_events
    )


@pytest.mark.req("CMD-009")
def test_uplink_queue_overflow_is_counted() -> None:
    fs = build_flight(config=FlightConfig(uplink_capacity=4))
    ping = PusTc(apid=100, service=17, subservice=1).encode()
    for _ in range(6):
        fs.uplink_packet(ping)
    fs.step(0.0)
    assert fs.telemetry("cmd.uplink_dropped") == 2
    assert any(e.name == "cmd.UPLINK_OVERFLOW" for e in fs.recent_events)
    assert [r.subservice for r in decode_downlink(fs) if r.service == 17] == [2] * 4


def test_bad_rate_group_config() -> None:
    with pytest.raises(CoreError, match="not a whole multiple"):
        FlightConfig(rate_groups=(("10Hz", 0.1), ("1Hz", 1.0), ("3Hz", 0.333)))


@pytest.mark.req("EXEC-007")
def test_a_tick_that_raises_does_not_stop_the_cycle() -> None:
    class Broken(Component):
        NAME = "broken"
        RATE_GROUPS = ("10Hz",)

        def on_tick(self, rate_group: str) -> None:
            raise RuntimeError("bus fault")

    c = Counter()
    fs = build_flight(components={16: Broken(), 17: c})
    assert fs.step(1.0) == 10
    assert [g for g, _ in c.calls].count("10Hz") == 10  # the others ran every cycle
    assert fs.telemetry("broken.errors") >= 1
    assert fs.telemetry("exec.cycles") == 10
