"""``tcp://host:port``: the spacecraft listens, the ground connects (and reconnects).

One ground connection at a time; a newer connection replaces an older one (the ground
restarted). A vanished peer is noticed, counted and waited for again; ``send`` without a
peer drops the bytes and counts them, as a radio would lose them. Writes time out
rather than hang on a peer that stopped reading.
"""

from __future__ import annotations

import select
import socket
import time

from fsw.link.base import BaseTransport
from fsw.link.errors import LinkError
from fsw.link.udp import resolve

SEND_TIMEOUT_S = 2.0
RETRY_S = 0.25


class TcpTransport(BaseTransport):
    """A byte stream over TCP between one spacecraft and one ground."""

    def __init__(self, url: str, role: str, host: str, port: int) -> None:
        super().__init__(url, role)
        self._family, self._addr = resolve(host, port, socket.SOCK_STREAM)
        self._conn: socket.socket | None = None
        self._listener: socket.socket | None = None
        self._next_try = 0.0
        if role == "spacecraft":
            lst = socket.socket(self._family, socket.SOCK_STREAM)
            lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                lst.bind(self._addr)
                lst.listen(1)
            except OSError as exc:
                lst.close()
                raise LinkError(f"cannot listen on {url}: {exc.strerror or exc}") from None
            lst.setblocking(False)
            self._listener = lst
            self._status = "listening"
        else:
            self._status = "waiting"
            self._connect(timeout_s=1.0)

    @property
    def local_address(self) -> tuple[str, int]:
        """The listening (host, port) on the spacecraft side, e.g. to learn an ephemeral port."""
        sock = self._listener or self._conn
        if sock is None:
            raise LinkError(f"{self.url} has no socket yet")
        host, port = sock.getsockname()[:2]
        return str(host), int(port)

    # -- connection management ----------------------------------------------------------

    def _adopt(self, conn: socket.socket) -> None:
        if self._conn is not None:
            self._conn.close()
            self.stats["disconnects"] += 1
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(SEND_TIMEOUT_S)
        self._conn = conn
        self.stats["connects"] += 1
        self._status = "connected"
        self.last_error = None

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._problem(f"accept failed: {exc.strerror or exc}")
                return
            self._adopt(conn)

    def _connect(self, timeout_s: float) -> None:
        now = time.monotonic()
        if now < self._next_try:
            return
        self._next_try = now + RETRY_S
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.settimeout(max(0.05, timeout_s))
        try:
            sock.connect(self._addr)
        except OSError as exc:
            sock.close()
            self._status = "waiting"
            self._problem(f"spacecraft not reachable yet ({exc.strerror or exc}); retrying")
            return
        self._adopt(sock)

    def _lost(self, why: str) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self.stats["disconnects"] += 1
        self._status = "listening" if self.role == "spacecraft" else "waiting"
        self._problem(why)

    def _ensure(self, timeout_s: float) -> None:
        if self._conn is not None:
            return
        if self.role == "spacecraft":
            self._accept()
        else:
            self._connect(timeout_s)

    # -- I/O ----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write ``data``; dropped (counted) when no peer is connected."""
        self._check_open()
        if not data:
            return
        self._ensure(0.5)
        conn = self._conn
        if conn is None:
            self._dropped(data, "no peer connected; bytes dropped")
            return
        try:
            conn.sendall(data)
        except TimeoutError:
            self._lost("peer stopped reading; connection dropped")
            self.stats["tx_dropped_bytes"] += len(data)
            return
        except OSError as exc:
            self._lost(f"connection lost while sending: {exc.strerror or exc}")
            self.stats["tx_dropped_bytes"] += len(data)
            return
        self._sent(len(data))

    def recv(self, timeout_s: float) -> bytes:
        """Whatever bytes have arrived (up to 64 KiB), or ``b""`` after ``timeout_s``."""
        self._check_open()
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            remaining = deadline - time.monotonic()
            self._ensure(max(0.0, remaining))
            conn = self._conn
            if conn is None:
                waitable = [self._listener] if self._listener is not None else []
                if remaining <= 0:
                    return b""
                if waitable:
                    select.select(waitable, [], [], remaining)
                else:
                    self._wait(min(RETRY_S, remaining))
                continue
            ready, _, _ = select.select([conn], [], [], max(0.0, remaining))
            if self._listener is not None:
                self._accept()  # a reconnecting ground replaces a dead connection
                if self._conn is not conn:
                    continue
            if not ready:
                return b""
            try:
                data = conn.recv(65536)
            except OSError as exc:
                self._lost(f"connection lost: {exc.strerror or exc}")
                continue
            if not data:
                self._lost("peer closed the connection")
                continue
            return self._received(data)

    def close(self) -> None:
        """Close the connection and the listening socket."""
        if not self.closed:
            if self._conn is not None:
                self._conn.close()
            if self._listener is not None:
                self._listener.close()
        super().close()
