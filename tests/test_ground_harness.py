"""Harness for the ground tests: the real flight software at the other end of the link.

Tests may use flight code (the ground package may not): ``SimLink`` runs the flight on a
simulated clock with a :class:`GroundSession` and no threads; ``FlightThread`` flies it
in real time (``RadioHost.serve``) on any transport, in a thread of the test process.
Other ground test modules import these helpers.
"""

from __future__ import annotations

import functools
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from fsw.app import build_flight
from fsw.ccsds import TEST_KEY_FILE, LinkConfig
from fsw.comms.radio import RadioHost
from fsw.core.clock import WallClock
from fsw.core.dictionary import build_dictionary
from fsw.link import BaseTransport, open_link
from ground import Archive, CommandHandle, CommandTimeouts, GroundSession

CFG = LinkConfig.load(TEST_KEY_FILE)


@functools.cache
def _dictionary_json() -> str:
    return json.dumps(build_dictionary(build_flight(link_config=CFG)))


def flight_dictionary() -> dict[str, Any]:
    """The default flight's dictionary, exactly as `gnomon dict export` would write it."""
    return dict(json.loads(_dictionary_json()))


def free_udp_port() -> int:
    """A loopback UDP port nobody is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimLink:
    """Flight (SimClock) + RadioHost + GroundSession stepped together, deterministic.

    ``uplink_filter(cltu) -> bool`` decides whether a CLTU reaches the spacecraft.
    """

    def __init__(
        self,
        archive: Archive | None = None,
        timeouts: CommandTimeouts | None = None,
        dt_s: float = 0.1,
    ) -> None:
        self.fs = build_flight(link_config=CFG)
        self.radio = RadioHost(self.fs)
        self.ground = GroundSession(flight_dictionary(), CFG, archive, timeouts=timeouts)
        self.now_s = 0.0
        self.dt_s = dt_s
        self.uplink_filter: Callable[[bytes], bool] = lambda cltu: True
        self.cltus_dropped = 0

    def uplink(self, cltus: list[bytes]) -> None:
        for cltu in cltus:
            if self.uplink_filter(cltu):
                self.radio.uplink(cltu)
            else:
                self.cltus_dropped += 1

    def send(self, command: str, /, **args: Any) -> CommandHandle:
        handle, cltus = self.ground.send_args(command, args, self.now_s)
        self.uplink(cltus)
        return handle

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.dt_s)):
            self.fs.step(self.dt_s)
            self.now_s += self.dt_s
            self.ground.receive(self.radio.downlink(idle=True), self.now_s)
            self.uplink(self.ground.poll(self.now_s))


class FlightThread:
    """The flight software flying in real time on ``transport`` (or a URL), in a thread."""

    def __init__(self, transport: BaseTransport | str) -> None:
        self.transport = (
            open_link(transport, role="spacecraft") if isinstance(transport, str) else transport
        )
        self.fs = build_flight(clock=WallClock(), link_config=CFG)
        self.radio = RadioHost(self.fs)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.radio.serve,
            args=(self.transport,),
            kwargs={"stop": self._stop.is_set},
            daemon=True,
        )

    def __enter__(self) -> FlightThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)
        self.transport.close()


def test_sim_link_flies_a_ping_end_to_end() -> None:
    link = SimLink()
    handle = link.send("PING")
    link.run(0.5)
    assert [s.stage.value for s in handle.stages] == ["sent", "accepted", "started", "completed"]
