"""What every transport shares: the interface, counters, status and closing."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Protocol, runtime_checkable

from fsw.link.errors import LinkClosedError

log = logging.getLogger("fsw.link")

ROLES = ("spacecraft", "ground")


@runtime_checkable
class Transport(Protocol):
    """A byte pipe to the other end of the space link.

    ``send`` never blocks for long and never raises for a peer that is merely absent
    (the bytes are dropped and counted, as a radio would lose them); ``recv`` waits at
    most ``timeout_s`` and returns ``b""`` when nothing arrived.
    """

    url: str
    role: str
    stats: dict[str, int]

    @property
    def status(self) -> str:
        """One word: open, listening, connected, waiting, closed."""
        ...

    def send(self, data: bytes) -> None:
        """Queue ``data`` for the other end."""
        ...

    def recv(self, timeout_s: float) -> bytes:
        """Bytes from the other end, or ``b""`` after ``timeout_s`` seconds."""
        ...

    def close(self) -> None:
        """Release the port or socket; later calls raise :class:`LinkClosedError`."""
        ...


class BaseTransport(ABC):
    """Counters, status, last error and the close event shared by the transports."""

    def __init__(self, url: str, role: str) -> None:
        self.url = url
        self.role = role
        self.stats: dict[str, int] = {
            "tx_bytes": 0,
            "tx_chunks": 0,
            "tx_dropped_bytes": 0,
            "rx_bytes": 0,
            "rx_chunks": 0,
            "connects": 0,
            "disconnects": 0,
            "errors": 0,
        }
        self.last_error: str | None = None
        self._status = "open"
        self._closed = threading.Event()
        self._warned: set[str] = set()

    @property
    def status(self) -> str:
        """One word: open, listening, connected, waiting, closed."""
        return self._status

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed.is_set()

    @abstractmethod
    def send(self, data: bytes) -> None:
        """Queue ``data`` for the other end (dropped and counted if no peer is there)."""

    @abstractmethod
    def recv(self, timeout_s: float) -> bytes:
        """Bytes from the other end, or ``b""`` after ``timeout_s`` seconds."""

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise LinkClosedError(f"{self.url} is closed")

    def _problem(self, message: str) -> None:
        """Record a problem; log it once per distinct message so logs stay readable."""
        self.last_error = message
        self.stats["errors"] += 1
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s: %s", self.url, message)

    def _dropped(self, data: bytes, why: str) -> None:
        self.stats["tx_dropped_bytes"] += len(data)
        self._problem(why)

    def _sent(self, n: int) -> None:
        self.stats["tx_bytes"] += n
        self.stats["tx_chunks"] += 1

    def _received(self, data: bytes) -> bytes:
        if data:
            self.stats["rx_bytes"] += len(data)
            self.stats["rx_chunks"] += 1
        return data

    def _wait(self, seconds: float) -> None:
        """Block up to ``seconds`` (returns early when the transport is closed)."""
        if seconds > 0:
            self._closed.wait(seconds)

    def close(self) -> None:
        """Mark closed; subclasses release their resources first."""
        self._closed.set()
        self._status = "closed"

    def __enter__(self) -> BaseTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} role={self.role} {self._status}>"
