"""In-process transports: ``loop://`` (what you send comes back) and :func:`memory_pair`.

Both are thread-safe queues, so a SITL spacecraft thread and a ground thread can share
them. Each ``send`` arrives as one ``recv`` chunk.

>>> sc, gnd = memory_pair()
>>> gnd.send(b"cltu")
>>> sc.recv(0.0)
b'cltu'
>>> sc.recv(0.0)
b''
"""

from __future__ import annotations

import queue

from fsw.link.base import BaseTransport


class MemoryTransport(BaseTransport):
    """One end of an in-memory link: sends into ``tx``, receives from ``rx``."""

    def __init__(
        self, url: str, role: str, rx: queue.SimpleQueue[bytes], tx: queue.SimpleQueue[bytes]
    ) -> None:
        super().__init__(url, role)
        self._rx = rx
        self._tx = tx
        self._status = "connected"

    def send(self, data: bytes) -> None:
        """Put ``data`` on the other end's queue (never blocks)."""
        self._check_open()
        if data:
            self._tx.put(bytes(data))
            self._sent(len(data))

    def recv(self, timeout_s: float) -> bytes:
        """The next chunk sent by the other end, or ``b""`` after ``timeout_s``."""
        self._check_open()
        try:
            if timeout_s <= 0:
                return self._received(self._rx.get_nowait())
            return self._received(self._rx.get(timeout=timeout_s))
        except queue.Empty:
            return b""

    def pending(self) -> int:
        """Chunks waiting to be received."""
        return self._rx.qsize()

    def close(self) -> None:
        """Close this end (the other end simply stops receiving)."""
        super().close()


def memory_pair() -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected in-memory ends: ``(spacecraft, ground)``."""
    up: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    down: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    return (
        MemoryTransport("mem://spacecraft", "spacecraft", rx=up, tx=down),
        MemoryTransport("mem://ground", "ground", rx=down, tx=up),
    )


def loopback(url: str = "loop://", role: str = "spacecraft") -> MemoryTransport:
    """A transport that receives what it sends (``loop://``)."""
    q: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    return MemoryTransport(url, role, rx=q, tx=q)
