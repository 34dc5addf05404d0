"""Byte transports for the space link: ``open_link(url, role)``.

=================================  ==============================================
``udp://host:port``                spacecraft binds, ground sends to it, the
                                   downlink answers the last sender
``udp://host:port?tm=host:port``   fixed addresses each way; ``&mode=frame``: one
                                   TM frame / one CLTU per datagram (Yamcs)
``tcp://host:port``                spacecraft listens, ground connects/reconnects
``serial:///dev/ttyUSB0?baud=N``   UART via pyserial, waits for and reopens the port
``loop://``                        receives what it sends (tests)
:func:`memory_pair`                two connected in-memory ends (tests, SITL)
=================================  ==============================================

Give the same URL to both ends; ``role`` says which end this is. Every transport has
``send(bytes)``, ``recv(timeout_s) -> bytes`` (``b""`` on timeout), ``close()``, a
``stats`` dict of counters and a one-word ``status``. Errors are :class:`LinkError`.
:mod:`fsw.link.mux` shares one transport between channels (the HIL bench's cable).

>>> link = open_link("loop://")
>>> link.send(b"\\x1a\\xcf\\xfc\\x1d")
>>> link.recv(0.1).hex()
'1acffc1d'
>>> link.close()
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fsw.link.base import ROLES, BaseTransport, Transport
from fsw.link.errors import LinkClosedError, LinkError, LinkUrlError
from fsw.link.memory import MemoryTransport, loopback, memory_pair

DEFAULT_BAUD = 115200


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise LinkUrlError(f"{url}: the port is not a number in 0..65535") from None
    if not parts.hostname:
        raise LinkUrlError(f"{url}: give a host, e.g. {parts.scheme}://127.0.0.1:10025")
    if port is None:
        raise LinkUrlError(f"{url}: give a port, e.g. {parts.scheme}://{parts.hostname}:10025")
    return parts.hostname, port


def open_link(
    url: str, role: str = "spacecraft", *, tm_frame_len: int | None = None
) -> BaseTransport:
    """Open the transport ``url`` names, as the ``role`` end ("spacecraft" or "ground").

    ``tm_frame_len`` (the link configuration's) lets a datagram link cut the downlink
    into one TM frame per datagram (``udp://...?tm=...&mode=frame``, :mod:`fsw.link.datagram`).

    Raises :class:`LinkUrlError` for a URL it cannot use and :class:`LinkError` when a
    socket cannot be bound. A serial port that is not there yet is not an error: the
    transport reports it and keeps trying.
    """
    if role not in ROLES:
        raise LinkError(f"role must be 'spacecraft' or 'ground', not {role!r}")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "loop":
        return loopback(url, role)
    if scheme == "udp" and urlsplit(url).query:
        from fsw.link.datagram import DatagramTransport

        return DatagramTransport(url, role, tm_frame_len=tm_frame_len)
    if scheme == "udp":
        from fsw.link.udp import UdpTransport

        host, port = _host_port(url)
        return UdpTransport(url, role, host, port)
    if scheme == "tcp":
        from fsw.link.tcp import TcpTransport

        host, port = _host_port(url)
        return TcpTransport(url, role, host, port)
    if scheme == "serial":
        from fsw.link.serial_link import SerialTransport

        parts = urlsplit(url)
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path:
            raise LinkUrlError(f"{url}: give a device, e.g. serial:///dev/ttyUSB0?baud=115200")
        query = parse_qs(parts.query)
        unknown = set(query) - {"baud"}
        if unknown:
            raise LinkUrlError(f"{url}: unknown option(s) {', '.join(sorted(unknown))}")
        try:
            baud = int(query.get("baud", [str(DEFAULT_BAUD)])[0])
        except ValueError:
            raise LinkUrlError(f"{url}: baud must be a whole number") from None
        if baud <= 0:
            raise LinkUrlError(f"{url}: baud must be positive")
        return SerialTransport(url, role, path, baud)
    if scheme == "mem":
        raise LinkUrlError(f"{url}: in-memory links come in pairs; use memory_pair()")
    raise LinkUrlError(
        f"{url!r}: unknown link; use udp://host:port, tcp://host:port, "
        "serial:///dev/ttyX?baud=N or loop://"
    )


__all__ = [
    "BaseTransport",
    "LinkClosedError",
    "LinkError",
    "LinkUrlError",
    "MemoryTransport",
    "Transport",
    "memory_pair",
    "open_link",
]
