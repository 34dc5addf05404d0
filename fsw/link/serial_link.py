"""``serial:///dev/ttyUSB0?baud=115200``: a UART to the board (pyserial).

A port that is not there yet (board not plugged in) or that disappears (cable pulled,
board reset) is reported once, counted, and reopened on the next ``send``/``recv``;
``recv`` waits out its timeout meanwhile, so a polling loop neither hangs nor spins.

``send`` and ``recv`` may run on different threads (the radio host does): opening and
losing the port are serialised by a lock, each call works on the port object it took,
and a port lost by one thread is closed and counted once.
"""

from __future__ import annotations

import contextlib
import threading
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
        self._port_lock = threading.Lock()  # open / lose / close; never held while blocking
        self._next_try = 0.0
        self._status = "waiting"
        self._acquire()

    def _acquire(self) -> serial.Serial | None:
        """The open port, opening it when it is missing and a retry is due; else None."""
        with self._port_lock:
            if self._port is not None or self.closed:
                return self._port
            now = time.monotonic()
            if now < self._next_try:
                return None
            self._next_try = now + RETRY_S
            try:
                port = serial.Serial(
                    self.path,
                    self.baudrate,
                    timeout=0,
                    write_timeout=WRITE_TIMEOUT_S,
                    exclusive=True,
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                self._problem(
                    f"serial port {self.path} is not available ({reason}); waiting for it"
                )
                return None
            self._port = port
            self._status = "connected"
            self.stats["connects"] += 1
            self.last_error = None
            self._warned.clear()  # report the next disappearance again
            return port

    @property
    def baudrate(self) -> int:
        """The configured line speed."""
        return self.baud

    def _lost(self, port: serial.Serial, why: str) -> None:
        """``port`` failed: close it and wait for the port to come back (once per port)."""
        with self._port_lock:
            lost = self._port
            if lost is None or lost is not port:
                return  # the other thread already lost (and maybe reopened) it
            self._port = None
            with contextlib.suppress(serial.SerialException, OSError):
                lost.close()
            self.stats["disconnects"] += 1
            self._status = "waiting"
            self._problem(f"serial port {self.path} lost ({why}); waiting for it to come back")

    def send(self, data: bytes) -> None:
        """Write ``data``; dropped (counted) while the port is missing."""
        self._check_open()
        if not data:
            return
        port = self._acquire()
        if port is None:
            self._dropped(data, f"serial port {self.path} is not available; bytes dropped")
            return
        try:
            port.write(data)
        except serial.SerialTimeoutException:
            self._dropped(data, f"serial port {self.path} write timed out; bytes dropped")
            return
        except (serial.SerialException, OSError, TypeError) as exc:
            # TypeError: pyserial set its fd to None under a concurrent close
            self._lost(port, str(exc))
            self.stats["tx_dropped_bytes"] += len(data)
            return
        self._sent(len(data))

    def recv(self, timeout_s: float) -> bytes:
        """Bytes that arrived (whatever is buffered), or ``b""`` after ``timeout_s``."""
        self._check_open()
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            remaining = deadline - time.monotonic()
            port = self._acquire()
            if port is None:
                if remaining <= 0 or self.closed:
                    return b""
                self._wait(min(RETRY_S, remaining))
                continue
            try:
                port.timeout = max(0.0, remaining)
                data: bytes = port.read(1)
                if data:
                    waiting = port.in_waiting
                    if waiting:
                        data += port.read(waiting)
            except (serial.SerialException, OSError, TypeError) as exc:
                self._lost(port, str(exc))
                continue
            if data:
                return self._received(data)
            if time.monotonic() >= deadline:
                return b""

    def close(self) -> None:
        """Close the port."""
        with self._port_lock:
            if self._port is not None and not self.closed:
                with contextlib.suppress(serial.SerialException, OSError):
                    self._port.close()
                self._port = None
            super().close()
