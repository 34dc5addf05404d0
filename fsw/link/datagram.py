"""UDP with fixed addresses each way, as ground software expects it (Yamcs, COSMOS).

``udp://HOST:PORT?tm=HOST:PORT[&mode=frame][&asm=0|1]``

- ``HOST:PORT`` is the spacecraft's TC address: the spacecraft binds it, the ground
  sends its commands there (from any port: Yamcs sends from an ephemeral one).
- ``tm=HOST:PORT`` is the ground's TM address: the ground binds it, the spacecraft sends
  its downlink there and nowhere else. No datagram from anyone moves the downlink
  (``peer_changes`` stays 0), unlike plain ``udp://`` which answers the last sender.
- A host left out (``udp://:10025?tm=10017``) is 127.0.0.1: loopback by default.
- ``mode=stream`` (default): the bytes as they come, like ``tcp://`` and ``serial://``.
  ``mode=frame``: one TM frame per datagram and one CLTU per datagram, the way
  Yamcs' ``UdpTmFrameLink`` and ``UdpTcFrameLink`` want them. ``asm=0`` (default in frame
  mode) sends the frame without its attached sync marker; ``asm=1`` keeps it.

Each end sends from the socket it bound, so both directions have fixed local and remote
addresses: TC ground(TM address) -> spacecraft(TC address), TM the other way.

In frame mode the spacecraft cuts its CADUs at the TM frame length
(``open_link(..., tm_frame_len=config.tm_frame_len)``, from the link configuration, so it
never drifts from what the ground expects); the ground gives each datagram back its ASM,
so the frame synchroniser downstream sees the same stream as on any other transport.

>>> sc = DatagramTransport("udp://:0?tm=0&mode=frame", "spacecraft", tm_frame_len=8)
>>> sc.framing, sc.asm, sc.local_address[0]
('frame', False, '127.0.0.1')
>>> sc.close()
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from urllib.parse import parse_qs, urlsplit

from fsw.ccsds.cltu import START_SEQUENCE, TAIL_SEQUENCE
from fsw.ccsds.sync import ASM, ASM_LEN
from fsw.link.base import BaseTransport
from fsw.link.errors import LinkError, LinkUrlError
from fsw.link.udp import MAX_DATAGRAM, resolve

LOOPBACK = "127.0.0.1"
_RCVBUF = 4 << 20
_OPTIONS = {"tm", "mode", "asm"}


def _address(text: str, url: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` (host 127.0.0.1) from a URL part."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise LinkUrlError(f"{url}: {what} needs a port, e.g. 127.0.0.1:10017") from None
    if not 0 <= number <= 65535:
        raise LinkUrlError(f"{url}: {what} port {number} is outside 0..65535")
    return host.strip("[]") or LOOPBACK, number


def split_cltus(data: bytes) -> list[bytes]:
    """The CLTUs laid end to end in ``data`` (start sequence, 8-byte codeblocks up to
    the tail sequence); bytes that are not a whole CLTU come back as one last piece.

    >>> tail = bytes.fromhex("c5c5c5c5c5c5c579")
    >>> one = b"\\xeb\\x90" + bytes(8) + tail
    >>> [len(c) for c in split_cltus(one + one + b"junk")]
    [18, 18, 4]
    """
    out: list[bytes] = []
    pos, n = 0, len(data)
    while pos < n:
        end = -1
        if data[pos : pos + 2] == START_SEQUENCE:
            k = pos + 2
            while k + 8 <= n:
                if data[k : k + 8] == TAIL_SEQUENCE:
                    end = k + 8
                    break
                k += 8
        if end < 0:
            out.append(data[pos:])
            break
        out.append(data[pos:end])
        pos = end
    return out


class DatagramTransport(BaseTransport):
    """UDP between a spacecraft and a ground at fixed addresses, bytes or one frame per
    datagram (the module docstring has the URL)."""

    def __init__(self, url: str, role: str, *, tm_frame_len: int | None = None) -> None:
        super().__init__(url, role)
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        unknown = set(query) - _OPTIONS
        if unknown:
            raise LinkUrlError(f"{url}: unknown option(s) {', '.join(sorted(unknown))}")
        if "tm" not in query:
            raise LinkUrlError(f"{url}: give the ground's TM address, e.g. ?tm=127.0.0.1:10017")
        self.tc_address = _address(parts.netloc, url, "the TC address")
        self.tm_address = _address(query["tm"][0], url, "tm=")
        self.framing = query.get("mode", ["stream"])[0]
        if self.framing not in ("stream", "frame"):
            raise LinkUrlError(f"{url}: mode must be stream or frame, not {self.framing!r}")
        asm = query.get("asm", ["0"])[0]
        if asm not in ("0", "1"):
            raise LinkUrlError(f"{url}: asm must be 0 or 1, not {asm!r}")
        if "asm" in query and self.framing != "frame":
            raise LinkUrlError(f"{url}: asm= goes with mode=frame")
        #: True: each TM datagram starts with the ASM (frame mode).
        self.asm = asm == "1"
        if self.framing == "frame" and role == "spacecraft" and not tm_frame_len:
            raise LinkUrlError(
                f"{url}: mode=frame needs the TM frame length of the link configuration "
                "(open_link(..., tm_frame_len=...))"
            )
        self.tm_frame_len = tm_frame_len
        for key in ("rx_empty", "rx_bad_length", "tx_frames", "tx_unsplit", "peer_changes"):
            self.stats[key] = 0
        local, self._remote = (
            (self.tc_address, self.tm_address)
            if role == "spacecraft"
            else (self.tm_address, self.tc_address)
        )
        family, bind_to = resolve(*local, socket.SOCK_DGRAM)
        _, self._remote = resolve(*self._remote, socket.SOCK_DGRAM)
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            self._sock.bind(bind_to)
        except OSError as exc:
            self._sock.close()
            raise LinkError(
                f"cannot bind {bind_to[0]}:{bind_to[1]} for {url}: {exc.strerror or exc} "
                "(is another process using the port?)"
            ) from None
        self._sock.setblocking(False)
        self._status = "listening"

    @property
    def local_address(self) -> tuple[str, int]:
        """The bound (host, port), e.g. to learn an ephemeral port."""
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def _datagrams(self, data: bytes) -> list[bytes]:
        """What one ``send`` becomes: frames, CLTUs or stream chunks."""
        if self.framing == "stream":
            return [data[i : i + MAX_DATAGRAM] for i in range(0, len(data), MAX_DATAGRAM)]
        if self.role == "ground":
            return split_cltus(data)
        assert self.tm_frame_len is not None
        cadu = ASM_LEN + self.tm_frame_len
        if len(data) % cadu or any(data[i : i + ASM_LEN] != ASM for i in range(0, len(data), cadu)):
            self.stats["tx_unsplit"] += 1
            self._problem(f"downlink of {len(data)} bytes is not whole {cadu}-byte CADUs")
            return [data]
        skip = 0 if self.asm else ASM_LEN
        return [data[i + skip : i + cadu] for i in range(0, len(data), cadu)]

    def send(self, data: bytes) -> None:
        """Send ``data`` to the fixed remote address: one datagram per TM frame or CLTU
        in frame mode. A datagram the socket cannot take is dropped and counted."""
        self._check_open()
        if not data:
            return
        for datagram in self._datagrams(data):
            try:
                self._sock.sendto(datagram, self._remote)
            except BlockingIOError:
                self._dropped(datagram, "socket send buffer full; datagram dropped")
                continue
            except OSError as exc:
                self._dropped(datagram, f"send failed: {exc.strerror or exc}")
                continue
            self._sent(len(datagram))
            if self.framing == "frame":
                self.stats["tx_frames"] += 1

    def _accept(self, data: bytes) -> bytes | None:
        """A received datagram as the stream downstream expects it (None: dropped)."""
        if not data:
            self.stats["rx_empty"] += 1
            return None
        if self.framing == "frame" and self.role == "ground" and not self.asm:
            if self.tm_frame_len is not None and len(data) != self.tm_frame_len:
                self.stats["rx_bad_length"] += 1
                self._problem(
                    f"a {len(data)}-byte datagram is not one {self.tm_frame_len}-byte "
                    "TM frame; dropped"
                )
                return None
            data = ASM + data
        self._status = "connected"
        return self._received(data)

    def recv(self, timeout_s: float) -> bytes:
        """One datagram's bytes (an ASM put back in front of a bare TM frame on the
        ground), or ``b""`` after ``timeout_s``. Empty datagrams are counted, skipped."""
        self._check_open()
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b""
                with contextlib.suppress(OSError, ValueError):
                    select.select([self._sock], [], [], remaining)
                continue
            except ConnectionRefusedError:  # an ICMP error for an earlier send
                continue
            except OSError as exc:
                self._problem(f"receive failed: {exc.strerror or exc}")
                return b""
            out = self._accept(data)
            if out is not None:
                return out

    def close(self) -> None:
        """Close the socket."""
        if not self.closed:
            self._sock.close()
        super().close()


__all__ = ["LOOPBACK", "DatagramTransport", "split_cltus"]
