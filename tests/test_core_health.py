"""Health: heartbeats, silent components restarted or isolated; the systemd watchdog."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsw.app import build_flight
from fsw.core import Channel, Component, FlightSoftware, SdNotifier
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of, verification


class Flaky(Component):
    """Fails every tick while ``broken``; a restart (on_init) repairs it if ``heals``."""

    NAME = "flaky"
    TELEMETRY = (Channel("ticks", "u32", id=4),)
    RATE_GROUPS = ("10Hz",)

    def __init__(self, heals: bool) -> None:
        super().__init__()
        self.heals = heals
        self.broken = False
        self.inits = 0

    def on_init(self) -> None:
        self.inits += 1
        if self.heals:
            self.broken = False

    def on_tick(self, rate_group: str) -> None:
        if self.broken:
            raise ValueError("lost the sensor bus")
        self.tlm_inc("ticks")


def boot(comp: Component) -> FlightSoftware:
    fs = build_flight(components={16: comp})
    fs.step(0.0)
    fs.downlink_packets()
    return fs


def events(fs: FlightSoftware, name: str) -> list[str]:
    return [e.text for e in fs.recent_events if e.name == name]


@pytest.mark.req("HLTH-001")
def test_silent_component_is_reported_and_restarted() -> None:
    flaky = Flaky(heals=True)
    fs = boot(flaky)
    fs.step(2.0)
    assert flaky.inits == 1
    flaky.broken = True
    fs.step(1.0)
    assert events(fs, "health.TICK_ERROR") == [
        "flaky on_tick raised: ValueError: lost the sensor bus"
    ]
    assert fs.telemetry("flaky.errors") > 1
    assert events(fs, "health.SILENT") == ["flaky silent for 1.0 s"]
    assert events(fs, "health.RESTARTED") == ["flaky restarted (1 in a row)"]
    assert flaky.inits == 2
    ticks = fs.telemetry("flaky.ticks")
    fs.step(2.0)
    assert fs.telemetry("flaky.ticks") == ticks + 20  # healthy again, beating every cycle
    assert fs.telemetry("health.restarts") == 1


@pytest.mark.req("HLTH-002")
def test_component_that_stays_broken_is_isolated_then_revived_by_command() -> None:
    flaky = Flaky(heals=False)
    fs = boot(flaky)
    flaky.broken = True
    fs.step(10.0)
    assert len(events(fs, "health.RESTARTED")) == 3  # max_restarts
    assert events(fs, "health.ISOLATED") == [
        "flaky isolated after 3 restarts; send health.RESTART to retry"
    ]
    assert fs.telemetry("health.isolated") == 1
    errors = fs.telemetry("flaky.errors")
    fs.step(5.0)
    assert fs.telemetry("flaky.errors") == errors  # no more ticks
    assert any(
        e.name == "mode.MONITOR_TRIPPED" and "component_isolated" in e.text
        for e in fs.recent_events
    )
    flaky.broken = False
    tc = CommandEncoder(fs).encode("health.RESTART", component="flaky")
    fs.uplink_packet(tc)
    fs.step(1.0)
    assert verification(decode_downlink(fs), request_id_of(tc))[-1] == (7, None)
    assert fs.telemetry("health.isolated") == 0
    assert fs.telemetry("flaky.ticks") > 0
    tc = CommandEncoder(fs).encode("health.RESTART", component="nobody")
    fs.uplink_packet(tc)
    fs.step(0.0)
    assert verification(decode_downlink(fs), request_id_of(tc))[-1] == (8, "NOT_FOUND")


@pytest.mark.req("HLTH-003")
def test_max_restarts_is_a_parameter() -> None:
    flaky = Flaky(heals=False)
    fs = boot(flaky)
    fs.prm.set("health.max_restarts", 0)
    flaky.broken = True
    fs.step(2.0)
    assert events(fs, "health.RESTARTED") == []
    assert len(events(fs, "health.ISOLATED")) == 1


# ---------------------------------------------------------------------- watchdog
@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(1.0)
    yield path, srv
    srv.close()


def received(srv: socket.socket) -> list[bytes]:
    out = []
    srv.setblocking(False)
    try:
        while True:
            out.append(srv.recv(256))
    except BlockingIOError:
        pass
    return out


@pytest.mark.req("HLTH-004")
def test_watchdog_pings_only_when_systemd_asks(notify_socket: tuple[str, socket.socket]) -> None:
    path, srv = notify_socket
    off = SdNotifier.from_env({"NOTIFY_SOCKET": path})
    assert not off.enabled and not off.maybe_ping(0.0)
    assert received(srv) == []
    wd = SdNotifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    assert wd.enabled and wd.interval_s == 1.0
    assert wd.maybe_ping(10.0)
    assert not wd.maybe_ping(10.5)  # half the watchdog interval not yet over
    assert wd.maybe_ping(11.0)
    assert received(srv) == [b"WATCHDOG=1", b"WATCHDOG=1"]
    other = SdNotifier.from_env(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}
    )
    assert not other.enabled  # systemd watches another process
    wd.close()


@pytest.mark.req("HLTH-005")
def test_executive_pets_the_watchdog_in_real_time(notify_socket: tuple[str, socket.socket]) -> None:
    path, srv = notify_socket

    class FakeWall:
        """A board clock whose time only moves when the executive sleeps."""

        def __init__(self) -> None:
            self.t = 0.0

        def now_tai(self) -> float:
            return 2e9 + self.t

        def met(self) -> float:
            return self.t

        def sleep(self, dt: float) -> None:
            self.t += dt

    clk = FakeWall()
    wd = SdNotifier(path, watchdog_usec=1_000_000)
    fs = build_flight(clock=clk, watchdog=wd)
    cycles = fs.run_realtime(5.0, sleep=clk.sleep)
    assert cycles == 50
    msgs = received(srv)
    assert msgs[0] == b"READY=1"
    assert msgs[1:] == [b"WATCHDOG=1"] * 10  # every 0.5 s for 5 s
    assert fs.telemetry("health.wd_pings") == 10
    wd.close()


@pytest.mark.req("HLTH-006")
def test_unreachable_socket_is_counted_not_raised(tmp_path: Path) -> None:
    wd = SdNotifier(str(tmp_path / "missing.sock"), watchdog_usec=1_000_000)
    assert not wd.maybe_ping(0.0)
    assert wd.failures == 1
