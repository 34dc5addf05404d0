"""``udp://host:port``: the spacecraft binds the address, the ground sends to it.

The spacecraft answers whoever sent it the last datagram. The ground announces itself
with an empty datagram (a keep-alive) when it opens and then whenever it has sent nothing
for :data:`KEEPALIVE_S` (1 s), so the downlink flows before the first command and the
spacecraft keeps the ground's address. Empty datagrams carry no data: ``recv`` skips
them (counted in ``stats["rx_empty"]``) and goes on reading, so a receiver that reads
until ``recv(0)`` returns ``b""`` empties the socket. Datagrams larger than
:data:`MAX_DATAGRAM` are split (the CCSDS synchronisers on both ends do not care about
chunking).

Until fixed peer addresses exist, any sender takes the spacecraft's downlink with one
datagram; ``stats["peer_changes"]`` counts each switch (docs/link.md).
"""

from __future__ import annotations

import contextlib
import select
import socket
import time

from fsw.link.base import BaseTransport
from fsw.link.errors import LinkError

MAX_DATAGRAM = 60_000
#: The ground's keep-alive: an empty datagram after this many seconds without sending.
KEEPALIVE_S = 1.0
#: Empty datagrams one ``recv`` skips past its deadline before it gives up (a flood).
_MAX_EMPTY_PER_RECV = 1024
_RCVBUF = 4 << 20


def resolve(host: str, port: int, kind: int) -> tuple[int, tuple[str, int]]:
    """(address family, sockaddr) for host:port; :class:`LinkError` when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=kind)
    except (socket.gaierror, UnicodeError) as exc:
        raise LinkError(f"cannot resolve {host!r}: {exc}") from None
    family, _, _, _, addr = infos[0]
    return family, (str(addr[0]), int(addr[1]))


class UdpTransport(BaseTransport):
    """UDP datagrams between one spacecraft and one ground."""

    def __init__(self, url: str, role: str, host: str, port: int) -> None:
        super().__init__(url, role)
        family, addr = resolve(host, port, socket.SOCK_DGRAM)
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        self._peer: tuple[str, int] | None = None
        self.stats["peer_changes"] = 0
        self._last_tx = float("-inf")
        self.stats["rx_empty"] = 0
        self.stats["keepalives"] = 0
        try:
            if role == "spacecraft":
                self._sock.bind(addr)
                self._status = "listening"
            else:
                self._sock.connect(addr)
                self._peer = addr
                self._status = "connected"
                self._hello()
        except OSError as exc:
            self._sock.close()
            verb = "bind" if role == "spacecraft" else "reach"
            raise LinkError(f"cannot {verb} {url}: {exc.strerror or exc}") from None
        self._sock.setblocking(False)

    @property
    def local_address(self) -> tuple[str, int]:
        """The bound (host, port), e.g. to learn an ephemeral port."""
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def _hello(self) -> None:
        # If the spacecraft is not there yet, the next keep-alive says hello again.
        self._last_tx = time.monotonic()
        self.stats["keepalives"] += 1
        with contextlib.suppress(OSError):
            self._sock.send(b"")

    def _keepalive(self) -> None:
        """The ground's empty datagram, at most once per :data:`KEEPALIVE_S` of silence."""
        if self.role == "ground" and time.monotonic() - self._last_tx >= KEEPALIVE_S:
            self._hello()

    def send(self, data: bytes) -> None:
        """Send ``data`` as one or more datagrams; dropped (counted) if no peer is known."""
        self._check_open()
        if not data:
            return
        if self._peer is None:
            self._dropped(data, "no ground station has contacted this spacecraft yet")
            return
        for i in range(0, len(data), MAX_DATAGRAM):
            chunk = data[i : i + MAX_DATAGRAM]
            try:
                if self.role == "ground":
                    self._sock.send(chunk)
                    self._last_tx = time.monotonic()
                else:
                    self._sock.sendto(chunk, self._peer)
                self._sent(len(chunk))
            except BlockingIOError:
                self._dropped(chunk, "socket send buffer full; datagram dropped")
            except OSError as exc:
                self._dropped(chunk, f"send failed: {exc.strerror or exc}")

    def recv(self, timeout_s: float) -> bytes:
        """The next non-empty datagram's bytes, or ``b""`` after ``timeout_s``.

        Empty datagrams (keep-alives) are skipped and counted, so ``recv(0)`` returns
        ``b""`` only when the socket holds no data (or after a flood of empty ones).
        The ground sends its keep-alive from here when it has been silent for a second.
        """
        self._check_open()
        deadline = time.monotonic() + max(0.0, timeout_s)
        empty = 0
        while True:
            try:
                data, addr = self._sock.recvfrom(65536)
            except BlockingIOError:
                self._keepalive()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b""
                select.select([self._sock], [], [], remaining)
                continue
            except ConnectionRefusedError:
                self._problem("nothing is listening at the spacecraft address yet")
                self._wait(min(0.2, max(0.0, deadline - time.monotonic())))
                if time.monotonic() >= deadline:
                    return b""
                continue
            except OSError as exc:
                self._problem(f"receive failed: {exc.strerror or exc}")
                return b""
            if self.role == "spacecraft" and addr != self._peer:
                if self._peer is not None:  # another sender takes the downlink
                    self.stats["peer_changes"] += 1
                self._peer = (str(addr[0]), int(addr[1]))
                self.stats["connects"] += 1
                self._status = "connected"
            if data:
                return self._received(data)
            self.stats["rx_empty"] += 1
            empty += 1
            if empty >= _MAX_EMPTY_PER_RECV and time.monotonic() >= deadline:
                return b""

    def close(self) -> None:
        """Close the socket."""
        if not self.closed:
            self._sock.close()
        super().close()
