"""serial:// transport, with a pseudo-terminal pair standing in for the cable."""

from __future__ import annotations

import os
import threading
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fsw.link import open_link
from fsw.link.serial_link import SerialTransport

pytestmark = pytest.mark.timeout(30)


class Cable:
    """A pty: the master fd is 'the board', a symlink at ``path`` is the port name."""

    def __init__(self, path: Path) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.slave_name = os.ttyname(self.slave)
        self.path = path
        path.symlink_to(self.slave_name)

    def board_writes(self, data: bytes) -> None:
        os.write(self.master, data)

    def board_reads(self, n: int) -> bytes:
        out = b""
        import select

        while len(out) < n:
            ready, _, _ = select.select([self.master], [], [], 2.0)
            if not ready:
                break
            out += os.read(self.master, n - len(out))
        return out

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)
        self.path.unlink()


def wait_connected(link: SerialTransport) -> None:
    """Let the transport notice the port (pyserial flushes input when it opens one)."""
    for _ in range(20):
        link.recv(0.05)
        if link.status == "connected":
            return
    raise AssertionError(f"never connected: {link.last_error}")


@pytest.fixture
def port_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "ttyGNOMON0"


def recv_all(link: SerialTransport, want: int) -> bytes:
    got = b""
    for _ in range(100):
        got += link.recv(0.05)
        if len(got) >= want:
            break
    return got


def test_serial_round_trip_both_ways(port_path: Path) -> None:
    cable = Cable(port_path)
    link = open_link(f"serial://{port_path}?baud=115200")
    assert isinstance(link, SerialTransport)
    try:
        assert link.status == "connected" and link.baud == 115200
        cable.board_writes(b"\x1a\xcf\xfc\x1d" + bytes(60))
        assert recv_all(link, 64) == b"\x1a\xcf\xfc\x1d" + bytes(60)
        link.send(b"\xeb\x90command")
        assert cable.board_reads(9) == b"\xeb\x90command"
        assert link.stats["rx_bytes"] == 64 and link.stats["tx_bytes"] == 9
    finally:
        link.close()
        cable.unplug()


def test_missing_port_waits_reports_and_connects_when_it_appears(port_path: Path) -> None:
    link = open_link(f"serial://{port_path}")  # not plugged in yet: no exception
    assert isinstance(link, SerialTransport)
    try:
        assert link.status == "waiting"
        assert "not available" in (link.last_error or "")
        assert link.recv(0.05) == b""  # waits its timeout, returns nothing
        link.send(b"lost")
        assert link.stats["tx_dropped_bytes"] == 4
        cable = Cable(port_path)
        wait_connected(link)
        cable.board_writes(b"hello")
        assert recv_all(link, 5) == b"hello"
        assert link.status == "connected" and link.stats["connects"] == 1
        cable.unplug()
    finally:
        link.close()


def test_port_that_disappears_is_reopened(port_path: Path) -> None:
    cable = Cable(port_path)
    link = open_link(f"serial://{port_path}?baud=9600")
    assert isinstance(link, SerialTransport)
    try:
        cable.board_writes(b"before")
        assert recv_all(link, 6) == b"before"
        cable.unplug()  # cable pulled / board reset
        for _ in range(10):
            assert link.recv(0.05) == b""
            if link.status == "waiting":
                break
        assert link.status == "waiting"
        assert link.stats["disconnects"] == 1
        assert "lost" in (link.last_error or "") or "not available" in (link.last_error or "")
        cable = Cable(port_path)  # plugged back in
        wait_connected(link)
        cable.board_writes(b"after")
        assert recv_all(link, 5) == b"after"
        assert link.stats["connects"] == 2
        cable.unplug()
    finally:
        link.close()


def _loop_until(
    stop: threading.Event, step: Callable[[], object], errors: list[BaseException]
) -> Callable[[], None]:
    """A thread body calling ``step`` until ``stop``; whatever escapes goes to ``errors``."""

    def run() -> None:
        try:
            while not stop.is_set():
                step()
        except BaseException as exc:  # the test reports whatever escaped
            errors.append(exc)

    return run


def _await_status(link: SerialTransport, status: str, stop: threading.Event) -> None:
    for _ in range(200):
        if link.status == status:
            break
        stop.wait(0.01)
    assert link.status == status


def test_send_and_recv_on_two_threads_survive_unplug_and_replug(port_path: Path) -> None:
    # The radio host sends from one thread and receives on another; the cable is pulled
    # and plugged back while both run. Neither thread may die, the loss is counted once
    # per unplug, and bytes flow both ways afterwards.
    cable = Cable(port_path)
    link = open_link(f"serial://{port_path}?baud=115200")
    assert isinstance(link, SerialTransport)
    errors: list[BaseException] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_loop_until(stop, lambda: link.send(b"\x55" * 32), errors)),
        threading.Thread(target=_loop_until(stop, lambda: link.recv(0.01), errors)),
    ]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            cable.board_reads(64)  # the sender's bytes reach the board
            cable.unplug()
            _await_status(link, "waiting", stop)
            cable = Cable(port_path)
            _await_status(link, "connected", stop)
        assert len(cable.board_reads(64)) == 64
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        link.close()
        cable.unplug()
    assert errors == []
    assert link.stats["disconnects"] == 3 and link.stats["connects"] == 4
