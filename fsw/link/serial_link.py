"""``serial:///dev/ttyUSB0?baud=115200``: a UART to the board (pyserial).

A port that is not there yet (board not plugged in) or that disappears (cable pulled,
board reset) is reported once, counted, and reopened on the next ``send``/``recv``;
``recv`` waits out its timeout meanwhile, so a polling loop neither hangs nor spins.
"""

from __future__ import annotations

import contextlib
import time

import serial

from fsw.link.base import BaseTransport

RETRY_S = 0.25
WRITE_TIMEOUT_S = 2.0


class SerialTransport(BaseTransport):
    """A byte stream over a serial port, reopened whenever it comes back."""

    def __init__(self, url: str, role: str, path: str, baud: int) -> None:
        super().__init__(url, role)
        self.path = path
        self.baud = baud
        self._port: serial.Serial | None = None
        self._next_try = 0.0
        self._status = "waiting"
        self._open()

    def _open(self) -> bool:
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + RETRY_S
        try:
            port = serial.Serial(
                self.path, self.baudrate, timeout=0, write_timeout=WRITE_TIMEOUT_S, exclusive=True
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            self._problem(f"serial port {self.path} is not available ({reason}); waiting for it")
            return False
        self._port = port
        self._status = "connected"
        self.stats["connects"] += 1
        self.last_error = None
        self._warned.clear()  # report the next disappearance again
        return True

    @property
    def baudrate(self) -> int:
        """The configured line speed."""
        return self.baud

    def _lost(self, why: str) -> None:
        if self._port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._port.close()
            self._port = None
            self.stats["disconnects"] += 1
        self._status = "waiting"
        self._problem(f"serial port {self.path} lost ({why}); waiting for it to come back")

    def send(self, data: bytes) -> None:
        """Write ``data``; dropped (counted) while the port is missing."""
        self._check_open()
        if not data:
            return
        if self._port is None and not self._open():
            self._dropped(data, f"serial port {self.path} is not available; bytes dropped")
            return
        assert self._port is not None
        try:
            self._port.write(data)
        except serial.SerialTimeoutException:
            self._dropped(data, f"serial port {self.path} write timed out; bytes dropped")
            return
        except (serial.SerialException, OSError) as exc:
            self._lost(str(exc))
            self.stats["tx_dropped_bytes"] += len(data)
            return
        self._sent(len(data))

    def recv(self, timeout_s: float) -> bytes:
        """Bytes that arrived (whatever is buffered), or ``b""`` after ``timeout_s``."""
        self._check_open()
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            remaining = deadline - time.monotonic()
            if self._port is None and not self._open():
                if remaining <= 0:
                    return b""
                self._wait(min(RETRY_S, remaining))
                continue
            port = self._port
            assert port is not None
            try:
                port.timeout = max(0.0, remaining)
                data: bytes = port.read(1)
                if data:
                    waiting = port.in_waiting
                    if waiting:
                        data += port.read(waiting)
            except (serial.SerialException, OSError) as exc:
                self._lost(str(exc))
                continue
            if data:
                return self._received(data)
            if time.monotonic() >= deadline:
                return b""

    def close(self) -> None:
        """Close the port."""
        if self._port is not None and not self.closed:
            with contextlib.suppress(serial.SerialException, OSError):
                self._port.close()
            self._port = None
        super().close()
